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

/// Rendered text per byte of json-file: the JSON around each line and its
/// escapes take at most about half of it, so twice the window of file
/// gives a full window of text.
const FILE_BYTES_PER_TEXT_BYTE: u64 = 2;

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
    let id = folder.file_name().unwrap_or_default().to_string_lossy();
    let current = folder.join(format!("{id}-json.log"));
    let rotated = folder.join(format!("{id}-json.log.1"));
    let mut budget = window.saturating_mul(FILE_BYTES_PER_TEXT_BYTE);
    let mut parts = Vec::new();
    let mut cut = false;
    for (path, required) in [(current, true), (rotated, false)] {
        match open(&path, named_by) {
            Ok(file) => {
                let (part, whole) = tail(file, budget).map_err(|err| format!("{shown}: {err}"))?;
                budget = budget.saturating_sub(part.len() as u64);
                parts.push(part);
                if !whole {
                    cut = true;
                    break;
                }
            }
            Err(err) if required => {
                return Err(format!(
                    "{shown}: no json-file log: {err}: check that the container uses the json-file log driver (`docker inspect`)"
                ));
            }
            Err(_) => {}
        }
    }
    let mut text = Vec::new();
    for part in parts.iter().rev() {
        render(part, &mut text);
    }
    Ok(keep_last(text, window, cut))
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

/// The file's last `budget` bytes from the start of a line, and whether
/// that is the whole file.
fn tail(mut file: File, budget: u64) -> std::io::Result<(Vec<u8>, bool)> {
    let length = file.metadata()?.len();
    let start = length.saturating_sub(budget);
    file.seek(SeekFrom::Start(start))?;
    let mut reader = BufReader::new(file);
    if start > 0 {
        reader.read_until(b'\n', &mut Vec::new())?;
    }
    let mut bytes = Vec::new();
    reader.read_to_end(&mut bytes)?;
    Ok((bytes, start == 0))
}

#[derive(Deserialize)]
struct Line<'a> {
    #[serde(borrow)]
    log: std::borrow::Cow<'a, str>,
    #[serde(borrow, default)]
    time: std::borrow::Cow<'a, str>,
}

/// json-file lines as `<time> <text>` lines, a split line joined under
/// the time of its first part; a line that is not Docker's JSON is kept
/// as it is.
fn render(json_lines: &[u8], text: &mut Vec<u8>) {
    let mut open_line = false;
    for raw in json_lines.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let Ok(line) = serde_json::from_slice::<Line>(raw) else {
            if open_line {
                text.push(b'\n');
                open_line = false;
            }
            text.extend_from_slice(raw);
            text.push(b'\n');
            continue;
        };
        if !open_line && !line.time.is_empty() {
            text.extend_from_slice(line.time.as_bytes());
            text.push(b' ');
        }
        let log = line.log.strip_suffix('\n');
        text.extend_from_slice(log.unwrap_or(&line.log).trim_end_matches('\r').as_bytes());
        open_line = log.is_none();
        if !open_line {
            text.push(b'\n');
        }
    }
    if open_line {
        text.push(b'\n');
    }
}

/// The last `window` bytes of `text`, from the start of a line.
fn keep_last(mut text: Vec<u8>, window: u64, cut: bool) -> ContainerWindow {
    let excess = (text.len() as u64).saturating_sub(window) as usize;
    if excess == 0 {
        return ContainerWindow { text, cut };
    }
    let start = memchr::memchr(b'\n', &text[excess..]).map_or(text.len(), |i| excess + i + 1);
    text.drain(..start);
    ContainerWindow { text, cut: true }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_lines_are_joined_under_their_first_time() {
        let json = concat!(
            r#"{"log":"first \"quoted\"\n","stream":"stdout","time":"2026-12-03T10:00:00.1Z"}"#,
            "\n",
            r#"{"log":"a long ","stream":"stderr","time":"2026-12-03T10:00:01.2Z"}"#,
            "\n",
            r#"{"log":"line\r\n","stream":"stderr","time":"2026-12-03T10:00:01.3Z"}"#,
            "\n",
        );
        let mut text = Vec::new();
        render(json.as_bytes(), &mut text);
        assert_eq!(
            String::from_utf8(text).unwrap(),
            "2026-12-03T10:00:00.1Z first \"quoted\"\n2026-12-03T10:00:01.2Z a long line\n"
        );
    }

    #[test]
    fn the_window_keeps_whole_lines_from_the_end() {
        let window = keep_last(b"one\ntwo\nthree\n".to_vec(), 8, false);
        assert_eq!(window.text, b"three\n");
        assert!(window.cut);
    }
}
