//! The bot in an encrypted direct chat, the way most admins first meet it:
//! a real encrypting client (matrix-nio with libolm) creates the chat as
//! Element does, against a real Synapse, and the doctor answers through its
//! own cross-signed device, also after a restart.

mod support;

use std::io::Read;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::*;

/// Runs the encrypting client in `out` (its store stays there); its JSON result.
fn client(synapse: &Synapse, out: &std::path::Path, step: &[&str]) -> (Value, String) {
    let args: Vec<&str> = [out.to_str().unwrap()]
        .into_iter()
        .chain(step.iter().copied())
        .collect();
    run_client("e2e_client.py", synapse, &args, &String::new)
}

fn start_doctor(config: &std::path::Path, log: &std::path::Path) -> Process {
    let mut command = Command::new(doctor_bin());
    command.arg("run").arg("-c").arg(config);
    let mut process = spawn_logged(command, log);
    process.wait_for_log("self-check passed", Duration::from_secs(60));
    process.wait_for_log(
        "check=encryption.doctor_unavailable",
        Duration::from_secs(60),
    );
    process
}

/// The reply to one command: decrypted, from an encrypted event.
fn encrypted_reply<'a>(results: &'a Value, name: &str, log: &str) -> &'a Value {
    let reply = &results["replies"][name];
    assert!(!reply.is_null(), "no reply to {name}; doctor log:\n{log}");
    assert_eq!(
        reply["encrypted"], true,
        "{name} was not encrypted: {reply}"
    );
    reply
}

/// The bot's device token as the doctor stored it (a secret: never printed).
fn stored_device_token(root: &std::path::Path) -> String {
    use sqlx::{Connection, Row};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let uri = format!("sqlite:{}", root.join("doctor.db").display());
        let mut connection = sqlx::SqliteConnection::connect(&uri).await.unwrap();
        let row = sqlx::query("SELECT access_token FROM bot_device")
            .fetch_one(&mut connection)
            .await
            .unwrap();
        row.get::<String, _>("access_token")
    })
}

/// The errcode of whoami with `token` (`None` when the homeserver takes it).
fn whoami_errcode(synapse: &Synapse, token: &str) -> Option<String> {
    let answer = blocking::client()
        .get(&format!(
            "{}/_matrix/client/v3/account/whoami",
            synapse.url()
        ))
        .bearer(token)
        .send()
        .unwrap();
    answer.body["errcode"].as_str().map(str::to_owned)
}

fn body(reply: &Value) -> &str {
    reply["content"]["body"].as_str().unwrap_or_default()
}

fn zip_text(path: &str) -> String {
    let mut archive = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut all = String::new();
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).unwrap();
        all.push_str(&format!("== {}\n", entry.name().unwrap()));
        entry.read_to_string(&mut all).unwrap();
    }
    all
}

