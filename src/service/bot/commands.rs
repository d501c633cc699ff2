//! The chat commands. A new command is one arm of [`Bot::run_command`], one
//! line of [`HELP`] and one function here; each calls the same engine as the
//! command line and answers with a [`Reply`] rendered by `render::matrix`.

use ruma::{OwnedEventId, RoomId};
use serde_json::{Value, json};

use super::{Bot, audience};
use crate::checks;
use crate::facts::Facts;
use crate::input::config::Permission;
use crate::knowledge;
use crate::knowledge::scan::{Explained, Scanner};
use crate::packet;
use crate::render;
use crate::render::matrix::Reply;
use crate::render::report::Report;

const HELP: &str = "Commands (in a management room without prefix, elsewhere after the command prefix):\n\
    help: this list\n\
    check [BRIDGE]: diagnose the doctor and the bridges, or one bridge\n\
    ping [BRIDGE]: can the homeserver reach each bridge?\n\
    explain TEXT: name known problems in log lines (or reply to a message holding them)\n\
    faq [WORDS]: the troubleshooting entries for a few words\n\
    status: how the doctor itself is doing\n\
    bridges: the bridges the doctor looks at\n\
    history [BRIDGE]: what the watch saw change, newest first (admins)\n\
    watch on|off: alerts in this room, or none (admins)\n\
    packet [NOTE]: build a support packet and send it here, or to your direct chat with me when not everyone here is an admin (admins)";

/// Where a command came from and who sent it.
pub(super) struct Command<'a> {
    pub room: &'a RoomId,
    pub sender: &'a str,
    pub event: &'a Value,
    pub event_id: &'a str,
    pub permission: Permission,
    /// It came encrypted, so the answer goes back encrypted.
    pub encrypted: bool,
}

/// "check  telegram " -> ("check", "telegram").
pub(super) fn split(text: &str) -> (&str, &str) {
    text.split_once(char::is_whitespace)
        .map_or((text, ""), |(name, args)| (name, args.trim()))
}

/// What a command came to: the reply to send (none when the answer was
/// already posted, as the packet's file), and whether it did its job.
pub(super) struct Outcome {
    pub reply: Option<Reply>,
    pub ok: bool,
}

impl Outcome {
    fn done(reply: Reply) -> Outcome {
        Outcome {
            reply: Some(reply),
            ok: true,
        }
    }

    fn refused(reply: Reply) -> Outcome {
        Outcome {
            reply: Some(reply),
            ok: false,
        }
    }
}

impl Bot {
    /// `history [BRIDGE]`: the changes the watch announced, newest first,
    /// and what fails now with since when.
    async fn history(&self, bridge: &str) -> Reply {
        let target = (!bridge.is_empty()).then_some(bridge);
        let entries = match self.store().history(target, 20).await {
            Ok(entries) => entries,
            Err(err) => return Reply::plain(format!("The history could not be read: {err}")),
        };
        if entries.is_empty() {
            return Reply::plain(
                "Nothing changed since the watch started: no target started failing.",
            );
        }
        let lines: Vec<String> = entries
            .iter()
            .map(|e| {
                let when = crate::shared::rfc3339(e.at);
                match e.change.as_str() {
                    "failing" => format!("{when} {}: failing ({})", e.target, e.checks),
                    _ => format!("{when} {}: healthy again", e.target),
                }
            })
            .collect();
        Reply::plain(lines.join("\n"))
    }

    /// `watch on|off`: alerts in this room, or none (admins' rooms only
    /// receive alerts at all).
    async fn watch_alerts(&self, request: &Command<'_>, args: &str) -> Result<Reply, Reply> {
        let muted = match args.to_lowercase().as_str() {
            "off" => true,
            "on" => false,
            _ => return Err(Reply::plain("Say `watch on` or `watch off`.")),
        };
        self.store()
            .set_muted(request.room.as_str(), muted)
            .await
            .map_err(|err| Reply::plain(format!("Could not change it: {err}")))?;
        Ok(Reply::plain(if muted {
            "Alerts are off in this room. `watch on` turns them back on."
        } else {
            "Alerts are on in this room: a bridge that starts failing is announced here once, and once more when it is healthy again."
        }))
    }

