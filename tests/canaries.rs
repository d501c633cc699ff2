//! Nothing leaves that should not: a distinct canary in every form admins
//! keep a secret in (key names in every style, query strings, DSNs, libpq
//! strings, environment entries, JSON in a string, block, wrapped and
//! anchored scalars, a config that does not parse; Basic, cookie, API-key
//! and environment log lines, URL-encoded and base64 forms), in configs of
//! every known format, an unknown one, the homeserver's config and the
//! logs. Then every door: `check` (terminal and JSON), `explain`, the packet
//! from the command line and from the chat, the chat replies and the
//! doctor's own log. No canary anywhere, and the packet still holds what a
//! supporter needs.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine;
use support::*;

/// Every planted value starts with this, so any output holding it leaks.
const MARK: &str = "Canary";

struct Planted {
    doctor_config: PathBuf,
    /// Secrets that do not start with [`MARK`] (generated tokens, encodings).
    others: Vec<String>,
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn registration(path: &Path, id: &str, as_token: &str, hs_token: &str, port: u16) {
    write(
        path,
        &format!(
            "id: {id}\nurl: http://127.0.0.1:{port}\nas_token: {as_token}\nhs_token: {hs_token}\nsender_localpart: {id}bot\nrate_limited: false\nnamespaces:\n  users:\n  - regex: '@{id}_.*:doctor\\.test'\n    exclusive: true\n"
        ),
    );
}

/// The real mautrix-telegram config (mautrix-python) with canaries in the
/// fields it has and in a section of every key style.
fn plant_telegram(bridge: &TelegramBridge) {
    edit(
        &bridge.config(),
        "database: sqlite:mautrix-telegram.db",
        "database: postgres://tg:CanaryTgDsn1@127.0.0.1:1/tgdb?sslpassword=CanaryQuery1",
    );
    let mut text = std::fs::read_to_string(bridge.config()).unwrap();
    text.push_str(concat!(
        "canary_section:\n",
        "    smtp_pass: CanarySmtpTg1\n",
        "    passcode: CanaryPasscode1\n",
        "    apikey: CanaryApikey1\n",
        "    auth: CanaryAuth1\n",
        "    botToken: CanaryBotTg1\n",
        "    webhook: https://hooks.example/x?token=CanaryQuery2&a=b\n",
        "    env: \"POSTGRES_PASSWORD=CanaryEnv1\"\n",
        "    json_blob: '{\"accessToken\": \"CanaryJson1\"}'\n",
        "    nested:\n        password: \"CanaryP@ss:w0rdQ7\"\n",
        "    login_shared_secret_map:\n        doctor.test: as_token:CanaryPuppet1\n",
    ));
    std::fs::write(bridge.config(), text).unwrap();
}

/// A mautrix-go bridgev2 config: secrets in its own fields, and block,
/// wrapped and anchored values on fields a supporter may otherwise see.
fn plant_bridgev2(root: &Path, homeserver: &str) -> (PathBuf, PathBuf) {
    let config = root.join("whatsapp/config.yaml");
    write(
        &config,
        &format!(
            r#"network:
  os_name: mautrix-whatsapp
bridge:
  command_prefix: "!wa"
  permissions:
    "doctor.test": user
database:
  type: postgres
  uri: postgres://wa:CanaryGoDsn1@127.0.0.1:1/wa?sslmode=disable
homeserver:
  address: {homeserver}
  domain: doctor.test
  status_endpoint: "CanaryMulti1
    CanaryMulti2"
  message_send_checkpoint_endpoint: CanaryPlain1
    CanaryPlain2
appservice:
  address: http://127.0.0.1:29318
  hostname: 127.0.0.1
  port: 29318
  id: whatsapp
  bot:
    username: whatsappbot
    displayname: &shared CanaryAnchor1
    avatar: |
      CanaryBlock1
      CanaryBlock2
  username_template: whatsapp_{{{{.}}}}
  as_token: CanaryGoAs1xyz
  hs_token: CanaryGoHs1xyz
reuse:
  password: *shared
double_puppet:
  secrets:
    doctor.test: "as_token:CanaryGoPuppet1"
encryption:
  allow: true
  pickle_key: CanaryGoPickle1
provisioning:
  shared_secret: CanaryGoProv1
logging:
  min_level: debug
"#
        ),
    );
    let registration_path = root.join("whatsapp/registration.yaml");
    registration(
        &registration_path,
        "whatsapp",
        "CanaryGoAs1xyz",
        "CanaryGoHs1xyz",
        29318,
    );
    (config, registration_path)
}

/// The older mautrix-go layout, its database a libpq string.
fn plant_legacy(root: &Path, homeserver: &str) -> (PathBuf, PathBuf) {
    let config = root.join("legacy/config.yaml");
    write(
        &config,
        &format!(
            "homeserver:\n  address: {homeserver}\n  domain: doctor.test\nappservice:\n  address: http://127.0.0.1:29319\n  hostname: 127.0.0.1\n  port: 29319\n  database:\n    type: postgres\n    uri: \"host=127.0.0.1 port=1 user=u password=CanaryLibpq1 dbname=x\"\n  id: legacy\n  bot:\n    username: legacybot\n  as_token: CanaryLegacyAs1\n  hs_token: CanaryLegacyHs1\nbridge:\n  username_template: legacy_{{{{.}}}}\n  login_shared_secret_map:\n    doctor.test: CanaryLegacyShared1\nlogging:\n  min_level: debug\n"
        ),
    );
    let registration_path = root.join("legacy/registration.yaml");
    registration(
        &registration_path,
        "legacy",
        "CanaryLegacyAs1",
        "CanaryLegacyHs1",
        29319,
    );
    (config, registration_path)
}

/// A format the doctor does not know (camelCase keys, as the Node bridges
/// write them) and a config that does not parse.
fn plant_unknown_and_broken(root: &Path, homeserver: &str) -> Vec<(PathBuf, PathBuf)> {
    let irc = root.join("irc/config.yaml");
    write(
        &irc,
        &format!(
            "homeserver:\n  url: {homeserver}\n  domain: doctor.test\nircService:\n  servers:\n    irc.example.org:\n      botConfig:\n        password: CanaryIrc1\ndatabase:\n  engine: postgres\n  connectionString: \"postgres://irc:CanaryIrcDsn1@127.0.0.1:1/irc\"\ndiscord:\n  botToken: CanaryBotToken1\n  clientSecret: CanaryClientSecret1\n"
        ),
    );
    let broken = root.join("broken/config.yaml");
    write(
        &broken,
        &format!(
            "homeserver: [\n  address: {homeserver}\n  password: CanaryBroken1\napiKey=CanaryBrokenZq8Kd93Lm\n"
        ),
    );
    let mut pairs = Vec::new();
    for (config, id, port) in [(irc, "irc", 29320), (broken, "broken", 29321)] {
        let registration_path = config.with_file_name("registration.yaml");
        let as_token = format!("{id}-as-Zx81qv{port}");
        registration(
            &registration_path,
            id,
            &as_token,
            &format!("{id}-hs-Yw27ld{port}"),
            port,
        );
        pairs.push((config, registration_path));
    }
    pairs
}

/// Log lines the knowledge base matches (so `check` quotes them), each
/// holding one canary form; and the encodings that are secrets too.
fn plant_logs(root: &Path, bridge_as_token: &str) -> (PathBuf, PathBuf, Vec<String>) {
    let b64 = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
    let basic = b64("bob:CanaryBasicPw1");
    let blob = b64("xxCanaryBotTg1yy");
    let at = |n: u32| format!("[2026-11-22 10:00:{n:02},000] [ERROR@mau.mx]");
    let bridge_lines = [
        format!(
            "{} MUnknownToken: Invalid access token passed. Authorization: Basic {basic}",
            at(1)
        ),
        format!(
            "{} MUnknownToken with Cookie: session=CanaryCookie1; theme=dark",
            at(2)
        ),
        format!("{} MUnknownToken X-Api-Key: CanaryHeaderKey1", at(3)),
        format!(
            "{} MUnknownToken env POSTGRES_PASSWORD=CanaryEnvLog1 set",
            at(4)
        ),
        format!(
            "{} MUnknownToken GET /x?access_token%3DCanaryUrlEnc1 HTTP/1.1",
            at(5)
        ),
        format!(
            "{} Failed to connect to HS: {{\"clientSecret\": \"CanaryJsonLog1\"}}",
            at(6)
        ),
        format!(
            "{} Failed to connect to HS: as {bridge_as_token} and CanaryGoAs1xyz",
            at(7)
        ),
        format!(
            "{} Failed to connect to HS: dsn CanaryP%40ss%3Aw0rdQ7 sent",
            at(8)
        ),
        format!("{} Failed to connect to HS: blob {blob}", at(9)),
        format!(
            "{} Failed to connect to HS: bot CanaryBotTg1 and CanaryLibpq1",
            at(10)
        ),
        format!(
            "{} Invalid auth token: Authorization: X-Matrix origin=a,key=\"ed25519:a\",sig=\"CanarySig1\"",
            at(11)
        ),
        format!(
            "{} Invalid auth token: password: canary words CanarySpaced1 with spaces",
            at(12)
        ),
    ];
    let bridge_log = root.join("telegram/bridge.log");
    write(&bridge_log, &(bridge_lines.join("\n") + "\n"));
    let hs_log = root.join("hs-extra.log");
    let hs_lines = [
        "2026-11-22 10:00:01,000 - synapse.appservice.api - 1 - WARNING - - Error sending request to http://tg:CanaryHsUri1@127.0.0.1:1/x: refused",
        "2026-11-22 10:00:02,000 - synapse.appservice.api - 1 - WARNING - - Error sending request to smtp with CanarySmtpPass1",
        "2026-11-22 10:00:03,000 - synapse.appservice.api - 1 - WARNING - - Error sending request to redis with CanaryRedisPw1 and CanaryOidcSecret1",
    ];
    write(&hs_log, &(hs_lines.join("\n") + "\n"));
    let core = |text: &str| text[8..text.len() - 4].to_owned();
    (
        bridge_log,
        hs_log,
        vec![basic.clone(), core(&basic), core(&blob)],
    )
}

/// Every config, registration and log above, the doctor's config naming
/// them and a Synapse loading the doctor's and telegram's registrations.
fn plant(root: &Path) -> (Planted, Synapse) {
    let telegram = TelegramBridge::prepare(&root.join("telegram"), HOMESERVER_PLACEHOLDER);
    plant_telegram(&telegram);
    let bridge_as_token = yaml_value(&telegram.registration(), "as_token");
    let (bridge_log, hs_log, encodings) = plant_logs(root, &bridge_as_token);
    let v2 = plant_bridgev2(root, HOMESERVER_PLACEHOLDER);
    let legacy = plant_legacy(root, HOMESERVER_PLACEHOLDER);
    let odd = plant_unknown_and_broken(root, HOMESERVER_PLACEHOLDER);
    let logs: &[&Path] = &[&bridge_log];
    let mut bridges = vec![(telegram.config(), telegram.registration(), logs)];
    for (config, registration) in [v2, legacy].iter().chain(&odd) {
        bridges.push((config.clone(), registration.clone(), &[]));
    }
    let listed: Vec<(&Path, &Path, &[&Path])> = bridges
        .iter()
        .map(|(c, r, l)| (c.as_path(), r.as_path(), *l))
        .collect();
    let doctor_config =
        doctor_config_generated(root, HOMESERVER_PLACEHOLDER, &bridges_yaml(&listed));
    edit(
        &doctor_config,
        "max_body_bytes: 4096",
        "max_body_bytes: 16777216",
    );
    let synapse = Synapse::start(
        &root.join("hs"),
        &[
            &root.join("doctor-registration.yaml"),
            &telegram.registration(),
        ],
    );
    for path in [doctor_config.clone(), telegram.config()] {
        edit(&path, HOMESERVER_PLACEHOLDER, &synapse.url());
    }
    edit(
        &doctor_config,
        "homeserver:\n",
        &format!(
            "homeserver:\n  config: {}\n  log: {}\n",
            synapse.config_path.display(),
            hs_log.display()
        ),
    );
    // Synapse has read its config: these are for the doctor's eyes only.
    let mut hs = std::fs::read_to_string(&synapse.config_path).unwrap();
    hs.push_str("email:\n  smtp_host: smtp.example.org\n  smtp_user: mailer\n  smtp_pass: CanarySmtpPass1\nredis:\n  enabled: false\n  password: CanaryRedisPw1\noidc_providers:\n  - idp_id: sso\n    client_secret: CanaryOidcSecret1\n");
    std::fs::write(&synapse.config_path, hs).unwrap();
    let mut others = encodings;
    others.extend([
        bridge_as_token,
        yaml_value(&telegram.registration(), "hs_token"),
        yaml_value(&doctor_config, "as_token"),
        yaml_value(&doctor_config, "hs_token"),
        yaml_value(&doctor_config, "pickle_key"),
        format!("macaroon-canary-{}", synapse.port),
        format!("shared-canary-{}", synapse.port),
        format!("form-canary-{}", synapse.port),
    ]);
    let planted = Planted {
        doctor_config,
        others,
    };
    (planted, synapse)
}

/// Fails naming the door when `text` holds a planted value.
fn assert_clean(planted: &Planted, door: &str, text: &str) {
    assert!(
        !text.contains(MARK),
        "a canary leaked through {door}:\n{text}"
    );
    for secret in &planted.others {
        assert!(
            !text.contains(secret.as_str()),
            "a secret leaked through {door}:\n{text}"
        );
    }
}

fn run_cli(planted: &Planted, args: &[&str]) -> std::process::Output {
    let config = planted.doctor_config.to_str().unwrap();
    let mut all = vec![args[0], "-c", config];
    all.extend(&args[1..]);
    let output = doctor(&all);
    for (stream, bytes) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
        assert_clean(
            planted,
            &format!("{args:?} {stream}"),
            &String::from_utf8_lossy(bytes),
        );
    }
    output
}

