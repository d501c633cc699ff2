//! Writing the zip: whole files, sanitised configs, and log tails streamed
//! line by line (a large log costs one line of memory, not its size).

use std::io::{BufRead, BufReader, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use regex::Regex;
use zip::ZipWriter;
use zip::write::SimpleFileOptions;

use super::collect::NamedLog;
use super::sanitize::{Redaction, sanitize_config};
use super::summary::{Software, software_in};
use super::{PacketError, Progress};
use crate::facts::open_window;
use crate::input::log_source::LogPlaces;
use crate::input::safe_paths::ConfigKind;
use crate::shared::private;

/// Log lines are cut at this length in the packet.
const MAX_LINE: usize = 16 * 1024;
/// Per log file, redactions listed one by one before they are summed up.
const MAX_LISTED_REDACTIONS: usize = 500;

/// A failure to write the packet, named by the folder it goes to.
fn write_failure(folder: &Path) -> impl FnOnce(std::io::Error) -> PacketError + '_ {
    move |source| PacketError::Write {
        folder: folder.display().to_string(),
        source,
    }
}

fn zip_failure(folder: &Path) -> impl FnOnce(zip::result::ZipError) -> PacketError + '_ {
    move |error| match error {
        zip::result::ZipError::Io(source) => write_failure(folder)(source),
        other => PacketError::Zip(other),
    }
}

/// The zip's file, which remembers its first failure. After it, writes and
/// seeks pretend to succeed (keeping a consistent position): the zip
/// library finalises the archive again when it is dropped after an error,
/// and prints to stderr when that fails too. The packet reports the first
/// failure itself, and the file is deleted anyway.
pub struct FirstFailure<W> {
    inner: W,
    failed: Option<std::io::ErrorKind>,
    position: u64,
    end: u64,
}

impl<W> FirstFailure<W> {
    fn new(inner: W) -> FirstFailure<W> {
        FirstFailure {
            inner,
            failed: None,
            position: 0,
            end: 0,
        }
    }

    /// Where a pretended seek lands.
    fn pretend_seek(&self, to: std::io::SeekFrom) -> u64 {
        let offset = |base: u64, by: i64| base.saturating_add_signed(by);
        match to {
            std::io::SeekFrom::Start(at) => at,
            std::io::SeekFrom::Current(by) => offset(self.position, by),
            std::io::SeekFrom::End(by) => offset(self.end, by),
        }
    }

    fn moved_to(&mut self, position: u64) -> u64 {
        self.position = position;
        self.end = self.end.max(position);
        position
    }
}

impl<W: Write> Write for FirstFailure<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let written = match self.failed {
            Some(_) => buf.len(),
            None => self
                .inner
                .write(buf)
                .inspect_err(|e| self.failed = Some(e.kind()))?,
        };
        self.moved_to(self.position + written as u64);
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self.failed {
            Some(_) => Ok(()),
            None => self
                .inner
                .flush()
                .inspect_err(|e| self.failed = Some(e.kind())),
        }
    }
}

impl<W: Seek> Seek for FirstFailure<W> {
    fn seek(&mut self, to: std::io::SeekFrom) -> std::io::Result<u64> {
        let position = match self.failed {
            Some(_) => self.pretend_seek(to),
            None => self
                .inner
                .seek(to)
                .inspect_err(|e| self.failed = Some(e.kind()))?,
        };
        Ok(self.moved_to(position))
    }
}

type ZipFile = FirstFailure<std::io::BufWriter<std::fs::File>>;

/// The zip being written, with what the packet records about it.
pub struct Writer<'p, W: Write + Seek> {
    zip: ZipWriter<W>,
    /// Where the packet goes: what a failure to write names.
    folder: PathBuf,
    pub redactions: Vec<Redaction>,
    pub warnings: Vec<String>,
    progress: &'p Progress,
    /// Entry names given out, so two files of one name stay apart.
    taken: Vec<String>,
    /// The zip under way: a new file of a random name in the packet's
    /// folder (nobody can plant a link at it in advance), removed when the
    /// packet fails.
    partial: tempfile::TempPath,
}

