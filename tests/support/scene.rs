//! A running doctor watching a real mautrix-telegram through a real
//! Synapse, with the admin's direct chat: what the watch and fault tests
//! read (the bot's messages, `/metrics`) and do (say a command, break the
//! registration).

use std::time::{Duration, Instant};

use serde_json::json;

use super::*;

/// The bodies of the bot's messages in the room.
pub fn bot_bodies(synapse: &Synapse, token: &str, room: &str) -> Vec<String> {
    room_messages(synapse, token, room)
        .iter()
        .filter(|e| e["sender"] == "@doctor:doctor.test" && e["type"] == "m.room.message")
        .filter_map(|e| e["content"]["body"].as_str().map(str::to_owned))
        .collect()
}

pub fn count(bodies: &[String], needle: &str) -> usize {
    bodies.iter().filter(|b| b.contains(needle)).count()
}

pub fn metrics(port: u16) -> String {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    use std::io::{Read, Write};
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    text
}

/// Polls `probe` until it is true, or fails with `what` after `limit`.
pub fn eventually(limit: Duration, what: &str, probe: impl Fn() -> bool) {
    let start = Instant::now();
    while !probe() {
        assert!(start.elapsed() < limit, "{what} within {limit:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A running mautrix-telegram and doctor (watching every `interval`
/// seconds, metrics on), and the admin's direct chat with the bot.
pub struct Scene {
    /// The folder of it all, removed with the scene.
    pub dir: tempfile::TempDir,
    pub bridge: TelegramBridge,
    pub synapse: Synapse,
    pub doctor: Process,
    pub token: String,
    pub room: String,
    pub metrics_port: u16,
}

impl Scene {
    pub fn start(interval: u64) -> Scene {
        let dir = tempfile::tempdir().unwrap();
        // Port 0: the doctor binds a free port and logs it (no race with
        // the other tests picking ports meanwhile).
        let (mut bridge, config) = bot_setup(
            dir.path(),
            &format!("watch:\n  interval_seconds: {interval}\nmetrics:\n  listen: 127.0.0.1:0\n"),
        );
        let synapse = bot_homeserver(dir.path(), &bridge, &config);
        // The homeserver's config, so the doctor can tell when it restarts.
        edit(
            &config,
            "homeserver:\n",
            &format!("homeserver:\n  config: {}\n", synapse.config_path.display()),
        );
        bridge.start();
        let doctor = run_doctor(&config, &dir.path().join("doctor.log"));
        let metrics_port = doctor
            .log_text()
            .lines()
            .find(|l| l.contains("metrics listening"))
            .and_then(|l| l.rsplit(':').next())
            .and_then(|port| port.trim().parse().ok())
            .expect("the metrics address in the log");
        let (token, room) = admin_direct_chat(&synapse);
        let scene = Scene {
            dir,
            bridge,
            synapse,
            doctor,
            token,
            room,
            metrics_port,
        };
        eventually(Duration::from_secs(20), "the bot greets", || {
            !scene.seen().is_empty()
        });
        scene
    }

    pub fn seen(&self) -> Vec<String> {
        bot_bodies(&self.synapse, &self.token, &self.room)
    }

    /// Until the first watch run found the bridge healthy.
    pub fn wait_for_first_run(&self) {
        let healthy = "bridge_doctor_target_healthy{target=\"telegram\"} 1";
        eventually(Duration::from_secs(30), "the first run", || {
            metrics(self.metrics_port).contains(healthy)
        });
    }

    /// Points the bridge's registration elsewhere and returns the one
    /// alert that follows within seconds (no interval is that short).
    pub fn break_registration(&self) -> String {
        let url = format!("url: http://127.0.0.1:{}", self.bridge.port);
        edit(&self.bridge.registration(), &url, "url: http://127.0.0.1:1");
        self.one_failing_alert(Duration::from_secs(20), "an alert right after the edit")
    }

    /// Waits up to `limit` until the room holds exactly one alert that the
    /// bridge is failing, and returns it.
    pub fn one_failing_alert(&self, limit: Duration, what: &str) -> String {
        eventually(limit, what, || {
            count(&self.seen(), "telegram is failing") == 1
        });
        self.seen()
            .into_iter()
            .find(|b| b.contains("telegram is failing"))
            .unwrap()
    }
}

/// Sends `body` into the room as the admin.
pub fn say(synapse: &Synapse, token: &str, room: &str, body: &str) {
    let answer = blocking::client()
        .put(&format!(
            "{}/_matrix/client/v3/rooms/{room}/send/m.room.message/{}",
            synapse.url(),
            body.replace(' ', "-")
        ))
        .bearer(token)
        .json(&json!({"msgtype": "m.text", "body": body}))
        .send()
        .unwrap();
    assert_eq!(answer.status, 200, "{:?}", answer.body);
}
