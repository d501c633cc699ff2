//! The doctor's own config file (`config.example.yaml` is the reference).
//!
//! Every problem is reported at once, each naming the file, line, column,
//! field and what to do, because an admin fixing a config one error per
//! restart gives up.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::input::compose::{Mount, Project, Service};
use crate::input::fields::{FieldProblem, FieldReader};
use crate::input::log_source::{LogPlaces, LogSource};
use crate::input::yaml::{Document, LoadError, Node, Pos};

/// The text mautrix bridges (and we) put where a token must be generated.
pub const TOKEN_PLACEHOLDER: &str = "This value is generated when generating the registration";

/// Values of the doctor's own config a supporter may see (deny by
/// default, `input::safe_paths`).
pub const SAFE_PATHS: &[&str] = &[
    "homeserver.address",
    "homeserver.domain",
    "homeserver.config",
    "homeserver.config[]",
    "homeserver.log",
    "appservice.address",
    "appservice.hostname",
    "appservice.id",
    "appservice.registration",
    "appservice.bot.username",
    "appservice.bot.displayname",
    "encryption.store",
    "database",
    "command_prefix",
    "permissions.*",
    "bridges[].id",
    "bridges[].config",
    "bridges[].registration",
    "bridges[].logs[]",
    "metrics.listen",
    "logging.level",
    "logging.format",
];

pub const DEFAULT_MAX_BODY_BYTES: u64 = 16 * 1024 * 1024;
/// `log_window_mib` when the config does not say.
pub const DEFAULT_LOG_WINDOW_BYTES: u64 = 50 * 1024 * 1024;

#[derive(Clone, Debug)]
pub struct Config {
    pub path: PathBuf,
    pub document: Document,
    pub homeserver: HomeserverSection,
    pub appservice: AppserviceSection,
    /// A sqlx URL; relative SQLite paths are resolved against the config's folder.
    pub database: String,
    pub command_prefix: String,
    pub permissions: Vec<(String, Permission)>,
    pub bridges: Vec<BridgeEntry>,
    pub logging: Logging,
    /// How much of the end of each log the `logs.*` checks read.
    pub log_window_bytes: u64,
    /// Where `journald:` and `docker:` logs are read (the global
    /// `--journal-dir` and `--docker-root`; the system's places by default).
    pub log_places: LogPlaces,
    pub encryption: EncryptionSection,
    /// How often `run` checks every target again; `None`: not at all.
    pub watch_interval: Option<std::time::Duration>,
    /// Where `run` serves Prometheus metrics; `None`: nowhere.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// `false` for a config made from a homeserver's (`--homeserver`): no
    /// doctor of its own to check, and its appservice section is empty.
    pub has_doctor: bool,
    /// The compose file beside the homeserver's config, when discovery
    /// found one: its service names are addresses only its network resolves.
    pub compose: Option<Project>,
}

/// `watch.interval_seconds` when the config does not say.
pub const DEFAULT_WATCH_SECONDS: u64 = 300;
/// The shortest watch interval: a check run probes every target.
pub const MIN_WATCH_SECONDS: u64 = 10;

/// The bot's own device for encrypted rooms.
#[derive(Clone, Debug)]
pub struct EncryptionSection {
    /// Answer in encrypted rooms (with a device of the bot's own).
    pub allow: bool,
    /// Encrypts the crypto store; the placeholder until `generate-registration`.
    pub pickle_key: String,
    /// The crypto store folder.
    pub store: PathBuf,
}

impl EncryptionSection {
    pub fn has_placeholder_key(&self) -> bool {
        is_placeholder_token(&self.pickle_key)
    }
}

#[derive(Clone, Debug)]
pub struct HomeserverSection {
    pub address: String,
    pub domain: String,
    /// The homeserver's config as given: files and folders, merged in this
    /// order the way Synapse merges its `--config-path`s
    /// (`facts::homeserver_files` resolves them).
    pub config: Vec<PathBuf>,
    pub log: Option<LogSource>,
    /// How the homeserver runs: its paths are read through its service's mounts.
    pub deployment: Deployment,
    /// How long `run` waits for an unreachable homeserver before giving up.
    pub startup_wait_seconds: u64,
}

