//! The bot in Matrix: joins when a permitted user invites it, and answers
//! commands in rooms (without prefix in a management room, a room of the bot
//! and one user; with `command_prefix` elsewhere). Events arrive through the
//! appservice transactions (`appservice.rs`); replies go out as the bot with
//! the as_token and identity assertion. Every command runs the same engine
//! as the command line: `check` facts and report, `explain` scanner,
//! knowledge-base search, packet builder.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use ruma::events::StateEventType;
use ruma::{OwnedUserId, RoomId, UserId};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::appservice::{AppserviceState, IncomingEvent};
use crate::checks::{self, Status};
use crate::config::{Config, Permission};
use crate::facts::Facts;
use crate::homeserver::{AsUser, HomeserverClient, Versions};
use crate::report::Report;
use crate::{explain, kb, packet};

/// Extra content key of `check` replies holding the JSON report.
pub const REPORT_KEY: &str = "org.bridge_doctor.report";

pub struct Bot {
    config: Config,
    client: HomeserverClient,
    versions: Versions,
    user_id: OwnedUserId,
    state: Arc<AppserviceState>,
    started: Instant,
    /// Room id -> whether it is a management room (the bot and one user).
    management: Mutex<HashMap<String, bool>>,
}

/// What a command answers: plain text, HTML, and extra content keys.
struct Reply {
    text: String,
    html: String,
    extra: Option<(&'static str, Value)>,
}

impl Reply {
    fn new(text: impl Into<String>, html: impl Into<String>) -> Reply {
        Reply {
            text: text.into(),
            html: html.into(),
            extra: None,
        }
    }

