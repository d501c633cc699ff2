//! The startup self-check of `run`: the doctor probes itself as a target,
//! registers its bot when missing, and runs the same checks `check` runs.
//! It stops at the first failing step, because later steps only repeat it.

use std::time::{Duration, Instant};

use crate::checks::{self, Context, Finding, Status};
use crate::facts::{self, DeliveryProbe, DeviceFacts, Facts, HomeserverFacts, LiveFacts, Mode};
use crate::input::config::Config;
use crate::matrix::{HomeserverClient, Versions, VersionsError};

/// Why `run` stopped; the discriminant is the process exit code (documented
/// in the README).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureClass {
    HomeserverUnreachable = 3,
    AsTokenRejected = 4,
    Identity = 5,
    HomeserverCannotReachDoctor = 6,
}

pub struct SelfCheck {
    pub findings: Vec<Finding>,
    pub failure: Option<FailureClass>,
    /// The homeserver's round trip to the doctor, when the ping succeeded.
    pub ping_ms: Option<u64>,
}

/// The steps in order: each is the checks it runs and the class of its failure.
const STEPS: &[(&[&str], FailureClass)] = &[
    (
        &[
            "homeserver.unreachable",
            "homeserver.tls_untrusted",
            "homeserver.not_matrix",
        ],
        FailureClass::HomeserverUnreachable,
    ),
    (&["tokens.as_token_rejected"], FailureClass::AsTokenRejected),
    (
        &[
            "domain.mismatch",
            "homeserver.wrong_server",
            "namespace.bot_not_covered",
        ],
        FailureClass::Identity,
    ),
    (
        &[
            "ping.unsupported",
            "ping.connection_failed",
            "ping.timeout",
            "ping.bad_status",
            "ping.id_mismatch",
            "tokens.hs_token_rejected",
        ],
        FailureClass::HomeserverCannotReachDoctor,
    ),
];

/// Waits for `/versions` up to `wait`, since the homeserver and the doctor
/// often start together.
async fn versions_with_wait(
    client: &HomeserverClient,
    wait: Duration,
) -> Result<Versions, VersionsError> {
    let deadline = Instant::now() + wait;
    loop {
        let result = client.versions().await;
        match &result {
            Err(VersionsError::Connect { error }) if Instant::now() < deadline => {
                tracing::info!(
                    "homeserver not reachable yet ({}), retrying",
                    error.message()
                );
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            _ => return result,
        }
    }
}

fn is_unregistered(answer: &crate::matrix::Answer) -> bool {
    answer.errcode_is("M_FORBIDDEN")
        && answer
            .error
            .as_deref()
            .is_some_and(|e| e.contains("not registered"))
}

/// Gathers the doctor's live facts, registering its bot when the
/// homeserver says it does not exist yet.
async fn gather_live(config: &Config, client: &HomeserverClient) -> LiveFacts {
    let mut live = LiveFacts {
        address: config.homeserver.address.clone(),
        ..LiveFacts::default()
    };
    let wait = Duration::from_secs(config.homeserver.startup_wait_seconds);
    let versions = versions_with_wait(client, wait).await;
    let Ok(found) = &versions else {
        live.versions = Some(versions);
        return live;
    };
    let token = &config.appservice.as_token;
    let sender = client.whoami(found, token, None).await;
    let token_ok = matches!(&sender, Ok(answer) if answer.is_success());
    live.whoami_sender = Some(sender);
    let bot = ruma::UserId::parse(config.appservice.bot_user_id(&config.homeserver.domain));
    if token_ok && let Ok(bot) = &bot {
        let mut as_bot = client.whoami(found, token, Some(bot)).await;
        if matches!(&as_bot, Ok(answer) if is_unregistered(answer)) {
            tracing::info!(bot = %bot, "the bot user does not exist yet; registering it");
            let registered = client
                .register_appservice_user(found, token, &config.appservice.bot_username)
                .await;
            if matches!(&registered, Ok(answer) if answer.is_success()) {
                as_bot = client.whoami(found, token, Some(bot)).await;
            }
            live.bot_registration = Some(registered);
        }
        live.whoami_bot = Some(as_bot);
        live.ping = Some(
            client
                .ping_appservice(found, token, &config.appservice.id)
                .await,
        );
    }
    live.versions = Some(versions);
    live
}

/// The facts of the doctor alone, with what `run` observed of it.
fn doctor_facts(config: &Config, live: LiveFacts) -> Facts {
    let hs_config = facts::homeserver_config(config);
    let loaded = facts::loaded_registrations(
        hs_config.as_ref().and_then(|c| c.as_ref().ok()),
        &config.homeserver.deployment,
    );
    let mut target = facts::doctor_target(config, &facts::doctor_registration(config, &loaded));
    target.live = Some(live);
    let targets = [target];
    let real_paths = facts::real_paths(&hs_config, &[], &targets);
    let [target] = targets;
    Facts {
        mode: Mode::Startup,
        homeserver: HomeserverFacts {
            address: config.homeserver.address.clone(),
            domain: config.homeserver.domain.clone(),
            config: hs_config,
            registrations: Vec::new(),
            versions: None,
            software: None,
            worker_names: Vec::new(),
            delivery: None,
            real_paths,
        },
        targets: vec![target],
    }
}

/// One check of the doctor with what `run` observed after the steps.
fn finding_with(config: &Config, live: LiveFacts, id: &str) -> Option<Finding> {
    let facts = doctor_facts(config, live);
    let context = Context {
        facts: &facts,
        target: &facts.targets[0],
    };
    checks::by_id(id).map(|check| checks::run_one(check, &context))
}

/// The bot's device, checked once the bot has set it up, after the steps:
/// no device does not stop the doctor, which then answers unencrypted
/// rooms only.
pub fn device_finding(config: &Config, device: DeviceFacts) -> Option<Finding> {
    let live = LiveFacts {
        device: Some(device),
        ..LiveFacts::default()
    };
    finding_with(config, live, "encryption.doctor_unavailable")
}

/// The doctor's end-to-end delivery, once the probe came back (or not):
/// the doctor keeps running either way, its ping still answers.
pub fn delivery_finding(config: &Config, probe: DeliveryProbe) -> Option<Finding> {
    let live = LiveFacts {
        delivery_probe: Some(probe),
        ..LiveFacts::default()
    };
    finding_with(config, live, "delivery.stalled")
}

pub async fn run(config: &Config) -> SelfCheck {
    let client = HomeserverClient::new(&config.homeserver.address, facts::PROBE_TIMEOUT);
    let live = gather_live(config, &client).await;
    let ping_ms = live
        .ping
        .as_ref()
        .and_then(|p| p.as_ref().ok())
        .and_then(|a| a.as_ref())
        .filter(|a| a.is_success())
        .and_then(|a| a.json.as_ref()?.get("duration_ms")?.as_u64());
    let facts = doctor_facts(config, live);
    let context = Context {
        facts: &facts,
        target: &facts.targets[0],
    };
    let mut findings = Vec::new();
    for (ids, class) in STEPS {
        let step: Vec<Finding> = ids
            .iter()
            .filter_map(|id| checks::by_id(id))
            .map(|check| checks::run_one(check, &context))
            .collect();
        let failed = step.iter().any(|f| f.status == Status::Fail);
        findings.extend(step);
        if failed {
            return SelfCheck {
                findings,
                failure: Some(*class),
                ping_ms,
            };
        }
    }
    SelfCheck {
        findings,
        failure: None,
        ping_ms,
    }
}
