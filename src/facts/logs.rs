//! Log windows: the recent part of every configured log, scanned with the
//! knowledge base.

use std::path::Path;

use super::{LogFacts, TargetFacts};
use crate::input::config::Config;
use crate::knowledge::scan::Scanner;

/// Opens `path` positioned at its last `window` bytes.
pub fn open_tail(path: &Path, window: u64) -> std::io::Result<std::fs::File> {
    use std::io::{Seek, SeekFrom};
    let mut file = std::fs::File::open(path)?;
    let length = file.metadata()?.len();
    file.seek(SeekFrom::Start(length.saturating_sub(window)))?;
    Ok(file)
}

/// Scans the recent part of every configured log with the knowledge base.
pub(super) fn scan_logs(config: &Config, targets: &mut [TargetFacts]) {
    let scanner = Scanner::new();
    let window = config.log_window_bytes;
    let homeserver = config.homeserver.log.as_ref().map(|path| {
        let mut scan = scanner.new_scan();
        let read = open_tail(path, window)
            .and_then(|file| scanner.scan(file, &path.display().to_string(), &mut scan));
        (scan, read.err().map(|e| format!("{}: {e}", path.display())))
    });
    for target in targets.iter_mut() {
        if target.logs.is_empty() && homeserver.is_none() {
            continue;
        }
        let mut facts = LogFacts::default();
        let mut scan = scanner.new_scan();
        for path in &target.logs {
            let name = path.display().to_string();
            if let Err(err) =
                open_tail(path, window).and_then(|file| scanner.scan(file, &name, &mut scan))
            {
                facts.unreadable.push(format!("{name}: {err}"));
            }
        }
        facts.hits = scan.matched().cloned().collect();
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
