//! The bot in Matrix, as users see it: a real client (matrix-nio) talks to
//! the running doctor through a real Synapse.

mod support;

use std::io::Read;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::*;

/// A command event the homeserver delivers again in another transaction
/// (as after a crash before the doctor acknowledged it) is answered once.
fn resent_command_is_answered_once(
    synapse: &Synapse,
    root: &std::path::Path,
    doctor_config: &std::path::Path,
    results: &Value,
) {
    let room = results["room"].as_str().unwrap();
    let doctor_url = yaml_value(&root.join("doctor-registration.yaml"), "url")
        .trim_matches('\'')
        .to_owned();
    let hs_token = yaml_value(doctor_config, "hs_token");
    let event = serde_json::json!({
        "type": "m.room.message", "room_id": room, "sender": "@admin:doctor.test",
        "event_id": "$resent-command", "origin_server_ts": 0,
        "content": {"msgtype": "m.text", "body": "status"},
    });
    let http = blocking::client();
    for txn in ["resent-a", "resent-b"] {
        let sent = http
            .put(&format!("{doctor_url}/_matrix/app/v1/transactions/{txn}"))
            .bearer(&hs_token)
            .json(&serde_json::json!({"events": [event]}))
            .send()
            .unwrap();
        assert_eq!(sent.status, 200, "{:?}", sent.body);
    }
    let token = login(synapse, "admin");
    let replies = || {
        let messages = http
            .get(&format!(
                "{}/_matrix/client/v3/rooms/{room}/messages?dir=b&limit=100",
                synapse.url()
            ))
            .bearer(&token)
            .send()
            .unwrap();
        messages.body["chunk"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| {
                e["content"]["m.relates_to"]["m.in_reply_to"]["event_id"] == "$resent-command"
            })
            .count()
    };
    let start = std::time::Instant::now();
    while replies() == 0 && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        replies(),
        1,
        "the re-sent command was not answered exactly once"
    );
}

fn body(reply: &Value) -> &str {
    reply["body"].as_str().unwrap_or_default()
}

