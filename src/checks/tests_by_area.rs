//! Every check as a pure function: facts built by hand in memory (YAML
//! text, answers as the homeserver gives them), no file and no network.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::{Context, Status, by_id, run_one};
use crate::facts::database::{DatabaseFacts, DatabaseState};
use crate::facts::{
    DeliveryProbe, DeviceFacts, Facts, HomeserverFacts, LiveFacts, Mode, TargetFacts, TargetKind,
};
use crate::input::bridge::BridgeConfig;
use crate::input::homeserver::HomeserverConfig;
use crate::input::registration::Registration;
use crate::input::yaml::Document;
use crate::matrix::{Answer, ConnectError, Versions, VersionsError};

const REGISTRATION: &str = "id: telegram\nurl: http://localhost:29317\nas_token: AS\nhs_token: HS\nsender_localpart: sender\nnamespaces:\n  users:\n    - exclusive: true\n      regex: '@telegram_.*:doctor\\.test'\n    - exclusive: true\n      regex: '@telegrambot:doctor\\.test'\nreceive_ephemeral: true\n";
const CONFIG: &str = "homeserver:\n    address: http://localhost:8008\n    domain: doctor.test\nappservice:\n    address: http://localhost:29317\n    id: telegram\n    bot_username: telegrambot\n    as_token: AS\n    hs_token: HS\n    database: sqlite:tg.db\n    ephemeral_events: true\nbridge:\n    username_template: telegram_{userid}\n    permissions:\n        doctor.test: full\n    encryption:\n        allow: false\n        default: false\n        appservice: false\n        msc4190: false\n        require: false\ntelegram:\n    api_id: 1234567\n";

fn doc(name: &str, text: &str) -> Document {
    Document::parse(Path::new(name), text).unwrap()
}

struct Builder {
    registration: String,
    config: Option<String>,
    homeserver: Option<String>,
    others: Vec<(String, String)>,
    live: Option<LiveFacts>,
    versions: Option<Result<Versions, VersionsError>>,
    database: Option<DatabaseFacts>,
    kind: TargetKind,
    mode: Mode,
}

fn bridge() -> Builder {
    Builder {
        registration: REGISTRATION.to_owned(),
        config: Some(CONFIG.to_owned()),
        homeserver: None,
        others: Vec::new(),
        live: None,
        versions: None,
        database: None,
        kind: TargetKind::Bridge,
        mode: Mode::Check,
    }
}

impl Builder {
    fn registration(mut self, from: &str, to: &str) -> Self {
        assert!(self.registration.contains(from), "{from}");
        self.registration = self.registration.replace(from, to);
        self
    }
    fn config(mut self, from: &str, to: &str) -> Self {
        let config = self.config.take().unwrap();
        assert!(config.contains(from), "{from}");
        self.config = Some(config.replace(from, to));
        self
    }
    fn homeserver(mut self, yaml: &str) -> Self {
        self.homeserver = Some(yaml.to_owned());
        self
    }
    fn other(mut self, path: &str, yaml: &str) -> Self {
        self.others.push((path.to_owned(), yaml.to_owned()));
        self
    }
    fn live(mut self, live: LiveFacts) -> Self {
        self.live = Some(live);
        self
    }

    fn build(self) -> Facts {
        let registration = Registration::parse(doc("/b/registration.yaml", &self.registration));
        let config = self
            .config
            .map(|text| Ok(BridgeConfig::from_document(doc("/b/config.yaml", &text)).unwrap()));
        let homeserver_config = self
            .homeserver
            .map(|yaml| HomeserverConfig::from_document(&doc("/hs/homeserver.yaml", &yaml)));
        // What the homeserver loads: the files its config lists, as read.
        let registrations: Vec<(PathBuf, Result<Registration, crate::facts::FileProblem>)> =
            homeserver_config
                .iter()
                .flat_map(|hs| hs.app_service_config_files.iter())
                .map(|path| {
                    let read = if path == Path::new("/b/registration.yaml") {
                        Ok(registration.clone())
                    } else {
                        self.others
                            .iter()
                            .find(|(other, _)| Path::new(other) == path)
                            .map(|(other, yaml)| Registration::parse(doc(other, yaml)))
                            .ok_or_else(|| crate::facts::FileProblem::Unreadable {
                                path: path.clone(),
                                message: "No such file or directory".into(),
                            })
                    };
                    (path.clone(), read)
                })
                .collect();
        let homeserver_config = homeserver_config.map(Ok);
        Facts {
            mode: self.mode,
            homeserver: HomeserverFacts {
                address: "http://localhost:8008".into(),
                domain: "doctor.test".into(),
                registrations,
                config: homeserver_config,
                versions: self.versions,
                software: None,
                worker_names: Vec::new(),
                delivery: None,
                real_paths: Default::default(),
            },
            targets: vec![TargetFacts {
                id: "telegram".into(),
                kind: self.kind,
                registration_path: PathBuf::from("/b/registration.yaml"),
                registration: Ok(registration),
                config,
                config_found: None,
                logs: Vec::new(),
                live: self.live,
                database: self.database,
                logs_scanned: None,
                deployment: Default::default(),
                names_inside: Vec::new(),
            }],
        }
    }
}

/// Every check of the catalogue on the only target: none fails or errs.
fn assert_nothing_fails(facts: &Facts) {
    let context = Context {
        facts,
        target: &facts.targets[0],
    };
    for check in super::catalogue() {
        let finding = run_one(check, &context);
        assert!(
            !matches!(finding.status, Status::Fail | Status::Error),
            "{}: {:?}",
            check.id,
            finding
        );
    }
}

/// Runs one check on the only target; returns its status and the finding.
fn run(check: &str, facts: &Facts) -> (Status, super::Finding) {
    let context = Context {
        facts,
        target: &facts.targets[0],
    };
    let finding = run_one(
        by_id(check).unwrap_or_else(|| panic!("no check {check}")),
        &context,
    );
    (finding.status, finding)
}

fn status(check: &str, facts: &Facts) -> Status {
    run(check, facts).0
}

fn answer(status: u16, body: serde_json::Value) -> Answer {
    Answer {
        status,
        errcode: body
            .get("errcode")
            .and_then(|v| v.as_str())
            .map(str::to_owned),
        error: body
            .get("error")
            .and_then(|v| v.as_str())
            .map(str::to_owned),
        json: Some(body),
        text_excerpt: None,
    }
}

fn versions(list: &[&str]) -> Versions {
    Versions {
        versions: list.iter().map(|v| (*v).to_owned()).collect(),
        unstable_features: Default::default(),
    }
}

