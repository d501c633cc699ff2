//! The report of one check run, as every renderer reads it: the
//! homeserver, the targets, each finding and the counts. Its serde shape is
//! the contract's JSON (`json.rs` prints it).

use serde::Serialize;

use crate::checks::diagnoses::{Diagnosis, diagnose};
use crate::checks::{Finding, Summary};
use crate::facts::{Facts, TargetKind};
use crate::input::config::Deployment;

#[derive(Serialize)]
pub struct HomeserverInfo {
    pub address: String,
    pub server_name: String,
    pub software: Option<String>,
    pub version: Option<String>,
    /// The files that made the homeserver's config, in merge order (empty
    /// when none was read).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub config_files: Vec<String>,
}

#[derive(Serialize)]
pub struct TargetInfo {
    pub id: String,
    pub kind: TargetKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
    /// How `--homeserver` came by the config (an addition to the contract).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_found: Option<String>,
    pub registration: String,
    /// How the target runs (compose service, systemd unit, this machine).
    pub deployment: Deployment,
}

#[derive(Serialize)]
pub struct Report {
    pub doctor_version: &'static str,
    pub generated_at: String,
    pub homeserver: HomeserverInfo,
    pub targets: Vec<TargetInfo>,
    /// The problems grouped by cause, most blocking first (an addition to
    /// the contract's JSON; `results` still holds every check).
    pub diagnoses: Vec<Diagnosis>,
    pub results: Vec<Finding>,
    pub summary: Summary,
    /// The findings' log lines were left out: the reader may not read the
    /// logs (an addition to the contract's JSON, absent when false).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub log_lines_withheld: bool,
}

impl Report {
    /// Problems the logs showed that the target's last proof of health
    /// resolved (`resolved_at`), oldest report order kept.
    pub fn resolved(&self) -> impl Iterator<Item = &Finding> {
        self.results.iter().filter(|f| f.resolved_at.is_some())
    }

    /// A resolved finding as one line: the target, the check, what it was
    /// and when it stopped (the first line of its detail says when).
    pub fn resolved_line(finding: &Finding) -> String {
        let when = finding.detail.lines().next().unwrap_or_default();
        let when = when
            .split(". ")
            .next()
            .unwrap_or(when)
            .trim_end_matches('.');
        format!(
            "{} {}: {} ({when})",
            finding.target, finding.check, finding.title
        )
    }

    pub fn new(facts: &Facts, results: Vec<Finding>) -> Report {
        let software = facts.homeserver.software.as_ref();
        Report {
            doctor_version: env!("CARGO_PKG_VERSION"),
            generated_at: time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            homeserver: HomeserverInfo {
                address: facts.homeserver.address.clone(),
                server_name: facts
                    .homeserver
                    .server_name_from_config()
                    .unwrap_or(&facts.homeserver.domain)
                    .to_owned(),
                software: software.map(|s| s.name.clone()),
                version: software.map(|s| s.version.clone()),
                config_files: match &facts.homeserver.config {
                    Some(Ok(hs)) => hs.files.iter().map(|f| f.display().to_string()).collect(),
                    _ => Vec::new(),
                },
            },
            targets: facts
                .targets
                .iter()
                .map(|t| TargetInfo {
                    id: t.id.clone(),
                    kind: t.kind,
                    config: t.config().map(|c| c.path().display().to_string()),
                    config_found: t.config_found.clone(),
                    registration: t.registration_path.display().to_string(),
                    deployment: t.deployment.clone(),
                })
                .collect(),
            summary: Summary::of(&results),
            diagnoses: diagnose(&results),
            results,
            log_lines_withheld: false,
        }
    }

    /// The report for a reader who may not read the logs (a chat user who
    /// is not an admin): no finding quotes a log line, in its evidence or
    /// its detail, nor does any diagnosis made from them.
    pub fn without_log_lines(mut self) -> Report {
        let mut withheld = false;
        for finding in &mut self.results {
            withheld |= finding.withhold_log_lines();
        }
        if withheld {
            self.diagnoses = diagnose(&self.results);
            self.log_lines_withheld = true;
        }
        self
    }

    /// 0 nothing failed, 1 something failed (or warned, when strict).
    pub fn exit_code(&self, strict: bool) -> u8 {
        let bad =
            self.summary.fail + self.summary.error + if strict { self.summary.warn } else { 0 };
        u8::from(bad > 0)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::checks::{Status, Verdict};
    use crate::facts::{HomeserverFacts, Mode};

    /// Facts with no target, for reports made of findings built by hand.
    pub(crate) fn facts() -> Facts {
        Facts {
            mode: Mode::Check,
            homeserver: HomeserverFacts {
                address: "http://hs".into(),
                domain: "d".into(),
                config: None,
                registrations: Vec::new(),
                versions: None,
                software: None,
                worker_names: Vec::new(),
                delivery: None,
                real_paths: Default::default(),
            },
            targets: Vec::new(),
        }
    }

    #[test]
    fn a_report_without_log_lines_quotes_none_and_says_so() {
        let quoting = Verdict::fail("the bridge's token was rejected").log_lines(
            "The homeserver did not accept the as_token.",
            &["bridge.log:7: line-canary-7311".to_owned()],
            serde_json::json!([{"file": "bridge.log", "number": 7, "text": "line-canary-7311"}]),
        );
        let plain = Verdict::fail("the ping failed")
            .detail("connection refused")
            .evidence("field", "url");
        let findings = vec![
            Finding::from_verdict("logs.as_token_rejected".into(), "tg", quoting),
            Finding::from_verdict("ping.connection_failed".into(), "tg", plain),
        ];
        let full = Report::new(&facts(), findings.clone());
        assert!(crate::render::json::report(&full).contains("line-canary-7311"));
        assert!(!full.log_lines_withheld);

        let withheld = Report::new(&facts(), findings).without_log_lines();
        let json = crate::render::json::report(&withheld);
        assert!(!json.contains("line-canary-7311"), "{json}");
        assert!(json.contains("\"log_lines_withheld\": true"), "{json}");
        assert_eq!(
            withheld.results[0].detail,
            "The homeserver did not accept the as_token. (log lines withheld)"
        );
        assert_eq!(withheld.results[0].status, Status::Fail);
        assert_eq!(withheld.results[1].detail, "connection refused");
        assert_eq!(withheld.results[1].evidence["field"], "url");
        assert_eq!(withheld.diagnoses.len(), full.diagnoses.len());

        let nothing_quoted = Report::new(&facts(), withheld.results.clone()).without_log_lines();
        assert!(!nothing_quoted.log_lines_withheld);
        assert!(!crate::render::json::report(&nothing_quoted).contains("log_lines_withheld"));
    }
}
