//! Raw probes of a homeserver's client-server API.
//!
//! Requests are built with ruma (so paths and appservice identity follow the
//! spec), sent with reqwest, and the answer is kept raw: status, errcode,
//! error text. The checks need the exact answer (`M_UNKNOWN_TOKEN` vs
//! `M_FORBIDDEN` "not registered" vs a proxy's HTML page), which a typed
//! client would fold into one error.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Duration;

use ruma::api::auth_scheme::AuthScheme;
use ruma::api::auth_scheme::SendAccessToken;
use ruma::api::client::{
    account, appservice::request_ping, media, membership, message, profile, room, state,
};
use ruma::api::path_builder::PathBuilder;
use ruma::api::{
    AppserviceUserIdentity, OutgoingRequest, OutgoingRequestAppserviceExt, SupportedVersions,
};
use ruma::events::{MessageLikeEventType, StateEventType};
use ruma::serde::Raw;
use ruma::{EventId, OwnedTransactionId, RoomId, UserId};
use serde::Serialize;

/// How a request failed before any HTTP answer came back.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", content = "error", rename_all = "snake_case")]
pub enum ConnectError {
    Dns(String),
    Refused(String),
    Timeout(String),
    TlsUntrusted(String),
    Other(String),
}

impl ConnectError {
    pub fn message(&self) -> &str {
        match self {
            ConnectError::Dns(m)
            | ConnectError::Refused(m)
            | ConnectError::Timeout(m)
            | ConnectError::TlsUntrusted(m)
            | ConnectError::Other(m) => m,
        }
    }

    fn from_reqwest(err: &reqwest::Error) -> ConnectError {
        let chain = error_chain(err);
        let lower = chain.to_lowercase();
        if err.is_timeout() || lower.contains("timed out") {
            ConnectError::Timeout(chain)
        } else if lower.contains("certificate")
            || lower.contains("unknownissuer")
            || lower.contains("invalid peer")
        {
            ConnectError::TlsUntrusted(chain)
        } else if lower.contains("dns error")
            || lower.contains("failed to lookup")
            || lower.contains("name or service not known")
        {
            ConnectError::Dns(chain)
        } else if lower.contains("connection refused") {
            ConnectError::Refused(chain)
        } else {
            ConnectError::Other(chain)
        }
    }
}

/// "error sending request: client error (Connect): tcp connect error: Connection refused"
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        let piece = inner.to_string();
        if !text.contains(&piece) {
            text.push_str(": ");
            text.push_str(&piece);
        }
        source = inner.source();
    }
    text
}

/// An HTTP answer kept as the checks need it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Answer {
    pub status: u16,
    pub errcode: Option<String>,
    pub error: Option<String>,
    /// The body as JSON, when it was JSON.
    pub json: Option<serde_json::Value>,
    /// The first bytes of a body that was not JSON (an HTML error page, say).
    pub text_excerpt: Option<String>,
}

impl Answer {
    fn from_parts(status: u16, body: &[u8]) -> Answer {
        let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
        let field = |name: &str| {
            json.as_ref()
                .and_then(|j| j.get(name))
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        Answer {
            status,
            errcode: field("errcode"),
            error: field("error"),
            text_excerpt: json
                .is_none()
                .then(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned()),
            json,
        }
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn errcode_is(&self, code: &str) -> bool {
        self.errcode.as_deref() == Some(code)
    }

    /// "403 M_FORBIDDEN: Application service has not registered this user"
    /// Redacted: error texts quote whatever the other side sent.
    pub fn summary(&self) -> String {
        crate::shared::redact::line(&self.raw_summary())
    }

    fn raw_summary(&self) -> String {
        match (&self.errcode, &self.error) {
            (Some(code), Some(error)) => format!("{} {code}: {error}", self.status),
            (Some(code), None) => format!("{} {code}", self.status),
            _ => match &self.text_excerpt {
                Some(text) if !text.trim().is_empty() => {
                    format!("{} with a non-JSON body: {}", self.status, text.trim())
                }
                _ => format!("HTTP {}", self.status),
            },
        }
    }
}

/// What `/_matrix/client/versions` told us.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Versions {
    pub versions: Vec<String>,
    pub unstable_features: BTreeMap<String, bool>,
}

impl Versions {
    pub fn supported(&self) -> SupportedVersions {
        SupportedVersions::from_parts(&self.versions, &self.unstable_features)
    }

    pub fn supports(&self, version: &str) -> bool {
        let wanted = parse_version(version);
        self.versions.iter().any(|v| parse_version(v) >= wanted)
    }
}

/// "v1.11" -> (1, 11); "r0.6.1" -> (0, 6) so it sorts below every v1.
fn parse_version(text: &str) -> (u32, u32) {
    let digits = text.trim_start_matches(['v', 'r']);
    let mut parts = digits.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// Why `/versions` did not give a usable answer.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum VersionsError {
    Connect { error: ConnectError },
    NotMatrix { answer: Answer },
}

/// Name and version from the unauthenticated federation version endpoint.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ServerSoftware {
    pub name: String,
    pub version: String,
}

