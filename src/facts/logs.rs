//! Log windows: the recent part of every configured log, scanned with the
//! knowledge base.

use std::path::Path;

use super::named::{Refused, open_named};
use super::{LogFacts, TargetFacts};
use crate::input::config::Config;
use crate::knowledge::scan::Scanner;

/// Opens the log at `path`, named by the config at `named_by`, positioned
/// at its last `window` bytes; refused as `named.rs` says.
pub fn open_tail(path: &Path, named_by: &Path, window: u64) -> Result<std::fs::File, Refused> {
    use std::io::{Seek, SeekFrom};
    let mut file = open_named(path, named_by)?;
    let io_error = |source| Refused::Io {
        path: path.display().to_string(),
        source,
    };
    let length = file.metadata().map_err(io_error)?.len();
    file.seek(SeekFrom::Start(length.saturating_sub(window)))
        .map_err(io_error)?;
    Ok(file)
}

/// The config that names a target's logs: the doctor's own (its
/// `bridges[].logs`); without a doctor (`--homeserver`) the bridge's
/// config, whose logging section they were read from.
pub fn logs_named_by<'a>(config: &'a Config, target: &'a TargetFacts) -> &'a Path {
    let bridge_config = target.config.as_ref().map(|read| match read {
        Ok(bridge) => bridge.path(),
        Err(problem) => problem.path(),
    });
    match bridge_config {
        Some(path) if !config.has_doctor => path,
        _ => &config.path,
    }
}

/// Scans the recent part of one log into `scan`; what kept it from being
/// read, as a line for `config.unreadable`.
fn scan_one(
    scanner: &Scanner,
    scan: &mut crate::knowledge::scan::Scan,
    path: &Path,
    named_by: &Path,
    window: u64,
) -> Option<String> {
    let name = path.display().to_string();
    match open_tail(path, named_by, window) {
        Ok(file) => scanner
            .scan(file, &name, scan)
            .err()
            .map(|err| format!("{name}: {err}")),
        Err(refused) => Some(refused.to_string()),
    }
}

/// Scans the recent part of every configured log with the knowledge base.
pub(super) fn scan_logs(config: &Config, targets: &mut [TargetFacts]) {
    let scanner = Scanner::new();
    let window = config.log_window_bytes;
    let homeserver = config.homeserver.log.as_ref().map(|path| {
        let mut scan = scanner.new_scan();
        let error = scan_one(&scanner, &mut scan, path, &config.path, window);
        (scan, error)
    });
    for target in targets.iter_mut() {
        if target.logs.is_empty() && homeserver.is_none() {
            continue;
        }
        let mut facts = LogFacts {
            read_at_ms: crate::shared::now_ms(),
            ..LogFacts::default()
        };
        let mut scan = scanner.new_scan();
        let named_by = logs_named_by(config, target);
        for path in &target.logs {
            facts
                .unreadable
                .extend(scan_one(&scanner, &mut scan, path, named_by, window));
        }
        facts.hits = scan.all().cloned().collect();
        facts.files_without_debug = scan.files_without_debug;
        if let Some((hs_scan, error)) = &homeserver {
            let id = target.appservice_id().unwrap_or_default().to_owned();
            let url = target
                .registration()
                .and_then(|r| r.url())
                .unwrap_or_default()
                .to_owned();
            let mine = hs_scan.mentioning(&[&format!(" {id} "), &format!("AS ID {id}"), &url]);
            facts.hits.extend(mine.iter().cloned());
            facts.homeserver_hits = Some(match error {
                Some(error) => Err(error.clone()),
                None => Ok(mine),
            });
            facts.unreadable.extend(error.clone());
        }
        target.logs_scanned = Some(facts);
    }
}