/// No canary in the packet, and what a supporter needs still in it.
fn assert_packet(planted: &Planted, zip: &Path, synapse: &Synapse) {
    let files = unzip(zip);
    for (name, text) in &files {
        assert_clean(planted, name, text);
    }
    let file = |name: &str| {
        files
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t.as_str())
            .unwrap_or_else(|| {
                panic!(
                    "{name} missing: {:?}",
                    files.iter().map(|f| &f.0).collect::<Vec<_>>()
                )
            })
    };
    let telegram = file("config/telegram/config.yaml");
    for kept in [
        format!("address: {}", synapse.url()),
        "domain: doctor.test".to_owned(),
        "id: telegram".to_owned(),
        "\"postgres://127.0.0.1:1/tgdb?sslpassword=".to_owned(),
        "ephemeral_events: true".to_owned(),
    ] {
        assert!(telegram.contains(&kept), "{kept} missing:\n{telegram}");
    }
    assert!(file("config/telegram/registration.yaml").contains("telegram_.*:doctor"));
    let v2 = file("config/whatsapp/config.yaml");
    for kept in [
        "postgres://127.0.0.1:1/wa?sslmode=disable",
        "allow: true",
        "username: whatsappbot",
    ] {
        assert!(v2.contains(kept), "{kept} missing:\n{v2}");
    }
    let hs = file("config/homeserver/homeserver.yaml");
    assert!(
        hs.contains("doctor.test") && hs.contains("smtp_host: smtp.example.org"),
        "{hs}"
    );
    assert!(file("config/broken/config.yaml").contains("not valid YAML"));
    assert!(file("bridges.json").contains("telegram_.*:doctor"));
}

