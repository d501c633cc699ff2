//! `check --homeserver` and `packet --homeserver`: what the doctor's config
//! would have said, found on disk, so an admin gets answers before setting
//! anything up. Each registration the homeserver loads is a target; its
//! bridge config is the YAML file whose `appservice.as_token` equals the
//! registration's, else one that names the same bridge (`appservice.id`, the
//! bot's user name, the ghosts its users namespace claims) with other
//! tokens: the evidence the token checks need,
//! never a reason to drop it. Looked for in this order: the files given with
//! `--bridge-config`, the registration's own folder, the folders a
//! docker-compose file beside the homeserver config mounts, then where
//! bridges are usually installed (one folder per bridge under the roots).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::input::bridge::BridgeConfig;
use crate::input::config::{BridgeEntry, Config};
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

/// Builds the doctor's view of the homeserver at `path`; `given` are the
/// `--bridge-config` files, `roots` the install roots to search.
pub fn from_homeserver(
    paths: &[PathBuf],
    given: &[PathBuf],
    roots: &[PathBuf],
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
    let mounts = compose_mounts(path.parent().unwrap_or(Path::new("/")));
    let mut search = Search::default();
    let mut notes = Vec::new();
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
            let registration = through_mounts(registration, &mounts);
            entry_for(&registration, &given, &mounts, roots, &mut search)
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
    let config = Config::from_homeserver(document, &homeserver, bridges);
    Ok(Discovered { config, notes })
}

/// The target of one loaded registration, with its config when found.
fn entry_for(
    registration_path: &Path,
    given: &[PathBuf],
    mounts: &[(PathBuf, PathBuf)],
    roots: &[PathBuf],
    search: &mut Search,
) -> BridgeEntry {
    let registration = Registration::load(registration_path).ok();
    let found = registration.as_ref().and_then(|registration| {
        let given: Vec<(PathBuf, String)> = given
            .iter()
            .map(|file| (file.clone(), "given with --bridge-config".to_owned()))
            .collect();
        let places = places_for(registration_path, Some(registration), mounts, roots);
        search
            .find(registration, &given)
            .or_else(|| search.find(registration, &places))
    });
    if let Some((file, _)) = &found {
        search.matched.insert(file.clone());
    }
    let logs = found
        .as_ref()
        .map(|(file, _)| logs_of(file))
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
    }
}

