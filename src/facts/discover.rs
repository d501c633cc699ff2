//! `check --homeserver` and `packet --homeserver`: what the doctor's config
//! would have said, found on disk, so an admin gets answers before setting
//! anything up. Each registration the homeserver loads is a target; its
//! bridge config is the YAML file whose `appservice.as_token` equals the
//! registration's, else one that names the same bridge (`appservice.id`, the
//! bot's user name, the ghosts its users namespace claims) with other
//! tokens: the evidence the token checks need,
//! never a reason to drop it. Looked for in this order: the files given with
//! `--bridge-config`, the registration's own folder, the folders the
//! services of a compose file beside the homeserver config mount, then where
//! bridges are usually installed (one folder per bridge under the roots).
//! With a compose file, every path a config names is read through the
//! mounts of the service that runs the program (`facts::deployment`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::deployment;
use crate::input::bridge::BridgeConfig;
use crate::input::compose::Project;
use crate::input::config::{BridgeEntry, Config, Deployment};
use crate::input::homeserver::HomeserverConfig;
use crate::input::log_source::LogSource;
use crate::input::registration::Registration;
use crate::input::yaml::{Document, LoadError};

/// Where bridges are usually installed, one folder per bridge: packages and
/// guides (`/opt/<name>`, `/etc/<name>`, `/var/lib/<name>`) and the
/// matrix-docker-ansible-deploy playbook (`/matrix/<name>/config`).
pub const INSTALL_ROOTS: &[&str] = &["/opt", "/etc", "/var/lib", "/matrix"];

/// Where homeservers keep their config: Debian's matrix-synapse package,
/// other packages, the Docker image's `/data`, the ansible playbook, and a
/// `homeserver.yaml` in the current folder or a `synapse` folder in it.
pub fn usual_homeserver_configs() -> Vec<PathBuf> {
    let mut places: Vec<PathBuf> = [
        "/etc/matrix-synapse/homeserver.yaml",
        "/etc/synapse/homeserver.yaml",
        "/var/lib/matrix-synapse/homeserver.yaml",
        "/data/homeserver.yaml",
        "/matrix/synapse/config/homeserver.yaml",
        "homeserver.yaml",
        "synapse/homeserver.yaml",
        "data/homeserver.yaml",
    ]
    .iter()
    .map(PathBuf::from)
    .collect();
    if let Some(home) = std::env::var_os("HOME") {
        places.push(Path::new(&home).join("synapse/homeserver.yaml"));
    }
    places
}

/// The homeserver configs among `places` that exist, as absolute paths.
pub fn homeserver_configs(places: &[PathBuf]) -> Vec<PathBuf> {
    places
        .iter()
        .filter(|p| p.is_file())
        .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone()))
        .collect()
}

/// Where discovery looks beyond the homeserver's own files: the system's
/// places, or temporary folders in tests.
pub struct Roots {
    /// One folder per bridge under each ([`INSTALL_ROOTS`]).
    pub install: Vec<PathBuf>,
    /// Where systemd unit files are ([`deployment::UNIT_ROOTS`]).
    pub units: Vec<PathBuf>,
    /// Docker's folder, for named volumes (`--docker-root`).
    pub docker: PathBuf,
}

impl Roots {
    /// The system's places, with Docker's folder as `--docker-root` says.
    pub fn system(docker_root: &Path) -> Roots {
        let paths = |list: &[&str]| list.iter().map(PathBuf::from).collect();
        Roots {
            install: paths(INSTALL_ROOTS),
            units: paths(deployment::UNIT_ROOTS),
            docker: docker_root.to_owned(),
        }
    }
}

/// Most YAML files read while looking for configs, and the largest one.
const FILES_READ_LIMIT: usize = 400;
const FILE_SIZE_LIMIT: u64 = 1024 * 1024;

/// The config `check` and `packet` use, and what the admin should know
/// about how it was found.
pub struct Discovered {
    pub config: Config,
    /// Given configs that match no registration, unreadable ones.
    pub notes: Vec<String>,
}