fn live_ping(ping: Answer) -> LiveFacts {
    LiveFacts {
        address: "http://localhost:8008".into(),
        versions: Some(Ok(versions(&["v1.11"]))),
        whoami_sender: Some(Ok(answer(200, json!({"user_id": "@sender:doctor.test"})))),
        whoami_bot: None,
        bot_registration: None,
        ping: Some(Ok(Some(ping))),
        device: None,
        media_config: Some(Ok(answer(200, json!({"m.upload.size": 52428800})))),
        delivery_probe: None,
    }
}

#[test]
fn a_healthy_bridge_fails_nothing() {
    let facts = bridge()
        .homeserver("server_name: doctor.test\napp_service_config_files: [/b/registration.yaml]\n")
        .live(live_ping(answer(200, json!({"duration_ms": 3}))))
        .build();
    assert_nothing_fails(&facts);
}

#[test]
fn files_checks() {
    assert_eq!(
        status(
            "registration.invalid",
            &bridge()
                .registration("id: telegram", "id: tele|gram")
                .build()
        ),
        Status::Fail
    );
    assert_eq!(
        status(
            "registration.url_unset",
            &bridge()
                .registration("url: http://localhost:29317", "url: null")
                .build()
        ),
        Status::Fail
    );
    assert_eq!(
        status(
            "registration.url_mismatch",
            &bridge()
                .registration("url: http://localhost:29317", "url: http://other:1")
                .build()
        ),
        Status::Fail
    );
    let (state, finding) = run(
        "config.not_configured",
        &bridge()
            .config("domain: doctor.test", "domain: example.com")
            .build(),
    );
    assert_eq!(state, Status::Fail);
    assert!(
        finding.title.contains("homeserver.domain"),
        "{}",
        finding.title
    );
    let not_loaded = bridge()
        .homeserver("server_name: doctor.test\napp_service_config_files: [/other.yaml]\n")
        .build();
    assert_eq!(status("registration.not_loaded", &not_loaded), Status::Fail);
    assert_eq!(
        status("registration.not_loaded", &bridge().build()),
        Status::Skip,
        "no homeserver config"
    );
}

#[test]
fn registration_checks_across_files() {
    let only_copy = "server_name: doctor.test\napp_service_config_files: [/hs/telegram.yaml]\n";
    let both = "server_name: doctor.test\napp_service_config_files: [/b/registration.yaml, /hs/telegram.yaml]\n";
    let stale = REGISTRATION.replace("hs_token: HS", "hs_token: OLD");
    let cross_file = [
        "registration.not_loaded",
        "registration.duplicate_id",
        "registration.duplicate_as_token",
        "registration.stale_copy",
    ];

    // The homeserver loads an identical copy (re-indented, commented): healthy.
    let identical = format!(
        "# copied for synapse\n{}",
        REGISTRATION
            .replace(
                "    - exclusive: true\n      regex",
                "  - {exclusive: true, regex"
            )
            .replace("doctor\\.test'\n", "doctor\\.test'}\n")
    );
    let copy = bridge()
        .homeserver(only_copy)
        .other("/hs/telegram.yaml", &identical)
        .build();
    for check in cross_file {
        assert!(
            matches!(status(check, &copy), Status::Pass | Status::Skip),
            "{check}"
        );
    }
    let (_, finding) = run("registration.not_loaded", &copy);
    assert!(
        finding.title.contains("identical copy"),
        "{}",
        finding.title
    );

    // It loads an outdated copy instead: one finding, naming the field.
    let outdated = bridge()
        .homeserver(only_copy)
        .other("/hs/telegram.yaml", &stale)
        .build();
    let (state, finding) = run("registration.stale_copy", &outdated);
    assert_eq!(state, Status::Fail);
    assert!(
        finding.detail.contains("hs_token") && !finding.detail.contains("OLD"),
        "{}",
        finding.detail
    );
    for check in ["registration.not_loaded", "registration.duplicate_id"] {
        assert_ne!(status(check, &outdated), Status::Fail, "{check}");
    }

    // It loads the file and a copy: Synapse refuses to start on either.
    for twin in [&identical, &stale] {
        let facts = bridge()
            .homeserver(both)
            .other("/hs/telegram.yaml", twin)
            .build();
        assert_eq!(status("registration.duplicate_id", &facts), Status::Fail);
    }

    // Another bridge with the same tokens.
    let other_bridge = bridge()
        .homeserver(both)
        .other(
            "/hs/telegram.yaml",
            &REGISTRATION.replace("id: telegram", "id: other"),
        )
        .build();
    assert_eq!(
        status("registration.duplicate_as_token", &other_bridge),
        Status::Fail
    );
    assert_eq!(
        status("registration.duplicate_id", &other_bridge),
        Status::Pass
    );
    assert_eq!(
        status("namespace.exclusive_conflict", &other_bridge),
        Status::Fail
    );
}

#[test]
fn exclusive_overlaps_are_found_by_regex_logic_with_a_witness() {
    let hs = "server_name: doctor.test\napp_service_config_files: [/b/registration.yaml, /hs/other.yaml]\n";
    let other = |users: &str| {
        format!(
            "id: other\nurl: null\nas_token: AS2\nhs_token: HS2\nsender_localpart: o\nnamespaces:\n  users:\n    - exclusive: true\n      regex: '{users}'\n"
        )
    };
    // No sample ID of either bridge (digits, names, the bots) is in the other's namespace.
    let facts = bridge()
        .homeserver(hs)
        .other("/hs/other.yaml", &other("@telegram_zz.*"))
        .build();
    let (state, finding) = run("namespace.exclusive_conflict", &facts);
    assert_eq!(state, Status::Fail);
    assert!(
        finding
            .detail
            .contains("@telegram_zz:doctor.test is claimed by both"),
        "{}",
        finding.detail
    );
    // Another domain, another prefix, an anchored end: disjoint.
    for disjoint in [
        "@telegram_.*:other\\.test",
        "@irc_.*",
        "@telegrambot:doctor\\.test_x$",
    ] {
        let facts = bridge()
            .homeserver(hs)
            .other("/hs/other.yaml", &other(disjoint))
            .build();
        assert_eq!(
            status("namespace.exclusive_conflict", &facts),
            Status::Pass,
            "{disjoint}"
        );
    }
    let facts = bridge()
        .homeserver(hs)
        .other("/hs/other.yaml", &other("@(?!telegram).*"))
        .build();
    assert_eq!(status("namespace.exclusive_conflict", &facts), Status::Warn);
}

