//! A container's recent log, from the files Docker's json-file driver
//! writes: `containers/<id>/config.v2.json` names the container,
//! `<id>-json.log` (and the rotated `<id>-json.log.1` when the window
//! reaches into it) holds one JSON object per line:
//! `{"log":"text\n","stream":"stdout","time":"2026-...Z"}`. Docker splits a
//! long line into several objects, only the last ending in `\n`; they are
//! joined again.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::named::open_named;

/// Bytes of json-file read per byte of the window: the JSON around each
/// line (its stream and time) and the escapes take at most about half of
/// it, so twice the window (and a little more, for a small window of
/// short lines) gives a full window of text.
const FILE_BYTES_PER_TEXT_BYTE: u64 = 2;
const FILE_BYTES_SLACK: u64 = 64 * 1024;

/// The rendered window (`<time> <text>` lines, oldest first) and whether
/// older lines were left out.
pub struct ContainerWindow {
    pub text: Vec<u8>,
    pub cut: bool,
}

/// The last `window` bytes of the log of the container `name` under
/// `root`; its files opened as `named_by`'s owner could (`named.rs`), or
/// as this user may when the caller named the container itself (`None`).
/// The error is the line the report shows.
pub fn read_window(
    name: &str,
    root: &Path,
    named_by: Option<&Path>,
    window: u64,
) -> Result<ContainerWindow, String> {
    let shown = format!("docker:{name}");
    let folder = container_folder(name, root).map_err(|why| format!("{shown}: {why}"))?;
    if let Some(driver) = other_log_driver(&folder) {
        return Err(format!(
            "{shown}: the container logs with Docker's `{driver}` driver, whose files the doctor cannot read: name its journal (journald:...) or a log file instead, or switch it to json-file"
        ));
    }
    let (tails, cut) = tails(&folder, named_by, window).map_err(|why| format!("{shown}: {why}"))?;
    let mut text = Rendered::new(window);
    for tail in tails.into_iter().rev() {
        text.render(tail.reader)
            .map_err(|err| format!("{shown}: {err}"))?;
    }
    Ok(text.finish(cut))
}

/// The ends of the container's log files that hold its window, newest
/// first: the current file, then the rotated one if the window reaches
/// into it; and whether older lines are left out.
fn tails(folder: &Path, named_by: Option<&Path>, window: u64) -> Result<(Vec<Tail>, bool), String> {
    let id = folder.file_name().unwrap_or_default().to_string_lossy();
    let current = folder.join(format!("{id}-json.log"));
    let rotated = folder.join(format!("{id}-json.log.1"));
    let mut tails = Vec::new();
    let mut budget = window
        .saturating_mul(FILE_BYTES_PER_TEXT_BYTE)
        .saturating_add(FILE_BYTES_SLACK);
    for (path, required) in [(current, true), (rotated, false)] {
        match open(&path, named_by) {
            Ok(file) => {
                let tail = Tail::of(file, budget).map_err(|err| err.to_string())?;
                budget = budget.saturating_sub(tail.length);
                let whole = tail.whole;
                tails.push(tail);
                if !whole {
                    return Ok((tails, true));
                }
            }
            Err(err) if required => {
                return Err(format!(
                    "no json-file log: {err}: check that the container uses the json-file log driver (`docker inspect`)"
                ));
            }
            Err(_) => {}
        }
    }
    Ok((tails, false))
}

fn open(path: &Path, named_by: Option<&Path>) -> Result<File, String> {
    match named_by {
        Some(config) => open_named(path, config).map_err(|err| err.to_string()),
        None => File::open(path).map_err(|err| format!("{}: {err}", path.display())),
    }
}

#[derive(Deserialize)]
struct ContainerConfig {
    #[serde(rename = "Name", default)]
    name: String,
}