#[derive(Clone, Debug)]
pub struct AppserviceSection {
    pub address: String,
    pub hostname: String,
    pub port: u16,
    pub id: String,
    pub bot_username: String,
    pub bot_displayname: Option<String>,
    pub as_token: String,
    pub hs_token: String,
    pub max_body_bytes: u64,
    /// The doctor's own registration file when the config names it
    /// (`generate-registration -r FILE` records it). Not in the contract's
    /// key list: an addition. Unnamed, the doctor looks for it among the
    /// homeserver's registrations, then next to the config.
    pub registration: Option<PathBuf>,
    /// `registration.yaml` next to the config: where an unnamed registration
    /// is written and, failing all else, looked for.
    pub default_registration: PathBuf,
}

impl AppserviceSection {
    /// The registration file named in the config, else the default one.
    pub fn registration_or_default(&self) -> &Path {
        self.registration
            .as_deref()
            .unwrap_or(&self.default_registration)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    User,
    Admin,
}

#[derive(Clone, Debug)]
pub struct BridgeEntry {
    pub id: Option<String>,
    pub config: Option<PathBuf>,
    pub registration: PathBuf,
    pub logs: Vec<LogSource>,
    /// How `--homeserver` came by `config` (or where it looked in vain),
    /// for the report; `None` for the doctor config's own entries.
    pub found: Option<String>,
    /// How the bridge runs; its database and log paths are its own view.
    pub deployment: Deployment,
}

/// How a program runs, as far as the doctor can tell: what the report
/// says of each target (`deployment` in the JSON) and where its logs are
/// (the container's name, the unit's).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Deployment {
    /// A compose service; the paths it names are read through its mounts.
    Compose {
        service: String,
        container: String,
        #[serde(skip)]
        mounts: Vec<Mount>,
    },
    /// A systemd unit whose `ExecStart` names the program's config.
    Systemd { unit: String },
    /// Started some other way on this machine: its paths are ours.
    #[default]
    Host,
}

impl Deployment {
    pub fn compose(service: &Service) -> Deployment {
        Deployment::Compose {
            service: service.name.clone(),
            container: service.container_name.clone(),
            mounts: service.mounts.clone(),
        }
    }

    /// Where an absolute path the program names is on this machine:
    /// through its service's mounts; `None` when it is in the container's
    /// own file system (or on a volume this machine cannot see).
    pub fn to_host(&self, path: &Path) -> Option<PathBuf> {
        match self {
            Deployment::Compose { mounts, .. } if path.is_absolute() => {
                crate::input::compose::to_host(mounts, path)
            }
            _ => Some(path.to_owned()),
        }
    }

    /// The compose service's name.
    pub fn service(&self) -> Option<&str> {
        match self {
            Deployment::Compose { service, .. } => Some(service),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Logging {
    pub level: String,
    pub json: bool,
}

/// Why the config cannot be used; the `Display` is what the admin reads.
#[derive(Debug)]
pub enum ConfigError {
    Load(LoadError),
    Fields(Vec<FieldProblem>),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Load(err) => write!(f, "{err}"),
            ConfigError::Fields(problems) => {
                writeln!(f, "the config has {} problem(s):", problems.len())?;
                for problem in problems {
                    writeln!(f, "  {problem}")?;
                }
                write!(f, "See config.example.yaml for every key with its meaning.")
            }
        }
    }
}

impl std::error::Error for ConfigError {}

impl AppserviceSection {
    pub fn bot_user_id(&self, domain: &str) -> String {
        format!("@{}:{}", self.bot_username, domain)
    }

    pub fn has_placeholder_tokens(&self) -> bool {
        is_placeholder_token(&self.as_token) || is_placeholder_token(&self.hs_token)
    }
}

pub fn is_placeholder_token(token: &str) -> bool {
    token.is_empty() || token == TOKEN_PLACEHOLDER || token == "generate"
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        // Absolute, so every path shown later says where the file really is.
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
        let document = Document::load(&path).map_err(ConfigError::Load)?;
        Config::from_document(document)
    }

