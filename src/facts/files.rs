//! Facts read from files: the homeserver config, the registrations it
//! loads, and each target's registration and config. No network.

use std::path::{Path, PathBuf};

use super::{Facts, FileProblem, HomeserverFacts, Mode, TargetFacts, TargetKind};
use crate::input::bridge::BridgeConfig;
use crate::input::config::{BridgeEntry, Config, Deployment};
use crate::input::homeserver::HomeserverConfig;
use crate::input::registration::Registration;
use crate::input::yaml::Document;

/// The doctor's own target, from its config and its registration file.
pub fn doctor_target(config: &Config, registration_path: &Path) -> TargetFacts {
    TargetFacts {
        id: config.appservice.id.clone(),
        kind: TargetKind::Doctor,
        registration_path: registration_path.to_owned(),
        registration: Registration::load(registration_path).map_err(FileProblem::from),
        config: Some(Ok(BridgeConfig::from_doctor(config))),
        config_found: None,
        logs: Vec::new(),
        live: None,
        database: None,
        logs_scanned: None,
        deployment: Deployment::Host,
        names_inside: Vec::new(),
    }
}

pub fn bridge_target(entry: &BridgeEntry) -> TargetFacts {
    let registration = Registration::load(&entry.registration).map_err(FileProblem::from);
    bridge_target_read(entry, registration)
}

/// The target of `entry` whose registration was read already.
fn bridge_target_read(
    entry: &BridgeEntry,
    registration: Result<Registration, FileProblem>,
) -> TargetFacts {
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
        config_found: entry.found.clone(),
        logs: entry.logs.clone(),
        live: None,
        database: None,
        logs_scanned: None,
        deployment: entry.deployment.clone(),
        names_inside: Vec::new(),
    }
}

/// Reads the homeserver config named in the doctor's config, if any: every
/// file that makes it, merged as Synapse merges them.
pub fn homeserver_config(config: &Config) -> Option<Result<HomeserverConfig, FileProblem>> {
    let files = homeserver_files(&config.homeserver.config);
    let documents: Result<Vec<Document>, FileProblem> = files
        .iter()
        .map(|path| Document::load(path).map_err(FileProblem::from))
        .collect();
    documents
        .map(|documents| HomeserverConfig::merged(&documents))
        .transpose()
}

/// The files that make the homeserver's config, in Synapse's order: each
/// given file, and each given folder's `*.yaml` sorted. One file alone is
/// what a homeserver running here was given with it (`--config-path`),
/// else that file and the `conf.d/` folder beside it (Debian's and
/// Element's packages start Synapse so).
pub fn homeserver_files(given: &[PathBuf]) -> Vec<PathBuf> {
    let given = match given {
        [file] if file.is_file() => crate::facts::process::homeserver_config_paths(file)
            .unwrap_or_else(|| {
                let beside = file.with_file_name("conf.d");
                std::iter::once(file.clone())
                    .chain(beside.is_dir().then_some(beside))
                    .collect()
            }),
        _ => given.to_vec(),
    };
    given.iter().flat_map(|path| yaml_files_of(path)).collect()
}

/// A file itself, or a folder's `*.yaml` (and `*.yml`) files, sorted.
fn yaml_files_of(path: &Path) -> Vec<PathBuf> {
    if !path.is_dir() {
        return vec![path.to_owned()];
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.is_file() && p.extension().is_some_and(|e| e == "yaml" || e == "yml"));
    files.sort();
    files
}