#[test]
fn the_bot_answers_commands_in_its_rooms() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // No pickle key: the bot has no device, for the encrypted-room fallback.
    let (bridge, doctor_config) = bot_setup(root, "encryption:\n  allow: true\n");
    // Permissions: the admin, and a plain user; nobody else.
    edit(
        &doctor_config,
        "permissions:\n  \"@admin:doctor.test\": admin\n",
        "permissions:\n  \"@admin:doctor.test\": admin\n  \"@user:doctor.test\": user\n",
    );
    let synapse = bot_homeserver(root, &bridge, &doctor_config);
    for (name, admin) in [("admin", true), ("user", false), ("stranger", false)] {
        register_user(&synapse, name, admin);
    }
    let mut command = Command::new(doctor_bin());
    command.arg("run").arg("-c").arg(&doctor_config);
    let mut doctor_process = spawn_logged(command, &root.join("doctor.log"));
    doctor_process.wait_for_log("self-check passed", Duration::from_secs(60));

    let (results, stdout) = run_client(
        "chat_client.py",
        &synapse,
        &[root.to_str().unwrap()],
        &|| format!("doctor log:\n{}", doctor_process.log_text()),
    );
    let step = |name: &str| -> &Value {
        let value = &results[name];
        assert!(
            !value.is_null(),
            "no reply for {name}; doctor log:\n{}",
            doctor_process.log_text()
        );
        value
    };

    assert_eq!(results["joined"], true);
    assert_eq!(results["bot_displayname"], "Bridge Doctor");
    assert!(body(step("welcome")).contains("help"));
    for name in [
        "help",
        "faq",
        "explain",
        "check",
        "ping",
        "status",
        "bridges",
        "unknown",
        "explain_reply",
        "group_prefixed",
    ] {
        let reply = step(name);
        assert_eq!(reply["msgtype"], "m.notice", "{name}: {reply}");
        assert_eq!(reply["format"], "org.matrix.custom.html", "{name}");
        assert!(
            reply["formatted_body"]
                .as_str()
                .is_some_and(|h| !h.is_empty()),
            "{name}"
        );
    }
    assert!(body(step("help")).contains("check [BRIDGE]"));
    assert!(body(step("faq")).contains("Typing notifications"));
    assert!(
        body(step("explain")).contains("logs.invalid_localpart"),
        "{}",
        body(step("explain"))
    );
    assert!(
        body(step("explain_reply")).contains("logs.foreign_tables"),
        "{}",
        body(step("explain_reply"))
    );
    // The bridge never started: the check names the failed ping as a
    // warning that says so, leads with it, and carries the report.
    let check = step("check");
    assert!(
        body(check).contains("ping.connection_failed")
            && body(check).contains("has not started yet"),
        "{}",
        body(check)
    );
    let report = &check["org.bridge_doctor.report"];
    assert!(report["results"].as_array().is_some_and(|r| {
        r.iter().any(|f| {
            f["check"] == "ping.connection_failed"
                && f["target"] == "telegram"
                && f["status"] == "warn"
        })
    }));
    assert!(
        report["diagnoses"]
            .as_array()
            .is_some_and(|d| !d.is_empty()),
        "{report:#}"
    );
    assert_eq!(
        step("check_one")["org.bridge_doctor.report"]["targets"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert!(
        body(step("ping")).contains("ping.connection_failed")
            && !body(step("ping")).contains("tokens.mismatch")
    );
    assert!(body(step("status")).contains("transactions received"));
    assert!(body(step("bridges")).contains("telegram"));
    assert!(body(step("unknown")).contains("Unknown command `frobnicate`"));
    assert!(
        results["group_unprefixed"].is_null(),
        "no prefix in a group room: not a command"
    );
    assert!(body(step("user_packet")).contains("Only admins"));
    // No pickle key in this config: the bot has no device, says so in the
    // encrypted room in a plain notice, and the self-check named why.
    assert!(
        body(step("encrypted_notice")).contains("no device to read encrypted messages"),
        "{}",
        body(step("encrypted_notice"))
    );
    let log = doctor_process.log_text();
    assert!(
        log.contains("check=encryption.doctor_unavailable") && log.contains("pickle_key"),
        "{log}"
    );
    assert_eq!(results["stranger_membership"], "leave");

    // The packet arrives as a file in the room, a zip with the note.
    let packet = step("packet");
    assert_eq!(packet["msgtype"], "m.file");
    assert!(
        packet["body"]
            .as_str()
            .unwrap()
            .starts_with("bridge_doctor_packet_")
    );
    let path = results["packet_file"].as_str().unwrap();
    let mut archive = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut metadata = String::new();
    archive
        .by_name("metadata.yaml")
        .unwrap()
        .read_to_string(&mut metadata)
        .unwrap();
    assert!(metadata.contains("chat-note-4242"), "{metadata}");

    resent_command_is_answered_once(&synapse, root, &doctor_config, &results);

    let log = doctor_process.log_text();
    for secret in [
        yaml_value(&doctor_config, "as_token"),
        yaml_value(&doctor_config, "hs_token"),
        yaml_value(&bridge.registration(), "as_token"),
    ] {
        assert!(
            !log.contains(&secret) && !stdout.contains(&secret),
            "a token leaked"
        );
    }
}

fn files(events: &Value) -> usize {
    events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["content"]["msgtype"] == "m.file")
        .count()
}

/// Marks the log line a user must not see in a `check` reply.
const LOG_MARK: &str = "marker-line-7311";
const JOURNAL_MARK: &str = "journal-line-5521";

