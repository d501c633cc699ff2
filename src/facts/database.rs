//! A bridge's database, opened read-only for its list of tables.

use std::path::Path;
use std::time::Duration;

use sqlx::AnyConnection;
use sqlx::Row;
use sqlx::any::AnyConnectOptions;
use sqlx::{ConnectOptions, Connection};

use super::{TargetFacts, TargetKind};

#[derive(Clone, Debug, PartialEq)]
pub struct DatabaseFacts {
    /// The URI without credentials, safe to show.
    pub shown_uri: String,
    /// Dotted path of the config field the URI came from.
    pub field: String,
    pub tables: Result<Vec<String>, String>,
    /// Owner names in mautrix's `database_owner` table, when it has one.
    pub owners: Vec<String>,
}

/// A URI sqlx can open read-only, from what bridges write: Python bridges
/// use `sqlite:path` or `sqlite:///path`, Go bridges `file:path?...`.
fn read_only_uri(uri: &str, base: &Path) -> Option<String> {
    if uri.starts_with("postgres://") || uri.starts_with("postgresql://") {
        return Some(uri.to_owned());
    }
    let path = uri
        .strip_prefix("sqlite:///")
        .map(|p| format!("/{p}"))
        .or_else(|| uri.strip_prefix("sqlite://").map(str::to_owned))
        .or_else(|| uri.strip_prefix("sqlite:").map(str::to_owned))
        .or_else(|| uri.strip_prefix("file:").map(str::to_owned))?;
    let path = path.split('?').next().unwrap_or_default();
    let path = base.join(path);
    Some(format!("sqlite:{}?mode=ro", path.display()))
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

/// Opens the target's database read-only; `None` when no URI is known.
pub async fn inspect(target: &TargetFacts) -> Option<DatabaseFacts> {
    let config = target.config()?;
    let field = config.database_uri.as_ref()?;
    let base = config.path().parent().unwrap_or(Path::new("."));
    let shown_uri = crate::shared::redact::uri(&field.value);
    let uri = read_only_uri(&field.value, base);
    // The doctor creates its SQLite file on first `run`; before that there is nothing to inspect.
    let not_created_yet = |uri: &str| {
        uri.strip_prefix("sqlite:")
            .and_then(|p| p.split('?').next())
            .is_some_and(|p| !Path::new(p).exists())
    };
    if target.kind == TargetKind::Doctor && uri.as_deref().is_some_and(not_created_yet) {
        return None;
    }
    let tables = match uri {
        None => Err(format!("`{shown_uri}` is not a SQLite or PostgreSQL URI")),
        Some(uri) => list_tables(&uri).await,
    };
    let (tables, owners) = match tables {
        Ok((tables, owners)) => (Ok(tables), owners),
        Err(err) => (Err(err), Vec::new()),
    };
    Some(DatabaseFacts {
        shown_uri,
        field: field.path.clone(),
        tables,
        owners,
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
    }
}
