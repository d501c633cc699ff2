//! The support packet: one zip with versions, findings, sanitised configs
//! and bounded, sanitised log tails, for handing to someone else.
//!
//! Files are streamed into the zip line by line, so a large log costs one
//! line of memory, not its size. Nothing that cannot be collected stops
//! the packet: it becomes a line of `warnings.txt`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use regex::Regex;
use serde_json::json;
use zip::ZipWriter;
use zip::write::SimpleFileOptions;

use crate::checks::{self, Finding, Status};
use crate::config::Config;
use crate::facts::{self, Facts, TargetKind, open_tail};
use crate::report::Report;
use crate::sanitize::{Redaction, SecretValues, sanitize_config};

pub const FORMAT_VERSION: u32 = 1;
pub const DEFAULT_MAX_LOG_BYTES: u64 = 20 * 1024 * 1024;
/// Log lines are cut at this length in the packet.
const MAX_LINE: usize = 16 * 1024;
/// Per log file, redactions listed one by one before they are summed up.
const MAX_LISTED_REDACTIONS: usize = 500;

pub struct PacketOptions {
    /// A folder (the name is generated) or a file name.
    pub output: Option<PathBuf>,
    pub note: Option<String>,
    pub max_log_bytes: u64,
    /// Only log lines from this time on (`2026-11-22 10:00` or RFC 3339).
    pub since: Option<String>,
    pub progress: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum PacketError {
    #[error(
        "cannot write the packet to {path}: {source}. Check the folder exists and is writable (-o)."
    )]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write the zip: {0}")]
    Zip(#[from] zip::result::ZipError),
}

pub struct Built {
    pub path: PathBuf,
    pub warnings: Vec<String>,
    pub debug_advice: Option<String>,
}

/// `bridge_doctor_packet_YYYY-MM-DD-HH-MM.zip`, in UTC.
pub fn file_name(now: time::OffsetDateTime) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day]-[hour]-[minute]");
    format!(
        "bridge_doctor_packet_{}.zip",
        now.format(&format).unwrap_or_default()
    )
}

fn output_path(output: Option<&Path>, now: time::OffsetDateTime) -> PathBuf {
    match output {
        Some(path) if path.is_dir() || path.to_string_lossy().ends_with('/') => {
            path.join(file_name(now))
        }
        Some(path) => path.to_owned(),
        None => PathBuf::from(file_name(now)),
    }
}

struct Writer<W: Write + std::io::Seek> {
    zip: ZipWriter<W>,
    redactions: Vec<Redaction>,
    warnings: Vec<String>,
    progress: bool,
}

impl<W: Write + std::io::Seek> Writer<W> {
    fn options() -> SimpleFileOptions {
        SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .large_file(true)
    }

    fn add(&mut self, name: &str, content: &[u8]) -> Result<(), PacketError> {
        self.zip.start_file(name, Self::options())?;
        self.zip
            .write_all(content)
            .map_err(|source| PacketError::Write {
                path: name.to_owned(),
                source,
            })?;
        Ok(())
    }

    fn announce(&self, name: &str) {
        if self.progress {
            eprintln!("  adding {name}");
        }
    }
}

/// A name for a file inside the zip: the file's own name, unique in its folder.
fn entry_name(folder: &str, path: &Path, taken: &mut Vec<String>) -> String {
    let base = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".to_owned());
    let mut name = format!("{folder}/{base}");
    let mut n = 2;
    while taken.contains(&name) {
        name = format!("{folder}/{n}-{base}");
        n += 1;
    }
    taken.push(name.clone());
    name
}

/// The first timestamp in a line, normalised to `YYYY-MM-DD HH:MM:SS`.
fn line_time(line: &str) -> Option<String> {
    static PATTERN: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    let pattern = PATTERN.get_or_init(|| {
        Regex::new(r"(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}(:\d{2})?)").expect("time pattern")
    });
    let caps = pattern.captures(line)?;
    Some(format!("{} {}", &caps[1], &caps[2]))
}

