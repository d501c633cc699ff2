//! Files only for their owner: what the doctor creates is 0600 (folders
//! 0700) under the usual umask 022, links planted at the names it writes
//! are not followed, and logs the owner of the config naming them could not
//! read stay out of the packet and of `check`.

mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::*;

/// The doctor started by a shell with umask 022, as from a login shell.
fn under_umask_022(args: &[&str]) -> Command {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg("umask 022 && exec \"$0\" \"$@\"")
        .arg(doctor_bin())
        .args(args);
    command
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .mode()
        & 0o777
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// `path` and everything under it.
fn tree(path: &Path) -> Vec<PathBuf> {
    let mut found = vec![path.to_owned()];
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            found.extend(tree(&entry.unwrap().path()));
        }
    }
    found
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn everything_the_doctor_creates_is_its_users_alone_under_umask_022() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = write_doctor_config(dir.path(), HOMESERVER_PLACEHOLDER, "");
    chmod(&config, 0o644);
    let config_arg = config.to_str().unwrap();
    let out = under_umask_022(&["generate-registration", "-c", config_arg])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let registration = dir.path().join("doctor-registration.yaml");
    assert_eq!(mode(&registration), 0o600, "the registration");
    assert_eq!(
        mode(&config),
        0o600,
        "the config with the tokens written in"
    );

    let synapse = Synapse::start(&dir.path().join("hs"), &[&registration]);
    edit(&config, HOMESERVER_PLACEHOLDER, &synapse.url());
    // A packet folder a killed run left behind.
    let loaded = bridge_doctor::input::config::Config::load(&config).unwrap();
    let work_dir = bridge_doctor::service::workdir::packet_work_dir(&loaded);
    std::fs::create_dir_all(work_dir.join("packet-left")).unwrap();
    std::fs::write(work_dir.join("packet-left/bridge_doctor_packet.zip"), "old").unwrap();

    let mut doctor = spawn_logged(
        under_umask_022(&["run", "-c", config_arg]),
        &dir.path().join("doctor.log"),
    );
    doctor.wait_for_log("self-check passed", Duration::from_secs(60));
    // The bot's device is set up (its crypto store written) when the
    // finding about it is logged.
    doctor.wait_for_log(
        "check=encryption.doctor_unavailable",
        Duration::from_secs(60),
    );
    assert!(
        !work_dir.join("packet-left").exists(),
        "the left packet folder is still there"
    );
    assert_eq!(mode(&work_dir), 0o700, "the bot's working folder");

    let database = dir.path().join("doctor.db");
    let database_files: Vec<PathBuf> = ["", "-wal", "-shm"]
        .iter()
        .map(|suffix| PathBuf::from(format!("{}{suffix}", database.display())))
        .filter(|path| path.exists())
        .collect();
    assert_eq!(database_files.len(), 3, "the database runs in WAL mode");
    for file in &database_files {
        assert_eq!(mode(file), 0o600, "{}", file.display());
    }
    let store = tree(&dir.path().join("crypto"));
    assert!(store.len() > 1, "no crypto store: {store:?}");
    for path in &store {
        let expected = if path.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(path), expected, "{}", path.display());
    }

    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let out = under_umask_022(&["packet", "-c", config_arg, "-o", out_dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let zip = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert_eq!(mode(&zip), 0o600, "the packet");
    drop(doctor);
}

#[test]
fn links_planted_at_the_packets_and_the_registrations_names_are_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let config = doctor_config_generated(dir.path(), HOMESERVER_PLACEHOLDER, "");
    let config_arg = config.to_str().unwrap();
    let precious = dir.path().join("precious");
    std::fs::write(&precious, "untouched").unwrap();

    // Every name the packet may take in the next minutes, and the partial
    // names it used to write first: all links to the precious file.
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let now = time::OffsetDateTime::now_utc();
    let mut partial_links = Vec::new();
    for minute in 0..5 {
        let name = bridge_doctor::packet::file_name(now + time::Duration::minutes(minute));
        symlink(&precious, out_dir.join(&name)).unwrap();
        let partial = out_dir.join(format!("{name}.partial"));
        symlink(&precious, &partial).unwrap();
        partial_links.push(partial);
    }
    let out = doctor(&["packet", "-c", config_arg, "-o", out_dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "untouched");
    let zip = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert!(
        std::fs::symlink_metadata(&zip).unwrap().is_file(),
        "the packet went through the link at {}",
        zip.display()
    );
    assert!(!unzip(&zip).is_empty());
    for partial in &partial_links {
        assert_eq!(std::fs::read_link(partial).unwrap(), precious);
    }

    // The registration: refused with the way out, the link's target kept;
    // a dangling link is refused too and creates nothing.
    let registration = dir.path().join("doctor-registration.yaml");
    std::fs::remove_file(&registration).unwrap();
    symlink(&precious, &registration).unwrap();
    let out = doctor(&["generate-registration", "-c", config_arg]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let expected = format!(
        "{} is a symbolic link (to {}): the doctor never writes through a link. Name the real file instead (-r {})",
        registration.display(),
        precious.display(),
        precious.display()
    );
    assert!(text(&out).contains(&expected), "{}", text(&out));
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "untouched");
    std::fs::remove_file(&registration).unwrap();
    let nowhere = dir.path().join("nowhere");
    symlink(&nowhere, &registration).unwrap();
    let out = doctor(&["generate-registration", "-c", config_arg]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(!nowhere.exists());
}

const KEY_CANARY: &str = "PRIVATE-KEY-CANARY-5521";

#[test]
fn logs_the_config_owner_could_not_read_are_skipped_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    chmod(dir.path(), 0o755);
    // Root's private key (the tests run as root), named directly and
    // through a link, by a config that `nobody` owns.
    let key = dir.path().join("private.key");
    std::fs::write(&key, format!("{KEY_CANARY}\n")).unwrap();
    chmod(&key, 0o600);
    let link = dir.path().join("bridge.log");
    symlink(&key, &link).unwrap();
    let readable = dir.path().join("readable.log");
    std::fs::write(
        &readable,
        "[2026-11-22 10:00:00,000] [INFO@mau.init] READABLE-LINE\n",
    )
    .unwrap();
    chmod(&readable, 0o644);
    let registration = dir.path().join("whatsapp-registration.yaml");
    std::fs::write(
        &registration,
        "id: whatsapp\nurl: http://127.0.0.1:29318\nas_token: wa-as-token-0000\nhs_token: wa-hs-token-0000\nsender_localpart: whatsappbot\nnamespaces:\n  users:\n    - regex: '^@whatsapp_.*:doctor\\.test$'\n      exclusive: true\n",
    )
    .unwrap();
    let logs = [&link, &key, &readable].map(|p| p.display().to_string());
    let config = doctor_config_generated(
        dir.path(),
        HOMESERVER_PLACEHOLDER,
        &format!(
            "bridges:\n  - registration: {}\n    logs: [{}]\n",
            registration.display(),
            logs.join(", ")
        ),
    );
    std::os::unix::fs::chown(&config, Some(65534), Some(65534)).unwrap();
    let config_arg = config.to_str().unwrap();
    let reasons = [
        format!("{} is a symbolic link: not followed", link.display()),
        format!(
            "{} is owned by root and not readable by the owner of the config that names it (uid 65534): skipped",
            key.display()
        ),
    ];

    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let out = doctor(&["packet", "-c", config_arg, "-o", out_dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains(KEY_CANARY));
    let files = unzip(&PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    for (name, content) in &files {
        assert!(!content.contains(KEY_CANARY), "the key is in {name}");
    }
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert!(
        names.contains(&"logs/whatsapp/readable.log"),
        "the readable log is missing: {names:?}"
    );
    let warnings = &files.iter().find(|(n, _)| n == "warnings.txt").unwrap().1;
    for reason in &reasons {
        assert!(warnings.contains(reason), "{reason}\nnot in:\n{warnings}");
    }

    let out = doctor(&["check", "-c", config_arg, "--offline", "--format", "json"]);
    assert!(!text(&out).contains(KEY_CANARY));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let unreadable = result(&report, "whatsapp", "config.unreadable");
    let detail = unreadable["detail"].as_str().unwrap();
    for reason in &reasons {
        assert!(detail.contains(reason), "{reason}\nnot in:\n{detail}");
    }
}
