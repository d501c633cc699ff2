//! Facts: everything the checks read, gathered once per run.
//!
//! Gathering is the only place with I/O (files, HTTP probes); the checks in
//! `checks/` are pure functions over these structs. Live probes of all
//! targets run concurrently, each bounded by the client's timeout.

pub mod database;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::input::bridge::BridgeConfig;
use crate::input::config::Config;
use crate::input::registration::Registration;
use crate::input::yaml::{Document, LoadError, Pos};
use crate::matrix::{
    Answer, ConnectError, HomeserverClient, ServerSoftware, Versions, VersionsError,
};

pub const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

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

#[derive(Clone, Debug)]
pub struct HomeserverConfig {
    pub path: PathBuf,
    pub server_name: Option<String>,
    pub app_service_config_files: Vec<PathBuf>,
    /// Names under `experimental_features` whose value is true.
    pub experimental_features: Vec<String>,
    /// `matrix_authentication_service.enabled` (or the older MSC3861 block).
    pub delegated_auth: bool,
    /// `use_appservice_legacy_authorization`: tokens sent as a query parameter.
    pub legacy_appservice_auth: bool,
}

impl HomeserverConfig {
    pub fn from_document(document: &Document) -> HomeserverConfig {
        let root = &document.root;
        let base = document.path.parent().unwrap_or(Path::new("/"));
        HomeserverConfig {
            path: document.path.clone(),
            server_name: root.get("server_name").and_then(|n| n.scalar_text()),
            app_service_config_files: root
                .get("app_service_config_files")
                .map(|list| {
                    list.items()
                        .iter()
                        .filter_map(|item| item.as_str())
                        .map(|p| base.join(p))
                        .collect()
                })
                .unwrap_or_default(),
            experimental_features: root
                .get("experimental_features")
                .map(|features| {
                    features
                        .entries()
                        .iter()
                        .filter(|(_, value)| value.as_bool() == Some(true))
                        .map(|(name, _)| name.clone())
                        .collect()
                })
                .unwrap_or_default(),
            legacy_appservice_auth: root
                .get("use_appservice_legacy_authorization")
                .and_then(|n| n.as_bool())
                == Some(true),
            delegated_auth: root
                .path("matrix_authentication_service.enabled")
                .and_then(|n| n.as_bool())
                == Some(true)
                || root
                    .path("experimental_features.msc3861.enabled")
                    .and_then(|n| n.as_bool())
                    == Some(true),
        }
    }
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
}

#[derive(Debug)]
pub struct TargetFacts {
    pub id: String,
    pub kind: TargetKind,
    pub registration_path: PathBuf,
    pub registration: Result<Registration, FileProblem>,
    /// `None`: no config given (registration-only target).
    pub config: Option<Result<BridgeConfig, FileProblem>>,
    pub logs: Vec<PathBuf>,
    /// `None`: offline.
    pub live: Option<LiveFacts>,
    /// `None`: no database URI known for this target.
    pub database: Option<crate::facts::database::DatabaseFacts>,
    /// `None`: no log of this target (nor a homeserver log) was scanned.
    pub logs_scanned: Option<LogFacts>,
}

/// Knowledge-base symptoms found in a target's logs and in the homeserver
/// log lines that mention it.
#[derive(Debug, Default)]
pub struct LogFacts {
    pub hits: Vec<crate::knowledge::scan::EntryHits>,
    /// The homeserver log's hits that mention this target, apart (`ping.backoff`
    /// reads them): `None` when no homeserver log is configured.
    pub homeserver_hits: Option<Result<Vec<crate::knowledge::scan::EntryHits>, String>>,
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

/// The doctor's own target, from its config and its registration file.
pub fn doctor_target(config: &Config, registration_path: &Path) -> TargetFacts {
    TargetFacts {
        id: config.appservice.id.clone(),
        kind: TargetKind::Doctor,
        registration_path: registration_path.to_owned(),
        registration: Registration::load(registration_path).map_err(FileProblem::from),
        config: Some(Ok(BridgeConfig::from_doctor(config))),
        logs: Vec::new(),
        live: None,
        database: None,
        logs_scanned: None,
    }
}

pub fn bridge_target(entry: &crate::input::config::BridgeEntry) -> TargetFacts {
    let registration = Registration::load(&entry.registration).map_err(FileProblem::from);
    let config = entry.config.as_ref().map(|path| {
        let document = Document::load(path).map_err(FileProblem::from)?;
        BridgeConfig::from_document(document).map_err(|err| FileProblem::UnknownFormat {
            path: path.clone(),
            message: err.to_string(),
        })
    });
    let id = entry
        .id
        .clone()
        .or_else(|| registration.as_ref().ok().and_then(|r| r.id.clone()))
        .unwrap_or_else(|| {
            entry
                .registration
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "bridge".to_owned())
        });
    TargetFacts {
        id,
        kind: TargetKind::Bridge,
        registration_path: entry.registration.clone(),
        registration,
        config,
        logs: entry.logs.clone(),
        live: None,
        database: None,
        logs_scanned: None,
    }
}

/// Reads the homeserver config named in the doctor's config, if any.
pub fn homeserver_config(config: &Config) -> Option<Result<HomeserverConfig, FileProblem>> {
    let path = config.homeserver.config.as_ref()?;
    Some(
        Document::load(path)
            .map(|doc| HomeserverConfig::from_document(&doc))
            .map_err(FileProblem::from),
    )
}