#[test]
fn token_and_domain_checks() {
    let (state, finding) = run(
        "tokens.mismatch",
        &bridge().config("hs_token: HS", "hs_token: OTHER").build(),
    );
    assert_eq!(state, Status::Fail);
    assert!(finding.title.starts_with("hs_token") && !finding.detail.contains("OTHER"));
    assert!(
        finding
            .faq
            .is_some_and(|f| f.ends_with("#homeserver---bridge-connection-is-not-working")),
        "a wrong hs_token is about the homeserver reaching the bridge"
    );
    assert_eq!(
        status(
            "domain.mismatch",
            &bridge()
                .config("domain: doctor.test", "domain: wrong.test")
                .homeserver("server_name: doctor.test\n")
                .build()
        ),
        Status::Fail
    );

    let mut rejected = live_ping(answer(200, json!({"duration_ms": 1})));
    rejected.whoami_sender = Some(Ok(answer(
        401,
        json!({"errcode": "M_UNKNOWN_TOKEN", "error": "Invalid access token passed."}),
    )));
    let facts = bridge()
        .homeserver("server_name: doctor.test\napp_service_config_files: []\n")
        .live(rejected)
        .build();
    let (state, finding) = run("tokens.as_token_rejected", &facts);
    assert_eq!(state, Status::Fail);
    assert!(
        finding.fix[0].contains("not listed in `app_service_config_files`"),
        "the confirmed cause ranks first: {:?}",
        finding.fix
    );

    let refused = answer(
        502,
        json!({"errcode": "M_BAD_STATUS", "status": 401, "body": "{\"errcode\":\"M_UNKNOWN_TOKEN\"}"}),
    );
    assert_eq!(
        status(
            "tokens.hs_token_rejected",
            &bridge().live(live_ping(refused.clone())).build()
        ),
        Status::Fail
    );
    assert_eq!(
        status(
            "ping.bad_status",
            &bridge().live(live_ping(refused)).build()
        ),
        Status::Pass,
        "token rejections belong to tokens.hs_token_rejected"
    );
    let stripped = answer(
        502,
        json!({"errcode": "M_BAD_STATUS", "status": 401, "body": "{\"errcode\":\"M_MISSING_TOKEN\"}"}),
    );
    let (_, finding) = run(
        "tokens.hs_token_rejected",
        &bridge().live(live_ping(stripped)).build(),
    );
    assert!(
        finding.detail.contains("removes the Authorization header"),
        "{}",
        finding.detail
    );
    let legacy = bridge()
        .homeserver("server_name: doctor.test\nuse_appservice_legacy_authorization: true\n")
        .live(live_ping(answer(502, json!({"errcode": "M_BAD_STATUS", "status": 401, "body": "{\"errcode\":\"M_MISSING_TOKEN\"}"}))))
        .build();
    let (_, finding) = run("tokens.hs_token_rejected", &legacy);
    assert!(
        finding
            .detail
            .contains("use_appservice_legacy_authorization"),
        "{}",
        finding.detail
    );
}

#[test]
fn homeserver_checks() {
    let unreachable = LiveFacts {
        address: "http://x".into(),
        versions: Some(Err(VersionsError::Connect {
            error: ConnectError::Refused("refused".into()),
        })),
        ..LiveFacts::default()
    };
    let facts = bridge().live(unreachable).build();
    assert_eq!(status("homeserver.unreachable", &facts), Status::Fail);
    assert_eq!(status("ping.connection_failed", &facts), Status::Skip);
    let tls = LiveFacts {
        address: "https://x".into(),
        versions: Some(Err(VersionsError::Connect {
            error: ConnectError::TlsUntrusted("UnknownIssuer".into()),
        })),
        ..LiveFacts::default()
    };
    assert_eq!(
        status("homeserver.tls_untrusted", &bridge().live(tls).build()),
        Status::Fail
    );
    let html = LiveFacts {
        address: "http://x".into(),
        versions: Some(Err(VersionsError::NotMatrix {
            answer: answer(404, json!({})),
        })),
        ..LiveFacts::default()
    };
    assert_eq!(
        status("homeserver.not_matrix", &bridge().live(html).build()),
        Status::Fail
    );
    let mut old = live_ping(answer(200, json!({"duration_ms": 1})));
    old.versions = Some(Ok(versions(&["r0.6.1", "v1.1"])));
    assert_eq!(
        status("homeserver.outdated", &bridge().live(old).build()),
        Status::Fail
    );
    let mut other = live_ping(answer(200, json!({"duration_ms": 1})));
    other.whoami_sender = Some(Ok(answer(200, json!({"user_id": "@sender:elsewhere.org"}))));
    assert_eq!(
        status("homeserver.wrong_server", &bridge().live(other).build()),
        Status::Fail
    );
}

#[test]
fn namespace_checks() {
    let narrow = bridge()
        .registration(
            "'@telegram_.*:doctor\\.test'",
            "'@telegram_[a-z]+:doctor\\.test'",
        )
        .build();
    assert_eq!(
        status("namespace.ghosts_not_covered", &narrow),
        Status::Fail
    );
    let whatsapp = bridge()
        .registration(
            "'@telegram_.*:doctor\\.test'",
            "'@whatsapp_[0-9]+:doctor\\.test'",
        )
        .config("telegram_{userid}", "whatsapp_{userid}")
        .build();
    let (state, finding) = run("namespace.ghosts_not_covered", &whatsapp);
    assert_eq!(state, Status::Fail);
    assert!(
        finding
            .detail
            .contains("@whatsapp_lid-123456789:doctor.test"),
        "{}",
        finding.detail
    );
    assert_eq!(
        status(
            "namespace.bot_not_covered",
            &bridge()
                .config("bot_username: telegrambot", "bot_username: tgbot")
                .build()
        ),
        Status::Fail
    );
    assert_eq!(
        status(
            "namespace.localpart_only",
            &bridge()
                .registration("'@telegrambot:doctor\\.test'", "'telegrambot$'")
                .build()
        ),
        Status::Fail
    );
    assert_eq!(
        status(
            "namespace.wrong_domain",
            &bridge()
                .registration(
                    "'@telegrambot:doctor\\.test'",
                    "'@telegrambot:other\\.test'"
                )
                .build()
        ),
        Status::Fail
    );
    assert_eq!(
        status(
            "namespace.inline_flags",
            &bridge()
                .registration(
                    "'@telegrambot:doctor\\.test'",
                    "'(?i)@telegrambot:doctor\\.test'"
                )
                .build()
        ),
        Status::Fail
    );
    assert_eq!(
        status(
            "namespace.too_broad",
            &bridge()
                .registration("'@telegram_.*:doctor\\.test'", "'@.*:doctor\\.test'")
                .build()
        ),
        Status::Fail
    );
    assert_eq!(
        status(
            "namespace.invalid_regex",
            &bridge()
                .registration("'@telegram_.*:doctor\\.test'", "'@telegram_[:doctor'")
                .build()
        ),
        Status::Fail
    );
    let lookahead = bridge()
        .registration(
            "'@telegram_.*:doctor\\.test'",
            "'@telegram_(?!admin).*:doctor\\.test'",
        )
        .build();
    let (state, finding) = run("namespace.invalid_regex", &lookahead);
    assert_eq!(state, Status::Warn, "unverifiable, never a false fail");
    assert!(finding.title.starts_with("unverifiable"));
}

