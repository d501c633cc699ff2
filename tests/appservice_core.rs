//! The doctor against a real Synapse: registration, self-check, the
//! appservice API as the homeserver and a stranger call it, restarts.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::json;
use support::*;

/// The answer is a Matrix error with this status and errcode.
fn assert_error(answer: &blocking::Sent, status: u16, errcode: &str) {
    assert_eq!(
        (answer.status, answer.body["errcode"].as_str()),
        (status, Some(errcode)),
        "{}",
        answer.body
    );
}

fn start_doctor(config: &Path, log: &Path) -> Process {
    let mut command = Command::new(doctor_bin());
    command.arg("run").arg("-c").arg(config);
    spawn_logged(command, log)
}

#[test]
fn doctor_registers_self_checks_and_serves_the_appservice_api() {
    let dir = tempfile::tempdir().unwrap();
    let (config, port) = write_doctor_config(dir.path(), "http://127.0.0.1:1", "");
    let registration = dir.path().join("doctor-registration.yaml");
    let out = doctor(&[
        "generate-registration",
        "-c",
        config.to_str().unwrap(),
        "-r",
        registration.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let synapse = Synapse::start(&dir.path().join("hs"), &[&registration]);
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("http://127.0.0.1:1", &synapse.url());
    std::fs::write(&config, text).unwrap();
    let as_token = yaml_value(&config, "as_token");
    let hs_token = yaml_value(&config, "hs_token");

    let log = dir.path().join("doctor-1.log");
    let mut doctor = start_doctor(&config, &log);
    doctor.wait_for_log("self-check passed", Duration::from_secs(60));
    let startup = doctor.log_text();
    assert!(
        startup.contains("registering it"),
        "the bot should have been registered on first start:\n{startup}"
    );
    assert!(
        startup.contains("the homeserver reached the doctor in"),
        "{startup}"
    );
    // End to end: an event the bot sends comes back in a transaction.
    doctor.wait_for_log("check=delivery.stalled", Duration::from_secs(30));
    assert!(
        doctor
            .log_text()
            .contains("ok: an event the bot sent came back in a transaction"),
        "{}",
        doctor.log_text()
    );

    let http = blocking::client();
    let ping = homeserver_ping(&synapse, &as_token);
    assert_eq!(ping.status, 200, "{}", ping.body);
    assert!(ping.body["duration_ms"].is_u64(), "{}", ping.body);

    let whoami = http
        .get(&format!(
            "{}/_matrix/client/v3/account/whoami?user_id=@doctor:{SERVER_NAME}",
            synapse.url()
        ))
        .bearer(&as_token)
        .send()
        .unwrap();
    assert_eq!(whoami.body["user_id"], format!("@doctor:{SERVER_NAME}"));

    let base = format!("http://127.0.0.1:{port}");
    let txn = |id: &str| format!("{base}/_matrix/app/v1/transactions/{id}");
    let events = json!({"events": [{"type": "m.room.message", "room_id": "!r:doctor.test", "content": {"body": "hi"}}]});
    let missing = http.put(&txn("t1")).json(&events).send().unwrap();
    assert_error(&missing, 401, "M_UNAUTHORIZED");
    let wrong = http
        .put(&txn("t1"))
        .bearer("not-the-token")
        .json(&events)
        .send()
        .unwrap();
    assert_error(&wrong, 403, "M_FORBIDDEN");
    assert_eq!(
        http.put(&txn("t1"))
            .bearer(&hs_token)
            .json(&events)
            .send()
            .unwrap()
            .status,
        200
    );
    assert_eq!(
        http.put(&txn("t1"))
            .bearer(&hs_token)
            .json(&events)
            .send()
            .unwrap()
            .status,
        200
    );
    let legacy = http
        .put(&format!("{}?access_token={hs_token}", txn("t-legacy")))
        .json(&json!({}))
        .send()
        .unwrap();
    assert_eq!(legacy.status, 200);
    let malformed = http
        .put(&txn("t2"))
        .bearer(&hs_token)
        .body(b"{not json".to_vec())
        .send()
        .unwrap();
    assert_error(&malformed, 400, "M_NOT_JSON");
    let oversize = http
        .put(&txn("t3"))
        .bearer(&hs_token)
        .body(vec![b' '; 8192])
        .send()
        .unwrap();
    assert_error(&oversize, 413, "M_TOO_LARGE");
    let bot = http
        .get(&format!(
            "{base}/_matrix/app/v1/users/@doctor:{SERVER_NAME}"
        ))
        .bearer(&hs_token)
        .send()
        .unwrap();
    assert_eq!(bot.status, 200);
    let other = http
        .get(&format!(
            "{base}/_matrix/app/v1/users/@someone:{SERVER_NAME}"
        ))
        .bearer(&hs_token)
        .send()
        .unwrap();
    assert_error(&other, 404, "M_NOT_FOUND");
    let alias = http
        .get(&format!("{base}/_matrix/app/v1/rooms/%23a:{SERVER_NAME}"))
        .bearer(&hs_token)
        .send()
        .unwrap();
    assert_eq!(alias.status, 404);
    let unknown = http
        .get(&format!("{base}/_matrix/app/v1/thirdparty/protocol/x"))
        .bearer(&hs_token)
        .send()
        .unwrap();
    assert_error(&unknown, 404, "M_UNRECOGNIZED");

    assert_eq!(
        doctor.terminate(),
        Some(0),
        "graceful shutdown on SIGTERM:\n{}",
        doctor.log_text()
    );
    let first_run = doctor.log_text();
    let received = |txn: &str| {
        first_run
            .lines()
            .filter(|l| {
                l.contains("transaction received") && l.contains(&format!("txn_id=\"{txn}\""))
            })
            .count()
    };
    assert_eq!(
        (received("t1"), received("t-legacy")),
        (1, 1),
        "t1 once and t-legacy:\n{first_run}"
    );
    assert!(first_run.contains("repeated transaction ignored"));
    assert_eq!(
        first_run.matches("legacy access_token").count(),
        1,
        "one warning for legacy auth"
    );

    // After a restart the repeated id is still known.
    let log2 = dir.path().join("doctor-2.log");
    let mut doctor = start_doctor(&config, &log2);
    doctor.wait_for_log("self-check passed", Duration::from_secs(60));
    assert!(
        !doctor.log_text().contains("registering it"),
        "the bot exists now"
    );
    assert_eq!(
        http.put(&txn("t1"))
            .bearer(&hs_token)
            .json(&events)
            .send()
            .unwrap()
            .status,
        200
    );
    doctor.wait_for_log("repeated transaction ignored", Duration::from_secs(10));
    assert_eq!(doctor.terminate(), Some(0));
    assert!(
        !doctor
            .log_text()
            .lines()
            .any(|l| l.contains("transaction received") && l.contains("txn_id=\"t1\"")),
        "t1 must not be processed again"
    );

    for text in [first_run, doctor.log_text(), startup] {
        assert!(
            !text.contains(&as_token) && !text.contains(&hs_token),
            "a token leaked into the log"
        );
    }
}

#[test]
fn transactions_held_back_and_media_not_served_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let config = doctor_config_generated(dir.path(), HOMESERVER_PLACEHOLDER, "");
    // The main process leaves transactions to a worker that does not run:
    // the ping still works, nothing is delivered. And it serves no media
    // (as when a media worker is not routed).
    let synapse = Synapse::start_with(
        &dir.path().join("hs"),
        &[&dir.path().join("doctor-registration.yaml")],
        "notify_appservices_from_worker: appservice1\nenable_media_repo: false\n",
    );
    edit(&config, HOMESERVER_PLACEHOLDER, &synapse.url());
    edit(
        &config,
        "homeserver:\n",
        &format!("homeserver:\n  config: {}\n", synapse.config_path.display()),
    );
    let mut doctor = start_doctor(&config, &dir.path().join("doctor.log"));
    doctor.wait_for_log("self-check passed", Duration::from_secs(60));
    doctor.wait_for_log("check=delivery.stalled", Duration::from_secs(40));
    let log = doctor.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("check=delivery.stalled"))
        .unwrap();
    assert!(
        line.contains("does not deliver events to the doctor")
            && line.contains("notify_appservices_from_worker"),
        "{line}"
    );
    let report = json_check(&config);
    assert_eq!(
        result(&report, "doctor", "delivery.worker_missing")["status"],
        "warn",
        "{report:#}"
    );
    let media = result(&report, "doctor", "homeserver.media_unavailable");
    assert_eq!(media["status"], "fail", "{media:#}");
    assert!(
        media["detail"].as_str().unwrap().contains("404"),
        "{media:#}"
    );
}

