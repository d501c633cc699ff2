//! Requests to the homeserver: unauthenticated probes, and every call as
//! the appservice (as_token, optionally asserting a user's identity).

use std::borrow::Cow;
use std::time::Duration;

use ruma::api::auth_scheme::AuthScheme;
use ruma::api::auth_scheme::SendAccessToken;
use ruma::api::client::{account, appservice::request_ping};
use ruma::api::path_builder::PathBuilder;
use ruma::api::{
    AppserviceUserIdentity, OutgoingRequest, OutgoingRequestAppserviceExt, SupportedVersions,
};
use ruma::{OwnedTransactionId, UserId};

use super::{Answer, ConnectError, ServerSoftware, Versions, VersionsError};

/// A transaction id unique for this process: time plus a counter.
pub(super) fn transaction_id() -> OwnedTransactionId {
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
    pub(super) async fn send_as<R>(
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

    /// Sends `request` with a device's own access token.
    async fn send_as_device<R>(
        &self,
        request: R,
        versions: &Versions,
        access_token: &str,
    ) -> Result<Answer, ConnectError>
    where
        R: OutgoingRequest,
        for<'a> R::Authentication: AuthScheme<Input<'a> = SendAccessToken<'a>>,
        for<'a> R::PathBuilder: PathBuilder<Input<'a> = Cow<'a, SupportedVersions>>,
    {
        let request = request.try_into_http_request::<Vec<u8>>(
            &self.base,
            SendAccessToken::IfRequired(access_token),
            Cow::Owned(versions.supported()),
        );
        self.send_ruma(request).await
    }

    /// whoami with a device's access token: whose device it is, or
    /// `M_UNKNOWN_TOKEN` when the homeserver no longer takes it.
    pub async fn whoami_device(
        &self,
        versions: &Versions,
        access_token: &str,
    ) -> Result<Answer, ConnectError> {
        self.send_as_device(account::whoami::v3::Request::new(), versions, access_token)
            .await
    }

    /// Logs `access_token` out: the homeserver deletes its device too.
    pub async fn logout_device(
        &self,
        versions: &Versions,
        access_token: &str,
    ) -> Result<Answer, ConnectError> {
        use ruma::api::client::session::logout;
        self.send_as_device(logout::v3::Request::new(), versions, access_token)
            .await
    }

    /// Starts downloading a file of the media repository as the appservice
    /// acting for `user`: the answer, once its status says the file is
    /// there and its length is not over `limit`, to be read with
    /// [`read_capped`] (which holds to `limit` whatever the length said).
    pub async fn open_download_as(
        &self,
        versions: &Versions,
        as_token: &str,
        user: &UserId,
        mxc: &str,
        limit: usize,
    ) -> Result<reqwest::Response, String> {
        use ruma::api::client::authenticated_media::get_content;
        let uri = <&ruma::MxcUri>::from(mxc);
        let request = get_content::v1::Request::from_uri(uri)
            .map_err(|e| format!("`{mxc}` is not a media URI: {e}"))?
            .try_into_http_request_with_identity::<Vec<u8>>(
                &self.base,
                SendAccessToken::Appservice(as_token),
                AppserviceUserIdentity::new(user),
                Cow::Owned(versions.supported()),
            )
            .map_err(|e| format!("cannot build the request: {e}"))?;
        let request = reqwest::Request::try_from(request)
            .map_err(|e| format!("cannot build the request: {e}"))?;
        let response = self
            .http
            .execute(request)
            .await
            .map_err(|e| ConnectError::from_reqwest(&e).message().to_owned())?;
        if !response.status().is_success() {
            let status = response.status().as_u16();
            let body = response.bytes().await.unwrap_or_default();
            return Err(Answer::from_parts(status, &body).summary());
        }
        if response.content_length().is_some_and(|n| n > limit as u64) {
            return Err(too_large(limit));
        }
        Ok(response)
    }

    /// Downloads a file of the media repository as the appservice acting
    /// for `user`; at most `limit` bytes are read, a larger file is refused
    /// (so a huge upload costs no memory).
    pub async fn download_as(
        &self,
        versions: &Versions,
        as_token: &str,
        user: &UserId,
        mxc: &str,
        limit: usize,
    ) -> Result<Vec<u8>, String> {
        let mut response = self
            .open_download_as(versions, as_token, user, mxc, limit)
            .await?;
        read_capped(&mut response, limit, |chunk, bytes| {
            bytes.extend_from_slice(chunk);
            Ok(())
        })
        .await
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

    /// The media repository's limits as the appservice, on the
    /// authenticated media path bridges use (`/_matrix/client/v1/media/config`).
    pub async fn media_config(
        &self,
        versions: &Versions,
        as_token: &str,
    ) -> Result<Answer, ConnectError> {
        use ruma::api::client::authenticated_media::get_media_config;
        self.send_as(
            get_media_config::v1::Request::new(),
            versions,
            as_token,
            None,
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

    /// Logs `localpart` in as the appservice (`m.login.application_service`),
    /// on `device_id` when given (the device is reused), else on a new device.
    /// The answer holds the device's `access_token` and `device_id`.
    pub async fn login_appservice_user(
        &self,
        versions: &Versions,
        as_token: &str,
        localpart: &str,
        device_id: Option<&str>,
    ) -> Result<Answer, ConnectError> {
        use ruma::api::client::session::login::v3::{ApplicationService, LoginInfo, Request};
        use ruma::api::client::uiaa::{MatrixUserIdentifier, UserIdentifier};
        let identifier = UserIdentifier::Matrix(MatrixUserIdentifier::new(localpart.to_owned()));
        let mut request = Request::new(LoginInfo::ApplicationService(ApplicationService::new(
            identifier,
        )));
        request.device_id = device_id.map(Into::into);
        request.initial_device_display_name = Some("bridge-doctor".to_owned());
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

/// Bytes that arrive chunk by chunk: a download (or a test's stand-in).
pub trait Chunks {
    /// The next chunk; `None` at the end.
    fn next_chunk(
        &mut self,
    ) -> impl std::future::Future<Output = Result<Option<hyper::body::Bytes>, String>> + Send;
}

impl Chunks for reqwest::Response {
    async fn next_chunk(&mut self) -> Result<Option<hyper::body::Bytes>, String> {
        self.chunk()
            .await
            .map_err(|e| ConnectError::from_reqwest(&e).message().to_owned())
    }
}

/// Why a download was refused for its size.
pub fn too_large(limit: usize) -> String {
    format!("the file is larger than {} MiB", limit / (1024 * 1024))
}

/// Reads `source` to its end, `append` adding each chunk (decrypted, say)
/// to the bytes kept; refused as soon as they would pass `limit`. Whatever
/// size the sender announced, no more than `limit` bytes and one chunk are
/// ever held.
pub async fn read_capped(
    source: &mut impl Chunks,
    limit: usize,
    mut append: impl FnMut(&[u8], &mut Vec<u8>) -> Result<(), String> + Send,
) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    while let Some(chunk) = source.next_chunk().await? {
        if bytes.len() + chunk.len() > limit {
            return Err(too_large(limit));
        }
        append(&chunk, &mut bytes)?;
    }
    Ok(bytes)
}