/// The folder of the container called `name` (or with that id, or an id
/// starting with it, as Docker's commands take it).
fn container_folder(name: &str, root: &Path) -> Result<PathBuf, String> {
    let containers = root.join("containers");
    let entries = std::fs::read_dir(&containers).map_err(|err| {
        format!(
            "cannot read {}: {err}: run the doctor as a user who may read Docker's data, or give --docker-root",
            containers.display()
        )
    })?;
    let mut by_id = None;
    for folder in entries.flatten().map(|e| e.path()) {
        let id = folder.file_name().unwrap_or_default().to_string_lossy();
        if id == name || (name.len() >= 12 && id.starts_with(name)) {
            by_id = Some(folder.clone());
        }
        if named(&folder.join("config.v2.json")).is_some_and(|n| n == format!("/{name}")) {
            return Ok(folder);
        }
    }
    by_id.ok_or_else(|| {
        format!(
            "no container of that name under {}: check the name with `docker ps -a`, or give --docker-root",
            containers.display()
        )
    })
}

/// The container's name as its `config.v2.json` records it ("/name").
fn named(config: &Path) -> Option<String> {
    let file = File::open(config).ok()?;
    // The config is small; a huge one is not Docker's.
    let reader = BufReader::new(file.take(16 * 1024 * 1024));
    serde_json::from_reader::<_, ContainerConfig>(reader)
        .ok()
        .map(|c| c.name)
}

#[derive(Deserialize)]
struct HostConfig {
    #[serde(rename = "LogConfig")]
    log_config: Option<LogConfig>,
}

#[derive(Deserialize)]
struct LogConfig {
    #[serde(rename = "Type", default)]
    kind: String,
}

/// The log driver from `hostconfig.json` when it is not json-file.
fn other_log_driver(folder: &Path) -> Option<String> {
    let text = std::fs::read(folder.join("hostconfig.json")).ok()?;
    let kind = serde_json::from_slice::<HostConfig>(&text)
        .ok()?
        .log_config?
        .kind;
    (!kind.is_empty() && kind != "json-file").then_some(kind)
}

/// A file's last `budget` bytes, from the start of a line.
struct Tail {
    reader: BufReader<File>,
    /// How many bytes that is.
    length: u64,
    /// It is the whole file.
    whole: bool,
}

impl Tail {
    fn of(mut file: File, budget: u64) -> std::io::Result<Tail> {
        let size = file.metadata()?.len();
        let start = size.saturating_sub(budget);
        file.seek(SeekFrom::Start(start))?;
        let mut reader = BufReader::with_capacity(1 << 20, file);
        if start > 0 {
            reader.read_until(b'\n', &mut Vec::new())?;
        }
        Ok(Tail {
            reader,
            length: size - start,
            whole: start == 0,
        })
    }
}

#[derive(Deserialize)]
struct Line<'a> {
    #[serde(borrow)]
    log: std::borrow::Cow<'a, str>,
    #[serde(borrow, default)]
    time: std::borrow::Cow<'a, str>,
}

/// The text of json-file lines, `<time> <text>` each, kept to the last
/// `window` bytes as it grows (trimmed once it is half a window over, so
/// memory stays at one and a half windows and the trimming costs little).
struct Rendered {
    text: Vec<u8>,
    window: usize,
    /// The last line is a part of a split line: the next part continues it.
    open_line: bool,
    trimmed: bool,
}

impl Rendered {
    fn new(window: u64) -> Rendered {
        Rendered {
            text: super::logs::buffer_for(window.saturating_add(window / 2)),
            window: usize::try_from(window).unwrap_or(usize::MAX),
            open_line: false,
            trimmed: false,
        }
    }

    /// Renders every line of `json_lines`: a split line is joined under
    /// the time of its first part; a line that is not Docker's JSON is
    /// kept as it is.
    fn render(&mut self, mut json_lines: impl BufRead) -> std::io::Result<()> {
        let mut raw = Vec::new();
        loop {
            raw.clear();
            if json_lines.read_until(b'\n', &mut raw)? == 0 {
                return Ok(());
            }
            match serde_json::from_slice::<Line>(&raw) {
                Ok(line) => self.push(&line),
                Err(_) => {
                    self.close_line();
                    self.text.extend_from_slice(raw.trim_ascii_end());
                    self.text.push(b'\n');
                }
            }
            if !self.open_line && self.text.len() > self.window.saturating_add(self.window / 2) {
                self.keep_last();
            }
        }
    }

