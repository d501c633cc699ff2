//! Bridge configs of every known format, read into one shape.
//!
//! A new bridge format goes here: a `BridgeFormat` variant, its detection in
//! [`BridgeFormat::detect`], and its field paths in [`FieldPaths`]. Checks
//! only see [`BridgeConfig`], so they work for every format at once.

use std::path::{Path, PathBuf};

use crate::input::config::Config;
use crate::input::yaml::{Document, Node, Pos};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BridgeFormat {
    /// mautrix-python bridges (telegram, googlechat, ...).
    MautrixPython,
    /// mautrix-go bridgev2 (whatsapp, signal, ... since 2024).
    MautrixGoV2,
    /// The older mautrix-go layout (`bridge.encryption`, `appservice.database`).
    MautrixGoLegacy,
    /// bridge-doctor's own config: the doctor is a target like any bridge.
    Doctor,
}

/// Top-level sections that name a mautrix bridge's network (the program is
/// `mautrix-<section>`), from the bridges' example configs.
const NETWORK_SECTIONS: &[&str] = &[
    "telegram",
    "googlechat",
    "facebook",
    "instagram",
    "twitter",
    "hangouts",
    "signal",
    "whatsapp",
    "discord",
    "slack",
    "imessage",
    "meta",
];

/// Where each fact lives in a format's YAML, as dotted paths.
struct FieldPaths {
    bot_username: &'static str,
    database_uri: &'static str,
    username_template: &'static str,
    encryption: &'static str,
    permissions: &'static str,
    double_puppet_secrets: &'static str,
}

impl BridgeFormat {
    pub fn detect(root: &Node) -> Option<BridgeFormat> {
        if root.path("appservice.bot_username").is_some() {
            Some(BridgeFormat::MautrixPython)
        } else if root.path("appservice.bot.username").is_some() {
            if root.path("database.uri").is_some() || root.get("encryption").is_some() {
                Some(BridgeFormat::MautrixGoV2)
            } else {
                Some(BridgeFormat::MautrixGoLegacy)
            }
        } else {
            None
        }
    }

    /// The format's name, for the packet's redaction record.
    pub fn name(self) -> &'static str {
        match self {
            BridgeFormat::MautrixPython => "mautrix-python bridge config",
            BridgeFormat::MautrixGoV2 => "mautrix-go bridgev2 config",
            BridgeFormat::MautrixGoLegacy => "mautrix-go (legacy) bridge config",
            BridgeFormat::Doctor => "bridge-doctor config",
        }
    }

    /// The values a supporter may see ([`crate::input::safe_paths`]), as
    /// lists of patterns.
    pub fn safe_paths(self) -> &'static [&'static [&'static str]] {
        match self {
            BridgeFormat::MautrixPython => &[MAUTRIX_COMMON_SAFE, MAUTRIX_PYTHON_SAFE],
            BridgeFormat::MautrixGoV2 => &[MAUTRIX_COMMON_SAFE, MAUTRIX_GO_V2_SAFE],
            BridgeFormat::MautrixGoLegacy => &[MAUTRIX_COMMON_SAFE, MAUTRIX_GO_LEGACY_SAFE],
            BridgeFormat::Doctor => &[crate::input::config::SAFE_PATHS],
        }
    }

    fn paths(self) -> FieldPaths {
        match self {
            BridgeFormat::MautrixPython => FieldPaths {
                bot_username: "appservice.bot_username",
                database_uri: "appservice.database",
                username_template: "bridge.username_template",
                encryption: "bridge.encryption",
                permissions: "bridge.permissions",
                double_puppet_secrets: "bridge.login_shared_secret_map",
            },
            BridgeFormat::MautrixGoV2 => FieldPaths {
                bot_username: "appservice.bot.username",
                database_uri: "database.uri",
                username_template: "appservice.username_template",
                encryption: "encryption",
                permissions: "bridge.permissions",
                double_puppet_secrets: "double_puppet.secrets",
            },
            BridgeFormat::MautrixGoLegacy => FieldPaths {
                bot_username: "appservice.bot.username",
                database_uri: "appservice.database.uri",
                username_template: "bridge.username_template",
                encryption: "bridge.encryption",
                permissions: "bridge.permissions",
                double_puppet_secrets: "bridge.login_shared_secret_map",
            },
            BridgeFormat::Doctor => FieldPaths {
                bot_username: "appservice.bot.username",
                database_uri: "database",
                username_template: "",
                encryption: "",
                permissions: "permissions",
                double_puppet_secrets: "",
            },
        }
    }
}