    /// Runs the command in `text`.
    pub(super) async fn run_command(&self, request: &Command<'_>, text: &str) -> Outcome {
        let (name, args) = split(text);
        let name = name.to_lowercase();
        if let Some(refused) = audience::refusal(&name, request.permission) {
            return Outcome::refused(Reply::plain(refused));
        }
        let reply = match name.as_str() {
            "help" => Reply::plain(HELP),
            "check" => self.check(request, args, None).await,
            "ping" => self.check(request, args, Some("ping.")).await,
            "explain" => self.explain(request, args).await,
            "faq" => faq(args),
            "status" => self.status().await,
            "bridges" => self.bridges(),
            "history" => self.history(args).await,
            "watch" => match self.watch_alerts(request, args).await {
                Ok(reply) => reply,
                Err(refused) => return Outcome::refused(refused),
            },
            "packet" => return self.packet(request, args).await,
            other => {
                return Outcome::refused(Reply::plain(format!(
                    "Unknown command `{other}`. Send `help` for the list."
                )));
            }
        };
        Outcome::done(reply)
    }

    /// `check` (or `ping`, with `only_prefix` = "ping."): the engine's
    /// report, without the log lines it quotes when the asker is no admin.
    async fn check(&self, request: &Command<'_>, bridge: &str, only_prefix: Option<&str>) -> Reply {
        let mut facts = Facts::load(&self.config);
        if !bridge.is_empty() {
            if !facts.targets.iter().any(|t| t.id == bridge) {
                let known: Vec<&str> = facts.targets.iter().map(|t| t.id.as_str()).collect();
                return Reply::plain(format!(
                    "No bridge `{bridge}`. Known: {}.",
                    known.join(", ")
                ));
            }
            facts.keep_only(&[bridge.to_owned()]);
        }
        facts.observe(&self.config, false).await;
        // The running doctor knows its own delivery from the startup probe.
        let delivery = self
            .state
            .last_delivery
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        if let Some(live) = facts
            .targets
            .iter_mut()
            .find(|t| t.kind == crate::facts::TargetKind::Doctor)
            .and_then(|t| t.live.as_mut())
        {
            live.delivery_probe = delivery;
        }
        let mut findings = checks::run_all(&facts);
        if let Some(prefix) = only_prefix {
            findings
                .retain(|f| f.check.starts_with(prefix) || f.check == "tokens.hs_token_rejected");
        }
        let report = Report::new(&facts, findings);
        let report = match request.permission {
            Permission::Admin => report,
            Permission::User => report.without_log_lines(),
        };
        render::matrix::report(&report)
    }

