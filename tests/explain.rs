//! `bridge-doctor explain` as a user runs it: files or stdin, human or JSON.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};

use support::doctor_bin;

fn explain_stdin(text: &str, args: &[&str]) -> (i32, String) {
    let mut child = Command::new(doctor_bin())
        .arg("explain")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
    )
}

#[test]
fn json_from_stdin_names_the_entry_with_redacted_lines() {
    let log = "{\"level\":\"error\",\"error\":\"M_EXCLUSIVE (HTTP 400): Invalid user localpart for this application service.\",\"message\":\"Failed to register ghost\",\"url\":\"http://hs/_matrix/client/v3/register?access_token=canary_secret_1234\"}\n";
    let (code, stdout) = explain_stdin(log, &["--format", "json"]);
    assert_eq!(code, 1);
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let first = &json["matches"][0];
    assert_eq!(first["check"], "logs.invalid_localpart");
    assert_eq!(first["entry"], "invalid_localpart");
    assert_eq!(first["lines"][0]["file"], "-");
    assert_eq!(first["lines"][0]["number"], 1);
    assert!(
        first["faq"]
            .as_str()
            .unwrap()
            .ends_with("#mautrix-whatsapp-messages-in-some-groups-are-no-longer-bridged")
    );
    assert!(!first["fix"].as_array().unwrap().is_empty());
    assert!(!stdout.contains("canary_secret_1234"), "{stdout}");
}

#[test]
fn clean_log_gives_empty_matches_and_exit_0() {
    let (code, stdout) = explain_stdin(
        "[2026-11-22 10:00:00,000] [INFO@mau.init] all good\n",
        &["--format", "json"],
    );
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&stdout).unwrap(),
        serde_json::json!({"matches": []})
    );
}

#[test]
fn files_in_human_form_and_missing_file_is_explained() {
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/fixtures/logs/mautrix-telegram-foreign_tables.log"
    );
    let out = Command::new(doctor_bin())
        .args(["explain", fixture])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("foreign_tables (logs.foreign_tables)"),
        "{text}"
    );
    assert!(
        text.contains("mautrix-telegram-foreign_tables.log:"),
        "{text}"
    );
    assert!(text.contains("Fix:"), "{text}");
    let out = Command::new(doctor_bin())
        .args(["explain", "/nonexistent/bridge.log"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/bridge.log"));
}

#[test]
fn a_pipe_named_as_a_file_is_read_whole() {
    // As `explain <(zcat bridge.log.gz)` names it: a FIFO, which cannot seek.
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("bridge.log");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            std::fs::write(
                fifo,
                "[2026-11-22 10:51:00,564] [ERROR@mau.mx] mautrix.errors.request.MUnknownToken: Invalid access token passed.\n",
            )
        })
    };
    let out = Command::new(doctor_bin())
        .args(["explain", "--format", "json"])
        .arg(&fifo)
        .output()
        .unwrap();
    writer.join().unwrap().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("\"entry\": \"as_token_rejected\""),
        "{stdout}"
    );
}