/// Values every mautrix config has in the same place.
const MAUTRIX_COMMON_SAFE: &[&str] = &[
    "homeserver.address",
    "homeserver.domain",
    "homeserver.software",
    "homeserver.status_endpoint",
    "homeserver.message_send_checkpoint_endpoint",
    "appservice.address",
    "appservice.hostname",
    "appservice.id",
    "bridge.command_prefix",
    "bridge.permissions.*",
];

/// Values of a mautrix-python config a supporter may see (deny by default:
/// every other string is masked in the packet; see `input::safe_paths`).
const MAUTRIX_PYTHON_SAFE: &[&str] = &[
    "appservice.database",
    "appservice.bot_username",
    "appservice.bot_displayname",
    "appservice.bot_avatar",
    "appservice.public.prefix",
    "appservice.public.external",
    "appservice.provisioning.prefix",
    "manhole.path",
    "bridge.username_template",
    "bridge.alias_template",
    "bridge.displayname_template",
    "bridge.displayname_preference[]",
    "bridge.double_puppet_server_map.*",
    "bridge.encryption.verification_levels.*",
    "bridge.private_chat_portal_meta",
    "bridge.animated_sticker.target",
    "bridge.animated_emoji.target",
    "telegram.device_info.**",
    "telegram.proxy.type",
    "telegram.proxy.address",
    "logging.version",
    "logging.formatters.*.()",
    "logging.formatters.*.format",
    "logging.formatters.*.datefmt",
    "logging.handlers.*.class",
    "logging.handlers.*.formatter",
    "logging.handlers.*.filename",
    "logging.handlers.*.level",
    "logging.handlers.*.stream",
    "logging.loggers.*.level",
    "logging.root.level",
    "logging.root.handlers[]",
];

/// The same for mautrix-go bridgev2 configs.
const MAUTRIX_GO_V2_SAFE: &[&str] = &[
    "appservice.public_address",
    "appservice.bot.username",
    "appservice.bot.displayname",
    "appservice.bot.avatar",
    "appservice.username_template",
    "database.type",
    "database.uri",
    "provisioning.prefix",
    "direct_media.server_name",
    "double_puppet.servers.*",
    "encryption.verification_levels.*",
    "logging.min_level",
    "logging.writers[].type",
    "logging.writers[].format",
    "logging.writers[].filename",
    "logging.writers[].time_format",
];

/// The same for the older mautrix-go layout.
const MAUTRIX_GO_LEGACY_SAFE: &[&str] = &[
    "appservice.bot.username",
    "appservice.bot.displayname",
    "appservice.bot.avatar",
    "appservice.database.type",
    "appservice.database.uri",
    "bridge.username_template",
    "bridge.displayname_template",
    "bridge.double_puppet_server_map.*",
    "bridge.encryption.verification_levels.*",
    "logging.min_level",
    "logging.directory",
    "logging.file_name_format",
    "logging.file_date_format",
    "logging.print_level",
    "logging.writers[].type",
    "logging.writers[].format",
    "logging.writers[].filename",
];

/// One value read from the config, with where it was.
#[derive(Clone, Debug, PartialEq)]
pub struct Field<T> {
    pub value: T,
    pub path: String,
    pub pos: Pos,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Encryption {
    pub allow: Option<Field<bool>>,
    pub default: Option<Field<bool>>,
    pub require: Option<Field<bool>>,
    pub appservice: Option<Field<bool>>,
    pub msc4190: Option<Field<bool>>,
    pub self_sign: Option<Field<bool>>,
    pub pickle_key: Option<Field<String>>,
}

impl Encryption {
    pub fn allowed(&self) -> bool {
        flag(&self.allow)
    }
}

pub fn flag(field: &Option<Field<bool>>) -> bool {
    field.as_ref().is_some_and(|f| f.value)
}

#[derive(Clone, Debug)]
pub struct BridgeConfig {
    pub format: BridgeFormat,
    pub document: Document,
    pub homeserver_address: Option<Field<String>>,
    pub homeserver_domain: Option<Field<String>>,
    pub appservice_address: Option<Field<String>>,
    pub appservice_id: Option<Field<String>>,
    pub bot_username: Option<Field<String>>,
    pub as_token: Option<Field<String>>,
    pub hs_token: Option<Field<String>>,
    pub ephemeral_events: Option<Field<bool>>,
    pub username_template: Option<Field<String>>,
    pub database_uri: Option<Field<String>>,
    pub encryption: Encryption,
}

#[derive(Debug, thiserror::Error)]
#[error(
    "{path}: not a bridge config format the doctor knows (no `appservice.bot_username` or `appservice.bot.username`). Give only `registration:` for this bridge, or report the bridge so its format can be added."
)]
pub struct UnknownFormat {
    pub path: String,
}