    /// The text after `explain`, or the body of the message it replies to.
    async fn explained_text(&self, request: &Command<'_>, args: &str) -> String {
        if args.is_empty()
            && let Some(replied) = request
                .event
                .pointer("/content/m.relates_to/m.in_reply_to/event_id")
                .and_then(Value::as_str)
            && let Ok(event_id) = ruma::EventId::parse(replied)
            && let Ok(answer) = self.as_bot().room_event(request.room, &event_id).await
        {
            return answer
                .json
                .as_ref()
                .and_then(|j| j.pointer("/content/body"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
        }
        args.to_owned()
    }

    async fn explain(&self, request: &Command<'_>, args: &str) -> Reply {
        let text = self.explained_text(request, args).await;
        if text.trim().is_empty() {
            return Reply::plain(
                "Send `explain` followed by log lines, or reply with `explain` to a message holding them.",
            );
        }
        explain_bytes(text.as_bytes())
    }

    /// A log file sent into a management room: downloaded (at most
    /// [`MAX_LOG_FILE`], decrypted when it came encrypted) and explained.
    pub(super) async fn explain_file(&self, request: &Command<'_>) -> Outcome {
        let content = request.event.get("content").cloned().unwrap_or_default();
        let downloaded = if request.encrypted {
            self.download_encrypted(&content, MAX_LOG_FILE).await
        } else {
            match content.get("url").and_then(Value::as_str) {
                Some(mxc) => self.as_bot().download(mxc, MAX_LOG_FILE).await,
                None => Err("the message has no file".to_owned()),
            }
        };
        match downloaded {
            Ok(bytes) => Outcome::done(explain_bytes(&bytes)),
            Err(why) => Outcome::refused(Reply::plain(format!(
                "I could not read that file: {why}. Send a log of at most {} MiB, or paste the lines after `explain`.",
                MAX_LOG_FILE / (1024 * 1024)
            ))),
        }
    }

    async fn status(&self) -> Reply {
        let transactions = self
            .state
            .store
            .transaction_count()
            .await
            .map(|n| n.to_string())
            .unwrap_or_else(|e| format!("unknown ({e})"));
        Reply::plain(format!(
            "bridge-doctor {} up for {} s; transactions received: {transactions}; pings from the homeserver: {}; bridges configured: {}.",
            env!("CARGO_PKG_VERSION"),
            self.started.elapsed().as_secs(),
            self.state
                .pings_received
                .load(std::sync::atomic::Ordering::Relaxed),
            Facts::load(&self.config).targets.len().saturating_sub(1),
        ))
    }

    fn bridges(&self) -> Reply {
        let facts = Facts::load(&self.config);
        let lines: Vec<String> = facts
            .targets
            .iter()
            .map(|t| {
                let format = t
                    .config()
                    .map(|c| format!("{:?}", c.format))
                    .unwrap_or_else(|| "registration only".to_owned());
                format!("{} ({format}): {}", t.id, t.registration_path.display())
            })
            .collect();
        Reply::plain(lines.join("\n"))
    }

    /// `packet [NOTE]`: the support packet, posted where only admins are:
    /// in the room of the command, or else in the asker's direct chat with
    /// the bot, with a note in the room saying where it went.
    async fn packet(&self, request: &Command<'_>, note: &str) -> Outcome {
        let why_not_here = match self.audience(request.room).await {
            Ok(audience) => audience.why_not_private(),
            Err(why) => return Outcome::refused(members_unknown(&why)),
        };
        if why_not_here.is_none() {
            let here = Destination {
                room: request.room,
                encrypted: request.encrypted,
                in_reply_to: Some(request.event_id),
            };
            return match self.build_packet(&here, note).await {
                None => Outcome {
                    reply: None,
                    ok: true,
                },
                Some(failed) => Outcome::refused(failed),
            };
        }
        let direct = match self.direct_chat(request.sender, request.encrypted).await {
            Ok(direct) => direct,
            Err(why) => {
                return Outcome::refused(Reply::plain(format!(
                    "A support packet is for admins only, and not everyone in this room is one, so it cannot go here; I could not open a direct chat with you for it either ({why}). Ask for it in a direct chat with me."
                )));
            }
        };
        let there = Destination {
            room: &direct,
            encrypted: request.encrypted,
            in_reply_to: None,
        };
        let link = format!("https://matrix.to/#/{direct}");
        match self.build_packet(&there, note).await {
            None => Outcome::done(Reply::plain(format!(
                "A support packet is for admins only, and not everyone in this room is one: I sent it to our direct chat instead, {link}"
            ))),
            Some(failed) => {
                self.send(&direct, None, failed, there.encrypted).await;
                Outcome::refused(Reply::plain(format!(
                    "The support packet could not be sent; our direct chat says why: {link}"
                )))
            }
        }
    }

    /// Builds the packet in a fresh folder and posts it as an `m.file` to
    /// `to`, with a progress notice edited as each step finishes; `None`
    /// when it was posted, else the reply saying what went wrong.
    async fn build_packet(&self, to: &Destination<'_>, note: &str) -> Option<Reply> {
        let work_dir = crate::service::workdir::packet_work_dir(&self.config);
        let dir = match crate::service::workdir::packet_folder(&work_dir) {
            Ok(dir) => dir,
            Err(err) => return Some(Reply::plain(format!("Could not build the packet: {err}"))),
        };
        let (steps, received) = tokio::sync::mpsc::unbounded_channel();
        let options = packet::PacketOptions {
            output: Some(dir.path().to_owned()),
            note: (!note.is_empty()).then(|| note.to_owned()),
            max_log_bytes: packet::DEFAULT_MAX_LOG_BYTES,
            since: None,
            progress: packet::Progress::Steps(steps),
        };
        let first = Reply::plain("Building the support packet…").into_notice(to.in_reply_to);
        let notice = self
            .post_event(to.room, "m.room.message", &first, to.encrypted)
            .await;
        // The options (and the sender in them) end with the build, which
        // ends the progress loop.
        let build = async move { packet::build(&self.config, &options).await };
        let (built, shown) = tokio::join!(build, self.show_progress(to, notice.as_ref(), received));
        let (result, last) = match built {
            Err(err) => {
                let why = format!("Could not build the packet: {err}");
                (Some(Reply::plain(why.clone())), why)
            }
            Ok(built) => {
                let name = built
                    .path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned());
                let result = self.post_packet(to, built).await;
                let done = format!(
                    "Support packet built ({} steps): {}",
                    shown,
                    name.unwrap_or_default()
                );
                (result, done)
            }
        };
        if let Some(notice) = &notice {
            self.edit(to, notice, &last).await;
        }
        drop(dir);
        result
    }

    /// Edits the progress notice with the packet's latest steps until the
    /// build ends; how many steps there were.
    async fn show_progress(
        &self,
        to: &Destination<'_>,
        notice: Option<&OwnedEventId>,
        mut received: tokio::sync::mpsc::UnboundedReceiver<String>,
    ) -> usize {
        let mut steps: Vec<String> = Vec::new();
        while let Some(step) = received.recv().await {
            steps.push(step);
            // Steps that came meanwhile go into the same edit.
            while let Ok(more) = received.try_recv() {
                steps.push(more);
            }
            if let Some(notice) = notice {
                let recent = &steps[steps.len().saturating_sub(PROGRESS_LINES)..];
                let text = format!("Building the support packet…\n{}", recent.join("\n"));
                self.edit(to, notice, &text).await;
            }
        }
        steps.len()
    }

    async fn edit(&self, to: &Destination<'_>, notice: &OwnedEventId, text: &str) {
        let content = Reply::plain(text).into_edit(notice);
        self.post_event(to.room, "m.room.message", &content, to.encrypted)
            .await;
    }

    /// Uploads the packet and posts it, once the room is found private to
    /// admins at this moment (members may have joined while it was built).
    async fn post_packet(&self, to: &Destination<'_>, built: packet::Built) -> Option<Reply> {
        match self.audience(to.room).await {
            Ok(audience) => {
                if let Some(why) = audience.why_not_private() {
                    return Some(Reply::plain(format!(
                        "The packet was built but not sent: {why} now. Ask for it again, and it goes to your direct chat with me."
                    )));
                }
            }
            Err(why) => return Some(members_unknown(&why)),
        }
        let name = built
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let bytes = std::fs::read(&built.path).unwrap_or_default();
        let size = bytes.len();
        let failed = |why: String| {
            Some(Reply::plain(format!(
                "The packet was built but the upload failed: {why}"
            )))
        };
        if to.encrypted && self.device.is_some() {
            let sent = self
                .send_file_encrypted(to.room, &name, bytes, to.in_reply_to)
                .await;
            return sent.err().and_then(failed);
        }
        let answer = match self.as_bot().upload(bytes, &name, "application/zip").await {
            Ok(answer) if answer.is_success() => answer,
            Ok(answer) => return failed(answer.summary()),
            Err(err) => return failed(err.message().to_owned()),
        };
        let uri = answer
            .json
            .as_ref()
            .and_then(|j| j.get("content_uri"))
            .cloned()
            .unwrap_or(Value::Null);
        let mut content = json!({
            "msgtype": "m.file",
            "body": name,
            "filename": name,
            "url": uri,
            "info": {"mimetype": "application/zip", "size": size},
        });
        if let Some(event_id) = to.in_reply_to {
            content["m.relates_to"] = json!({"m.in_reply_to": {"event_id": event_id}});
        }
        if let Some(advice) = built.debug_advice {
            content["org.bridge_doctor.advice"] = Value::String(advice);
        }
        self.post(to.room, &content, false).await;
        None
    }
}

/// Where a packet goes: the room, whether it goes encrypted, and the
/// command it answers (none in a direct chat it was sent on to).
struct Destination<'a> {
    room: &'a RoomId,
    encrypted: bool,
    in_reply_to: Option<&'a str>,
}