    fn push(&mut self, line: &Line) {
        if !self.open_line && !line.time.is_empty() {
            self.text.extend_from_slice(line.time.as_bytes());
            self.text.push(b' ');
        }
        let log = line.log.strip_suffix('\n');
        let part = log.unwrap_or(&line.log).trim_end_matches('\r');
        self.text.extend_from_slice(part.as_bytes());
        self.open_line = log.is_none();
        if !self.open_line {
            self.text.push(b'\n');
        }
    }

    fn close_line(&mut self) {
        if std::mem::take(&mut self.open_line) {
            self.text.push(b'\n');
        }
    }

    /// Drops all but the last `window` bytes, from the start of a line.
    fn keep_last(&mut self) {
        let excess = self.text.len().saturating_sub(self.window);
        if excess == 0 {
            return;
        }
        let start =
            memchr::memchr(b'\n', &self.text[excess..]).map_or(self.text.len(), |i| excess + i + 1);
        self.text.drain(..start);
        self.trimmed = true;
    }

    fn finish(mut self, cut: bool) -> ContainerWindow {
        self.close_line();
        self.keep_last();
        ContainerWindow {
            cut: cut || self.trimmed,
            text: self.text,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(json: &str, window: u64) -> ContainerWindow {
        let mut text = Rendered::new(window);
        text.render(json.as_bytes()).unwrap();
        text.finish(false)
    }

    #[test]
    fn split_lines_are_joined_under_their_first_time() {
        let json = concat!(
            r#"{"log":"first \"quoted\"\n","stream":"stdout","time":"2026-12-03T10:00:00.1Z"}"#,
            "\n",
            r#"{"log":"a long ","stream":"stderr","time":"2026-12-03T10:00:01.2Z"}"#,
            "\n",
            r#"{"log":"line\r\n","stream":"stderr","time":"2026-12-03T10:00:01.3Z"}"#,
            "\n",
            "not json\n",
        );
        let window = rendered(json, 1 << 20);
        assert_eq!(
            String::from_utf8(window.text).unwrap(),
            "2026-12-03T10:00:00.1Z first \"quoted\"\n2026-12-03T10:00:01.2Z a long line\nnot json\n"
        );
        assert!(!window.cut);
    }

    #[test]
    fn the_window_keeps_whole_lines_from_the_end() {
        let json: String = ["one", "two", "three", "four"]
            .iter()
            .map(|text| format!("{{\"log\":\"{text}\\n\",\"time\":\"T\"}}\n"))
            .collect();
        let window = rendered(&json, 9);
        assert_eq!(String::from_utf8(window.text).unwrap(), "T four\n");
        assert!(window.cut);
    }

    #[test]
    fn the_rotated_log_comes_first_when_the_window_reaches_into_it() {
        let root = tempfile::tempdir().unwrap();
        let id = "0123456789abcdef";
        let folder = root.path().join("containers").join(id);
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join("config.v2.json"), r#"{"Name":"/tg"}"#).unwrap();
        let line = |text: &str| format!("{{\"log\":\"{text}\\n\",\"time\":\"T\"}}\n");
        // A split line across the rotation is joined too.
        let split = r#"{"log":"split ","time":"T"}"#;
        let older = format!("{}{split}\n", line("older"));
        std::fs::write(folder.join(format!("{id}-json.log.1")), older).unwrap();
        let newer = format!("{}{}", line("line"), line("newer"));
        std::fs::write(folder.join(format!("{id}-json.log")), newer).unwrap();
        let window = read_window("tg", root.path(), None, 1 << 20).unwrap();
        assert_eq!(
            String::from_utf8(window.text).unwrap(),
            "T older\nT split line\nT newer\n"
        );
        assert!(!window.cut);
        // By id, as Docker's commands take it; a window of the newest only.
        let window = read_window(&id[..12], root.path(), None, 8).unwrap();
        assert_eq!(String::from_utf8(window.text).unwrap(), "T newer\n");
        assert!(window.cut);
    }
}