#[test]
fn the_bot_answers_encrypted_in_an_encrypted_direct_chat() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (bridge, doctor_config) = bot_setup(root, "");
    // The planted fault: the bridge's hs_token differs from its registration.
    let bridge_hs_token = yaml_value(&bridge.registration(), "hs_token");
    edit(&bridge.config(), &bridge_hs_token, "planted-wrong-hs-token");
    let synapse = bot_homeserver(root, &bridge, &doctor_config);
    register_user(&synapse, "admin", true);

    let doctor = start_doctor(&doctor_config, &root.join("doctor.log"));
    let log = doctor.log_text();
    assert!(
        log.contains("is ready and cross-signed by the bot"),
        "{log}"
    );
    let (first, first_out) = client(&synapse, root, &["first"]);
    let log = doctor.log_text();

    assert_eq!(first["joined"], true);
    assert!(body(encrypted_reply(&first, "welcome", &log)).contains("help"));
    let help = encrypted_reply(&first, "help", &log);
    // The command got an hourglass while it ran, then a check mark.
    assert_eq!(help["reactions"], serde_json::json!(["⏳", "✅"]), "{help}");
    assert_eq!(help["kind"], "RoomMessageNotice");
    assert!(body(help).contains("check [BRIDGE]"));
    assert_eq!(help["content"]["format"], "org.matrix.custom.html");
    let unknown = encrypted_reply(&first, "unknown", &log);
    assert!(body(unknown).contains("Unknown command `frobnicate`"));
    assert_eq!(
        unknown["reactions"],
        serde_json::json!(["⏳", "❌"]),
        "{unknown}"
    );
    let check = encrypted_reply(&first, "check", &log);
    assert!(body(check).contains("tokens.mismatch"), "{}", body(check));
    let results = &check["content"]["org.bridge_doctor.report"]["results"];
    assert!(results.as_array().is_some_and(|r| r.iter().any(|f| {
        f["check"] == "tokens.mismatch" && f["target"] == "telegram" && f["status"] == "fail"
    })));
    // The packet: an encrypted attachment whose ciphertext is no zip, and
    // which decrypts to the packet with the note and no secret.
    let packet = encrypted_reply(&first, "packet", &log);
    assert_eq!(packet["kind"], "RoomEncryptedFile");
    // First a progress notice, edited as the packet's steps finish.
    assert_eq!(
        packet["earlier_replies"],
        serde_json::json!(["Building the support packet…"])
    );
    let edits: Vec<&str> = packet["edits"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(edits.iter().any(|e| e.contains("collecting")), "{edits:?}");
    assert!(
        edits
            .iter()
            .any(|e| e.contains("adding logs/") || e.contains("adding config/")),
        "{edits:?}"
    );
    assert!(
        edits
            .last()
            .is_some_and(|e| e.starts_with("Support packet built")),
        "{edits:?}"
    );
    assert_eq!(first["packet_ciphertext_is_zip"], false);
    let packet_text = zip_text(first["packet_file"].as_str().unwrap());
    assert!(packet_text.contains("e2e-note-777"));
    assert!(packet_text.contains("== report.md"));
    // A bridge log sent as an encrypted file is downloaded, decrypted and
    // explained.
    let explained = encrypted_reply(&first, "log_file", &log);
    assert!(
        body(explained).contains("logs.hs_token_rejected"),
        "{}",
        body(explained)
    );
    // A file that says it holds 100 bytes but holds 25 MiB is refused, and
    // the reply says why.
    let big = encrypted_reply(&first, "big_file", &log);
    assert!(
        body(big).contains("the file is larger than 20 MiB"),
        "{}",
        body(big)
    );
    assert_eq!(big["reactions"], serde_json::json!(["⏳", "❌"]), "{big}");
    // An unencrypted room still works, unencrypted, also for a log file.
    let plain_log = &first["replies"]["plain_log_file"];
    assert_eq!(plain_log["encrypted"], false, "{plain_log}");
    assert!(
        body(plain_log).contains("logs.hs_token_rejected"),
        "{plain_log}"
    );
    let plain = &first["replies"]["plain_help"];
    assert_eq!(plain["encrypted"], false, "{plain}");
    assert!(body(plain).contains("check [BRIDGE]"));
    // One device, cross-signed as other clients see it.
    let devices = first["bot_devices"].as_object().unwrap();
    assert_eq!(devices.len(), 1, "{devices:?}");
    let (device_id, cross_signed) = devices.iter().next().unwrap();
    assert_eq!(cross_signed, true);

    // After a restart: the same device answers in the same room, with the
    // same token (no new login).
    let first_token = stored_device_token(root);
    let mut doctor = doctor;
    assert_eq!(doctor.terminate(), Some(0));
    let restarted = start_doctor(&doctor_config, &root.join("doctor-2.log"));
    assert!(
        stored_device_token(root) == first_token,
        "the bot logged in again after a restart"
    );
    let room = first["room"].as_str().unwrap();
    let (again, again_out) = client(&synapse, root, &["again", room]);
    let log_2 = restarted.log_text();
    assert!(
        log_2.contains(&format!("device {device_id} is ready")),
        "{log_2}"
    );
    assert!(body(encrypted_reply(&again, "help_again", &log_2)).contains("check [BRIDGE]"));
    assert_eq!(again["bot_devices"], first["bot_devices"]);

    // The crypto store lost: a fresh device, started cleanly, that answers.
    let mut restarted = restarted;
    assert_eq!(restarted.terminate(), Some(0));
    std::fs::remove_dir_all(root.join("crypto")).unwrap();
    let fresh = start_doctor(&doctor_config, &root.join("doctor-3.log"));
    let log_3 = fresh.log_text();
    assert!(log_3.contains("the crypto store is missing"), "{log_3}");
    // The new device has its own token; the old device's was logged out.
    let fresh_token = stored_device_token(root);
    assert!(fresh_token != first_token, "the new device has a new token");
    assert_eq!(whoami_errcode(&synapse, &fresh_token), None);
    assert_eq!(
        whoami_errcode(&synapse, &first_token).as_deref(),
        Some("M_UNKNOWN_TOKEN"),
        "the replaced token still works"
    );
    assert!(log_3.contains("the bot's previous device was logged out"));
    assert!(!log_3.contains(&format!("device {device_id} ")), "{log_3}");
    let (lost, lost_out) = client(&synapse, root, &["again", room]);
    assert!(body(encrypted_reply(&lost, "help_again", &log_3)).contains("check [BRIDGE]"));
    // Its identity's keys went with the store, and Synapse lets a user
    // replace an identity only after interactive auth: the finding says so
    // and what to do; the bot answers all the same.
    assert!(log_3.contains("is not cross-signed by the bot"), "{log_3}");
    assert!(log_3.contains("put it back with the same `encryption.pickle_key`"));

    // A changed pickle key: the store cannot be opened, the self-check says
    // what to do, and the doctor keeps running for unencrypted rooms.
    let pickle_key = yaml_value(&doctor_config, "pickle_key");
    let mut fresh = fresh;
    assert_eq!(fresh.terminate(), Some(0));
    edit(
        &doctor_config,
        &pickle_key,
        "a-different-pickle-key-0123456789",
    );
    let locked_out = start_doctor(&doctor_config, &root.join("doctor-4.log"));
    let log_4 = locked_out.log_text();
    assert!(
        log_4.contains("the bot has no device for encrypted rooms")
            && log_4.contains("put the old one back"),
        "{log_4}"
    );

    // No secret anywhere: logs, what the client saw, the packet.
    let secrets = [
        first_token,
        fresh_token,
        yaml_value(&doctor_config, "as_token"),
        yaml_value(&doctor_config, "hs_token"),
        pickle_key.clone(),
        "a-different-pickle-key-0123456789".to_owned(),
        yaml_value(&bridge.registration(), "as_token"),
        bridge_hs_token,
    ];
    for secret in &secrets {
        assert!(secret.len() > 8);
        for (name, text) in [
            ("doctor log", &log),
            ("doctor log after restart", &log_2),
            ("client output", &first_out),
            ("client output after restart", &again_out),
            ("doctor log with a new store", &log_3),
            ("client output with a new store", &lost_out),
            ("doctor log with another pickle key", &log_4),
            ("packet", &packet_text),
        ] {
            assert!(
                !text.contains(secret.as_str()),
                "a secret leaked into the {name}"
            );
        }
    }
}