/// Builds the doctor's view of the homeserver at `paths`; `given` are the
/// `--bridge-config` files, `roots` where else to look.
pub fn from_homeserver(
    paths: &[PathBuf],
    given: &[PathBuf],
    roots: &Roots,
) -> Result<Discovered, LoadError> {
    let paths: Vec<PathBuf> = paths
        .iter()
        .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone()))
        .collect();
    let documents = super::homeserver_files(&paths)
        .iter()
        .map(|file| Document::load(file))
        .collect::<Result<Vec<Document>, LoadError>>()?;
    let Some(homeserver) = HomeserverConfig::merged(&documents) else {
        return Err(LoadError::Invalid {
            path: paths.first().cloned().unwrap_or_default(),
            pos: Default::default(),
            message: "no YAML file in it".to_owned(),
        });
    };
    let path = homeserver.path.clone();
    let document = documents[0].clone();
    let mut notes = Vec::new();
    let compose = compose_of(&path, &roots.docker, &mut notes);
    let units = deployment::Units::read(&roots.units);
    let runs = Runs {
        compose: compose.as_ref(),
        homeserver: deployment_of(&path, compose.as_ref(), &units),
        units,
        roots,
    };
    let mut search = Search::default();
    let given: Vec<PathBuf> = given
        .iter()
        .map(|file| std::path::absolute(file).unwrap_or_else(|_| file.clone()))
        .filter(|file| {
            let known = search.identity_of(file).is_some();
            if !known {
                notes.push(format!(
                    "{}: no `appservice` section with a token or id in it (or it cannot be read), so it belongs to no registration",
                    file.display()
                ));
            }
            known
        })
        .collect();
    let bridges: Vec<BridgeEntry> = homeserver
        .app_service_config_files
        .iter()
        .map(|registration| {
            let registration = runs.homeserver_path(registration);
            entry_for(&registration, &given, &runs, &mut search)
        })
        .collect();
    for file in &given {
        if !search.matched.contains(file) {
            notes.push(format!(
                "{}: neither its appservice.as_token nor its id or bot is in any of the registrations {} loads",
                file.display(),
                path.display()
            ));
        }
    }
    let mut config = Config::from_homeserver(document, &homeserver, bridges);
    config.homeserver.address = runs.homeserver_address(&config.homeserver.address);
    config.homeserver.log = runs
        .homeserver_log(homeserver.log_config.as_deref())
        .map(LogSource::File);
    config.homeserver.deployment = runs.homeserver.clone();
    config.compose = compose;
    Ok(Discovered { config, notes })
}

/// The doctor's own config, told how things run: with a compose file
/// beside the homeserver config it names, the homeserver's and each listed
/// bridge's service (their databases and the registrations the homeserver
/// loads are then read through their mounts, service names reached as
/// `check --homeserver` reaches them). What was wrong, one line each.
pub fn settle_deployments(config: &mut Config, roots: &Roots) -> Vec<String> {
    let mut notes = Vec::new();
    let Some(homeserver) = super::homeserver_files(&config.homeserver.config)
        .into_iter()
        .next()
    else {
        return notes;
    };
    let compose = compose_of(&homeserver, &roots.docker, &mut notes);
    let units = deployment::Units::read(&roots.units);
    let runs = Runs {
        compose: compose.as_ref(),
        homeserver: deployment_of(&homeserver, compose.as_ref(), &units),
        units,
        roots,
    };
    for entry in &mut config.bridges {
        let registration = Registration::load(&entry.registration).ok();
        entry.deployment = runs.bridge(entry.config.as_deref(), registration.as_ref());
    }
    config.homeserver.deployment = runs.homeserver.clone();
    config.compose = compose;
    notes
}

/// The compose file of the deployment, read; what is wrong with it goes
/// to the notes (one line each) and the rest of discovery goes on.
fn compose_of(homeserver: &Path, docker_root: &Path, notes: &mut Vec<String>) -> Option<Project> {
    let file = deployment::compose_file(homeserver)?;
    match deployment::load_compose(&file, docker_root) {
        Ok(project) => {
            notes.extend(project.notes.iter().cloned());
            Some(project)
        }
        Err(line) => {
            notes.push(format!(
                "{line} (so containers are not taken into account: paths are read as they are on this machine)"
            ));
            None
        }
    }
}

/// How the program whose config is `config` runs: the compose service
/// whose mounts hold it, else the systemd unit that names it.
fn deployment_of(
    config: &Path,
    compose: Option<&Project>,
    units: &deployment::Units,
) -> Deployment {
    let real = config.canonicalize().unwrap_or_else(|_| config.to_owned());
    if let Some(service) = compose.and_then(|p| p.service_holding(&real)) {
        return Deployment::compose(service);
    }
    units
        .naming(config)
        .map(|unit| Deployment::Systemd { unit })
        .unwrap_or_default()
}

/// What discovery knows of how things run, for every registration.
struct Runs<'a> {
    compose: Option<&'a Project>,
    homeserver: Deployment,
    units: deployment::Units,
    roots: &'a Roots,
}

impl Runs<'_> {
    /// A path the homeserver's config names, as this machine sees it
    /// (a registration at `/data/telegram.yaml` inside Synapse's container
    /// is in the folder mounted there).
    fn homeserver_path(&self, path: &Path) -> PathBuf {
        self.homeserver
            .to_host(path)
            .unwrap_or_else(|| path.to_owned())
    }

    /// The homeserver's log: the first file a handler of its `log_config`
    /// writes that exists here, both read through its service's mounts.
    fn homeserver_log(&self, log_config: Option<&Path>) -> Option<PathBuf> {
        let document = Document::load(&self.homeserver_path(log_config?)).ok()?;
        let handlers = document.root.get("handlers")?;
        handlers
            .entries()
            .iter()
            .filter_map(|(_, handler)| handler.get("filename")?.as_str().map(PathBuf::from))
            .filter(|name| name.is_absolute())
            .map(|name| self.homeserver_path(&name))
            .find(|path| path.is_file())
    }

    /// The homeserver's client address from this machine: its listener on
    /// the container's own loopback is reached through the port its
    /// service publishes (a public address is left as it is).
    fn homeserver_address(&self, address: &str) -> String {
        let service = self
            .homeserver
            .service()
            .and_then(|name| self.compose?.services.iter().find(|s| s.name == name));
        let published = url::Url::parse(address).ok().and_then(|url| {
            let own = matches!(url.host_str()?, "127.0.0.1" | "localhost" | "[::1]");
            let via = service
                .filter(|_| own)?
                .published(url.port_or_known_default()?)?;
            Some(format!("{}://{via}", url.scheme()))
        });
        published.unwrap_or_else(|| address.to_owned())
    }

    /// How a bridge runs: by its config when found; without one (such as
    /// heisenbridge), the compose service named after it.
    fn bridge(&self, config: Option<&Path>, registration: Option<&Registration>) -> Deployment {
        if let Some(config) = config {
            return deployment_of(config, self.compose, &self.units);
        }
        let names: Vec<&String> = registration
            .into_iter()
            .flat_map(|r| [&r.id, &r.sender_localpart])
            .flatten()
            .collect();
        self.compose
            .into_iter()
            .flat_map(|p| &p.services)
            .filter(|s| Some(s.name.as_str()) != self.homeserver.service())
            .find(|s| names.iter().any(|n| names_bridge(&s.name, n)))
            .map(Deployment::compose)
            .unwrap_or_default()
    }
}