/// The registrations the homeserver config loads, each read where this
/// machine sees it (through the homeserver's container mounts).
pub fn loaded_registrations(
    homeserver: Option<&HomeserverConfig>,
    deployment: &Deployment,
) -> Vec<(PathBuf, Result<Registration, FileProblem>)> {
    homeserver
        .map(|hs| {
            hs.app_service_config_files
                .iter()
                .map(|named| {
                    let path = deployment.to_host(named).unwrap_or_else(|| named.clone());
                    let registration = Registration::load(&path).map_err(FileProblem::from);
                    (path, registration)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The doctor's registration file: the one its config names; else the one
/// the homeserver loads with the doctor's id and as_token (wherever the
/// admin put it); else `registration.yaml` next to the config.
pub fn doctor_registration(
    config: &Config,
    loaded: &[(PathBuf, Result<Registration, FileProblem>)],
) -> PathBuf {
    if let Some(named) = &config.appservice.registration {
        return named.clone();
    }
    let appservice = &config.appservice;
    loaded
        .iter()
        .find(|(_, registration)| {
            registration.as_ref().is_ok_and(|r| {
                r.id.as_deref() == Some(appservice.id.as_str())
                    && r.as_token.as_deref() == Some(appservice.as_token.as_str())
            })
        })
        .map(|(path, _)| path.clone())
        .unwrap_or_else(|| appservice.default_registration.clone())
}

/// Which targets `check` looks at: the doctor, then each bridge of the
/// config; with none listed, every registration the homeserver loads
/// (other than the doctor's). A config made by `--homeserver` lists every
/// registration the homeserver loads, and there is no doctor.
pub fn targets(
    config: &Config,
    loaded: &[(PathBuf, Result<Registration, FileProblem>)],
) -> Vec<TargetFacts> {
    if !config.has_doctor {
        return config.bridges.iter().map(bridge_target).collect();
    }
    let doctor_registration = doctor_registration(config, loaded);
    let mut targets = vec![doctor_target(config, &doctor_registration)];
    if config.bridges.is_empty() {
        targets.extend(
            loaded
                .iter()
                .filter(|(path, _)| !same_file(path, &doctor_registration))
                .map(|(path, registration)| {
                    let entry = BridgeEntry {
                        id: None,
                        config: None,
                        registration: path.clone(),
                        logs: Vec::new(),
                        found: None,
                        deployment: Deployment::Host,
                    };
                    bridge_target_read(&entry, registration.clone())
                }),
        );
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
        let registrations = loaded_registrations(
            hs_config.as_ref().and_then(|c| c.as_ref().ok()),
            &config.homeserver.deployment,
        );
        let targets = targets(config, &registrations);
        let real_paths = real_paths(&hs_config, &registrations, &targets);
        let worker_names = match &hs_config {
            Some(Ok(hs)) => worker_names(&hs.path),
            _ => Vec::new(),
        };
        Facts {
            mode: Mode::Check,
            homeserver: HomeserverFacts {
                address: config.homeserver.address.clone(),
                domain: config.homeserver.domain.clone(),
                config: hs_config,
                registrations,
                versions: None,
                software: None,
                worker_names,
                delivery: None,
                real_paths,
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
}

/// Most YAML files read while looking for worker configs.
const WORKER_SEARCH_LIMIT: usize = 200;

/// The `worker_name` of every Synapse worker config in the homeserver
/// config's folder and the folders in it (`workers/`, `conf.d/`), where
/// Debian's packages and the deployment guides put them.
pub fn worker_names(homeserver_config: &Path) -> Vec<String> {
    let Some(folder) = homeserver_config.parent() else {
        return Vec::new();
    };
    let list = |dir: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default()
    };
    let top = list(folder);
    let nested = top.iter().filter(|p| p.is_dir()).flat_map(|dir| list(dir));
    top.iter()
        .cloned()
        .chain(nested)
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .take(WORKER_SEARCH_LIMIT)
        .filter_map(|path| Document::load(&path).ok())
        .filter_map(|doc| doc.root.get("worker_name")?.scalar_text())
        .collect()
}

/// The real form of paths (links and `..` resolved where they exist),
/// each resolved once when the facts are loaded: the checks compare every
/// registration with every other, and stay pure.
#[derive(Debug, Default)]
pub struct RealPaths(std::collections::HashMap<PathBuf, PathBuf>);

impl RealPaths {
    pub fn of<'a>(paths: impl IntoIterator<Item = &'a Path>) -> RealPaths {
        RealPaths(
            paths
                .into_iter()
                .filter_map(|path| Some((path.to_owned(), path.canonicalize().ok()?)))
                .collect(),
        )
    }

    /// Whether `a` and `b` name the same file, as [`same_file`] would say
    /// of paths resolved at load (others are compared as written).
    pub fn same(&self, a: &Path, b: &Path) -> bool {
        let real = |path: &'_ Path| self.0.get(path).cloned().unwrap_or_else(|| path.to_owned());
        real(a) == real(b)
    }
}

/// Two paths name the same file (symlinks and `..` resolved when they exist).
pub fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Every path a check compares with another: the registrations the
/// homeserver loads (as read and as its config names them), each target's
/// registration and config.
pub fn real_paths(
    hs_config: &Option<Result<HomeserverConfig, FileProblem>>,
    registrations: &[(PathBuf, Result<Registration, FileProblem>)],
    targets: &[TargetFacts],
) -> RealPaths {
    let named = hs_config
        .iter()
        .flatten()
        .flat_map(|hs| hs.app_service_config_files.iter());
    let loaded = registrations.iter().map(|(path, _)| path);
    let own = targets.iter().flat_map(|t| {
        let config = t.config().map(|c| c.path().to_owned());
        std::iter::once(t.registration_path.clone()).chain(config)
    });
    let all: Vec<PathBuf> = named.chain(loaded).cloned().chain(own).collect();
    RealPaths::of(all.iter().map(PathBuf::as_path))
}
