//! Beside input, the knowledge base: every known bridge failure with its symptoms, its
//! explanation and its fix, from `kb/*.yaml` compiled into the binary.
//! `explain`, the `logs.*` checks and the chat `faq` command all read it.

pub mod scan;
pub mod timestamps;

use std::sync::OnceLock;

use serde::Deserialize;

use crate::shared::FAQ;

/// The YAML files of `kb/`, compiled in so the binary needs no data files.
const SOURCES: &[(&str, &str)] = &[
    ("kb/bridge.yaml", include_str!("../../kb/bridge.yaml")),
    ("kb/synapse.yaml", include_str!("../../kb/synapse.yaml")),
    ("kb/general.yaml", include_str!("../../kb/general.yaml")),
    ("kb/health.yaml", include_str!("../../kb/health.yaml")),
];

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Symptom {
    /// Text that must appear in the line; what the fast prefilter looks for.
    pub literal: String,
    /// A regex the line must also match, for literals too common alone.
    #[serde(default)]
    pub regex: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    #[default]
    Fail,
    Warn,
    /// Not a problem: a line proving the bridge or the homeserver worked
    /// when it was written (`kb/health.yaml`); problems older than it are
    /// resolved.
    Health,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub symptoms: Vec<Symptom>,
    /// Markers whose absence from a whole log is the symptom (debug level off).
    #[serde(default)]
    pub absent_from_log: Vec<String>,
    #[serde(default)]
    pub level: Level,
    pub explanation: String,
    pub fix: Vec<String>,
    /// The FAQ section's anchor; failures the FAQ leaves out have none.
    #[serde(default)]
    pub faq: Option<String>,
    pub checks: Vec<String>,
    /// Where the symptom comes from: the upstream repository, version and
    /// file of the log statement, or the homeserver's error, so an entry can
    /// be checked against the program that prints it.
    pub sources: Vec<String>,
}

impl Entry {
    pub fn faq_url(&self) -> Option<String> {
        self.faq.as_ref().map(|anchor| format!("{FAQ}#{anchor}"))
    }

    /// A proof of health, not a problem: no check, never explained.
    pub fn is_health(&self) -> bool {
        self.level == Level::Health
    }

    /// The id of the check that reports this entry (`logs.<id>`).
    pub fn check_id(&self) -> String {
        format!("logs.{}", self.id)
    }
}

fn parse_all() -> Result<Vec<Entry>, String> {
    let mut entries = Vec::new();
    for (name, text) in SOURCES {
        let mut part: Vec<Entry> =
            serde_saphyr::from_str(text).map_err(|e| format!("{name}: {e}"))?;
        entries.append(&mut part);
    }
    Ok(entries)
}

/// Every entry, parsed once. The files are validated by a unit test, so a
/// broken knowledge base never reaches a release.
pub fn entries() -> &'static [Entry] {
    static ENTRIES: OnceLock<Vec<Entry>> = OnceLock::new();
    ENTRIES.get_or_init(|| parse_all().unwrap_or_default())
}

pub fn by_id(id: &str) -> Option<&'static Entry> {
    entries().iter().find(|e| e.id == id)
}

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric() && c != '_')
        .filter(|w| w.len() > 2)
        .map(str::to_lowercase)
        .collect()
}