/// The target of one loaded registration, with its config when found.
fn entry_for(
    registration_path: &Path,
    given: &[PathBuf],
    runs: &Runs,
    search: &mut Search,
) -> BridgeEntry {
    let registration = Registration::load(registration_path).ok();
    let found = registration.as_ref().and_then(|registration| {
        let given: Vec<(PathBuf, String)> = given
            .iter()
            .map(|file| (file.clone(), "given with --bridge-config".to_owned()))
            .collect();
        let installed = search.installed(&runs.roots.install).to_vec();
        let places = places_for(registration_path, Some(registration), runs, &installed);
        search
            .find(registration, &given)
            .or_else(|| search.find(registration, &places))
    });
    if let Some((file, _)) = &found {
        search.matched.insert(file.clone());
    }
    let deployment = runs.bridge(
        found.as_ref().map(|(file, _)| file.as_path()),
        registration.as_ref(),
    );
    let logs = found
        .as_ref()
        .map(|(file, _)| logs_of(file, &deployment))
        .unwrap_or_default();
    let how = match (&registration, &found) {
        (None, _) => "registration unreadable, so no config was looked for".to_owned(),
        (Some(_), Some((_, how))) => how.clone(),
        (Some(_), None) => "no config found holding this registration's as_token, id or bot (some bridges, such as heisenbridge, have none; for others name it with --bridge-config FILE)".to_owned(),
    };
    BridgeEntry {
        id: None,
        config: found.map(|(file, _)| file),
        registration: registration_path.to_owned(),
        logs,
        found: Some(how),
        deployment,
    }
}

/// The folders to look in for one registration's config, in order, each
/// with how a config found there is described.
fn places_for(
    registration_path: &Path,
    registration: Option<&Registration>,
    runs: &Runs,
    installed: &[PathBuf],
) -> Vec<(PathBuf, String)> {
    let mut places = Vec::new();
    if let Some(folder) = registration_path.parent() {
        places.push((
            folder.to_owned(),
            "found next to its registration".to_owned(),
        ));
    }
    let services = runs.compose.into_iter().flat_map(|p| &p.services);
    for service in services {
        for host in service.mounts.iter().filter_map(|m| m.host.as_ref()) {
            places.push((
                host.clone(),
                format!(
                    "found in {} (mounted by the compose service `{}`)",
                    host.display(),
                    service.name
                ),
            ));
        }
    }
    let names: Vec<String> = registration
        .into_iter()
        .flat_map(|r| [r.id.clone(), r.sender_localpart.clone()])
        .flatten()
        .collect();
    for folder in installed {
        let name = folder.file_name().unwrap_or_default().to_string_lossy();
        if names.iter().any(|n| names_bridge(&name, n)) {
            places.push((folder.clone(), format!("found in {}", folder.display())));
        }
    }
    places
}

/// Whether a folder called `folder` is likely a bridge's whose id or bot
/// name is `name` (`mautrix-telegram` for `telegram` or `telegrambot`).
fn names_bridge(folder: &str, name: &str) -> bool {
    let folder = folder.to_lowercase();
    let name = name.to_lowercase();
    let bare = folder
        .trim_start_matches("mautrix-")
        .trim_start_matches("matrix-");
    name.len() >= 3 && (folder.contains(&name) || (bare.len() >= 3 && name.contains(bare)))
}

/// What ties a bridge config to a registration: its as_token, else its
/// appservice id or its bot's user name (then its tokens differ from the
/// registration's, which is exactly what the checks must see).
#[derive(Clone, Debug, Default)]
struct Identity {
    as_token: Option<String>,
    id: Option<String>,
    bot: Option<String>,
    /// The literal start of the bridge's ghost user names (`telegram_` of
    /// `telegram_{userid}`), which the registration's users regex claims.
    ghost_prefix: Option<String>,
}

impl Identity {
    fn of(document: &Document) -> Option<Identity> {
        let text = |path: &str| document.root.path(path).and_then(|n| n.scalar_text());
        let identity = Identity {
            as_token: text("appservice.as_token"),
            id: text("appservice.id"),
            bot: text("appservice.bot_username").or_else(|| text("appservice.bot.username")),
            ghost_prefix: text("bridge.username_template")
                .or_else(|| text("appservice.username_template"))
                .map(|template| template.split('{').next().unwrap_or_default().to_owned())
                .filter(|prefix| prefix.len() >= MIN_NAME_LENGTH),
        };
        (identity.as_token.is_some() || identity.id.is_some() || identity.bot.is_some())
            .then_some(identity)
    }

