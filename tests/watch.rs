//! Watch mode against real programs: a real mautrix-telegram stopped under
//! a running doctor is announced once in the admin's management room, and
//! once more when it is back; `/metrics` shows it unhealthy, then healthy.

mod support;

use std::time::Duration;

use support::scene::*;

#[test]
fn a_stopped_bridge_is_announced_once_and_its_recovery_once() {
    let Scene {
        dir: _dir,
        mut bridge,
        synapse,
        mut doctor,
        token,
        room,
        metrics_port,
    } = Scene::start(10);
    let seen = || bot_bodies(&synapse, &token, &room);
    say(&synapse, &token, &room, "help");
    eventually(Duration::from_secs(20), "the answer to help", || {
        count(&seen(), "check [BRIDGE]") == 1
    });
    let healthy = "bridge_doctor_target_healthy{target=\"telegram\"} 1";
    let unhealthy = "bridge_doctor_target_healthy{target=\"telegram\"} 0";
    eventually(
        Duration::from_secs(30),
        "telegram healthy in /metrics",
        || metrics(metrics_port).contains(healthy),
    );

    bridge.stop();
    eventually(Duration::from_secs(40), "an alert", || {
        count(&seen(), "telegram is failing") == 1
    });
    let alert = seen()
        .into_iter()
        .find(|b| b.contains("telegram is failing"))
        .unwrap();
    assert!(alert.contains("ping.connection_failed"), "{alert}");
    assert!(metrics(metrics_port).contains(unhealthy));

    bridge.start();
    // Healthy for two runs in a row before it is announced (no flapping).
    eventually(Duration::from_secs(40), "a recovery notice", || {
        count(&seen(), "telegram is healthy again") == 1
    });
    assert!(metrics(metrics_port).contains(healthy));

    // Another interval: nothing is repeated.
    std::thread::sleep(Duration::from_secs(12));
    let bodies = seen();
    assert_eq!(
        (
            count(&bodies, "telegram is failing"),
            count(&bodies, "telegram is healthy again")
        ),
        (1, 1),
        "{bodies:#?}"
    );
    let text = metrics(metrics_port);
    for series in [
        "bridge_doctor_check_failing{target=\"telegram\",check=\"ping.connection_failed\"} 0",
        "bridge_doctor_last_check_timestamp_seconds",
        "bridge_doctor_transactions_total",
        "bridge_doctor_command_duration_seconds_count{command=\"help\"} 1",
    ] {
        assert!(text.contains(series), "{series} not in\n{text}");
    }

    // The history holds both changes; `watch off` silences the room.
    say(&synapse, &token, &room, "history");
    eventually(Duration::from_secs(20), "the history", || {
        count(&seen(), "telegram: healthy again") == 1
    });
    let history = seen()
        .into_iter()
        .find(|b| b.contains("telegram: healthy again"))
        .unwrap();
    assert!(
        history.contains("telegram: failing (ping.connection_failed"),
        "{history}"
    );
    say(&synapse, &token, &room, "watch off");
    eventually(Duration::from_secs(20), "watch off confirmed", || {
        count(&seen(), "Alerts are off in this room") == 1
    });
    bridge.stop();
    eventually(Duration::from_secs(40), "unhealthy in /metrics", || {
        metrics(metrics_port).contains(unhealthy)
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        count(&seen(), "telegram is failing"),
        1,
        "muted: no new alert"
    );
    assert_eq!(doctor.terminate(), Some(0));
}

#[test]
fn a_changed_registration_is_checked_at_once_and_named() {
    // An hour between runs: only the file notification explains a new run.
    let scene = Scene::start(3600);
    scene.wait_for_first_run();
    let alert = scene.break_registration();
    assert!(alert.contains("registration.url_mismatch"), "{alert}");
    assert!(
        alert.contains("its registration file changed"),
        "what changed: {alert}"
    );
    drop(scene.doctor);
}

#[test]
fn a_homeserver_restart_is_named_in_the_next_alert() {
    let mut scene = Scene::start(3600);
    scene.wait_for_first_run();
    // The restart alone changes no file the doctor watches: no run, no alert.
    scene.synapse.restart();
    let alert = scene.break_registration();
    assert!(alert.contains("the homeserver restarted (at "), "{alert}");
    assert!(alert.contains("its registration file changed"), "{alert}");
    assert!(
        !alert.contains("the homeserver's config changed"),
        "its config did not: {alert}"
    );
    drop(scene.doctor);
}