    pub fn from_document(document: Document) -> Result<Config, ConfigError> {
        let path = document.path.clone();
        let base = path.parent().map(Path::to_owned).unwrap_or_default();
        let root = &document.root;
        let mut reader = FieldReader::new(&path);

        let homeserver = reader
            .section(root, "homeserver")
            .map(|hs| read_homeserver(&mut reader, hs, &base));
        let appservice = reader
            .section(root, "appservice")
            .map(|section| read_appservice(&mut reader, section, base.as_path()));
        let database = reader
            .opt_string(root, "database", "database")
            .unwrap_or_else(|| "sqlite:doctor.db".to_owned());
        let command_prefix = reader
            .opt_string(root, "command_prefix", "command_prefix")
            .unwrap_or_else(|| "!doctor".to_owned());
        let permissions = read_permissions(&mut reader, root);
        let bridges = read_bridges(&mut reader, root, &base);
        let logging = read_logging(&mut reader, root);
        let encryption = read_encryption(&mut reader, root, &base);
        let watch_interval = read_watch(&mut reader, root);
        let metrics_listen = read_metrics(&mut reader, root);
        let log_window_bytes = reader
            .opt_u64(root, "log_window_mib", "log_window_mib")
            .map_or(DEFAULT_LOG_WINDOW_BYTES, |mib| mib * 1024 * 1024);

        match (homeserver, appservice) {
            (Some(homeserver), Some(appservice)) if reader.problems.is_empty() => Ok(Config {
                database: resolve_sqlite_path(&database, &base),
                path,
                document,
                homeserver,
                appservice,
                command_prefix,
                permissions,
                bridges,
                logging,
                log_window_bytes,
                log_places: LogPlaces::default(),
                encryption,
                watch_interval,
                metrics_listen,
                has_doctor: true,
                compose: None,
            }),
            _ => Err(ConfigError::Fields(reader.problems)),
        }
    }

    /// What `check` and `packet` need, made from the homeserver's config
    /// alone: its address and server name, and `bridges` (found by
    /// `facts::discover`). There is no doctor to check.
    pub fn from_homeserver(
        document: Document,
        homeserver: &crate::input::homeserver::HomeserverConfig,
        bridges: Vec<BridgeEntry>,
    ) -> Config {
        let base = document
            .path
            .parent()
            .map(Path::to_owned)
            .unwrap_or_default();
        Config {
            path: document.path.clone(),
            homeserver: HomeserverSection {
                address: homeserver.client_address.clone().unwrap_or_default(),
                domain: homeserver.server_name.clone().unwrap_or_default(),
                config: homeserver.files.clone(),
                log: None,
                deployment: Deployment::Host,
                startup_wait_seconds: 0,
            },
            appservice: AppserviceSection {
                address: String::new(),
                hostname: String::new(),
                port: 0,
                id: String::new(),
                bot_username: String::new(),
                bot_displayname: None,
                as_token: String::new(),
                hs_token: String::new(),
                max_body_bytes: DEFAULT_MAX_BODY_BYTES,
                registration: None,
                default_registration: base.join("registration.yaml"),
            },
            database: String::new(),
            command_prefix: String::new(),
            permissions: Vec::new(),
            bridges,
            logging: Logging {
                level: "info".to_owned(),
                json: false,
            },
            log_window_bytes: DEFAULT_LOG_WINDOW_BYTES,
            log_places: LogPlaces::default(),
            encryption: EncryptionSection {
                allow: false,
                pickle_key: String::new(),
                store: base.join("crypto"),
            },
            watch_interval: None,
            metrics_listen: None,
            has_doctor: false,
            compose: None,
            document,
        }
    }

    /// Where a value sits in the file, for evidence ("config.yaml:12:13").
    pub fn position_of(&self, dotted: &str) -> Pos {
        self.document
            .root
            .path(dotted)
            .map(|node| node.pos)
            .unwrap_or_default()
    }
}