    fn same_token(&self, registration: &Registration) -> bool {
        self.as_token.is_some() && self.as_token == registration.as_token
    }

    /// What names the same bridge as `registration` when the tokens do
    /// not, strongest first: its rank (0 is the id) and how it is said.
    fn same_bridge(&self, registration: &Registration) -> Option<(u8, &'static str)> {
        let same = |a: &Option<String>, b: &Option<String>| a.is_some() && a == b;
        if same(&self.id, &registration.id) {
            Some((0, "appservice.id"))
        } else if same(&self.bot, &registration.sender_localpart) {
            Some((1, "bot's user name"))
        } else if self.claims_same_ghosts(registration) {
            Some((
                2,
                "ghost user names, which the registration's users namespace claims",
            ))
        } else {
            None
        }
    }

    /// Whether the registration's users regexes claim the names this
    /// config's template makes: one literal start extends the other.
    fn claims_same_ghosts(&self, registration: &Registration) -> bool {
        let Some(prefix) = &self.ghost_prefix else {
            return false;
        };
        registration.namespaces.users.iter().any(|entry| {
            let claimed = regex_literal_start(&entry.regex);
            claimed.len() >= MIN_NAME_LENGTH
                && (claimed.starts_with(prefix.as_str()) || prefix.starts_with(&claimed))
        })
    }
}

/// Shorter names and prefixes say too little to tie a config to a bridge.
const MIN_NAME_LENGTH: usize = 3;

/// The localpart a users regex starts with literally: `telegram_` of
/// `@telegram_.*:example\\.org` (escapes read as the character they stand
/// for, up to the first operator).
fn regex_literal_start(regex: &str) -> String {
    let mut literal = String::new();
    let mut chars = regex
        .trim_start_matches('^')
        .trim_start_matches('@')
        .chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(escaped) if !escaped.is_ascii_alphanumeric() => literal.push(escaped),
                _ => break,
            },
            // These make the character before them optional.
            '*' | '?' | '{' => {
                literal.pop();
                break;
            }
            '.' | '+' | '[' | '(' | '|' | '$' | ':' => break,
            _ => literal.push(c),
        }
    }
    literal
}

/// The YAML files each config was read from, remembered across
/// registrations so no file is read twice.
#[derive(Default)]
struct Search {
    identities: HashMap<PathBuf, Option<Identity>>,
    /// Configs already given to a registration.
    matched: std::collections::HashSet<PathBuf>,
    /// The YAML files of each place, listed once: registrations share a
    /// folder, and every one of them looks there.
    listed: HashMap<PathBuf, Vec<PathBuf>>,
    /// The folders under the install roots, listed once.
    installed: Option<Vec<PathBuf>>,
}

impl Search {
    /// [`yaml_files`] of `place`, listed the first time it is asked for.
    fn yaml_files(&mut self, place: &Path) -> Vec<PathBuf> {
        self.listed
            .entry(place.to_owned())
            .or_insert_with(|| yaml_files(place))
            .clone()
    }

    /// The folders under `roots`, listed the first time.
    fn installed(&mut self, roots: &[PathBuf]) -> &[PathBuf] {
        self.installed.get_or_insert_with(|| {
            roots
                .iter()
                .flat_map(|root| list(root))
                .filter(|folder| folder.is_dir())
                .collect()
        })
    }

    /// What identifies the YAML file as a bridge config, when anything does.
    fn identity_of(&mut self, file: &Path) -> Option<Identity> {
        if let Some(known) = self.identities.get(file) {
            return known.clone();
        }
        let identity = (self.identities.len() < FILES_READ_LIMIT
            && std::fs::metadata(file).is_ok_and(|m| m.len() <= FILE_SIZE_LIMIT))
        .then(|| Document::load(file).ok())
        .flatten()
        .and_then(|document| Identity::of(&document));
        self.identities.insert(file.to_owned(), identity.clone());
        identity
    }

    /// The config of `registration` among `places` (each a file, or a folder
    /// and the folders in it, where configs sit as `config/config.yaml`):
    /// the first holding its as_token, else the first not yet taken that
    /// names the same bridge, said so in how it was found.
    fn find(
        &mut self,
        registration: &Registration,
        places: &[(PathBuf, String)],
    ) -> Option<(PathBuf, String)> {
        let mut candidates: Vec<(PathBuf, &String, Identity)> = Vec::new();
        for (place, how) in places {
            for file in self.yaml_files(place) {
                if let Some(identity) = self.identity_of(&file) {
                    candidates.push((file, how, identity));
                }
            }
        }
        if let Some((file, how, _)) = candidates
            .iter()
            .find(|(_, _, i)| i.same_token(registration))
        {
            return Some((file.clone(), (*how).clone()));
        }
        let (file, how, (_, field)) = candidates
            .iter()
            .filter(|(file, _, _)| !self.matched.contains(file))
            .filter_map(|(file, how, identity)| {
                Some((file, how, identity.same_bridge(registration)?))
            })
            .min_by_key(|(_, _, (rank, _))| *rank)?;
        Some((
            file.clone(),
            format!("{how}, by its {field}; its as_token is not the registration's"),
        ))
    }
}

