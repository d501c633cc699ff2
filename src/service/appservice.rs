//! The appservice API the homeserver calls: transactions, ping, user and
//! room queries. Small on purpose, in the manner of mautrix-go's
//! `appservice` package: authenticate, parse leniently, record, hand on.
//!
//! Bad input never yields a 5xx: a body that is not JSON is 400, one over
//! the limit is 413, and a store failure is the only 500 (the homeserver
//! then retries, which is what we want when we could not record).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;
use tokio::sync::mpsc;

use crate::input::config::Permission;
use crate::service::bot::permission_of;
use crate::service::http::Admission;
use crate::service::log_limit::{LogLimit, bounded};
use crate::service::store::Store;

/// One event the homeserver pushed, with the part of the transaction it came in.
#[derive(Clone, Debug)]
pub struct IncomingEvent {
    pub txn_id: String,
    pub section: &'static str,
    pub event: Value,
    /// From the inbox after a restart, not from a live transaction.
    pub replayed: bool,
    /// Kept in the inbox until the bot is done with it (see `keeps`).
    pub kept: bool,
}

/// Keys of a transaction that carry events, stable and unstable names.
const EVENT_SECTIONS: &[&str] = &[
    "events",
    "ephemeral",
    "de.sorunome.msc2409.ephemeral",
    "to_device",
    "de.sorunome.msc2409.to_device",
];

pub struct AppserviceState {
    pub hs_token: String,
    pub bot_user_id: String,
    /// Who may use the bot (the config's `permissions`).
    permissions: Vec<(String, Permission)>,
    pub max_body_bytes: usize,
    pub store: Store,
    pub events: mpsc::Sender<IncomingEvent>,
    pub pings_received: AtomicU64,
    legacy_auth_warned: AtomicBool,
    /// Counters and gauges for `/metrics`.
    pub metrics: Arc<crate::service::metrics::Metrics>,
    /// The last delivery probe's outcome, for the doctor's own `check` in chat.
    pub last_delivery: std::sync::Mutex<Option<crate::facts::DeliveryProbe>>,
    /// Delivery probes awaited, by the nonce their event carries.
    probes: std::sync::Mutex<std::collections::HashMap<String, tokio::sync::oneshot::Sender<()>>>,
}

/// The content key of the delivery probe's event: its nonce.
pub const PROBE_KEY: &str = "org.bridge_doctor.probe";

fn probe_nonce(event: &serde_json::Value) -> Option<&str> {
    event.get("content")?.get(PROBE_KEY)?.as_str()
}

fn is_probe(event: &serde_json::Value) -> bool {
    probe_nonce(event).is_some()
}

impl AppserviceState {
    /// Fires when an event carrying `nonce` under [`PROBE_KEY`] arrives in a
    /// transaction; registered before the event is sent, so no race.
    pub fn expect_probe(&self, nonce: &str) -> tokio::sync::oneshot::Receiver<()> {
        let (sender, receiver) = tokio::sync::oneshot::channel();
        self.lock_probes().insert(nonce.to_owned(), sender);
        receiver
    }

    fn lock_probes(
        &self,
    ) -> std::sync::MutexGuard<
        '_,
        std::collections::HashMap<String, tokio::sync::oneshot::Sender<()>>,
    > {
        self.probes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether the bot may act on this room event (a message, plain or
    /// encrypted, from someone the config gives a permission; an invite of
    /// the bot): only those are kept until handled, the rest costs no write.
    fn keeps(&self, event: &serde_json::Value) -> bool {
        let field = |key: &str| event.get(key).and_then(|v| v.as_str());
        match field("type") {
            Some("m.room.message" | "m.room.encrypted") => field("sender").is_some_and(|sender| {
                sender != self.bot_user_id
                    && permission_of(&self.permissions, sender).is_some()
                    && !is_probe(event)
            }),
            Some("m.room.member") => field("state_key") == Some(self.bot_user_id.as_str()),
            _ => false,
        }
    }

    /// The event as the bot gets it, when it needs to see it at all: what
    /// it may act on (kept), and every membership change (which can make a
    /// room a management room or stop it being one).
    fn for_bot(&self, txn_id: &str, section: &'static str, event: Value) -> Option<IncomingEvent> {
        if section != "events" || self.take_probe(&event) {
            return None;
        }
        let kept = self.keeps(&event);
        let member = event.get("type").and_then(|v| v.as_str()) == Some("m.room.member");
        (kept || member).then(|| IncomingEvent {
            txn_id: txn_id.to_owned(),
            section,
            event,
            replayed: false,
            kept,
        })
    }

    /// Whether `event` is an awaited probe (then its waiter is told).
    fn take_probe(&self, event: &serde_json::Value) -> bool {
        let Some(nonce) = probe_nonce(event) else {
            return false;
        };
        if let Some(waiter) = self.lock_probes().remove(nonce) {
            let _ = waiter.send(());
        }
        true
    }

    pub fn new(
        hs_token: String,
        bot_user_id: String,
        permissions: Vec<(String, Permission)>,
        max_body_bytes: usize,
        store: Store,
        events: mpsc::Sender<IncomingEvent>,
        metrics: Arc<crate::service::metrics::Metrics>,
    ) -> Arc<AppserviceState> {
        Arc::new(AppserviceState {
            hs_token,
            bot_user_id,
            permissions,
            max_body_bytes,
            store,
            events,
            pings_received: AtomicU64::new(0),
            legacy_auth_warned: AtomicBool::new(false),
            probes: Default::default(),
            metrics,
            last_delivery: Default::default(),
        })
    }
}

fn error(status: StatusCode, errcode: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"errcode": errcode, "error": message})),
    )
        .into_response()
}