fn json_check(config: &Path) -> serde_json::Value {
    let out = doctor(&["check", "-c", config.to_str().unwrap(), "--format", "json"]);
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn wrong_as_token_stops_run_naming_the_token_and_registration() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = write_doctor_config(dir.path(), "http://127.0.0.1:1", "");
    let registration = dir.path().join("doctor-registration.yaml");
    assert!(
        doctor(&["generate-registration", "-c", config.to_str().unwrap()])
            .status
            .success()
    );
    let synapse = Synapse::start(&dir.path().join("hs"), &[&registration]);
    let good = yaml_value(&config, "as_token");
    let wrong = "canary-wrong-as-token-0123456789";
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("http://127.0.0.1:1", &synapse.url())
        .replace(&good, wrong);
    std::fs::write(&config, text).unwrap();

    let mut doctor = start_doctor(&config, &dir.path().join("doctor.log"));
    assert_eq!(
        doctor.wait(Duration::from_secs(60)),
        Some(4),
        "{}",
        doctor.log_text()
    );
    let log = doctor.log_text();
    assert!(log.contains("as_token not accepted"), "{log}");
    assert!(log.contains("tokens.as_token_rejected"), "{log}");
    assert!(
        log.contains("doctor-registration.yaml"),
        "the registration is named:\n{log}"
    );
    assert!(
        log.contains("troubleshooting.html#the-as_token-was-not-accepted"),
        "{log}"
    );
    assert!(
        !log.contains(wrong) && !log.contains(&good),
        "a token leaked:\n{log}"
    );
}

#[test]
fn placeholder_tokens_tell_to_generate_the_registration() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = write_doctor_config(dir.path(), "http://127.0.0.1:1", "");
    let out = doctor(&["run", "-c", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bridge-doctor generate-registration"),
        "{stderr}"
    );
}

#[test]
fn broken_config_names_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(&path, "homeserver:\n  address: http://x\n  domain: [a]\n").unwrap();
    let out = doctor(&["run", "-c", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.yaml:3:11: `homeserver.domain`: must be a string"),
        "{stderr}"
    );
    assert!(
        stderr.contains("`appservice`: section is missing"),
        "{stderr}"
    );
    std::fs::write(&path, "homeserver: [\n").unwrap();
    let stderr = String::from_utf8_lossy(&doctor(&["run", "-c", path.to_str().unwrap()]).stderr)
        .into_owned();
    assert!(
        stderr.contains("bad.yaml:") && stderr.contains("not valid YAML"),
        "{stderr}"
    );
    let stderr =
        String::from_utf8_lossy(&doctor(&["run", "-c", "/nonexistent.yaml"]).stderr).into_owned();
    assert!(
        stderr.contains("/nonexistent.yaml: cannot read the file"),
        "{stderr}"
    );
}
