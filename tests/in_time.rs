//! Verdicts about now, on a real Synapse and two real mautrix-telegram
//! bridges that were down while the homeserver had events for them: one
//! started only later, one restarted. The delivery failures Synapse logged
//! meanwhile are history once the bridges work: resolved, with their
//! time, never a failure. Stopped again, the same lines fail as before.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;

/// Waits until `file` holds `needle`.
fn wait_for_text(file: &Path, needle: &str, limit: Duration) {
    let start = Instant::now();
    while start.elapsed() < limit {
        if std::fs::read_to_string(file).is_ok_and(|text| text.contains(needle)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("no {needle:?} in {} within {limit:?}", file.display());
}

/// Invites `bot` into a new room of `token`'s user: an event the bridge's
/// namespace claims, which the homeserver then tries to deliver.
fn invite(synapse: &Synapse, token: &str, bot: &str) {
    let client = blocking::client();
    let room = client
        .post(&format!("{}/_matrix/client/v3/createRoom", synapse.url()))
        .bearer(token)
        .json(&serde_json::json!({"invite": [format!("@{bot}:{SERVER_NAME}")]}))
        .send()
        .unwrap();
    assert!(room.body["room_id"].is_string(), "{:?}", room.body);
}

fn resolved(report: &Value, target: &str) -> Vec<Value> {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["target"] == target && r["resolved_at"].is_string())
        .cloned()
        .collect()
}

#[test]
fn failures_from_before_a_bridge_worked_are_resolved_not_failed() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut late = TelegramBridge::prepare(&root.join("late"), HOMESERVER_PLACEHOLDER);
    let mut restarted = TelegramBridge::prepare(&root.join("restarted"), HOMESERVER_PLACEHOLDER);
    restarted.reconfigure(&[
        ("id: telegram\n", "id: restarted\n"),
        ("bot_username: telegrambot", "bot_username: rbot"),
        ("telegram_{userid}", "r_{userid}"),
        ("telegram_{groupname}", "r_{groupname}"),
    ]);
    let synapse = Synapse::start(
        &root.join("synapse"),
        &[&late.registration(), &restarted.registration()],
    );
    for bridge in [&late, &restarted] {
        edit(&bridge.config(), HOMESERVER_PLACEHOLDER, &synapse.url());
    }
    // One bridge runs from the start, then is restarted; the other starts
    // late. Events for both while they are down: Synapse fails to deliver.
    restarted.start();
    restarted.stop();
    register_user(&synapse, "alice", false);
    let token = login(&synapse, "alice");
    invite(&synapse, &token, "telegrambot");
    invite(&synapse, &token, "rbot");
    let hs_log = synapse.log_path();
    wait_for_text(&hs_log, "push_bulk to", Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(5));
    late.start();
    restarted.start();
    for id in ["telegram", "restarted"] {
        wait_for_text(
            &hs_log,
            &format!("Successfully recovered application service AS ID {id}"),
            Duration::from_secs(60),
        );
    }

    let logs = |bridge: &TelegramBridge| bridge.dir.join("mautrix-telegram.log");
    let config = doctor_config_generated(
        root,
        &synapse.url(),
        &bridges_yaml(&[
            (&late.config(), &late.registration(), &[&logs(&late)]),
            (
                &restarted.config(),
                &restarted.registration(),
                &[&logs(&restarted)],
            ),
        ]),
    );
    edit(
        &config,
        "homeserver:\n",
        &format!(
            "homeserver:\n  config: {}\n  log: {}\n",
            synapse.config_path.display(),
            hs_log.display()
        ),
    );
    let check =
        |format: &str| doctor(&["check", "-c", config.to_str().unwrap(), "--format", format]);
    let report: Value = serde_json::from_slice(&check("json").stdout).unwrap();
    for id in ["telegram", "restarted"] {
        assert_eq!(
            failing_checks(&report, id),
            Vec::<String>::new(),
            "{id}: {report:#}"
        );
        let history = resolved(&report, id);
        assert!(!history.is_empty(), "{id}: nothing resolved: {report:#}");
        for finding in &history {
            assert_eq!(finding["status"], "info", "{finding:#}");
            assert!(
                finding["detail"]
                    .as_str()
                    .unwrap()
                    .starts_with("Resolved: seen "),
                "{finding:#}"
            );
        }
    }
    let human = String::from_utf8_lossy(&check("human").stdout).into_owned();
    assert!(human.contains("resolved: "), "{human}");

    let out = doctor(&[
        "packet",
        "-c",
        config.to_str().unwrap(),
        "-o",
        root.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let zip = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let report_md = unzip(Path::new(&zip))
        .into_iter()
        .find(|(name, _)| name == "report.md")
        .unwrap()
        .1;
    assert!(report_md.contains("Resolved: seen "), "{report_md}");

    // Both stopped: nothing proves health now, the same lines fail.
    late.stop();
    restarted.stop();
    let report: Value = serde_json::from_slice(&check("json").stdout).unwrap();
    for id in ["telegram", "restarted"] {
        assert!(!failing_checks(&report, id).is_empty(), "{id}: {report:#}");
        assert!(resolved(&report, id).is_empty(), "{id}: {report:#}");
    }
}
