//! Crash safety: the doctor is SIGKILLed while it answers a command that
//! came in a transaction; after the restart, and however often the
//! homeserver sends that event again, the command is answered exactly once.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::*;

fn replies_to(events: &[Value], event_id: &str) -> usize {
    events
        .iter()
        .filter(|e| {
            e["sender"] == "@doctor:doctor.test"
                && e["content"]["m.relates_to"]["m.in_reply_to"]["event_id"] == event_id
        })
        .count()
}

/// Kills `doctor` (SIGKILL) the moment its log shows `needle`.
fn kill_on(doctor: &mut Process, needle: &str) {
    let start = Instant::now();
    while !doctor.log_text().contains(needle) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no {needle:?}:\n{}",
            doctor.log_text()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    doctor.child.kill().unwrap();
    doctor.child.wait().unwrap();
}

#[test]
fn a_command_in_flight_when_the_doctor_is_killed_is_answered_once() {
    let dir = tempfile::tempdir().unwrap();
    let (config, synapse) = doctor_on_own_synapse(dir.path());
    let hs_token = yaml_value(&config, "hs_token");
    let mut doctor = run_doctor(&config, &dir.path().join("doctor-1.log"));

    // The admin's direct chat with the bot, as a client makes it (unencrypted).
    let (token, room) = admin_direct_chat(&synapse);
    let http = blocking::client();
    let start = Instant::now();
    while !room_messages(&synapse, &token, &room)
        .iter()
        .any(|e| e["sender"] == "@doctor:doctor.test" && e["type"] == "m.room.message")
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the bot never greeted"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // `check` takes a while (it probes the homeserver): killed as it starts.
    let sent = http
        .put(&format!(
            "{}/_matrix/client/v3/rooms/{room}/send/m.room.message/crash-1",
            synapse.url()
        ))
        .bearer(&token)
        .json(&json!({"msgtype": "m.text", "body": "check"}))
        .send()
        .unwrap();
    let event_id = sent.body["event_id"].as_str().unwrap().to_owned();
    kill_on(&mut doctor, "bot: command");
    let before = replies_to(&room_messages(&synapse, &token, &room), &event_id);
    assert_eq!(before, 0, "killed before it answered");
    let first_log = doctor.log_text();
    let txn_id = first_log
        .lines()
        .filter(|l| l.contains("transaction received"))
        .filter_map(|l| l.split("txn_id=\"").nth(1)?.split('"').next())
        .next_back()
        .unwrap()
        .to_owned();

    // Restarted, it answers from what it had recorded: the homeserver got
    // its 200 and will not send the event again.
    let mut doctor = run_doctor(&config, &dir.path().join("doctor-2.log"));
    let start = Instant::now();
    while replies_to(&room_messages(&synapse, &token, &room), &event_id) == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no answer after the restart:\n{}",
            doctor.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        doctor
            .log_text()
            .contains("handling the events left from the last run")
    );

    // A homeserver that did not see the 200 sends it again, in the same
    // transaction or another one: nothing more is answered.
    let event = http
        .get(&format!(
            "{}/_matrix/client/v3/rooms/{room}/event/{event_id}",
            synapse.url()
        ))
        .bearer(&token)
        .send()
        .unwrap()
        .body;
    for txn in [txn_id.as_str(), "resent-by-the-homeserver"] {
        let answer = http
            .put(&format!(
                "http://127.0.0.1:{}/_matrix/app/v1/transactions/{txn}",
                yaml_value(&config, "port")
            ))
            .bearer(&hs_token)
            .json(&json!({"events": [event]}))
            .send()
            .unwrap();
        assert_eq!(answer.status, 200);
    }
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        replies_to(&room_messages(&synapse, &token, &room), &event_id),
        1,
        "answered exactly once"
    );
    assert_eq!(doctor.terminate(), Some(0));
}

/// The same for an encrypted direct chat (a real encrypting client): the
/// device's sync may already have moved past the command when the doctor
/// dies, so it is the transaction's copy (kept, or sent again by the
/// homeserver) that the restarted doctor decrypts and answers, once.
#[test]
fn an_encrypted_command_in_flight_when_the_doctor_is_killed_is_answered_once() {
    let dir = tempfile::tempdir().unwrap();
    let (config, synapse) = doctor_on_own_synapse(dir.path());
    register_user(&synapse, "admin", true);
    let mut doctor = run_doctor(&config, &dir.path().join("doctor-1.log"));
    doctor.wait_for_log(
        "check=encryption.doctor_unavailable",
        Duration::from_secs(60),
    );

    // Killed the moment `check` starts, while the client is still running.
    let killer = std::thread::spawn(move || {
        kill_on(&mut doctor, "command=\"check\"");
        doctor
    });
    let out = dir.path().to_str().unwrap().to_owned();
    let (sent, _) = run_client("e2e_client.py", &synapse, &[&out, "crash"], &String::new);
    let doctor = killer.join().unwrap();
    let first_log = doctor.log_text();
    let room = sent["room"].as_str().unwrap();
    let event_id = sent["event_id"].as_str().unwrap();

    let mut doctor = run_doctor(&config, &dir.path().join("doctor-2.log"));
    let (seen, _) = run_client(
        "e2e_client.py",
        &synapse,
        &[&out, "replies", room, event_id],
        &|| {
            format!(
                "first run:\n{first_log}\nsecond run:\n{}",
                doctor.log_text()
            )
        },
    );
    let token = login(&synapse, "admin");
    let raw: Vec<String> = room_messages(&synapse, &token, room)
        .iter()
        .filter(|e| e["sender"] == "@doctor:doctor.test")
        .map(|e| format!("{} {}", e["type"], e["content"]))
        .collect();
    assert_eq!(
        seen["replies"],
        1,
        "answered exactly once: {seen}\nbot events: {raw:#?}\nfirst run:\n{first_log}\nsecond run:\n{}",
        doctor.log_text()
    );
    assert_eq!(seen["encrypted"], true, "{seen}");
    assert_eq!(doctor.terminate(), Some(0));
}
