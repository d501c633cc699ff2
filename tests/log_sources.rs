//! Logs where bridges really write them: a systemd unit's journal (real
//! journal files written by `systemd-journal-remote` from the export
//! format, read through `--journal-dir`) and a container's json-file log
//! (lines as Docker writes them, long ones split, under a `--docker-root`).
//! `explain`, `check` and `packet` name the planted line, mask the planted
//! secret, and say in one line what they could not read.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::*;

const UNIT: &str = "mautrix-telegram.service";
const CONTAINER: &str = "mautrix-whatsapp";
const CONTAINER_ID: &str = "4f1c0a7e9b2d4c6e8a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f";
/// A real knowledge-base symptom (kb/bridge.yaml, as_token_rejected), as
/// mautrix-python logs it.
const SYMPTOM: &str =
    "[ERROR@mau.mx] mautrix.errors.request.MUnknownToken: Invalid access token passed.";
const JOURNAL_CANARY: &str = "CanaryJournalTok42";
const DOCKER_CANARY: &str = "CanaryDockerTok77";
/// A journal folder written by systemd-journal-remote: the bridge's unit
/// with a healthy start, a non-UTF-8 line, the secret and the symptom, and
/// another unit's noise that must not count.
fn write_bridge_journal(dir: &Path) -> PathBuf {
    let journal = dir.join("journal");
    let secret = format!(
        "[2026-11-22 10:00:01,000] [DEBUG@mau.as.api] GET http://hs/_matrix/client/v3/sync?access_token={JOURNAL_CANARY}&since=s1"
    );
    let symptom = format!("[2026-11-22 10:00:04,000] {SYMPTOM}");
    write_journal(
        &journal,
        &[
            (
                UNIT,
                b"[2026-11-22 10:00:00,000] [INFO@mau.init] Initializing mautrix-telegram 0.15.3",
            ),
            (
                UNIT,
                b"[2026-11-22 10:00:00,500] [DEBUG@mau.as] odd bytes \xff\xfe from a client",
            ),
            (UNIT, secret.as_bytes()),
            (UNIT, symptom.as_bytes()),
            ("other.service", b"M_UNKNOWN_TOKEN from another unit"),
        ],
    );
    journal
}

/// One line as Docker's json-file driver writes it.
fn docker_line(log: &str, second: u32) -> String {
    let line = serde_json::json!({
        "log": log,
        "stream": "stderr",
        "time": format!("2026-12-03T10:00:{second:02}.123456789Z"),
    });
    format!("{line}\n")
}

/// A Docker data root with the container `mautrix-whatsapp` (json-file
/// log; the symptom in a line Docker split at 16 KiB, so only the joined
/// line holds it) and `old-bridge`, which logs with the journald driver.
fn write_docker_root(dir: &Path) -> PathBuf {
    let root = dir.join("docker");
    let folder = root.join("containers").join(CONTAINER_ID);
    std::fs::create_dir_all(&folder).unwrap();
    let config = serde_json::json!({
        "ID": CONTAINER_ID,
        "Name": format!("/{CONTAINER}"),
        "LogPath": folder.join(format!("{CONTAINER_ID}-json.log")),
        "Config": {"Env": ["SECRET=CanaryEnvNeverRead"]},
    });
    std::fs::write(folder.join("config.v2.json"), config.to_string()).unwrap();
    std::fs::write(
        folder.join("hostconfig.json"),
        r#"{"LogConfig":{"Type":"json-file","Config":{}}}"#,
    )
    .unwrap();
    let padding = "x".repeat(16 * 1024 - 20);
    let (head, tail) = SYMPTOM.split_at(SYMPTOM.find("Unknown").unwrap());
    let mut log = docker_line(
        "[2026-11-22 10:00:00,000] [INFO@mau.init] Initializing mautrix-whatsapp\n",
        0,
    );
    log.push_str(&docker_line(
        &format!(
            "[2026-11-22 10:00:01,000] [DEBUG@mau.as.api] GET /sync?access_token={DOCKER_CANARY}\n"
        ),
        1,
    ));
    log.push_str(&docker_line(&format!("{padding} {head}"), 2));
    log.push_str(&docker_line(&format!("{tail}\n"), 2));
    std::fs::write(folder.join(format!("{CONTAINER_ID}-json.log")), log).unwrap();

    let other = root.join("containers/0123456789ab0123456789ab");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("config.v2.json"), r#"{"Name":"/old-bridge"}"#).unwrap();
    std::fs::write(
        other.join("hostconfig.json"),
        r#"{"LogConfig":{"Type":"journald","Config":{}}}"#,
    )
    .unwrap();
    root
}