/// A given file itself, or the YAML files of a folder and of the folders in
/// it. A registration holds its tokens at the top, never under
/// `appservice:`, so it is never taken for a config.
fn yaml_files(place: &Path) -> Vec<PathBuf> {
    if place.is_file() {
        return vec![place.to_owned()];
    }
    let top = list(place);
    let nested = top.iter().filter(|p| p.is_dir()).flat_map(|dir| list(dir));
    top.iter()
        .cloned()
        .chain(nested)
        .filter(|p| is_yaml(p))
        .collect()
}

fn is_yaml(path: &Path) -> bool {
    path.is_file() && path.extension().is_some_and(|e| e == "yaml" || e == "yml")
}

fn list(folder: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(folder)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    entries.sort();
    entries
}

/// The logs of a found config, as this machine sees them: the files it
/// names that exist (each path through the bridge's service's mounts), else
/// where what runs it logs (a bridge writing to stdout logs to its unit's
/// journal or its container's json-file log).
fn logs_of(config: &Path, deployment: &Deployment) -> Vec<LogSource> {
    let files: Vec<LogSource> = Document::load(config)
        .ok()
        .and_then(|doc| BridgeConfig::from_document(doc).ok())
        .map(|c| {
            c.log_files()
                .iter()
                .filter_map(|log| deployment.to_host(log))
                .filter(|log| log.is_file())
                .map(LogSource::File)
                .collect()
        })
        .unwrap_or_default();
    if !files.is_empty() {
        return files;
    }
    runner_log(deployment).into_iter().collect()
}

