//! Who gets what: the commands only admins may run, and the rooms private
//! enough for what only admins may read (the watch's alerts, packets). A
//! room is private to admins when everyone in it, the bot aside, is an
//! admin: joined or invited, since an invited user reads the room's history
//! once they join. Who is in it is asked of the homeserver each time,
//! never taken from a cached list: a room changes members at any moment.

use ruma::{OwnedRoomId, RoomId, UserId};
use serde_json::Value;

use super::{Bot, permission_of};
use crate::input::config::Permission;

/// The commands only admins may run, and what a refusal says they do and
/// why that is the admins' alone.
const ADMIN_ONLY: &[(&str, &str)] = &[
    (
        "watch",
        "turn the watch's alerts on or off: they are how the admins learn that a bridge broke",
    ),
    (
        "history",
        "read the watch's history: it is the record of the admins' alerts, when and how each bridge failed",
    ),
    (
        "packet",
        "build a support packet: it holds configs and logs, even redacted",
    ),
];

/// What a user with `permission` is told instead of running `command`
/// (lowercase); `None` when they may run it.
pub(super) fn refusal(command: &str, permission: Permission) -> Option<String> {
    if permission == Permission::Admin {
        return None;
    }
    ADMIN_ONLY
        .iter()
        .find(|(name, _)| *name == command)
        .map(|(_, what)| format!("Only admins may {what}."))
}

/// Who is in a room, the bot aside: how many admins and how many others.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Audience {
    pub admins: usize,
    pub others: usize,
}

impl Audience {
    /// Counts `members` (user ids) by their permission, the bot left out.
    pub fn of<'m>(
        members: impl IntoIterator<Item = &'m str>,
        permissions: &[(String, Permission)],
        bot: &str,
    ) -> Audience {
        let mut audience = Audience::default();
        for member in members.into_iter().filter(|m| *m != bot) {
            if permission_of(permissions, member) == Some(Permission::Admin) {
                audience.admins += 1;
            } else {
                audience.others += 1;
            }
        }
        audience
    }

    /// Why what only admins may read must not go to this room; `None` when
    /// it may: there are admins in it and nobody else.
    pub fn why_not_private(&self) -> Option<String> {
        match (self.admins, self.others) {
            (_, 0) if self.admins > 0 => None,
            (0, 0) => Some("no admin is in it".to_owned()),
            (_, others) => Some(format!("{others} member(s) in it are not admins")),
        }
    }
}

/// The user ids of a `/members` answer that are joined or invited (those
/// who read the room now, or can once they join).
fn present(members: &Value) -> Vec<&str> {
    members
        .get("chunk")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|event| {
            matches!(
                event.pointer("/content/membership").and_then(Value::as_str),
                Some("join" | "invite")
            )
        })
        .filter_map(|event| event.get("state_key").and_then(Value::as_str))
        .collect()
}

impl Bot {
    /// Everyone in `room` now (joined or invited), the bot included, as the
    /// homeserver answers this moment.
    pub(super) async fn members_now(&self, room: &RoomId) -> Result<Vec<String>, String> {
        let answer = self
            .as_bot()
            .members(room)
            .await
            .map_err(|err| err.message().to_owned())?;
        if !answer.is_success() {
            return Err(answer.summary());
        }
        let members = answer.json.as_ref().map(present).unwrap_or_default();
        Ok(members.into_iter().map(str::to_owned).collect())
    }

    /// Who is in `room` now.
    pub(super) async fn audience(&self, room: &RoomId) -> Result<Audience, String> {
        let members = self.members_now(room).await?;
        Ok(Audience::of(
            members.iter().map(String::as_str),
            &self.config.permissions,
            self.user_id.as_str(),
        ))
    }

    /// Whether the watch's alerts may go to `room` now. A room that stops
    /// being private to admins is logged once (until it is private again).
    pub(super) async fn may_alert(&self, room: &RoomId) -> bool {
        let why_not = match self.audience(room).await {
            Ok(audience) => audience.why_not_private(),
            Err(why) => {
                tracing::warn!(%room, "no alert sent here: the room's members could not be read: {why}");
                return false;
            }
        };
        let mut withheld = self.alerts_withheld.lock().await;
        match why_not {
            None => {
                withheld.remove(room.as_str());
                true
            }
            Some(why) => {
                if withheld.insert(room.as_str().to_owned()) {
                    tracing::info!(%room, "watch alerts are no longer sent to this management room: {why}");
                }
                false
            }
        }
    }