/// Probes the homeserver as `target`, without changing anything on it.
pub async fn probe_target(
    facts_domain: &str,
    default_address: &str,
    target: &TargetFacts,
) -> LiveFacts {
    let address = target
        .config()
        .and_then(|c| c.homeserver_address.as_ref())
        .map(|f| f.value.clone())
        .unwrap_or_else(|| default_address.to_owned());
    let client = HomeserverClient::new(&address, PROBE_TIMEOUT);
    let mut live = LiveFacts {
        address: address.clone(),
        ..LiveFacts::default()
    };
    let versions = client.versions().await;
    let Ok(found) = &versions else {
        live.versions = Some(versions);
        return live;
    };
    let Some(as_token) = target.as_token() else {
        live.versions = Some(versions);
        return live;
    };
    let domain = target
        .config()
        .and_then(|c| c.homeserver_domain.as_ref())
        .map(|f| f.value.as_str())
        .unwrap_or(facts_domain);
    let bot = target
        .config()
        .and_then(|c| c.bot_username.as_ref())
        .and_then(|b| ruma::UserId::parse(format!("@{}:{domain}", b.value)).ok());
    let sender = client.whoami(found, as_token, None);
    let as_bot = async {
        match &bot {
            Some(bot) => Some(client.whoami(found, as_token, Some(bot)).await),
            None => None,
        }
    };
    let ping = async {
        match target.appservice_id() {
            Some(id) => Some(client.ping_appservice(found, as_token, id).await),
            None => None,
        }
    };
    let (sender, as_bot, ping) = tokio::join!(sender, as_bot, ping);
    live.whoami_sender = Some(sender);
    live.whoami_bot = as_bot;
    live.ping = ping;
    live.versions = Some(versions);
    live
}

/// Which targets `check` looks at: the doctor, then each bridge of the
/// config; with none listed and a homeserver config given, every
/// registration it loads (other than the doctor's).
pub fn targets(config: &Config, homeserver: Option<&HomeserverConfig>) -> Vec<TargetFacts> {
    let mut targets = vec![doctor_target(config, &config.appservice.registration)];
    if config.bridges.is_empty() {
        if let Some(hs) = homeserver {
            targets.extend(
                hs.app_service_config_files
                    .iter()
                    .filter(|path| !same_file(path, &config.appservice.registration))
                    .map(|path| {
                        bridge_target(&crate::input::config::BridgeEntry {
                            id: None,
                            config: None,
                            registration: path.clone(),
                            logs: Vec::new(),
                        })
                    }),
            );
        }
    } else {
        targets.extend(config.bridges.iter().map(bridge_target));
    }
    targets
}

impl Facts {
    /// The file facts of every target `check` looks at: the homeserver
    /// config, the registrations it loads, each target's files. No network.
    pub fn load(config: &Config) -> Facts {
        let hs_config = homeserver_config(config);
        let hs_loaded = hs_config.as_ref().and_then(|c| c.as_ref().ok());
        let targets = targets(config, hs_loaded);
        let registrations = hs_loaded
            .map(|hs| {
                hs.app_service_config_files
                    .iter()
                    .map(|path| {
                        (
                            path.clone(),
                            Registration::load(path).map_err(FileProblem::from),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        Facts {
            mode: Mode::Check,
            homeserver: HomeserverFacts {
                address: config.homeserver.address.clone(),
                domain: config.homeserver.domain.clone(),
                config: hs_config,
                registrations,
                versions: None,
                software: None,
            },
            targets,
        }
    }

    /// Keeps the doctor and the bridges named in `only` (all when empty).
    pub fn keep_only(&mut self, only: &[String]) {
        if !only.is_empty() {
            self.targets
                .retain(|t| t.kind == TargetKind::Doctor || only.contains(&t.id));
        }
    }

    /// Adds what is observed rather than read from config files: live
    /// probes (unless `offline`; all targets at once), logs, databases.
    pub async fn observe(&mut self, config: &Config, offline: bool) {
        if !offline {
            let client = HomeserverClient::new(&config.homeserver.address, PROBE_TIMEOUT);
            let probes =
                futures::future::join_all(self.targets.iter().map(|t| {
                    probe_target(&config.homeserver.domain, &config.homeserver.address, t)
                }));
            let (versions, software, probes) =
                tokio::join!(client.versions(), client.software(), probes);
            for (target, live) in self.targets.iter_mut().zip(probes) {
                target.live = Some(live);
            }
            self.homeserver.versions = Some(versions);
            self.homeserver.software = software;
        }
        scan_logs(config, &mut self.targets);
        let databases =
            futures::future::join_all(self.targets.iter().map(crate::facts::database::inspect))
                .await;
        for (target, database) in self.targets.iter_mut().zip(databases) {
            target.database = database;
        }
    }
}

/// Every fact of every target, observed (the support packet's view).
pub async fn gather(config: &Config, offline: bool) -> Facts {
    let mut facts = Facts::load(config);
    facts.observe(config, offline).await;
    facts
}

/// Two paths name the same file (symlinks and `..` resolved when they exist).
pub fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Opens `path` positioned at its last `window` bytes.
pub fn open_tail(path: &Path, window: u64) -> std::io::Result<std::fs::File> {
    use std::io::{Seek, SeekFrom};
    let mut file = std::fs::File::open(path)?;
    let length = file.metadata()?.len();
    file.seek(SeekFrom::Start(length.saturating_sub(window)))?;
    Ok(file)
}

/// Scans the recent part of every configured log with the knowledge base.
fn scan_logs(config: &Config, targets: &mut [TargetFacts]) {
    let scanner = crate::knowledge::scan::Scanner::new();
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
