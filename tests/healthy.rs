//! No false alarms: real setups that are healthy the way admins really set
//! them up report no `fail`. Real Synapse, a running mautrix-telegram under
//! an id that is not its software's name and loaded from an identical copy,
//! a second mautrix-telegram that never started, a running heisenbridge
//! whose registration lives in the homeserver's folder, and the doctor
//! whose registration was written elsewhere with `generate-registration -r`.
//! Then one overlap no sample ID hits, found with a witness.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::*;

fn check(doctor_config: &Path) -> Value {
    let out = doctor(&[
        "check",
        "-c",
        doctor_config.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn failures(report: &Value) -> Vec<String> {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "fail" || r["status"] == "error")
        .map(|r| {
            format!(
                "{} {}: {} / {}",
                r["target"], r["check"], r["title"], r["detail"]
            )
        })
        .collect()
}

fn finding<'a>(report: &'a Value, target: &str, check: &str) -> (&'a str, &'a str) {
    let r = result(report, target, check);
    (r["status"].as_str().unwrap(), r["title"].as_str().unwrap())
}

struct Setup {
    _dir: tempfile::TempDir,
    root: PathBuf,
    doctor_config: PathBuf,
    hs_seen_by_doctor: PathBuf,
    _synapse: Synapse,
    _processes: Vec<Process>,
}

/// Everything the module comment describes, running.
fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    let appservices = root.join("hs").join("appservices");
    std::fs::create_dir_all(&appservices).unwrap();

    let mut main = TelegramBridge::prepare(&root.join("tg-main"), HOMESERVER_PLACEHOLDER);
    main.reconfigure(&[("id: telegram\n", "id: tg-main\n")]);
    let copy = appservices.join("telegram.yaml");
    std::fs::copy(main.registration(), &copy).unwrap();
    let spare = TelegramBridge::prepare(&root.join("tg-spare"), HOMESERVER_PLACEHOLDER);
    spare.reconfigure(&[
        ("id: telegram\n", "id: tg-spare\n"),
        ("bot_username: telegrambot", "bot_username: sparebot"),
        ("telegram_{userid}", "spare_{userid}"),
        ("telegram_{groupname}", "spare_{groupname}"),
    ]);
    let mut heisenbridge = Heisenbridge::generate(&appservices.join("heisenbridge.yaml"));

    let (doctor_config, _) = write_doctor_config(
        &root,
        HOMESERVER_PLACEHOLDER,
        &format!(
            "{}  - registration: {}\n",
            bridges_yaml(&[
                (&main.config(), &main.registration(), &[]),
                (&spare.config(), &spare.registration(), &[]),
            ]),
            heisenbridge.registration.display()
        ),
    );
    edit(
        &doctor_config,
        "  registration: doctor-registration.yaml\n",
        "",
    );
    let doctor_registration = appservices.join("doctor.yaml");
    let out = doctor(&[
        "generate-registration",
        "-c",
        doctor_config.to_str().unwrap(),
        "-r",
        doctor_registration.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("recorded the registration's path"),
        "generate-registration -r records where it wrote"
    );

    let synapse = Synapse::start(
        &root.join("hs"),
        &[
            &doctor_registration,
            &copy,
            &spare.registration(),
            &heisenbridge.registration,
        ],
    );
    for config in [&doctor_config, &main.config(), &spare.config()] {
        edit(config, HOMESERVER_PLACEHOLDER, &synapse.url());
    }
    // The doctor reads a copy of homeserver.yaml, so a fault can be planted in it.
    let hs_seen_by_doctor = root.join("homeserver-seen-by-doctor.yaml");
    std::fs::copy(&synapse.config_path, &hs_seen_by_doctor).unwrap();
    edit(
        &doctor_config,
        "homeserver:\n",
        &format!("homeserver:\n  config: {}\n", hs_seen_by_doctor.display()),
    );

    main.start();
    heisenbridge.start(&synapse, &root.join("heisenbridge.log"));
    let mut command = Command::new(doctor_bin());
    command.arg("run").arg("-c").arg(&doctor_config);
    let mut doctor_process = spawn_logged(command, &root.join("doctor.log"));
    doctor_process.wait_for_log("self-check passed", Duration::from_secs(60));
    let processes = vec![
        main.process.take().unwrap(),
        heisenbridge.process.take().unwrap(),
        doctor_process,
    ];
    Setup {
        _dir: dir,
        root,
        doctor_config,
        hs_seen_by_doctor,
        _synapse: synapse,
        _processes: processes,
    }
}

#[test]
fn healthy_real_setups_report_no_failure() {
    let setup = setup();
    let report = check(&setup.doctor_config);
    assert!(
        failures(&report).is_empty(),
        "false alarms: {:#?}",
        failures(&report)
    );

    let targets = target_ids(&report);
    assert_eq!(targets, ["doctor", "tg-main", "tg-spare", "heisenbridge"]);

    // Loaded from an identical copy under an id that is not the software's
    // name; never started (a warning that says so, no database fault);
    // heisenbridge, registration only; the doctor's registration in the
    // homeserver's folder, recorded by generate.
    for (target, check, expected) in [
        ("tg-main", "registration.duplicate_id", "pass"),
        ("tg-main", "database.foreign_tables", "pass"),
        ("tg-main", "ping.connection_failed", "pass"),
        ("tg-spare", "database.not_created", "warn"),
        ("tg-spare", "database.unreachable", "skip"),
        ("heisenbridge", "registration.not_loaded", "pass"),
        ("heisenbridge", "ping.connection_failed", "pass"),
        ("heisenbridge", "namespace.exclusive_conflict", "pass"),
        ("doctor", "registration.not_loaded", "pass"),
        ("doctor", "config.unreadable", "pass"),
    ] {
        assert_eq!(
            finding(&report, target, check).0,
            expected,
            "{target} {check}"
        );
    }
    let (state, title) = finding(&report, "tg-main", "registration.not_loaded");
    assert!(
        state == "pass" && title.contains("identical copy"),
        "{title}"
    );
    let (state, title) = finding(&report, "tg-spare", "ping.connection_failed");
    assert!(
        state == "warn" && title.contains("has not started"),
        "{title}"
    );

    // Older configs do not name it: the doctor finds it among the homeserver's.
    let text = std::fs::read_to_string(&setup.doctor_config).unwrap();
    let unnamed: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("registration: '"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(unnamed, text);
    std::fs::write(&setup.doctor_config, unnamed).unwrap();
    assert!(!setup.root.join("registration.yaml").exists());
    let report = check(&setup.doctor_config);
    assert!(
        failures(&report).is_empty(),
        "unnamed registration: {:#?}",
        failures(&report)
    );
    assert_eq!(
        finding(&report, "doctor", "registration.not_loaded").0,
        "pass"
    );
    assert_eq!(
        report["diagnoses"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["status"] == "fail")
            .count(),
        0
    );

    // An exclusive namespace that overlaps tg-main's where no sample ID of
    // either bridge (digits, names, bots) falls: found with a witness.
    let other = setup.root.join("hs").join("appservices").join("other.yaml");
    std::fs::write(
        &other,
        "id: other\nurl: null\nas_token: other-as\nhs_token: other-hs\nsender_localpart: otherbot\nrate_limited: false\nnamespaces:\n  users:\n    - regex: '@telegram_zz[a-z]*'\n      exclusive: true\n",
    )
    .unwrap();
    edit(
        &setup.hs_seen_by_doctor,
        "app_service_config_files: [",
        &format!("app_service_config_files: ['{}', ", other.display()),
    );
    let report = check(&setup.doctor_config);
    let conflict = result(&report, "tg-main", "namespace.exclusive_conflict");
    assert_eq!(conflict["status"], "fail", "{conflict:#}");
    assert!(
        conflict["detail"]
            .as_str()
            .unwrap()
            .contains("@telegram_zz:doctor.test is claimed by both"),
        "{conflict:#}"
    );
    assert_eq!(
        result(&report, "heisenbridge", "namespace.exclusive_conflict")["status"],
        "pass"
    );
}
