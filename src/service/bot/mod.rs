//! The bot in Matrix: joins when a permitted user invites it, and answers
//! commands in rooms (without prefix in a management room, a room of the bot
//! and one user; with `command_prefix` elsewhere). Events arrive through the
//! appservice transactions (`appservice.rs`); replies go out as the bot with
//! the as_token and identity assertion. Every command runs the same engine
//! as the command line: `check` facts and report, `explain` scanner,
//! knowledge-base search, packet builder.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use ruma::events::StateEventType;
use ruma::{OwnedEventId, OwnedUserId, RoomId, UserId};
use serde_json::Value;
use tokio::sync::Mutex;

use crate::input::config::{Config, Permission};
use crate::matrix::{AsUser, HomeserverClient, Versions};
use crate::render::matrix::Reply;
use crate::service::appservice::{AppserviceState, IncomingEvent};
use crate::service::device::BotDevice;
use commands::{Command, Outcome};

mod audience;
mod commands;
mod encrypted;

pub struct Bot {
    config: Config,
    client: HomeserverClient,
    versions: Versions,
    user_id: OwnedUserId,
    state: Arc<AppserviceState>,
    started: Instant,
    /// Room id -> whether it is a management room (the bot and one user).
    management: Mutex<HashMap<String, bool>>,
    /// Rooms the watch's alerts skip because they are not private to
    /// admins, each logged once until it is private again.
    alerts_withheld: Mutex<HashSet<String>>,
    /// Command events being answered now (the same event can come by a
    /// transaction and by sync); answered ones are in the store.
    answering: Mutex<HashSet<String>>,
    /// The bot's device for encrypted rooms; `None` without one.
    device: Option<BotDevice>,
    /// Why there is no device, for the notice in encrypted rooms.
    device_problem: Option<String>,
}

/// The permission of `user`: an exact user ID wins over its domain, which
/// wins over `*`.
pub fn permission_of(permissions: &[(String, Permission)], user: &str) -> Option<Permission> {
    let domain = user.split_once(':').map(|(_, d)| d).unwrap_or_default();
    let find = |key: &str| {
        permissions
            .iter()
            .find(|(who, _)| who == key)
            .map(|(_, p)| *p)
    };
    find(user).or_else(|| find(domain)).or_else(|| find("*"))
}

/// What a message asks of the bot.
enum Work<'e> {
    Command(&'e str),
    LogFile,
}

impl Work<'_> {
    fn name(&self) -> &str {
        match self {
            Work::Command(text) => commands::split(text).0,
            Work::LogFile => "explain (log file)",
        }
    }
}

/// Runs a command; a panic inside it becomes a short error id, logged with
/// what went wrong, so the user gets an answer and the admin a log line to
/// find, never a stack trace in the room.
async fn guarded<T>(command: impl std::future::Future<Output = T>) -> Result<T, String> {
    use futures::FutureExt;
    std::panic::AssertUnwindSafe(command)
        .catch_unwind()
        .await
        .map_err(|panic| {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            let error_id = format!("{:08x}", rand::random::<u32>());
            tracing::error!(error_id, "a command failed inside the doctor: {message}");
            error_id
        })
}

fn internal_error_reply(error_id: &str) -> Reply {
    Reply::plain(format!(
        "Something went wrong inside the doctor (error {error_id}). Its log has the details under that id; please report them."
    ))
}

/// Body without a reply fallback (the quoted lines a client puts first).
fn strip_reply_fallback(body: &str) -> &str {
    if !body.starts_with("> ") {
        return body;
    }
    match body.find("\n\n") {
        Some(end) => &body[end + 2..],
        None => body,
    }
}

impl Bot {
    pub async fn new(config: Config, state: Arc<AppserviceState>) -> Option<Bot> {
        let client = HomeserverClient::new(&config.homeserver.address, crate::facts::PROBE_TIMEOUT);
        let versions = client.versions().await.ok()?;
        let user_id =
            UserId::parse(config.appservice.bot_user_id(&config.homeserver.domain)).ok()?;
        let mut bot = Bot {
            config,
            client,
            versions,
            user_id,
            state,
            started: Instant::now(),
            management: Mutex::new(HashMap::new()),
            alerts_withheld: Mutex::new(HashSet::new()),
            answering: Mutex::new(HashSet::new()),
            device: None,
            device_problem: None,
        };
        bot.open_device().await;
        if let Some(name) = &bot.config.appservice.bot_displayname {
            match bot.as_bot().set_display_name(name).await {
                Ok(answer) if answer.is_success() => {}
                Ok(answer) => {
                    tracing::warn!("could not set the bot's display name: {}", answer.summary())
                }
                Err(err) => {
                    tracing::warn!("could not set the bot's display name: {}", err.message())
                }
            }
        }
        Some(bot)
    }