/// The refusal when the room's members could not be read: nothing private
/// goes to a room whose members are unknown.
fn members_unknown(why: &str) -> Reply {
    Reply::plain(format!(
        "I could not tell who is in this room ({why}), so I sent nothing. Ask again in a moment."
    ))
}

/// Steps shown in the packet's progress notice: the latest ones.
const PROGRESS_LINES: usize = 6;

/// The largest log file the bot downloads to explain.
const MAX_LOG_FILE: usize = 20 * 1024 * 1024;

/// Every knowledge-base entry the text matches, as a reply.
fn explain_bytes(text: &[u8]) -> Reply {
    let scanner = Scanner::new();
    let mut scan = scanner.new_scan();
    if scanner.scan(text, "message", &mut scan).is_err() {
        return Reply::plain("Could not read that text.");
    }
    let explained = Explained::from_scan(&scan);
    if explained.matches.is_empty() {
        return Reply::plain(
            "No known problem found in that text. Try `faq` with a few words, or `check`.",
        );
    }
    render::matrix::explained(&explained)
}

/// `faq`: every topic without words, else the best three entries.
fn faq(words: &str) -> Reply {
    if words.trim().is_empty() {
        let titles: Vec<String> = knowledge::entries()
            .iter()
            .map(|e| format!("{}: {}", e.id, e.title))
            .collect();
        return Reply::plain(format!(
            "Topics (send `faq` with a few words):\n{}",
            titles.join("\n")
        ));
    }
    let found = knowledge::search(words);
    if found.is_empty() {
        return Reply::plain(format!(
            "Nothing in the knowledge base for `{words}`. Send `faq` alone for every topic."
        ));
    }
    render::matrix::entries(found.into_iter().take(3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faq_finds_and_lists() {
        assert!(faq("typing receipts").text.contains("Typing notifications"));
        assert!(faq("").text.starts_with("Topics"));
        assert!(faq("qqqq").text.starts_with("Nothing"));
    }

    #[test]
    fn help_marks_exactly_the_commands_only_admins_may_run() {
        for line in HELP.lines().skip(1) {
            let command = line.trim().split([' ', ':']).next().unwrap();
            assert_eq!(
                line.ends_with("(admins)"),
                audience::refusal(command, Permission::User).is_some(),
                "{line}"
            );
        }
    }

    #[test]
    fn command_word_and_arguments() {
        assert_eq!(split("check  telegram "), ("check", "telegram"));
        assert_eq!(split("help"), ("help", ""));
    }

    mod property {
        use proptest::prelude::*;

        use super::super::*;

        proptest! {
            /// Any message splits into a command word without spaces and
            /// trimmed arguments, without panic.
            #[test]
            fn any_message_splits(text in "\\PC{0,200}") {
                let (word, args) = split(&text);
                prop_assert!(!word.contains(char::is_whitespace));
                prop_assert_eq!(args, args.trim());
            }
        }
    }
}
