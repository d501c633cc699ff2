//! A bridge's database, opened read-only for its list of tables.

use std::path::Path;
use std::time::Duration;

use sqlx::AnyConnection;
use sqlx::Row;
use sqlx::any::AnyConnectOptions;
use sqlx::{ConnectOptions, Connection};

use super::{TargetFacts, TargetKind};
use crate::input::config::Deployment;

#[derive(Clone, Debug, PartialEq)]
pub struct DatabaseFacts {
    /// The URI without credentials, safe to show.
    pub shown_uri: String,
    /// Dotted path of the config field the URI came from.
    pub field: String,
    /// Where the data lives, without credentials or options: two targets
    /// with the same location share one database.
    pub location: String,
    pub state: DatabaseState,
}

#[derive(Clone, Debug, PartialEq)]
pub enum DatabaseState {
    /// A SQLite file that does not exist yet: bridges create it on their
    /// first start, so this is a bridge that never started (or one that
    /// runs in another working directory).
    NotCreated,
    Unreachable(String),
    Opened {
        tables: Vec<String>,
        /// Owner names in mautrix's `database_owner` table, when it has one.
        owners: Vec<String>,
    },
}

/// The file path of a SQLite URI as bridges write it: Python bridges use
/// `sqlite:path` or `sqlite:///path`, Go bridges `file:path?...`; plain
/// paths too. `None` for other databases.
fn sqlite_path(uri: &str) -> Option<String> {
    if uri.contains("://") && !uri.starts_with("sqlite:") {
        return None;
    }
    let path = uri
        .strip_prefix("sqlite:///")
        .map(|p| format!("/{p}"))
        .or_else(|| uri.strip_prefix("sqlite://").map(str::to_owned))
        .or_else(|| uri.strip_prefix("sqlite:").map(str::to_owned))
        .or_else(|| uri.strip_prefix("file:").map(str::to_owned))
        .or_else(|| (!uri.contains(':')).then(|| uri.to_owned()))?;
    Some(path.split('?').next().unwrap_or_default().to_owned())
}

/// A URI sqlx can open read-only; a relative SQLite path is from `base`.
fn read_only_uri(uri: &str, base: &Path) -> Option<String> {
    if uri.starts_with("postgres://") || uri.starts_with("postgresql://") {
        return Some(uri.to_owned());
    }
    let path = base.join(sqlite_path(uri)?);
    Some(format!("sqlite:{}?mode=ro", path.display()))
}

/// The bridge's URI as this machine sees it: an absolute SQLite path in a
/// container is read through its service's mounts. `Err`: none of them
/// holds it, said so.
fn seen_from_here(uri: &str, deployment: &Deployment) -> Result<String, String> {
    let Some(path) = sqlite_path(uri).filter(|p| p.starts_with('/')) else {
        return Ok(uri.to_owned());
    };
    match deployment.to_host(Path::new(&path)) {
        Some(host) => Ok(format!("sqlite:{}", host.display())),
        // A relative path made absolute against the config's folder here.
        None if Path::new(&path).exists() => Ok(uri.to_owned()),
        None => Err(format!(
            "{path} is inside the container of the compose service `{}`, on none of its mounts (so it is lost with the container, and the doctor cannot read it); put it under a mounted folder such as /data",
            deployment.service().unwrap_or_default()
        )),
    }
}

/// One connection, within 5 s; errors are safe to show (no credentials).
async fn connect(uri: &str) -> Result<AnyConnection, String> {
    sqlx::any::install_default_drivers();
    let options: AnyConnectOptions = uri
        .parse()
        .map_err(|e: sqlx::Error| crate::shared::redact::uri(&e.to_string()))?;
    let options = options.disable_statement_logging();
    tokio::time::timeout(Duration::from_secs(5), options.connect())
        .await
        .map_err(|_| "timed out after 5 s".to_owned())?
        .map_err(|e| crate::shared::redact::uri(&e.to_string()))
}

/// The database server's version string (for SQLite, the library's).
pub async fn server_version(uri: &str) -> Result<String, String> {
    let mut connection = connect(uri).await?;
    let sql = if uri.starts_with("sqlite:") {
        "SELECT sqlite_version() AS v"
    } else {
        "SELECT version() AS v"
    };
    let row = sqlx::query(sql)
        .fetch_one(&mut connection)
        .await
        .map_err(|e| e.to_string())?;
    let _ = connection.close().await;
    row.try_get::<String, _>("v").map_err(|e| e.to_string())
}

