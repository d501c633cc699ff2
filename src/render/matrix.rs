//! Matrix messages: a plain-text body and its HTML (`org.matrix.custom.html`),
//! for the check report, `explain`'s matches and knowledge-base entries. The
//! JSON report rides along in the event under [`REPORT_KEY`], trimmed to fit.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::checks::Status;
use crate::knowledge::Entry;
use crate::knowledge::scan::Explained;
use crate::render::report::Report;

/// Extra content key of `check` replies holding the JSON report.
pub const REPORT_KEY: &str = "org.bridge_doctor.report";

/// Said under a report whose log lines were left out for its reader.
const LOG_LINES_WITHHELD: &str = "Log lines are shown to admins only: the findings above name what the logs showed, without the lines themselves.";

/// Homeservers refuse events over 64 KiB; the report must leave room for the text.
const MAX_REPORT_BYTES: usize = 40 * 1024;

/// A message: plain text, HTML, and extra content keys.
#[derive(Clone)]
pub struct Reply {
    pub text: String,
    pub html: String,
    pub extra: Option<(&'static str, Value)>,
}

impl Reply {
    pub fn new(text: impl Into<String>, html: impl Into<String>) -> Reply {
        Reply {
            text: text.into(),
            html: html.into(),
            extra: None,
        }
    }

    /// Text shown as is: HTML-escaped, line breaks kept.
    pub fn plain(text: impl Into<String>) -> Reply {
        let text = text.into();
        let html = escape(&text).replace('\n', "<br>");
        Reply::new(text, html)
    }

    /// The content that replaces the text of the notice `original`
    /// (`m.replace`; the `* ` body is what clients without edits show).
    pub fn into_edit(self, original: &ruma::EventId) -> Value {
        json!({
            "msgtype": "m.notice",
            "body": format!("* {}", self.text),
            "format": "org.matrix.custom.html",
            "formatted_body": format!("* {}", self.html),
            "m.new_content": {
                "msgtype": "m.notice",
                "body": self.text,
                "format": "org.matrix.custom.html",
                "formatted_body": self.html,
            },
            "m.relates_to": {"rel_type": "m.replace", "event_id": original},
        })
    }

    /// The `m.notice` content, as a reply to `in_reply_to` when given.
    pub fn into_notice(self, in_reply_to: Option<&str>) -> Value {
        let mut content = json!({
            "msgtype": "m.notice",
            "body": self.text,
            "format": "org.matrix.custom.html",
            "formatted_body": self.html,
        });
        if let Some(event_id) = in_reply_to {
            content["m.relates_to"] = json!({"m.in_reply_to": {"event_id": event_id}});
        }
        if let Some((key, value)) = self.extra {
            content[key] = value;
        }
        content
    }
}

pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
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

/// The report for a chat: the diagnoses, most blocking first (each with the
/// checks that saw it and one fix), then each target's mark; the JSON
/// report under [`REPORT_KEY`] when it fits an event.
pub fn report(report: &Report) -> Reply {
    let s = &report.summary;
    let summary = format!(
        "{} passed, {} warnings, {} failed, {} skipped{}",
        s.pass,
        s.warn,
        s.fail + s.error,
        s.skip,
        match s.info {
            0 => String::new(),
            n => format!(", {n} info"),
        }
    );
    let mut text = format!("{summary}\n");
    let mut html = format!("<p>{}</p>", escape(&summary));
    if !report.diagnoses.is_empty() {
        let heading = format!(
            "{} problem(s), most blocking first:",
            report.diagnoses.len()
        );
        let _ = writeln!(text, "{heading}");
        let _ = write!(html, "<p>{}</p>", escape(&heading));
    }
    for (n, diagnosis) in report.diagnoses.iter().enumerate() {
        let mark = if diagnosis.status == Status::Warn {
            "!"
        } else {
            "✗"
        };
        let seen: Vec<String> = diagnosis
            .evidence
            .iter()
            .map(|e| format!("{} ({})", e.check, e.status.as_str()))
            .collect();
        let _ = writeln!(
            text,
            "{}. {mark} {}: {}\n  seen by: {}",
            n + 1,
            diagnosis.target,
            diagnosis.title,
            seen.join(", ")
        );
        let _ = write!(
            html,
            "<h4>{}. {mark} {}: {}</h4><p>seen by: <code>{}</code></p>",
            n + 1,
            escape(&diagnosis.target),
            escape(&diagnosis.title),
            escape(&seen.join(", "))
        );
        append_fix(
            &mut text,
            &mut html,
            &diagnosis.fix,
            diagnosis.faq.as_deref(),
        );
    }
    let marks: Vec<String> = report
        .targets
        .iter()
        .map(|target| {
            let worst = report
                .diagnoses
                .iter()
                .filter(|d| d.target == target.id)
                .map(|d| d.status)
                .min_by_key(|s| *s == Status::Warn);
            let mark = match worst {
                None => "✓",
                Some(Status::Warn) => "!",
                Some(_) => "✗",
            };
            format!("{mark} {}", target.id)
        })
        .collect();
    let _ = writeln!(text, "Targets: {}", marks.join(", "));
    let _ = write!(html, "<p>Targets: {}</p>", escape(&marks.join(", ")));
    let resolved: Vec<String> = report.resolved().map(Report::resolved_line).collect();
    if !resolved.is_empty() {
        let _ = writeln!(
            text,
            "Resolved, from the logs:\n- {}",
            resolved.join("\n- ")
        );
        let items: String = resolved
            .iter()
            .map(|line| format!("<li>{}</li>", escape(line)))
            .collect();
        let _ = write!(html, "<p>Resolved, from the logs:</p><ul>{items}</ul>");
    }
    if report.log_lines_withheld {
        let _ = writeln!(text, "{LOG_LINES_WITHHELD}");
        let _ = write!(html, "<p><i>{LOG_LINES_WITHHELD}</i></p>");
    }
    let mut reply = Reply::new(text, html);
    match report_for_event(report) {
        Some(value) => reply.extra = Some((REPORT_KEY, value)),
        None => reply.text.push_str("\n(The full report is too large for a Matrix event: run `bridge-doctor check --format json` on the server.)"),
    }
    reply
}

/// A change the watch announces.
pub enum Alert<'a> {
    Failing {
        target: &'a str,
        checks: &'a [String],
        /// What differs from when the target was last healthy.
        changed: &'a [String],
    },
    Recovered {
        target: &'a str,
    },
}

