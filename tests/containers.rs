//! docker-compose deployments, without Docker: each "container" is a mount
//! namespace (`unshare -m`) with its service's folder at /data and an
//! /etc/hosts naming the compose services. Real Synapse, mautrix-telegram
//! and heisenbridge run inside; the doctor runs on the host with
//! `--homeserver synapse/homeserver.yaml` and the compose file describing
//! exactly that deployment, where every path is a /data path and every
//! address a service name.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use support::*;

const COMPOSE: &str = "services:
  synapse:
    image: docker.io/matrixdotorg/synapse
    volumes:
      - ./synapse:/data
    ports:
      - \"127.0.0.1:@SYNAPSE@:@SYNAPSE@\"
  mautrix-telegram:
    image: dock.mau.dev/mautrix/telegram
    container_name: ${TELEGRAM_CONTAINER:-telegram-bridge}
    volumes:
      - type: bind
        source: ./telegram
        target: /data
  heisenbridge:
    image: hif1/heisenbridge
    volumes:
      - ./heisenbridge:/data:z
";

struct Deployment {
    _dir: tempfile::TempDir,
    root: PathBuf,
    synapse: Synapse,
    _telegram: TelegramBridge,
    _heisenbridge: Heisenbridge,
}

impl Deployment {
    fn homeserver(&self) -> PathBuf {
        self.synapse.config_path.clone()
    }
}

/// The deployment the module comment describes, running.
fn deploy() -> Deployment {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let synapse_port = free_port();
    let hosts = root.join("hosts");
    Container::hosts_file(&hosts, &["synapse", "mautrix-telegram", "heisenbridge"]);
    for service in ["synapse", "telegram", "heisenbridge"] {
        std::fs::create_dir_all(root.join(service)).unwrap();
    }
    std::fs::write(
        root.join("compose.yaml"),
        COMPOSE.replace("@SYNAPSE@", &synapse_port.to_string()),
    )
    .unwrap();
    // mautrix-telegram as its image runs it: everything under /data.
    let mut telegram = TelegramBridge::prepare(
        &root.join("telegram"),
        &format!("http://synapse:{synapse_port}"),
    );
    let log = root.join("telegram/mautrix-telegram.log");
    telegram.reconfigure(&[
        (
            &format!("address: http://127.0.0.1:{}", telegram.port),
            &format!("address: http://mautrix-telegram:{}", telegram.port),
        ),
        (
            "sqlite:mautrix-telegram.db",
            "sqlite:/data/mautrix-telegram.db",
        ),
    ]);
    // After the registration: the bridge opens its log even to write one.
    edit(
        &telegram.config(),
        &log.display().to_string(),
        "/data/mautrix-telegram.log",
    );
    std::fs::copy(
        telegram.registration(),
        root.join("synapse/telegram-registration.yaml"),
    )
    .unwrap();
    let mut heisenbridge = Heisenbridge::generate(&root.join("heisenbridge/heisenbridge.yaml"));
    edit(
        &heisenbridge.registration,
        "url: http://127.0.0.1:",
        "url: http://heisenbridge:",
    );
    std::fs::copy(
        &heisenbridge.registration,
        root.join("synapse/heisenbridge.yaml"),
    )
    .unwrap();
    let synapse = Synapse::start_contained(
        &root.join("synapse"),
        &[
            Path::new("/data/telegram-registration.yaml"),
            Path::new("/data/heisenbridge.yaml"),
        ],
        synapse_port,
        Container::data(&root.join("synapse"), &hosts),
    );
    telegram.start_in(Some(&Container::data(&root.join("telegram"), &hosts)));
    heisenbridge.start_in(
        Some(&Container::data(&root.join("heisenbridge"), &hosts)),
        Path::new("/data/heisenbridge.yaml"),
        &format!("http://synapse:{synapse_port}"),
        &root.join("heisenbridge/heisenbridge.log"),
    );
    wait_for_log_line(&log, Duration::from_secs(30));
    Deployment {
        _dir: dir,
        root,
        synapse,
        _telegram: telegram,
        _heisenbridge: heisenbridge,
    }
}

fn wait_for_log_line(log: &Path, limit: Duration) {
    let start = std::time::Instant::now();
    while std::fs::metadata(log).map(|m| m.len()).unwrap_or(0) == 0 {
        assert!(start.elapsed() < limit, "{} stays empty", log.display());
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `check --homeserver FILE --format json` and what it said on stderr.
fn check_json(homeserver: &Path, more: &[&str]) -> (Value, String) {
    let mut args = vec![
        "check",
        "--homeserver",
        homeserver.to_str().unwrap(),
        "--format",
        "json",
    ];
    args.extend(more);
    let out = doctor(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}\n{stderr}"));
    (report, stderr)
}

fn deployment_of<'a>(report: &'a Value, target: &str) -> &'a Value {
    let targets = report["targets"].as_array().unwrap();
    &targets.iter().find(|t| t["id"] == target).unwrap()["deployment"]
}

