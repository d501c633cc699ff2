//! Faults of the world, on a real Synapse: an appservice that accepts the
//! homeserver's connection and never answers (a hung bridge, a firewall
//! that drops) is named `ping.timeout`, within the doctor's own timeout,
//! and many of them cost one timeout, not one each. A homeserver that hangs
//! or is gone is named within one timeout by `check` and by `run`'s start;
//! a database path through a file is named with its fix. Under a running
//! doctor: a homeserver restarted mid-command loses no answer; a bridge
//! restarted between two watch runs raises no alert, one that stays down or
//! hangs raises exactly one.

mod support;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::scene::*;
use support::*;

/// The doctor's probe timeout (`facts::PROBE_TIMEOUT`).
const TIMEOUT: Duration = Duration::from_secs(10);

/// A socket that accepts every connection and never answers; the
/// connections are held until the test ends.
fn tarpit() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    port
}

/// A registration `id` at `url`, with tokens and a namespace of its own.
fn registration(dir: &Path, id: &str, url: &str) -> PathBuf {
    let path = dir.join(format!("{id}.yaml"));
    std::fs::write(
        &path,
        format!(
            "id: {id}\nurl: {url}\nas_token: as-{id}-3f9a1c\nhs_token: hs-{id}-3f9a1c\nsender_localpart: {id}bot\nnamespaces:\n  users:\n    - regex: '@{id}_.*:doctor\\.test'\n      exclusive: true\n"
        ),
    )
    .unwrap();
    path
}

/// A homeserver config whose client listener is on `port` and which loads
/// `registrations`.
fn homeserver_yaml(dir: &Path, port: u16, registrations: &[&Path]) -> PathBuf {
    let path = dir.join("homeserver.yaml");
    let files: Vec<String> = registrations
        .iter()
        .map(|r| format!("'{}'", r.display()))
        .collect();
    std::fs::write(
        &path,
        format!(
            "server_name: {SERVER_NAME}\nlisteners:\n  - port: {port}\n    type: http\n    resources: [{{names: [client]}}]\napp_service_config_files: [{}]\n",
            files.join(", ")
        ),
    )
    .unwrap();
    path
}