pub fn router(state: Arc<AppserviceState>) -> Router {
    Router::new()
        .route("/_matrix/app/v1/transactions/{txn_id}", put(transaction))
        .route("/_matrix/app/v1/ping", post(ping))
        .route("/_matrix/app/v1/users/{user_id}", get(user_query))
        .route("/_matrix/app/v1/rooms/{alias}", get(room_query))
        .fallback(unrecognized)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            refuse_oversized,
        ))
        .with_state(state)
}

/// The token the homeserver sent: the `Authorization` header, or the legacy
/// `access_token` query parameter older homeservers (and Synapse with
/// `use_appservice_legacy_authorization`) use.
fn presented_token<'a>(headers: &'a HeaderMap, uri: &'a Uri) -> Option<(String, bool)> {
    if let Some(value) = headers.get(axum::http::header::AUTHORIZATION) {
        let text = value.to_str().unwrap_or_default();
        let token = text.strip_prefix("Bearer ").unwrap_or_default().trim();
        return Some((token.to_owned(), false));
    }
    let query = uri.query()?;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == "access_token")
        .map(|(_, value)| (value.into_owned(), true))
}

/// Requests refused before the API did anything for them: anyone who
/// reaches the port can send them at will.
static REJECTED: LogLimit = LogLimit::new("rejected requests");

/// Logs a refused request, rate-limited, with its method and path cut
/// short and never its query (which may hold a token).
fn log_rejection(method: &Method, uri: &Uri, why: &str) {
    if REJECTED.admit() {
        tracing::warn!(
            method = %bounded(method.as_str()),
            path = %bounded(uri.path()),
            "request refused: {why}"
        );
    }
}

async fn authenticate(
    State(state): State<Arc<AppserviceState>>,
    request: Request,
    next: Next,
) -> Response {
    let Some((token, legacy)) = presented_token(request.headers(), request.uri()) else {
        log_rejection(request.method(), request.uri(), "no hs_token");
        return error(
            StatusCode::UNAUTHORIZED,
            "M_UNAUTHORIZED",
            "missing hs_token: send Authorization: Bearer <hs_token>",
        );
    };
    let matches: bool = token.as_bytes().ct_eq(state.hs_token.as_bytes()).into();
    if !matches {
        log_rejection(
            request.method(),
            request.uri(),
            "wrong hs_token: if it came from the homeserver, its registration holds another hs_token than this config",
        );
        return error(StatusCode::FORBIDDEN, "M_FORBIDDEN", "invalid hs_token");
    }
    if let Some(admission) = request.extensions().get::<Admission>() {
        admission.authorised();
    }
    if legacy && !state.legacy_auth_warned.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            "the homeserver authenticates with the legacy access_token query parameter; it works, but newer homeservers send an Authorization header (Synapse: leave use_appservice_legacy_authorization unset)"
        );
    }
    next.run(request).await
}

fn too_large() -> Response {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "M_TOO_LARGE",
        "request body is over the configured limit (appservice.max_body_bytes)",
    )
}

/// A body announced over the limit is refused before a byte of it is read
/// (and before the token check, which costs nothing to skip).
async fn refuse_oversized(
    State(state): State<Arc<AppserviceState>>,
    request: Request,
    next: Next,
) -> Response {
    let announced = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|length| length > state.max_body_bytes as u64) {
        log_rejection(request.method(), request.uri(), "body over the limit");
        return too_large();
    }
    next.run(request).await
}

/// How long a client may take to send its body: a slow sender holds a
/// connection and memory, the homeserver never needs this long.
const BODY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

/// Reads the body up to the limit; `Err` is the response to send instead.
async fn read_json(state: &AppserviceState, body: Body) -> Result<Value, Response> {
    let read = tokio::time::timeout(
        BODY_DEADLINE,
        axum::body::to_bytes(body, state.max_body_bytes),
    );
    let bytes: Bytes = match read.await {
        Err(_) => {
            return Err(error(
                StatusCode::REQUEST_TIMEOUT,
                "M_UNKNOWN",
                "the request body did not arrive in time",
            ));
        }
        Ok(read) => read.map_err(|_| too_large())?,
    };
    if bytes.is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| {
        error(
            StatusCode::BAD_REQUEST,
            "M_NOT_JSON",
            "request body is not valid JSON",
        )
    })?;
    if !value.is_object() {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "M_BAD_JSON",
            "request body must be a JSON object",
        ));
    }
    Ok(value)
}

