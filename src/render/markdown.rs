//! Markdown: the support packet's `report.md`, in C.L.U.E.S. order
//! (Configurations, Logs, Users affected, Environment, Steps to reproduce).

use crate::checks::{Finding, Status};
use crate::facts::{Facts, TargetKind};
use crate::render::report::Report;

/// What the packet adds to the report: the requester's note, what could
/// not be collected, and advice when logs lack debug lines.
pub struct PacketNotes<'a> {
    pub note: Option<&'a str>,
    pub warnings: &'a [String],
    pub debug_advice: Option<&'a str>,
}

pub fn packet_report(report: &Report, facts: &Facts, notes: &PacketNotes) -> String {
    let mut md = String::from("# bridge-doctor support packet\n\n");
    md.push_str("Sections follow C.L.U.E.S.: Configurations, Logs, Users affected, Environment, Steps to reproduce.\n\n");
    md.push_str("## Diagnoses\n\n");
    md.push_str(&diagnoses(report));
    md.push_str("\n## Configurations\n\n");
    md.push_str(&configurations(facts));
    md.push_str("\nFindings about files, tokens, namespaces, encryption and the database:\n\n");
    md.push_str(&problems(report, |check| !check.starts_with("logs.")));
    md.push_str("\n## Logs\n\n");
    md.push_str(&problems(report, |check| check.starts_with("logs.")));
    let resolved: Vec<String> = report
        .resolved()
        .map(|f| format!("- {}\n", Report::resolved_line(f)))
        .collect();
    if !resolved.is_empty() {
        md.push_str("\nResolved: problems the logs show from before the last proof of health.\n\n");
        md.push_str(&resolved.concat());
    }
    if let Some(advice) = notes.debug_advice {
        md.push_str(&format!("\n> {advice}\n"));
    }
    md.push_str("\n## Users affected\n\nTo be filled in by the requester: who is affected (everyone, one user, one chat) and since when.\n");
    md.push_str("\n## Environment\n\n");
    md.push_str(&environment(report));
    md.push_str("\n## Steps to reproduce\n\n");
    md.push_str(notes.note.unwrap_or("(no note given: add one with --note)"));
    md.push('\n');
    if !notes.warnings.is_empty() {
        md.push_str("\n## Not collected\n\n");
        for warning in notes.warnings {
            md.push_str(&format!("- {warning}\n"));
        }
    }
    md
}

/// The problems by cause, most blocking first, with the checks behind each.
fn diagnoses(report: &Report) -> String {
    if report.diagnoses.is_empty() {
        return "- nothing found\n".to_owned();
    }
    let mut md = String::new();
    for (n, d) in report.diagnoses.iter().enumerate() {
        let seen: Vec<String> = d
            .evidence
            .iter()
            .map(|e| format!("`{}`", e.check))
            .collect();
        md.push_str(&format!(
            "{}. **{}** ({}): {}\n   - seen by: {}\n   - fix: {}\n",
            n + 1,
            d.target,
            d.status.as_str(),
            d.title,
            seen.join(", "),
            d.fix.join(" / ")
        ));
    }
    md
}

fn configurations(facts: &Facts) -> String {
    let mut md = String::new();
    for target in &facts.targets {
        md.push_str(&format!(
            "- {} ({}): registration `{}`{}\n",
            target.id,
            if target.kind == TargetKind::Doctor {
                "the doctor"
            } else {
                "bridge"
            },
            target.registration_path.display(),
            target
                .config()
                .map(|c| format!(", config `{}`", c.path().display()))
                .unwrap_or_default()
        ));
    }
    md
}

/// The findings that did not pass among those whose check id `wanted` keeps.
fn problems(report: &Report, wanted: impl Fn(&str) -> bool) -> String {
    let lines: Vec<String> = report
        .results
        .iter()
        .filter(|f| {
            wanted(&f.check) && matches!(f.status, Status::Warn | Status::Fail | Status::Error)
        })
        .map(problem_line)
        .collect();
    if lines.is_empty() {
        "- nothing found\n".to_owned()
    } else {
        lines.join("\n") + "\n"
    }
}

fn problem_line(f: &Finding) -> String {
    format!(
        "- **{}** `{}` ({}): {}\n  - fix: {}",
        f.target,
        f.check,
        f.status.as_str(),
        f.title,
        f.fix.join(" / ")
    )
}

fn environment(report: &Report) -> String {
    let hs = &report.homeserver;
    let s = &report.summary;
    format!(
        "- bridge-doctor {} on {} {}\n- homeserver {} ({}): {} {}\n- checks: {} passed, {} warnings, {} failed, {} skipped, {} errors, {} info\n",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::OS,
        std::env::consts::ARCH,
        hs.address,
        hs.server_name,
        hs.software.as_deref().unwrap_or("unknown software"),
        hs.version.as_deref().unwrap_or(""),
        s.pass,
        s.warn,
        s.fail,
        s.skip,
        s.error,
        s.info
    )
}