async fn list_tables(uri: &str) -> Result<(Vec<String>, Vec<String>), String> {
    let mut connection = connect(uri).await?;
    let sql = if uri.starts_with("sqlite:") {
        "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
    } else {
        "SELECT table_name::text AS name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY table_name"
    };
    let rows = sqlx::query(sql)
        .fetch_all(&mut connection)
        .await
        .map_err(|e| e.to_string())?;
    let tables: Vec<String> = rows
        .iter()
        .filter_map(|r| r.try_get::<String, _>("name").ok())
        .collect();
    let owners = if tables.iter().any(|t| t == "database_owner") {
        sqlx::query("SELECT owner FROM database_owner")
            .fetch_all(&mut connection)
            .await
            .map(|rows| {
                rows.iter()
                    .filter_map(|r| r.try_get::<String, _>("owner").ok())
                    .collect()
            })
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let _ = connection.close().await;
    Ok((tables, owners))
}

/// The SQLite file a read-only URI names, if it is SQLite.
fn sqlite_file(uri: &str) -> Option<&Path> {
    uri.strip_prefix("sqlite:")
        .and_then(|p| p.split('?').next())
        .map(Path::new)
}

/// Host, port and database name of a PostgreSQL URI, or the SQLite file.
fn location(uri: &str) -> String {
    if let Some(file) = sqlite_file(uri) {
        return file
            .canonicalize()
            .unwrap_or_else(|_| file.to_owned())
            .display()
            .to_string();
    }
    match url::Url::parse(uri) {
        Ok(url) => format!(
            "{}:{}{}",
            url.host_str().unwrap_or("localhost"),
            url.port().unwrap_or(5432),
            url.path()
        ),
        Err(_) => crate::shared::redact::uri(uri),
    }
}

/// Why a SQLite file that does not exist cannot be created either: the
/// nearest existing folder on its path is a file (or another non-folder).
/// A missing file is a bridge that has not started; this one never will.
fn blocked_folder(file: &Path, field: &str) -> Option<String> {
    let nearest = file.ancestors().skip(1).find(|p| p.exists())?;
    (!nearest.is_dir()).then(|| {
        format!(
            "{} can never be created: {} is a file, not a folder; point `{field}` at a file in a folder",
            file.display(),
            nearest.display()
        )
    })
}

/// Opens the target's database read-only; `None` when no URI is known.
pub async fn inspect(target: &TargetFacts) -> Option<DatabaseFacts> {
    let config = target.config()?;
    let field = config.database_uri.as_ref()?;
    let base = config.path().parent().unwrap_or(Path::new("."));
    let shown_uri = crate::shared::redact::uri(&field.value);
    let uri = match seen_from_here(&field.value, &target.deployment) {
        Ok(uri) => read_only_uri(&uri, base),
        Err(line) => {
            return Some(DatabaseFacts {
                location: shown_uri.clone(),
                shown_uri,
                field: field.path.clone(),
                state: DatabaseState::Unreachable(line),
            });
        }
    };
    let missing = uri
        .as_deref()
        .and_then(sqlite_file)
        .filter(|file| !file.exists());
    let blocked = missing.and_then(|file| blocked_folder(file, &field.path));
    // The doctor creates its SQLite file on first `run`; before that there is nothing to inspect.
    if target.kind == TargetKind::Doctor && missing.is_some() && blocked.is_none() {
        return None;
    }
    let state = match (&uri, blocked) {
        (None, _) => {
            DatabaseState::Unreachable(format!("`{shown_uri}` is not a SQLite or PostgreSQL URI"))
        }
        (Some(_), Some(line)) => DatabaseState::Unreachable(line),
        (Some(_), None) if missing.is_some() => DatabaseState::NotCreated,
        (Some(uri), None) => match list_tables(uri).await {
            Ok((tables, owners)) => DatabaseState::Opened { tables, owners },
            Err(err) => DatabaseState::Unreachable(err),
        },
    };
    Some(DatabaseFacts {
        location: uri
            .as_deref()
            .map(location)
            .unwrap_or_else(|| shown_uri.clone()),
        shown_uri,
        field: field.path.clone(),
        state,
    })
}

/// What the homeserver's database says of one appservice's deliveries.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeliveryState {
    /// Synapse marks an appservice `down` after a failed transaction and
    /// retries with a growing backoff until one succeeds.
    pub down: bool,
    /// Transactions made but not yet accepted by the appservice.
    pub pending: i64,
}

/// Events the homeserver has not yet handed to its appservice sender: those
/// past `appservice_stream_position`, which the sender (the main process or
/// `notify_appservices_from_worker`) moves on as it goes through them, for
/// every appservice at once.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Backlog {
    /// Waiting events, counted up to [`BACKLOG_COUNT_LIMIT`].
    pub waiting: i64,
    /// How long the oldest waiting event has waited, in milliseconds, when
    /// the homeserver's database was read.
    pub oldest_waited_ms: Option<i64>,
}

/// Counting stops here: a stopped sender on a busy server leaves millions.
pub const BACKLOG_COUNT_LIMIT: i64 = 10_000;

/// Synapse's delivery record: each appservice's state by id, and the
/// events its appservice sender has not reached.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Delivery {
    pub states: std::collections::HashMap<String, DeliveryState>,
    /// `None` when the stream position could not be read (an older schema).
    pub backlog: Option<Backlog>,
}

