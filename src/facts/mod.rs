//! Stage 2, facts: everything the checks read, gathered once per run.
//!
//! Gathering is the only place with I/O: files (`files.rs`), live probes
//! (`probe.rs`), log windows (`logs.rs`: files, each opened only as the
//! owner of the config naming it could, `named.rs`; units' journals,
//! `journald.rs`; containers' json-file logs, `docker_logs.rs`), bridge
//! databases (`database.rs`).
//! The checks in `checks/` are pure functions over the structs here.

pub mod database;
pub mod deployment;
pub mod discover;
mod docker_logs;
mod files;
mod journald;
mod logs;
mod named;
mod probe;
pub mod process;
mod sd_journal;

use std::path::{Path, PathBuf};

use crate::input::bridge::BridgeConfig;
use crate::input::config::Deployment;
use crate::input::homeserver::HomeserverConfig;
use crate::input::registration::Registration;
use crate::input::yaml::{LoadError, Pos};
use crate::knowledge::scan::EntryHits;
use crate::matrix::{Answer, ConnectError, ServerSoftware, Versions, VersionsError};

pub use files::{
    RealPaths, bridge_target, doctor_registration, doctor_target, homeserver_config,
    homeserver_files, loaded_registrations, real_paths, same_file, targets,
};
pub use logs::{Window, logs_named_by, open_window};
pub use named::Refused;
pub use probe::{PROBE_TIMEOUT, gather, probe_target};

/// Why a file could not be used, kept for the `config.*` checks.
#[derive(Clone, Debug, PartialEq)]
pub enum FileProblem {
    Unreadable {
        path: PathBuf,
        message: String,
    },
    InvalidYaml {
        path: PathBuf,
        pos: Pos,
        message: String,
    },
    UnknownFormat {
        path: PathBuf,
        message: String,
    },
}

impl FileProblem {
    pub fn path(&self) -> &Path {
        match self {
            FileProblem::Unreadable { path, .. }
            | FileProblem::InvalidYaml { path, .. }
            | FileProblem::UnknownFormat { path, .. } => path,
        }
    }
}

