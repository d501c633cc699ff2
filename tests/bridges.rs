//! `bridge-doctor check` against a real Synapse with a real mautrix-telegram,
//! one planted fault at a time, each named by its catalogue id.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::*;

struct Setup {
    _dir: tempfile::TempDir,
    root: PathBuf,
    synapse: Synapse,
    bridge: TelegramBridge,
    doctor_config: PathBuf,
    _doctor: Process,
    secrets: Vec<String>,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    let placeholder = "http://127.0.0.1:1";
    let mut bridge = TelegramBridge::prepare(&root.join("telegram"), placeholder);
    let doctor_config = doctor_config_generated(&root, placeholder, "");
    let doctor_registration = root.join("doctor-registration.yaml");
    let synapse = Synapse::start(
        &root.join("hs"),
        &[&doctor_registration, &bridge.registration()],
    );
    edit(&bridge.config(), placeholder, &synapse.url());
    edit(&doctor_config, placeholder, &synapse.url());
    let extra = format!(
        "bridges:\n  - config: {}\n    registration: {}\n    logs: [{}]\n",
        bridge.config().display(),
        bridge.registration().display(),
        bridge.dir.join("mautrix-telegram.log").display()
    );
    // The doctor reads a copy of homeserver.yaml, so faults can be planted in
    // it without touching the running Synapse's own file.
    let hs_copy = root.join("homeserver-seen-by-doctor.yaml");
    std::fs::copy(&synapse.config_path, &hs_copy).unwrap();
    let text = std::fs::read_to_string(&doctor_config).unwrap().replace(
        "homeserver:\n",
        &format!(
            "homeserver:\n  config: {}\n  log: {}\n",
            hs_copy.display(),
            synapse.log_path().display()
        ),
    );
    std::fs::write(&doctor_config, format!("{text}{extra}")).unwrap();
    bridge.start();
    let mut command = Command::new(doctor_bin());
    command.arg("run").arg("-c").arg(&doctor_config);
    let mut doctor_process = spawn_logged(command, &root.join("doctor.log"));
    doctor_process.wait_for_log("self-check passed", Duration::from_secs(60));
    let secrets = vec![
        yaml_value(&bridge.registration(), "as_token"),
        yaml_value(&bridge.registration(), "hs_token"),
        yaml_value(&doctor_config, "as_token"),
        yaml_value(&doctor_config, "hs_token"),
        format!("macaroon-canary-{}", synapse.port),
        "d524b414d21f4d37f08684c1df41ac9c".to_owned(),
    ];
    Setup {
        _dir: dir,
        root,
        synapse,
        bridge,
        doctor_config,
        _doctor: doctor_process,
        secrets,
    }
}

impl Setup {
    fn check(&self, extra: &[&str]) -> (Value, i32) {
        let mut args = vec![
            "check",
            "-c",
            self.doctor_config.to_str().unwrap(),
            "--format",
            "json",
        ];
        args.extend(extra);
        let out = doctor(&args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        for secret in &self.secrets {
            assert!(
                !stdout.contains(secret.as_str()) && !stderr.contains(secret.as_str()),
                "a secret value leaked into the output"
            );
        }
        let report = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}\n{stderr}"));
        (report, out.status.code().unwrap_or(-1))
    }
}

/// Plants a fault with `plant`, asserts `check` names it with `expected`
/// status for the telegram target, then undoes it.
fn expect_fault(
    setup: &Setup,
    what: &str,
    file: &Path,
    from: &str,
    to: &str,
    check: &str,
    expected: &str,
) {
    let original = edit(file, from, to);
    let planted = std::fs::read_to_string(file).unwrap();
    let (report, code) = setup.check(&[]);
    std::fs::write(file, original).unwrap();
    let got = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["target"] == "telegram" && r["check"] == check)
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        got["status"], expected,
        "{what}: {got:#}\nplanted file:\n{planted}"
    );
    if expected == "fail" {
        assert_eq!(code, 1, "{what}: exit code");
        let finding = report["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["target"] == "telegram" && r["check"] == check)
            .unwrap();
        assert!(
            !finding["fix"].as_array().unwrap().is_empty(),
            "{what}: a fail carries fix steps"
        );
    }
}