#[test]
fn ping_checks() {
    let failed = answer(
        502,
        json!({"errcode": "M_CONNECTION_FAILED", "error": "Connection refused"}),
    );
    assert_eq!(
        status(
            "ping.connection_failed",
            &bridge().live(live_ping(failed.clone())).build()
        ),
        Status::Fail
    );
    let mut doctor = bridge().live(live_ping(failed));
    doctor.kind = TargetKind::Doctor;
    assert_eq!(
        status("ping.connection_failed", &doctor.build()),
        Status::Warn,
        "the doctor not running during `check` is a warning"
    );
    assert_eq!(
        status(
            "ping.timeout",
            &bridge()
                .live(live_ping(answer(
                    504,
                    json!({"errcode": "M_CONNECTION_TIMEOUT"})
                )))
                .build()
        ),
        Status::Fail
    );
    // The doctor's own request ran out while the homeserver answered the
    // rest: the homeserver is still waiting on a hung appservice.
    let mut outwaited = live_ping(answer(200, json!({})));
    outwaited.ping = Some(Err(ConnectError::Timeout("operation timed out".into())));
    let (state, finding) = run("ping.timeout", &bridge().live(outwaited.clone()).build());
    assert_eq!(state, Status::Fail);
    assert!(
        finding
            .detail
            .contains("accepted the connection and never answered"),
        "{}",
        finding.detail
    );
    // A homeserver that answers nothing is not a hung appservice.
    outwaited.whoami_sender = Some(Err(ConnectError::Timeout("operation timed out".into())));
    assert_eq!(
        status("ping.timeout", &bridge().live(outwaited).build()),
        Status::Skip
    );
    assert_eq!(
        status(
            "ping.bad_status",
            &bridge()
                .live(live_ping(answer(
                    502,
                    json!({"errcode": "M_BAD_STATUS", "status": 404, "body": "not found"})
                )))
                .build()
        ),
        Status::Fail
    );
    assert_eq!(
        status(
            "ping.id_mismatch",
            &bridge()
                .live(live_ping(answer(
                    403,
                    json!({"errcode": "M_FORBIDDEN", "error": "Mismatching application service ID"})
                )))
                .build()
        ),
        Status::Fail
    );
    let mut none = live_ping(answer(200, json!({})));
    none.ping = Some(Ok(None));
    assert_eq!(
        status("ping.unsupported", &bridge().live(none).build()),
        Status::Fail
    );
}

#[test]
fn the_doctors_own_device() {
    let with_device = |device: Option<DeviceFacts>| {
        let mut builder = bridge().live(LiveFacts {
            device,
            ..LiveFacts::default()
        });
        builder.kind = TargetKind::Doctor;
        builder.mode = Mode::Startup;
        builder.build()
    };
    let check = "encryption.doctor_unavailable";
    assert_eq!(status(check, &bridge().build()), Status::Skip);
    assert_eq!(status(check, &with_device(None)), Status::Skip);
    assert_eq!(
        status(check, &with_device(Some(DeviceFacts::NotWanted))),
        Status::Skip
    );
    let ready = |cross_signed| DeviceFacts::Ready {
        device_id: "DOCTORDEV".into(),
        cross_signed,
    };
    let (status_ready, finding) = run(check, &with_device(Some(ready(true))));
    assert_eq!(status_ready, Status::Pass);
    assert!(finding.title.contains("DOCTORDEV"));
    assert_eq!(
        status(check, &with_device(Some(ready(false)))),
        Status::Warn
    );
    let refused = DeviceFacts::Unavailable {
        reason: "the homeserver refused the bot's appservice login: 400 M_UNKNOWN".into(),
        fix: vec!["enable MSC4190".into()],
    };
    let (status_refused, finding) = run(check, &with_device(Some(refused)));
    assert_eq!(status_refused, Status::Fail);
    assert!(finding.detail.contains("appservice login"));
    assert_eq!(finding.fix, ["enable MSC4190"]);
}

#[test]
fn ephemeral_and_encryption_checks() {
    let no_flags = bridge()
        .registration("receive_ephemeral: true\n", "")
        .build();
    assert_eq!(
        status("ephemeral.registration_disabled", &no_flags),
        Status::Fail
    );
    assert_eq!(
        status(
            "ephemeral.flag_not_boolean",
            &bridge()
                .registration("receive_ephemeral: true", "receive_ephemeral: \"false\"")
                .build()
        ),
        Status::Fail
    );
    let appservice = bridge().config("allow: false", "allow: true").config("appservice: false", "appservice: true").homeserver("server_name: doctor.test\nexperimental_features:\n  msc3202_transaction_extensions: true\n").build();
    let (state, finding) = run("encryption.appservice_mode_incomplete", &appservice);
    assert_eq!(state, Status::Fail);
    assert!(
        finding.detail.contains("org.matrix.msc3202")
            && finding
                .detail
                .contains("msc2409_to_device_messages_enabled")
            && !finding
                .detail
                .contains("msc3202_transaction_extensions: true"),
        "{}",
        finding.detail
    );
    let mas = bridge()
        .config("allow: false", "allow: true")
        .homeserver("server_name: doctor.test\nmatrix_authentication_service:\n  enabled: true\n");
    assert_eq!(
        status("encryption.msc4190_required", &mas.build()),
        Status::Fail
    );
    assert_eq!(
        status(
            "encryption.incoherent",
            &bridge().config("require: false", "require: true").build()
        ),
        Status::Fail
    );
    let mut forced = bridge();
    let mut v = versions(&["v1.11"]);
    v.unstable_features
        .insert("io.element.e2ee_forced.private".into(), true);
    forced.versions = Some(Ok(v));
    assert_eq!(
        status("encryption.forced_by_server", &forced.build()),
        Status::Fail
    );
}

fn with_database(state: DatabaseState) -> Builder {
    let mut builder = bridge();
    builder.database = Some(DatabaseFacts {
        shown_uri: "postgres://db/shared".into(),
        field: "appservice.database".into(),
        location: "db:5432/shared".into(),
        state,
    });
    builder
}

