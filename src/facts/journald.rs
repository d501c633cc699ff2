//! A systemd unit's recent journal, read with libsystemd's sd-journal API
//! (the journal's own maintained reader, `sd_journal.rs`) or, where that
//! library is missing, with `journalctl` (its export stream is binary-safe
//! and carries each entry's time). Entries are read newest first and the
//! reading stops once the window is full, so a large journal costs only its
//! window.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

use super::sd_journal;
use crate::input::log_source::LogPlaces;

/// The rendered window (`<RFC 3339 time> <MESSAGE>` lines): kept newest
/// first, as the entries are read, in one buffer, and read oldest
/// first without a second copy.
#[derive(Debug)]
pub struct JournalWindow {
    text: Vec<u8>,
    /// Where each entry starts in `text`, newest first.
    starts: Vec<usize>,
    /// Older entries were left out.
    pub cut: bool,
    /// Entries not read yet; the next one is `starts[unread - 1]`.
    unread: usize,
    /// How much of that entry was read already.
    read_of_entry: usize,
}

impl JournalWindow {
    fn new(window: u64) -> JournalWindow {
        JournalWindow {
            text: super::logs::buffer_for(window),
            starts: Vec::new(),
            cut: false,
            unread: 0,
            read_of_entry: 0,
        }
    }

    /// Adds the next older entry.
    fn push(&mut self, clock: &mut Clock, micros: Option<i64>, message: &[u8]) {
        self.starts.push(self.text.len());
        clock.render(&mut self.text, micros, message);
    }

    pub fn len(&self) -> u64 {
        self.text.len() as u64
    }

    fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    fn finished(mut self, cut: bool) -> JournalWindow {
        self.cut = cut;
        self.unread = self.starts.len();
        self
    }
}

impl Read for JournalWindow {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let mut written = 0;
        while written < buffer.len() && self.unread > 0 {
            let start = self.starts[self.unread - 1] + self.read_of_entry;
            let end = self
                .starts
                .get(self.unread)
                .map_or(self.text.len(), |&newer| newer);
            let count = (end - start).min(buffer.len() - written);
            buffer[written..written + count].copy_from_slice(&self.text[start..start + count]);
            written += count;
            self.read_of_entry += count;
            if start + count == end {
                self.unread -= 1;
                self.read_of_entry = 0;
            }
        }
        Ok(written)
    }
}

