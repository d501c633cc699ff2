//! Stage 3, checks: the diagnosis engine, pure functions from [`Facts`] to [`Finding`]s.
//!
//! Each area of the catalogue (`../shared/spec/checks.md`) is one file here
//! exporting `CHECKS`. To add a check, write a function in the right area
//! file and list it in that file's `CHECKS`; nothing else needs to change.
//! Checks never do I/O: everything they read was gathered into [`Facts`]
//! first, which is what makes them testable without a network.

// A check helper returns `Err(verdict)` for the verdict to give at once
// (skip: no facts); the verdict is built once per check, so its size does
// not matter and boxing it would only add noise.
#![allow(clippy::result_large_err)]

use serde::Serialize;
use serde_json::{Map, Value};

use crate::facts::{Facts, TargetFacts};
use crate::shared::FAQ;

mod access;
mod database;
mod delivery;
mod deployment;
pub mod diagnoses;
mod ephemeral;
mod evidence;
mod files;
mod homeserver;
mod logs;
mod namespace;
mod ping;
mod registration;
mod registrations;
mod tokens;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Nothing to fix: how the setup is, said so (first, so a target's
    /// worst status is never `info` while anything passed).
    Info,
    Pass,
    Warn,
    Fail,
    Skip,
    Error,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Info => "info",
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Skip => "skip",
            Status::Error => "error",
        }
    }
}

/// One check's result for one target, as reported.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Finding {
    pub check: String,
    pub target: String,
    pub status: Status,
    pub title: String,
    pub detail: String,
    pub evidence: Map<String, Value>,
    pub fix: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub faq: Option<String>,
    /// When the problem stopped: the target's last proof of health (RFC
    /// 3339), for a problem seen only in log lines older than it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<String>,
}

/// Evidence key of the log lines a finding quotes ([`Verdict::log_lines`]).
pub const LOG_LINES: &str = "lines";

/// What a check function returns; the runner adds the check id and target.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    pub status: Status,
    pub title: String,
    pub detail: String,
    pub evidence: Map<String, Value>,
    pub fix: Vec<String>,
    pub faq: Option<String>,
    pub resolved_at: Option<String>,
}

impl Verdict {
    fn new(status: Status, title: impl Into<String>) -> Verdict {
        Verdict {
            status,
            title: title.into(),
            detail: String::new(),
            evidence: Map::new(),
            fix: Vec::new(),
            faq: None,
            resolved_at: None,
        }
    }

    pub fn pass(title: impl Into<String>) -> Verdict {
        Verdict::new(Status::Pass, title)
    }
    pub fn skip(reason: impl Into<String>) -> Verdict {
        Verdict::new(Status::Skip, reason)
    }
    pub fn fail(title: impl Into<String>) -> Verdict {
        Verdict::new(Status::Fail, title)
    }
    pub fn warn(title: impl Into<String>) -> Verdict {
        Verdict::new(Status::Warn, title)
    }
    pub fn info(title: impl Into<String>) -> Verdict {
        Verdict::new(Status::Info, title)
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Verdict {
        self.detail = detail.into();
        self
    }

    /// Evidence names fields and positions, never secret values.
    pub fn evidence(mut self, key: &str, value: impl Into<Value>) -> Verdict {
        self.evidence.insert(key.to_owned(), value.into());
        self
    }

    /// The detail `about` (made one line) followed by the quoted log
    /// `lines`, and `evidence` (the lines as data) under [`LOG_LINES`]. Kept
    /// apart so that [`Finding::withhold_log_lines`] can take the quote out
    /// for a reader who may not read the logs.
    pub fn log_lines(mut self, about: &str, lines: &[String], evidence: Value) -> Verdict {
        self.detail = format!("{}\n{}", about.replace('\n', " "), lines.join("\n"));
        self.evidence.insert(LOG_LINES.to_owned(), evidence);
        self
    }

    pub fn fix<S: Into<String>>(mut self, steps: impl IntoIterator<Item = S>) -> Verdict {
        self.fix = steps.into_iter().map(Into::into).collect();
        self
    }

    /// `anchor` is the FAQ section's fragment, without `#`.
    pub fn faq(mut self, anchor: &str) -> Verdict {
        self.faq = Some(format!("{FAQ}#{anchor}"));
        self
    }
}

/// Everything a check may look at: the facts of its target and of the whole run.
pub struct Context<'a> {
    pub facts: &'a Facts,
    pub target: &'a TargetFacts,
}