fn check(hs: &Path) -> (Value, Duration) {
    let started = Instant::now();
    let out = doctor(&[
        "check",
        "--homeserver",
        hs.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let took = started.elapsed();
    let report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    (report, took)
}

#[test]
fn hung_appservices_are_named_within_one_timeout_among_two_hundred() {
    let dir = tempfile::tempdir().unwrap();
    let regs = dir.path().join("registrations");
    std::fs::create_dir_all(&regs).unwrap();
    let hung = format!("http://127.0.0.1:{}", tarpit());
    let closed = format!("http://127.0.0.1:{}", free_port());
    let paths: Vec<PathBuf> = (0..200)
        .map(|n| {
            let url = if n % 4 == 0 { &hung } else { &closed };
            registration(&regs, &format!("b{n:03}"), url)
        })
        .collect();
    let refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
    let synapse = Synapse::start(&dir.path().join("synapse"), &refs);

    let (report, took) = check(&synapse.config_path);
    assert!(took < 2 * TIMEOUT, "200 targets, 50 hung, took {took:?}");
    let status = |id: &str, check: &str| result(&report, id, check)["status"].clone();
    for n in 0..200 {
        let id = format!("b{n:03}");
        if n % 4 == 0 {
            assert_eq!(status(&id, "ping.timeout"), "fail", "{id}");
            let finding = result(&report, &id, "ping.timeout");
            let detail = finding["detail"].as_str().unwrap();
            assert!(
                detail.contains(&hung) && detail.contains("never answered"),
                "{finding}"
            );
        } else {
            assert_eq!(status(&id, "ping.timeout"), "pass", "{id}");
            assert_eq!(status(&id, "ping.connection_failed"), "fail", "{id}");
        }
    }
}

/// A Synapse whose `notify_appservices_from_worker` names a worker that
/// does not run makes no transaction at all: the appservice stays `up`
/// with nothing pending. The events waiting past the appservice stream
/// position say so once they have waited a minute.
#[test]
fn a_stopped_appservice_sender_is_named_from_the_event_stream() {
    let dir = tempfile::tempdir().unwrap();
    let registration = registration(
        dir.path(),
        "waiting",
        &format!("http://127.0.0.1:{}", free_port()),
    );
    let synapse = Synapse::start_with(
        &dir.path().join("synapse"),
        &[&registration],
        "notify_appservices_from_worker: appservice1\n",
    );
    let alice = Talker::in_new_room(&synapse);
    alice.say(1);

    // At once: a sender a few seconds behind is only busy.
    let (report, _) = check(&synapse.config_path);
    assert_eq!(
        result(&report, "waiting", "delivery.stalled")["status"],
        "pass",
        "{report}"
    );

    std::thread::sleep(Duration::from_secs(62));
    let (report, _) = check(&synapse.config_path);
    let stalled = result(&report, "waiting", "delivery.stalled");
    assert_eq!(stalled["status"], "fail", "{stalled}");
    let detail = stalled["detail"].as_str().unwrap();
    assert!(
        detail.contains("the worker `appservice1`") && detail.contains("event(s) wait"),
        "{detail}"
    );
}

/// A packet into a folder that fills up: exit 2, one line naming the folder
/// and the reason, and nothing left behind. The folder is a 48 KiB tmpfs in
/// a mount namespace of its own (`unshare -m`), so nothing outside sees it.
#[test]
fn a_full_disk_leaves_no_debris_and_one_plain_line() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // A bridge whose config holds its registration's tokens and names a log.
    let registration = registration(root, "full", "http://127.0.0.1:2")
        .display()
        .to_string();
    std::fs::write(
        root.join("config.yaml"),
        "homeserver:\n  address: http://127.0.0.1:1\n  domain: example.org\nappservice:\n  address: http://127.0.0.1:2\n  as_token: as-full-3f9a1c\n  hs_token: hs-full-3f9a1c\n  bot_username: fullbot\nlogging:\n  handlers:\n    file:\n      filename: ./bridge.log\n",
    )
    .unwrap();
    // A log the zip cannot squeeze into 48 KiB: pseudo-random letters.
    let mut seed = 0x2545_f491_u64;
    let log: String = (0..20_000)
        .map(|n| {
            let letters: String = (0..60)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    char::from(b'a' + (seed % 26) as u8)
                })
                .collect();
            format!(
                "[2026-12-03 10:00:00,{:03}] [INFO@mau.x] {letters}\n",
                n % 1000
            )
        })
        .collect();
    std::fs::write(root.join("bridge.log"), log).unwrap();
    std::fs::write(
        root.join("homeserver.yaml"),
        format!("server_name: example.org\nlisteners:\n  - port: 1\n    type: http\n    resources: [{{names: [client]}}]\napp_service_config_files: ['{registration}']\n"),
    )
    .unwrap();
    let full = root.join("full");
    std::fs::create_dir_all(&full).unwrap();
    let script = format!(
        "mount -t tmpfs -o size=48k tmpfs {full} && {doctor} packet --homeserver {hs} -o {full}; echo \"exit=$?\"; ls -A {full}",
        full = full.display(),
        doctor = doctor_bin(),
        hs = root.join("homeserver.yaml").display(),
    );
    let out = std::process::Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "unshare: {stderr}");
    assert_eq!(
        stdout.trim(),
        "exit=2",
        "an exit code and an empty folder:\n{stdout}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&full.display().to_string()) && stderr.contains("no space left"),
        "{stderr}"
    );
}

