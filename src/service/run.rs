//! `bridge-doctor run`: serve the appservice API, self-check, then wait for
//! SIGTERM/SIGINT. The listener starts before the self-check because the
//! homeserver's ping has to reach it.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::input::config::Config;
use crate::service::appservice::{self, AppserviceState, IncomingEvent};
use crate::service::bot::Bot;
use crate::service::metrics::Metrics;
use crate::service::selfcheck::{self, FailureClass};
use crate::service::store::Store;
use crate::service::watch;

/// Exit codes of `run`, also listed in the README.
pub const EXIT_CONFIG: i32 = 2;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Config(String),
    #[error("self-check failed")]
    SelfCheck(FailureClass),
}

impl RunError {
    pub fn exit_code(&self) -> i32 {
        match self {
            RunError::Config(_) => EXIT_CONFIG,
            RunError::SelfCheck(class) => *class as i32,
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}

/// Hands each delivered event to the bot, concurrently, so a long command
/// (a check, a packet) does not hold up the others.
async fn serve_bot(bot: Arc<Bot>, mut events: mpsc::Receiver<IncomingEvent>) {
    while let Some(incoming) = events.recv().await {
        let kind = incoming
            .event
            .get("type")
            .and_then(|t| t.as_str())
            .unwrap_or("?")
            .to_owned();
        tracing::debug!(txn_id = %incoming.txn_id, section = incoming.section, kind, "event");
        tokio::spawn({
            let bot = Arc::clone(&bot);
            async move { bot.handle(incoming).await }
        });
    }
}

/// The startup self-check, each finding logged.
async fn self_check(config: &Config) -> Result<(), RunError> {
    let check = selfcheck::run(config).await;
    crate::render::log_lines::log_findings(&check.findings);
    if let Some(class) = check.failure {
        tracing::error!(exit_code = class as i32, "self-check failed; stopping");
        return Err(RunError::SelfCheck(class));
    }
    match check.ping_ms {
        Some(ms) => {
            tracing::info!("self-check passed: the homeserver reached the doctor in {ms} ms")
        }
        None => tracing::info!("self-check passed"),
    }
    Ok(())
}

/// Hands the bot what it had not handled when the doctor last stopped
/// (killed after recording a transaction): the homeserver will not send
/// those events again. Commands answered before are skipped by the bot.
async fn replay_inbox(state: &AppserviceState) {
    let pending = match state.store.inbox().await {
        Ok(pending) => pending,
        Err(err) => {
            tracing::error!("could not read the events left from the last run: {err}");
            return;
        }
    };
    if !pending.is_empty() {
        tracing::info!(
            events = pending.len(),
            "handling the events left from the last run"
        );
    }
    for (txn_id, text) in pending {
        let Ok(event) = serde_json::from_str(&text) else {
            continue;
        };
        let incoming = IncomingEvent {
            txn_id,
            section: "events",
            event,
            replayed: true,
            kept: true,
        };
        if state.events.send(incoming).await.is_err() {
            return;
        }
    }
}

/// Proves that transactions reach the doctor (the event queue must already
/// be served), logs the finding and keeps the outcome for chat `check`.
async fn probe_delivery(config: Config, state: Arc<AppserviceState>) {
    let probe = crate::service::delivery::probe(&config, &state).await;
    if let Some(finding) = selfcheck::delivery_finding(&config, probe.clone()) {
        crate::render::log_lines::log_findings(std::slice::from_ref(&finding));
    }
    *state
        .last_delivery
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(probe);
}

/// `GET /metrics` on `metrics.listen`, when set.
async fn serve_metrics(
    config: &Config,
    metrics: &Arc<Metrics>,
) -> Result<Option<tokio::task::JoinHandle<()>>, RunError> {
    let Some(address) = config.metrics_listen else {
        return Ok(None);
    };
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| RunError::Config(format!("cannot listen on {address} for metrics: {e}. Another program may use the port (`metrics.listen`).")))?;
    // The bound address: with port 0 the system picks one, and says so here.
    let address = listener.local_addr().unwrap_or(address);
    tracing::info!(%address, "metrics listening");
    let router = crate::service::metrics::router(Arc::clone(metrics));
    Ok(Some(tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    })))
}

