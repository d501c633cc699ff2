//! Collecting: every fact and finding of one run (the same engine as
//! `check`), the doctor's database, and which files go into the packet.

use std::path::PathBuf;

use crate::checks::{self, Finding};
use crate::facts::{self, Facts, TargetKind};
use crate::input::config::Config;
use crate::input::log_source::LogSource;
use crate::input::safe_paths::ConfigKind;
use crate::matrix::VersionsError;
use crate::render::report::Report;

use super::write::ConfigFile;

pub struct Collected {
    pub facts: Facts,
    pub findings: Vec<Finding>,
    pub report: Report,
    /// `sqlite` or `postgres`, and the server's (or library's) version.
    pub database: (String, String),
    /// What could not be collected, for `warnings.txt`.
    pub warnings: Vec<String>,
}

pub async fn collect(config: &Config, progress: &super::Progress) -> Collected {
    let facts = facts::gather(config, false, &progress.bar()).await;
    let findings = checks::run_all(&facts);
    let report = Report::new(&facts, findings.clone());
    let database = database_info(config).await;
    let warnings = homeserver_warning(config, &facts).into_iter().collect();
    Collected {
        facts,
        findings,
        report,
        database,
        warnings,
    }
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
    let version = facts::database::server_version(&uri)
        .await
        .unwrap_or_else(|e| format!("unknown ({e})"));
    (kind.to_owned(), version)
}

fn homeserver_warning(config: &Config, facts: &Facts) -> Option<String> {
    let Some(Err(error)) = &facts.homeserver.versions else {
        return None;
    };
    let why = match error {
        VersionsError::Connect { error } => error.message().to_owned(),
        VersionsError::NotMatrix { answer } => {
            format!("not a Matrix answer: {}", answer.summary())
        }
    };
    Some(format!(
        "homeserver {}: no usable answer, live checks skipped and its version unknown: {why}",
        config.homeserver.address
    ))
}

/// Every config and registration, by target, with its format: the doctor's
/// config first (when there is a doctor), then each target's config (also
/// one that could not be read) and registration, then the homeserver's
/// config.
pub fn config_files(config: &Config, facts: &Facts) -> Vec<ConfigFile> {
    let file = |target: &str, path: &std::path::Path, kind| ConfigFile {
        target: target.to_owned(),
        path: path.to_owned(),
        kind,
    };
    let mut files = Vec::new();
    if config.has_doctor {
        files.push(file(
            &config.appservice.id,
            &config.path,
            ConfigKind::Doctor,
        ));
    }
    for target in &facts.targets {
        // The doctor's own config is already first in the list.
        if target.kind == TargetKind::Bridge
            && let Some(bridge_config) = target.config()
        {
            let kind = ConfigKind::Bridge(bridge_config.format);
            files.push(file(&target.id, bridge_config.path(), kind));
        }
        if let Some(Err(problem)) = &target.config {
            files.push(file(&target.id, problem.path(), ConfigKind::Unknown));
        }
        files.push(file(
            &target.id,
            &target.registration_path,
            ConfigKind::Registration,
        ));
    }
    for hs in crate::facts::homeserver_files(&config.homeserver.config) {
        files.push(file("homeserver", &hs, ConfigKind::Homeserver));
    }
    files
}

/// A log to copy: the target it belongs to, and the config that named it
/// (the log is read only as that config's owner could read it).
pub struct NamedLog {
    pub target: String,
    pub source: LogSource,
    pub named_by: PathBuf,
}

/// Every configured log, by target, and the homeserver's.
pub fn log_files(config: &Config, facts: &Facts) -> Vec<NamedLog> {
    let mut logs: Vec<NamedLog> = facts
        .targets
        .iter()
        .flat_map(|t| {
            let named_by = facts::logs_named_by(config, t);
            t.logs.iter().map(|source| NamedLog {
                target: t.id.clone(),
                source: source.clone(),
                named_by: named_by.to_owned(),
            })
        })
        .collect();
    if let Some(log) = &config.homeserver.log {
        logs.push(NamedLog {
            target: "homeserver".to_owned(),
            source: log.clone(),
            named_by: config.path.clone(),
        });
    }
    logs
}