/// Synapse as large installations run it: PostgreSQL, Redis, and a worker
/// (`notify_appservices_from_worker`) that sends every appservice
/// transaction. Healthy, the worker keeps the appservice stream position at
/// the newest event; stopped, events wait and `delivery.stalled` names it.
#[test]
fn a_stopped_appservice_worker_is_named_from_the_event_stream() {
    let dir = tempfile::tempdir().unwrap();
    let registration = registration(
        dir.path(),
        "sent",
        &format!("http://127.0.0.1:{}", free_port()),
    );
    let postgres = Postgres::start();
    postgres.sql(
        "postgres",
        "CREATE DATABASE synapse ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0",
    );
    let redis_port = free_port();
    let mut redis_command = std::process::Command::new("redis-server");
    redis_command.args([
        "--port",
        &redis_port.to_string(),
        "--save",
        "",
        "--bind",
        "127.0.0.1",
    ]);
    let _redis = spawn_logged(redis_command, &dir.path().join("redis.log"));
    let replication = free_port();
    let hs_dir = dir.path().join("synapse");
    let synapse = Synapse::start_edited(&hs_dir, &[&registration], |text| {
        let sqlite = format!(
            "database:\n  name: sqlite3\n  args:\n    database: {}/homeserver.db\n",
            hs_dir.display()
        );
        assert!(
            text.contains(&sqlite),
            "the template's database section changed"
        );
        text.replace(
            &sqlite,
            &format!(
                "database:\n  name: psycopg2\n  args:\n    user: postgres\n    password: '{}'\n    database: synapse\n    host: 127.0.0.1\n    port: {}\n    cp_min: 1\n    cp_max: 5\n",
                postgres.password, postgres.port
            ),
        )
        .replace(
            "listeners:\n",
            &format!("listeners:\n  - port: {replication}\n    bind_addresses: ['127.0.0.1']\n    type: http\n    resources:\n      - names: [replication]\n"),
        ) + &format!(
            "redis:\n  enabled: true\n  host: 127.0.0.1\n  port: {redis_port}\ninstance_map:\n  main:\n    host: 127.0.0.1\n    port: {replication}\nnotify_appservices_from_worker: appservice1\n"
        )
    });
    let worker_config = hs_dir.join("appservice1.yaml");
    std::fs::write(
        &worker_config,
        "worker_app: synapse.app.generic_worker\nworker_name: appservice1\n",
    )
    .unwrap();
    let start_worker = || {
        let mut command = std::process::Command::new(python());
        command
            .args(["-m", "synapse.app.generic_worker", "-c"])
            .arg(&synapse.config_path)
            .arg("-c")
            .arg(&worker_config);
        spawn_logged(command, &hs_dir.join("worker.log"))
    };
    let mut worker = start_worker();
    let alice = Talker::in_new_room(&synapse);

    // Healthy: the worker brings the position to the newest event. It
    // hears of events once it is subscribed, so traffic goes on meanwhile,
    // as it does on a real server.
    let caught_up = "SELECT (SELECT stream_ordering FROM appservice_stream_position) >= (SELECT MAX(stream_ordering) FROM events)";
    let started = Instant::now();
    let mut sent = 0;
    while !psql_true(&postgres, caught_up) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the worker never caught up: {}\n{}",
            psql_text(
                &postgres,
                "SELECT (SELECT stream_ordering FROM appservice_stream_position), (SELECT MAX(stream_ordering) FROM events)"
            ),
            worker.log_text()
        );
        if started.elapsed() >= Duration::from_secs(2 * sent) {
            sent += 1;
            alice.say(sent as u32);
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let (report, _) = check(&synapse.config_path);
    assert_eq!(
        result(&report, "sent", "delivery.stalled")["status"],
        "pass",
        "{report}"
    );

    // Stopped: events wait past the position.
    worker.terminate();
    alice.say(1000);
    std::thread::sleep(Duration::from_secs(62));
    let (report, _) = check(&synapse.config_path);
    let stalled = result(&report, "sent", "delivery.stalled");
    assert_eq!(stalled["status"], "fail", "{stalled}");
    let detail = stalled["detail"].as_str().unwrap();
    assert!(
        detail.contains("the worker `appservice1`") && detail.contains("event(s) wait"),
        "{detail}"
    );
}

/// Whether a one-value SQL query answers true.
fn psql_true(postgres: &Postgres, sql: &str) -> bool {
    psql_text(postgres, sql) == "t"
}