impl BridgeConfig {
    pub fn from_document(document: Document) -> Result<BridgeConfig, UnknownFormat> {
        let format = BridgeFormat::detect(&document.root).ok_or_else(|| UnknownFormat {
            path: document.path.display().to_string(),
        })?;
        Ok(BridgeConfig::read(format, document))
    }

    /// The doctor's own config seen as a bridge config.
    pub fn from_doctor(config: &Config) -> BridgeConfig {
        BridgeConfig::read(BridgeFormat::Doctor, config.document.clone())
    }

    fn read(format: BridgeFormat, document: Document) -> BridgeConfig {
        let paths = format.paths();
        let root = &document.root;
        let encryption = if paths.encryption.is_empty() {
            Encryption::default()
        } else {
            let at = |key: &str| format!("{}.{key}", paths.encryption);
            Encryption {
                allow: bool_field(root, &at("allow")),
                default: bool_field(root, &at("default")),
                require: bool_field(root, &at("require")),
                appservice: bool_field(root, &at("appservice")),
                msc4190: bool_field(root, &at("msc4190")),
                self_sign: bool_field(root, &at("self_sign")),
                pickle_key: string_field(root, &at("pickle_key")),
            }
        };
        BridgeConfig {
            format,
            homeserver_address: string_field(root, "homeserver.address"),
            homeserver_domain: string_field(root, "homeserver.domain"),
            appservice_address: string_field(root, "appservice.address"),
            appservice_id: string_field(root, "appservice.id"),
            bot_username: string_field(root, paths.bot_username),
            as_token: string_field(root, "appservice.as_token"),
            hs_token: string_field(root, "appservice.hs_token"),
            ephemeral_events: bool_field(root, "appservice.ephemeral_events"),
            username_template: if paths.username_template.is_empty() {
                None
            } else {
                string_field(root, paths.username_template)
            },
            database_uri: string_field(root, paths.database_uri),
            encryption,
            document,
        }
    }

    pub fn path(&self) -> &Path {
        &self.document.path
    }

    /// The permissions mapping (MXID, domain or `*` to a level) and its path.
    pub fn permissions(&self) -> Option<(&'static str, &Node)> {
        let path = self.format.paths().permissions;
        self.document.root.path(path).map(|node| (path, node))
    }

    /// The double-puppeting secrets by server name, and their path.
    pub fn double_puppet_secrets(&self) -> Option<(&'static str, &Node)> {
        let path = self.format.paths().double_puppet_secrets;
        if path.is_empty() {
            return None;
        }
        self.document.root.path(path).map(|node| (path, node))
    }

    /// The bridge program as it names itself (mautrix's `database_owner`),
    /// read from the config's own sections, never from the appservice id:
    /// mautrix-python and older mautrix-go configs carry one section named
    /// after their network (`telegram:`, `whatsapp:`). bridgev2 configs keep
    /// it under `network:` and do not say which, so `None` there.
    pub fn software(&self) -> Option<String> {
        if self.format == BridgeFormat::Doctor {
            return Some("bridge-doctor".to_owned());
        }
        let networks: Vec<&str> = self
            .document
            .root
            .entries()
            .iter()
            .map(|(key, _)| key.as_str())
            .filter(|key| NETWORK_SECTIONS.contains(key))
            .collect();
        match networks.as_slice() {
            [network] => Some(format!("mautrix-{network}")),
            _ => None,
        }
    }

