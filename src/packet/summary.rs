//! Summarising: `metadata.yaml`, `bridges.json`, and the advice to raise a
//! log level, from what was collected and written.

use std::collections::HashMap;
use std::sync::OnceLock;

use regex::Regex;
use serde_json::{Value, json};

use super::FORMAT_VERSION;
use super::collect::Collected;
use crate::checks::{Finding, Status};
use crate::facts::{TargetFacts, TargetKind};
use crate::input::registration::{NamespaceEntry, Registration};

/// The software and version a bridge names in its log when it starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Software {
    pub name: String,
    pub version: String,
}

/// Software and version a bridge logs when it starts (Python and Go styles).
pub fn software_in(line: &str) -> Option<Software> {
    static PATTERNS: OnceLock<[Regex; 2]> = OnceLock::new();
    let patterns = PATTERNS.get_or_init(|| {
        [
            Regex::new(r"Initializing (mautrix-[\w-]+) v?([\w.+-]+)").expect("python start line"),
            Regex::new(r#""name":"(mautrix-[\w-]+)".*?"version":"v?([^"]+)""#)
                .expect("go start line"),
        ]
    });
    patterns.iter().find_map(|p| {
        p.captures(line).map(|c| Software {
            name: c[1].to_owned(),
            version: c[2].to_owned(),
        })
    })
}

/// Advice to raise the log level, when some target logs no debug lines.
pub fn debug_advice(findings: &[Finding]) -> Option<String> {
    let without_debug: Vec<String> = findings
        .iter()
        .filter(|f| f.check == "logs.debug_level_off" && f.status == Status::Warn)
        .map(|f| f.target.clone())
        .collect();
    (!without_debug.is_empty()).then(|| {
        format!("The logs of {} are not at debug level, so this packet misses detail: raise the bridge's log level to debug, reproduce the problem, then build the packet again.", without_debug.join(", "))
    })
}

fn yaml_string(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned())
}

pub fn metadata(collected: &Collected, note: Option<&str>) -> String {
    let software = collected.facts.homeserver.software.as_ref();
    let (database_type, database_version) = &collected.database;
    format!(
        "# bridge-doctor support packet\nformat_version: {FORMAT_VERSION}\ndoctor_version: {}\ngenerated_at: {}\nos: {}\narch: {}\nhomeserver_software: {}\nhomeserver_version: {}\ndatabase_type: {}\ndatabase_version: {}\nnote: {}\n",
        yaml_string(env!("CARGO_PKG_VERSION")),
        yaml_string(&collected.report.generated_at),
        yaml_string(std::env::consts::OS),
        yaml_string(std::env::consts::ARCH),
        yaml_string(software.map(|s| s.name.as_str()).unwrap_or("unknown")),
        yaml_string(software.map(|s| s.version.as_str()).unwrap_or("unknown")),
        yaml_string(database_type),
        yaml_string(database_version),
        yaml_string(note.unwrap_or("")),
    )
}

fn worst(findings: &[Finding], target: &str) -> Status {
    findings
        .iter()
        .filter(|f| f.target == target && f.status != Status::Skip)
        .map(|f| f.status)
        .max()
        .unwrap_or(Status::Skip)
}

fn namespace_list(entries: &[NamespaceEntry]) -> Vec<Value> {
    entries
        .iter()
        .map(|n| json!({"regex": n.regex, "exclusive": n.exclusive}))
        .collect()
}

fn registration_summary(r: &Registration) -> Value {
    json!({
        "id": r.id, "url": r.url(),
        "namespaces": {
            "users": namespace_list(&r.namespaces.users),
            "aliases": namespace_list(&r.namespaces.aliases),
            "rooms": namespace_list(&r.namespaces.rooms),
        },
        "flags": {
            "rate_limited": r.rate_limited,
            "receive_ephemeral": r.receive_ephemeral.effective(),
            "de.sorunome.msc2409.push_ephemeral": r.push_ephemeral.effective(),
            "org.matrix.msc3202": r.msc3202.effective(),
            "io.element.msc4190": r.msc4190.effective(),
        }
    })
}

/// `bridges.json`: per target its software (from its log's start line when
/// seen), registration summary and worst status.
pub fn bridges(collected: &Collected, software: &[(String, Software)]) -> String {
    let software: HashMap<&str, &Software> = software
        .iter()
        .map(|(t, found)| (t.as_str(), found))
        .collect();
    let entry = |target: &TargetFacts| {
        let (name, version) = match (target.kind, software.get(target.id.as_str())) {
            (TargetKind::Doctor, _) => (
                Some("bridge-doctor".to_owned()),
                Some(env!("CARGO_PKG_VERSION").to_owned()),
            ),
            (_, Some(found)) => (Some(found.name.clone()), Some(found.version.clone())),
            // Not logged: the program its config names, else the config's format.
            _ => (
                target.config().map(|c| {
                    c.software()
                        .unwrap_or_else(|| format!("{:?}", c.format).to_lowercase())
                }),
                None,
            ),
        };
        json!({
            "id": target.id, "kind": target.kind, "software": name, "version": version,
            "registration": target.registration().map(registration_summary),
            "status": worst(&collected.findings, &target.id).as_str(),
        })
    };
    let list: Vec<Value> = collected.facts.targets.iter().map(entry).collect();
    crate::render::json::pretty(&list)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn software_from_start_lines() {
        assert_eq!(
            software_in("[INFO@mau.init] Initializing mautrix-telegram 0.15.3"),
            Some(Software {
                name: "mautrix-telegram".into(),
                version: "0.15.3".into()
            })
        );
        assert_eq!(
            software_in(
                r#"{"name":"mautrix-whatsapp","version":"v0.12.0","message":"Initializing bridge"}"#
            ),
            Some(Software {
                name: "mautrix-whatsapp".into(),
                version: "0.12.0".into()
            })
        );
    }
}
