//! The PostgreSQL path against a real server: the doctor's own store, and a
//! Go (bridgev2) bridge's database inspected read-only.

mod support;

use std::path::Path;

use bridge_doctor::service::store::Store;
use support::*;

#[tokio::test]
async fn doctor_store_on_postgres_remembers_transactions_across_reopen() {
    let pg = Postgres::start();
    pg.sql("postgres", "CREATE DATABASE doctor");
    let store = Store::open(&pg.uri("doctor")).await.unwrap();
    let events = [
        ("$command".to_owned(), "{}".to_owned()),
        ("$other".to_owned(), "{}".to_owned()),
    ];
    assert!(store.record_transaction("txn-1", 3, &events).await.unwrap());
    assert!(!store.record_transaction("txn-1", 3, &events).await.unwrap());
    // Answered command events, what is left to handle, and the bot's device.
    store.mark_handled("$command").await.unwrap();
    store.inbox_done("$command").await.unwrap();
    store
        .set_bot_device("@doctor:d", "DEV1", "t1")
        .await
        .unwrap();
    store
        .set_bot_device("@doctor:d", "DEV2", "t2")
        .await
        .unwrap();
    store.close().await;
    let store = Store::open(&pg.uri("doctor")).await.unwrap();
    assert!(
        !store.record_transaction("txn-1", 3, &[]).await.unwrap(),
        "still known after reopening"
    );
    assert_eq!(store.transaction_count().await.unwrap(), 1);
    assert!(store.is_handled("$command").await.unwrap());
    assert_eq!(
        store.inbox().await.unwrap(),
        [("txn-1".to_owned(), "{}".to_owned())]
    );
    let device = store.bot_device("@doctor:d").await.unwrap().unwrap();
    assert_eq!(
        (device.device_id.as_str(), device.access_token.as_deref()),
        ("DEV2", Some("t2"))
    );
    assert!(store.server_version().await.unwrap().contains("PostgreSQL"));
}

fn bridge_setup(dir: &Path, database_uri: &str) -> std::path::PathBuf {
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/fixtures/mautrix-go/example-config.bridgev2-whatsapp.yaml"
    );
    let config = dir.join("whatsapp.yaml");
    let text = std::fs::read_to_string(fixture).unwrap().replace(
        "uri: postgres://user:password@host/database?sslmode=disable",
        &format!("uri: '{database_uri}?sslmode=disable'"),
    );
    std::fs::write(&config, text).unwrap();
    let registration = dir.join("whatsapp-registration.yaml");
    std::fs::write(&registration, "id: whatsapp\nurl: http://localhost:29318\nas_token: a\nhs_token: b\nsender_localpart: s\nnamespaces:\n  users:\n    - regex: '^@whatsapp_.*:example\\.com$'\n      exclusive: true\n").unwrap();
    doctor_config_generated(
        dir,
        "http://127.0.0.1:1",
        &bridges_yaml(&[(&config, &registration, &[])]),
    )
}

fn database_status(doctor_config: &Path, password: &str) -> (String, String, String) {
    let out = doctor(&[
        "check",
        "-c",
        doctor_config.to_str().unwrap(),
        "--offline",
        "--format",
        "json",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!stdout.contains(password), "the database password leaked");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let status = |check: &str| {
        result(&report, "whatsapp", check)["status"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let detail = result(&report, "whatsapp", "database.foreign_tables")["detail"]
        .as_str()
        .unwrap()
        .to_owned();
    (
        status("database.unreachable"),
        status("database.foreign_tables"),
        detail,
    )
}

#[test]
fn bridge_database_on_postgres_is_inspected_read_only() {
    let pg = Postgres::start();
    pg.sql("postgres", "CREATE DATABASE whatsapp");
    pg.sql("whatsapp", "CREATE TABLE portal (id TEXT); CREATE TABLE database_owner (key INT, owner TEXT); INSERT INTO database_owner VALUES (0, 'mautrix-whatsapp')");
    pg.sql("postgres", "CREATE DATABASE synapse");
    pg.sql(
        "synapse",
        "CREATE TABLE state_groups_state (id BIGINT); CREATE TABLE event_json (event_id TEXT)",
    );

    let dir = tempfile::tempdir().unwrap();
    let healthy = bridge_setup(dir.path(), &pg.uri("whatsapp"));
    assert_eq!(
        database_status(&healthy, &pg.password),
        ("pass".into(), "pass".into(), String::new())
    );

    let dir = tempfile::tempdir().unwrap();
    let shared = bridge_setup(dir.path(), &pg.uri("synapse"));
    let (reachable, foreign, detail) = database_status(&shared, &pg.password);
    assert_eq!((reachable.as_str(), foreign.as_str()), ("pass", "fail"));
    assert!(
        detail.contains("state_groups_state (Synapse)") && detail.contains("127.0.0.1"),
        "{detail}"
    );

    let dir = tempfile::tempdir().unwrap();
    let wrong = bridge_setup(dir.path(), &pg.uri("whatsapp").replace("w0rd", "nope"));
    let (reachable, foreign, _) = database_status(&wrong, &pg.password);
    assert_eq!((reachable.as_str(), foreign.as_str()), ("fail", "skip"));
}
