//! The terminal: the check report in the manner of `flutter doctor` (one
//! line per target, failures unfolded with their fix), and `explain`'s
//! matches. Colour only when asked (on a terminal).

use std::fmt::Write;

use crate::checks::diagnoses::Diagnosis;
use crate::checks::{Finding, Status, Summary};
use crate::facts::TargetKind;
use crate::input::config::Deployment;
use crate::knowledge::scan::{Explained, ExplainedEntry};
use crate::render::report::{Report, TargetInfo};

struct Marks {
    colour: bool,
}

impl Marks {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    fn of(&self, status: Status) -> String {
        match status {
            Status::Info => self.paint("36", "[i]"),
            Status::Pass => self.paint("32", "[✓]"),
            Status::Warn => self.paint("33", "[!]"),
            Status::Fail => self.paint("31", "[✗]"),
            Status::Error => self.paint("35", "[E]"),
            Status::Skip => self.paint("2", "[-]"),
        }
    }
}

fn is_problem(status: Status) -> bool {
    matches!(status, Status::Warn | Status::Fail | Status::Error)
}

/// The whole report; `verbose` unfolds the passing checks too.
pub fn report(report: &Report, verbose: bool, colour: bool) -> String {
    let marks = Marks { colour };
    let mut out = String::new();
    let hs = &report.homeserver;
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
    // A config split over files (conf.d, several --config-path) is named in
    // full: a key the admin looks for may be in any of them.
    if hs.config_files.len() > 1 {
        let _ = writeln!(out, "  config read from: {}", hs.config_files.join(", "));
    }
    diagnoses_block(&mut out, &marks, &report.diagnoses);
    for target in &report.targets {
        target_block(&mut out, &marks, report, target, verbose);
    }
    let s = &report.summary;
    let _ = writeln!(
        out,
        "\nSummary: {} passed, {} warnings, {} failed, {} skipped, {} errors, {} info{}",
        s.pass,
        s.warn,
        s.fail,
        s.skip,
        s.error,
        s.info,
        if verbose {
            ""
        } else {
            " (passes folded; -v shows them)"
        }
    );
    out
}

fn target_block(
    out: &mut String,
    marks: &Marks,
    report: &Report,
    target: &TargetInfo,
    verbose: bool,
) {
    let findings: Vec<&Finding> = report
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
        "\n{} {} ({kind}): {} passed, {} warnings, {} failed, {} skipped{}",
        marks.of(worst),
        target.id,
        summary.pass,
        summary.warn,
        summary.fail + summary.error,
        summary.skip,
        match summary.info {
            0 => String::new(),
            n => format!(", {n} info"),
        }
    );
    match &target.deployment {
        Deployment::Compose {
            service, container, ..
        } => {
            let _ = writeln!(
                out,
                "    runs as: compose service {service} (container {container})"
            );
        }
        Deployment::Systemd { unit } => {
            let _ = writeln!(out, "    runs as: systemd unit {unit}");
        }
        Deployment::Host => {}
    }
    if let Some(how) = &target.config_found {
        let _ = match &target.config {
            Some(config) => writeln!(out, "    config: {config} ({how})"),
            None => writeln!(out, "    config: {how}"),
        };
    }
    for finding in findings {
        if verbose || is_problem(finding.status) || finding.status == Status::Info {
            finding_block(out, marks, finding);
        }
    }
}

/// One line per check; what a problem means and its fix are in its diagnosis.
fn finding_block(out: &mut String, marks: &Marks, finding: &Finding) {
    let _ = writeln!(
        out,
        "    {} {}: {}",
        marks.of(finding.status),
        finding.check,
        finding.title
    );
}

/// The problems by cause, most blocking first: each with the evidence of
/// every check that saw it, then one fix.
fn diagnoses_block(out: &mut String, marks: &Marks, diagnoses: &[Diagnosis]) {
    if diagnoses.is_empty() {
        let _ = writeln!(out, "\nNo problem found.");
        return;
    }
    let _ = writeln!(out, "\nDiagnoses, most blocking first:");
    for (n, diagnosis) in diagnoses.iter().enumerate() {
        let _ = writeln!(
            out,
            "\n{}. {} {}: {}",
            n + 1,
            marks.of(diagnosis.status),
            diagnosis.target,
            diagnosis.title
        );
        for evidence in &diagnosis.evidence {
            let _ = writeln!(
                out,
                "     {} {}: {}",
                marks.of(evidence.status),
                evidence.check,
                evidence.title
            );
            for line in evidence.detail.lines().filter(|l| !l.trim().is_empty()) {
                let _ = writeln!(out, "         {line}");
            }
        }
        if !diagnosis.fix.is_empty() {
            let _ = writeln!(out, "     Fix:");
            for (i, step) in diagnosis.fix.iter().enumerate() {
                let _ = writeln!(out, "       {}. {step}", i + 1);
            }
        }
        if let Some(faq) = &diagnosis.faq {
            let _ = writeln!(out, "     FAQ: {faq}");
        }
    }
}

/// `explain`'s matches: each entry with its lines, fix and FAQ link.
pub fn explained(explained: &Explained) -> String {
    if explained.matches.is_empty() {
        return "No known problem found in the text.\n".to_owned();
    }
    let mut out = String::new();
    for m in &explained.matches {
        explained_entry(&mut out, m);
    }
    out
}

fn explained_entry(out: &mut String, m: &ExplainedEntry) {
    let _ = writeln!(out, "[✗] {} ({}): {}", m.entry, m.check, m.title);
    let _ = writeln!(out, "    {}", m.explanation);
    let _ = writeln!(
        out,
        "    {} matching line(s){}:",
        m.count,
        if m.count as usize > m.lines.len() {
            ", first and last shown"
        } else {
            ""
        }
    );
    for line in &m.lines {
        let _ = writeln!(
            out,
            "      {}:{}: {}",
            line.file,
            line.number,
            line.text.chars().take(300).collect::<String>()
        );
    }
    let _ = writeln!(out, "    Fix:");
    for (i, step) in m.fix.iter().enumerate() {
        let _ = writeln!(out, "      {}. {step}", i + 1);
    }
    if let Some(faq) = &m.faq {
        let _ = writeln!(out, "    FAQ: {faq}");
    }
    let _ = writeln!(out);
}
