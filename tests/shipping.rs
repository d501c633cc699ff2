//! Shipping the way bridges ship: the container's entry script (run here
//! outside Docker, on a folder standing in for /data) and the systemd unit.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use support::*;

const ENTRY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/dist/docker-run.sh");
const UNIT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/dist/bridge-doctor.service");

fn start_container(data: &Path) -> Output {
    Command::new("sh")
        .arg(ENTRY)
        .env("BRIDGE_DOCTOR_DATA", data)
        .env("BRIDGE_DOCTOR_BIN", doctor_bin())
        .current_dir(data)
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn the_entry_script_writes_the_example_then_generates_the_registration_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();

    // First start: the example config, instructions, and a stop.
    let first = start_container(data);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    assert!(
        text(&first).contains("wrote the example config"),
        "{}",
        text(&first)
    );
    assert!(
        text(&first).contains("appservice.hostname: 0.0.0.0"),
        "{}",
        text(&first)
    );
    let config = data.join("config.yaml");
    assert!(
        std::fs::read_to_string(&config)
            .unwrap()
            .contains("permissions:")
    );
    assert!(!data.join("registration.yaml").exists());

    // The admin fills it in (a homeserver that answers nothing, waited for 1 s).
    edit(
        &config,
        "address: http://localhost:8008",
        &format!("address: {HOMESERVER_PLACEHOLDER}"),
    );
    edit(
        &config,
        "startup_wait_seconds: 30",
        "startup_wait_seconds: 1",
    );

    // Second start: the registration is generated, then the doctor runs
    // (and stops itself here, as the homeserver cannot be reached).
    let second = start_container(data);
    let said = text(&second);
    assert!(said.contains("Generated the registration"), "{said}");
    let registration = std::fs::read_to_string(data.join("registration.yaml")).unwrap();
    assert!(registration.contains("as_token:"), "{registration}");
    assert!(
        said.contains("127.0.0.1:1"),
        "the doctor ran and named the homeserver it could not reach: {said}"
    );
    assert_ne!(second.status.code(), Some(0), "{said}");

    // Third start: the registration is kept as it is, the doctor runs.
    let third = start_container(data);
    assert!(
        !text(&third).contains("Generated the registration"),
        "{}",
        text(&third)
    );
    assert_eq!(
        std::fs::read_to_string(data.join("registration.yaml")).unwrap(),
        registration
    );
    assert!(text(&third).contains("127.0.0.1:1"), "{}", text(&third));
}

#[test]
fn the_systemd_unit_is_valid_sandboxed_and_can_read_the_bridges_files() {
    let dir = tempfile::tempdir().unwrap();
    // `verify` wants ExecStart to exist: point it at the built binary.
    let unit = dir.path().join("bridge-doctor.service");
    let text = std::fs::read_to_string(UNIT).unwrap();
    std::fs::write(
        &unit,
        text.replace("/usr/local/bin/bridge-doctor", doctor_bin()),
    )
    .unwrap();
    let verify = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .unwrap();
    let complaints = String::from_utf8_lossy(&verify.stderr);
    let own: Vec<&str> = complaints
        .lines()
        .filter(|l| l.contains("bridge-doctor.service"))
        .collect();
    assert!(own.is_empty(), "{complaints}");

    let security = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--threshold=20"])
        .arg(&unit)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&security.stdout);
    assert!(security.status.success(), "exposure above 2.0:\n{report}");
    // Read-only everywhere but its own state, so bridge configs and logs
    // stay readable: never InaccessiblePaths or a hidden /opt, /etc, /var/lib.
    assert!(
        text.contains("ProtectSystem=strict")
            && text.contains("ReadWritePaths=/var/lib/bridge-doctor")
    );
    assert!(!text.contains("InaccessiblePaths") && !text.contains("TemporaryFileSystem"));
}
