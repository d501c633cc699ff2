//! `bridge-doctor check` options and target selection, offline (no network
//! needed): what an admin sees for warnings, strict mode, unknown bridges,
//! and bridges found only through the homeserver's config.

mod support;

use std::path::Path;

use support::*;

const WHATSAPP: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/fixtures/mautrix-go/example-config.bridgev2-whatsapp.yaml"
);

/// A bridgev2 config that is fine except for encryption without self-signing (a warning).
fn warn_only_setup(dir: &Path) -> std::path::PathBuf {
    let config = dir.join("whatsapp.yaml");
    let text = std::fs::read_to_string(WHATSAPP)
        .unwrap()
        .replace("    allow: false", "    allow: true")
        .replace(
            "address: http://example.localhost:8008",
            "address: http://127.0.0.1:1",
        )
        .replace("    domain: example.com", "    domain: doctor.test")
        .replace(
            "uri: postgres://user:password@host/database?sslmode=disable",
            "uri: file:whatsapp.db",
        )
        .replace(
            "\"This value is generated when generating the registration\"",
            "tok",
        )
        .replace("\"example.com\": user", "\"doctor.test\": user")
        .replace(
            "\"@admin:example.com\": admin",
            "\"@admin:doctor.test\": admin",
        );
    std::fs::write(&config, text).unwrap();
    let registration = dir.join("whatsapp-registration.yaml");
    std::fs::write(&registration, "id: whatsapp\nurl: http://localhost:29318\nas_token: tok\nhs_token: tok\nsender_localpart: s\nreceive_ephemeral: true\nnamespaces:\n  users:\n    - regex: '^@whatsapp_.*:doctor\\.test$'\n      exclusive: true\n    - regex: '^@whatsappbot:doctor\\.test$'\n      exclusive: true\n").unwrap();
    empty_sqlite_database(&dir.join("whatsapp.db"));
    doctor_config_generated(
        dir,
        "http://127.0.0.1:1",
        &bridges_yaml(&[(&config, &registration, &[])]),
    )
}

/// An empty SQLite database file, made with the doctor's own store code.
fn empty_sqlite_database(path: &Path) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        bridge_doctor::service::store::Store::open(&format!("sqlite:{}", path.display()))
            .await
            .unwrap()
            .close()
            .await;
    });
}