/// How a journal is read.
#[derive(Clone, Copy)]
enum Reader {
    Library(&'static sd_journal::Library),
    Journalctl,
}

impl Reader {
    /// The library when it loads, else `journalctl`, which also takes
    /// `--unit` patterns (`*`, `?`), matched against the journal's units.
    /// `BRIDGE_DOCTOR_JOURNAL_READER=journalctl` chooses `journalctl`.
    fn for_unit(unit: &str) -> Reader {
        let chosen = std::env::var_os("BRIDGE_DOCTOR_JOURNAL_READER");
        if chosen.is_some_and(|reader| reader == "journalctl") || unit.contains(['*', '?']) {
            return Reader::Journalctl;
        }
        sd_journal::library().map_or(Reader::Journalctl, Reader::Library)
    }
}

/// The last `window` bytes of `unit`'s journal as lines; the error is the
/// line the report shows.
pub fn read_window(unit: &str, places: &LogPlaces, window: u64) -> Result<JournalWindow, String> {
    read_window_with(Reader::for_unit(unit), unit, places, window)
}

fn read_window_with(
    reader: Reader,
    unit: &str,
    places: &LogPlaces,
    window: u64,
) -> Result<JournalWindow, String> {
    let entries = match reader {
        Reader::Library(library) => read_with_library(library, unit, places, window)?,
        Reader::Journalctl => read_with_journalctl(unit, places, window)?,
    };
    if entries.is_empty() {
        return Err(no_entries(unit, places, None));
    }
    Ok(entries)
}

/// Reads as `journalctl --unit UNIT --reverse` would: the same entries
/// (`add_unit_matches`), newest first, until the window is full.
fn read_with_library(
    library: &'static sd_journal::Library,
    unit: &str,
    places: &LogPlaces,
    window: u64,
) -> Result<JournalWindow, String> {
    let failed = |err: std::io::Error| {
        format!(
            "journald:{unit}: cannot read {}: {err}: check --journal-dir",
            place(places)
        )
    };
    let mut journal = library.open(places.journal.as_deref()).map_err(failed)?;
    add_unit_matches(&mut journal, &unit_name(unit)).map_err(failed)?;
    journal.seek_tail().map_err(failed)?;
    let mut entries = JournalWindow::new(window);
    let mut clock = Clock::default();
    while journal.previous().map_err(failed)? {
        // The time first: the message's bytes last only until the next call.
        let micros = journal.realtime_micros().ok();
        if let Some(message) = journal.message().map_err(failed)? {
            entries.push(
                &mut clock,
                micros.and_then(|m| i64::try_from(m).ok()),
                message,
            );
        }
        if entries.len() >= window {
            return Ok(entries.finished(true));
        }
    }
    Ok(entries.finished(false))
}

/// The unit's name as `journalctl --unit` completes it: `.service` added
/// when the name has no unit type.
fn unit_name(unit: &str) -> String {
    const TYPES: [&str; 11] = [
        "service",
        "socket",
        "target",
        "device",
        "mount",
        "automount",
        "swap",
        "timer",
        "path",
        "slice",
        "scope",
    ];
    match unit.rsplit_once('.') {
        Some((_, kind)) if TYPES.contains(&kind) => unit.to_owned(),
        _ => format!("{unit}.service"),
    }
}

/// journalctl's matches for a unit (systemd's `add_matches_for_unit`):
/// the unit's own lines, its coredumps, systemd's lines about it, and
/// those of other root daemons about it; a slice's units too.
fn add_unit_matches(journal: &mut sd_journal::Journal, unit: &str) -> std::io::Result<()> {
    let groups: [&[String]; 4] = [
        &[format!("_SYSTEMD_UNIT={unit}")],
        &[
            "MESSAGE_ID=fc2e22bc6ee647b6b90729ab34a250b1".to_owned(),
            "_UID=0".to_owned(),
            format!("COREDUMP_UNIT={unit}"),
        ],
        &["_PID=1".to_owned(), format!("UNIT={unit}")],
        &["_UID=0".to_owned(), format!("OBJECT_SYSTEMD_UNIT={unit}")],
    ];
    let slice = [format!("_SYSTEMD_SLICE={unit}")];
    let groups = groups
        .into_iter()
        .chain(unit.ends_with(".slice").then_some(&slice[..]));
    for (index, group) in groups.enumerate() {
        if index > 0 {
            journal.add_disjunction()?;
        }
        for field in group {
            journal.add_match(field.as_bytes())?;
        }
    }
    Ok(())
}

fn read_with_journalctl(
    unit: &str,
    places: &LogPlaces,
    window: u64,
) -> Result<JournalWindow, String> {
    let mut child = journalctl(unit, places)
        .spawn()
        .map_err(|err| match err.kind() {
            std::io::ErrorKind::NotFound => format!(
                "journald:{unit}: journalctl is not installed here: run the doctor where the journal is, or name the unit's log file instead"
            ),
            _ => format!("journald:{unit}: cannot run journalctl: {err}"),
        })?;
    let stderr = child.stderr.take().map(|stderr| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.take(64 * 1024).read_to_string(&mut text);
            text
        })
    });
    let stdout = child.stdout.take().expect("stdout is piped");
    let newest_first = read_entries(BufReader::with_capacity(1 << 20, stdout), window);
    // Enough read (or a read error): journalctl need not go on.
    let _ = child.kill();
    let status = child.wait();
    let complaint = stderr
        .and_then(|thread| thread.join().ok())
        .unwrap_or_default();
    let window = newest_first
        .map_err(|err| format!("journald:{unit}: reading journalctl's output: {err}"))?;
    let failed = status.is_ok_and(|s| !s.success()) && !complaint.trim().is_empty();
    if window.is_empty() && failed {
        return Err(no_entries(unit, places, Some(complaint.trim())));
    }
    Ok(window)
}