fn read_homeserver(reader: &mut FieldReader, hs: &Node, base: &Path) -> HomeserverSection {
    let address = reader
        .string(hs, "address", "homeserver.address")
        .unwrap_or_default();
    if !address.is_empty() && url::Url::parse(&address).is_err() {
        let pos = hs.get("address").map(|n| n.pos).unwrap_or_default();
        reader.problem(
            pos,
            "homeserver.address",
            "is not a URL: write it as http://host:port or https://host",
        );
    }
    HomeserverSection {
        address,
        domain: reader
            .string(hs, "domain", "homeserver.domain")
            .unwrap_or_default(),
        config: reader
            .string_or_list(hs, "config", "homeserver.config")
            .into_iter()
            .map(|p| base.join(p))
            .collect(),
        log: reader
            .opt_string(hs, "log", "homeserver.log")
            .and_then(|text| read_log_source(reader, hs, "log", "homeserver.log", &text, base)),
        deployment: Deployment::Host,
        startup_wait_seconds: reader
            .opt_u64(
                hs,
                "startup_wait_seconds",
                "homeserver.startup_wait_seconds",
            )
            .unwrap_or(30),
    }
}

fn read_appservice(reader: &mut FieldReader, section: &Node, base: &Path) -> AppserviceSection {
    let port = match reader.opt_u64(section, "port", "appservice.port") {
        Some(port) if port > 0 && port <= u64::from(u16::MAX) => port as u16,
        Some(_) => {
            let pos = section.get("port").map(|n| n.pos).unwrap_or_default();
            reader.problem(pos, "appservice.port", "must be between 1 and 65535");
            0
        }
        None => 29399,
    };
    let bot = section.get("bot");
    let bot_username = match bot {
        Some(bot) => reader.string(bot, "username", "appservice.bot.username"),
        None => {
            reader.problem(
                section.pos,
                "appservice.bot",
                "section is missing: add `bot:` with `username:`",
            );
            None
        }
    }
    .unwrap_or_default();
    let bot_displayname =
        bot.and_then(|bot| reader.opt_string(bot, "displayname", "appservice.bot.displayname"));
    AppserviceSection {
        address: reader
            .string(section, "address", "appservice.address")
            .unwrap_or_default(),
        hostname: reader
            .opt_string(section, "hostname", "appservice.hostname")
            .unwrap_or_else(|| "127.0.0.1".to_owned()),
        port,
        id: reader
            .opt_string(section, "id", "appservice.id")
            .unwrap_or_else(|| "doctor".to_owned()),
        bot_username,
        bot_displayname,
        as_token: reader
            .string(section, "as_token", "appservice.as_token")
            .unwrap_or_default(),
        hs_token: reader
            .string(section, "hs_token", "appservice.hs_token")
            .unwrap_or_default(),
        max_body_bytes: reader
            .opt_u64(section, "max_body_bytes", "appservice.max_body_bytes")
            .unwrap_or(DEFAULT_MAX_BODY_BYTES),
        registration: reader
            .opt_string(section, "registration", "appservice.registration")
            .map(|path| base.join(path)),
        default_registration: base.join("registration.yaml"),
    }
}

fn read_encryption(reader: &mut FieldReader, root: &Node, base: &Path) -> EncryptionSection {
    let Some(section) = root.get("encryption").filter(|n| !n.is_null()) else {
        return EncryptionSection {
            allow: true,
            pickle_key: String::new(),
            store: base.join("crypto"),
        };
    };
    EncryptionSection {
        allow: reader
            .opt_bool(section, "allow", "encryption.allow")
            .unwrap_or(true),
        pickle_key: reader
            .opt_string(section, "pickle_key", "encryption.pickle_key")
            .unwrap_or_default(),
        store: base.join(
            reader
                .opt_string(section, "store", "encryption.store")
                .unwrap_or_else(|| "crypto".to_owned()),
        ),
    }
}