fn opened(tables: &[&str], owners: &[&str]) -> DatabaseState {
    DatabaseState::Opened {
        tables: tables.iter().map(|t| (*t).to_owned()).collect(),
        owners: owners.iter().map(|o| (*o).to_owned()).collect(),
    }
}

#[test]
fn database_checks() {
    let facts = with_database(opened(&["portal", "state_groups_state"], &[])).build();
    assert_eq!(status("database.unreachable", &facts), Status::Pass);
    let (state, finding) = run("database.foreign_tables", &facts);
    assert_eq!(state, Status::Fail);
    assert!(finding.detail.contains("state_groups_state (Synapse)"));

    let facts = with_database(DatabaseState::Unreachable("refused".into())).build();
    assert_eq!(status("database.unreachable", &facts), Status::Fail);
    assert_eq!(status("database.foreign_tables", &facts), Status::Skip);

    // A bridge that never started: a warning, not a database fault.
    let facts = with_database(DatabaseState::NotCreated).build();
    assert_eq!(status("database.not_created", &facts), Status::Warn);
    assert_eq!(status("database.unreachable", &facts), Status::Skip);
}

#[test]
fn database_owner_is_judged_by_the_config_never_the_id() {
    // The owner the program writes (mautrix-python's `self.name`), under any id.
    let own = with_database(opened(&["portal"], &["mautrix-telegram"]))
        .config("    id: telegram", "    id: tg-main")
        .build();
    assert_eq!(status("database.foreign_tables", &own), Status::Pass);
    let (state, finding) = run(
        "database.foreign_tables",
        &with_database(opened(&["portal"], &["mautrix-signal"])).build(),
    );
    assert_eq!(state, Status::Fail);
    assert!(
        finding.detail.contains("mautrix-signal"),
        "{}",
        finding.detail
    );
    // A config that does not name its network (bridgev2): the owner is not judged.
    let unnamed = with_database(opened(&["portal"], &["mautrix-whatsapp"]))
        .config("telegram:\n    api_id: 1234567\n", "network: {}\n")
        .build();
    assert_eq!(status("database.foreign_tables", &unnamed), Status::Pass);

    // Two targets on one database: whatever the owner says.
    let mut shared = with_database(opened(&["portal"], &["mautrix-telegram"])).build();
    let mut twin = with_database(opened(&["portal"], &["mautrix-telegram"])).build();
    let mut other = twin.targets.remove(0);
    other.id = "signal".into();
    shared.targets.push(other);
    let (state, finding) = run("database.foreign_tables", &shared);
    assert_eq!(state, Status::Fail);
    assert!(
        finding.detail.contains("the database of signal"),
        "{}",
        finding.detail
    );
}

#[test]
fn a_panicking_check_is_an_error_not_a_crash() {
    fn boom(_: &Context) -> super::Verdict {
        panic!("bug in a check")
    }
    let facts = bridge().build();
    let context = Context {
        facts: &facts,
        target: &facts.targets[0],
    };
    let finding = run_one(
        &super::Check {
            id: "test.boom",
            run: boom,
        },
        &context,
    );
    assert_eq!(finding.status, Status::Error);
    assert!(finding.detail.contains("bug in a check"));
}

#[test]
fn backoff_reads_the_homeserver_log_hits_for_this_appservice() {
    let log = std::fs::read(crate::testutil::shared_fixture(
        "logs/synapse-homeserver.log",
    ))
    .unwrap();
    let scanner = crate::knowledge::scan::Scanner::new();
    let mut scan = scanner.new_scan();
    scanner
        .scan(log.as_slice(), "homeserver.log", &mut scan)
        .unwrap();
    let logs = |hits| crate::facts::LogFacts {
        homeserver_hits: Some(Ok(hits)),
        ..Default::default()
    };

    let mut facts = bridge().build();
    facts.targets[0].logs_scanned = Some(logs(scan.mentioning(&[
        " telegram ",
        "AS ID telegram",
        "http://localhost:29317",
    ])));
    let (state, mut finding) = run("ping.backoff", &facts);
    assert_eq!(state, Status::Fail);
    assert!(
        finding.detail.contains("Scheduling retries on telegram"),
        "{}",
        finding.detail
    );
    assert!(finding.withhold_log_lines());
    assert!(
        !finding.detail.contains("Scheduling retries")
            && !finding.evidence.contains_key(super::LOG_LINES),
        "{finding:?}"
    );

    facts.targets[0].logs_scanned = Some(logs(scan.mentioning(&[
        " whatsapp ",
        "AS ID whatsapp",
        "http://localhost:29318",
    ])));
    assert_eq!(
        status("ping.backoff", &facts),
        Status::Pass,
        "another appservice's failures are not this one's"
    );
    facts.targets[0].logs_scanned = None;
    assert_eq!(status("ping.backoff", &facts), Status::Skip);
}

#[test]
fn log_lines_are_quoted_apart_so_that_they_can_be_withheld() {
    use crate::knowledge::scan::tests::SAMPLES;
    let log: String = SAMPLES
        .iter()
        .map(|(_, line)| format!("{line}\n"))
        .collect();
    let scanner = crate::knowledge::scan::Scanner::new();
    let mut scan = scanner.new_scan();
    scanner
        .scan(log.as_bytes(), "bridge.log", &mut scan)
        .unwrap();
    let mut facts = bridge().build();
    facts.targets[0].logs_scanned = Some(crate::facts::LogFacts {
        hits: scan.matched().cloned().collect(),
        ..Default::default()
    });
    let quoting: Vec<super::Finding> = super::run_all(&facts)
        .into_iter()
        .filter(|f| f.evidence.contains_key(super::LOG_LINES))
        .collect();
    assert!(quoting.len() > 10, "{} findings quote lines", quoting.len());
    for mut finding in quoting {
        assert!(finding.detail.contains("bridge.log:"), "{}", finding.detail);
        let entry = crate::knowledge::entries()
            .iter()
            .find(|e| e.check_id() == finding.check)
            .unwrap();
        assert!(finding.withhold_log_lines());
        // Every quoted line starts with its file's name; the explanation stays.
        assert!(!finding.detail.contains("bridge.log"), "{}", finding.detail);
        assert!(!finding.evidence.contains_key(super::LOG_LINES));
        let explanation = entry.explanation.replace('\n', " ");
        assert!(
            finding.detail.starts_with(&explanation),
            "{}",
            finding.check
        );
    }
}

