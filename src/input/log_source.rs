//! Where a log is: a file, a systemd unit's journal (`journald:UNIT`) or a
//! Docker container's json-file log (`docker:CONTAINER`). Bridges run by
//! systemd or Docker often log only there. Parsing only; `facts::logs`
//! reads them.

use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogSource {
    File(PathBuf),
    /// A systemd unit, as `journalctl --unit` takes it.
    Journald(String),
    /// A container's name (or id), as `docker logs` takes it.
    Docker(String),
}

const JOURNALD: &str = "journald:";
const DOCKER: &str = "docker:";

impl LogSource {
    /// A log as a config writes it; a file path is taken relative to
    /// `base` (the config's folder). The error says what to write instead.
    pub fn parse(text: &str, base: &Path) -> Result<LogSource, String> {
        if let Some(unit) = text.strip_prefix(JOURNALD) {
            let unit = unit.trim();
            if unit.is_empty() || !unit.chars().all(is_unit_char) {
                return Err(format!(
                    "`{text}` names no systemd unit: write journald:UNIT with the unit's name as `systemctl status` shows it, e.g. journald:mautrix-telegram.service"
                ));
            }
            return Ok(LogSource::Journald(unit.to_owned()));
        }
        if let Some(name) = text.strip_prefix(DOCKER) {
            let name = name.trim().trim_start_matches('/');
            let mut chars = name.chars();
            let valid = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
                && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
            if !valid {
                return Err(format!(
                    "`{text}` names no container: write docker:NAME with the name `docker ps` shows (letters, digits, _ . -), e.g. docker:mautrix-telegram"
                ));
            }
            return Ok(LogSource::Docker(name.to_owned()));
        }
        Ok(LogSource::File(base.join(text)))
    }

    pub fn file(&self) -> Option<&Path> {
        match self {
            LogSource::File(path) => Some(path),
            _ => None,
        }
    }

    /// The name of its copy in the packet: the file's own name, else
    /// `journald-<unit>.log` or `docker-<container>.log`.
    pub fn copy_name(&self) -> String {
        match self {
            LogSource::File(path) => path
                .file_name()
                .map_or_else(|| "log".to_owned(), |n| n.to_string_lossy().into_owned()),
            LogSource::Journald(unit) => format!("journald-{unit}.log"),
            LogSource::Docker(name) => format!("docker-{name}.log"),
        }
    }
}

/// Characters systemd allows in a unit name (`unit_name_is_valid`), and
/// `*`/`?` for `journalctl --unit`'s patterns.
fn is_unit_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || ":-_.\\@*?".contains(c)
}

impl fmt::Display for LogSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogSource::File(path) => write!(f, "{}", path.display()),
            LogSource::Journald(unit) => write!(f, "{JOURNALD}{unit}"),
            LogSource::Docker(name) => write!(f, "{DOCKER}{name}"),
        }
    }
}

/// Where journals and containers live when not at the system's places
/// (the global `--journal-dir` and `--docker-root`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogPlaces {
    /// A journal folder (`journalctl --directory`) or one journal file
    /// (`--file`); `None`: the system's journal.
    pub journal: Option<PathBuf>,
    /// Docker's data root: `containers/<id>/` holds each container's
    /// `config.v2.json` and `<id>-json.log`.
    pub docker_root: PathBuf,
}

pub const DEFAULT_DOCKER_ROOT: &str = "/var/lib/docker";

impl Default for LogPlaces {
    fn default() -> Self {
        LogPlaces {
            journal: None,
            docker_root: PathBuf::from(DEFAULT_DOCKER_ROOT),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_forms_parse_and_show_as_written() {
        let base = Path::new("/etc/doctor");
        let file = LogSource::parse("logs/tg.log", base).unwrap();
        assert_eq!(file, LogSource::File("/etc/doctor/logs/tg.log".into()));
        assert_eq!(file.copy_name(), "tg.log");
        let unit = LogSource::parse("journald:matrix-mautrix-telegram.service", base).unwrap();
        assert_eq!(unit.to_string(), "journald:matrix-mautrix-telegram.service");
        assert_eq!(
            unit.copy_name(),
            "journald-matrix-mautrix-telegram.service.log"
        );
        let container = LogSource::parse("docker:/mautrix-telegram", base).unwrap();
        assert_eq!(container, LogSource::Docker("mautrix-telegram".into()));
        assert_eq!(container.copy_name(), "docker-mautrix-telegram.log");
    }

    #[test]
    fn an_empty_or_impossible_name_says_what_to_write() {
        let base = Path::new("/");
        let err = LogSource::parse("journald:", base).unwrap_err();
        assert!(err.contains("write journald:UNIT"), "{err}");
        let err = LogSource::parse("journald:my unit", base).unwrap_err();
        assert!(err.contains("names no systemd unit"), "{err}");
        let err = LogSource::parse("docker:-x", base).unwrap_err();
        assert!(err.contains("write docker:NAME"), "{err}");
    }
}
