//! Checking a homeserver's bridges with no doctor set up: `check
//! --homeserver` and `packet --homeserver`, run from an empty folder, on a
//! real Synapse loading three real bridges:
//! - mautrix-telegram `tg-a`, running, its config beside its registration,
//!   with a planted fault: its config's hs_token is not the registration's;
//! - mautrix-telegram `tg-b`, its registration copied into the homeserver's
//!   folder with a planted fault (another port than the bridge listens on),
//!   its config only reachable through the folder a docker-compose file
//!   beside homeserver.yaml mounts;
//! - heisenbridge, running and healthy, which has no config at all.

mod support;

use serde_json::Value;
use support::*;

fn target<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id)
        .unwrap_or_else(|| panic!("no target {id}: {report}"))
}

#[test]
fn check_and_packet_find_every_bridge_config_and_name_each_fault() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let hs_dir = root.join("synapse");
    std::fs::create_dir_all(&hs_dir).unwrap();

    let mut a = TelegramBridge::prepare(&root.join("tg-a"), HOMESERVER_PLACEHOLDER);
    a.reconfigure(&[("id: telegram\n", "id: tg-a\n")]);
    let b = TelegramBridge::prepare(&root.join("bridges/tg-b"), HOMESERVER_PLACEHOLDER);
    b.reconfigure(&[
        ("id: telegram\n", "id: tg-b\n"),
        ("bot_username: telegrambot", "bot_username: bbot"),
        ("telegram_{userid}", "b_{userid}"),
        ("telegram_{groupname}", "b_{groupname}"),
    ]);
    let b_copy = hs_dir.join("tg-b-registration.yaml");
    let registration = std::fs::read_to_string(b.registration()).unwrap();
    let elsewhere = format!("http://127.0.0.1:{}", free_port());
    std::fs::write(
        &b_copy,
        registration.replace(&format!("http://127.0.0.1:{}", b.port), &elsewhere),
    )
    .unwrap();
    std::fs::write(
        hs_dir.join("docker-compose.yml"),
        "services:\n  telegram-b:\n    image: dock.mau.dev/mautrix/telegram\n    volumes:\n      - ../bridges/tg-b:/data\n",
    )
    .unwrap();
    let mut heisenbridge = Heisenbridge::generate(&hs_dir.join("heisenbridge.yaml"));

    let synapse = Synapse::start(
        &hs_dir,
        &[&a.registration(), &b_copy, &heisenbridge.registration],
    );
    for config in [a.config(), b.config()] {
        edit(&config, HOMESERVER_PLACEHOLDER, &synapse.url());
    }
    let planted_hs_token = "planted-wrong-hs-token";
    let hs_token = yaml_value(&a.registration(), "hs_token");
    edit(&a.config(), &hs_token, planted_hs_token);
    a.start();
    heisenbridge.start(&synapse, &root.join("heisenbridge.log"));

    let empty = root.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let hs = synapse.config_path.to_str().unwrap();
    let out = doctor_in(&empty, &["check", "--homeserver", hs, "--format", "json"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(
        out.status.code(),
        Some(1),
        "a planted fault fails the check"
    );
    assert_eq!(report["homeserver"]["address"], synapse.url());
    let ids = target_ids(&report);
    assert_eq!(ids, ["tg-a", "tg-b", "heisenbridge"], "no doctor target");

    // Each config was found, and the report says where.
    let tg_a = target(&report, "tg-a");
    assert_eq!(tg_a["config"], a.config().display().to_string());
    assert_eq!(tg_a["config_found"], "found next to its registration");
    let tg_b = target(&report, "tg-b");
    let b_folder = b.dir.canonicalize().unwrap();
    assert_eq!(
        tg_b["config"],
        b_folder.join("config.yaml").display().to_string()
    );
    assert!(
        tg_b["config_found"]
            .as_str()
            .unwrap()
            .contains("mounted by the compose service `telegram-b`"),
        "{tg_b}"
    );
    assert!(target(&report, "heisenbridge")["config"].is_null());

    // Each planted fault is named, with its fix; the healthy bridge is quiet.
    let mismatch = result(&report, "tg-a", "tokens.mismatch");
    assert_eq!(mismatch["status"], "fail", "{mismatch}");
    assert!(
        !mismatch["fix"].as_array().unwrap().is_empty(),
        "{mismatch}"
    );
    let url = result(&report, "tg-b", "registration.url_mismatch");
    assert_eq!(url["status"], "fail", "{url}");
    assert!(
        url["detail"].as_str().unwrap().contains(&elsewhere),
        "{url}"
    );
    assert!(!url["fix"].as_array().unwrap().is_empty(), "{url}");
    assert_eq!(
        failing_checks(&report, "heisenbridge"),
        Vec::<String>::new()
    );
    let causes: Vec<&str> = report["diagnoses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["target"].as_str().unwrap())
        .collect();
    assert!(
        causes.contains(&"tg-a") && causes.contains(&"tg-b"),
        "{causes:?}"
    );

    // The human report says where each config came from.
    let human = doctor_in(&empty, &["check", "--homeserver", hs]);
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(text.contains("found next to its registration"), "{text}");
    assert!(!text.contains("the doctor itself"), "{text}");

    // The packet, also without a doctor config: the bridges' configs,
    // sanitised, and none of their tokens.
    let out = doctor_in(
        &empty,
        &["packet", "--homeserver", hs, "-o", empty.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let zip = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let mut archive = zip::ZipArchive::new(std::fs::File::open(&zip).unwrap()).unwrap();
    let mut names = Vec::new();
    let mut everything = String::new();
    for n in 0..archive.len() {
        let mut file = archive.by_index(n).unwrap();
        names.push(file.name().unwrap().to_string());
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut file, &mut text);
        everything.push_str(&text);
    }
    assert!(
        names
            .iter()
            .any(|n| n.contains("tg-a") && n.ends_with("config.yaml")),
        "{names:?}"
    );
    assert!(
        names
            .iter()
            .any(|n| n.contains("tg-b") && n.ends_with("config.yaml")),
        "{names:?}"
    );
    for secret in [
        hs_token,
        planted_hs_token.to_owned(),
        yaml_value(&a.registration(), "as_token"),
    ] {
        assert!(!everything.contains(&secret), "a token is in the packet");
    }
}

#[test]
fn a_first_run_without_any_config_names_the_next_command() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("homeserver.yaml"),
        "server_name: example.org\n",
    )
    .unwrap();
    let out = doctor_in(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stderr);
    let found = dir.path().join("homeserver.yaml");
    assert!(
        text.contains(&format!(
            "bridge-doctor check --homeserver {}",
            found.display()
        )),
        "{text}"
    );
    assert!(
        text.contains("generate-registration -c config.yaml"),
        "{text}"
    );

    // Following it: the example config is written, then filled in.
    let out = doctor_in(dir.path(), &["generate-registration"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("wrote the example config"));
    let written = std::fs::read_to_string(dir.path().join("config.yaml")).unwrap();
    assert!(written.contains("homeserver:") && written.contains("permissions:"));
    let out = doctor_in(dir.path(), &["generate-registration"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("registration.yaml").is_file());
}

/// The commonest fault of all: the bridge's tokens regenerated in its
/// config while the homeserver still loads the old registration. The config
/// is still found (by its appservice id), said so, and the check names
/// `tokens.mismatch` instead of losing the config and reporting only the
/// failed ping.
#[test]
fn a_config_with_regenerated_tokens_is_found_and_named_the_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let bridge = TelegramBridge::prepare(&root.join("tg"), HOMESERVER_PLACEHOLDER);
    let synapse = Synapse::start(&root.join("synapse"), &[&bridge.registration()]);
    edit(&bridge.config(), HOMESERVER_PLACEHOLDER, &synapse.url());
    for token in ["as_token", "hs_token"] {
        let old = yaml_value(&bridge.registration(), token);
        edit(&bridge.config(), &old, &format!("regenerated-{token}-7c1f"));
    }
    let hs = synapse.config_path.to_str().unwrap();
    let out = doctor_in(root, &["check", "--homeserver", hs, "--format", "json"]);
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    let telegram = target(&report, "telegram");
    assert_eq!(telegram["config"], bridge.config().display().to_string());
    assert_eq!(
        telegram["config_found"],
        "found next to its registration, by its appservice.id; its as_token is not the registration's"
    );
    let mismatch = result(&report, "telegram", "tokens.mismatch");
    assert_eq!(mismatch["status"], "fail", "{mismatch}");
    assert!(failing_checks(&report, "telegram").contains(&"tokens.mismatch".to_owned()));
}

/// Debian's and Element's packages: `server_name` and the registrations
/// only in `conf.d/`, Synapse started with both `--config-path`s. Running,
/// the doctor takes the process's own arguments; stopped, the `conf.d/`
/// beside the file. A healthy bridge is clean; a planted fault is named.
#[test]
fn a_packaged_synapse_with_conf_d_is_read_as_synapse_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut bridge = TelegramBridge::prepare(&root.join("tg"), HOMESERVER_PLACEHOLDER);
    let hs_dir = root.join("etc-matrix-synapse");
    let mut heisenbridge = Heisenbridge::generate(&root.join("heisenbridge.yaml"));
    let mut synapse = Synapse::start_debian(
        &hs_dir,
        &[&bridge.registration(), &heisenbridge.registration],
    );
    edit(&bridge.config(), HOMESERVER_PLACEHOLDER, &synapse.url());
    bridge.start();
    heisenbridge.start(&synapse, &root.join("heisenbridge.log"));
    let hs = synapse.config_path.to_str().unwrap();
    let check = || {
        let out = doctor_in(root, &["check", "--homeserver", hs, "--format", "json"]);
        serde_json::from_slice::<Value>(&out.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stderr)))
    };
    let conf_d = hs_dir.join("conf.d");
    let expected_files = [
        synapse.config_path.display().to_string(),
        conf_d.join("appservices.yaml").display().to_string(),
        conf_d.join("server_name.yaml").display().to_string(),
    ];

    // The same config and targets, however the config was found.
    let read_as_packaged = |report: &Value| {
        assert_eq!(
            report["homeserver"]["server_name"], "doctor.test",
            "{report}"
        );
        assert_eq!(
            report["homeserver"]["config_files"],
            serde_json::json!(expected_files)
        );
        assert_eq!(target_ids(report), ["telegram", "heisenbridge"]);
    };
    let report = check();
    read_as_packaged(&report);
    assert_eq!(
        target(&report, "telegram")["config"],
        bridge.config().display().to_string()
    );
    for id in ["telegram", "heisenbridge"] {
        assert_eq!(
            failing_checks(&report, id),
            Vec::<String>::new(),
            "{report}"
        );
        assert_eq!(
            result(&report, id, "ping.connection_failed")["status"],
            "pass",
            "{report}"
        );
    }
    let human = doctor_in(root, &["check", "--homeserver", hs]);
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(
        text.contains(&format!("config read from: {}", expected_files.join(", "))),
        "{text}"
    );

    // A planted fault: the bridge's config gets another as_token.
    let as_token = yaml_value(&bridge.registration(), "as_token");
    edit(&bridge.config(), &as_token, "replaced-as-token-0d1e");
    let report = check();
    assert!(
        failing_checks(&report, "telegram").contains(&"tokens.mismatch".to_owned()),
        "{report}"
    );
    assert_eq!(
        failing_checks(&report, "heisenbridge"),
        Vec::<String>::new(),
        "{report}"
    );

    // Synapse stopped: no process to ask, so the conf.d/ beside the file.
    bridge.stop();
    synapse.process.terminate();
    let report = check();
    read_as_packaged(&report);
}