/// What an SQL query answers in Synapse's database, as psql prints it.
fn psql_text(postgres: &Postgres, sql: &str) -> String {
    let out = std::process::Command::new("psql")
        .arg(postgres.uri("synapse"))
        .args(["-tA", "-c", sql])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A user talking in a room of her own: events the appservice sender must
/// go through, whoever they are for.
struct Talker {
    base: String,
    token: String,
    room: String,
}

impl Talker {
    fn in_new_room(synapse: &Synapse) -> Talker {
        register_user(synapse, "alice", false);
        let token = login(synapse, "alice");
        let room = blocking::client()
            .post(&format!("{}/_matrix/client/v3/createRoom", synapse.url()))
            .bearer(&token)
            .json(&serde_json::json!({}))
            .send()
            .unwrap();
        Talker {
            base: synapse.url(),
            token,
            room: room.body["room_id"].as_str().unwrap().to_owned(),
        }
    }

    /// Sends message `n` (its transaction id).
    fn say(&self, n: u32) {
        blocking::client()
            .put(&format!(
                "{}/_matrix/client/v3/rooms/{}/send/m.room.message/{n}",
                self.base, self.room
            ))
            .bearer(&self.token)
            .json(&serde_json::json!({"msgtype": "m.text", "body": format!("message {n}")}))
            .send()
            .unwrap();
    }
}

/// `check` and `run`'s start against a homeserver at `port` that cannot
/// be reached: both end within `limit`, name the address and `cause`;
/// `run` exits 3 with one error line.
fn unreachable_homeserver_is_named(port: u16, cause: &str, limit: Duration) {
    let dir = tempfile::tempdir().unwrap();
    let address = format!("http://127.0.0.1:{port}");
    let bridge = registration(dir.path(), "lost", "http://127.0.0.1:2");
    let (report, took) = check(&homeserver_yaml(dir.path(), port, &[&bridge]));
    assert!(took < limit, "check took {took:?}");
    let finding = result(&report, "lost", "homeserver.unreachable");
    assert_eq!(finding["status"], "fail", "{finding}");
    let title = finding["title"].as_str().unwrap();
    assert!(
        title.contains(&address) && title.contains(cause),
        "{finding}"
    );
    // The rest of the check ran: the registration was read and judged.
    assert_eq!(
        result(&report, "lost", "config.unreadable")["status"],
        "pass"
    );

    let config = doctor_config_generated(dir.path(), &address, "");
    let started = Instant::now();
    let out = doctor(&["run", "-c", config.to_str().unwrap()]);
    let took = started.elapsed();
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{log}");
    // startup_wait_seconds (5 in the test config) is the most it waits more.
    assert!(took < limit + Duration::from_secs(5), "run took {took:?}");
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("ERROR") && l.contains("check="))
        .collect();
    assert_eq!(errors.len(), 1, "{log}");
    assert!(
        errors[0].contains(&format!(
            "the homeserver at {address} cannot be reached: {cause}"
        )),
        "{log}"
    );
}

#[test]
fn a_homeserver_that_never_answers_is_named_within_one_timeout() {
    unreachable_homeserver_is_named(
        tarpit(),
        "the connection timed out",
        TIMEOUT + Duration::from_secs(3),
    );
}

#[test]
fn a_homeserver_that_is_gone_is_named_at_once() {
    unreachable_homeserver_is_named(
        free_port(),
        "nothing listens on that host and port",
        Duration::from_secs(3),
    );
}