#[test]
fn real_bridge_healthy_then_one_planted_fault_at_a_time() {
    let mut setup = setup();
    let (report, code) = setup.check(&[]);
    assert!(
        failures(&report, "telegram").is_empty(),
        "healthy bridge: {:#?}",
        failures(&report, "telegram")
    );
    assert!(
        failures(&report, "doctor").is_empty(),
        "the doctor: {:#?}",
        failures(&report, "doctor")
    );
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["homeserver"]["software"], "Synapse");
    assert_eq!(
        status(&report, "telegram", "ping.connection_failed"),
        "pass"
    );
    assert_eq!(
        status(&report, "telegram", "database.foreign_tables"),
        "pass"
    );
    assert_eq!(
        status(&report, "telegram", "ping.backoff"),
        "pass",
        "a real, healthy homeserver.log"
    );

    let config = setup.bridge.config();
    let registration = setup.bridge.registration();
    let hs = setup.root.join("homeserver-seen-by-doctor.yaml");
    let as_token = yaml_value(&registration, "as_token");
    expect_fault(
        &setup,
        "tokens mismatch",
        &config,
        &format!("as_token: {as_token}"),
        "as_token: somethingelse",
        "tokens.mismatch",
        "fail",
    );
    expect_fault(
        &setup,
        "as_token unknown",
        &config,
        &format!("as_token: {as_token}"),
        "as_token: somethingelse",
        "tokens.as_token_rejected",
        "fail",
    );
    expect_fault(
        &setup,
        "registration not loaded",
        &hs,
        &format!("'{}'", registration.display()),
        "'/nonexistent.yaml'",
        "registration.not_loaded",
        "fail",
    );
    expect_fault(
        &setup,
        "domain mismatch",
        &config,
        "domain: doctor.test",
        "domain: other.test",
        "domain.mismatch",
        "fail",
    );
    expect_fault(
        &setup,
        "bot not covered",
        &config,
        "bot_username: telegrambot",
        "bot_username: tgbot",
        "namespace.bot_not_covered",
        "fail",
    );
    expect_fault(
        &setup,
        "ghost regex too narrow",
        &registration,
        "'@telegram_.*:doctor\\.test'",
        "'@telegram_[a-z]+:doctor\\.test'",
        "namespace.ghosts_not_covered",
        "fail",
    );
    expect_fault(
        &setup,
        "invalid regex",
        &registration,
        "'@telegram_.*:doctor\\.test'",
        "'@telegram_[.*:doctor\\.test'",
        "namespace.invalid_regex",
        "fail",
    );
    expect_fault(
        &setup,
        "ephemeral flags missing",
        &registration,
        "de.sorunome.msc2409.push_ephemeral: true\nreceive_ephemeral: true",
        "",
        "ephemeral.registration_disabled",
        "fail",
    );
    expect_fault(
        &setup,
        "url mismatch",
        &registration,
        &format!("url: http://127.0.0.1:{}", setup.bridge.port),
        "url: http://127.0.0.1:1",
        "registration.url_mismatch",
        "fail",
    );
    expect_fault(
        &setup,
        "placeholder",
        &config,
        "domain: doctor.test",
        "domain: example.com",
        "config.not_configured",
        "fail",
    );
    let allow = "enabled\n        allow: false";
    let original = edit(&config, allow, "enabled\n        allow: true");
    expect_fault(
        &setup,
        "encryption appservice incomplete",
        &config,
        "        appservice: false",
        "        appservice: true",
        "encryption.appservice_mode_incomplete",
        "fail",
    );
    std::fs::write(&config, original).unwrap();
    expect_fault(
        &setup,
        "MAS without msc4190",
        &hs,
        "enable_registration: false",
        "enable_registration: false\nmatrix_authentication_service:\n  enabled: true",
        "encryption.msc4190_required",
        "pass",
    );
    expect_fault(
        &setup,
        "foreign tables",
        &config,
        "database: sqlite:mautrix-telegram.db",
        &format!(
            "database: sqlite:{}",
            setup.synapse.dir.join("homeserver.db").display()
        ),
        "database.foreign_tables",
        "fail",
    );

    // MAS with encryption allowed but without msc4190.
    let original = edit(&config, allow, "enabled\n        allow: true");
    expect_fault(
        &setup,
        "MAS without msc4190",
        &hs,
        "enable_registration: false",
        "enable_registration: false\nmatrix_authentication_service:\n  enabled: true",
        "encryption.msc4190_required",
        "fail",
    );
    std::fs::write(&config, original).unwrap();

    // Another registration, loaded by the homeserver, with the same as_token and namespace.
    let copy = setup.root.join("copy-registration.yaml");
    std::fs::write(
        &copy,
        std::fs::read_to_string(&registration)
            .unwrap()
            .replace("id: telegram", "id: telegram2"),
    )
    .unwrap();
    let list = format!("'{}'", registration.display());
    expect_fault(
        &setup,
        "duplicate as_token",
        &hs,
        &list,
        &format!("{list}, '{}'", copy.display()),
        "registration.duplicate_as_token",
        "fail",
    );
    expect_fault(
        &setup,
        "exclusive conflict",
        &hs,
        &list,
        &format!("{list}, '{}'", copy.display()),
        "namespace.exclusive_conflict",
        "fail",
    );

    beyond_the_faq_faults(&setup);

    // The bridge runs with an hs_token the registration does not have.
    setup.bridge.stop();
    let hs_token = yaml_value(&config, "hs_token");
    let original = edit(
        &config,
        &format!("hs_token: {hs_token}"),
        "hs_token: canary-wrong-hs-token",
    );
    setup.bridge.start();
    let (report, _) = setup.check(&[]);
    assert_eq!(
        status(&report, "telegram", "tokens.hs_token_rejected"),
        "fail",
        "{report:#}"
    );
    assert_eq!(
        status(&report, "telegram", "logs.hs_token_rejected"),
        "fail",
        "the running bridge logs the refused hs_token"
    );
    // One cause, one diagnosis: the config, the probe and the log together.
    let diagnoses: Vec<&Value> = report["diagnoses"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["target"] == "telegram")
        .collect();
    assert_eq!(diagnoses.len(), 1, "{diagnoses:#?}");
    let seen: Vec<&str> = diagnoses[0]["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["check"].as_str().unwrap())
        .collect();
    for check in [
        "tokens.mismatch",
        "tokens.hs_token_rejected",
        "logs.hs_token_rejected",
    ] {
        assert!(seen.contains(&check), "{check} not in {seen:?}");
    }
    assert_eq!(seen[0], "tokens.mismatch", "the cause leads");
    assert_eq!(diagnoses[0]["cause"], "hs_token_refused");
    setup.bridge.stop();
    std::fs::write(&config, original).unwrap();

    // The bridge is down: the homeserver's ping is refused.
    let (report, code) = setup.check(&[]);
    assert_eq!(
        status(&report, "telegram", "ping.connection_failed"),
        "fail",
        "{report:#}"
    );
    assert_eq!(code, 1);

    // An event for the stopped bridge (a user invites its bot): the
    // homeserver fails to deliver it, marks the appservice down and keeps
    // the transaction, which its database shows.
    register_user(&setup.synapse, "alice", false);
    let token = login(&setup.synapse, "alice");
    let created = blocking::client()
        .post(&format!(
            "{}/_matrix/client/v3/createRoom",
            setup.synapse.url()
        ))
        .bearer(&token)
        .json(&serde_json::json!({"invite": ["@telegrambot:doctor.test"]}))
        .send()
        .unwrap();
    assert_eq!(created.status, 200, "{:?}", created.body);
    let mut stalled = Value::Null;
    for _ in 0..50 {
        let (report, _) = setup.check(&["--bridge", "telegram"]);
        stalled = result(&report, "telegram", "delivery.stalled").clone();
        if stalled["status"] == "fail" {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(stalled["status"], "fail", "{stalled:#}");
    assert!(
        stalled["detail"]
            .as_str()
            .unwrap()
            .contains("marks `telegram` as down"),
        "{stalled:#}"
    );

    // Offline: no probe, live checks skip, file checks still run.
    let (report, _) = setup.check(&["--offline"]);
    assert_eq!(
        status(&report, "telegram", "ping.connection_failed"),
        "skip"
    );
    assert_eq!(status(&report, "telegram", "tokens.mismatch"), "pass");
}

/// The catalogue's "Beyond the FAQ" faults that files show, planted one at a
/// time on the real setup.
fn beyond_the_faq_faults(setup: &Setup) {
    let config = setup.bridge.config();
    let registration = setup.bridge.registration();
    let hs = setup.root.join("homeserver-seen-by-doctor.yaml");
    expect_fault(
        setup,
        "rate limited",
        &registration,
        "rate_limited: false\n",
        "",
        "registration.rate_limited",
        "warn",
    );
    let url = format!("url: http://127.0.0.1:{}", setup.bridge.port);
    expect_fault(
        setup,
        "url without scheme",
        &registration,
        &url,
        &format!("url: 127.0.0.1:{}", setup.bridge.port),
        "registration.url_invalid",
        "fail",
    );
    let list = format!("'{}'", registration.display());
    expect_fault(
        setup,
        "config given as registration",
        &hs,
        &list,
        &format!("'{}'", config.display()),
        "registration.not_a_registration",
        "fail",
    );
    expect_fault(
        setup,
        "ip whitelist",
        &registration,
        "rate_limited: false\n",
        "rate_limited: false\nip_range_whitelist: ['10.0.0.0/8']\n",
        "homeserver.ip_whitelist",
        "fail",
    );
    expect_fault(
        setup,
        "double puppet secret",
        &config,
        "        example.com: foobar",
        "        doctor.test: foobar",
        "doublepuppet.secret_format",
        "fail",
    );

    let original = edit(
        &config,
        "        doctor.test: full",
        "        other.test: full",
    );
    expect_fault(
        setup,
        "no local users",
        &config,
        "'@admin:doctor.test': admin",
        "'@admin:other.test': admin",
        "permissions.no_local_users",
        "fail",
    );
    std::fs::write(&config, original).unwrap();

    let original = edit(
        &config,
        "enabled\n        allow: false",
        "enabled\n        allow: true",
    );
    expect_fault(
        setup,
        "msc4190 only in the registration",
        &registration,
        "rate_limited: false\n",
        "rate_limited: false\nio.element.msc4190: true\n",
        "registration.msc4190_mismatch",
        "fail",
    );
    let sender = yaml_value(&registration, "sender_localpart");
    expect_fault(
        setup,
        "sender is the bot",
        &registration,
        &format!("sender_localpart: {sender}"),
        "sender_localpart: telegrambot",
        "namespace.sender_is_bot",
        "fail",
    );
    std::fs::write(&config, original).unwrap();

    // The worker named for transactions: unknown without worker configs, a
    // fault when the worker configs beside the homeserver's do not define it.
    let worker = "enable_registration: false\nnotify_appservices_from_worker: appservice1\n";
    expect_fault(
        setup,
        "worker not found",
        &hs,
        "enable_registration: false\n",
        worker,
        "delivery.worker_missing",
        "warn",
    );
    let workers = setup.root.join("workers");
    std::fs::create_dir_all(&workers).unwrap();
    std::fs::write(
        workers.join("federation.yaml"),
        "worker_app: synapse.app.generic_worker\nworker_name: federation_sender1\n",
    )
    .unwrap();
    expect_fault(
        setup,
        "worker missing",
        &hs,
        "enable_registration: false\n",
        worker,
        "delivery.worker_missing",
        "fail",
    );
    std::fs::write(
        workers.join("appservice.yaml"),
        "worker_app: synapse.app.generic_worker\nworker_name: appservice1\n",
    )
    .unwrap();
    expect_fault(
        setup,
        "worker defined",
        &hs,
        "enable_registration: false\n",
        worker,
        "delivery.worker_missing",
        "pass",
    );
}
