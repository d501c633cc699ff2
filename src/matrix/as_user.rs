//! The bot's calls: the homeserver as one user of the appservice sees it.

use std::borrow::Cow;

use ruma::api::auth_scheme::{AuthScheme, SendAccessToken};
use ruma::api::client::{keys, media, membership, message, profile, redact, room, state};
use ruma::api::path_builder::PathBuilder;
use ruma::api::{OutgoingRequest, SupportedVersions};
use ruma::events::{MessageLikeEventType, StateEventType};
use ruma::serde::Raw;
use ruma::{EventId, RoomId, UserId};

use super::client::transaction_id;
use super::{Answer, ConnectError, HomeserverClient, Versions};

/// How long an event waits for a homeserver that restarts: a refused or
/// broken connection is tried again every [`RETRY_EVERY`] until then, so an
/// answer due while the homeserver is down is not lost.
const RESTART_WAIT: std::time::Duration = std::time::Duration::from_secs(60);
const RETRY_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

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

    /// A private room with only this user in it, named `name`.
    pub async fn create_private_room(&self, name: &str) -> Result<Answer, ConnectError> {
        let mut request = room::create_room::v3::Request::new();
        request.name = Some(name.to_owned());
        request.preset = Some(room::create_room::v3::RoomPreset::PrivateChat);
        request.visibility = room::Visibility::Private;
        self.send(request).await
    }

    /// A direct chat with `with` (invited; `is_direct` marks it so in their
    /// client), encrypted from its first event when `encrypted`.
    pub async fn create_direct_chat(
        &self,
        with: &UserId,
        encrypted: bool,
    ) -> Result<Answer, ConnectError> {
        let mut request = room::create_room::v3::Request::new();
        request.preset = Some(room::create_room::v3::RoomPreset::TrustedPrivateChat);
        request.visibility = room::Visibility::Private;
        request.is_direct = true;
        request.invite = vec![with.to_owned()];
        if encrypted {
            let encryption = serde_json::json!({
                "type": "m.room.encryption",
                "state_key": "",
                "content": {"algorithm": "m.megolm.v1.aes-sha2"},
            });
            let raw = serde_json::value::to_raw_value(&encryption)
                .map_err(|e| ConnectError::Other(e.to_string()))?;
            request.initial_state = vec![Raw::from_json(raw)];
        }
        self.send(request).await
    }

    pub async fn leave_room(&self, room: &RoomId, reason: &str) -> Result<Answer, ConnectError> {
        let mut request = membership::leave_room::v3::Request::new(room.to_owned());
        request.reason = Some(reason.to_owned());
        self.send(request).await
    }

    /// The room's member events (everyone who left excluded), as the
    /// homeserver knows them now.
    pub async fn members(&self, room: &RoomId) -> Result<Answer, ConnectError> {
        let mut request = membership::get_member_events::v3::Request::new(room.to_owned());
        request.not_membership = Some(ruma::events::room::member::MembershipState::Leave);
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

    /// `/keys/query` for this user's own devices and cross-signing keys:
    /// what other users' clients see of them.
    pub async fn own_keys(&self) -> Result<Answer, ConnectError> {
        let mut request = keys::get_keys::v3::Request::new();
        request.device_keys.insert(self.user.to_owned(), Vec::new());
        self.send(request).await
    }

    pub async fn set_display_name(&self, name: &str) -> Result<Answer, ConnectError> {
        let request = profile::set_profile_field::v3::Request::new(
            self.user.to_owned(),
            ruma::profile::ProfileFieldValue::DisplayName(name.to_owned()),
        );
        self.send(request).await
    }

    /// Sends an event of `kind` (`m.room.message`, `m.reaction`) with
    /// `content` as `user`; the answer holds its `event_id`. A homeserver
    /// that refuses or drops the connection is tried again for
    /// [`RESTART_WAIT`].
    pub async fn send_event(
        &self,
        room: &RoomId,
        kind: &str,
        content: &serde_json::Value,
    ) -> Result<Answer, ConnectError> {
        let raw = serde_json::value::to_raw_value(content)
            .map_err(|e| ConnectError::Other(e.to_string()))?;
        // One transaction id for every try: an event that did arrive before
        // the connection broke is not sent twice.
        let txn_id = transaction_id();
        let deadline = tokio::time::Instant::now() + RESTART_WAIT;
        loop {
            let request = message::send_message_event::v3::Request::new_raw(
                room.to_owned(),
                txn_id.clone(),
                MessageLikeEventType::from(kind),
                Raw::from_json(raw.clone()),
            );
            match self.send(request).await {
                Err(ConnectError::Refused(why) | ConnectError::Other(why))
                    if tokio::time::Instant::now() < deadline =>
                {
                    tracing::info!(%room, kind, "the homeserver is not reachable ({why}); sending again");
                    tokio::time::sleep(RETRY_EVERY).await;
                }
                result => return result,
            }
        }
    }

    /// Redacts one of the bot's own events (a reaction it replaces).
    pub async fn redact(&self, room: &RoomId, event: &EventId) -> Result<Answer, ConnectError> {
        let request = redact::redact_event::v3::Request::new(
            room.to_owned(),
            event.to_owned(),
            transaction_id(),
        );
        self.send(request).await
    }

    /// Downloads a file of the media repository, at most `limit` bytes.
    pub async fn download(&self, mxc: &str, limit: usize) -> Result<Vec<u8>, String> {
        self.client
            .download_as(self.versions, self.as_token, self.user, mxc, limit)
            .await
    }

    /// Starts a download of at most `limit` bytes, to be read with
    /// [`super::read_capped`].
    pub async fn open_download(
        &self,
        mxc: &str,
        limit: usize,
    ) -> Result<reqwest::Response, String> {
        self.client
            .open_download_as(self.versions, self.as_token, self.user, mxc, limit)
            .await
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
