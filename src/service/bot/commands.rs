//! The chat commands. A new command is one arm of [`Bot::run_command`], one
//! line of [`HELP`] and one function here; each calls the same engine as the
//! command line and answers with a [`Reply`] rendered by `render::matrix`.

use ruma::{OwnedEventId, RoomId};
use serde_json::{Value, json};

use super::Bot;
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
    history [BRIDGE]: what the watch saw change, newest first\n\
    watch on|off: alerts in this room, or none\n\
    packet [NOTE]: build a support packet and send it here (admins)";

/// Where a command came from and who sent it.
pub(super) struct Command<'a> {
    pub room: &'a RoomId,
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
        let reply = match name.to_lowercase().as_str() {
            "help" => Reply::plain(HELP),
            "check" => self.check(args, None).await,
            "ping" => self.check(args, Some("ping.")).await,
            "explain" => self.explain(request, args).await,
            "faq" => faq(args),
            "status" => self.status().await,
            "bridges" => self.bridges(),
            "history" => self.history(args).await,
            "watch" => match self.watch_alerts(request, args).await {
                Ok(reply) => reply,
                Err(refused) => return Outcome::refused(refused),
            },
            "packet" if request.permission == Permission::Admin => {
                return match self.packet(request, args).await {
                    None => Outcome {
                        reply: None,
                        ok: true,
                    },
                    Some(failed) => Outcome::refused(failed),
                };
            }
            "packet" => {
                return Outcome::refused(Reply::plain(
                    "Only admins may build a support packet: it holds configs and logs, even redacted.",
                ));
            }
            other => {
                return Outcome::refused(Reply::plain(format!(
                    "Unknown command `{other}`. Send `help` for the list."
                )));
            }
        };
        Outcome::done(reply)
    }

    /// `check` (or `ping`, with `only_prefix` = "ping."): the engine's report.
    async fn check(&self, bridge: &str, only_prefix: Option<&str>) -> Reply {
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
        render::matrix::report(&Report::new(&facts, findings))
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

    /// Builds the packet in a fresh folder and posts it as an `m.file`,
    /// with a progress notice edited as each step finishes; `None` when it
    /// was posted, else the reply saying what went wrong.
    async fn packet(&self, request: &Command<'_>, note: &str) -> Option<Reply> {
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
        let first =
            Reply::plain("Building the support packet…").into_notice(Some(request.event_id));
        let notice = self
            .post_event(request.room, "m.room.message", &first, request.encrypted)
            .await;
        // The options (and the sender in them) end with the build, which
        // ends the progress loop.
        let build = async move { packet::build(&self.config, &options).await };
        let (built, shown) = tokio::join!(
            build,
            self.show_progress(request, notice.as_ref(), received)
        );
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
                let result = self.post_packet(request, built).await;
                let done = format!(
                    "Support packet built ({} steps): {}",
                    shown,
                    name.unwrap_or_default()
                );
                (result, done)
            }
        };
        if let Some(notice) = &notice {
            self.edit(request, notice, &last).await;
        }
        drop(dir);
        result
    }

    /// Edits the progress notice with the packet's latest steps until the
    /// build ends; how many steps there were.
    async fn show_progress(
        &self,
        request: &Command<'_>,
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
                self.edit(request, notice, &text).await;
            }
        }
        steps.len()
    }

    async fn edit(&self, request: &Command<'_>, notice: &OwnedEventId, text: &str) {
        let content = Reply::plain(text).into_edit(notice);
        self.post_event(request.room, "m.room.message", &content, request.encrypted)
            .await;
    }

    async fn post_packet(&self, request: &Command<'_>, built: packet::Built) -> Option<Reply> {
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
        if request.encrypted && self.device.is_some() {
            let sent = self
                .send_file_encrypted(request.room, &name, bytes, request.event_id)
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
            "m.relates_to": {"m.in_reply_to": {"event_id": request.event_id}},
        });
        if let Some(advice) = built.debug_advice {
            content["org.bridge_doctor.advice"] = Value::String(advice);
        }
        self.post(request.room, &content, false).await;
        None
    }
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