    /// The log files the bridge writes, as its config names them:
    /// mautrix-python's `logging.handlers.*.filename`, mautrix-go's
    /// `logging.writers[].filename`. Relative names are taken from the
    /// config's folder, where bridges are usually started.
    pub fn log_files(&self) -> Vec<PathBuf> {
        let Some(logging) = self.document.root.get("logging") else {
            return Vec::new();
        };
        let handlers = logging
            .get("handlers")
            .map(|h| h.entries().iter().map(|(_, n)| n));
        let writers = logging.get("writers").map(|w| w.items().iter());
        let base = self.path().parent().unwrap_or(Path::new("/"));
        handlers
            .into_iter()
            .flatten()
            .chain(writers.into_iter().flatten())
            .filter_map(|sink| sink.get("filename")?.scalar_text())
            .map(|name| base.join(name))
            .collect()
    }

    /// `file:line:col (field.path)` for evidence.
    pub fn locate<T>(&self, field: &Field<T>) -> String {
        format!("{}:{} ({})", self.path().display(), field.pos, field.path)
    }
}

fn string_field(root: &Node, path: &str) -> Option<Field<String>> {
    let node = root.path(path)?;
    Some(Field {
        value: node.scalar_text()?,
        path: path.to_owned(),
        pos: node.pos,
    })
}

fn bool_field(root: &Node, path: &str) -> Option<Field<bool>> {
    let node = root.path(path)?;
    Some(Field {
        value: node.as_bool()?,
        path: path.to_owned(),
        pos: node.pos,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::shared_fixture;

    fn load(relative: &str) -> BridgeConfig {
        let path = shared_fixture(relative);
        BridgeConfig::from_document(Document::load(&path).unwrap()).unwrap()
    }

    #[test]
    fn python_bridge_fields() {
        let config = load("mautrix-telegram/config.working.yaml");
        assert_eq!(config.format, BridgeFormat::MautrixPython);
        assert_eq!(config.bot_username.as_ref().unwrap().value, "telegrambot");
        assert_eq!(config.appservice_id.as_ref().unwrap().value, "telegram");
        assert_eq!(
            config.username_template.as_ref().unwrap().value,
            "telegram_{userid}"
        );
        assert!(config.encryption.allow.is_some());
        assert_eq!(config.software().as_deref(), Some("mautrix-telegram"));
    }

    #[test]
    fn bridgev2_fields() {
        let config = load("mautrix-go/example-config.bridgev2-whatsapp.yaml");
        assert_eq!(config.format, BridgeFormat::MautrixGoV2);
        assert_eq!(config.bot_username.as_ref().unwrap().value, "whatsappbot");
        assert_eq!(
            config.username_template.as_ref().unwrap().value,
            "whatsapp_{{.}}"
        );
        assert_eq!(
            config.encryption.pickle_key.as_ref().unwrap().value,
            "generate"
        );
        assert_eq!(
            config.software(),
            None,
            "bridgev2 does not name its network"
        );
        assert!(
            config
                .database_uri
                .unwrap()
                .value
                .starts_with("postgres://")
        );
    }

    #[test]
    fn unknown_format_says_what_to_do() {
        let doc = Document::parse(Path::new("x.yaml"), "foo: 1\n").unwrap();
        let err = BridgeConfig::from_document(doc).unwrap_err().to_string();
        assert!(err.contains("Give only `registration:`"), "{err}");
    }

    mod property {
        use proptest::prelude::*;

        use super::super::*;

        const KEYS: &[&str] = &[
            "homeserver",
            "appservice",
            "bridge",
            "address",
            "domain",
            "bot_username",
            "bot",
            "username",
            "database",
            "uri",
            "encryption",
            "allow",
            "msc4190",
            "permissions",
            "double_puppet",
            "secrets",
            "telegram",
            "network",
            "login_shared_secret_map",
            "username_template",
        ];

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(128))]

            /// Any YAML of a bridge config's shape: read (or refused with
            /// the file named) without panic, and every accessor answers.
            #[test]
            fn any_bridge_config_is_read_without_panic(text in crate::testutil::yaml_documents(KEYS)) {
                if let Ok(document) = Document::parse(Path::new("c.yaml"), &text) {
                    match BridgeConfig::from_document(document) {
                        Ok(config) => {
                            let _ = (config.software(), config.permissions(), config.double_puppet_secrets());
                        }
                        Err(err) => prop_assert!(err.to_string().contains("c.yaml")),
                    }
                }
            }
        }
    }
}