/// Where what runs a bridge keeps its output: a systemd unit's journal, a
/// container's json-file log; nothing for a program on this machine.
fn runner_log(deployment: &Deployment) -> Option<LogSource> {
    match deployment {
        Deployment::Systemd { unit } => Some(LogSource::Journald(unit.clone())),
        Deployment::Compose { container, .. } => Some(LogSource::Docker(container.clone())),
        Deployment::Host => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REGISTRATION: &str = "id: telegram\nurl: http://localhost:29317\nas_token: AS-TOKEN\nhs_token: HS-TOKEN\nsender_localpart: telegrambot\nnamespaces: {}\n";
    const CONFIG: &str = "homeserver:\n  address: http://localhost:8008\n  domain: example.org\nappservice:\n  address: http://localhost:29317\n  as_token: AS-TOKEN\n  hs_token: HS-TOKEN\n  bot_username: telegrambot\ntelegram:\n  api_id: 1\nlogging:\n  handlers:\n    file:\n      filename: ./bridge.log\n";

    fn homeserver(dir: &Path, registrations: &[&Path]) -> PathBuf {
        let list: Vec<String> = registrations
            .iter()
            .map(|r| format!("  - {}", r.display()))
            .collect();
        let path = dir.join("homeserver.yaml");
        std::fs::write(
            &path,
            format!(
                "server_name: example.org\nlisteners:\n  - port: 8008\n    type: http\n    resources:\n      - names: [client]\napp_service_config_files:\n{}\n",
                list.join("\n")
            ),
        )
        .unwrap();
        path
    }

    /// No install roots, no units, no Docker.
    fn nowhere() -> Roots {
        installed(Path::new("/nonexistent"))
    }

    fn installed(root: &Path) -> Roots {
        Roots {
            install: vec![root.to_owned()],
            units: Vec::new(),
            docker: PathBuf::from("/nonexistent"),
        }
    }

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn a_bridge_without_a_log_file_logs_where_its_runner_does() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.yaml");
        let without_file = &CONFIG[..CONFIG.find("logging:").unwrap()];
        write(&config, without_file);
        let unit = Deployment::Systemd {
            unit: "mautrix-telegram.service".into(),
        };
        let logs: Vec<String> = logs_of(&config, &unit)
            .iter()
            .map(|l| l.to_string())
            .collect();
        assert_eq!(logs, ["journald:mautrix-telegram.service"]);
        let container = Deployment::Compose {
            service: "telegram".into(),
            container: "tg".into(),
            mounts: Vec::new(),
        };
        let logs: Vec<String> = logs_of(&config, &container)
            .iter()
            .map(|l| l.to_string())
            .collect();
        assert_eq!(logs, ["docker:tg"]);
        assert!(logs_of(&config, &Deployment::Host).is_empty());
        // Its own log file comes first.
        write(&config, CONFIG);
        write(&dir.path().join("bridge.log"), "log\n");
        let logs = logs_of(&config, &unit);
        assert_eq!(logs, [LogSource::File(dir.path().join("./bridge.log"))]);
    }

    #[test]
    fn a_config_next_to_its_registration_with_its_logs() {
        let dir = tempfile::tempdir().unwrap();
        let registration = dir.path().join("tg/registration.yaml");
        write(&registration, REGISTRATION);
        write(&dir.path().join("tg/config.yaml"), CONFIG);
        write(&dir.path().join("tg/bridge.log"), "log\n");
        let hs = homeserver(dir.path(), &[&registration]);
        let found = from_homeserver(std::slice::from_ref(&hs), &[], &nowhere()).unwrap();
        let config = &found.config;
        assert!(!config.has_doctor);
        assert_eq!(config.homeserver.address, "http://127.0.0.1:8008");
        assert_eq!(config.homeserver.domain, "example.org");
        let entry = &config.bridges[0];
        assert_eq!(
            entry.config.as_deref(),
            Some(dir.path().join("tg/config.yaml").as_path())
        );
        assert_eq!(
            entry.found.as_deref(),
            Some("found next to its registration")
        );
        assert_eq!(
            entry.logs,
            [LogSource::File(dir.path().join("tg/./bridge.log"))]
        );
        assert!(found.notes.is_empty(), "{:?}", found.notes);
        // The bridge's own config names its logs: they are read only as
        // that config's owner could read them.
        let target = crate::facts::bridge_target(entry);
        assert_eq!(
            crate::facts::logs_named_by(config, &target),
            dir.path().join("tg/config.yaml")
        );
    }

    #[test]
    fn a_config_under_an_install_root_in_a_folder_named_after_the_bridge() {
        let dir = tempfile::tempdir().unwrap();
        let registration = dir.path().join("synapse/telegram-registration.yaml");
        write(&registration, REGISTRATION);
        let root = dir.path().join("opt");
        // A config of another bridge first, then the one with the as_token.
        write(
            &root.join("mautrix-telegram/old/config.yaml"),
            &CONFIG.replace("AS-TOKEN", "OTHER"),
        );
        write(&root.join("mautrix-telegram/config/config.yaml"), CONFIG);
        write(&root.join("unrelated/config.yaml"), CONFIG);
        let hs = homeserver(&dir.path().join("synapse"), &[&registration]);
        let found = from_homeserver(std::slice::from_ref(&hs), &[], &installed(&root)).unwrap();
        let entry = &found.config.bridges[0];
        assert_eq!(
            entry.config.as_deref(),
            Some(root.join("mautrix-telegram/config/config.yaml").as_path())
        );
        let folder = root.join("mautrix-telegram");
        assert_eq!(
            entry.found.clone().unwrap(),
            format!("found in {}", folder.display())
        );
    }

    #[test]
    fn a_config_with_other_tokens_is_found_by_its_bridge_and_said_so() {
        let dir = tempfile::tempdir().unwrap();
        let registration = dir.path().join("tg/registration.yaml");
        write(&registration, REGISTRATION);
        // Regenerated tokens: the config no longer holds the registration's.
        let config = CONFIG
            .replace("AS-TOKEN", "NEW-AS")
            .replace("HS-TOKEN", "NEW-HS")
            .replace(
                "  address: http://localhost:29317\n",
                "  address: http://localhost:29317\n  id: telegram\n",
            );
        write(&dir.path().join("tg/config.yaml"), &config);
        // Another bridge's config in the same folder is not taken.
        write(
            &dir.path().join("tg/other.yaml"),
            &CONFIG
                .replace("AS-TOKEN", "X")
                .replace("telegrambot", "otherbot"),
        );
        let hs = homeserver(dir.path(), &[&registration]);
        let found = from_homeserver(std::slice::from_ref(&hs), &[], &nowhere()).unwrap();
        let entry = &found.config.bridges[0];
        assert_eq!(
            entry.config.as_deref(),
            Some(dir.path().join("tg/config.yaml").as_path())
        );
        assert_eq!(
            entry.found.as_deref(),
            Some(
                "found next to its registration, by its appservice.id; its as_token is not the registration's"
            )
        );
        // By the bot's name when the config has no id.
        write(
            &dir.path().join("tg/config.yaml"),
            &CONFIG.replace("AS-TOKEN", "NEW-AS"),
        );
        let found = from_homeserver(std::slice::from_ref(&hs), &[], &nowhere()).unwrap();
        assert!(
            found.config.bridges[0]
                .found
                .as_deref()
                .is_some_and(|how| how
                    .ends_with("by its bot's user name; its as_token is not the registration's")),
            "{:?}",
            found.config.bridges[0].found
        );
    }

    #[test]
    fn a_renamed_bridge_with_other_tokens_is_found_by_the_ghosts_its_namespace_claims() {
        let dir = tempfile::tempdir().unwrap();
        let registration = dir.path().join("tg/registration.yaml");
        write(
            &registration,
            &REGISTRATION.replace(
                "namespaces: {}",
                "namespaces:\n  users:\n    - regex: '@telegram_.*:example\\.org'\n      exclusive: true",
            ),
        );
        // New tokens, another bot name, no id: only the ghosts tie it.
        let config = CONFIG
            .replace("AS-TOKEN", "NEW-AS")
            .replace("telegrambot", "tgbot")
            .replace(
                "telegram:\n  api_id",
                "bridge:\n  username_template: telegram_{userid}\ntelegram:\n  api_id",
            );
        write(&dir.path().join("tg/config.yaml"), &config);
        let hs = homeserver(dir.path(), &[&registration]);
        let found = from_homeserver(std::slice::from_ref(&hs), &[], &nowhere()).unwrap();
        let how = found.config.bridges[0].found.clone().unwrap_or_default();
        assert!(how.contains("by its ghost user names"), "{how}");
        // Another bridge's ghosts are not this one's.
        write(
            &dir.path().join("tg/config.yaml"),
            &config.replace("telegram_{userid}", "whatsapp_{userid}"),
        );
        let found = from_homeserver(std::slice::from_ref(&hs), &[], &nowhere()).unwrap();
        assert_eq!(found.config.bridges[0].config, None);
    }

    #[test]
    fn a_users_regex_starts_with_its_literal_localpart() {
        for (regex, start) in [
            ("@telegram_.*:example\\.org", "telegram_"),
            ("^@signal_[a-z0-9-]+:x", "signal_"),
            ("@wa\\_bot:x", "wa_bot"),
            ("@discord_?.*", "discord"),
            ("@.*", ""),
            ("@irc\\d+", "irc"),
        ] {
            assert_eq!(regex_literal_start(regex), start, "{regex}");
        }
    }

    #[test]
    fn a_packaged_homeserver_config_is_read_with_its_conf_d() {
        let dir = tempfile::tempdir().unwrap();
        let registration = dir.path().join("tg/registration.yaml");
        write(&registration, REGISTRATION);
        write(&dir.path().join("tg/config.yaml"), CONFIG);
        // Debian's layout: the main file names no server and no bridge.
        let hs = dir.path().join("etc/homeserver.yaml");
        write(
            &hs,
            "server_name: placeholder\nlisteners:\n  - port: 8008\n    bind_addresses: ['127.0.0.1']\n    resources: [{names: [client]}]\n",
        );
        write(
            &dir.path().join("etc/conf.d/server_name.yaml"),
            "server_name: example.org\n",
        );
        write(
            &dir.path().join("etc/conf.d/bridges.yaml"),
            &format!(
                "app_service_config_files:\n  - {}\n",
                registration.display()
            ),
        );
        write(&dir.path().join("etc/conf.d/notes.txt"), "not yaml\n");
        let found = from_homeserver(std::slice::from_ref(&hs), &[], &nowhere()).unwrap();
        assert_eq!(found.config.homeserver.domain, "example.org", "conf.d wins");
        assert_eq!(
            found.config.homeserver.config,
            [
                hs.clone(),
                dir.path().join("etc/conf.d/bridges.yaml"),
                dir.path().join("etc/conf.d/server_name.yaml"),
            ]
        );
        assert_eq!(found.config.bridges.len(), 1);
        assert!(found.config.bridges[0].config.is_some());
        // Several paths given: merged in the order given, folders sorted.
        let found = from_homeserver(&[dir.path().join("etc/conf.d"), hs], &[], &nowhere()).unwrap();
        assert_eq!(
            found.config.homeserver.domain, "placeholder",
            "the later file wins"
        );
    }

    #[test]
    fn given_configs_win_and_strays_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let registration = dir.path().join("reg/registration.yaml");
        write(&registration, REGISTRATION);
        write(&dir.path().join("reg/config.yaml"), CONFIG);
        let given = dir.path().join("elsewhere/tg.yaml");
        write(&given, CONFIG);
        let stray = dir.path().join("elsewhere/other.yaml");
        write(&stray, &CONFIG.replace("AS-TOKEN", "NOBODY"));
        let hs = homeserver(dir.path(), &[&registration]);
        let found = from_homeserver(
            std::slice::from_ref(&hs),
            &[given.clone(), stray.clone()],
            &nowhere(),
        )
        .unwrap();
        let entry = &found.config.bridges[0];
        assert_eq!(entry.config.as_deref(), Some(given.as_path()));
        assert_eq!(entry.found.as_deref(), Some("given with --bridge-config"));
        assert_eq!(found.notes.len(), 1, "{:?}", found.notes);
        assert!(found.notes[0].contains("other.yaml"), "{:?}", found.notes);
    }

    #[test]
    fn each_path_is_read_through_the_mounts_of_the_service_that_uses_it() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        // Both services mount their own folder at /data.
        write(
            &root.join("synapse/telegram-registration.yaml"),
            REGISTRATION,
        );
        write(
            &root.join("telegram/config.yaml"),
            &CONFIG.replace("./bridge.log", "/data/bridge.log"),
        );
        write(&root.join("telegram/bridge.log"), "log\n");
        write(&root.join("synapse/bridge.log"), "not this one\n");
        write(
            &root.join("docker-compose.yml"),
            "services:\n  synapse:\n    ports: ['127.0.0.1:18008:8008']\n    volumes:\n      - ./synapse:/data\n  mautrix-telegram:\n    container_name: tg\n    volumes:\n      - type: bind\n        source: ./telegram\n        target: /data\n      - ./missing:/backup\n",
        );
        let hs = homeserver(
            &root.join("synapse"),
            &[Path::new("/data/telegram-registration.yaml")],
        );
        // Synapse's log, named in its log config, both at /data paths.
        std::fs::write(
            &hs,
            std::fs::read_to_string(&hs).unwrap() + "log_config: /data/log.config\n",
        )
        .unwrap();
        write(
            &root.join("synapse/log.config"),
            "version: 1\nhandlers:\n  console:\n    class: logging.StreamHandler\n  file:\n    class: logging.handlers.RotatingFileHandler\n    filename: /data/homeserver.log\n",
        );
        write(&root.join("synapse/homeserver.log"), "started\n");
        let found = from_homeserver(std::slice::from_ref(&hs), &[], &nowhere()).unwrap();
        let config = &found.config;
        assert_eq!(
            config.homeserver.address, "http://127.0.0.1:18008",
            "Synapse's listener through its published port"
        );
        assert_eq!(config.homeserver.deployment.service(), Some("synapse"));
        assert_eq!(
            config.homeserver.log,
            Some(LogSource::File(root.join("synapse/homeserver.log")))
        );
        let entry = &config.bridges[0];
        assert_eq!(
            entry.registration,
            root.join("synapse/telegram-registration.yaml")
        );
        assert_eq!(
            entry.config.as_deref(),
            Some(root.join("telegram/config.yaml").as_path())
        );
        assert_eq!(
            entry.found.as_deref(),
            Some(
                format!(
                    "found in {} (mounted by the compose service `mautrix-telegram`)",
                    root.join("telegram").display()
                )
                .as_str()
            )
        );
        assert_eq!(
            entry.logs,
            [LogSource::File(root.join("telegram/bridge.log"))]
        );
        assert_eq!(
            serde_json::to_value(&entry.deployment).unwrap(),
            serde_json::json!({"kind": "compose", "service": "mautrix-telegram", "container": "tg"})
        );
        assert_eq!(found.notes.len(), 1, "{:?}", found.notes);
        assert!(
            found.notes[0].contains("missing at /backup, which does not exist"),
            "{:?}",
            found.notes
        );
    }

    #[test]
    fn the_doctors_own_config_is_told_how_things_run() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        write(&root.join("synapse/telegram.yaml"), REGISTRATION);
        write(&root.join("telegram/config.yaml"), CONFIG);
        let hs = homeserver(&root.join("synapse"), &[Path::new("/data/telegram.yaml")]);
        write(
            &root.join("compose.yaml"),
            "services:\n  synapse:\n    volumes: ['./synapse:/data']\n  telegram:\n    volumes: ['./telegram:/data']\n",
        );
        let doctor = root.join("doctor.yaml");
        write(
            &doctor,
            &format!(
                "homeserver:\n  address: http://localhost:8008\n  domain: example.org\n  config: {}\nappservice:\n  address: http://localhost:29399\n  port: 29399\n  bot:\n    username: doctor\n  as_token: a\n  hs_token: b\nbridges:\n  - config: telegram/config.yaml\n    registration: synapse/telegram.yaml\n",
                hs.display()
            ),
        );
        let mut config = Config::load(&doctor).unwrap();
        let notes = settle_deployments(&mut config, &nowhere());
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(config.homeserver.deployment.service(), Some("synapse"));
        assert_eq!(config.bridges[0].deployment.service(), Some("telegram"));
        let facts = crate::facts::Facts::load(&config);
        let loaded = &facts.homeserver.registrations;
        assert_eq!(loaded[0].0, root.join("synapse/telegram.yaml"));
        assert!(loaded[0].1.is_ok(), "read through Synapse's mount");
    }

    #[test]
    fn a_broken_compose_file_is_one_note_and_discovery_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let registration = dir.path().join("tg/registration.yaml");
        write(&registration, REGISTRATION);
        write(&dir.path().join("tg/config.yaml"), CONFIG);
        write(
            &dir.path().join("compose.yaml"),
            "services:\n  synapse: [\n",
        );
        let hs = homeserver(dir.path(), &[&registration]);
        let found = from_homeserver(std::slice::from_ref(&hs), &[], &nowhere()).unwrap();
        assert!(found.config.bridges[0].config.is_some());
        assert_eq!(found.config.bridges[0].deployment, Deployment::Host);
        assert_eq!(found.notes.len(), 1, "{:?}", found.notes);
        assert!(
            found.notes[0].contains("compose.yaml") && found.notes[0].contains("not valid YAML"),
            "{:?}",
            found.notes
        );
    }

    #[test]
    fn no_config_found_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let registration = dir.path().join("registration.yaml");
        write(&registration, REGISTRATION);
        let missing = dir.path().join("gone.yaml");
        let hs = homeserver(dir.path(), &[&registration, &missing]);
        let found = from_homeserver(std::slice::from_ref(&hs), &[], &nowhere()).unwrap();
        assert_eq!(found.config.bridges.len(), 2);
        assert!(found.config.bridges[0].config.is_none());
        assert!(
            found.config.bridges[0]
                .found
                .as_ref()
                .unwrap()
                .contains("--bridge-config")
        );
        assert!(
            found.config.bridges[1]
                .found
                .as_ref()
                .unwrap()
                .contains("unreadable")
        );
        assert!(matches!(
            from_homeserver(&[dir.path().join("nothing.yaml")], &[], &nowhere()),
            Err(LoadError::Unreadable { .. })
        ));
    }

    #[test]
    fn folder_names_that_name_a_bridge() {
        assert!(names_bridge("mautrix-telegram", "telegram"));
        assert!(names_bridge("mautrix-telegram", "telegrambot"));
        assert!(names_bridge("heisenbridge", "heisenbridge"));
        assert!(!names_bridge("mautrix-telegram", "whatsapp"));
        assert!(!names_bridge("ssl", "tg"));
    }
}