    fn plain(text: impl Into<String>) -> Reply {
        let text = text.into();
        let html = escape(&text).replace('\n', "<br>");
        Reply {
            text,
            html,
            extra: None,
        }
    }
}

pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The permission of `user`: an exact user ID wins over its domain, which
/// wins over `*`.
pub fn permission_of(config: &Config, user: &str) -> Option<Permission> {
    let domain = user.split_once(':').map(|(_, d)| d).unwrap_or_default();
    let find = |key: &str| {
        config
            .permissions
            .iter()
            .find(|(who, _)| who == key)
            .map(|(_, p)| *p)
    };
    find(user).or_else(|| find(domain)).or_else(|| find("*"))
}

const HELP: &str = "Commands (in a management room without prefix, elsewhere after the command prefix):\n\
    help: this list\n\
    check [BRIDGE]: diagnose the doctor and the bridges, or one bridge\n\
    ping [BRIDGE]: can the homeserver reach each bridge?\n\
    explain TEXT: name known problems in log lines (or reply to a message holding them)\n\
    faq [WORDS]: the troubleshooting entries for a few words\n\
    status: how the doctor itself is doing\n\
    bridges: the bridges the doctor looks at\n\
    packet [NOTE]: build a support packet and send it here (admins)";

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
        let bot = Bot {
            config,
            client,
            versions,
            user_id,
            state,
            started: Instant::now(),
            management: Mutex::new(HashMap::new()),
        };
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
    pub async fn handle(&self, incoming: IncomingEvent) {
        if incoming.section != "events" {
            return;
        }
        let event = &incoming.event;
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
                self.on_message(&room, sender, event).await
            }
            _ => {}
        }
    }

    async fn on_invite(&self, room: &RoomId, sender: &str) {
        if permission_of(&self.config, sender).is_none() {
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
        let encrypted = matches!(
            self.as_bot().room_state(room, StateEventType::RoomEncryption).await,
            Ok(answer) if answer.is_success()
        );
        let reply = if encrypted {
            Reply::plain(
                "This room is encrypted, and bridge-doctor cannot read encrypted messages, so it will not see your commands here.\n\
                 Open an unencrypted room instead: create a new room with encryption turned off (in Element: New room, then switch off \"Enable end-to-end encryption\") and invite me there.",
            )
        } else {
            Reply::plain(format!(
                "Hello! I am bridge-doctor. Send `help` for what I can do (outside a direct chat with me, start commands with {}).",
                self.config.command_prefix
            ))
        };
        self.send(room, None, reply).await;
    }

    async fn is_management_room(&self, room: &RoomId) -> bool {
        if let Some(known) = self.management.lock().await.get(room.as_str()) {
            return *known;
        }
        let two = match self.as_bot().joined_members(room).await {
            Ok(answer) => answer
                .json
                .as_ref()
                .and_then(|j| j.get("joined"))
                .and_then(Value::as_object)
                .is_some_and(|m| m.len() == 2),
            Err(_) => false,
        };
        self.management
            .lock()
            .await
            .insert(room.as_str().to_owned(), two);
        two
    }

    async fn on_message(&self, room: &RoomId, sender: &str, event: &Value) {
        let Some(body) = event.pointer("/content/body").and_then(Value::as_str) else {
            return;
        };
        if event.pointer("/content/msgtype").and_then(Value::as_str) != Some("m.text") {
            return;
        }
        let body = strip_reply_fallback(body).trim();
        let command = if let Some(rest) = body.strip_prefix(self.config.command_prefix.as_str()) {
            rest.trim_start()
        } else if self.is_management_room(room).await {
            body
        } else {
            return;
        };
        let Some(permission) = permission_of(&self.config, sender) else {
            return;
        };
        let event_id = event
            .get("event_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let (name, args) = command
            .split_once(char::is_whitespace)
            .map_or((command, ""), |(n, a)| (n, a.trim()));
        tracing::info!(%room, sender, command = name, "command");
        let reply = match name.to_lowercase().as_str() {
            "help" => Reply::plain(HELP),
            "check" => self.check(args, None).await,
            "ping" => self.check(args, Some("ping.")).await,
            "explain" => self.explain(room, args, event).await,
            "faq" => faq(args),
            "status" => self.status().await,
            "bridges" => self.bridges(),
            "packet" if permission == Permission::Admin => {
                match self.packet(room, &event_id, args).await {
                    Some(reply) => reply,
                    None => return,
                }
            }
            "packet" => Reply::plain(
                "Only admins may build a support packet: it holds configs and logs, even redacted.",
            ),
            other => Reply::plain(format!(
                "Unknown command `{other}`. Send `help` for the list."
            )),
        };
        self.send(room, Some(&event_id), reply).await;
    }

    async fn send(&self, room: &RoomId, in_reply_to: Option<&str>, reply: Reply) {
        let mut content = json!({
            "msgtype": "m.notice",
            "body": reply.text,
            "format": "org.matrix.custom.html",
            "formatted_body": reply.html,
        });
        if let Some(event_id) = in_reply_to {
            content["m.relates_to"] = json!({"m.in_reply_to": {"event_id": event_id}});
        }
        if let Some((key, value)) = reply.extra {
            content[key] = value;
        }
        self.post(room, &content).await;
    }

    async fn post(&self, room: &RoomId, content: &Value) {
        match self.as_bot().send_message(room, content).await {
            Ok(answer) if answer.is_success() => {}
            Ok(answer) => tracing::warn!(%room, "could not send the reply: {}", answer.summary()),
            Err(err) => tracing::warn!(%room, "could not send the reply: {}", err.message()),
        }
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
        let mut findings = checks::run_all(&facts);
        if let Some(prefix) = only_prefix {
            findings
                .retain(|f| f.check.starts_with(prefix) || f.check == "tokens.hs_token_rejected");
        }
        let report = Report::new(&facts, findings);
        let mut reply = render_report(&report);
        match report_for_event(&report) {
            Some(value) => reply.extra = Some((REPORT_KEY, value)),
            None => reply.text.push_str("\n(The full report is too large for a Matrix event: run `bridge-doctor check --format json` on the server.)"),
        }
        reply
    }

    async fn explain(&self, room: &RoomId, text: &str, event: &Value) -> Reply {
        let mut text = text.to_owned();
        if text.is_empty()
            && let Some(replied) = event
                .pointer("/content/m.relates_to/m.in_reply_to/event_id")
                .and_then(Value::as_str)
            && let Ok(event_id) = ruma::EventId::parse(replied)
            && let Ok(answer) = self.as_bot().room_event(room, &event_id).await
        {
            text = answer
                .json
                .as_ref()
                .and_then(|j| j.pointer("/content/body"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
        }
        if text.trim().is_empty() {
            return Reply::plain(
                "Send `explain` followed by log lines, or reply with `explain` to a message holding them.",
            );
        }
        let scanner = explain::Scanner::new();
        let mut scan = scanner.new_scan();
        if scanner.scan(text.as_bytes(), "message", &mut scan).is_err() {
            return Reply::plain("Could not read that text.");
        }
        let explained = explain::Explained::from_scan(&scan);
        if explained.matches.is_empty() {
            return Reply::plain(
                "No known problem found in that text. Try `faq` with a few words, or `check`.",
            );
        }
        let mut text = String::new();
        let mut html = String::new();
        for m in &explained.matches {
            let _ = writeln!(
                text,
                "{} ({}): {}\n{}",
                m.entry, m.check, m.title, m.explanation
            );
            let _ = write!(
                html,
                "<p><b>{}</b> (<code>{}</code>)<br>{}</p>",
                escape(&m.title),
                escape(&m.check),
                escape(&m.explanation)
            );
            append_fix(&mut text, &mut html, &m.fix, Some(&m.faq));
        }
        Reply::new(text, html)
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

    async fn packet(&self, room: &RoomId, event_id: &str, note: &str) -> Option<Reply> {
        let dir = match tempfile_dir() {
            Ok(dir) => dir,
            Err(err) => return Some(Reply::plain(format!("Could not build the packet: {err}"))),
        };
        let options = packet::PacketOptions {
            output: Some(dir.clone()),
            note: (!note.is_empty()).then(|| note.to_owned()),
            max_log_bytes: packet::DEFAULT_MAX_LOG_BYTES,
            since: None,
            progress: false,
        };
        let built = packet::build(&self.config, &options).await;
        let result = match built {
            Err(err) => Some(Reply::plain(format!("Could not build the packet: {err}"))),
            Ok(built) => {
                let name = built
                    .path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let bytes = std::fs::read(&built.path).unwrap_or_default();
                let size = bytes.len();
                match self.as_bot().upload(bytes, &name, "application/zip").await {
                    Ok(answer) if answer.is_success() => {
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
                            "m.relates_to": {"m.in_reply_to": {"event_id": event_id}},
                        });
                        if let Some(advice) = built.debug_advice {
                            content["org.bridge_doctor.advice"] = Value::String(advice);
                        }
                        self.post(room, &content).await;
                        None
                    }
                    Ok(answer) => Some(Reply::plain(format!(
                        "The packet was built but the upload failed: {}",
                        answer.summary()
                    ))),
                    Err(err) => Some(Reply::plain(format!(
                        "The packet was built but the upload failed: {}",
                        err.message()
                    ))),
                }
            }
        };
        let _ = std::fs::remove_dir_all(&dir);
        result
    }
}

fn tempfile_dir() -> std::io::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "bridge-doctor-packet-{}-{}",
        std::process::id(),
        time::OffsetDateTime::now_utc().unix_timestamp_nanos()
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn append_fix(text: &mut String, html: &mut String, fix: &[String], faq: Option<&str>) {
    if fix.is_empty() {
        return;
    }
    html.push_str("<ol>");
    for (i, step) in fix.iter().enumerate() {
        let _ = writeln!(text, "  {}. {step}", i + 1);
        let _ = write!(html, "<li>{}</li>", escape(step));
    }
    html.push_str("</ol>");
    if let Some(faq) = faq {
        let _ = writeln!(text, "  FAQ: {faq}");
        let _ = write!(html, "<p><a href=\"{}\">FAQ</a></p>", escape(faq));
    }
}

/// The report for a chat: per target, what failed or warned, with fixes.
fn render_report(report: &Report) -> Reply {
    let s = &report.summary;
    let summary = format!(
        "{} passed, {} warnings, {} failed, {} skipped",
        s.pass,
        s.warn,
        s.fail + s.error,
        s.skip
    );
    let mut text = format!("{summary}\n");
    let mut html = format!("<p>{}</p>", escape(&summary));
    for target in &report.targets {
        let bad: Vec<_> = report
            .results
            .iter()
            .filter(|f| {
                f.target == target.id
                    && matches!(f.status, Status::Warn | Status::Fail | Status::Error)
            })
            .collect();
        let mark = if bad.iter().any(|f| f.status != Status::Warn) {
            "✗"
        } else if bad.is_empty() {
            "✓"
        } else {
            "!"
        };
        let _ = writeln!(text, "{mark} {}", target.id);
        let _ = write!(html, "<h4>{mark} {}</h4>", escape(&target.id));
        for finding in bad {
            let _ = writeln!(
                text,
                "{} {}: {}",
                finding.status.as_str(),
                finding.check,
                finding.title
            );
            let _ = write!(
                html,
                "<p><b>{}</b> <code>{}</code>: {}</p>",
                finding.status.as_str(),
                escape(&finding.check),
                escape(&finding.title)
            );
            append_fix(&mut text, &mut html, &finding.fix, finding.faq.as_deref());
        }
    }
    Reply::new(text, html)
}

/// Homeservers refuse events over 64 KiB; the report must leave room for the text.
const MAX_REPORT_BYTES: usize = 40 * 1024;

/// The JSON report for the event: whole when it fits, else only what did
/// not pass (the summary still counts everything), else nothing.
fn report_for_event(report: &Report) -> Option<Value> {
    let mut value = serde_json::to_value(report).ok()?;
    if value.to_string().len() <= MAX_REPORT_BYTES {
        return Some(value);
    }
    if let Some(results) = value.get_mut("results").and_then(Value::as_array_mut) {
        results.retain(|r| r["status"] != "pass" && r["status"] != "skip");
    }
    value["results_trimmed"] =
        Value::String("passing and skipped results left out to fit a Matrix event".into());
    (value.to_string().len() <= MAX_REPORT_BYTES).then_some(value)
}

fn faq(words: &str) -> Reply {
    if words.trim().is_empty() {
        let titles: Vec<String> = kb::entries()
            .iter()
            .map(|e| format!("{}: {}", e.id, e.title))
            .collect();
        return Reply::plain(format!(
            "Topics (send `faq` with a few words):\n{}",
            titles.join("\n")
        ));
    }
    let found = kb::search(words);
    if found.is_empty() {
        return Reply::plain(format!(
            "Nothing in the knowledge base for `{words}`. Send `faq` alone for every topic."
        ));
    }
    let mut text = String::new();
    let mut html = String::new();
    for entry in found.into_iter().take(3) {
        let _ = writeln!(text, "{}\n{}", entry.title, entry.explanation);
        let _ = write!(
            html,
            "<p><b>{}</b><br>{}</p>",
            escape(&entry.title),
            escape(&entry.explanation)
        );
        append_fix(&mut text, &mut html, &entry.fix, Some(&entry.faq_url()));
    }
    Reply::new(text, html)
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

    #[test]
    fn large_reports_are_trimmed_to_fit_an_event() {
        let facts = Facts {
            mode: crate::facts::Mode::Check,
            homeserver: crate::facts::HomeserverFacts {
                address: "http://hs".into(),
                domain: "d".into(),
                config: None,
                registrations: Vec::new(),
                versions: None,
                software: None,
            },
            targets: Vec::new(),
        };
        let finding = |status: Status, n: usize| crate::checks::Finding {
            check: format!("x.check{n}"),
            target: "t".into(),
            status,
            title: "t".repeat(200),
            detail: "d".repeat(300),
            evidence: Default::default(),
            fix: vec![],
            faq: None,
        };
        let small = Report::new(&facts, vec![finding(Status::Pass, 0)]);
        assert_eq!(
            report_for_event(&small).unwrap()["results"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        let mut many: Vec<_> = (0..400).map(|n| finding(Status::Pass, n)).collect();
        many.push(finding(Status::Fail, 999));
        let trimmed = report_for_event(&Report::new(&facts, many)).unwrap();
        assert_eq!(trimmed["results"].as_array().unwrap().len(), 1);
        assert_eq!(trimmed["summary"]["pass"], 400);
        let failing: Vec<_> = (0..400).map(|n| finding(Status::Fail, n)).collect();
        assert!(report_for_event(&Report::new(&facts, failing)).is_none());
    }

    #[test]
    fn permissions_prefer_the_most_specific_entry() {
        let text = "homeserver:\n  address: http://x\n  domain: d\nappservice:\n  address: http://a\n  bot:\n    username: doctor\n  as_token: a\n  hs_token: b\npermissions:\n  \"*\": user\n  \"example.org\": admin\n  \"@eve:example.org\": user\n";
        let document = crate::yaml::Document::parse(std::path::Path::new("c.yaml"), text).unwrap();
        let config = Config::from_document(document).unwrap();
        assert_eq!(
            permission_of(&config, "@bob:example.org"),
            Some(Permission::Admin)
        );
        assert_eq!(
            permission_of(&config, "@eve:example.org"),
            Some(Permission::User)
        );
        assert_eq!(
            permission_of(&config, "@x:other.net"),
            Some(Permission::User)
        );
        let text = text.replace("  \"*\": user\n", "");
        let config = Config::from_document(
            crate::yaml::Document::parse(std::path::Path::new("c.yaml"), &text).unwrap(),
        )
        .unwrap();
        assert_eq!(permission_of(&config, "@x:other.net"), None);
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(escape("<b>&\"x\""), "&lt;b&gt;&amp;&quot;x&quot;");
    }

    #[test]
    fn faq_finds_and_lists() {
        assert!(faq("typing receipts").text.contains("Typing notifications"));
        assert!(faq("").text.starts_with("Topics"));
        assert!(faq("qqqq").text.starts_with("Nothing"));
    }
}
