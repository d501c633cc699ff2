//! Log windows: the recent part of every configured log (a file, a unit's
//! journal, a container's json-file log), scanned with the knowledge base.

use std::io::Read;
use std::path::Path;

use super::named::{Refused, may_read_journal, open_named};
use super::{LogFacts, TargetFacts, docker_logs, journald};
use crate::input::config::Config;
use crate::input::log_source::{LogPlaces, LogSource};
use crate::knowledge::scan::Scanner;

/// The recent part of one log, ready to read.
pub struct Window {
    pub reader: Box<dyn Read + Send>,
    /// How many bytes it holds.
    pub length: u64,
    /// The log holds more than the window.
    pub cut: bool,
    /// The first line is the end of a line (a file read from the middle).
    pub starts_mid_line: bool,
}

/// Opens the last `window` bytes of a log. A log a config names
/// (`named_by`) is read only as that config's owner could (`named.rs`: a
/// file or a container's log by its permissions, a unit's journal when the
/// owner may read the system journal); one the caller named itself
/// (`explain`) as this user may. The error is
/// the one line the report and `warnings.txt` show.
pub fn open_window(
    source: &LogSource,
    named_by: Option<&Path>,
    window: u64,
    places: &LogPlaces,
) -> Result<Window, String> {
    match source {
        LogSource::File(path) => open_tail(path, named_by, window).map_err(|err| err.to_string()),
        LogSource::Journald(unit) => {
            if let Some(config) = named_by {
                may_read_journal(&source.to_string(), config).map_err(|err| err.to_string())?;
            }
            let journal = journald::read_window(unit, places, window)?;
            Ok(Window {
                length: journal.len(),
                cut: journal.cut,
                reader: Box::new(journal),
                starts_mid_line: false,
            })
        }
        LogSource::Docker(name) => {
            let container = docker_logs::read_window(name, &places.docker_root, named_by, window)?;
            Ok(Window {
                length: container.text.len() as u64,
                cut: container.cut,
                reader: Box::new(std::io::Cursor::new(container.text)),
                starts_mid_line: false,
            })
        }
    }
}

/// A buffer for a window of `bytes` rendered in memory, reserved at once
/// when the system grants it: growing by doubling would hold the old and
/// the new buffer at once, twice the window. A few lines past the window
/// fit in the reserve too.
pub(super) fn buffer_for(bytes: u64) -> Vec<u8> {
    let mut buffer = Vec::new();
    let wanted = usize::try_from(bytes.saturating_add(1 << 20)).unwrap_or(usize::MAX);
    // Untouched, the reserve costs address space, not memory.
    let _ = buffer.try_reserve_exact(wanted);
    buffer
}

/// The file at `path` positioned at its last `window` bytes.
fn open_tail(path: &Path, named_by: Option<&Path>, window: u64) -> Result<Window, Refused> {
    use std::io::{Seek, SeekFrom};
    let io_error = |source| Refused::Io {
        path: path.display().to_string(),
        source,
    };
    let mut file = match named_by {
        Some(config) => open_named(path, config)?,
        None => std::fs::File::open(path).map_err(io_error)?,
    };
    // The size of the file opened, not of whatever the path names now.
    let length = file.metadata().map_err(io_error)?.len();
    let start = length.saturating_sub(window);
    // Only when cut: a pipe the caller names (`explain <(zcat log.gz)`)
    // cannot seek, and is read whole.
    if start > 0 {
        file.seek(SeekFrom::Start(start)).map_err(io_error)?;
    }
    Ok(Window {
        reader: Box::new(file),
        length: length - start,
        cut: start > 0,
        starts_mid_line: start > 0,
    })
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
    source: &LogSource,
    named_by: &Path,
    config: &Config,
) -> Option<String> {
    let name = source.to_string();
    match open_window(
        source,
        Some(named_by),
        config.log_window_bytes,
        &config.log_places,
    ) {
        Ok(window) => scanner
            .scan(window.reader, &name, scan)
            .err()
            .map(|err| format!("{name}: {err}")),
        Err(unavailable) => Some(unavailable),
    }
}

/// Scans the recent part of every configured log with the knowledge base.
pub(super) fn scan_logs(config: &Config, targets: &mut [TargetFacts]) {
    let scanner = Scanner::new();
    let homeserver = config.homeserver.log.as_ref().map(|source| {
        let mut scan = scanner.new_scan();
        let error = scan_one(&scanner, &mut scan, source, &config.path, config);
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
        for source in &target.logs {
            facts
                .unreadable
                .extend(scan_one(&scanner, &mut scan, source, named_by, config));
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
