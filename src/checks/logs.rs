//! `logs.<entry>`: one check per knowledge-base entry with log symptoms,
//! per target, over the target's logs and the homeserver log lines that
//! mention it. The ids come from the knowledge base, so a new entry in
//! `kb/*.yaml` is a new check with no code.

use super::{Context, Finding, Verdict, evidence};
use crate::knowledge::scan::{EntryHits, MatchedLine};
use crate::knowledge::{self, Entry, Level};

fn verdict(ctx: &Context, entry: &Entry) -> Verdict {
    let Some(logs) = &ctx.target.logs_scanned else {
        return Verdict::skip("no log configured for this target (bridges[].logs, homeserver.log)");
    };
    let entry_hits: Vec<&EntryHits> = if entry.absent_from_log.is_empty() {
        logs.hits
            .iter()
            .filter(|h| h.entry.id == entry.id)
            .collect()
    } else {
        Vec::new()
    };
    let found: Vec<MatchedLine> = entry_hits.iter().flat_map(|h| h.lines()).collect();
    let no_debug = !entry.absent_from_log.is_empty() && !logs.files_without_debug.is_empty();
    if found.is_empty() && !no_debug {
        return Verdict::pass(format!(
            "not seen in the logs: {}",
            entry.title.to_lowercase()
        ));
    }
    let verdict = match entry.level {
        Level::Warn => Verdict::warn(entry.title.clone()),
        Level::Fail | Level::Health => Verdict::fail(entry.title.clone()),
    };
    let verdict = if no_debug {
        verdict.detail(format!(
            "{} No debug-level line in: {}.",
            entry.explanation,
            logs.files_without_debug.join(", ")
        ))
    } else {
        let shown: Vec<String> = found
            .iter()
            .map(|l| {
                format!(
                    "{}:{}: {}",
                    l.file,
                    l.number,
                    l.text.chars().take(300).collect::<String>()
                )
            })
            .collect();
        let lines = serde_json::to_value(&found).unwrap_or_default();
        verdict.log_lines(&entry.explanation, &shown, lines)
    };
    let mut verdict = verdict.fix(entry.fix.clone());
    if let Some(anchor) = &entry.faq {
        verdict = verdict.faq(anchor);
    }
    let earliest = entry_hits.iter().filter_map(|h| h.earliest_ms).min();
    let latest = entry_hits.iter().filter_map(|h| h.latest_ms).max();
    evidence::judge(ctx, verdict, earliest, latest)
}

/// Every `logs.*` finding for one target, in knowledge-base order.
pub fn findings(ctx: &Context) -> Vec<Finding> {
    knowledge::entries()
        .iter()
        .filter(|entry| !entry.is_health())
        .filter(|entry| !entry.symptoms.is_empty() || !entry.absent_from_log.is_empty())
        .map(|entry| Finding::from_verdict(entry.check_id(), &ctx.target.id, verdict(ctx, entry)))
        .collect()
}