impl<'p> Writer<'p, ZipFile> {
    /// A zip to become `path`, written beside it first.
    pub fn create(path: &Path, progress: &'p Progress) -> Result<Self, PacketError> {
        let folder = private::folder_of(path);
        let file = private::new_file_in(folder, ".bridge_doctor_packet_")
            .map_err(write_failure(folder))?;
        let (file, partial) = file.into_parts();
        Ok(Writer {
            zip: ZipWriter::new(FirstFailure::new(std::io::BufWriter::new(file))),
            folder: folder.to_owned(),
            redactions: Vec::new(),
            warnings: Vec::new(),
            progress,
            taken: Vec::new(),
            partial,
        })
    }

    /// Finishes the zip and gives it its final name. The rename replaces
    /// whatever is at `path` (a link there included) and never writes
    /// through it.
    pub fn finish(self, path: &Path) -> Result<(), PacketError> {
        let Writer {
            zip,
            folder,
            partial,
            ..
        } = self;
        let file = zip.finish().map_err(zip_failure(&folder))?;
        if let Some(kind) = file.failed {
            return Err(write_failure(&folder)(kind.into()));
        }
        file.inner
            .into_inner()
            .map_err(|e| e.into_error())
            .and_then(|file| file.sync_all())
            .map_err(write_failure(&folder))?;
        partial
            .persist(path)
            .map_err(|e| write_failure(&folder)(e.error))
    }
}

impl<W: Write + Seek> Writer<'_, W> {
    fn options() -> SimpleFileOptions {
        SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .large_file(true)
    }

    /// Adds a file the doctor wrote itself (report, summaries), its lines
    /// passed through the redactor like every other output.
    pub fn add(&mut self, name: &str, content: &str) -> Result<(), PacketError> {
        self.add_as_is(name, &crate::shared::redact::text(content))
    }

    /// Adds text that is sanitised already (a config, by its structure).
    fn add_as_is(&mut self, name: &str, content: &str) -> Result<(), PacketError> {
        self.zip
            .start_file(name, Self::options())
            .map_err(zip_failure(&self.folder))?;
        self.zip
            .write_all(content.as_bytes())
            .map_err(write_failure(&self.folder))
    }

    fn announce(&self, name: &str) {
        self.progress.say(&format!("adding {name}"));
    }

    /// A name for a file inside the zip, `<kind>/<target>/<file name>`,
    /// unique in its folder; the target id and file name made safe.
    fn entry_name(&mut self, kind: &str, target: &str, base: &str) -> String {
        let folder = format!("{kind}/{}", safe_part(target));
        let base = safe_part(base);
        let mut name = format!("{folder}/{base}");
        let mut n = 2;
        while self.taken.contains(&name) {
            name = format!("{folder}/{n}-{base}");
            n += 1;
        }
        self.taken.push(name.clone());
        name
    }

    /// Adds each config file sanitised under `config/<target>/`.
    pub fn add_configs(&mut self, files: &[ConfigFile]) -> Result<(), PacketError> {
        for file in files {
            let base = file
                .path
                .file_name()
                .map_or_else(|| "file".into(), |n| n.to_string_lossy());
            let name = self.entry_name("config", &file.target, &base);
            match std::fs::read_to_string(&file.path) {
                Ok(text) => {
                    self.announce(&name);
                    let sanitized = sanitize_config(&name, &text, file.kind);
                    self.add_as_is(&name, &sanitized.text)?;
                    self.redactions.extend(sanitized.redactions);
                }
                Err(err) => self
                    .warnings
                    .push(format!("{}: not collected: {err}", file.path.display())),
            }
        }
        Ok(())
    }

    /// Adds the tail of each log under `logs/<target>/`, sanitised; returns
    /// the software and version each target's log names at its start.
    pub fn add_logs(
        &mut self,
        logs: &[NamedLog],
        tail: &TailOptions,
    ) -> Result<Vec<(String, Software)>, PacketError> {
        let mut software = Vec::new();
        for log in logs {
            let name = self.entry_name("logs", &log.target, &log.source.copy_name());
            if let Some(found) = self.copy_log(&name, log, tail)? {
                software.push((log.target.clone(), found));
            }
        }
        Ok(software)
    }

    fn copy_log(
        &mut self,
        name: &str,
        log: &NamedLog,
        tail: &TailOptions,
    ) -> Result<Option<Software>, PacketError> {
        let window = match open_window(
            &log.source,
            Some(&log.named_by),
            tail.max_bytes,
            &tail.places,
        ) {
            Ok(window) => window,
            Err(err) => {
                self.warnings.push(format!("log not collected: {err}"));
                return Ok(None);
            }
        };
        self.announce(name);
        self.zip
            .start_file(name, Self::options())
            .map_err(zip_failure(&self.folder))?;
        let mut reader = BufReader::with_capacity(256 * 1024, window.reader);
        if window.starts_mid_line {
            // The tail starts mid-line: drop that partial line.
            let _ = reader.read_until(b'\n', &mut Vec::new());
        }
        if window.cut {
            let note = format!(
                "[bridge-doctor: only the last {} MiB of {} are included]\n",
                tail.max_bytes / (1024 * 1024),
                log.source
            );
            self.zip
                .write_all(note.as_bytes())
                .map_err(write_failure(&self.folder))?;
        }
        let mut copy = LogCopy::new(name, tail.since.is_none());
        let bar = self.progress.bytes_bar(name, window.length);
        let mut raw = Vec::new();
        loop {
            raw.clear();
            let read = reader
                .read_until(b'\n', &mut raw)
                .map_err(|source| PacketError::Read {
                    path: log.source.to_string(),
                    source,
                })?;
            if read == 0 {
                break;
            }
            bar.inc(read as u64);
            let line = String::from_utf8_lossy(&raw);
            copy.line(self, line.trim_end_matches(['\n', '\r']), tail)?;
        }
        bar.finish_and_clear();
        copy.finish(self);
        Ok(copy.software)
    }
}