/// The folders to look in for one registration's config, in order, each
/// with how a config found there is described.
fn places_for(
    registration_path: &Path,
    registration: Option<&Registration>,
    mounts: &[(PathBuf, PathBuf)],
    roots: &[PathBuf],
) -> Vec<(PathBuf, String)> {
    let mut places = Vec::new();
    if let Some(folder) = registration_path.parent() {
        places.push((
            folder.to_owned(),
            "found next to its registration".to_owned(),
        ));
    }
    for (host, _) in mounts {
        places.push((
            host.clone(),
            format!("found in {} (mounted by docker-compose)", host.display()),
        ));
    }
    let names: Vec<String> = registration
        .into_iter()
        .flat_map(|r| [r.id.clone(), r.sender_localpart.clone()])
        .flatten()
        .collect();
    for root in roots {
        for folder in list(root).into_iter().filter(|f| f.is_dir()) {
            let name = folder.file_name().unwrap_or_default().to_string_lossy();
            if names.iter().any(|n| names_bridge(&name, n)) {
                places.push((folder.clone(), format!("found in {}", folder.display())));
            }
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
}

impl Search {
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
        let candidates: Vec<(PathBuf, &String, Identity)> = places
            .iter()
            .flat_map(|(place, how)| yaml_files(place).into_iter().map(move |file| (file, how)))
            .filter_map(|(file, how)| Some((file.clone(), how, self.identity_of(&file)?)))
            .collect();
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

/// The log files the found config names that exist.
fn logs_of(config: &Path) -> Vec<LogSource> {
    Document::load(config)
        .ok()
        .and_then(|doc| BridgeConfig::from_document(doc).ok())
        .map(|c| {
            c.log_files()
                .into_iter()
                .filter(|l| l.is_file())
                .map(LogSource::File)
                .collect()
        })
        .unwrap_or_default()
}

/// What runs a bridge, as the deployment shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Runner {
    /// A systemd unit (`matrix-mautrix-telegram.service`).
    SystemdUnit(String),
    /// A container, by the name Docker gives it (`mautrix-telegram`).
    Container(String),
}

/// For a bridge whose config names no log file, its runner's log: a
/// bridge that writes to stdout logs where its unit's journal or its
/// container's json-file log is. The deployment model calls this once it
/// knows the unit or container.
pub fn add_runner_log(entry: &mut BridgeEntry, runner: &Runner) {
    if !entry.logs.is_empty() {
        return;
    }
    entry.logs.push(match runner {
        Runner::SystemdUnit(unit) => LogSource::Journald(unit.clone()),
        Runner::Container(name) => LogSource::Docker(name.clone()),
    });
}

/// The bind mounts `(host folder, container folder)` of every service in a
/// docker-compose file beside the homeserver config (or one folder up).
pub fn compose_mounts(homeserver_folder: &Path) -> Vec<(PathBuf, PathBuf)> {
    const NAMES: &[&str] = &[
        "docker-compose.yml",
        "docker-compose.yaml",
        "compose.yml",
        "compose.yaml",
    ];
    let folders = [Some(homeserver_folder), homeserver_folder.parent()];
    folders
        .into_iter()
        .flatten()
        .flat_map(|folder| NAMES.iter().map(move |name| folder.join(name)))
        .filter_map(|file| Document::load(&file).ok())
        .flat_map(|doc| mounts_in(&doc))
        .collect()
}

fn mounts_in(compose: &Document) -> Vec<(PathBuf, PathBuf)> {
    let base = compose.path.parent().unwrap_or(Path::new("/"));
    let Some(services) = compose.root.get("services") else {
        return Vec::new();
    };
    services
        .entries()
        .iter()
        .filter_map(|(_, service)| service.get("volumes"))
        .flat_map(|volumes| volumes.items().iter())
        .filter_map(|volume| {
            let (source, target) = match volume.scalar_text() {
                Some(short) => {
                    let mut parts = short.splitn(3, ':');
                    (parts.next()?.to_owned(), parts.next()?.to_owned())
                }
                None => (
                    volume.get("source")?.scalar_text()?,
                    volume.get("target")?.scalar_text()?,
                ),
            };
            // Named volumes (no path) live in Docker's own storage.
            let is_path = source.starts_with('/') || source.starts_with('.');
            let host = base.join(&source);
            is_path.then(|| (host.canonicalize().unwrap_or(host), PathBuf::from(target)))
        })
        .filter(|(host, _)| host.is_dir())
        .collect()
}

/// A path as the host sees it: a registration named by its path inside a
/// container (`/data/telegram.yaml`) is found under the folder mounted there.
fn through_mounts(path: &Path, mounts: &[(PathBuf, PathBuf)]) -> PathBuf {
    if path.exists() {
        return path.to_owned();
    }
    mounts
        .iter()
        .filter_map(|(host, container)| Some(host.join(path.strip_prefix(container).ok()?)))
        .find(|mapped| mapped.exists())
        .unwrap_or_else(|| path.to_owned())
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

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn a_bridge_without_a_log_file_logs_where_its_runner_does() {
        let mut entry = BridgeEntry {
            id: None,
            config: None,
            registration: PathBuf::from("/r.yaml"),
            logs: Vec::new(),
            found: None,
        };
        add_runner_log(
            &mut entry,
            &Runner::SystemdUnit("mautrix-telegram.service".into()),
        );
        assert_eq!(
            entry.logs[0].to_string(),
            "journald:mautrix-telegram.service"
        );
        // Its own log file comes first: the runner's log is not added.
        add_runner_log(&mut entry, &Runner::Container("tg".into()));
        assert_eq!(entry.logs.len(), 1);
        entry.logs.clear();
        add_runner_log(&mut entry, &Runner::Container("tg".into()));
        assert_eq!(entry.logs[0].to_string(), "docker:tg");
    }

    #[test]
    fn a_config_next_to_its_registration_with_its_logs() {
        let dir = tempfile::tempdir().unwrap();
        let registration = dir.path().join("tg/registration.yaml");
        write(&registration, REGISTRATION);
        write(&dir.path().join("tg/config.yaml"), CONFIG);
        write(&dir.path().join("tg/bridge.log"), "log\n");
        let hs = homeserver(dir.path(), &[&registration]);
        let found = from_homeserver(std::slice::from_ref(&hs), &[], &[]).unwrap();
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
        let found =
            from_homeserver(std::slice::from_ref(&hs), &[], std::slice::from_ref(&root)).unwrap();
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
        let found = from_homeserver(std::slice::from_ref(&hs), &[], &[]).unwrap();
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
        let found = from_homeserver(std::slice::from_ref(&hs), &[], &[]).unwrap();
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
        let found = from_homeserver(std::slice::from_ref(&hs), &[], &[]).unwrap();
        let how = found.config.bridges[0].found.clone().unwrap_or_default();
        assert!(how.contains("by its ghost user names"), "{how}");
        // Another bridge's ghosts are not this one's.
        write(
            &dir.path().join("tg/config.yaml"),
            &config.replace("telegram_{userid}", "whatsapp_{userid}"),
        );
        let found = from_homeserver(std::slice::from_ref(&hs), &[], &[]).unwrap();
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
        let found = from_homeserver(std::slice::from_ref(&hs), &[], &[]).unwrap();
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
        let found = from_homeserver(&[dir.path().join("etc/conf.d"), hs], &[], &[]).unwrap();
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
            &[],
        )
        .unwrap();
        let entry = &found.config.bridges[0];
        assert_eq!(entry.config.as_deref(), Some(given.as_path()));
        assert_eq!(entry.found.as_deref(), Some("given with --bridge-config"));
        assert_eq!(found.notes.len(), 1, "{:?}", found.notes);
        assert!(found.notes[0].contains("other.yaml"), "{:?}", found.notes);
    }

    #[test]
    fn container_paths_are_read_through_the_compose_mounts() {
        let dir = tempfile::tempdir().unwrap();
        write(
            &dir.path().join("bridges/telegram/registration.yaml"),
            REGISTRATION,
        );
        write(&dir.path().join("bridges/telegram/config.yaml"), CONFIG);
        write(
            &dir.path().join("docker-compose.yml"),
            "services:\n  synapse:\n    volumes:\n      - ./bridges:/bridges:ro\n      - synapse-data:/data\n  telegram:\n    volumes:\n      - type: bind\n        source: ./bridges/telegram\n        target: /data\n",
        );
        let hs = homeserver(
            dir.path(),
            &[Path::new("/bridges/telegram/registration.yaml")],
        );
        let found = from_homeserver(std::slice::from_ref(&hs), &[], &[]).unwrap();
        let entry = &found.config.bridges[0];
        let folder = dir.path().join("bridges/telegram").canonicalize().unwrap();
        assert_eq!(entry.registration, folder.join("registration.yaml"));
        assert_eq!(
            entry.config.as_deref(),
            Some(folder.join("config.yaml").as_path())
        );
    }

    #[test]
    fn no_config_found_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let registration = dir.path().join("registration.yaml");
        write(&registration, REGISTRATION);
        let missing = dir.path().join("gone.yaml");
        let hs = homeserver(dir.path(), &[&registration, &missing]);
        let found = from_homeserver(std::slice::from_ref(&hs), &[], &[]).unwrap();
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
            from_homeserver(&[dir.path().join("nothing.yaml")], &[], &[]),
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