#[test]
fn registration_file_checks_beyond_the_faq() {
    let healthy = bridge().registration(
        "receive_ephemeral: true\n",
        "receive_ephemeral: true\nrate_limited: false\n",
    );
    assert_eq!(
        status("registration.rate_limited", &healthy.build()),
        Status::Pass
    );
    assert_eq!(
        status("registration.rate_limited", &bridge().build()),
        Status::Warn,
        "absent means true"
    );

    for (url, expected) in [
        ("http://localhost:29317", Status::Pass),
        ("https://bridge.example:443/", Status::Pass),
        ("localhost:29317", Status::Fail),
        ("ftp://localhost:29317", Status::Fail),
        ("http://[::1]:29317", Status::Fail),
    ] {
        let facts = bridge()
            .registration("url: http://localhost:29317", &format!("url: '{url}'"))
            .build();
        assert_eq!(
            status("registration.url_invalid", &facts),
            expected,
            "{url}"
        );
    }

    let as_config = bridge().registration(REGISTRATION, CONFIG).build();
    let (state, finding) = run("registration.not_a_registration", &as_config);
    assert_eq!(state, Status::Fail);
    assert!(finding.fix[0].contains("-g"), "{:?}", finding.fix);
    assert_eq!(
        status("registration.not_a_registration", &bridge().build()),
        Status::Pass
    );

    let encrypted = |reg_flag: &str, bridge_flag: &str| {
        bridge()
            .registration(
                "receive_ephemeral: true\n",
                &format!("receive_ephemeral: true\nio.element.msc4190: {reg_flag}\n"),
            )
            .config("        allow: false", "        allow: true")
            .config(
                "        msc4190: false",
                &format!("        msc4190: {bridge_flag}"),
            )
            .build()
    };
    assert_eq!(
        status("registration.msc4190_mismatch", &encrypted("true", "true")),
        Status::Pass
    );
    assert_eq!(
        status(
            "registration.msc4190_mismatch",
            &encrypted("false", "false")
        ),
        Status::Pass
    );
    let (state, finding) = run("registration.msc4190_mismatch", &encrypted("true", "false"));
    assert_eq!(state, Status::Fail);
    assert!(
        finding.detail.contains("appservice login cannot be used"),
        "{}",
        finding.detail
    );
    assert_eq!(
        status("registration.msc4190_mismatch", &encrypted("false", "true")),
        Status::Fail
    );
    assert_eq!(
        status("registration.msc4190_mismatch", &bridge().build()),
        Status::Skip,
        "no encryption"
    );
}

#[test]
fn sender_is_bot_only_matters_when_the_bot_syncs() {
    let same = bridge().registration("sender_localpart: sender", "sender_localpart: telegrambot");
    assert_eq!(
        status("namespace.sender_is_bot", &same.build()),
        Status::Pass,
        "no encryption"
    );
    let syncing = bridge()
        .registration("sender_localpart: sender", "sender_localpart: telegrambot")
        .config("        allow: false", "        allow: true")
        .build();
    assert_eq!(status("namespace.sender_is_bot", &syncing), Status::Fail);
    let appservice_mode = bridge()
        .registration("sender_localpart: sender", "sender_localpart: telegrambot")
        .config("        allow: false", "        allow: true")
        .config("        appservice: false", "        appservice: true")
        .build();
    assert_eq!(
        status("namespace.sender_is_bot", &appservice_mode),
        Status::Pass
    );
}

#[test]
fn permissions_must_admit_local_users() {
    assert_eq!(
        status("permissions.no_local_users", &bridge().build()),
        Status::Pass
    );
    for admitted in ["'*': relay", "'@alice:doctor.test': admin"] {
        let facts = bridge()
            .config("        doctor.test: full", &format!("        {admitted}"))
            .build();
        assert_eq!(
            status("permissions.no_local_users", &facts),
            Status::Pass,
            "{admitted}"
        );
    }
    let (state, finding) = run(
        "permissions.no_local_users",
        &bridge()
            .config("        doctor.test: full", "        other.test: full")
            .build(),
    );
    assert_eq!(state, Status::Fail);
    assert!(
        finding.fix[0].contains("\"doctor.test\": user"),
        "{:?}",
        finding.fix
    );
}

#[test]
fn double_puppet_secrets_are_checked_for_this_server_only() {
    let hs =
        "server_name: doctor.test\napp_service_config_files: [/b/registration.yaml, /hs/dp.yaml]\n";
    let dp = "id: doublepuppet\nurl: null\nas_token: DPTOKEN\nhs_token: x\nsender_localpart: dp\nnamespaces:\n  users: [{regex: '@.*:doctor\\.test', exclusive: false}]\n";
    let with_secret = |secret: &str| {
        bridge()
            .config("    permissions:", &format!("    login_shared_secret_map:\n        doctor.test: {secret}\n        other.test: plain\n    permissions:"))
            .homeserver(hs)
            .other("/hs/dp.yaml", dp)
            .build()
    };
    assert_eq!(
        status(
            "doublepuppet.secret_format",
            &with_secret("as_token:DPTOKEN")
        ),
        Status::Pass
    );
    assert_eq!(
        status("doublepuppet.secret_format", &bridge().build()),
        Status::Skip
    );
    for bad in ["DPTOKEN", "as_token:WRONG", "\"'as_token:DPTOKEN'\""] {
        let (state, finding) = run("doublepuppet.secret_format", &with_secret(bad));
        assert_eq!(state, Status::Fail, "{bad}");
        assert!(
            !finding.detail.contains("DPTOKEN"),
            "the secret is never shown"
        );
    }
    // A plain shared secret is right when the homeserver has the module for it.
    let module = bridge()
        .config("    permissions:", "    login_shared_secret_map:\n        doctor.test: plain-secret\n    permissions:")
        .homeserver("server_name: doctor.test\napp_service_config_files: [/b/registration.yaml]\nmodules:\n  - module: shared_secret_authenticator.SharedSecretAuthProvider\n")
        .build();
    assert_eq!(status("doublepuppet.secret_format", &module), Status::Pass);
}