/// One config or registration for the packet, and what format it is.
pub struct ConfigFile {
    pub target: String,
    pub path: PathBuf,
    pub kind: ConfigKind,
}

/// Which part of each log goes in.
pub struct TailOptions {
    pub max_bytes: u64,
    /// Where `journald:` and `docker:` logs are read.
    pub places: LogPlaces,
    /// Only lines from this time on (`YYYY-MM-DD HH:MM[:SS]`).
    pub since: Option<String>,
}

/// One log's copy under way: line numbers, the `since` cut, redactions.
struct LogCopy<'a> {
    name: &'a str,
    number: u64,
    listed: usize,
    unlisted: usize,
    keep: bool,
    software: Option<Software>,
}

impl<'a> LogCopy<'a> {
    fn new(name: &'a str, keep: bool) -> Self {
        LogCopy {
            name,
            number: 0,
            listed: 0,
            unlisted: 0,
            keep,
            software: None,
        }
    }

    fn line<W: Write + Seek>(
        &mut self,
        writer: &mut Writer<'_, W>,
        line: &str,
        tail: &TailOptions,
    ) -> Result<(), PacketError> {
        self.number += 1;
        if let Some(since) = &tail.since
            && let Some(time) = line_time(line)
        {
            self.keep = time.as_str() >= since.as_str();
        }
        if let Some(found) = software_in(line) {
            self.software = Some(found);
        }
        if !self.keep {
            return Ok(());
        }
        let (clean, rules) = crate::shared::redact::line_explained(line);
        for rule in rules {
            if self.listed < MAX_LISTED_REDACTIONS {
                writer.redactions.push(Redaction {
                    file: self.name.to_owned(),
                    location: format!("line {}", self.number),
                    rule: rule.to_owned(),
                    kind: "value in a log line".to_owned(),
                });
                self.listed += 1;
            } else {
                self.unlisted += 1;
            }
        }
        // Cut after redacting: a secret across the cut is masked whole.
        let mut end = clean.len().min(MAX_LINE);
        while !clean.is_char_boundary(end) {
            end -= 1;
        }
        writer
            .zip
            .write_all(&clean.as_bytes()[..end])
            .and_then(|()| writer.zip.write_all(b"\n"))
            .map_err(write_failure(&writer.folder))
    }

    fn finish<W: Write + Seek>(&self, writer: &mut Writer<'_, W>) {
        if self.unlisted > 0 {
            writer.redactions.push(Redaction {
                file: self.name.to_owned(),
                location: format!("{} more lines", self.unlisted),
                rule: "summary".to_owned(),
                kind: "redactions past the listing limit".to_owned(),
            });
        }
    }
}