/// A SQLite path through a regular file (`data` a file, not a folder): the
/// bridge's is `database.unreachable` naming the path and the fix, not a
/// bridge that merely has not started; the doctor's own makes `run` exit 2
/// with one line naming it.
#[test]
fn a_database_path_through_a_file_is_named_with_its_fix() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("data"), "a file where a folder should be\n").unwrap();
    let bridge = registration(root, "filed", "http://127.0.0.1:2");
    std::fs::write(
        root.join("config.yaml"),
        "homeserver:\n  address: http://127.0.0.1:1\n  domain: doctor.test\nappservice:\n  address: http://127.0.0.1:2\n  as_token: as-filed-3f9a1c\n  hs_token: hs-filed-3f9a1c\n  bot_username: filedbot\n  database: sqlite:data/filed.db\n",
    )
    .unwrap();
    let (report, _) = check(&homeserver_yaml(root, free_port(), &[&bridge]));
    let data = root.join("data").display().to_string();
    let finding = result(&report, "filed", "database.unreachable");
    assert_eq!(finding["status"], "fail", "{finding}");
    let detail = finding["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!(
            "{data}/filed.db can never be created: {data} is a file, not a folder"
        )) && detail.contains("point `appservice.database` at a file in a folder"),
        "{finding}"
    );
    assert_eq!(
        result(&report, "filed", "database.not_created")["status"],
        "skip",
        "not a bridge that has not started yet"
    );
    // The rest of the check ran.
    assert_eq!(
        result(&report, "filed", "tokens.mismatch")["status"],
        "pass"
    );

    let config = doctor_config_generated(root, "http://127.0.0.1:1", "");
    edit(
        &config,
        "database: sqlite:doctor.db",
        "database: sqlite:data/doctor.db",
    );
    let out = doctor(&["run", "-c", config.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let line = format!(
        "error: cannot create the doctor's database {data}/doctor.db: a folder on its path is a file. Point `database` in the config at a file"
    );
    assert!(stderr.contains(&line), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// The homeserver restarts while the bot works on a command (a `check`
/// slowed by a frozen bridge, so its answer is due while Synapse is down):
/// the doctor keeps running, that command is answered once Synapse is back,
/// and a command after the restart is answered too.
#[test]
fn a_homeserver_restarted_under_the_running_doctor_loses_no_command() {
    let mut scene = Scene::start(3600);
    scene.wait_for_first_run();
    scene.bridge.freeze();
    say(&scene.synapse, &scene.token, &scene.room, "check telegram");
    scene
        .doctor
        .wait_for_log("command=\"check\"", Duration::from_secs(20));
    scene.synapse.restart();
    scene.bridge.thaw();
    let answered = |needle: &str| count(&scene.seen(), needle);
    wait_for_answer(&scene, " passed, ", "the check asked before the restart");
    say(&scene.synapse, &scene.token, &scene.room, "help");
    wait_for_answer(&scene, "check [BRIDGE]", "help, asked after the restart");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(answered(" passed, "), 1, "{:#?}", scene.seen());
    assert_eq!(
        scene.doctor.child.try_wait().unwrap(),
        None,
        "the doctor still runs"
    );
    let log = scene.doctor.log_text();
    assert!(!log.contains("panicked"), "{log}");
}

/// Until the bot's messages hold `needle`; else fails with the end of the
/// doctor's log.
fn wait_for_answer(scene: &Scene, needle: &str, what: &str) {
    let start = Instant::now();
    while count(&scene.seen(), needle) == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no answer to {what}; the doctor's log ends:\n{}",
            log_tail(&scene.doctor, 40)
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The last `lines` lines of a process's log.
fn log_tail(process: &Process, lines: usize) -> String {
    let log = process.log_text();
    let all: Vec<&str> = log.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Until a watch run has seen the bridge healthy (`healthy`) or not.
fn wait_for_run_seeing(scene: &Scene, healthy: bool, limit: Duration) {
    let series = format!(
        "bridge_doctor_target_healthy{{target=\"telegram\"}} {}",
        u8::from(healthy)
    );
    eventually(limit, &series, || {
        metrics(scene.metrics_port).contains(&series)
    });
}

/// A bridge restarted between two watch runs (one run sees it down, the
/// next up) raises no alert; one that stays down raises exactly one.
#[test]
fn a_bridge_restarted_between_two_watch_runs_raises_no_alert() {
    const INTERVAL: Duration = Duration::from_secs(20);
    let mut scene = Scene::start(INTERVAL.as_secs());
    scene.wait_for_first_run();
    scene.bridge.stop();
    wait_for_run_seeing(&scene, false, INTERVAL * 2);
    scene.bridge.start();
    wait_for_run_seeing(&scene, true, INTERVAL * 2);
    assert_eq!(
        count(&scene.seen(), "telegram is failing"),
        0,
        "{:#?}",
        scene.seen()
    );

    scene.bridge.stop();
    let alert = scene.one_failing_alert(INTERVAL * 3, "one alert for a bridge that stays down");
    assert!(alert.contains("ping.connection_failed"), "{alert}");
    // Another run with the bridge still down repeats nothing.
    std::thread::sleep(INTERVAL + Duration::from_secs(2));
    assert_eq!(count(&scene.seen(), "telegram is failing"), 1);
}

/// A hung bridge (frozen: it accepts and never answers) raises one alert
/// naming `ping.timeout`, as a refusing one raises `ping.connection_failed`.
#[test]
fn a_hung_bridge_raises_one_alert_in_watch_mode() {
    const INTERVAL: Duration = Duration::from_secs(15);
    let scene = Scene::start(INTERVAL.as_secs());
    scene.wait_for_first_run();
    scene.bridge.freeze();
    // Two runs, each waiting out one probe timeout.
    let alert = scene.one_failing_alert((INTERVAL + TIMEOUT) * 3, "an alert for the hung bridge");
    assert!(alert.contains("ping.timeout"), "{alert}");
    scene.bridge.thaw();
}