/// Software and version a bridge logs when it starts (Python and Go styles).
fn software_in(line: &str) -> Option<(String, String)> {
    static PATTERNS: std::sync::OnceLock<[Regex; 2]> = std::sync::OnceLock::new();
    let patterns = PATTERNS.get_or_init(|| {
        [
            Regex::new(r"Initializing (mautrix-[\w-]+) v?([\w.+-]+)").expect("python start line"),
            Regex::new(r#""name":"(mautrix-[\w-]+)".*?"version":"v?([^"]+)""#)
                .expect("go start line"),
        ]
    });
    patterns
        .iter()
        .find_map(|p| p.captures(line).map(|c| (c[1].to_owned(), c[2].to_owned())))
}

struct LogCopy {
    software: Option<(String, String)>,
}

fn copy_log<W: Write + std::io::Seek>(
    writer: &mut Writer<W>,
    name: &str,
    path: &Path,
    options: &PacketOptions,
    secrets: &SecretValues,
) -> Result<LogCopy, PacketError> {
    let mut copy = LogCopy { software: None };
    let file = match open_tail(path, options.max_log_bytes) {
        Ok(file) => file,
        Err(err) => {
            writer
                .warnings
                .push(format!("log {}: not collected: {err}", path.display()));
            return Ok(copy);
        }
    };
    let truncated = std::fs::metadata(path)
        .map(|m| m.len() > options.max_log_bytes)
        .unwrap_or(false);
    writer.announce(name);
    writer.zip.start_file(name, Writer::<W>::options())?;
    let mut reader = BufReader::with_capacity(256 * 1024, file);
    let mut raw = Vec::new();
    let mut number = 0u64;
    let mut listed = 0usize;
    let mut unlisted = 0usize;
    let mut keep = options.since.is_none();
    if truncated {
        // The tail starts mid-line: drop that partial line.
        let _ = reader.read_until(b'\n', &mut raw);
        raw.clear();
        let note = format!(
            "[bridge-doctor: only the last {} MiB of {} are included]\n",
            options.max_log_bytes / (1024 * 1024),
            path.display()
        );
        writer
            .zip
            .write_all(note.as_bytes())
            .map_err(|source| PacketError::Write {
                path: name.to_owned(),
                source,
            })?;
    }
    loop {
        raw.clear();
        let read = reader
            .read_until(b'\n', &mut raw)
            .map_err(|source| PacketError::Write {
                path: path.display().to_string(),
                source,
            })?;
        if read == 0 {
            break;
        }
        number += 1;
        raw.truncate(MAX_LINE);
        let line = String::from_utf8_lossy(&raw);
        let line = line.trim_end_matches(['\n', '\r']);
        if let Some(since) = &options.since
            && let Some(time) = line_time(line)
        {
            keep = time.as_str() >= since.as_str();
        }
        if let Some(found) = software_in(line) {
            copy.software = Some(found);
        }
        if !keep {
            continue;
        }
        let (clean, rules) = secrets.clean_line(line);
        for rule in rules {
            if listed < MAX_LISTED_REDACTIONS {
                writer.redactions.push(Redaction {
                    file: name.to_owned(),
                    location: format!("line {number}"),
                    rule,
                    kind: "value in a log line".to_owned(),
                });
                listed += 1;
            } else {
                unlisted += 1;
            }
        }
        writer
            .zip
            .write_all(clean.as_bytes())
            .and_then(|()| writer.zip.write_all(b"\n"))
            .map_err(|source| PacketError::Write {
                path: name.to_owned(),
                source,
            })?;
    }
    if unlisted > 0 {
        writer.redactions.push(Redaction {
            file: name.to_owned(),
            location: format!("{unlisted} more lines"),
            rule: "summary",
            kind: "redactions past the listing limit".to_owned(),
        });
    }
    Ok(copy)
}

fn yaml_string(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned())
}

async fn database_info(config: &Config) -> (String, String) {
    let kind = if config.database.starts_with("postgres") {
        "postgres"
    } else {
        "sqlite"
    };
    let uri = if kind == "sqlite" {
        "sqlite::memory:".to_owned()
    } else {
        config.database.clone()
    };
    let version = crate::database::server_version(&uri)
        .await
        .unwrap_or_else(|e| format!("unknown ({e})"));
    (kind.to_owned(), version)
}