#[test]
fn no_canary_leaves_by_any_door() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (planted, synapse) = plant(root);

    let human = run_cli(&planted, &["check"]);
    let human_text = String::from_utf8_lossy(&human.stdout);
    assert!(
        human_text.contains("logs.as_token_rejected"),
        "{human_text}"
    );
    let json = run_cli(&planted, &["check", "--format", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert!(report["results"].as_array().is_some_and(|r| !r.is_empty()));

    let bridge_log = root.join("telegram/bridge.log");
    let hs_log = root.join("hs-extra.log");
    let explained = run_cli(
        &planted,
        &[
            "explain",
            bridge_log.to_str().unwrap(),
            hs_log.to_str().unwrap(),
        ],
    );
    let explained_text = String::from_utf8_lossy(&explained.stdout);
    assert!(explained_text.contains("MUnknownToken"), "{explained_text}");

    let out_dir = root.join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let packet = run_cli(&planted, &["packet", "-o", out_dir.to_str().unwrap()]);
    assert!(
        packet.status.success(),
        "{}",
        String::from_utf8_lossy(&packet.stderr)
    );
    let zip = PathBuf::from(String::from_utf8_lossy(&packet.stdout).trim());
    assert_packet(&planted, &zip, &synapse);

    chat_doors(&planted, &synapse, root);
}

/// The bot's replies to `check` and the packet it posts, and its own log.
fn chat_doors(planted: &Planted, synapse: &Synapse, root: &Path) {
    let log = root.join("doctor-run.log");
    let mut doctor_process = run_doctor(&planted.doctor_config, &log);
    let (token, room) = admin_direct_chat(synapse);
    wait_for_bot(synapse, &token, &room);
    let check = ask(synapse, &token, &room, "check", "m.notice");
    assert_clean(planted, "the chat check reply", &check.to_string());
    assert!(
        check["content"]["body"]
            .as_str()
            .unwrap_or_default()
            .contains("as_token"),
        "{check}"
    );
    let packet = ask(synapse, &token, &room, "packet", "m.file");
    let zip = root.join("chat-packet.zip");
    download(
        synapse,
        &token,
        packet["content"]["url"].as_str().unwrap(),
        &zip,
    );
    assert_packet(planted, &zip, synapse);
    doctor_process.terminate();
    assert_clean(planted, "the doctor's own log", &doctor_process.log_text());
}

fn wait_for_bot(synapse: &Synapse, token: &str, room: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let members = blocking::client()
            .get(&format!(
                "{}/_matrix/client/v3/rooms/{room}/joined_members",
                synapse.url()
            ))
            .bearer(token)
            .send()
            .unwrap();
        if members.body["joined"].get("@doctor:doctor.test").is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("the bot did not join the direct chat");
}

/// Sends `body` as the admin and waits for the bot's reply of `msgtype`.
fn ask(synapse: &Synapse, token: &str, room: &str, body: &str, msgtype: &str) -> serde_json::Value {
    let sent = blocking::client()
        .put(&format!(
            "{}/_matrix/client/v3/rooms/{room}/send/m.room.message/canary-{body}",
            synapse.url()
        ))
        .bearer(token)
        .json(&serde_json::json!({"msgtype": "m.text", "body": body}))
        .send()
        .unwrap();
    let event_id = sent.body["event_id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let reply = room_messages(synapse, token, room).into_iter().find(|e| {
            e["sender"] == "@doctor:doctor.test"
                && e["content"]["msgtype"] == msgtype
                && e["content"]["m.relates_to"]["m.in_reply_to"]["event_id"] == event_id.as_str()
        });
        if let Some(reply) = reply {
            return reply;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    panic!("no {msgtype} reply to {body}");
}

fn download(synapse: &Synapse, token: &str, mxc: &str, to: &Path) {
    let url = format!(
        "{}/_matrix/client/v1/media/download/{}",
        synapse.url(),
        mxc.strip_prefix("mxc://").unwrap()
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let bytes = runtime.block_on(async {
        let answer = reqwest::Client::new()
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert!(
            answer.status().is_success(),
            "download: {}",
            answer.status()
        );
        answer.bytes().await.unwrap()
    });
    std::fs::write(to, bytes).unwrap();
}