#[test]
fn ip_whitelist_and_media() {
    let whitelisted = |ranges: &str| {
        bridge().registration(
            "receive_ephemeral: true\n",
            &format!("receive_ephemeral: true\nip_range_whitelist: [{ranges}]\n"),
        )
    };
    assert_eq!(
        status("homeserver.ip_whitelist", &bridge().build()),
        Status::Pass
    );
    let live = live_ping(answer(200, json!({"duration_ms": 1})));
    assert_eq!(
        status(
            "homeserver.ip_whitelist",
            &whitelisted("'127.0.0.0/8'").live(live.clone()).build()
        ),
        Status::Pass
    );
    let (state, finding) = run(
        "homeserver.ip_whitelist",
        &whitelisted("'10.0.0.0/8'").live(live.clone()).build(),
    );
    assert_eq!(
        state,
        Status::Fail,
        "loopback homeserver, loopback not admitted"
    );
    assert!(finding.detail.contains("10.0.0.0/8"));
    let mut rejected = live.clone();
    rejected.address = "http://matrix.internal:8008".into();
    rejected.whoami_sender = Some(Ok(answer(401, json!({"errcode": "M_UNKNOWN_TOKEN"}))));
    assert_eq!(
        status(
            "homeserver.ip_whitelist",
            &whitelisted("'10.0.0.0/8'").live(rejected).build()
        ),
        Status::Fail
    );

    assert_eq!(
        status(
            "homeserver.media_unavailable",
            &bridge().live(live.clone()).build()
        ),
        Status::Pass
    );
    let mut missing = live;
    missing.media_config = Some(Ok(answer(
        404,
        json!({"errcode": "M_UNRECOGNIZED", "error": "Unrecognized request"}),
    )));
    let (state, finding) = run(
        "homeserver.media_unavailable",
        &bridge().live(missing).build(),
    );
    assert_eq!(state, Status::Fail);
    assert!(finding.detail.contains("404"), "{}", finding.detail);
    assert_eq!(
        status("homeserver.media_unavailable", &bridge().build()),
        Status::Skip,
        "offline"
    );
}

#[test]
fn the_appservice_worker_must_exist() {
    let hs = |extra: &str| {
        format!(
            "server_name: doctor.test\napp_service_config_files: [/b/registration.yaml]\n{extra}"
        )
    };
    assert_eq!(
        status(
            "delivery.worker_missing",
            &bridge().homeserver(&hs("")).build()
        ),
        Status::Pass
    );
    let named = bridge().homeserver(&hs("notify_appservices_from_worker: appservice1\ninstance_map:\n  main: {host: localhost, port: 9093}\n  appservice1: {host: localhost, port: 9094}\n"));
    assert_eq!(
        status("delivery.worker_missing", &named.build()),
        Status::Pass
    );
    let unseen = bridge().homeserver(&hs("notify_appservices_from_worker: appservice1\n"));
    assert_eq!(
        status("delivery.worker_missing", &unseen.build()),
        Status::Warn,
        "no worker config found: cannot be sure"
    );
    let mut typo = bridge()
        .homeserver(&hs("notify_appservices_from_worker: apservice1\n"))
        .build();
    typo.homeserver.worker_names = vec!["appservice1".into(), "federation_sender1".into()];
    let (state, finding) = run("delivery.worker_missing", &typo);
    assert_eq!(state, Status::Fail);
    assert!(
        finding.detail.contains("appservice1, federation_sender1"),
        "{}",
        finding.detail
    );
}

#[test]
fn stalled_delivery_from_the_probe_or_the_homeserver_database() {
    let probed = |probe: DeliveryProbe| {
        let mut live = live_ping(answer(200, json!({"duration_ms": 1})));
        live.delivery_probe = Some(probe);
        bridge().live(live).build()
    };
    assert_eq!(
        status(
            "delivery.stalled",
            &probed(DeliveryProbe::Delivered { milliseconds: 40 })
        ),
        Status::Pass
    );
    let (state, finding) = run(
        "delivery.stalled",
        &probed(DeliveryProbe::NotDelivered { waited_seconds: 15 }),
    );
    assert_eq!(state, Status::Fail);
    assert!(finding.detail.contains("15 s"), "{}", finding.detail);
    assert_eq!(
        status(
            "delivery.stalled",
            &probed(DeliveryProbe::NotSent("refused".into()))
        ),
        Status::Warn
    );

    assert_eq!(
        status("delivery.stalled", &bridge().build()),
        Status::Skip,
        "no homeserver database"
    );
    let with_state = |down: bool, pending: i64| {
        let mut facts = bridge().build();
        let state = crate::facts::database::DeliveryState { down, pending };
        facts.homeserver.delivery = Some(Ok(crate::facts::database::Delivery {
            states: [("telegram".to_owned(), state)].into(),
            backlog: None,
        }));
        facts
    };
    let (state, finding) = run("delivery.stalled", &with_state(true, 3));
    assert_eq!(state, Status::Fail);
    assert!(
        finding.detail.contains("3 transaction(s)"),
        "{}",
        finding.detail
    );
    assert_eq!(
        status("delivery.stalled", &with_state(false, 2)),
        Status::Pass,
        "up, busy"
    );
    assert_eq!(
        status("delivery.stalled", &with_state(true, 0)),
        Status::Pass,
        "recovered"
    );
    let mut unreadable = bridge().build();
    unreadable.homeserver.delivery = Some(Err("permission denied".into()));
    assert_eq!(status("delivery.stalled", &unreadable), Status::Skip);

    // The sender stopped: the state is `up`, nothing pending, events wait.
    let waiting = |waiting: i64, waited_ms: i64| {
        let mut facts = with_state(false, 0);
        if let Some(Ok(delivery)) = &mut facts.homeserver.delivery {
            delivery.backlog = Some(crate::facts::database::Backlog {
                waiting,
                oldest_waited_ms: Some(waited_ms),
            });
        }
        facts
    };
    let (state, finding) = run("delivery.stalled", &waiting(7, 95_000));
    assert_eq!(state, Status::Fail);
    assert!(
        finding.detail.contains("7 event(s)") && finding.detail.contains("95 s"),
        "{}",
        finding.detail
    );
    assert_eq!(
        status("delivery.stalled", &waiting(7, 2_000)),
        Status::Pass,
        "a busy sender is seconds behind"
    );
}

