//! Watch mode against real programs: a real mautrix-telegram stopped under
//! a running doctor is announced once in the admin's management room, and
//! once more when it is back; `/metrics` shows it unhealthy, then healthy.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::*;

/// The bodies of the bot's messages in the room.
fn bot_bodies(synapse: &Synapse, token: &str, room: &str) -> Vec<String> {
    room_messages(synapse, token, room)
        .iter()
        .filter(|e| e["sender"] == "@doctor:doctor.test" && e["type"] == "m.room.message")
        .filter_map(|e| e["content"]["body"].as_str().map(str::to_owned))
        .collect()
}

fn count(bodies: &[String], needle: &str) -> usize {
    bodies.iter().filter(|b| b.contains(needle)).count()
}

fn metrics(port: u16) -> String {
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
fn eventually(limit: Duration, what: &str, probe: impl Fn() -> bool) {
    let start = Instant::now();
    while !probe() {
        assert!(start.elapsed() < limit, "{what} within {limit:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A running mautrix-telegram and doctor (watching every `interval`
/// seconds, metrics on), and the admin's direct chat with the bot.
struct Scene {
    _dir: tempfile::TempDir,
    bridge: TelegramBridge,
    synapse: Synapse,
    doctor: Process,
    token: String,
    room: String,
    metrics_port: u16,
}

impl Scene {
    fn start(interval: u64) -> Scene {
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
            _dir: dir,
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

    fn seen(&self) -> Vec<String> {
        bot_bodies(&self.synapse, &self.token, &self.room)
    }

    /// Until the first watch run found the bridge healthy.
    fn wait_for_first_run(&self) {
        let healthy = "bridge_doctor_target_healthy{target=\"telegram\"} 1";
        eventually(Duration::from_secs(30), "the first run", || {
            metrics(self.metrics_port).contains(healthy)
        });
    }

    /// Points the bridge's registration elsewhere and returns the one
    /// alert that follows within seconds (no interval is that short).
    fn break_registration(&self) -> String {
        let url = format!("url: http://127.0.0.1:{}", self.bridge.port);
        edit(&self.bridge.registration(), &url, "url: http://127.0.0.1:1");
        eventually(
            Duration::from_secs(20),
            "an alert right after the edit",
            || count(&self.seen(), "telegram is failing") == 1,
        );
        self.seen()
            .into_iter()
            .find(|b| b.contains("telegram is failing"))
            .unwrap()
    }
}

#[test]
fn a_stopped_bridge_is_announced_once_and_its_recovery_once() {
    let Scene {
        _dir,
        mut bridge,
        synapse,
        mut doctor,
        token,
        room,
        metrics_port,
    } = Scene::start(10);
    let seen = || bot_bodies(&synapse, &token, &room);
    say(&synapse, &token, &room, "help");
    eventually(Duration::from_secs(20), "the answer to help", || {
        count(&seen(), "check [BRIDGE]") == 1
    });
    let healthy = "bridge_doctor_target_healthy{target=\"telegram\"} 1";
    let unhealthy = "bridge_doctor_target_healthy{target=\"telegram\"} 0";
    eventually(
        Duration::from_secs(30),
        "telegram healthy in /metrics",
        || metrics(metrics_port).contains(healthy),
    );

    bridge.stop();
    eventually(Duration::from_secs(40), "an alert", || {
        count(&seen(), "telegram is failing") == 1
    });
    let alert = seen()
        .into_iter()
        .find(|b| b.contains("telegram is failing"))
        .unwrap();
    assert!(alert.contains("ping.connection_failed"), "{alert}");
    assert!(metrics(metrics_port).contains(unhealthy));

    bridge.start();
    // Healthy for two runs in a row before it is announced (no flapping).
    eventually(Duration::from_secs(40), "a recovery notice", || {
        count(&seen(), "telegram is healthy again") == 1
    });
    assert!(metrics(metrics_port).contains(healthy));

    // Another interval: nothing is repeated.
    std::thread::sleep(Duration::from_secs(12));
    let bodies = seen();
    assert_eq!(
        (
            count(&bodies, "telegram is failing"),
            count(&bodies, "telegram is healthy again")
        ),
        (1, 1),
        "{bodies:#?}"
    );
    let text = metrics(metrics_port);
    for series in [
        "bridge_doctor_check_failing{target=\"telegram\",check=\"ping.connection_failed\"} 0",
        "bridge_doctor_last_check_timestamp_seconds",
        "bridge_doctor_transactions_total",
        "bridge_doctor_command_duration_seconds_count{command=\"help\"} 1",
    ] {
        assert!(text.contains(series), "{series} not in\n{text}");
    }

    // The history holds both changes; `watch off` silences the room.
    say(&synapse, &token, &room, "history");
    eventually(Duration::from_secs(20), "the history", || {
        count(&seen(), "telegram: healthy again") == 1
    });
    let history = seen()
        .into_iter()
        .find(|b| b.contains("telegram: healthy again"))
        .unwrap();
    assert!(
        history.contains("telegram: failing (ping.connection_failed"),
        "{history}"
    );
    say(&synapse, &token, &room, "watch off");
    eventually(Duration::from_secs(20), "watch off confirmed", || {
        count(&seen(), "Alerts are off in this room") == 1
    });
    bridge.stop();
    eventually(Duration::from_secs(40), "unhealthy in /metrics", || {
        metrics(metrics_port).contains(unhealthy)
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        count(&seen(), "telegram is failing"),
        1,
        "muted: no new alert"
    );
    assert_eq!(doctor.terminate(), Some(0));
}

/// Sends `body` into the room as the admin.
fn say(synapse: &Synapse, token: &str, room: &str, body: &str) {
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

#[test]
fn a_changed_registration_is_checked_at_once_and_named() {
    // An hour between runs: only the file notification explains a new run.
    let scene = Scene::start(3600);
    scene.wait_for_first_run();
    let alert = scene.break_registration();
    assert!(alert.contains("registration.url_mismatch"), "{alert}");
    assert!(
        alert.contains("its registration file changed"),
        "what changed: {alert}"
    );
    drop(scene.doctor);
}

#[test]
fn a_homeserver_restart_is_named_in_the_next_alert() {
    let mut scene = Scene::start(3600);
    scene.wait_for_first_run();
    // The restart alone changes no file the doctor watches: no run, no alert.
    scene.synapse.restart();
    let alert = scene.break_registration();
    assert!(alert.contains("the homeserver restarted (at "), "{alert}");
    assert!(alert.contains("its registration file changed"), "{alert}");
    assert!(
        !alert.contains("the homeserver's config changed"),
        "its config did not: {alert}"
    );
    drop(scene.doctor);
}