fn read_permissions(reader: &mut FieldReader, root: &Node) -> Vec<(String, Permission)> {
    let Some(node) = root.get("permissions") else {
        return Vec::new();
    };
    let mut permissions = Vec::new();
    for (who, level) in node.entries() {
        let field = format!("permissions.{who}");
        match level.as_str() {
            Some("admin") => permissions.push((who.clone(), Permission::Admin)),
            Some("user") => permissions.push((who.clone(), Permission::User)),
            _ => reader.problem(level.pos, &field, "must be `user` or `admin`"),
        }
    }
    permissions
}

fn read_bridges(reader: &mut FieldReader, root: &Node, base: &Path) -> Vec<BridgeEntry> {
    let Some(list) = root.get("bridges") else {
        return Vec::new();
    };
    if list.is_null() {
        return Vec::new();
    }
    if !matches!(list.value, crate::input::yaml::Value::Seq(_)) {
        reader.problem(
            list.pos,
            "bridges",
            "must be a list of `- registration: ...` entries",
        );
        return Vec::new();
    }
    let mut bridges = Vec::new();
    for (index, item) in list.items().iter().enumerate() {
        let prefix = format!("bridges[{index}]");
        let registration = reader.string(item, "registration", &format!("{prefix}.registration"));
        let field = format!("{prefix}.logs");
        let logs = reader
            .string_or_list(item, "logs", &field)
            .into_iter()
            .filter_map(|text| read_log_source(reader, item, "logs", &field, &text, base))
            .collect();
        let entry = BridgeEntry {
            id: reader.opt_string(item, "id", &format!("{prefix}.id")),
            config: reader
                .opt_string(item, "config", &format!("{prefix}.config"))
                .map(|p| base.join(p)),
            registration: base.join(registration.unwrap_or_default()),
            logs,
            found: None,
            deployment: Deployment::Host,
        };
        bridges.push(entry);
    }
    bridges
}

/// One log as `key` of `parent` names it; a problem at that key when it
/// is none of the forms.
fn read_log_source(
    reader: &mut FieldReader,
    parent: &Node,
    key: &str,
    field: &str,
    text: &str,
    base: &Path,
) -> Option<LogSource> {
    LogSource::parse(text, base)
        .map_err(|fix| {
            let pos = parent.get(key).map(|n| n.pos).unwrap_or_default();
            reader.problem(pos, field, fix);
        })
        .ok()
}

fn read_watch(reader: &mut FieldReader, root: &Node) -> Option<std::time::Duration> {
    let section = root.get("watch").filter(|n| !n.is_null());
    let seconds = section
        .and_then(|s| reader.opt_u64(s, "interval_seconds", "watch.interval_seconds"))
        .unwrap_or(DEFAULT_WATCH_SECONDS);
    if seconds != 0 && seconds < MIN_WATCH_SECONDS {
        let pos = section
            .and_then(|s| s.get("interval_seconds"))
            .map(|n| n.pos)
            .unwrap_or_default();
        reader.problem(
            pos,
            "watch.interval_seconds",
            format!(
                "must be 0 (off) or at least {MIN_WATCH_SECONDS}: every run probes every target"
            ),
        );
    }
    (seconds != 0).then(|| std::time::Duration::from_secs(seconds))
}

fn read_metrics(reader: &mut FieldReader, root: &Node) -> Option<std::net::SocketAddr> {
    let section = root.get("metrics").filter(|n| !n.is_null())?;
    let listen = reader.opt_string(section, "listen", "metrics.listen")?;
    match listen.parse() {
        Ok(address) => Some(address),
        Err(_) => {
            let pos = section.get("listen").map(|n| n.pos).unwrap_or_default();
            reader.problem(
                pos,
                "metrics.listen",
                "must be an IP address and port such as 127.0.0.1:9110",
            );
            None
        }
    }
}