/// Removes the packets a killed run left in the bot's working folder; the
/// bot says so when it cannot build a packet later.
fn clear_packet_work_dir(config: &Config) {
    let dir = crate::service::workdir::packet_work_dir(config);
    if let Err(err) = crate::service::workdir::reset(&dir) {
        tracing::warn!(
            folder = %dir.display(),
            "cannot clear the bot's working folder for packets: {err}"
        );
    }
}

/// The appservice API's listener on `appservice.hostname:port`.
async fn listen(config: &Config) -> Result<tokio::net::TcpListener, RunError> {
    let bind: SocketAddr = format!("{}:{}", config.appservice.hostname, config.appservice.port)
        .parse()
        .map_err(|_| {
            RunError::Config(format!(
                "{}: `appservice.hostname` must be an IP address such as 127.0.0.1 or 0.0.0.0",
                config.path.display()
            ))
        })?;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|e| RunError::Config(format!("cannot listen on {bind}: {e}. Another program may use the port (`appservice.port`), or the address is not on this machine (`appservice.hostname`).")))?;
    tracing::info!(%bind, "appservice API listening");
    Ok(listener)
}

/// Raises the soft limit on open descriptors to the hard one: every
/// connection costs one, and the usual soft limit (1,024) is low enough for
/// anyone reaching the port to exhaust.
fn raise_descriptor_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return;
    };
    if soft >= hard {
        tracing::debug!(limit = soft, "open descriptor limit");
        return;
    }
    match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
        Ok(()) => tracing::info!("open descriptor limit raised from {soft} to {hard}"),
        Err(err) => tracing::warn!("open descriptor limit stays at {soft}: {err}"),
    }
}

pub async fn run(config: Config) -> Result<(), RunError> {
    raise_descriptor_limit();
    if config.appservice.has_placeholder_tokens() {
        return Err(RunError::Config(format!(
            "{}: `appservice.as_token` or `appservice.hs_token` still holds the placeholder. Run `bridge-doctor generate-registration -c {} -r {}`, give the registration to the homeserver, restart it, then start the doctor again.",
            config.path.display(),
            config.path.display(),
            config.appservice.registration_or_default().display()
        )));
    }
    let store = Store::open(&config.database)
        .await
        .map_err(|e| RunError::Config(e.to_string()))?;
    let listener = listen(&config).await?;
    // After the port is ours: a second doctor started by mistake on the
    // same config stops at the port, before touching the first one's packets.
    clear_packet_work_dir(&config);
    let metrics = Arc::new(Metrics::default());
    let metrics_task = serve_metrics(&config, &metrics).await?;

    let (sender, receiver) = mpsc::channel(1024);
    let state = AppserviceState::new(
        config.appservice.hs_token.clone(),
        config.appservice.bot_user_id(&config.homeserver.domain),
        config.permissions.clone(),
        usize::try_from(config.appservice.max_body_bytes).unwrap_or(usize::MAX),
        store.clone(),
        sender,
        Arc::clone(&metrics),
    );
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(crate::service::http::serve(
        listener,
        appservice::router(Arc::clone(&state)),
        async {
            tokio::select! {
                () = shutdown_signal() => {},
                _ = stop_rx => {},
            }
        },
    ));

    let outcome = self_check(&config).await;
    if outcome.is_err() {
        let _ = stop_tx.send(());
    }
    let bot_task = match &outcome {
        Ok(()) => match Bot::new(config.clone(), Arc::clone(&state)).await {
            Some(bot) => {
                let bot = Arc::new(bot);
                bot.start_sync();
                tokio::spawn(probe_delivery(config.clone(), Arc::clone(&state)));
                let watching = tokio::spawn(watch::watch(
                    config.clone(),
                    Arc::clone(&bot),
                    Arc::clone(&metrics),
                ));
                let task = tokio::spawn(serve_bot(bot, receiver));
                replay_inbox(&state).await;
                Some((task, watching))
            }
            None => {
                tracing::error!("the bot cannot start: the homeserver stopped answering /versions");
                None
            }
        },
        Err(_) => None,
    };
    let _ = server.await;
    drop(state);
    if let Some((task, watching)) = bot_task {
        task.abort();
        watching.abort();
    }
    if let Some(task) = metrics_task {
        task.abort();
    }
    store.close().await;
    outcome
}