    fn as_bot(&self) -> AsUser<'_> {
        AsUser {
            client: &self.client,
            versions: &self.versions,
            as_token: &self.config.appservice.as_token,
            user: &self.user_id,
        }
    }

    /// Handles one event; failures are logged, never fatal to the bot.
    /// Done, it leaves the store's inbox (where a crash would have kept it).
    pub async fn handle(&self, incoming: IncomingEvent) {
        if incoming.section != "events" {
            return;
        }
        let encrypted =
            incoming.event.get("type").and_then(Value::as_str) == Some("m.room.encrypted");
        // An encrypted message is also decrypted here, not only by the
        // device's sync: after a crash the sync resumes past it, and only
        // the transaction (replayed, or sent again) still has it. Whichever
        // path claims the command first answers it.
        let handled = if encrypted {
            match self.decrypt_and_handle(&incoming.event).await {
                Ok(()) => true,
                Err(why) if incoming.replayed => {
                    tracing::warn!("an encrypted message left from the last run is dropped: {why}");
                    true
                }
                Err(why) => {
                    // Its keys may still be on their way: the sync has it.
                    tracing::debug!("an encrypted message is left to the sync: {why}");
                    false
                }
            }
        } else {
            self.handle_room_event(&incoming.event).await;
            true
        };
        if handled
            && incoming.kept
            && let Some(event_id) = incoming.event.get("event_id").and_then(Value::as_str)
        {
            self.inbox_done(event_id).await;
        }
    }

    /// The event is handled: it leaves the inbox a crash would replay.
    pub(super) async fn inbox_done(&self, event_id: &str) {
        if let Err(err) = self.state.store.inbox_done(event_id).await {
            tracing::warn!(event_id, "could not clear the handled event: {err}");
        }
    }

    async fn handle_room_event(&self, event: &Value) {
        let kind = event
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let Some(room) = event
            .get("room_id")
            .and_then(Value::as_str)
            .and_then(|r| RoomId::parse(r).ok())
        else {
            return;
        };
        let sender = event
            .get("sender")
            .and_then(Value::as_str)
            .unwrap_or_default();
        match kind {
            "m.room.member" => {
                self.management.lock().await.remove(room.as_str());
                let invited = event.get("state_key").and_then(Value::as_str)
                    == Some(self.user_id.as_str())
                    && event.pointer("/content/membership").and_then(Value::as_str)
                        == Some("invite");
                if invited {
                    self.on_invite(&room, sender).await;
                }
            }
            "m.room.message" if sender != self.user_id.as_str() => {
                self.on_message(&room, sender, event, false).await
            }
            _ => {}
        }
    }

    async fn on_invite(&self, room: &RoomId, sender: &str) {
        if permission_of(&self.config.permissions, sender).is_none() {
            tracing::info!(%room, sender, "invite from a user without permission rejected");
            let _ = self
                .as_bot()
                .leave_room(room, "you have no permission to use bridge-doctor")
                .await;
            return;
        }
        match self.as_bot().join_room(room).await {
            Ok(answer) if answer.is_success() => tracing::info!(%room, sender, "joined"),
            Ok(answer) => {
                tracing::warn!(%room, "could not join: {}", answer.summary());
                return;
            }
            Err(err) => {
                tracing::warn!(%room, "could not join: {}", err.message());
                return;
            }
        }
        let encrypted = self.is_encrypted(room).await;
        if permission_of(&self.config.permissions, sender) == Some(Permission::Admin)
            && self.is_management_room(room).await
        {
            self.remember_management_room(sender, room).await;
        }
        let reply = match (encrypted, &self.device_problem) {
            (true, Some(problem)) => Reply::plain(format!(
                "This room is encrypted, and bridge-doctor has no device to read encrypted messages here, so it will not see your commands ({problem}).\n\
                 Open an unencrypted room instead: create a new room with encryption turned off (in Element: New room, then switch off \"Enable end-to-end encryption\") and invite me there. The doctor's log says how to give me a device."
            )),
            _ => Reply::plain(format!(
                "Hello! I am bridge-doctor. Send `help` for what I can do (outside a direct chat with me, start commands with {}).",
                self.config.command_prefix
            )),
        };
        self.send(room, None, reply, encrypted).await;
    }

    /// Where watch alerts for `admin` go.
    async fn remember_management_room(&self, admin: &str, room: &RoomId) {
        if let Err(err) = self
            .state
            .store
            .set_management_room(admin, room.as_str())
            .await
        {
            tracing::warn!(%room, "could not remember the management room: {err}");
        }
    }

    pub fn store(&self) -> &crate::service::store::Store {
        &self.state.store
    }

    /// Posts `reply` in each admin's management room (encrypted where the
    /// room is), for the watch's alerts: only where everyone in it is an
    /// admin now, and not where alerts are muted.
    pub async fn notify_admins(&self, reply: Reply) {
        let rooms = match self.state.store.management_rooms().await {
            Ok(rooms) => rooms,
            Err(err) => {
                tracing::warn!("could not read the management rooms: {err}");
                return;
            }
        };
        for (_, room) in rooms {
            let Ok(room) = RoomId::parse(&room) else {
                continue;
            };
            let muted = self
                .state
                .store
                .is_muted(room.as_str())
                .await
                .unwrap_or(false);
            if muted || !self.may_alert(&room).await {
                continue;
            }
            let encrypted = self.is_encrypted(&room).await;
            self.send(&room, None, reply.clone(), encrypted).await;
        }
    }

    /// Whether `room` has `m.room.encryption`.
    async fn is_encrypted(&self, room: &RoomId) -> bool {
        matches!(
            self.as_bot().room_state(room, StateEventType::RoomEncryption).await,
            Ok(answer) if answer.is_success()
        )
    }

    /// Whether `room` is a management room: the bot and one user in it,
    /// counting the invited (a room others are invited to is a shared one,
    /// even before they join).
    async fn is_management_room(&self, room: &RoomId) -> bool {
        if let Some(known) = self.management.lock().await.get(room.as_str()) {
            return *known;
        }
        let two = self
            .members_now(room)
            .await
            .is_ok_and(|members| members.len() == 2);
        self.management
            .lock()
            .await
            .insert(room.as_str().to_owned(), two);
        two
    }

    /// A message, from a transaction or (`encrypted`) decrypted from sync;
    /// the reply goes back the same way.
    async fn on_message(&self, room: &RoomId, sender: &str, event: &Value, encrypted: bool) {
        let Some(permission) = permission_of(&self.config.permissions, sender) else {
            return;
        };
        let Some(work) = self.work_in(room, event).await else {
            return;
        };
        let event_id = event
            .get("event_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if !self.claim(&event_id).await {
            return;
        }
        let request = Command {
            room,
            sender,
            event,
            event_id: &event_id,
            permission,
            encrypted,
        };
        tracing::info!(%room, sender, encrypted, command = work.name(), "command");
        if permission == Permission::Admin && self.is_management_room(room).await {
            self.remember_management_room(sender, room).await;
        }
        let started = Instant::now();
        let working = self.react(room, &event_id, "⏳", encrypted).await;
        let run = async {
            match work {
                Work::Command(text) => self.run_command(&request, text).await,
                Work::LogFile => self.explain_file(&request).await,
            }
        };
        let outcome = match guarded(run).await {
            Ok(outcome) => outcome,
            Err(error_id) => Outcome {
                reply: Some(internal_error_reply(&error_id)),
                ok: false,
            },
        };
        if let Some(reply) = outcome.reply {
            self.send(room, Some(&event_id), reply, encrypted).await;
        }
        if let Some(working) = working
            && let Err(err) = self.as_bot().redact(room, &working).await
        {
            tracing::debug!(%room, "could not take the hourglass back: {}", err.message());
        }
        let done = if outcome.ok { "✅" } else { "❌" };
        self.react(room, &event_id, done, encrypted).await;
        self.answered(&event_id).await;
        self.state
            .metrics
            .command_answered(work.name(), started.elapsed().as_secs_f64());
    }

    /// Reacts to `event_id` with `key` (the convention of Matrix bots: an
    /// hourglass while a command runs, then a check mark or a cross).
    async fn react(
        &self,
        room: &RoomId,
        event_id: &str,
        key: &str,
        encrypted: bool,
    ) -> Option<OwnedEventId> {
        let content = serde_json::json!({
            "m.relates_to": {"rel_type": "m.annotation", "event_id": event_id, "key": key}
        });
        self.post_event(room, "m.reaction", &content, encrypted)
            .await
    }

    /// What a message asks of the bot: a command (after the prefix, or any
    /// text in a management room), or a log file sent into a management room.
    async fn work_in<'e>(&self, room: &RoomId, event: &'e Value) -> Option<Work<'e>> {
        let msgtype = event.pointer("/content/msgtype").and_then(Value::as_str);
        if msgtype == Some("m.file") {
            return self.is_management_room(room).await.then_some(Work::LogFile);
        }
        let body = event.pointer("/content/body").and_then(Value::as_str)?;
        if msgtype != Some("m.text") {
            return None;
        }
        let body = strip_reply_fallback(body).trim();
        if let Some(rest) = body.strip_prefix(self.config.command_prefix.as_str()) {
            Some(Work::Command(rest.trim_start()))
        } else if self.is_management_room(room).await {
            Some(Work::Command(body))
        } else {
            None
        }
    }

    /// `true` when this command event is neither answered (by either path,
    /// also before a restart) nor being answered now. A store failure lets
    /// it through: an answer twice beats none.
    async fn claim(&self, event_id: &str) -> bool {
        let answered = match self.state.store.is_handled(event_id).await {
            Ok(answered) => answered,
            Err(err) => {
                tracing::warn!(event_id, "could not look the command event up: {err}");
                false
            }
        };
        !answered && self.answering.lock().await.insert(event_id.to_owned())
    }

    /// The command event has its answer: remembered for good. A doctor
    /// killed before this answers it again after its restart.
    async fn answered(&self, event_id: &str) {
        if let Err(err) = self.state.store.mark_handled(event_id).await {
            tracing::warn!(event_id, "could not record the answered command: {err}");
        }
        self.answering.lock().await.remove(event_id);
    }

    async fn send(&self, room: &RoomId, in_reply_to: Option<&str>, reply: Reply, encrypted: bool) {
        self.post(room, &reply.into_notice(in_reply_to), encrypted)
            .await;
    }

    async fn post(&self, room: &RoomId, content: &Value, encrypted: bool) {
        self.post_event(room, "m.room.message", content, encrypted)
            .await;
    }

    /// Sends an event into `room`: through the bot's device when the room is
    /// encrypted and the bot has one, else as the appservice. Its event id,
    /// or `None` (logged) when it could not be sent.
    async fn post_event(
        &self,
        room: &RoomId,
        kind: &str,
        content: &Value,
        encrypted: bool,
    ) -> Option<OwnedEventId> {
        // Whatever the bot says passes the redactor, like every output.
        let mut content = content.clone();
        crate::shared::redact::json(&mut content);
        let content = &content;
        if encrypted && let Some(sent) = self.post_encrypted(room, kind, content).await {
            return Some(sent);
        }
        let answer = match self.as_bot().send_event(room, kind, content).await {
            Ok(answer) if answer.is_success() => answer,
            Ok(answer) => {
                tracing::warn!(%room, kind, "could not send: {}", answer.summary());
                return None;
            }
            Err(err) => {
                tracing::warn!(%room, kind, "could not send: {}", err.message());
                return None;
            }
        };
        let event_id = answer.json.as_ref()?.get("event_id")?.as_str()?;
        OwnedEventId::try_from(event_id).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_fallback_is_stripped() {
        assert_eq!(
            strip_reply_fallback("> <@a:b> old\n> more\n\ncheck"),
            "check"
        );
        assert_eq!(strip_reply_fallback("check telegram"), "check telegram");
    }

    #[tokio::test]
    async fn a_panicking_command_becomes_an_error_id() {
        assert_eq!(guarded(async { 7 }).await, Ok(7));
        let failed = guarded(async {
            panic!("secret detail at src/x.rs:1");
        })
        .await;
        let error_id: String = failed.unwrap_err();
        assert_eq!(error_id.len(), 8);
        assert!(error_id.chars().all(|c| c.is_ascii_hexdigit()));
        let reply = internal_error_reply(&error_id);
        assert!(reply.text.contains(&error_id));
        assert!(!reply.text.contains("secret detail") && !reply.text.contains("src/"));
    }

    #[test]
    fn permissions_prefer_the_most_specific_entry() {
        let text = "homeserver:\n  address: http://x\n  domain: d\nappservice:\n  address: http://a\n  bot:\n    username: doctor\n  as_token: a\n  hs_token: b\npermissions:\n  \"*\": user\n  \"example.org\": admin\n  \"@eve:example.org\": user\n";
        let document =
            crate::input::yaml::Document::parse(std::path::Path::new("c.yaml"), text).unwrap();
        let config = Config::from_document(document).unwrap();
        assert_eq!(
            permission_of(&config.permissions, "@bob:example.org"),
            Some(Permission::Admin)
        );
        assert_eq!(
            permission_of(&config.permissions, "@eve:example.org"),
            Some(Permission::User)
        );
        assert_eq!(
            permission_of(&config.permissions, "@x:other.net"),
            Some(Permission::User)
        );
        let text = text.replace("  \"*\": user\n", "");
        let config = Config::from_document(
            crate::input::yaml::Document::parse(std::path::Path::new("c.yaml"), &text).unwrap(),
        )
        .unwrap();
        assert_eq!(permission_of(&config.permissions, "@x:other.net"), None);
    }
}