/// One part of a zip entry name from an id or file name anyone could
/// choose: only `[A-Za-z0-9._-]` (anything else, `/` included, becomes
/// `_`), leading slashes dropped, never empty, `.` or `..`.
fn safe_part(text: &str) -> String {
    let safe: String = text
        .trim_start_matches('/')
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if safe.chars().all(|c| c == '.') {
        format!("_{safe}")
    } else {
        safe
    }
}

/// The first timestamp in a line, normalised to `YYYY-MM-DD HH:MM:SS`.
fn line_time(line: &str) -> Option<String> {
    static PATTERN: OnceLock<Regex> = OnceLock::new();
    let pattern = PATTERN.get_or_init(|| {
        Regex::new(r"(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}(:\d{2})?)").expect("time pattern")
    });
    let caps = pattern.captures(line)?;
    Some(format!("{} {}", &caps[1], &caps[2]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names_hold_only_safe_parts() {
        assert_eq!(safe_part("../../x"), ".._.._x");
        assert_eq!(safe_part("/abs/x"), "abs_x");
        assert_eq!(safe_part("//abs"), "abs");
        assert_eq!(safe_part(""), "_");
        assert_eq!(safe_part("."), "_.");
        assert_eq!(safe_part(".."), "_..");
        assert_eq!(safe_part("тест ✓.log"), "______.log");
        assert_eq!(
            safe_part("mautrix-telegram_2.yaml"),
            "mautrix-telegram_2.yaml"
        );
    }

    #[test]
    fn entry_names_stay_inside_their_folder() {
        let progress = Progress::Silent;
        let dir = tempfile::tempdir().unwrap();
        let mut writer = Writer::create(&dir.path().join("p.zip"), &progress).unwrap();
        for target in ["../../x", "/abs/x", "", "тест", "."] {
            let name = writer.entry_name("config", target, "passwd");
            let parts: Vec<&str> = name.split('/').collect();
            assert_eq!(parts.len(), 3, "{name}");
            assert_eq!(parts[0], "config");
            assert!(
                parts
                    .iter()
                    .all(|p| !p.is_empty() && *p != "." && *p != ".."),
                "{name}"
            );
        }
        let first = writer.entry_name("config", "..", "passwd");
        assert_eq!(first, "config/_../passwd");
        let again = writer.entry_name("config", "..", "passwd");
        assert_eq!(again, "config/_../2-passwd");
    }

    #[test]
    fn a_secret_across_the_line_cut_is_masked_whole() {
        let progress = Progress::Silent;
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("bridge.log");
        let padding = "p".repeat(MAX_LINE - 20);
        std::fs::write(
            &log,
            format!("{padding} password=CanaryAcrossTheCut42 end\n"),
        )
        .unwrap();
        let zip = dir.path().join("p.zip");
        let mut writer = Writer::create(&zip, &progress).unwrap();
        let named = super::super::collect::NamedLog {
            target: "t".to_owned(),
            source: crate::input::log_source::LogSource::File(log.clone()),
            named_by: log,
        };
        let tail = TailOptions {
            max_bytes: 1 << 20,
            places: LogPlaces::default(),
            since: None,
        };
        writer.add_logs(&[named], &tail).unwrap();
        writer.finish(&zip).unwrap();
        let mut archive = zip::ZipArchive::new(std::fs::File::open(&zip).unwrap()).unwrap();
        let mut copied = String::new();
        std::io::Read::read_to_string(
            &mut archive.by_name("logs/t/bridge.log").unwrap(),
            &mut copied,
        )
        .unwrap();
        assert_eq!(copied.len(), MAX_LINE + 1, "cut at the limit");
        assert!(
            !copied.contains("CanaryAcross"),
            "{}",
            &copied[MAX_LINE - 40..]
        );
    }

    #[test]
    fn line_times_are_normalised() {
        assert_eq!(
            line_time("[2026-11-22 10:51:00,545] [INFO@mau.init] x").as_deref(),
            Some("2026-11-22 10:51:00")
        );
        assert_eq!(
            line_time(r#"{"time":"2026-11-22T10:00:00Z"}"#).as_deref(),
            Some("2026-11-22 10:00:00")
        );
    }
}