#[test]
fn a_compose_deployment_is_read_as_each_container_sees_it() {
    let deployment = deploy();
    let synapse_port = deployment.synapse.port;
    let (report, stderr) = check_json(&deployment.homeserver(), &[]);
    assert_eq!(
        target_ids(&report),
        ["telegram", "heisenbridge"],
        "{stderr}"
    );
    for target in ["telegram", "heisenbridge"] {
        assert_eq!(failures(&report, target), Vec::<String>::new(), "{target}");
        assert_eq!(status(&report, target, "ping.connection_failed"), "pass");
        assert_eq!(status(&report, target, "registration.not_loaded"), "pass");
    }
    assert_eq!(
        status(&report, "telegram", "homeserver.unreachable"),
        "pass"
    );
    assert_eq!(
        deployment_of(&report, "telegram"),
        &serde_json::json!({"kind": "compose", "service": "mautrix-telegram", "container": "telegram-bridge"})
    );
    assert_eq!(
        deployment_of(&report, "heisenbridge")["service"],
        "heisenbridge"
    );

    // The database at its /data path, read through the bridge's mount.
    let database = result(&report, "telegram", "database.not_created");
    assert_eq!(database["status"], "pass", "{database}");
    // The addresses only the compose network knows, said as what they are.
    let names = result(&report, "telegram", "deployment.name_unresolvable");
    assert_eq!(names["status"], "info", "{names}");
    let title = names["title"].as_str().unwrap();
    assert!(
        title.contains(&format!(
            "`synapse` resolves only inside the compose network; probed through 127.0.0.1:{synapse_port}"
        )) && title.contains("`mautrix-telegram` resolves only inside the compose network; not probed from here"),
        "{title}"
    );
    assert_eq!(
        status(&report, "heisenbridge", "deployment.name_unresolvable"),
        "info"
    );
    assert!(report["summary"]["info"].as_u64().unwrap() >= 2);
    assert!(
        report["diagnoses"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["status"] != "info"),
        "info is never a problem"
    );

    // The terminal report says it too.
    let text = doctor(&[
        "check",
        "--homeserver",
        deployment.homeserver().to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("runs as: compose service mautrix-telegram (container telegram-bridge)")
            && text.contains("probed through 127.0.0.1:"),
        "{text}"
    );

    // The log, named at /data/mautrix-telegram.log, is in the packet.
    let out = doctor_in(
        &deployment.root,
        &[
            "packet",
            "--homeserver",
            deployment.homeserver().to_str().unwrap(),
            "-o",
            "packet.zip",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let entries = unzip(&deployment.root.join("packet.zip"));
    let log = entries
        .iter()
        .find(|(name, _)| name.ends_with("mautrix-telegram.log"))
        .unwrap_or_else(|| {
            panic!(
                "no bridge log in {:?}",
                entries.iter().map(|(n, _)| n).collect::<Vec<_>>()
            )
        });
    assert!(log.1.contains("mau"), "{}", log.1);

    // A stale copy in Synapse's folder: tokens other than the bridge's.
    let copy = deployment.root.join("synapse/telegram-registration.yaml");
    let as_token = yaml_value(&copy, "as_token");
    let original = edit(&copy, &as_token, "stale-as-token-from-an-old-setup");
    let (report, _) = check_json(&deployment.homeserver(), &["--offline"]);
    std::fs::write(&copy, original).unwrap();
    let mismatch = result(&report, "telegram", "tokens.mismatch");
    assert_eq!(mismatch["status"], "fail", "{mismatch}");
    assert!(
        mismatch["title"].as_str().unwrap().contains("as_token"),
        "{mismatch}"
    );
}

/// A compose deployment written out, nothing running: a telegram config
/// with /data paths, Synapse's copy of its registration.
fn compose_on_disk(root: &Path, compose: &str) -> PathBuf {
    let telegram = TelegramBridge::prepare(&root.join("telegram"), "http://synapse:8008");
    std::fs::create_dir_all(root.join("synapse")).unwrap();
    std::fs::copy(
        telegram.registration(),
        root.join("synapse/telegram-registration.yaml"),
    )
    .unwrap();
    let homeserver = root.join("synapse/homeserver.yaml");
    std::fs::write(
        &homeserver,
        "server_name: doctor.test\nlisteners:\n  - port: 8008\n    type: http\n    resources: [{names: [client]}]\napp_service_config_files: [/data/telegram-registration.yaml]\n",
    )
    .unwrap();
    std::fs::write(root.join("compose.yaml"), compose).unwrap();
    homeserver
}

#[test]
fn bad_compose_input_is_one_line_each_and_the_check_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let homeserver = compose_on_disk(
        &root,
        "services:\n  synapse:\n    volumes: ['./synapse:/data']\n  mautrix-telegram:\n    volumes: ['./telegram:/data', './backups:/backup']\n",
    );
    let (report, stderr) = check_json(&homeserver, &["--offline"]);
    let nowhere: Vec<&str> = stderr.lines().filter(|l| l.contains("backups")).collect();
    assert_eq!(nowhere.len(), 1, "{stderr}");
    assert!(
        nowhere[0].contains(&format!(
            "compose.yaml: service `mautrix-telegram` mounts {} at /backup, which does not exist on this machine; correct the source",
            root.join("backups").display()
        )),
        "{stderr}"
    );
    assert_eq!(
        deployment_of(&report, "telegram")["service"],
        "mautrix-telegram"
    );
    assert_eq!(
        status(&report, "telegram", "registration.not_loaded"),
        "pass"
    );

    std::fs::write(root.join("compose.yaml"), "services:\n  synapse: [\n").unwrap();
    let (report, stderr) = check_json(&homeserver, &["--offline"]);
    let broken: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("compose.yaml"))
        .collect();
    assert_eq!(broken.len(), 1, "{stderr}");
    assert!(
        broken[0].contains("not valid YAML")
            && broken[0].contains("containers are not taken into account"),
        "{stderr}"
    );
    // Without the compose file, /data is this machine's: no registration there.
    let targets = report["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 1, "{report}");
    assert_eq!(targets[0]["deployment"]["kind"], "host");
}