/// Entries ranked for a few words (the chat `faq` command): a word in the
/// title or id counts most, then symptoms, then the explanation and fixes.
pub fn search(query: &str) -> Vec<&'static Entry> {
    let wanted = words(query);
    let mut scored: Vec<(usize, &Entry)> = entries()
        .iter()
        .filter(|entry| !entry.is_health())
        .map(|entry| {
            let title = words(&format!("{} {}", entry.title, entry.id.replace('_', " ")));
            let symptoms = words(
                &entry
                    .symptoms
                    .iter()
                    .map(|s| s.literal.as_str())
                    .collect::<Vec<_>>()
                    .join(" "),
            );
            let body = words(&format!("{} {}", entry.explanation, entry.fix.join(" ")));
            let score = wanted
                .iter()
                .map(|w| {
                    3 * title
                        .iter()
                        .filter(|t| t.starts_with(w.as_str()))
                        .count()
                        .min(1)
                        + 2 * symptoms
                            .iter()
                            .filter(|t| t.starts_with(w.as_str()))
                            .count()
                            .min(1)
                        + body
                            .iter()
                            .filter(|t| t.starts_with(w.as_str()))
                            .count()
                            .min(2)
                })
                .sum();
            (score, entry)
        })
        .filter(|(score, _)| *score > 0)
        .collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.id.cmp(&b.1.id)));
    scored.into_iter().map(|(_, e)| e).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::shared_fixture;

    /// The anchor the docs site gives a heading: lower case, letters,
    /// digits, `-` and `_` kept, spaces to `-`, the rest dropped.
    fn anchor(heading: &str) -> String {
        heading
            .trim_start_matches('#')
            .trim()
            .to_lowercase()
            .chars()
            .filter_map(|c| match c {
                ' ' => Some('-'),
                c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn knowledge_base_parses_and_is_complete() {
        let entries = parse_all().unwrap();
        assert!(entries.len() >= 25, "{}", entries.len());
        let mut ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
        ids.sort();
        let count = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), count, "duplicate entry id");
        for entry in &entries {
            assert!(
                !entry.title.is_empty()
                    && !entry.explanation.is_empty()
                    && (entry.is_health() || !entry.fix.is_empty()),
                "{}",
                entry.id
            );
            // A symptom is traced to the program that prints it: its
            // repository and file, or the homeserver's error answer.
            assert!(!entry.sources.is_empty(), "{}: no source", entry.id);
            if !entry.symptoms.is_empty() {
                assert!(
                    entry.sources.iter().any(|s| s.contains(".py")
                        || s.contains(".go")
                        || s.contains("error answer")),
                    "{}: symptoms without the file that prints them: {:?}",
                    entry.id,
                    entry.sources
                );
            }
            for symptom in &entry.symptoms {
                assert!(!symptom.literal.is_empty(), "{}", entry.id);
                if let Some(regex) = &symptom.regex {
                    regex::Regex::new(regex).unwrap_or_else(|e| panic!("{}: {e}", entry.id));
                }
            }
        }
    }

    #[test]
    fn every_faq_link_and_check_id_exists() {
        let faq =
            std::fs::read_to_string(shared_fixture("../reference/bridge-troubleshooting-faq.md"))
                .unwrap();
        let anchors: Vec<String> = faq
            .lines()
            .filter(|l| l.starts_with("## "))
            .map(anchor)
            .collect();
        let spec = std::fs::read_to_string(shared_fixture("../spec/checks.md")).unwrap();
        for entry in entries() {
            if let Some(faq) = &entry.faq {
                assert!(
                    anchors.contains(faq),
                    "{}: no FAQ section #{faq} (have {anchors:?})",
                    entry.id,
                );
            }
            for check in &entry.checks {
                assert!(
                    spec.contains(&format!("`{check}`")),
                    "{}: unknown check {check}",
                    entry.id
                );
            }
        }
    }

    #[test]
    fn spec_log_checks_all_have_an_entry() {
        for id in [
            "as_token_rejected",
            "register_rejected",
            "ping_failed",
            "invalid_localpart",
            "account_key_invalid",
            "foreign_tables",
            "not_configured",
            "electron_unavailable",
            "olm_headers_missing",
            "sync_failing",
            "transactions_failing",
            "homeserver_backoff",
            "debug_level_off",
        ] {
            assert!(by_id(id).is_some(), "logs.{id} has no entry");
        }
    }

    #[test]
    fn search_ranks_by_words() {
        let found = search("typing receipts");
        assert_eq!(found[0].id, "typing_receipts_missing");
        let found = search("foreign tables database");
        assert_eq!(found[0].id, "foreign_tables");
        assert!(search("zzzz").is_empty());
    }
}