/// A transaction id unique for this process: time plus a counter.
fn transaction_id() -> OwnedTransactionId {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    OwnedTransactionId::from(format!(
        "bridge-doctor-{}-{n}",
        time::OffsetDateTime::now_utc().unix_timestamp_nanos()
    ))
}

#[derive(Clone)]
pub struct HomeserverClient {
    http: reqwest::Client,
    base: String,
}

impl HomeserverClient {
    pub fn new(base: &str, timeout: Duration) -> HomeserverClient {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("bridge-doctor/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        HomeserverClient {
            http,
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    async fn send(&self, request: reqwest::Request) -> Result<Answer, ConnectError> {
        let response = self
            .http
            .execute(request)
            .await
            .map_err(|e| ConnectError::from_reqwest(&e))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|e| ConnectError::from_reqwest(&e))?;
        Ok(Answer::from_parts(status, &body))
    }

    async fn get(&self, path: &str) -> Result<Answer, ConnectError> {
        let request = self
            .http
            .get(format!("{}{path}", self.base))
            .build()
            .map_err(|e| ConnectError::Other(e.to_string()))?;
        self.send(request).await
    }

    async fn send_ruma(
        &self,
        request: Result<http::Request<Vec<u8>>, ruma::api::error::IntoHttpError>,
    ) -> Result<Answer, ConnectError> {
        let request =
            request.map_err(|e| ConnectError::Other(format!("cannot build the request: {e}")))?;
        let request = reqwest::Request::try_from(request)
            .map_err(|e| ConnectError::Other(format!("cannot build the request: {e}")))?;
        self.send(request).await
    }

    pub async fn versions(&self) -> Result<Versions, VersionsError> {
        let answer = self
            .get("/_matrix/client/versions")
            .await
            .map_err(|error| VersionsError::Connect { error })?;
        let parsed = answer.json.as_ref().and_then(|json| {
            let versions = json.get("versions")?.as_array()?;
            let versions = versions
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect::<Vec<_>>();
            let unstable_features = json
                .get("unstable_features")
                .and_then(|f| f.as_object())
                .map(|features| {
                    features
                        .iter()
                        .map(|(k, v)| (k.clone(), v.as_bool().unwrap_or(false)))
                        .collect()
                })
                .unwrap_or_default();
            Some(Versions {
                versions,
                unstable_features,
            })
        });
        match parsed {
            Some(versions) if answer.is_success() => Ok(versions),
            _ => Err(VersionsError::NotMatrix { answer }),
        }
    }

    /// Server software from `/_matrix/federation/v1/version`; `None` when the
    /// federation listener is not on this address (common behind a proxy).
    pub async fn software(&self) -> Option<ServerSoftware> {
        let answer = self.get("/_matrix/federation/v1/version").await.ok()?;
        let server = answer.json?.get("server")?.clone();
        Some(ServerSoftware {
            name: server.get("name")?.as_str()?.to_owned(),
            version: server
                .get("version")?
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        })
    }

    /// Builds `request` as the appservice (as_token), asserting `user` as the
    /// identity when given, and sends it. Every appservice call goes here.
    async fn send_as<R>(
        &self,
        request: R,
        versions: &Versions,
        as_token: &str,
        user: Option<&UserId>,
    ) -> Result<Answer, ConnectError>
    where
        R: OutgoingRequest,
        for<'a> R::Authentication: AuthScheme<Input<'a> = SendAccessToken<'a>>,
        for<'a> R::PathBuilder: PathBuilder<Input<'a> = Cow<'a, SupportedVersions>>,
    {
        let request = request.try_into_http_request_with_identity(
            &self.base,
            SendAccessToken::Appservice(as_token),
            user.map(AppserviceUserIdentity::new).unwrap_or_default(),
            Cow::Owned(versions.supported()),
        );
        self.send_ruma(request).await
    }

    /// whoami as the appservice, optionally masquerading as `user_id`.
    pub async fn whoami(
        &self,
        versions: &Versions,
        as_token: &str,
        user_id: Option<&UserId>,
    ) -> Result<Answer, ConnectError> {
        self.send_as(
            account::whoami::v3::Request::new(),
            versions,
            as_token,
            user_id,
        )
        .await
    }

    /// Registers `localpart` as a user of the appservice (`m.login.application_service`).
    pub async fn register_appservice_user(
        &self,
        versions: &Versions,
        as_token: &str,
        localpart: &str,
    ) -> Result<Answer, ConnectError> {
        let mut request = account::register::v3::Request::new();
        request.username = Some(localpart.to_owned());
        request.inhibit_login = true;
        request.login_type = Some(account::register::LoginType::ApplicationService);
        self.send_as(request, versions, as_token, None).await
    }

    /// Asks the homeserver to ping the appservice `appservice_id`.
    /// `Ok(None)`: the homeserver advertises no ping endpoint at all.
    pub async fn ping_appservice(
        &self,
        versions: &Versions,
        as_token: &str,
        appservice_id: &str,
    ) -> Result<Option<Answer>, ConnectError> {
        let mut request = request_ping::v1::Request::new(appservice_id.to_owned());
        request.transaction_id = Some(transaction_id());
        match request.try_into_http_request::<Vec<u8>>(
            &self.base,
            SendAccessToken::Appservice(as_token),
            Cow::Owned(versions.supported()),
        ) {
            Err(ruma::api::error::IntoHttpError::NoUnstablePath)
            | Err(ruma::api::error::IntoHttpError::EndpointRemoved(_)) => Ok(None),
            request => self.send_ruma(request).await.map(Some),
        }
    }
}

/// The homeserver as one user of the appservice sees it: every call carries
/// the as_token and asserts `user` (the bot's calls).
pub struct AsUser<'a> {
    pub client: &'a HomeserverClient,
    pub versions: &'a Versions,
    pub as_token: &'a str,
    pub user: &'a UserId,
}