    /// `admin`'s own direct chat with the bot, for what must not go to a
    /// shared room: their management room when only they and the bot are in
    /// it and it is encrypted exactly when `encrypted`, else a new one
    /// (remembered as their management room).
    pub(super) async fn direct_chat(
        &self,
        admin: &str,
        encrypted: bool,
    ) -> Result<OwnedRoomId, String> {
        let known = self
            .store()
            .management_rooms()
            .await
            .map_err(|err| err.to_string())?
            .into_iter()
            .find(|(user, _)| user == admin)
            .and_then(|(_, room)| RoomId::parse(room).ok());
        if let Some(room) = known
            && self.is_direct_chat_of(&room, admin).await
            && self.is_encrypted(&room).await == encrypted
        {
            return Ok(room);
        }
        let admin_id = UserId::parse(admin).map_err(|err| err.to_string())?;
        let created = self
            .as_bot()
            .create_direct_chat(&admin_id, encrypted)
            .await
            .map_err(|err| err.message().to_owned())?;
        let room = created
            .json
            .as_ref()
            .and_then(|j| j.get("room_id"))
            .and_then(Value::as_str)
            .and_then(|r| RoomId::parse(r).ok())
            .ok_or_else(|| created.summary())?;
        tracing::info!(%room, admin, "opened a direct chat with an admin");
        self.remember_management_room(admin, &room).await;
        Ok(room)
    }

    /// Whether only `admin` and the bot are in `room` now.
    async fn is_direct_chat_of(&self, room: &RoomId, admin: &str) -> bool {
        let bot = self.user_id.as_str();
        self.members_now(room).await.is_ok_and(|members| {
            members.iter().any(|m| m == admin) && members.iter().all(|m| m == admin || m == bot)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn permissions() -> Vec<(String, Permission)> {
        vec![
            ("@admin:d".to_owned(), Permission::Admin),
            ("@admin2:d".to_owned(), Permission::Admin),
            ("@user:d".to_owned(), Permission::User),
        ]
    }

    #[test]
    fn only_admins_may_watch_read_the_history_or_build_packets() {
        for command in ["watch", "history", "packet"] {
            let refused = refusal(command, Permission::User).unwrap();
            assert!(refused.starts_with("Only admins may "), "{refused}");
            assert!(refused.contains(": "), "says why: {refused}");
            assert_eq!(refusal(command, Permission::Admin), None);
        }
        for command in [
            "help", "check", "ping", "explain", "faq", "status", "bridges",
        ] {
            assert_eq!(refusal(command, Permission::User), None, "{command}");
        }
    }

    #[test]
    fn a_room_is_private_to_admins_only_when_everyone_but_the_bot_is_one() {
        let of = |members: &[&str]| Audience::of(members.iter().copied(), &permissions(), "@bot:d");
        assert_eq!(of(&["@bot:d", "@admin:d"]).why_not_private(), None);
        assert_eq!(
            of(&["@admin:d", "@admin2:d", "@bot:d"]).why_not_private(),
            None
        );
        assert_eq!(
            of(&["@bot:d", "@admin:d", "@user:d"])
                .why_not_private()
                .unwrap(),
            "1 member(s) in it are not admins"
        );
        assert!(
            of(&["@admin:d", "@stranger:elsewhere"])
                .why_not_private()
                .is_some(),
            "a user without permission counts as not an admin"
        );
        assert_eq!(
            of(&["@bot:d"]).why_not_private().unwrap(),
            "no admin is in it"
        );
    }

    #[test]
    fn joined_and_invited_members_count_and_those_who_left_do_not() {
        let members = serde_json::json!({"chunk": [
            {"state_key": "@admin:d", "content": {"membership": "join"}},
            {"state_key": "@user:d", "content": {"membership": "invite"}},
            {"state_key": "@gone:d", "content": {"membership": "leave"}},
            {"state_key": "@banned:d", "content": {"membership": "ban"}},
            {"state_key": "@knocking:d", "content": {"membership": "knock"}},
        ]});
        assert_eq!(present(&members), ["@admin:d", "@user:d"]);
        assert!(present(&serde_json::json!({"errcode": "M_FORBIDDEN"})).is_empty());
    }
}
