//! Abuse of the appservice port by anyone who can reach it: a flood of
//! refused requests does not fill the disk, and idle connections held open
//! under a 1,024-descriptor limit do not keep the homeserver out.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::*;

/// The descriptor limit the doctor runs under, soft and hard: the usual
/// default, which it cannot raise.
const DOCTOR_NOFILE: u32 = 1024;

/// `bridge-doctor run` with `nofile` as its soft and hard descriptor limit,
/// once its self-check passed.
fn run_doctor_limited(config: &Path, log: &Path, nofile: u32) -> Process {
    let mut command = Command::new("prlimit");
    command
        .arg(format!("--nofile={nofile}:{nofile}"))
        .arg(doctor_bin())
        .arg("run")
        .arg("-c")
        .arg(config);
    let mut doctor = spawn_logged(command, log);
    doctor.wait_for_log("self-check passed", Duration::from_secs(60));
    doctor
}

/// Raises this test process's own descriptor limit to its hard limit: it
/// holds more sockets than the usual soft limit allows.
fn raise_own_descriptor_limit() {
    let pid = std::process::id().to_string();
    let hard = Command::new("prlimit")
        .args([
            "--pid",
            &pid,
            "--nofile",
            "--raw",
            "--noheadings",
            "-o",
            "HARD",
        ])
        .output()
        .unwrap();
    let hard = String::from_utf8_lossy(&hard.stdout).trim().to_owned();
    let status = Command::new("prlimit")
        .args(["--pid", &pid, &format!("--nofile={hard}:{hard}")])
        .status()
        .unwrap();
    assert!(status.success(), "prlimit could not raise the test's limit");
}

/// Sends `request` on a fresh connection; the status code of the answer.
fn status_of(port: u16, request: &[u8]) -> u16 {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut answer = [0u8; 64];
    let read = stream.read(&mut answer).unwrap_or(0);
    String::from_utf8_lossy(&answer[..read])
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

/// The doctor's direct ping with `hs_token` on a fresh connection.
fn ping_request(hs_token: &str) -> Vec<u8> {
    format!("POST /_matrix/app/v1/ping HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {hs_token}\r\nContent-Length: 2\r\n\r\n{{}}").into_bytes()
}

/// CPU time a process has used so far, in clock ticks (1/100 s).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // After the command name in parentheses: utime and stime are the 12th
    // and 13th fields.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn log_size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

#[test]
fn a_flood_of_refused_requests_barely_grows_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _synapse) = doctor_on_own_synapse(dir.path());
    let port: u16 = yaml_value(&config, "port").parse().unwrap();
    let log = dir.path().join("doctor.log");
    let mut doctor = run_doctor_limited(&config, &log, DOCTOR_NOFILE);
    let before = log_size(&log);

    let path = format!("/_matrix/app/v1/transactions/{}", "x".repeat(60_000));
    let request = format!(
        "PUT {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong-token-canary\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
    );
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let request = request.clone();
            std::thread::spawn(move || {
                (0..500)
                    .filter(|_| status_of(port, request.as_bytes()) == 403)
                    .count()
            })
        })
        .collect();
    let refused: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(refused, 2_000, "every wrong-token request is refused");
    doctor.wait_for_log(
        "more rejected requests in the last",
        Duration::from_secs(30),
    );

    let grown = log_size(&log) - before;
    eprintln!("log growth for 2,000 refused requests with 60 KB paths: {grown} bytes");
    assert!(grown < 1_000_000, "the log grew by {grown} bytes");
    let text = doctor.log_text();
    assert!(text.contains("request refused: wrong hs_token"), "{grown}");
    assert!(!text.contains("wrong-token-canary"), "a token was logged");
    let longest = text.lines().map(str::len).max().unwrap_or(0);
    assert!(longest < 1_000, "a log line of {longest} bytes");
    assert_eq!(doctor.terminate(), Some(0));
}

#[test]
fn idle_connections_do_not_keep_the_homeserver_out() {
    raise_own_descriptor_limit();
    let dir = tempfile::tempdir().unwrap();
    let (config, synapse) = doctor_on_own_synapse(dir.path());
    let port: u16 = yaml_value(&config, "port").parse().unwrap();
    let as_token = yaml_value(&config, "as_token");
    let hs_token = yaml_value(&config, "hs_token");
    let mut doctor = run_doctor_limited(&config, &dir.path().join("doctor.log"), DOCTOR_NOFILE);

    // More idle connections than the doctor has descriptors.
    let idle: Vec<TcpStream> = (0..1_100)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();

    // The homeserver's ping, the way Synapse makes it.
    let started = Instant::now();
    let ping = homeserver_ping(&synapse, &as_token);
    let through_synapse = started.elapsed();
    assert_eq!(ping.status, 200, "{:?}", ping.body);
    // The same ping on a fresh connection, which must get past the idle ones.
    let started = Instant::now();
    let direct = status_of(port, &ping_request(&hs_token));
    let fresh = started.elapsed();
    eprintln!(
        "ping under 1,100 idle connections: {through_synapse:?} through Synapse ({} ms as Synapse timed it), {fresh:?} on a fresh connection",
        ping.body["duration_ms"]
    );
    assert_eq!(direct, 200);
    assert!(
        through_synapse < Duration::from_secs(1),
        "{through_synapse:?}"
    );
    assert!(fresh < Duration::from_secs(1), "{fresh:?}");
    assert!(
        doctor
            .log_text()
            .contains("the oldest one without an authorised request was closed"),
        "{}",
        doctor.log_text()
    );
    drop(idle);
    assert!(doctor.child.try_wait().unwrap().is_none(), "still running");
    assert_eq!(doctor.terminate(), Some(0));
}

#[test]
fn out_of_descriptors_the_doctor_waits_instead_of_spinning() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _synapse) = doctor_on_own_synapse(dir.path());
    let port: u16 = yaml_value(&config, "port").parse().unwrap();
    let hs_token = yaml_value(&config, "hs_token");
    // Fewer descriptors than the connection cap: accept runs out first.
    let mut doctor = run_doctor_limited(&config, &dir.path().join("doctor.log"), 256);
    let idle: Vec<TcpStream> = (0..400)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    doctor.wait_for_log("no file descriptor left", Duration::from_secs(10));

    let pid = doctor.child.id();
    let before = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(2));
    let used = cpu_ticks(pid) - before;
    eprintln!("CPU while out of descriptors: {used} ticks of 200");
    assert!(
        used < 40,
        "the doctor used {used} hundredths of a second of CPU in 2 s"
    );
    // The idle connections are closed after their deadline: the port
    // answers again while they are still held.
    assert_eq!(status_of(port, &ping_request(&hs_token)), 200);
    drop(idle);
    assert_eq!(doctor.terminate(), Some(0));
}