/// Who gets what: the admins' commands refused to a user, a packet asked
/// for in a shared room sent only to the admin's direct chat, alerts only
/// where everyone is an admin, a user's `check` without log lines.
#[test]
fn only_admins_get_what_is_theirs() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (bridge, doctor_config) = bot_setup(root, "watch:\n  interval_seconds: 3600\n");
    edit(
        &doctor_config,
        "permissions:\n  \"@admin:doctor.test\": admin\n",
        "permissions:\n  \"@admin:doctor.test\": admin\n  \"@admin2:doctor.test\": admin\n  \"@user:doctor.test\": user\n",
    );
    // The bridge's log holds a line the knowledge base knows.
    let log = root.join("telegram/bridge.log");
    std::fs::write(
        &log,
        format!("[2026-12-03 08:00:00,000] [ERROR@mau.as] Failed to ensure registered: M_EXCLUSIVE (HTTP 400): Invalid user localpart for this application service. {LOG_MARK}\n"),
    )
    .unwrap();
    // And so does its unit's journal (the doctor run with --journal-dir).
    let journal = root.join("journal");
    let journal_line = format!(
        "[2026-12-03 08:00:01,000] [ERROR@mau.as] Failed to ensure registered: M_EXCLUSIVE (HTTP 400): Invalid user localpart for this application service. {JOURNAL_MARK}"
    );
    write_journal(&journal, &[("telegram.service", journal_line.as_bytes())]);
    let registration = bridge.registration();
    let listed = format!("registration: {}\n", registration.display());
    edit(
        &doctor_config,
        &listed,
        &format!(
            "{listed}    logs: [{}, \"journald:telegram.service\"]\n",
            log.display()
        ),
    );
    let synapse = bot_homeserver(root, &bridge, &doctor_config);
    for name in ["admin", "admin2", "user", "stranger"] {
        register_user(&synapse, name, false);
    }
    let mut doctor = run_doctor_with(
        &doctor_config,
        &root.join("doctor.log"),
        &["--journal-dir", journal.to_str().unwrap()],
    );
    let (results, _) = run_client(
        "trust_client.py",
        &synapse,
        &[registration.to_str().unwrap()],
        &|| format!("doctor log:\n{}", doctor.log_text()),
    );
    let doctor_log = root.join("doctor.log");
    let step = |name: &str| -> &Value {
        let value = &results[name];
        let log = std::fs::read_to_string(&doctor_log).unwrap_or_default();
        assert!(!value.is_null(), "no {name}; doctor log:\n{log}");
        value
    };
    let room = |name: &str| step(name).as_str().unwrap().to_owned();

    // A user is refused the admins' commands, with a reason and a ❌.
    for name in ["user_watch", "user_history", "user_packet"] {
        assert!(
            body(step(name)).starts_with("Only admins may "),
            "{name}: {}",
            body(step(name))
        );
    }
    let seen = step("seen");
    let refused = seen["user_room"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "m.reaction" && e["content"]["m.relates_to"]["key"] == "❌")
        .count();
    assert_eq!(refused, 3, "one ❌ per refused command");

    // The same finding for both; the log line only for the admin.
    let (user_check, admin_check) = (step("user_check"), step("admin_check"));
    for check in [user_check, admin_check] {
        let report = check["org.bridge_doctor.report"].to_string();
        assert!(report.contains("logs.invalid_localpart"), "{report}");
    }
    let admin_report = admin_check["org.bridge_doctor.report"].to_string();
    for mark in [LOG_MARK, JOURNAL_MARK] {
        assert!(admin_report.contains(mark), "{mark}: {admin_report}");
        assert!(
            !user_check.to_string().contains(mark),
            "the user was shown the log line"
        );
    }
    assert!(
        admin_report.contains("journald:telegram.service"),
        "{admin_report}"
    );
    assert!(
        body(user_check).contains("Log lines are shown to admins only"),
        "{}",
        body(user_check)
    );

    // The packet asked for in the shared room is in the admin's direct chat.
    let admin_room = room("admin_room");
    assert!(
        body(step("shared_packet")).contains(&admin_room),
        "{}",
        body(step("shared_packet"))
    );
    assert_eq!(files(&seen["shared_room"]), 0);
    assert_eq!(files(&seen["admin_room"]), 1);

    // The alert reached the admin's room, not the one a user joined (the
    // client read the rooms after admin2's packet, long after the alert);
    // the doctor's log says why, naming the room.
    assert!(body(step("alert")).contains("telegram is failing"));
    let admin2_room = room("admin2_room");
    let shared_alerts = seen["admin2_room"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["content"]["body"]
                .as_str()
                .is_some_and(|b| b.contains("registration.url_mismatch"))
        })
        .count();
    assert_eq!(
        shared_alerts, 0,
        "an alert went to a room with a user in it"
    );
    let log = doctor.log_text();
    let why: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("watch alerts are no longer sent"))
        .collect();
    assert!(
        why.len() == 1
            && why[0].contains(&admin2_room)
            && why[0].contains("1 member(s) in it are not admins"),
        "{why:?}"
    );

    // admin2's packet, asked for there, came in a new direct chat.
    let direct = room("admin2_direct");
    assert!(
        body(step("admin2_packet")).contains(&direct),
        "{}",
        body(step("admin2_packet"))
    );
    assert_eq!(files(&seen["admin2_room"]), 0);
    assert_eq!(files(&seen["admin2_direct"]), 1);
    assert_eq!(doctor.terminate(), Some(0));
}
