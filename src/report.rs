//! Rendering a check run: the JSON report of the contract, and the human
//! view in the manner of `flutter doctor`.

use std::fmt::Write;

use serde::Serialize;

use crate::checks::{Finding, Status, Summary};
use crate::facts::{Facts, TargetKind};

#[derive(Serialize)]
pub struct HomeserverInfo {
    pub address: String,
    pub server_name: String,
    pub software: Option<String>,
    pub version: Option<String>,
}

#[derive(Serialize)]
pub struct TargetInfo {
    pub id: String,
    pub kind: TargetKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
    pub registration: String,
}

#[derive(Serialize)]
pub struct Report {
    pub doctor_version: &'static str,
    pub generated_at: String,
    pub homeserver: HomeserverInfo,
    pub targets: Vec<TargetInfo>,
    pub results: Vec<Finding>,
    pub summary: Summary,
}

impl Report {
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
            },
            targets: facts
                .targets
                .iter()
                .map(|t| TargetInfo {
                    id: t.id.clone(),
                    kind: t.kind,
                    config: t.config().map(|c| c.path().display().to_string()),
                    registration: t.registration_path.display().to_string(),
                })
                .collect(),
            summary: Summary::of(&results),
            results,
        }
    }

    /// 0 nothing failed, 1 something failed (or warned, when strict).
    pub fn exit_code(&self, strict: bool) -> u8 {
        let bad =
            self.summary.fail + self.summary.error + if strict { self.summary.warn } else { 0 };
        u8::from(bad > 0)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    pub fn to_human(&self, verbose: bool, colour: bool) -> String {
        let paint = |code: &str, text: &str| {
            if colour {
                format!("\x1b[{code}m{text}\x1b[0m")
            } else {
                text.to_owned()
            }
        };
        let mark = |status: Status| match status {
            Status::Pass => paint("32", "[✓]"),
            Status::Warn => paint("33", "[!]"),
            Status::Fail => paint("31", "[✗]"),
            Status::Error => paint("35", "[E]"),
            Status::Skip => paint("2", "[-]"),
        };
        let mut out = String::new();
        let hs = &self.homeserver;
        let _ = writeln!(
            out,
            "Homeserver {} ({}{})",
            hs.address,
            hs.server_name,
            hs.software
                .as_ref()
                .map(|s| format!(", {s} {}", hs.version.clone().unwrap_or_default()))
                .unwrap_or_default()
        );
        for target in &self.targets {
            let findings: Vec<&Finding> = self
                .results
                .iter()
                .filter(|f| f.target == target.id)
                .collect();
            let worst = findings
                .iter()
                .map(|f| f.status)
                .filter(|s| *s != Status::Skip)
                .max()
                .unwrap_or(Status::Pass);
            let summary = Summary::of(&findings.iter().map(|f| (*f).clone()).collect::<Vec<_>>());
            let kind = if target.kind == TargetKind::Doctor {
                "the doctor itself"
            } else {
                "bridge"
            };
            let _ = writeln!(
                out,
                "\n{} {} ({kind}): {} passed, {} warnings, {} failed, {} skipped",
                mark(worst),
                target.id,
                summary.pass,
                summary.warn,
                summary.fail + summary.error,
                summary.skip
            );
            for finding in findings {
                let shown = verbose
                    || matches!(finding.status, Status::Warn | Status::Fail | Status::Error);
                if !shown {
                    continue;
                }
                let _ = writeln!(
                    out,
                    "    {} {}: {}",
                    mark(finding.status),
                    finding.check,
                    finding.title
                );
                if matches!(finding.status, Status::Warn | Status::Fail | Status::Error) {
                    for line in finding.detail.lines().filter(|l| !l.trim().is_empty()) {
                        let _ = writeln!(out, "        {line}");
                    }
                    if !finding.fix.is_empty() {
                        let _ = writeln!(out, "        Fix:");
                        for (i, step) in finding.fix.iter().enumerate() {
                            let _ = writeln!(out, "          {}. {step}", i + 1);
                        }
                    }
                    if let Some(faq) = &finding.faq {
                        let _ = writeln!(out, "        FAQ: {faq}");
                    }
                }
            }
        }
        let s = &self.summary;
        let _ = writeln!(
            out,
            "\nSummary: {} passed, {} warnings, {} failed, {} skipped, {} errors{}",
            s.pass,
            s.warn,
            s.fail,
            s.skip,
            s.error,
            if verbose {
                ""
            } else {
                " (passes folded; -v shows them)"
            }
        );
        out
    }
}