fn journalctl(unit: &str, places: &LogPlaces) -> Command {
    let mut command = Command::new("journalctl");
    command.args([
        "--unit",
        unit,
        "--reverse",
        "--output=export",
        "--output-fields=MESSAGE",
        "--no-pager",
        "--quiet",
    ]);
    if let Some(journal) = &places.journal {
        command
            .arg(if journal.is_file() {
                "--file"
            } else {
                "--directory"
            })
            .arg(journal);
    }
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

fn place(places: &LogPlaces) -> String {
    places.journal.as_ref().map_or_else(
        || "the system's journal".to_owned(),
        |p| p.display().to_string(),
    )
}

fn no_entries(unit: &str, places: &LogPlaces, complaint: Option<&str>) -> String {
    let place = place(places);
    match complaint {
        Some(why) => format!(
            "journald:{unit}: journalctl could not read {place}: {why}: check --journal-dir"
        ),
        None => format!(
            "journald:{unit}: no journal entries for this unit in {place}: check the unit's name (`systemctl list-units`), or give --journal-dir where its journal is"
        ),
    }
}

/// Reads export-format entries (`KEY=value` lines, or `KEY`, a 64-bit
/// little-endian length and the raw bytes for binary values; a blank line
/// ends an entry) until `window` bytes are rendered.
fn read_entries(mut export: impl BufRead, window: u64) -> std::io::Result<JournalWindow> {
    let mut entries = JournalWindow::new(window);
    let mut clock = Clock::default();
    let mut time = None;
    let mut message = Vec::new();
    let mut has_message = false;
    let mut line = Vec::new();
    loop {
        line.clear();
        if export.read_until(b'\n', &mut line)? == 0 {
            return Ok(entries.finished(false));
        }
        if line == b"\n" {
            if std::mem::take(&mut has_message) {
                entries.push(&mut clock, time.take(), &message);
            }
            if entries.len() >= window {
                return Ok(entries.finished(true));
            }
            continue;
        }
        let field = line.strip_suffix(b"\n").unwrap_or(&line);
        let (key, value) = match memchr::memchr(b'=', field) {
            Some(eq) => (&field[..eq], Some(&field[eq + 1..])),
            None => (field, None),
        };
        match (key, value) {
            (b"MESSAGE", Some(text)) => {
                message.clear();
                message.extend_from_slice(text);
                has_message = true;
            }
            (b"__REALTIME_TIMESTAMP", Some(micros)) => {
                time = std::str::from_utf8(micros)
                    .ok()
                    .and_then(|t| t.parse().ok());
            }
            (_, Some(_)) => {}
            (_, None) => {
                let is_message = key == b"MESSAGE";
                let mut sink = Vec::new();
                let into = if is_message { &mut message } else { &mut sink };
                read_binary_value(&mut export, into)?;
                has_message |= is_message;
            }
        }
    }
}

/// A binary field's value: its length (64-bit little-endian), the bytes
/// and a newline.
fn read_binary_value(export: &mut impl BufRead, into: &mut Vec<u8>) -> std::io::Result<()> {
    let mut length = [0u8; 8];
    export.read_exact(&mut length)?;
    into.clear();
    export.take(u64::from_le_bytes(length)).read_to_end(into)?;
    export.read_exact(&mut [0u8; 1])
}

/// Renders lines with their times; a journal has many entries per second,
/// so the date and time of day are formatted once per second.
#[derive(Default)]
struct Clock {
    second: Option<i64>,
    shown: String,
}

impl Clock {
    /// `<time> <message>\n`, the time as RFC 3339 with microseconds in
    /// UTC; a message of several lines keeps them.
    fn render(&mut self, text: &mut Vec<u8>, micros: Option<i64>, message: &[u8]) {
        if let Some(micros) = micros {
            let second = micros.div_euclid(1_000_000);
            if self.second != Some(second) {
                self.second = Some(second);
                let format = time::macros::format_description!(
                    "[year]-[month]-[day]T[hour]:[minute]:[second]"
                );
                self.shown = time::OffsetDateTime::from_unix_timestamp(second)
                    .ok()
                    .and_then(|t| t.format(&format).ok())
                    .unwrap_or_default();
            }
            if !self.shown.is_empty() {
                let fraction = micros.rem_euclid(1_000_000);
                text.extend_from_slice(format!("{}.{fraction:06}Z ", self.shown).as_bytes());
            }
        }
        text.extend_from_slice(message.strip_suffix(b"\n").unwrap_or(message));
        text.push(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(time: i64, message: &[u8]) -> Vec<u8> {
        entry_with("", time, message)
    }

    /// An export-format entry with more `fields` (`KEY=value` lines).
    fn entry_with(fields: &str, time: i64, message: &[u8]) -> Vec<u8> {
        let mut entry = format!(
            "__CURSOR=s=1\n__REALTIME_TIMESTAMP={time}\n__MONOTONIC_TIMESTAMP={time}\n_BOOT_ID=0123456789abcdef0123456789abcdef\n{fields}"
        )
        .into_bytes();
        if message.contains(&b'\n') || std::str::from_utf8(message).is_err() {
            entry.extend_from_slice(b"MESSAGE\n");
            entry.extend_from_slice(&(message.len() as u64).to_le_bytes());
            entry.extend_from_slice(message);
        } else {
            entry.extend_from_slice(b"MESSAGE=");
            entry.extend_from_slice(message);
        }
        entry.extend_from_slice(b"\n\n");
        entry
    }

    #[test]
    fn entries_come_out_oldest_first_with_their_time_binary_ones_too() {
        // journalctl --reverse: newest first.
        let export = [
            entry(1_764_760_002_000_000, b"third \xff"),
            entry(1_764_760_001_500_000, b"second\nits traceback"),
            entry(1_764_760_000_000_001, b"first"),
        ]
        .concat();
        let mut window = read_entries(export.as_slice(), 1 << 20).unwrap();
        let mut text = Vec::new();
        // A small buffer reads across entries' ends too.
        std::io::copy(
            &mut std::io::BufReader::with_capacity(5, &mut window),
            &mut text,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&text),
            "2025-12-03T11:06:40.000001Z first\n\
             2025-12-03T11:06:41.500000Z second\nits traceback\n\
             2025-12-03T11:06:42.000000Z third \u{fffd}\n"
        );
        assert!(!window.cut);
    }

    #[test]
    fn reading_stops_once_the_window_is_full() {
        let export = [
            entry(3, b"newest line"),
            entry(2, b"older"),
            entry(1, b"oldest"),
        ]
        .concat();
        let mut window = read_entries(export.as_slice(), 20).unwrap();
        assert!(window.cut);
        let mut text = String::new();
        window.read_to_string(&mut text).unwrap();
        assert!(text.ends_with(" newest line\n"), "{text}");
        assert_eq!(text.lines().count(), 1, "{text}");
    }

    const UNIT: &str = "mautrix-telegram.service";

    /// Real journal files in a new folder, written by
    /// systemd-journal-remote (scripts/test.sh installs it) from `export`.
    fn real_journal(export: &[u8]) -> (tempfile::TempDir, LogPlaces) {
        use std::io::Write;
        let folder = tempfile::tempdir().unwrap();
        let mut remote = Command::new("/lib/systemd/systemd-journal-remote")
            .arg(format!(
                "--output={}",
                folder.path().join("remote.journal").display()
            ))
            .arg("-")
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("systemd-journal-remote (scripts/test.sh installs it)");
        remote.stdin.take().unwrap().write_all(export).unwrap();
        let out = remote.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let places = LogPlaces {
            journal: Some(folder.path().to_owned()),
            ..LogPlaces::default()
        };
        (folder, places)
    }

    fn library() -> Reader {
        Reader::Library(sd_journal::library().expect("libsystemd.so.0 comes with systemd"))
    }

    fn text(reader: Reader, unit: &str, places: &LogPlaces, window: u64) -> (String, bool) {
        let mut window = read_window_with(reader, unit, places, window).unwrap();
        let mut text = Vec::new();
        window.read_to_end(&mut text).unwrap();
        (String::from_utf8_lossy(&text).into_owned(), window.cut)
    }

    #[test]
    fn the_library_reads_the_window_journalctl_reads_from_a_real_journal() {
        let own = format!("_SYSTEMD_UNIT={UNIT}\n_UID=1000\n_PID=4242\n");
        let export = [
            entry_with(&own, 1_764_760_000_000_001, b"[INFO] starting"),
            entry_with(
                &format!("_PID=1\n_UID=0\nUNIT={UNIT}\n"),
                1_764_760_000_500_000,
                b"Started mautrix-telegram.service.",
            ),
            entry_with(&own, 1_764_760_001_000_000, b"Traceback\n  line 2 \xff\xfe"),
            entry_with(
                "_SYSTEMD_UNIT=other.service\n",
                1_764_760_001_100_000,
                b"other noise",
            ),
            entry_with(
                &format!("_UID=1000\nOBJECT_SYSTEMD_UNIT={UNIT}\n"),
                1_764_760_001_200_000,
                b"a user's claim about the unit",
            ),
            entry_with(
                &format!("_UID=0\nOBJECT_SYSTEMD_UNIT={UNIT}\n"),
                1_764_760_001_300_000,
                b"root's daemon about the unit",
            ),
            entry_with(&own, 1_764_760_002_000_000, b"[ERROR] MUnknownToken"),
        ]
        .concat();
        let (_folder, places) = real_journal(&export);
        let (through_library, cut) = text(library(), UNIT, &places, 1 << 20);
        assert_eq!(
            through_library,
            "2025-12-03T11:06:40.000001Z [INFO] starting\n\
             2025-12-03T11:06:40.500000Z Started mautrix-telegram.service.\n\
             2025-12-03T11:06:41.000000Z Traceback\n  line 2 \u{fffd}\u{fffd}\n\
             2025-12-03T11:06:41.300000Z root's daemon about the unit\n\
             2025-12-03T11:06:42.000000Z [ERROR] MUnknownToken\n"
        );
        assert!(!cut);
        assert_eq!(
            text(Reader::Journalctl, UNIT, &places, 1 << 20),
            (through_library.clone(), false)
        );
        // A name without its type is a service, as journalctl takes it.
        let (without_type, _) = text(library(), "mautrix-telegram", &places, 1 << 20);
        assert_eq!(without_type, through_library);
        // A window of two entries ends at the same entry.
        let (newest, cut) = text(library(), UNIT, &places, 60);
        assert!(cut);
        assert_eq!(newest.lines().count(), 2, "{newest}");
        assert_eq!(text(Reader::Journalctl, UNIT, &places, 60), (newest, true));
    }

    #[test]
    fn the_library_says_in_one_line_what_it_cannot_read() {
        let export = entry_with("_SYSTEMD_UNIT=other.service\n", 1, b"other noise");
        let (folder, places) = real_journal(&export);
        let err = read_window_with(library(), UNIT, &places, 1 << 20).unwrap_err();
        assert_eq!(
            err,
            format!(
                "journald:{UNIT}: no journal entries for this unit in {}: check the unit's name (`systemctl list-units`), or give --journal-dir where its journal is",
                folder.path().display()
            )
        );
        let missing = LogPlaces {
            journal: Some(folder.path().join("gone")),
            ..LogPlaces::default()
        };
        let err = read_window_with(library(), UNIT, &missing, 1 << 20).unwrap_err();
        assert!(
            err.starts_with(&format!(
                "journald:{UNIT}: cannot read {}: ",
                folder.path().join("gone").display()
            )),
            "{err}"
        );
        assert!(err.ends_with(": check --journal-dir"), "{err}");
    }
}