/// A mautrix-go bridgev2 config from the fixtures, filled in the way its
/// generator fills it, with the registration it would write: healthy.
#[test]
fn a_healthy_bridgev2_config_fails_nothing() {
    let fixture =
        crate::testutil::shared_fixture("mautrix-go/example-config.bridgev2-whatsapp.yaml");
    let config = std::fs::read_to_string(fixture)
        .unwrap()
        .replace("http://example.localhost:8008", "http://localhost:8008")
        .replace("example.com", "doctor.test")
        .replace(
            "\"This value is generated when generating the registration\"",
            "WA-TOKEN",
        )
        .replace("as_token:foobar", "as_token:DOUBLEPUPPET");
    let registration = "id: whatsapp\nurl: http://localhost:29318\nas_token: WA-TOKEN\nhs_token: WA-TOKEN\nsender_localpart: Zs8sPq0dtw\nrate_limited: false\nnamespaces:\n  users:\n    - regex: '^@whatsappbot:doctor\\.test$'\n      exclusive: true\n    - regex: '^@whatsapp_.*:doctor\\.test$'\n      exclusive: true\nde.sorunome.msc2409.push_ephemeral: true\nreceive_ephemeral: true\n";
    let double_puppet = "id: doublepuppet\nurl: null\nas_token: DOUBLEPUPPET\nhs_token: unused\nsender_localpart: dp\nrate_limited: false\nnamespaces:\n  users:\n    - regex: '@.*:doctor\\.test'\n      exclusive: false\n";
    let mut builder = bridge()
        .homeserver("server_name: doctor.test\napp_service_config_files: [/b/registration.yaml, /hs/doublepuppet.yaml]\n")
        .other("/hs/doublepuppet.yaml", double_puppet)
        .live(live_ping(answer(200, json!({"duration_ms": 2}))));
    builder.registration = registration.to_owned();
    builder.config = Some(config);
    let facts = builder.build();
    assert_nothing_fails(&facts);
    for check in [
        "permissions.no_local_users",
        "doublepuppet.secret_format",
        "namespace.ghosts_not_covered",
    ] {
        assert_eq!(
            status(check, &facts),
            Status::Pass,
            "{check} really ran on the bridgev2 layout"
        );
    }
}

/// Log facts scanned from `log` (a bridge log), read at `read_at`.
fn scanned(log: &str, read_at: &str) -> crate::facts::LogFacts {
    let scanner = crate::knowledge::scan::Scanner::new();
    let mut scan = scanner.new_scan();
    scanner
        .scan(log.as_bytes(), "bridge.log", &mut scan)
        .unwrap();
    crate::facts::LogFacts {
        read_at_ms: crate::knowledge::timestamps::line_time(read_at).unwrap(),
        hits: scan.all().cloned().collect(),
        ..Default::default()
    }
}

#[test]
fn log_problems_older_than_the_last_proof_of_health_are_resolved() {
    const REFUSED: &str =
        "[2026-12-03 09:00:01,000] [ERROR@mau.as] MUnknownToken: Unknown access token\n";
    const STARTED: &str = "[2026-12-03 09:00:06,000] [INFO@mau.init] Startup actions complete in 1.5 seconds, now running forever\n";
    let judged = |log: &str, live: Option<LiveFacts>| {
        let mut facts = bridge().build();
        facts.targets[0].logs_scanned = Some(scanned(log, "2026-12-03T11:00:00Z"));
        facts.targets[0].live = live;
        super::run_all(&facts)
            .into_iter()
            .find(|f| f.check == "logs.as_token_rejected")
            .map(|f| (f.status, f))
            .unwrap()
    };
    // Refused, then started: the refusal is history, said with its time.
    let (state, finding) = judged(&format!("{REFUSED}{STARTED}"), None);
    assert_eq!(state, Status::Info);
    assert!(finding.title.starts_with("resolved: "), "{}", finding.title);
    assert!(
        finding.detail.starts_with("Resolved: seen at 2026-12-03T"),
        "{}",
        finding.detail
    );
    assert!(
        finding.detail.contains("none since the bridge started"),
        "{}",
        finding.detail
    );
    let resolved_at = finding.resolved_at.clone().unwrap();
    assert_eq!(
        crate::knowledge::timestamps::line_time(&resolved_at),
        crate::knowledge::timestamps::line_time(STARTED)
    );
    // Still quoted apart, so it can be withheld.
    assert!(finding.evidence.contains_key(super::LOG_LINES));
    // Started, then refused again: current.
    let again = REFUSED.replace("09:00:01", "09:00:09");
    assert_eq!(judged(&format!("{STARTED}{again}"), None).0, Status::Fail);
    // A ping that passes now is the newest proof; one that fails keeps it current.
    let passing = live_ping(answer(200, json!({"duration_ms": 3})));
    assert_eq!(
        judged(&format!("{STARTED}{again}"), Some(passing)).0,
        Status::Info
    );
    let failing = live_ping(answer(502, json!({"errcode": "M_CONNECTION_FAILED"})));
    assert_eq!(
        judged(&format!("{REFUSED}{STARTED}"), Some(failing)).0,
        Status::Fail
    );
    // Seen, resolved, seen again and resolved again within the hour: warn.
    let later = |line: &str, at: &str| line.replace("09:00:01", at).replace("09:00:06", at);
    let flapping = format!(
        "{REFUSED}{STARTED}{}{}",
        later(REFUSED, "10:30:00"),
        later(STARTED, "10:31:00")
    );
    assert_eq!(judged(&flapping, None).0, Status::Warn);
    // A bridge restarted once, failing only while it was down: info.
    let restarted = format!(
        "{STARTED}{}{}",
        later(REFUSED, "10:30:00"),
        later(STARTED, "10:31:00")
    );
    assert_eq!(judged(&restarted, None).0, Status::Info);
    // Lines without a time are never taken for history.
    assert_eq!(
        judged(
            &format!("MUnknownToken: Unknown access token\n{STARTED}"),
            None
        )
        .0,
        Status::Fail
    );
}

#[test]
fn compose_names_are_info_never_a_problem() {
    use crate::facts::deployment::NameInside;
    use crate::input::config::Deployment;
    let mut facts = bridge().live(LiveFacts::default()).build();
    assert_eq!(
        status("deployment.name_unresolvable", &facts),
        Status::Skip,
        "not run by docker-compose"
    );
    facts.targets[0].deployment = Deployment::Compose {
        service: "mautrix-telegram".into(),
        container: "tg".into(),
        mounts: Vec::new(),
    };
    assert_eq!(status("deployment.name_unresolvable", &facts), Status::Pass);
    facts.targets[0].names_inside = vec![
        NameInside {
            written: "config.yaml:2:14 (homeserver.address)".into(),
            name: "synapse".into(),
            service: "synapse".into(),
            via: Some("127.0.0.1:8008".into()),
        },
        NameInside {
            written: "registration.yaml (url)".into(),
            name: "mautrix-telegram".into(),
            service: "mautrix-telegram".into(),
            via: None,
        },
    ];
    let (status, finding) = run("deployment.name_unresolvable", &facts);
    assert_eq!(status, Status::Info);
    assert!(
        finding.title.starts_with(
            "`synapse` resolves only inside the compose network; probed through 127.0.0.1:8008; `mautrix-telegram` resolves only inside the compose network; not probed from here"
        ),
        "{}",
        finding.title
    );
    assert!(
        finding
            .detail
            .starts_with("config.yaml:2:14 (homeserver.address): `synapse`")
    );
    let findings = [finding];
    assert!(crate::checks::diagnoses::diagnose(&findings).is_empty());
    assert_eq!(crate::checks::Summary::of(&findings).info, 1);
}