struct Setup {
    _dir: tempfile::TempDir,
    journal: PathBuf,
    docker_root: PathBuf,
    doctor_config: PathBuf,
}

/// A registration the doctor can read (no live bridge is needed offline).
fn registration(dir: &Path, id: &str) -> PathBuf {
    let path = dir.join(format!("{id}-registration.yaml"));
    std::fs::write(&path, format!("id: {id}\nurl: http://127.0.0.1:1\nas_token: {id}-as\nhs_token: {id}-hs\nsender_localpart: {id}bot\nnamespaces:\n  users:\n    - regex: '^@{id}_.*:doctor\\.test$'\n      exclusive: true\n")).unwrap();
    path
}

/// A doctor config with a bridge logging only to journald and one logging
/// only to Docker, each also naming a log that is not there.
fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let journal = write_bridge_journal(dir.path());
    let docker_root = write_docker_root(dir.path());
    let bridges = format!(
        "bridges:\n  - id: telegram\n    registration: {}\n    logs: [\"journald:{UNIT}\", \"journald:no-such-bridge.service\"]\n  - id: whatsapp\n    registration: {}\n    logs: [\"docker:{CONTAINER}\", \"docker:ghost\", \"docker:old-bridge\"]\n",
        registration(dir.path(), "telegram").display(),
        registration(dir.path(), "whatsapp").display(),
    );
    let doctor_config = doctor_config_generated(dir.path(), "http://127.0.0.1:1", &bridges);
    Setup {
        _dir: dir,
        journal,
        docker_root,
        doctor_config,
    }
}

impl Setup {
    fn places(&self) -> [String; 4] {
        [
            "--journal-dir".to_owned(),
            self.journal.display().to_string(),
            "--docker-root".to_owned(),
            self.docker_root.display().to_string(),
        ]
    }
}

fn args<'a>(fixed: &[&'a str], more: &'a [String]) -> Vec<&'a str> {
    fixed
        .iter()
        .copied()
        .chain(more.iter().map(String::as_str))
        .collect()
}

/// The first matched line of `entry` in `explain --format json` output.
fn matched_lines<'a>(explained: &'a serde_json::Value, entry: &str) -> Vec<&'a serde_json::Value> {
    explained["matches"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["entry"] == entry)
        .flat_map(|m| m["lines"].as_array().unwrap())
        .collect()
}

#[test]
fn explain_names_the_planted_line_of_a_unit_and_of_a_container() {
    let setup = setup();
    let places = setup.places();
    let out = doctor(&args(
        &[
            "explain",
            "--format",
            "json",
            "--unit",
            UNIT,
            "--container",
            CONTAINER,
        ],
        &places,
    ));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let explained: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let lines = matched_lines(&explained, "as_token_rejected");
    let files: Vec<&str> = lines.iter().map(|l| l["file"].as_str().unwrap()).collect();
    assert_eq!(
        files,
        [format!("journald:{UNIT}"), format!("docker:{CONTAINER}")]
    );
    // The journal's line carries its entry's time; the other unit's
    // M_UNKNOWN_TOKEN is not this unit's.
    assert_eq!(
        lines[0]["text"],
        format!("2025-12-03T11:06:43.000000Z [2026-11-22 10:00:04,000] {SYMPTOM}")
    );
    // Docker's split line is whole again, under the time of its first part.
    let joined = lines[1]["text"].as_str().unwrap();
    assert!(
        joined.starts_with("2026-12-03T10:00:02.123456789Z xxx"),
        "{joined}"
    );
    assert!(
        joined.ends_with(SYMPTOM),
        "{}",
        &joined[joined.len() - 100..]
    );
}