fn worst(findings: &[Finding], target: &str) -> Status {
    findings
        .iter()
        .filter(|f| f.target == target && f.status != Status::Skip)
        .map(|f| f.status)
        .max()
        .unwrap_or(Status::Skip)
}

fn report_markdown(
    report: &Report,
    facts: &Facts,
    note: Option<&str>,
    warnings: &[String],
    debug_advice: Option<&str>,
) -> String {
    let mut md = String::from("# bridge-doctor support packet\n\n");
    md.push_str("Sections follow C.L.U.E.S.: Configurations, Logs, Users affected, Environment, Steps to reproduce.\n\n");
    let problems = |prefix: &dyn Fn(&str) -> bool| -> String {
        let lines: Vec<String> = report
            .results
            .iter()
            .filter(|f| {
                prefix(&f.check) && matches!(f.status, Status::Warn | Status::Fail | Status::Error)
            })
            .map(|f| {
                format!(
                    "- **{}** `{}` ({}): {}\n  - fix: {}",
                    f.target,
                    f.check,
                    f.status.as_str(),
                    f.title,
                    f.fix.join(" / ")
                )
            })
            .collect();
        if lines.is_empty() {
            "- nothing found\n".to_owned()
        } else {
            lines.join("\n") + "\n"
        }
    };
    md.push_str("## Configurations\n\n");
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
    md.push_str("\nFindings about files, tokens, namespaces, encryption and the database:\n\n");
    md.push_str(&problems(&|check: &str| !check.starts_with("logs.")));
    md.push_str("\n## Logs\n\n");
    md.push_str(&problems(&|check: &str| check.starts_with("logs.")));
    if let Some(advice) = debug_advice {
        md.push_str(&format!("\n> {advice}\n"));
    }
    md.push_str("\n## Users affected\n\nTo be filled in by the requester: who is affected (everyone, one user, one chat) and since when.\n");
    md.push_str("\n## Environment\n\n");
    md.push_str(&format!(
        "- bridge-doctor {} on {} {}\n",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::OS,
        std::env::consts::ARCH
    ));
    md.push_str(&format!(
        "- homeserver {} ({}): {} {}\n",
        report.homeserver.address,
        report.homeserver.server_name,
        report
            .homeserver
            .software
            .as_deref()
            .unwrap_or("unknown software"),
        report.homeserver.version.as_deref().unwrap_or("")
    ));
    let s = &report.summary;
    md.push_str(&format!(
        "- checks: {} passed, {} warnings, {} failed, {} skipped, {} errors\n",
        s.pass, s.warn, s.fail, s.skip, s.error
    ));
    md.push_str("\n## Steps to reproduce\n\n");
    md.push_str(note.unwrap_or("(no note given: add one with --note)"));
    md.push('\n');
    if !warnings.is_empty() {
        md.push_str("\n## Not collected\n\n");
        for warning in warnings {
            md.push_str(&format!("- {warning}\n"));
        }
    }
    md
}