fn read_logging(reader: &mut FieldReader, root: &Node) -> Logging {
    let section = root.get("logging");
    let level = section
        .and_then(|s| reader.opt_string(s, "level", "logging.level"))
        .unwrap_or_else(|| "info".to_owned());
    let format = section
        .and_then(|s| reader.opt_string(s, "format", "logging.format"))
        .unwrap_or_else(|| "pretty".to_owned());
    if !["pretty", "json"].contains(&format.as_str()) {
        let pos = section
            .and_then(|s| s.get("format"))
            .map(|n| n.pos)
            .unwrap_or_default();
        reader.problem(pos, "logging.format", "must be `pretty` or `json`");
    }
    Logging {
        level,
        json: format == "json",
    }
}

/// `sqlite:doctor.db` next to the config rather than wherever the service
/// happened to be started, so a systemd unit and a shell agree.
fn resolve_sqlite_path(database: &str, base: &Path) -> String {
    let Some(rest) = database.strip_prefix("sqlite:") else {
        return database.to_owned();
    };
    let rest = rest.trim_start_matches("//");
    if rest.starts_with('/') || rest.starts_with(":memory:") {
        return format!("sqlite:{rest}");
    }
    format!("sqlite:{}", base.join(rest).display())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "homeserver:\n  address: http://localhost:8008\n  domain: example.org\nappservice:\n  address: http://localhost:29399\n  port: 29399\n  bot:\n    username: doctor\n  as_token: a\n  hs_token: b\n";

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::from_document(Document::parse(Path::new("/etc/doctor/config.yaml"), text).unwrap())
    }

    #[test]
    fn good_config_parses_with_defaults() {
        let config = parse(GOOD).unwrap();
        assert_eq!(config.appservice.id, "doctor");
        assert_eq!(config.database, "sqlite:/etc/doctor/doctor.db");
        assert_eq!(
            config.appservice.bot_user_id("example.org"),
            "@doctor:example.org"
        );
        assert_eq!(config.command_prefix, "!doctor");
    }

    #[test]
    fn every_problem_is_reported_with_field_and_position() {
        let text =
            "homeserver:\n  address: [1]\nappservice:\n  port: 70000\n  bot: {}\n  as_token: a\n";
        let err = parse(text).unwrap_err().to_string();
        assert!(
            err.contains("config.yaml:2:12: `homeserver.address`: must be a string, found a list"),
            "{err}"
        );
        assert!(err.contains("`homeserver.domain`: is missing"), "{err}");
        assert!(
            err.contains("`appservice.port`: must be between 1 and 65535"),
            "{err}"
        );
        assert!(
            err.contains("`appservice.bot.username`: is missing"),
            "{err}"
        );
        assert!(err.contains("`appservice.hs_token`: is missing"), "{err}");
    }

    #[test]
    fn wrong_permission_level_is_named() {
        let err = parse(&format!("{GOOD}permissions:\n  \"@a:b\": root\n")).unwrap_err();
        assert!(
            err.to_string()
                .contains("`permissions.@a:b`: must be `user` or `admin`")
        );
    }

    #[test]
    fn logs_are_files_units_or_containers_and_a_bad_one_is_named() {
        let text = format!(
            "{GOOD}bridges:\n  - registration: tg.yaml\n    logs: [tg.log, \"journald:mautrix-telegram\", \"docker:tg\"]\n"
        );
        let config = parse(&text).unwrap();
        let shown: Vec<String> = config.bridges[0]
            .logs
            .iter()
            .map(|l| l.to_string())
            .collect();
        assert_eq!(
            shown,
            [
                "/etc/doctor/tg.log",
                "journald:mautrix-telegram",
                "docker:tg"
            ]
        );
        let text = GOOD.replace(
            "  domain: example.org\n",
            "  domain: example.org\n  log: \"journald:\"\n",
        );
        let err = parse(&text).unwrap_err().to_string();
        assert!(
            err.contains(
                "`homeserver.log`: `journald:` names no systemd unit: write journald:UNIT"
            ),
            "{err}"
        );
    }

    #[test]
    fn placeholder_tokens_are_recognised() {
        let config =
            parse(&GOOD.replace("as_token: a", &format!("as_token: \"{TOKEN_PLACEHOLDER}\"")))
                .unwrap();
        assert!(config.appservice.has_placeholder_tokens());
    }
}
