//! `bridge-doctor packet` as support would receive it: the layout, the note,
//! bounded logs, kept hosts, and not one of the planted canary secrets.

mod support;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use support::*;

const CANARIES: &[&str] = &[
    "CanaryWeird123",
    "CanaryNested456",
    "CanaryDoublePuppet789",
    "CanaryProvisioning000",
    "CanaryLoginShared999",
    "CanaryPickle111",
    "CanaryP@ss:w0rd/x",
    "CanaryAccess222",
    "CanaryBearer333",
    "d524b414d21f4d37f08684c1df41ac9c",
];

struct Planted {
    _dir: tempfile::TempDir,
    root: PathBuf,
    doctor_config: PathBuf,
    secrets: Vec<String>,
}

/// A doctor config with one mautrix-telegram bridge whose config and log
/// hold canaries in every shape the packet must mask.
fn plant(homeserver_url: &str, hs_config: Option<&Path>) -> Planted {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    let bridge = TelegramBridge::prepare(&root.join("telegram"), homeserver_url);
    edit(
        &bridge.config(),
        "database: sqlite:mautrix-telegram.db",
        "database: postgres://tg:CanaryP@ss:w0rd/x@127.0.0.1:1/telegramdb",
    );
    let mut config_text = std::fs::read_to_string(bridge.config()).unwrap();
    config_text.push_str("canary_section:\n    my_weird_secret: CanaryWeird123\n    nested:\n        deeper:\n            password: CanaryNested456\n    login_shared_secret_map:\n        doctor.test: as_token:CanaryDoublePuppet789\n    provisioning:\n        shared_secret: CanaryProvisioning000\n    login_shared_secret: CanaryLoginShared999\n    pickle_key: CanaryPickle111\n");
    std::fs::write(bridge.config(), config_text).unwrap();
    let as_token = yaml_value(&bridge.registration(), "as_token");
    let log = root.join("telegram/bridge.log");
    let mut lines = String::new();
    lines.push_str(
        "[2026-11-22 10:00:00,000] [INFO@mau.init] Initializing mautrix-telegram 0.15.3\n",
    );
    lines.push_str("[2026-11-22 10:00:01,000] [INFO@mau.as.api] GET http://hs/_matrix/client/v3/sync?access_token=CanaryAccess222&since=s1\n");
    lines.push_str("[2026-11-22 10:00:02,000] [INFO@mau.as.api] headers: {'Authorization': 'Bearer CanaryBearer333'}\n");
    lines.push_str(&format!(
        "[2026-11-22 10:00:03,000] [INFO@mau.as] using token {as_token} and key CanaryPickle111\n"
    ));
    lines.push_str("[2026-11-22 10:00:04,000] [ERROR@mau.mx] mautrix.errors.request.MUnknownToken: Invalid access token passed.\n");
    std::fs::write(&log, lines).unwrap();

    let doctor_config = doctor_config_generated(&root, homeserver_url, "");
    let mut text = std::fs::read_to_string(&doctor_config).unwrap();
    if let Some(hs) = hs_config {
        text = text.replace(
            "homeserver:\n",
            &format!("homeserver:\n  config: {}\n", hs.display()),
        );
    }
    text.push_str(&format!(
        "bridges:\n  - config: {}\n    registration: {}\n    logs: [{}]\n",
        bridge.config().display(),
        bridge.registration().display(),
        log.display()
    ));
    std::fs::write(&doctor_config, text).unwrap();
    let mut secrets: Vec<String> = CANARIES.iter().map(|s| (*s).to_owned()).collect();
    secrets.extend([
        as_token,
        yaml_value(&bridge.registration(), "hs_token"),
        yaml_value(&doctor_config, "as_token"),
        yaml_value(&doctor_config, "hs_token"),
    ]);
    Planted {
        _dir: dir,
        root,
        doctor_config,
        secrets,
    }
}

fn build_packet(planted: &Planted, extra: &[&str]) -> (PathBuf, std::process::Output) {
    let out_dir = planted.root.join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let mut args = vec![
        "packet",
        "-c",
        planted.doctor_config.to_str().unwrap(),
        "-o",
        out_dir.to_str().unwrap(),
        "--note",
        "Messages stopped after the upgrade; NOTE-7731",
    ];
    args.extend(extra);
    let output = doctor(&args);
    assert!(
        output.status.success(),
        "packet failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let zips: Vec<PathBuf> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(zips.len(), 1, "{zips:?}");
    let name = zips[0].file_name().unwrap().to_string_lossy().into_owned();
    let shape =
        regex::Regex::new(r"^bridge_doctor_packet_\d{4}-\d{2}-\d{2}-\d{2}-\d{2}\.zip$").unwrap();
    assert!(shape.is_match(&name), "{name}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        zips[0].display().to_string()
    );
    (zips[0].clone(), output)
}

fn file<'a>(files: &'a [(String, String)], name: &str) -> &'a str {
    &files
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| {
            panic!(
                "{name} missing from {:?}",
                files.iter().map(|(n, _)| n).collect::<Vec<_>>()
            )
        })
        .1
}