impl From<LoadError> for FileProblem {
    fn from(err: LoadError) -> FileProblem {
        match err {
            LoadError::Unreadable { path, source } => FileProblem::Unreadable {
                path,
                message: source.to_string(),
            },
            LoadError::Invalid { path, pos, message } => {
                FileProblem::InvalidYaml { path, pos, message }
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    #[serde(rename = "self")]
    Doctor,
    Bridge,
}

/// Why the facts are gathered: `run`'s startup self-check may register the
/// doctor's bot and expects its own server to answer the ping; `check` only looks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Startup,
    Check,
}

#[derive(Debug)]
pub struct HomeserverFacts {
    /// From the doctor's config.
    pub address: String,
    pub domain: String,
    /// `None` when `homeserver.config` is not set.
    pub config: Option<Result<HomeserverConfig, FileProblem>>,
    /// Every registration the homeserver config loads, for cross-registration checks.
    pub registrations: Vec<(PathBuf, Result<Registration, FileProblem>)>,
    /// `None` when offline.
    pub versions: Option<Result<Versions, VersionsError>>,
    pub software: Option<ServerSoftware>,
    /// `worker_name`s of the Synapse worker configs found beside the
    /// homeserver config (its folder and the folders in it).
    pub worker_names: Vec<String>,
    /// Each appservice's delivery state in the homeserver's database, by
    /// id; `None` when the homeserver config names no database.
    pub delivery: Option<Result<database::Delivery, String>>,
    /// The real form of every registration and config path, resolved once.
    pub real_paths: RealPaths,
}

impl HomeserverFacts {
    /// The homeserver's real `server_name`: its config when we have it.
    pub fn server_name_from_config(&self) -> Option<&str> {
        match &self.config {
            Some(Ok(config)) => config.server_name.as_deref(),
            _ => None,
        }
    }
}

/// What the live probes saw, with this target's own tokens.
#[derive(Clone, Debug, Default)]
pub struct LiveFacts {
    /// The address probed: the bridge's `homeserver.address`, else the doctor's.
    pub address: String,
    pub versions: Option<Result<Versions, VersionsError>>,
    /// whoami with the as_token alone: is the token known, and which server answers.
    pub whoami_sender: Option<Result<Answer, ConnectError>>,
    /// whoami masquerading as the bridge bot (user availability, non-mutating).
    pub whoami_bot: Option<Result<Answer, ConnectError>>,
    /// Only for the doctor at startup: the answer to registering its bot.
    pub bot_registration: Option<Result<Answer, ConnectError>>,
    /// `Ok(None)`: the homeserver has no ping endpoint.
    pub ping: Option<Result<Option<Answer>, ConnectError>>,
    /// Only for the doctor under `run`: its device for encrypted rooms.
    pub device: Option<DeviceFacts>,
    /// The authenticated media config as the appservice.
    pub media_config: Option<Result<Answer, ConnectError>>,
    /// Only for the doctor under `run`: did an event sent into its probe
    /// room come back in a transaction?
    pub delivery_probe: Option<DeliveryProbe>,
}

/// The doctor's end-to-end delivery probe.
#[derive(Clone, Debug, PartialEq)]
pub enum DeliveryProbe {
    Delivered {
        milliseconds: u64,
    },
    NotDelivered {
        waited_seconds: u64,
    },
    /// The probe event could not be sent (the reason, safe to show).
    NotSent(String),
}

/// The doctor's bot device for encrypted rooms, as `run` set it up.
#[derive(Clone, Debug, PartialEq)]
pub enum DeviceFacts {
    /// `encryption.allow` is false.
    NotWanted,
    Ready {
        device_id: String,
        cross_signed: bool,
    },
    Unavailable {
        reason: String,
        fix: Vec<String>,
    },
}

#[derive(Debug)]
pub struct TargetFacts {
    pub id: String,
    pub kind: TargetKind,
    pub registration_path: PathBuf,
    pub registration: Result<Registration, FileProblem>,
    /// `None`: no config given (registration-only target).
    pub config: Option<Result<BridgeConfig, FileProblem>>,
    /// How `--homeserver` came by the config, or where it looked in vain.
    pub config_found: Option<String>,
    pub logs: Vec<crate::input::log_source::LogSource>,
    /// `None`: offline.
    pub live: Option<LiveFacts>,
    /// `None`: no database URI known for this target.
    pub database: Option<database::DatabaseFacts>,
    /// `None`: no log of this target (nor a homeserver log) was scanned.
    pub logs_scanned: Option<LogFacts>,
    /// How the bridge runs (compose service, systemd unit, this machine).
    pub deployment: Deployment,
    /// Addresses in its files that only the compose network resolves
    /// (found while probing; empty offline).
    pub names_inside: Vec<deployment::NameInside>,
}

/// Knowledge-base symptoms found in a target's logs and in the homeserver
/// log lines that mention it.
#[derive(Debug, Default)]
pub struct LogFacts {
    /// When the logs were read (Unix milliseconds): the present their
    /// lines' times are measured against.
    pub read_at_ms: i64,
    /// Problems and proofs of health (`Entry::is_health`).
    pub hits: Vec<EntryHits>,
    /// The homeserver log's hits that mention this target, apart (`ping.backoff`
    /// reads them): `None` when no homeserver log is configured.
    pub homeserver_hits: Option<Result<Vec<EntryHits>, String>>,
    pub files_without_debug: Vec<String>,
    pub unreadable: Vec<String>,
}

impl TargetFacts {
    pub fn registration(&self) -> Option<&Registration> {
        self.registration.as_ref().ok()
    }

    pub fn config(&self) -> Option<&BridgeConfig> {
        self.config.as_ref().and_then(|c| c.as_ref().ok())
    }

    /// The domain this target believes in: its config, else the doctor's.
    pub fn domain<'a>(&'a self, facts: &'a Facts) -> &'a str {
        self.config()
            .and_then(|c| c.homeserver_domain.as_ref())
            .map(|f| f.value.as_str())
            .unwrap_or(&facts.homeserver.domain)
    }

    pub fn bot_user_id(&self, facts: &Facts) -> Option<String> {
        let bot = self.config()?.bot_username.as_ref()?;
        Some(format!("@{}:{}", bot.value, self.domain(facts)))
    }

    pub fn as_token(&self) -> Option<&str> {
        self.config()
            .and_then(|c| c.as_token.as_ref().map(|f| f.value.as_str()))
            .or_else(|| self.registration().and_then(|r| r.as_token.as_deref()))
    }

    pub fn appservice_id(&self) -> Option<&str> {
        self.registration()
            .and_then(|r| r.id.as_deref())
            .or_else(|| {
                self.config()
                    .and_then(|c| c.appservice_id.as_ref().map(|f| f.value.as_str()))
            })
    }
}

#[derive(Debug)]
pub struct Facts {
    pub mode: Mode,
    pub homeserver: HomeserverFacts,
    pub targets: Vec<TargetFacts>,
}