#[test]
fn explain_says_what_it_could_not_read_and_explains_the_rest() {
    let setup = setup();
    let places = setup.places();
    let out = doctor(&args(
        &[
            "explain",
            "--unit",
            "no-such-bridge.service",
            "--container",
            "ghost",
            "--unit",
            UNIT,
        ],
        &places,
    ));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("as_token_rejected"), "{stdout}");
    assert!(
        stderr.contains(&format!(
            "error: journald:no-such-bridge.service: no journal entries for this unit in {}: check the unit's name",
            setup.journal.display()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "error: docker:ghost: no container of that name under {}/containers: check the name with `docker ps -a`, or give --docker-root",
            setup.docker_root.display()
        )),
        "{stderr}"
    );
    // Nothing readable at all: exit 2.
    let out = doctor(&args(&["explain", "--container", "ghost"], &places));
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn check_names_the_planted_lines_and_each_log_it_cannot_read() {
    let setup = setup();
    let places = setup.places();
    let config = setup.doctor_config.to_str().unwrap();
    let out = doctor(&args(
        &["check", "-c", config, "--offline", "--format", "json"],
        &places,
    ));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}: {stdout}{}", String::from_utf8_lossy(&out.stderr)));
    for (target, source) in [
        ("telegram", format!("journald:{UNIT}")),
        ("whatsapp", format!("docker:{CONTAINER}")),
    ] {
        let found = result(&report, target, "logs.as_token_rejected");
        assert_eq!(found["status"], "fail", "{found}");
        let shown = found.to_string();
        assert!(
            shown.contains(&source) && shown.contains("MUnknownToken"),
            "{shown}"
        );
        assert!(!shown.contains("Canary"), "{shown}");
    }
    // Each log that is not there is one line; the rest of the check ran.
    let unreadable = result(&report, "telegram", "config.unreadable").to_string();
    assert!(
        unreadable.contains("journald:no-such-bridge.service: no journal entries for this unit"),
        "{unreadable}"
    );
    let unreadable = result(&report, "whatsapp", "config.unreadable").to_string();
    assert!(
        unreadable.contains("docker:ghost: no container of that name"),
        "{unreadable}"
    );
    assert!(
        unreadable
            .contains("docker:old-bridge: the container logs with Docker's `journald` driver"),
        "{unreadable}"
    );
    assert!(!stdout.contains("CanaryEnvNeverRead"));
}

#[test]
fn the_packet_holds_each_excerpt_redacted_and_warns_of_the_rest() {
    let setup = setup();
    let places = setup.places();
    let out_dir = setup.doctor_config.parent().unwrap().join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let config = setup.doctor_config.to_str().unwrap();
    let out = doctor(&args(
        &["packet", "-c", config, "-o", out_dir.to_str().unwrap()],
        &places,
    ));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let zip = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let files = unzip(&zip);
    let entry = |name: &str| {
        files
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, text)| text.as_str())
            .unwrap_or_else(|| {
                panic!(
                    "no {name} in {:?}",
                    files.iter().map(|f| &f.0).collect::<Vec<_>>()
                )
            })
    };
    let journal = entry(&format!("logs/telegram/journald-{UNIT}.log"));
    assert!(journal.contains(SYMPTOM), "{journal}");
    assert!(journal.contains("2025-12-03T11:06:41.000000Z"), "{journal}");
    assert!(journal.contains("access_token="), "{journal}");
    // The packet cuts lines at 16 KiB, so the joined split line is not
    // whole there; the lines before it are.
    let container = entry(&format!("logs/whatsapp/docker-{CONTAINER}.log"));
    assert!(
        container.starts_with("2026-12-03T10:00:00.123456789Z [2026-11-22 10:00:00,000] [INFO@mau.init] Initializing mautrix-whatsapp\n2026-12-03T10:00:01.123456789Z [2026-11-22 10:00:01,000] [DEBUG@mau.as.api] GET /sync?access_token="),
        "{}",
        &container[..300]
    );
    for (name, text) in &files {
        for canary in [JOURNAL_CANARY, DOCKER_CANARY, "CanaryEnvNeverRead"] {
            assert!(!text.contains(canary), "{canary} in {name}");
        }
    }
    let warnings = entry("warnings.txt");
    assert!(
        warnings.contains("journald:no-such-bridge.service: no journal entries"),
        "{warnings}"
    );
    assert!(
        warnings.contains("docker:ghost: no container of that name"),
        "{warnings}"
    );
}

#[test]
fn one_journal_file_is_read_without_journalctl_and_journalctl_is_the_fallback() {
    let setup = setup();
    let file = setup.journal.join("remote.journal");
    let explain = |reader: Option<&str>, journalctl: bool| {
        let mut command = Command::new(doctor_bin());
        command
            .args([
                "explain",
                "--unit",
                UNIT,
                "--journal-dir",
                file.to_str().unwrap(),
            ])
            .env_remove("BRIDGE_DOCTOR_JOURNAL_READER");
        if !journalctl {
            command.env("PATH", "/nonexistent");
        }
        if let Some(reader) = reader {
            command.env("BRIDGE_DOCTOR_JOURNAL_READER", reader);
        }
        command.output().unwrap()
    };
    // No journalctl on the PATH: libsystemd reads the file.
    let out = explain(None, false);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("as_token_rejected"), "{stdout}");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Through journalctl, as where libsystemd is missing: with journalctl
    // the same finding, without it one line.
    let out = explain(Some("journalctl"), true);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("as_token_rejected"));
    let out = explain(Some("journalctl"), false);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Nothing it was given could be read.
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(
        stderr.trim(),
        format!(
            "error: journald:{UNIT}: journalctl is not installed here: run the doctor where the journal is, or name the unit's log file instead"
        )
    );
}