pub async fn build(config: &Config, options: &PacketOptions) -> Result<Built, PacketError> {
    let now = time::OffsetDateTime::now_utc();
    let path = output_path(options.output.as_deref(), now);
    let facts = facts::gather(config, false).await;
    let findings = checks::run_all(&facts);
    let report = Report::new(&facts, findings.clone());
    let (database_type, database_version) = database_info(config).await;

    let partial = path.with_extension("zip.partial");
    let file = std::fs::File::create(&partial).map_err(|source| PacketError::Write {
        path: partial.display().to_string(),
        source,
    })?;
    let mut writer = Writer {
        zip: ZipWriter::new(std::io::BufWriter::new(file)),
        redactions: Vec::new(),
        warnings: Vec::new(),
        progress: options.progress,
    };
    if let Some(Err(error)) = &facts.homeserver.versions {
        let why = match error {
            crate::homeserver::VersionsError::Connect { error } => error.message().to_owned(),
            crate::homeserver::VersionsError::NotMatrix { answer } => {
                format!("not a Matrix answer: {}", answer.summary())
            }
        };
        writer.warnings.push(format!(
            "homeserver {}: no usable answer, live checks skipped and its version unknown: {why}",
            config.homeserver.address
        ));
    }

    // Configurations, sanitised; their secret values are then hunted in logs.
    let mut secrets = Vec::new();
    let mut files: Vec<(String, PathBuf)> =
        vec![(config.appservice.id.clone(), config.path.clone())];
    for target in &facts.targets {
        // The doctor's own config is already first in the list.
        if target.kind == TargetKind::Bridge
            && let Some(bridge_config) = target.config()
        {
            files.push((target.id.clone(), bridge_config.path().to_owned()));
        }
        if let Some(Err(problem)) = &target.config {
            files.push((target.id.clone(), problem.path().to_owned()));
        }
        files.push((target.id.clone(), target.registration_path.clone()));
    }
    if let Some(hs) = &config.homeserver.config {
        files.push(("homeserver".to_owned(), hs.clone()));
    }
    let mut taken = Vec::new();
    for (target, file_path) in &files {
        let name = entry_name(&format!("config/{target}"), file_path, &mut taken);
        match std::fs::read_to_string(file_path) {
            Ok(text) => {
                writer.announce(&name);
                let sanitized = sanitize_config(&name, &text);
                writer.add(&name, sanitized.text.as_bytes())?;
                writer.redactions.extend(sanitized.redactions);
                secrets.extend(sanitized.secrets);
            }
            Err(err) => writer
                .warnings
                .push(format!("{}: not collected: {err}", file_path.display())),
        }
    }
    // Tokens the doctor knows even when a file was unreadable.
    secrets.extend([
        config.appservice.as_token.clone(),
        config.appservice.hs_token.clone(),
    ]);
    let secrets = SecretValues::new(&secrets);

    // Logs: bounded tails, sanitised.
    let mut software = std::collections::HashMap::new();
    let mut logs: Vec<(String, PathBuf)> = facts
        .targets
        .iter()
        .flat_map(|t| t.logs.iter().map(|l| (t.id.clone(), l.clone())))
        .collect();
    if let Some(log) = &config.homeserver.log {
        logs.push(("homeserver".to_owned(), log.clone()));
    }
    for (target, log_path) in &logs {
        let name = entry_name(&format!("logs/{target}"), log_path, &mut taken);
        let copied = copy_log(&mut writer, &name, log_path, options, &secrets)?;
        if let Some(found) = copied.software {
            software.insert(target.clone(), found);
        }
    }

    let without_debug: Vec<String> = findings
        .iter()
        .filter(|f| f.check == "logs.debug_level_off" && f.status == Status::Warn)
        .map(|f| f.target.clone())
        .collect();
    let debug_advice = (!without_debug.is_empty()).then(|| {
        format!("The logs of {} are not at debug level, so this packet misses detail: raise the bridge's log level to debug, reproduce the problem, then build the packet again.", without_debug.join(", "))
    });

    let bridges: Vec<serde_json::Value> = facts
        .targets
        .iter()
        .map(|target| {
            let registration = target.registration().map(|r| {
                json!({
                    "id": r.id, "url": r.url(),
                    "namespaces": {
                        "users": r.namespaces.users.iter().map(|n| json!({"regex": n.regex, "exclusive": n.exclusive})).collect::<Vec<_>>(),
                        "aliases": r.namespaces.aliases.iter().map(|n| json!({"regex": n.regex, "exclusive": n.exclusive})).collect::<Vec<_>>(),
                        "rooms": r.namespaces.rooms.iter().map(|n| json!({"regex": n.regex, "exclusive": n.exclusive})).collect::<Vec<_>>(),
                    },
                    "flags": {
                        "rate_limited": r.rate_limited,
                        "receive_ephemeral": r.receive_ephemeral.effective(),
                        "de.sorunome.msc2409.push_ephemeral": r.push_ephemeral.effective(),
                        "org.matrix.msc3202": r.msc3202.effective(),
                        "io.element.msc4190": r.msc4190.effective(),
                    }
                })
            });
            let (name, version) = match (target.kind, software.get(&target.id)) {
                (TargetKind::Doctor, _) => (Some("bridge-doctor".to_owned()), Some(env!("CARGO_PKG_VERSION").to_owned())),
                (_, Some((name, version))) => (Some(name.clone()), Some(version.clone())),
                _ => (target.config().map(|c| format!("{:?}", c.format).to_lowercase()), None),
            };
            json!({
                "id": target.id, "kind": target.kind, "software": name, "version": version,
                "registration": registration, "status": worst(&findings, &target.id).as_str(),
            })
        })
        .collect();

    let software_hs = facts.homeserver.software.as_ref();
    let metadata = format!(
        "# bridge-doctor support packet\nformat_version: {FORMAT_VERSION}\ndoctor_version: {}\ngenerated_at: {}\nos: {}\narch: {}\nhomeserver_software: {}\nhomeserver_version: {}\ndatabase_type: {}\ndatabase_version: {}\nnote: {}\n",
        yaml_string(env!("CARGO_PKG_VERSION")),
        yaml_string(&report.generated_at),
        yaml_string(std::env::consts::OS),
        yaml_string(std::env::consts::ARCH),
        yaml_string(software_hs.map(|s| s.name.as_str()).unwrap_or("unknown")),
        yaml_string(software_hs.map(|s| s.version.as_str()).unwrap_or("unknown")),
        yaml_string(&database_type),
        yaml_string(&database_version),
        yaml_string(options.note.as_deref().unwrap_or("")),
    );
    let markdown = report_markdown(
        &report,
        &facts,
        options.note.as_deref(),
        &writer.warnings,
        debug_advice.as_deref(),
    );
    writer.add("metadata.yaml", metadata.as_bytes())?;
    writer.add(
        "bridges.json",
        serde_json::to_string_pretty(&bridges)
            .unwrap_or_default()
            .as_bytes(),
    )?;
    writer.add("checks.json", report.to_json().as_bytes())?;
    writer.add("report.md", markdown.as_bytes())?;
    writer.add(
        "redactions.json",
        serde_json::to_string_pretty(&writer.redactions)
            .unwrap_or_default()
            .as_bytes(),
    )?;
    let warnings = writer.warnings.clone();
    let warnings_text = if warnings.is_empty() {
        "nothing was left out\n".to_owned()
    } else {
        warnings.join("\n") + "\n"
    };
    writer.add("warnings.txt", warnings_text.as_bytes())?;
    writer
        .zip
        .finish()?
        .flush()
        .map_err(|source| PacketError::Write {
            path: partial.display().to_string(),
            source,
        })?;
    std::fs::rename(&partial, &path).map_err(|source| PacketError::Write {
        path: path.display().to_string(),
        source,
    })?;
    Ok(Built {
        path,
        warnings,
        debug_advice,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_times_and_software() {
        let at = time::macros::datetime!(2026-11-22 09:05 UTC);
        assert_eq!(file_name(at), "bridge_doctor_packet_2026-11-22-09-05.zip");
        assert_eq!(
            line_time("[2026-11-22 10:51:00,545] [INFO@mau.init] x").as_deref(),
            Some("2026-11-22 10:51:00")
        );
        assert_eq!(
            line_time(r#"{"time":"2026-11-22T10:00:00Z"}"#).as_deref(),
            Some("2026-11-22 10:00:00")
        );
        assert_eq!(
            software_in("[INFO@mau.init] Initializing mautrix-telegram 0.15.3"),
            Some(("mautrix-telegram".into(), "0.15.3".into()))
        );
        assert_eq!(
            software_in(
                r#"{"name":"mautrix-whatsapp","version":"v0.12.0","message":"Initializing bridge"}"#
            ),
            Some(("mautrix-whatsapp".into(), "0.12.0".into()))
        );
    }
}