#[test]
fn warnings_pass_unless_strict_and_read_well() {
    let dir = tempfile::tempdir().unwrap();
    let config = warn_only_setup(dir.path());
    let config = config.to_str().unwrap();
    let out = doctor(&["check", "-c", config, "--offline"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("[!] encryption.self_sign_disabled"), "{text}");
    assert!(
        text.contains("Fix:") && text.contains("Summary:") && text.contains("passes folded"),
        "{text}"
    );
    assert!(!text.contains("\x1b["), "no colour when not on a terminal");
    assert!(
        !text.contains("[✓] config.unreadable"),
        "passes are folded without -v"
    );
    let verbose =
        String::from_utf8_lossy(&doctor(&["check", "-c", config, "--offline", "-v"]).stdout)
            .into_owned();
    assert!(verbose.contains("[✓] config.unreadable"), "{verbose}");
    assert_eq!(
        doctor(&["check", "-c", config, "--offline", "--strict"])
            .status
            .code(),
        Some(1)
    );
}

#[test]
fn unknown_bridge_is_named_with_the_known_ones() {
    let dir = tempfile::tempdir().unwrap();
    let config = warn_only_setup(dir.path());
    let out = doctor(&[
        "check",
        "-c",
        config.to_str().unwrap(),
        "--offline",
        "--bridge",
        "signal",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("signal") && stderr.contains("whatsapp"),
        "{stderr}"
    );
    let only = doctor(&[
        "check",
        "-c",
        config.to_str().unwrap(),
        "--offline",
        "--bridge",
        "whatsapp",
        "--format",
        "json",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&only.stdout).unwrap();
    assert_eq!(
        report["targets"].as_array().unwrap().len(),
        2,
        "the doctor and whatsapp"
    );
}

#[test]
fn registrations_loaded_by_the_homeserver_are_targets_when_no_bridge_is_listed() {
    let dir = tempfile::tempdir().unwrap();
    let registration = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/fixtures/mautrix-telegram/registration.generated.yaml"
    );
    let doctor_registration = dir.path().join("doctor-registration.yaml");
    let hs = dir.path().join("homeserver.yaml");
    std::fs::write(
        &hs,
        format!(
            "server_name: doctor.test\napp_service_config_files:\n  - {}\n  - {registration}\n",
            doctor_registration.display()
        ),
    )
    .unwrap();
    let (config, _) = write_doctor_config(dir.path(), "http://127.0.0.1:1", "");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "homeserver:\n",
        &format!("homeserver:\n  config: {}\n", hs.display()),
    );
    std::fs::write(&config, text).unwrap();
    assert!(
        doctor(&["generate-registration", "-c", config.to_str().unwrap()])
            .status
            .success()
    );
    let out = doctor(&[
        "check",
        "-c",
        config.to_str().unwrap(),
        "--offline",
        "--format",
        "json",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids = target_ids(&report);
    assert_eq!(ids, ["doctor", "telegram"]);
    let status = |check: &str| result(&report, "telegram", check)["status"].clone();
    assert_eq!(status("registration.invalid"), "pass");
    assert_eq!(status("registration.not_loaded"), "pass");
    assert_eq!(
        status("tokens.mismatch"),
        "skip",
        "no bridge config: checks that need it skip"
    );
    assert_eq!(status("registration.url_mismatch"), "skip");
}

#[test]
fn a_missing_log_file_is_reported_as_unreadable() {
    let dir = tempfile::tempdir().unwrap();
    let config = warn_only_setup(dir.path());
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text.replace(
        "whatsapp-registration.yaml\n",
        "whatsapp-registration.yaml\n    logs: [/nonexistent/whatsapp.log]\n",
    );
    std::fs::write(&config, text).unwrap();
    let out = doctor(&[
        "check",
        "-c",
        config.to_str().unwrap(),
        "--offline",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let unreadable = result(&report, "whatsapp", "config.unreadable");
    assert_eq!(unreadable["status"], "fail");
    assert!(
        unreadable["detail"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/whatsapp.log"),
        "{unreadable}"
    );
}

const TELEGRAM_FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/fixtures/mautrix-telegram"
);

/// Runs the doctor with `args` on a pseudo-terminal (util-linux `script`)
/// and returns what the terminal showed.
fn on_terminal(dir: &Path, args: &str) -> String {
    let out = std::process::Command::new("script")
        .args(["-qec", &format!("{} {args}", doctor_bin()), "/dev/null"])
        .current_dir(dir)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn progress_bars_on_a_terminal_and_nothing_extra_in_a_pipe() {
    let dir = tempfile::tempdir().unwrap();
    for file in ["config.working.yaml", "registration.generated.yaml"] {
        std::fs::copy(
            Path::new(TELEGRAM_FIXTURES).join(file),
            dir.path().join(file),
        )
        .unwrap();
    }
    // The log the config names, big enough to be copied in several reads.
    let line = "[2026-11-22 10:00:00,000] [INFO@mau.init] Starting\n";
    std::fs::write(dir.path().join("mautrix-telegram.log"), line.repeat(20_000)).unwrap();
    std::fs::write(
        dir.path().join("homeserver.yaml"),
        "server_name: example.com\npublic_baseurl: http://127.0.0.1:1\napp_service_config_files: [registration.generated.yaml]\n",
    )
    .unwrap();

    let check = on_terminal(
        dir.path(),
        "check --homeserver homeserver.yaml --offline --format json",
    );
    assert!(check.contains("1/1 targets"), "{check:?}");
    let packet = on_terminal(dir.path(), "packet --homeserver homeserver.yaml -o .");
    assert!(
        packet.contains("KiB/"),
        "a byte count while the log is copied: {packet:?}"
    );

    let piped = doctor_in(
        dir.path(),
        &[
            "check",
            "--homeserver",
            "homeserver.yaml",
            "--offline",
            "--format",
            "json",
        ],
    );
    let stderr = String::from_utf8_lossy(&piped.stderr);
    assert!(
        !stderr.contains("targets") && !stderr.contains('\u{1b}'),
        "{stderr:?}"
    );
    serde_json::from_slice::<serde_json::Value>(&piped.stdout).expect("stdout is the JSON alone");
    let piped = doctor_in(
        dir.path(),
        &["packet", "--homeserver", "homeserver.yaml", "-o", "."],
    );
    let stderr = String::from_utf8_lossy(&piped.stderr);
    assert!(
        !stderr.contains("KiB") && !stderr.contains('\u{1b}'),
        "{stderr:?}"
    );
}