impl AsUser<'_> {
    async fn send<R>(&self, request: R) -> Result<Answer, ConnectError>
    where
        R: OutgoingRequest,
        for<'a> R::Authentication: AuthScheme<Input<'a> = SendAccessToken<'a>>,
        for<'a> R::PathBuilder: PathBuilder<Input<'a> = Cow<'a, SupportedVersions>>,
    {
        self.client
            .send_as(request, self.versions, self.as_token, Some(self.user))
            .await
    }

    pub async fn join_room(&self, room: &RoomId) -> Result<Answer, ConnectError> {
        let request = membership::join_room_by_id::v3::Request::new(room.to_owned());
        self.send(request).await
    }

    pub async fn leave_room(&self, room: &RoomId, reason: &str) -> Result<Answer, ConnectError> {
        let mut request = membership::leave_room::v3::Request::new(room.to_owned());
        request.reason = Some(reason.to_owned());
        self.send(request).await
    }

    pub async fn joined_members(&self, room: &RoomId) -> Result<Answer, ConnectError> {
        let request = membership::joined_members::v3::Request::new(room.to_owned());
        self.send(request).await
    }

    /// The room's state event of `kind` (with an empty state key).
    pub async fn room_state(
        &self,
        room: &RoomId,
        kind: StateEventType,
    ) -> Result<Answer, ConnectError> {
        let request =
            state::get_state_event_for_key::v3::Request::new(room.to_owned(), kind, String::new());
        self.send(request).await
    }

    pub async fn room_event(&self, room: &RoomId, event: &EventId) -> Result<Answer, ConnectError> {
        let request = room::get_room_event::v3::Request::new(room.to_owned(), event.to_owned());
        self.send(request).await
    }

    pub async fn set_display_name(&self, name: &str) -> Result<Answer, ConnectError> {
        let request = profile::set_profile_field::v3::Request::new(
            self.user.to_owned(),
            ruma::profile::ProfileFieldValue::DisplayName(name.to_owned()),
        );
        self.send(request).await
    }

    /// Sends an `m.room.message` with `content` as `user`.
    pub async fn send_message(
        &self,
        room: &RoomId,
        content: &serde_json::Value,
    ) -> Result<Answer, ConnectError> {
        let raw = serde_json::value::to_raw_value(content)
            .map_err(|e| ConnectError::Other(e.to_string()))?;
        let request = message::send_message_event::v3::Request::new_raw(
            room.to_owned(),
            transaction_id(),
            MessageLikeEventType::RoomMessage,
            Raw::from_json(raw),
        );
        self.send(request).await
    }

    /// Uploads a file to the media repository; the answer holds `content_uri`.
    pub async fn upload(
        &self,
        bytes: Vec<u8>,
        filename: &str,
        content_type: &str,
    ) -> Result<Answer, ConnectError> {
        let mut request = media::create_content::v3::Request::new(bytes);
        request.filename = Some(filename.to_owned());
        request.content_type = Some(content_type.to_owned());
        self.send(request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_keeps_errcode_and_html_excerpt() {
        let answer = Answer::from_parts(403, br#"{"errcode":"M_FORBIDDEN","error":"nope"}"#);
        assert_eq!(answer.summary(), "403 M_FORBIDDEN: nope");
        let html = Answer::from_parts(502, b"<html>Bad Gateway</html>");
        assert_eq!(
            html.summary(),
            "502 with a non-JSON body: <html>Bad Gateway</html>"
        );
    }

    #[test]
    fn versions_compare_numerically() {
        let versions = Versions {
            versions: vec!["r0.6.1".into(), "v1.11".into()],
            unstable_features: BTreeMap::new(),
        };
        assert!(versions.supports("v1.7"));
        assert!(!versions.supports("v1.12"));
    }
}
