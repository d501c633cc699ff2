//! Hostile input on the appservice API: whatever arrives, the answer is a
//! 4xx with a Matrix error code, never a 5xx, and the doctor stays up.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::json;
use support::*;

/// The status line's code of a raw HTTP/1.1 exchange.
fn raw_status(port: u16, request: &[u8]) -> u16 {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut answer = [0u8; 512];
    let read = stream.read(&mut answer).unwrap();
    let text = String::from_utf8_lossy(&answer[..read]);
    text.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"))
}

#[test]
fn hostile_requests_get_matrix_errors_and_the_doctor_stays_up() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _synapse) = doctor_on_own_synapse(dir.path());
    let hs_token = yaml_value(&config, "hs_token");
    let port: u16 = yaml_value(&config, "port").parse().unwrap();
    let mut doctor = run_doctor(&config, &dir.path().join("doctor.log"));

    let base = format!("http://127.0.0.1:{port}");
    let txn = |id: &str| format!("{base}/_matrix/app/v1/transactions/{id}");
    let http = blocking::client();
    // Within the body limit (4096 here), far past serde_json's nesting limit.
    let nested = format!(
        "{{\"events\": [{}1{}]}}",
        "[".repeat(1_500),
        "]".repeat(1_500)
    );
    let garbage: Vec<u8> = (0..4000u32).map(|i| (i * 7919 % 251) as u8).collect();
    let bodies: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("garbage bytes", garbage, 400, "M_NOT_JSON"),
        (
            "a list, not an object",
            b"[1, 2]".to_vec(),
            400,
            "M_BAD_JSON",
        ),
        (
            "events not a list",
            br#"{"events": "all of them"}"#.to_vec(),
            400,
            "M_BAD_JSON",
        ),
        (
            "ephemeral not a list",
            br#"{"ephemeral": {"a": 1}}"#.to_vec(),
            400,
            "M_BAD_JSON",
        ),
        ("deeply nested", nested.into_bytes(), 400, "M_NOT_JSON"),
        (
            "invalid UTF-8 in a string",
            b"{\"events\": [\"\xff\xfe\"]}".to_vec(),
            400,
            "M_NOT_JSON",
        ),
    ];
    for (n, (what, body, status, errcode)) in bodies.into_iter().enumerate() {
        let answer = http
            .put(&txn(&format!("h{n}")))
            .bearer(&hs_token)
            .body(body)
            .send()
            .unwrap();
        assert_eq!(
            (answer.status, answer.body["errcode"].as_str()),
            (status, Some(errcode)),
            "{what}"
        );
    }
    // Odd but valid: events of every wrong shape are skipped, the rest goes on.
    let odd = json!({"events": [1, "x", null, {"type": 5}, {"type": "m.room.message", "room_id": 7}, {}]});
    let answer = http
        .put(&txn("odd"))
        .bearer(&hs_token)
        .json(&odd)
        .send()
        .unwrap();
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    let empty = http
        .put(&txn("empty"))
        .bearer(&hs_token)
        .body(Vec::new())
        .send()
        .unwrap();
    assert_eq!(empty.status, 200);

    // Unknown paths and wrong methods.
    let unknown = http
        .get(&format!("{base}/_matrix/app/v1/nothing"))
        .bearer(&hs_token)
        .send()
        .unwrap();
    assert_eq!(
        (unknown.status, unknown.body["errcode"].as_str()),
        (404, Some("M_UNRECOGNIZED"))
    );
    let wrong_method = http.get(&txn("x")).bearer(&hs_token).send().unwrap();
    assert_eq!(
        (wrong_method.status, wrong_method.body["errcode"].as_str()),
        (405, Some("M_UNRECOGNIZED"))
    );
    let wrong_method = http
        .put(&format!("{base}/_matrix/app/v1/ping"))
        .bearer(&hs_token)
        .send()
        .unwrap();
    assert_eq!(wrong_method.status, 405);

    // 64 MiB announced: refused before a byte of it is sent.
    let status = raw_status(
        port,
        format!("PUT /_matrix/app/v1/transactions/big HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {hs_token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n", 64 << 20).as_bytes(),
    );
    assert_eq!(status, 413);
    // Bytes that are not HTTP at all.
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .write_all(b"\x16\x03\x01\x02\x00 not http at all\r\n\r\n")
        .unwrap();
    drop(stream);

    assert!(
        doctor.child.try_wait().unwrap().is_none(),
        "the doctor is still running"
    );
    let log = doctor.log_text();
    assert!(!log.contains("panicked"), "{log}");
    let ping = http
        .post(&format!("{base}/_matrix/app/v1/ping"))
        .bearer(&hs_token)
        .json(&json!({}))
        .send()
        .unwrap();
    assert_eq!(ping.status, 200, "still answering");
    assert_eq!(doctor.terminate(), Some(0));
}

/// Bytes sent now and then on a fresh connection; what the server answered
/// (`None`: it closed the connection without a word) and after how long.
fn trickle(
    port: u16,
    first: &[u8],
    every: Duration,
    more: &'static [u8],
) -> (Option<String>, Duration) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(every)).unwrap();
    stream.write_all(first).unwrap();
    let start = std::time::Instant::now();
    let mut answer = [0u8; 512];
    while start.elapsed() < Duration::from_secs(60) {
        match stream.read(&mut answer) {
            Ok(0) => return (None, start.elapsed()),
            Ok(read) => {
                return (
                    Some(String::from_utf8_lossy(&answer[..read]).into_owned()),
                    start.elapsed(),
                );
            }
            Err(err)
                if err.kind() == std::io::ErrorKind::WouldBlock
                    || err.kind() == std::io::ErrorKind::TimedOut =>
            {
                if stream.write_all(more).is_err() {
                    return (None, start.elapsed());
                }
            }
            Err(_) => return (None, start.elapsed()),
        }
    }
    panic!("the server kept the slow connection open for a minute");
}

#[test]
fn slow_clients_are_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _synapse) = doctor_on_own_synapse(dir.path());
    let hs_token = yaml_value(&config, "hs_token");
    let port: u16 = yaml_value(&config, "port").parse().unwrap();
    let mut doctor = run_doctor(&config, &dir.path().join("doctor.log"));

    // Headers that never end (slowloris): the connection is closed.
    let headers = std::thread::spawn(move || {
        trickle(
            port,
            b"PUT /_matrix/app/v1/transactions/slow HTTP/1.1\r\nHost: x\r\n",
            Duration::from_secs(5),
            b"X-Slow: yes\r\n",
        )
    });
    // A body that never arrives: 408.
    let request = format!(
        "PUT /_matrix/app/v1/transactions/slow-body HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {hs_token}\r\nContent-Length: 100\r\n\r\n{{\"events\""
    );
    let body =
        std::thread::spawn(move || trickle(port, request.as_bytes(), Duration::from_secs(5), b" "));
    let (answer, waited) = headers.join().unwrap();
    assert!(
        answer.is_none()
            || answer
                .as_deref()
                .is_some_and(|a| a.starts_with("HTTP/1.1 408")),
        "{answer:?}"
    );
    assert!(waited < Duration::from_secs(45), "cut off after {waited:?}");
    let (answer, waited) = body.join().unwrap();
    assert!(
        answer
            .as_deref()
            .is_some_and(|a| a.starts_with("HTTP/1.1 408")),
        "{answer:?}"
    );
    assert!(waited < Duration::from_secs(45), "cut off after {waited:?}");

    assert!(
        doctor.child.try_wait().unwrap().is_none(),
        "the doctor is still running"
    );
    assert_eq!(doctor.terminate(), Some(0));
}
