//! The homeserver's config (Synapse's `homeserver.yaml`): only what the
//! checks read, leniently, so any homeserver config still yields facts.

use std::path::{Path, PathBuf};

use crate::input::yaml::{Document, Node, Value};

/// Values of Synapse's config a supporter may see (deny by default,
/// `input::safe_paths`): addresses, names, paths, workers; never its
/// secrets, passwords or module settings.
pub const SAFE_PATHS: &[&str] = &[
    "server_name",
    "public_baseurl",
    "pid_file",
    "web_client_location",
    "listeners[].bind_addresses[]",
    "listeners[].type",
    "listeners[].path",
    "listeners[].tag",
    "listeners[].resources[].names[]",
    "database.name",
    "database.args.user",
    "database.args.database",
    "database.args.host",
    "database.args.sslmode",
    "log_config",
    "media_store_path",
    "signing_key_path",
    "trusted_key_servers[].server_name",
    "app_service_config_files[]",
    "experimental_features.**",
    "instance_map.*.host",
    "instance_map.*.path",
    "worker_app",
    "worker_name",
    "notify_appservices_from_worker",
    "stream_writers.**",
    "redis.host",
    "matrix_authentication_service.endpoint",
    "email.smtp_host",
    "email.smtp_user",
    "email.notif_from",
    "email.app_name",
    "default_room_version",
    "federation_domain_whitelist[]",
];

#[derive(Clone, Debug)]
pub struct HomeserverConfig {
    /// The first file: its folder holds worker configs and compose files.
    pub path: PathBuf,
    /// Every file that made the config, in the order they were merged.
    pub files: Vec<PathBuf>,
    pub server_name: Option<String>,
    pub app_service_config_files: Vec<PathBuf>,
    /// Names under `experimental_features` whose value is true.
    pub experimental_features: Vec<String>,
    /// `matrix_authentication_service.enabled` (or the older MSC3861 block).
    pub delegated_auth: bool,
    /// `use_appservice_legacy_authorization`: tokens sent as a query parameter.
    pub legacy_appservice_auth: bool,
    /// The shared-secret login module is configured, so a double-puppet
    /// secret may be a plain shared secret rather than `as_token:…`.
    pub shared_secret_auth: bool,
    /// `notify_appservices_from_worker`: the only worker that sends transactions.
    pub appservice_worker: Option<String>,
    /// Names in `instance_map`.
    pub instances: Vec<String>,
    /// The homeserver's own database as a URI (with its credentials: never
    /// shown), from `database.name` and `database.args`.
    pub database_uri: Option<String>,
    /// Where clients (and so the doctor) reach it: the first listener
    /// serving `client`, else `public_baseurl`.
    pub client_address: Option<String>,
    /// `log_config`: the Python logging config whose file handlers write
    /// the homeserver's log.
    pub log_config: Option<PathBuf>,
}

impl HomeserverConfig {
    /// The config Synapse makes of several files (`--config-path` given more
    /// than once, or a folder): their top-level keys merged, a later file's
    /// key replacing an earlier one's whole.
    pub fn merged(documents: &[Document]) -> Option<HomeserverConfig> {
        let first = documents.first()?;
        let mut entries: Vec<(String, Node)> = Vec::new();
        for document in documents {
            for (key, value) in document.root.entries() {
                entries.retain(|(k, _)| k != key);
                entries.push((key.clone(), value.clone()));
            }
        }
        let merged = Document {
            path: first.path.clone(),
            root: Node {
                value: Value::Map(entries),
                pos: first.root.pos,
            },
        };
        let mut config = HomeserverConfig::from_document(&merged);
        config.files = documents.iter().map(|d| d.path.clone()).collect();
        Some(config)
    }