fn assert_no_secret(planted: &Planted, files: &[(String, String)], output: &std::process::Output) {
    for secret in &planted.secrets {
        for (name, text) in files {
            assert!(
                !text.contains(secret.as_str()),
                "{secret} leaked into {name}:\n{text}"
            );
        }
        assert!(!String::from_utf8_lossy(&output.stdout).contains(secret.as_str()));
        assert!(!String::from_utf8_lossy(&output.stderr).contains(secret.as_str()));
    }
}

#[test]
fn packet_against_a_live_synapse_has_the_layout_and_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let synapse = Synapse::start(&dir.path().join("hs"), &[]);
    let mut planted = plant(&synapse.url(), Some(&synapse.config_path));
    planted
        .secrets
        .push(format!("macaroon-canary-{}", synapse.port));
    planted
        .secrets
        .push(format!("shared-canary-{}", synapse.port));
    let (zip, output) = build_packet(&planted, &[]);
    let files = unzip(&zip);
    for name in [
        "metadata.yaml",
        "bridges.json",
        "checks.json",
        "report.md",
        "redactions.json",
        "warnings.txt",
        "config/telegram/config.yaml",
        "config/telegram/registration.yaml",
        "config/homeserver/homeserver.yaml",
        "config/doctor/doctor.yaml",
        "config/doctor/doctor-registration.yaml",
        "logs/telegram/bridge.log",
    ] {
        file(&files, name);
    }
    assert_no_secret(&planted, &files, &output);

    let metadata = file(&files, "metadata.yaml");
    assert!(
        metadata.contains("homeserver_software: \"Synapse\""),
        "{metadata}"
    );
    assert!(
        metadata.contains("NOTE-7731")
            && metadata.contains("format_version: 1")
            && metadata.contains("database_type: \"sqlite\""),
        "{metadata}"
    );
    let report = file(&files, "report.md");
    for section in [
        "## Diagnoses",
        "## Configurations",
        "## Logs",
        "## Users affected",
        "## Environment",
        "## Steps to reproduce",
    ] {
        assert!(report.contains(section), "{section} missing");
    }
    assert!(report.find("## Steps to reproduce").unwrap() < report.find("NOTE-7731").unwrap());
    assert!(
        report.find("## Diagnoses").unwrap() < report.find("## Configurations").unwrap()
            && report.contains("`tokens.as_token_rejected`, `logs.as_token_rejected`"),
        "the diagnoses lead:\n{report}"
    );
    assert!(
        report.contains("not at debug level"),
        "debug advice expected:\n{report}"
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("not at debug level"));

    let config = file(&files, "config/telegram/config.yaml");
    assert!(
        config.contains("postgres://127.0.0.1:1/telegramdb"),
        "host, port and database name are kept"
    );
    let bridges: serde_json::Value = serde_json::from_str(file(&files, "bridges.json")).unwrap();
    let telegram = bridges
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["id"] == "telegram")
        .unwrap();
    assert_eq!(
        (telegram["software"].as_str(), telegram["version"].as_str()),
        (Some("mautrix-telegram"), Some("0.15.3"))
    );
    assert_eq!(
        telegram["registration"]["namespaces"]["users"][0]["regex"],
        "@telegram_.*:doctor\\.test"
    );
    let checks: serde_json::Value = serde_json::from_str(file(&files, "checks.json")).unwrap();
    assert!(
        checks["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["check"] == "logs.as_token_rejected" && r["status"] == "fail")
    );

    // One redaction entry per masked value, never the value itself.
    let redactions: serde_json::Value =
        serde_json::from_str(file(&files, "redactions.json")).unwrap();
    let listed: Vec<(String, String)> = redactions
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["file"].as_str().unwrap().to_owned(),
                r["location"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for (name, location) in [
        ("config/telegram/config.yaml", "appservice.as_token"),
        ("config/telegram/config.yaml", "appservice.hs_token"),
        ("config/telegram/config.yaml", "appservice.database"),
        ("config/telegram/config.yaml", "telegram.api_hash"),
        (
            "config/telegram/config.yaml",
            "canary_section.my_weird_secret",
        ),
        (
            "config/telegram/config.yaml",
            "canary_section.nested.deeper.password",
        ),
        (
            "config/telegram/config.yaml",
            "canary_section.login_shared_secret_map.doctor.test",
        ),
        (
            "config/telegram/config.yaml",
            "canary_section.provisioning.shared_secret",
        ),
        (
            "config/telegram/config.yaml",
            "canary_section.login_shared_secret",
        ),
        ("config/telegram/config.yaml", "canary_section.pickle_key"),
        ("config/telegram/registration.yaml", "as_token"),
        ("config/homeserver/homeserver.yaml", "macaroon_secret_key"),
        ("logs/telegram/bridge.log", "line 2"),
        ("logs/telegram/bridge.log", "line 3"),
        ("logs/telegram/bridge.log", "line 4"),
    ] {
        assert!(
            listed.contains(&(name.to_owned(), location.to_owned())),
            "no redaction listed for {name} {location}: {listed:?}"
        );
    }
}

#[test]
fn packet_is_built_with_the_homeserver_down() {
    let planted = plant("http://127.0.0.1:1", None);
    let (zip, output) = build_packet(&planted, &["--since", "2026-11-22 10:00:02"]);
    let files = unzip(&zip);
    assert_no_secret(&planted, &files, &output);
    let log = file(&files, "logs/telegram/bridge.log");
    assert!(
        !log.contains("10:00:01") && log.contains("10:00:02") && log.contains("10:00:04"),
        "--since keeps only later lines:\n{log}"
    );
    assert!(
        file(&files, "warnings.txt").contains("homeserver http://127.0.0.1:1"),
        "{}",
        file(&files, "warnings.txt")
    );
    assert!(file(&files, "metadata.yaml").contains("homeserver_software: \"unknown\""));
    let checks: serde_json::Value = serde_json::from_str(file(&files, "checks.json")).unwrap();
    assert!(
        checks["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["check"] == "homeserver.unreachable" && r["status"] == "fail")
    );
}

/// Writes `size` bytes of log lines ending with a known last line.
fn big_log(path: &Path, size: u64) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let line = "[2026-11-22 10:00:00,000] [DEBUG@mau.as.api.bot] req #1 (/v3/sync?access_token=CanaryAccess222) completed in 1.0ms with status 200\n";
    let mut written = 0;
    while written < size {
        out.write_all(line.as_bytes()).unwrap();
        written += line.len() as u64;
    }
    out.write_all(b"LAST-LINE-MARKER\n").unwrap();
}

#[test]
fn large_log_is_bounded_and_streamed_in_little_memory() {
    let planted = plant("http://127.0.0.1:1", None);
    let log = planted.root.join("telegram/bridge.log");
    big_log(&log, 170 * 1024 * 1024);

    // Default bound: only the last 20 MiB, ending with the newest line.
    let (zip, _) = build_packet(&planted, &[]);
    let mut archive = zip::ZipArchive::new(std::fs::File::open(&zip).unwrap()).unwrap();
    let entry = archive.by_name("logs/telegram/bridge.log").unwrap();
    assert!(entry.size() <= 20 * 1024 * 1024 + 200, "{}", entry.size());
    drop(entry);
    let mut text = String::new();
    archive
        .by_name("logs/telegram/bridge.log")
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    assert!(
        text.starts_with("[bridge-doctor: only the last 20 MiB"),
        "{}",
        &text[..200]
    );
    assert!(text.trim_end().ends_with("LAST-LINE-MARKER"));
    assert!(!text.contains("CanaryAccess222"));
    drop(text);
    std::fs::remove_file(&zip).unwrap();

    // The whole 170 MB streamed: peak memory stays under 100 MB.
    let out_dir = planted.root.join("out");
    let measured = Command::new("/usr/bin/time")
        .args([
            "-f",
            "%M",
            support::doctor_bin(),
            "packet",
            "-c",
            planted.doctor_config.to_str().unwrap(),
            "-o",
            out_dir.to_str().unwrap(),
            "--max-log-mib",
            "200",
        ])
        .output()
        .unwrap();
    assert!(
        measured.status.success(),
        "{}",
        String::from_utf8_lossy(&measured.stderr)
    );
    let stderr = String::from_utf8_lossy(&measured.stderr);
    let peak_kb: u64 = stderr.lines().last().unwrap().trim().parse().unwrap();
    assert!(peak_kb < 100 * 1024, "peak memory {} MiB", peak_kb / 1024);
}