/// How many events the transaction holds, and the ones the bot needs to
/// see (taken out of the body, not copied). Awaited delivery probes are
/// told here.
fn events_for_bot(
    state: &AppserviceState,
    txn_id: &str,
    mut body: Value,
) -> (usize, Vec<IncomingEvent>) {
    let mut count = 0;
    let mut for_bot = Vec::new();
    for section in EVENT_SECTIONS {
        let Some(Value::Array(list)) = body.get_mut(*section).map(Value::take) else {
            continue;
        };
        count += list.len();
        for_bot.extend(
            list.into_iter()
                .filter_map(|event| state.for_bot(txn_id, section, event)),
        );
    }
    (count, for_bot)
}

/// The key a transaction is remembered by: its id and the ids of the room
/// events it carries. Synapse on SQLite numbers its transactions from 1
/// again after a restart (from the ones it has not finished), so the id
/// alone would take new events for a resend and drop them; a true resend
/// carries the same events under the same key.
fn transaction_key(txn_id: &str, body: &Value) -> String {
    let event_ids: Vec<&str> = body
        .get("events")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|event| event.get("event_id")?.as_str())
        .collect();
    if event_ids.is_empty() {
        return txn_id.to_owned();
    }
    let events = crate::service::watch::hash(event_ids.join("\n").as_bytes());
    format!("{txn_id}/{events}")
}

async fn transaction(
    State(state): State<Arc<AppserviceState>>,
    Path(txn_id): Path<String>,
    body: Body,
) -> Response {
    let body = match read_json(&state, body).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    if let Some(section) = EVENT_SECTIONS
        .iter()
        .find(|section| body.get(**section).is_some_and(|list| !list.is_array()))
    {
        return error(
            StatusCode::BAD_REQUEST,
            "M_BAD_JSON",
            &format!("`{section}` must be a list of events"),
        );
    }
    let key = transaction_key(&txn_id, &body);
    let (event_count, events) = events_for_bot(&state, &txn_id, body);
    // Recorded with its room events before answering: once we say 200 the
    // homeserver never resends, so what the bot has not handled yet must
    // survive a crash (it is handled again after the restart).
    let room_events: Vec<(String, String)> = events
        .iter()
        .filter(|e| e.kept)
        .filter_map(|e| {
            Some((
                e.event.get("event_id")?.as_str()?.to_owned(),
                e.event.to_string(),
            ))
        })
        .collect();
    match state
        .store
        .record_transaction(&key, event_count, &room_events)
        .await
    {
        Ok(false) => {
            tracing::debug!(txn_id, "repeated transaction ignored");
        }
        Ok(true) => {
            tracing::debug!(txn_id, events = event_count, "transaction received");
            state.metrics.transaction_received();
            for event in events {
                if state.events.send(event).await.is_err() {
                    tracing::warn!("event queue closed; the doctor is shutting down");
                    break;
                }
            }
        }
        Err(err) => {
            tracing::error!(
                txn_id,
                "could not record the transaction, the homeserver will retry: {err}"
            );
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "M_UNKNOWN",
                "could not record the transaction",
            );
        }
    }
    axum::Json(json!({})).into_response()
}

async fn ping(State(state): State<Arc<AppserviceState>>, body: Body) -> Response {
    if let Err(response) = read_json(&state, body).await {
        return response;
    }
    state.pings_received.fetch_add(1, Ordering::Relaxed);
    tracing::debug!("ping from the homeserver");
    axum::Json(json!({})).into_response()
}

async fn user_query(
    State(state): State<Arc<AppserviceState>>,
    Path(user_id): Path<String>,
) -> Response {
    if user_id == state.bot_user_id {
        axum::Json(json!({})).into_response()
    } else {
        error(
            StatusCode::NOT_FOUND,
            "M_NOT_FOUND",
            "this appservice has no such user",
        )
    }
}

async fn room_query() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "M_NOT_FOUND",
        "this appservice provides no room aliases",
    )
}

async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    log_rejection(&method, &uri, "method not allowed");
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        "M_UNRECOGNIZED",
        "this endpoint does not take that method",
    )
}

async fn unrecognized(method: Method, uri: Uri) -> Response {
    log_rejection(&method, &uri, "unrecognized endpoint");
    error(
        StatusCode::NOT_FOUND,
        "M_UNRECOGNIZED",
        "unrecognized appservice endpoint",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resend_keeps_its_key_and_a_reused_id_with_new_events_does_not() {
        let sent = json!({"events": [{"event_id": "$a", "unsigned": {"age": 10}}]});
        let resent = json!({"events": [{"event_id": "$a", "unsigned": {"age": 900}}]});
        let after_restart = json!({"events": [{"event_id": "$b"}]});
        assert_eq!(transaction_key("1", &sent), transaction_key("1", &resent));
        assert_ne!(
            transaction_key("1", &sent),
            transaction_key("1", &after_restart)
        );
        assert_eq!(
            transaction_key("7", &json!({"ephemeral": [{"type": "m.typing"}]})),
            "7",
            "no room events: the id alone"
        );
    }
}