    pub fn from_document(document: &Document) -> HomeserverConfig {
        let root = &document.root;
        let base = document.path.parent().unwrap_or(Path::new("/"));
        HomeserverConfig {
            path: document.path.clone(),
            files: vec![document.path.clone()],
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
            log_config: root
                .get("log_config")
                .and_then(|n| n.as_str())
                .map(|p| base.join(p)),
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
            shared_secret_auth: ["modules", "password_providers"].iter().any(|key| {
                root.get(key).is_some_and(|list| {
                    list.items().iter().any(|item| {
                        item.get("module")
                            .and_then(|m| m.as_str())
                            .is_some_and(|m| m.contains("shared_secret_auth"))
                    })
                })
            }),
            appservice_worker: root
                .get("notify_appservices_from_worker")
                .and_then(|n| n.as_str())
                .map(str::to_owned),
            instances: root
                .get("instance_map")
                .map(|map| map.entries().iter().map(|(k, _)| k.clone()).collect())
                .unwrap_or_default(),
            database_uri: root.get("database").and_then(|db| database_uri(db, base)),
            client_address: client_listener(root).or_else(|| {
                root.get("public_baseurl")
                    .and_then(|n| n.scalar_text())
                    .map(|url| url.trim_end_matches('/').to_owned())
            }),
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

/// `http(s)://host:port` of the first HTTP listener with the `client`
/// resource. A wildcard bind address is reached on loopback.
fn client_listener(root: &crate::input::yaml::Node) -> Option<String> {
    let listener = root.get("listeners")?.items().iter().find(|listener| {
        listener.get("type").and_then(|t| t.as_str()) == Some("http")
            && listener.get("resources").is_some_and(|resources| {
                resources.items().iter().any(|resource| {
                    resource.get("names").is_some_and(|names| {
                        names.items().iter().any(|n| n.as_str() == Some("client"))
                    })
                })
            })
    })?;
    let port = listener.get("port")?.scalar_text()?;
    // IPv4 first: loopback over IPv6 is the one more often firewalled.
    let addresses: Vec<String> = listener
        .get("bind_addresses")
        .map(|list| {
            list.items()
                .iter()
                .filter_map(|a| a.scalar_text())
                .collect()
        })
        .unwrap_or_default();
    let bound = addresses
        .iter()
        .find(|a| !a.contains(':'))
        .or(addresses.first())
        .cloned()
        .unwrap_or_else(|| "127.0.0.1".to_owned());
    let host = match bound.as_str() {
        "0.0.0.0" | "" => "127.0.0.1".to_owned(),
        "::" => "[::1]".to_owned(),
        v6 if v6.contains(':') => format!("[{v6}]"),
        other => other.to_owned(),
    };
    let scheme = if listener.get("tls").and_then(|t| t.as_bool()) == Some(true) {
        "https"
    } else {
        "http"
    };
    Some(format!("{scheme}://{host}:{port}"))
}

/// `sqlite:PATH` or `postgres://…` for Synapse's `database` section.
fn database_uri(database: &crate::input::yaml::Node, base: &Path) -> Option<String> {
    let args = database.get("args");
    let arg = |key: &str| args.and_then(|a| a.get(key)).and_then(|n| n.scalar_text());
    match database.get("name").and_then(|n| n.as_str())? {
        "sqlite3" => Some(format!("sqlite:{}", base.join(arg("database")?).display())),
        "psycopg2" | "psycopg" => {
            let mut url = url::Url::parse("postgres://localhost").ok()?;
            url.set_host(Some(&arg("host").unwrap_or_else(|| "localhost".to_owned())))
                .ok()?;
            url.set_port(arg("port").and_then(|p| p.parse().ok()))
                .ok()?;
            url.set_username(&arg("user").unwrap_or_default()).ok()?;
            url.set_password(arg("password").as_deref()).ok()?;
            url.set_path(&arg("dbname").or_else(|| arg("database"))?);
            Some(url.to_string())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> HomeserverConfig {
        HomeserverConfig::from_document(
            &Document::parse(Path::new("/etc/synapse/homeserver.yaml"), text).unwrap(),
        )
    }

    #[test]
    fn the_homeserver_database_as_a_uri() {
        let sqlite = config("database:\n  name: sqlite3\n  args:\n    database: homeserver.db\n");
        assert_eq!(
            sqlite.database_uri.as_deref(),
            Some("sqlite:/etc/synapse/homeserver.db")
        );
        let postgres = config(
            "database:\n  name: psycopg2\n  args:\n    user: synapse\n    password: 'p@ss:w/rd'\n    database: synapse\n    host: db\n    port: 5433\n",
        );
        assert_eq!(
            postgres.database_uri.as_deref(),
            Some("postgres://synapse:p%40ss%3Aw%2Frd@db:5433/synapse")
        );
        assert_eq!(config("server_name: x\n").database_uri, None);
    }

    #[test]
    fn the_client_address_from_the_listeners_else_the_public_url() {
        let listeners = "listeners:\n  - port: 8448\n    type: http\n    tls: true\n    resources:\n      - names: [federation]\n  - port: 8008\n    type: http\n    bind_addresses: ['::1', '127.0.0.1']\n    resources:\n      - names: [client, federation]\npublic_baseurl: https://matrix.example.org/\n";
        assert_eq!(
            config(listeners).client_address.as_deref(),
            Some("http://127.0.0.1:8008")
        );
        let wildcard = "listeners:\n  - port: 8008\n    type: http\n    bind_addresses: ['0.0.0.0']\n    resources:\n      - names: [client]\n";
        assert_eq!(
            config(wildcard).client_address.as_deref(),
            Some("http://127.0.0.1:8008")
        );
        assert_eq!(
            config("public_baseurl: https://matrix.example.org/\n")
                .client_address
                .as_deref(),
            Some("https://matrix.example.org")
        );
    }
}