pub struct Check {
    pub id: &'static str,
    pub run: fn(&Context) -> Verdict,
}

/// Every check, in report order.
pub fn catalogue() -> impl Iterator<Item = &'static Check> {
    [
        files::CHECKS,
        registration::CHECKS,
        registrations::CHECKS,
        tokens::CHECKS,
        homeserver::CHECKS,
        namespace::CHECKS,
        ping::CHECKS,
        delivery::CHECKS,
        ephemeral::CHECKS,
        access::CHECKS,
        database::CHECKS,
        deployment::CHECKS,
    ]
    .into_iter()
    .flatten()
}

/// Runs every check on every target. A check that panics is reported as
/// `error` for that check alone; the run goes on.
pub fn run_all(facts: &Facts) -> Vec<Finding> {
    let mut findings = Vec::new();
    for target in &facts.targets {
        let context = Context { facts, target };
        for check in catalogue() {
            findings.push(run_one(check, &context));
        }
        findings.extend(logs::findings(&context));
    }
    findings
}

pub fn run_one(check: &Check, context: &Context) -> Finding {
    let verdict = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (check.run)(context)))
        .unwrap_or_else(|panic| {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Verdict::new(Status::Error, "the check itself failed; please report this")
                .detail(message)
        });
    Finding::from_verdict(check.id.to_owned(), &context.target.id, verdict)
}

impl Finding {
    pub fn from_verdict(check: String, target: &str, verdict: Verdict) -> Finding {
        Finding {
            check,
            target: target.to_owned(),
            status: verdict.status,
            title: verdict.title,
            detail: verdict.detail,
            evidence: verdict.evidence,
            fix: verdict.fix,
            faq: verdict.faq,
            resolved_at: verdict.resolved_at,
        }
    }

    /// Takes out the log lines the finding quotes (their evidence, and the
    /// detail after its first line, where [`Verdict::log_lines`] put them):
    /// log lines can hold what only admins may read. Whether it quoted any.
    pub fn withhold_log_lines(&mut self) -> bool {
        if self.evidence.remove(LOG_LINES).is_none() {
            return false;
        }
        if let Some((about, _quote)) = self.detail.split_once('\n') {
            self.detail = format!("{about} (log lines withheld)");
        }
        true
    }
}

/// Looks a check up by id (the self-check runs a chosen few).
pub fn by_id(id: &str) -> Option<&'static Check> {
    catalogue().find(|check| check.id == id)
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub pass: usize,
    pub warn: usize,
    pub fail: usize,
    pub skip: usize,
    pub error: usize,
    pub info: usize,
}

impl Summary {
    pub fn of(findings: &[Finding]) -> Summary {
        let mut summary = Summary::default();
        for finding in findings {
            *match finding.status {
                Status::Info => &mut summary.info,
                Status::Pass => &mut summary.pass,
                Status::Warn => &mut summary.warn,
                Status::Fail => &mut summary.fail,
                Status::Skip => &mut summary.skip,
                Status::Error => &mut summary.error,
            } += 1;
        }
        summary
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_ids_are_unique_and_namespaced() {
        let mut ids: Vec<&str> = catalogue().map(|c| c.id).collect();
        assert!(ids.iter().all(|id| id.contains('.')));
        let count = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), count, "duplicate check id");
    }

    #[test]
    fn every_check_id_is_in_the_spec() {
        let path = crate::testutil::shared_fixture("../spec/checks.md");
        let spec = std::fs::read_to_string(path).unwrap();
        for check in catalogue() {
            assert!(
                spec.contains(&format!("`{}`", check.id)),
                "{} is not in checks.md",
                check.id
            );
        }
    }
}

#[cfg(test)]
mod tests_by_area;
