//! The support packet: one zip with versions, findings, sanitised configs
//! and bounded, sanitised log tails, for handing to someone else.
//!
//! [`build`] runs four steps: collect (`collect.rs`: the same facts and
//! checks as `check`), sanitise (`sanitize.rs`: configs masked in place,
//! their secret values then hunted in the logs), write (`write.rs`: streamed
//! into the zip) and summarise (`summary.rs`, with `report.md` rendered by
//! `render::markdown`). Nothing that cannot be collected stops the packet:
//! it becomes a line of `warnings.txt`.

mod collect;
mod sanitize;
mod summary;
mod write;

use std::path::{Path, PathBuf};

use crate::input::config::Config;
use crate::render::markdown::{self, PacketNotes};
use collect::Collected;
use write::{TailOptions, Writer};

pub const FORMAT_VERSION: u32 = 1;
pub const DEFAULT_MAX_LOG_BYTES: u64 = 20 * 1024 * 1024;

pub struct PacketOptions {
    /// A folder (the name is generated) or a file name.
    pub output: Option<PathBuf>,
    pub note: Option<String>,
    pub max_log_bytes: u64,
    /// Only log lines from this time on (`2026-11-22 10:00` or RFC 3339).
    pub since: Option<String>,
    pub progress: Progress,
}

/// Where the packet says what it is doing, step by step.
pub enum Progress {
    Silent,
    /// A line per step on stderr, for a person at a terminal.
    Terminal,
    /// Each step as a message (the bot edits its notice with them).
    Steps(tokio::sync::mpsc::UnboundedSender<String>),
}

/// A bar counting targets, for a person at a terminal.
pub fn targets_bar() -> indicatif::ProgressBar {
    indicatif::ProgressBar::new(0).with_style(
        indicatif::ProgressStyle::with_template("  {msg} {pos}/{len} targets {wide_bar}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    )
}

impl Progress {
    /// The bar for counting targets: drawn only on a terminal.
    pub fn bar(&self) -> indicatif::ProgressBar {
        match self {
            Progress::Terminal => targets_bar(),
            _ => indicatif::ProgressBar::hidden(),
        }
    }

    /// The bar for the bytes of one log copied: drawn only on a terminal.
    pub fn bytes_bar(&self, name: &str, total: u64) -> indicatif::ProgressBar {
        match self {
            Progress::Terminal => indicatif::ProgressBar::new(total)
                .with_style(
                    indicatif::ProgressStyle::with_template(
                        "  {msg} {bytes}/{total_bytes} {wide_bar} {bytes_per_sec}",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                )
                .with_message(name.to_owned()),
            _ => indicatif::ProgressBar::hidden(),
        }
    }

    pub fn say(&self, step: &str) {
        match self {
            Progress::Silent => {}
            Progress::Terminal => eprintln!("  {step}"),
            Progress::Steps(steps) => {
                let _ = steps.send(step.to_owned());
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PacketError {
    #[error("cannot write the packet into {folder}: {}", write_advice(source))]
    Write {
        folder: String,
        source: std::io::Error,
    },
    #[error("cannot read {path} for the packet: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write the zip: {0}")]
    Zip(zip::result::ZipError),
}

/// Why the packet could not be written, and what to do about it.
fn write_advice(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => {
            "no space left on device. Free some space there, or write the packet elsewhere with -o."
                .to_owned()
        }
        _ => format!("{error}. Check the folder exists and is writable (-o)."),
    }
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

pub async fn build(config: &Config, options: &PacketOptions) -> Result<Built, PacketError> {
    let path = output_path(options.output.as_deref(), time::OffsetDateTime::now_utc());
    options
        .progress
        .say("collecting: probes, databases, logs and every check");
    let collected = collect::collect(config, &options.progress).await;
    let mut writer = Writer::create(&path, &options.progress)?;
    writer.warnings.extend(collected.warnings.iter().cloned());
    writer.add_configs(&collect::config_files(config, &collected.facts))?;
    let tail = TailOptions {
        max_bytes: options.max_log_bytes,
        places: config.log_places.clone(),
        since: options.since.clone(),
    };
    let logs = collect::log_files(config, &collected.facts);
    let software = writer.add_logs(&logs, &tail)?;
    options
        .progress
        .say("summarising: report, bridges, redactions");
    let debug_advice = summary::debug_advice(&collected.findings);
    let notes = PacketNotes {
        note: options.note.as_deref(),
        warnings: &writer.warnings.clone(),
        debug_advice: debug_advice.as_deref(),
    };
    summarise(&mut writer, &collected, &notes, &software)?;
    let warnings = writer.warnings.clone();
    writer.finish(&path)?;
    Ok(Built {
        path,
        warnings,
        debug_advice,
    })
}

/// The summary files, after the configs and logs they describe.
fn summarise<W: std::io::Write + std::io::Seek>(
    writer: &mut Writer<W>,
    collected: &Collected,
    notes: &PacketNotes,
    software: &[(String, summary::Software)],
) -> Result<(), PacketError> {
    let report = &collected.report;
    writer.add("metadata.yaml", &summary::metadata(collected, notes.note))?;
    writer.add("bridges.json", &summary::bridges(collected, software))?;
    writer.add("checks.json", &crate::render::json::report(report))?;
    let markdown = markdown::packet_report(report, &collected.facts, notes);
    writer.add("report.md", &markdown)?;
    let redactions = crate::render::json::pretty(&writer.redactions);
    writer.add("redactions.json", &redactions)?;
    let warnings_text = if writer.warnings.is_empty() {
        "nothing was left out\n".to_owned()
    } else {
        writer.warnings.join("\n") + "\n"
    };
    writer.add("warnings.txt", &warnings_text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_file_names_are_utc_minutes() {
        let at = time::macros::datetime!(2026-11-22 09:05 UTC);
        assert_eq!(file_name(at), "bridge_doctor_packet_2026-11-22-09-05.zip");
    }
}
