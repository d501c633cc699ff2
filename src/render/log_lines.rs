//! The self-check's log lines: one per finding, with the check id, what is
//! wrong, the fix steps and the FAQ link, at the level its status deserves.

use crate::checks::{Finding, Status};

/// One log line per finding: id, what is wrong, the fix, the FAQ link.
pub fn log_findings(findings: &[Finding]) {
    for finding in findings {
        match finding.status {
            Status::Pass => tracing::info!(check = %finding.check, "ok: {}", finding.title),
            Status::Info => tracing::info!(check = %finding.check, "note: {}", finding.title),
            Status::Skip => tracing::debug!(check = %finding.check, "skipped: {}", finding.title),
            Status::Warn | Status::Fail | Status::Error => {
                let fix = finding
                    .fix
                    .iter()
                    .enumerate()
                    .map(|(i, step)| format!("{}. {step}", i + 1))
                    .collect::<Vec<_>>()
                    .join(" ");
                let faq = finding.faq.as_deref().unwrap_or("-");
                if finding.status == Status::Warn {
                    tracing::warn!(check = %finding.check, faq, "{} ({}) Fix: {fix}", finding.title, finding.detail);
                } else {
                    tracing::error!(check = %finding.check, faq, "{} ({}) Fix: {fix}", finding.title, finding.detail);
                }
            }
        }
    }
}