/// Each appservice's delivery state from Synapse's own database, opened
/// read-only; errors are safe to show (no credentials).
pub async fn delivery_states(
    homeserver_uri: &str,
    deployment: &Deployment,
) -> Result<Delivery, String> {
    let uri = seen_from_here(homeserver_uri, deployment)?;
    let uri = read_only_uri(&uri, Path::new("/"))
        .ok_or_else(|| "not a SQLite or PostgreSQL database".to_owned())?;
    let mut connection = connect(&uri).await?;
    let mut states = std::collections::HashMap::<String, DeliveryState>::new();
    let rows = sqlx::query("SELECT as_id, state FROM application_services_state")
        .fetch_all(&mut connection)
        .await
        .map_err(|e| e.to_string())?;
    for row in rows {
        let id: String = row.try_get("as_id").map_err(|e| e.to_string())?;
        let state: Option<String> = row.try_get("state").ok();
        states.entry(id).or_default().down = state.as_deref() == Some("down");
    }
    let rows = sqlx::query(
        "SELECT as_id, COUNT(*) AS pending FROM application_services_txns GROUP BY as_id",
    )
    .fetch_all(&mut connection)
    .await
    .map_err(|e| e.to_string())?;
    for row in rows {
        let id: String = row.try_get("as_id").map_err(|e| e.to_string())?;
        states.entry(id).or_default().pending = row.try_get("pending").unwrap_or_default();
    }
    let backlog = backlog(&mut connection).await.ok();
    let _ = connection.close().await;
    Ok(Delivery { states, backlog })
}

/// The events past the appservice stream position (cheap on any size of
/// `events`: its stream ordering is indexed, and counting is capped).
async fn backlog(connection: &mut sqlx::AnyConnection) -> Result<Backlog, sqlx::Error> {
    let position: i64 = sqlx::query("SELECT stream_ordering FROM appservice_stream_position")
        .fetch_one(&mut *connection)
        .await?
        .try_get(0)?;
    let oldest_received_ms = sqlx::query(
        "SELECT received_ts FROM events WHERE stream_ordering > $1 ORDER BY stream_ordering LIMIT 1",
    )
    .bind(position)
    .fetch_optional(&mut *connection)
    .await?
    .map(|row| row.try_get::<i64, _>(0))
    .transpose()?;
    let waiting: i64 = sqlx::query(
        "SELECT COUNT(*) FROM (SELECT 1 FROM events WHERE stream_ordering > $1 LIMIT $2) AS waiting",
    )
    .bind(position)
    .bind(BACKLOG_COUNT_LIMIT)
    .fetch_one(&mut *connection)
    .await?
    .try_get(0)?;
    let now_ms = crate::shared::now_ms();
    Ok(Backlog {
        waiting,
        oldest_waited_ms: oldest_received_ms.map(|received| now_ms - received),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridge_uris_become_read_only_sqlx_uris() {
        let base = Path::new("/srv/bridge");
        assert_eq!(
            read_only_uri("sqlite:mautrix-telegram.db", base).unwrap(),
            "sqlite:/srv/bridge/mautrix-telegram.db?mode=ro"
        );
        assert_eq!(
            read_only_uri("sqlite:///var/db/x.db", base).unwrap(),
            "sqlite:/var/db/x.db?mode=ro"
        );
        assert_eq!(
            read_only_uri("file:whatsapp.db?_txlock=immediate", base).unwrap(),
            "sqlite:/srv/bridge/whatsapp.db?mode=ro"
        );
        assert!(read_only_uri("mysql://x", base).is_none());
        assert_eq!(
            read_only_uri("/var/db/plain.db", base).unwrap(),
            "sqlite:/var/db/plain.db?mode=ro"
        );
    }

    #[test]
    fn a_container_path_is_read_through_the_service_mounts() {
        let lookup = |_: &str| None;
        let project = crate::input::compose::Project::parse(
            Path::new("/srv/compose.yaml"),
            "services:\n  telegram:\n    volumes: ['./telegram:/data']\n",
            &lookup,
        )
        .unwrap();
        let telegram = Deployment::compose(&project.services[0]);
        for uri in [
            "sqlite:/data/tg.db",
            "sqlite:///data/tg.db",
            "file:/data/tg.db?_txlock=immediate",
        ] {
            assert_eq!(
                seen_from_here(uri, &telegram).unwrap(),
                "sqlite:/srv/telegram/tg.db",
                "{uri}"
            );
        }
        assert_eq!(
            seen_from_here("sqlite:tg.db", &telegram).unwrap(),
            "sqlite:tg.db"
        );
        let postgres = "postgres://u:p@db/tg";
        assert_eq!(seen_from_here(postgres, &telegram).unwrap(), postgres);
        let lost = seen_from_here("sqlite:/var/tg.db", &telegram).unwrap_err();
        assert!(lost.contains("compose service `telegram`"), "{lost}");
        let host = seen_from_here("sqlite:/data/tg.db", &Deployment::Host).unwrap();
        assert_eq!(host, "sqlite:/data/tg.db");
    }
}