/// The watch's notice: which target, which checks now fail, and the
/// diagnoses they belong to with their fix; or that it is healthy again.
pub fn alert(alert: &Alert, report: &Report) -> Reply {
    let (target, checks, changed) = match alert {
        Alert::Recovered { target } => {
            return Reply::plain(format!("✅ {target} is healthy again: every check passes."));
        }
        Alert::Failing {
            target,
            checks,
            changed,
        } => (*target, *checks, *changed),
    };
    let heading = format!("⚠ {target} is failing: {}.", checks.join(", "));
    let mut text = format!("{heading}\n");
    let mut html = format!("<p><b>{}</b></p>", escape(&heading));
    if !changed.is_empty() {
        let since = format!("Since it was last healthy, {}.", changed.join("; "));
        let _ = writeln!(text, "{since}");
        let _ = write!(html, "<p>{}</p>", escape(&since));
    }
    let diagnoses = report
        .diagnoses
        .iter()
        .filter(|d| d.target == target && d.evidence.iter().any(|e| checks.contains(&e.check)));
    for diagnosis in diagnoses {
        let _ = writeln!(text, "{}", diagnosis.title);
        let _ = write!(html, "<p>{}</p>", escape(&diagnosis.title));
        append_fix(
            &mut text,
            &mut html,
            &diagnosis.fix,
            diagnosis.faq.as_deref(),
        );
    }
    Reply::new(text, html)
}

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

/// `explain`'s matches: each entry's title, explanation, fix and FAQ link.
pub fn explained(explained: &Explained) -> Reply {
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
        append_fix(&mut text, &mut html, &m.fix, m.faq.as_deref());
    }
    Reply::new(text, html)
}

/// Knowledge-base entries as answers: title, explanation, fix, FAQ link.
pub fn entries<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> Reply {
    let mut text = String::new();
    let mut html = String::new();
    for entry in entries {
        let _ = writeln!(text, "{}\n{}", entry.title, entry.explanation);
        let _ = write!(
            html,
            "<p><b>{}</b><br>{}</p>",
            escape(&entry.title),
            escape(&entry.explanation)
        );
        append_fix(&mut text, &mut html, &entry.fix, entry.faq_url().as_deref());
    }
    Reply::new(text, html)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Finding;

    #[test]
    fn large_reports_are_trimmed_to_fit_an_event() {
        let facts = crate::render::report::tests::facts();
        let finding = |status: Status, n: usize| Finding {
            check: format!("x.check{n}"),
            target: "t".into(),
            status,
            title: "t".repeat(200),
            detail: "d".repeat(300),
            evidence: Default::default(),
            fix: vec![],
            faq: None,
            resolved_at: None,
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
    fn resolved_problems_are_listed_with_when_they_stopped() {
        let facts = crate::render::report::tests::facts();
        let finding = Finding {
            check: "logs.transactions_failing".into(),
            target: "telegram".into(),
            status: Status::Info,
            title: "resolved: the homeserver fails to deliver".into(),
            detail: "Resolved: seen at 2026-12-03T09:00:01Z, none since the bridge started (2026-12-03T09:00:06Z). Synapse could not push.\nbridge.log:1: x".into(),
            evidence: Default::default(),
            fix: vec![],
            faq: None,
            resolved_at: Some("2026-12-03T09:00:06Z".into()),
        };
        let reply = report(&Report::new(&facts, vec![finding]));
        assert!(
            reply.text.contains("Resolved, from the logs:\n- telegram logs.transactions_failing: resolved: the homeserver fails to deliver (Resolved: seen at 2026-12-03T09:00:01Z, none since the bridge started (2026-12-03T09:00:06Z))"),
            "{}",
            reply.text
        );
        assert!(
            reply
                .html
                .contains("<li>telegram logs.transactions_failing"),
            "{}",
            reply.html
        );
    }

    #[test]
    fn a_report_without_log_lines_says_who_sees_them() {
        let facts = crate::render::report::tests::facts();
        let quoting = crate::checks::Verdict::warn("a known problem").log_lines(
            "What it means.",
            &["bridge.log:1: line-canary-42".to_owned()],
            json!(["line-canary-42"]),
        );
        let findings = vec![Finding::from_verdict("logs.x".into(), "tg", quoting)];
        let full = report(&Report::new(&facts, findings.clone()));
        assert!(!full.text.contains("admins only"));
        let withheld = report(&Report::new(&facts, findings).without_log_lines());
        for shown in [
            &withheld.text,
            &withheld.html,
            &withheld.extra.unwrap().1.to_string(),
        ] {
            assert!(!shown.contains("line-canary-42"), "{shown}");
        }
        assert!(withheld.text.contains("Log lines are shown to admins only"));
        assert!(withheld.html.contains("Log lines are shown to admins only"));
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(escape("<b>&\"x\""), "&lt;b&gt;&amp;&quot;x&quot;");
    }
}
