//! The doctor's database: SQLite by default, PostgreSQL with the same code
//! through sqlx's `Any` driver. Queries are runtime strings, so building
//! needs no database.

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Row};

/// One announced change of a target: `failing` (with the checks) or `recovered`.
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryEntry {
    pub target: String,
    /// Unix time.
    pub at: i64,
    pub change: String,
    /// The checks that started failing, comma-separated; empty on recovery.
    pub checks: String,
}

/// The bot's device as the store keeps it. No `Debug`: the token is a secret.
#[derive(Clone, PartialEq)]
pub struct StoredDevice {
    pub device_id: String,
    /// `None` when the device was recorded before tokens were kept.
    pub access_token: Option<String>,
}

/// The checks failing per target, as the watch remembers them.
pub type FailingChecks = std::collections::BTreeMap<String, std::collections::BTreeSet<String>>;

/// How long a handled command event is remembered, in seconds (30 days).
const HANDLED_EVENTS_KEPT: i64 = 30 * 24 * 3600;

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    kind: DatabaseKind,
    /// The appservice path's writes, committed in groups by `write_groups`.
    writes: tokio::sync::mpsc::UnboundedSender<Write>,
}

/// A write on the appservice path, with where its outcome goes.
enum Write {
    Transaction {
        txn_id: String,
        event_count: usize,
        room_events: Vec<(String, String)>,
        done: tokio::sync::oneshot::Sender<Result<bool, String>>,
    },
    InboxDone {
        event_id: String,
        done: tokio::sync::oneshot::Sender<Result<bool, String>>,
    },
}

impl Write {
    /// A transaction with no room event for the bot: only its id to record.
    fn is_bare_transaction(&self) -> bool {
        matches!(self, Write::Transaction { room_events, .. } if room_events.is_empty())
    }
}

/// The most writes in one commit.
const GROUP_LIMIT: usize = 512;

/// Commits the writes waiting at each moment together: concurrent
/// transactions share one commit (and one fsync) instead of queueing for
/// one each, and each still has its answer only once it is durable.
async fn write_groups(pool: AnyPool, mut writes: tokio::sync::mpsc::UnboundedReceiver<Write>) {
    while let Some(first) = writes.recv().await {
        let mut group = vec![first];
        while group.len() < GROUP_LIMIT
            && let Ok(more) = writes.try_recv()
        {
            group.push(more);
        }
        let outcome = commit_group(&pool, &group).await.map_err(|e| e.to_string());
        for (index, write) in group.into_iter().enumerate() {
            let result = outcome
                .as_ref()
                .map(|fresh| fresh[index])
                .map_err(Clone::clone);
            let (Write::Transaction { done, .. } | Write::InboxDone { done, .. }) = write;
            let _ = done.send(result);
        }
    }
}

/// One commit for the group, a few statements whatever its size; per
/// write, whether it changed anything (a transaction id sent twice in one
/// group is fresh only the first time).
async fn commit_group(pool: &AnyPool, group: &[Write]) -> Result<Vec<bool>, sqlx::Error> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut connection = pool.acquire().await?;
    let (mut fresh, mut cleared) = if group.iter().all(Write::is_bare_transaction) {
        // The usual group: one statement, which commits on its own.
        let fresh = insert_transactions(&mut connection, group, now).await?;
        (fresh, Default::default())
    } else {
        let mut transaction = sqlx::Connection::begin(&mut *connection).await?;
        let fresh = insert_transactions(&mut transaction, group, now).await?;
        insert_inbox(&mut transaction, group, &fresh, now).await?;
        let cleared = clear_inbox(&mut transaction, group).await?;
        transaction.commit().await?;
        (fresh, cleared)
    };
    Ok(group
        .iter()
        .map(|write| match write {
            Write::Transaction { txn_id, .. } => fresh.remove(txn_id.as_str()),
            Write::InboxDone { event_id, .. } => cleared.remove(event_id.as_str()),
        })
        .collect())
}

/// `$first, $first+1, …` for `count` values: one row of a multi-row
/// statement. Only these placeholders are ever spliced into SQL, which is
/// why the batch statements may be built at run time.
fn placeholders(first: usize, count: usize) -> String {
    let list: Vec<String> = (first..first + count).map(|n| format!("${n}")).collect();
    list.join(", ")
}

/// Records the group's transaction ids; the ones not seen before.
async fn insert_transactions(
    connection: &mut sqlx::AnyConnection,
    group: &[Write],
    now: i64,
) -> Result<std::collections::HashSet<String>, sqlx::Error> {
    let rows: Vec<(&String, usize)> = group
        .iter()
        .filter_map(|write| match write {
            Write::Transaction {
                txn_id,
                event_count,
                ..
            } => Some((txn_id, *event_count)),
            Write::InboxDone { .. } => None,
        })
        .collect();
    if rows.is_empty() {
        return Ok(Default::default());
    }
    let values: Vec<String> = (0..rows.len())
        .map(|n| format!("({})", placeholders(3 * n + 1, 3)))
        .collect();
    let sql = format!(
        "INSERT INTO appservice_transactions (txn_id, received_at, event_count) VALUES {} ON CONFLICT (txn_id) DO NOTHING RETURNING txn_id",
        values.join(", ")
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for (txn_id, event_count) in rows {
        query = query.bind(txn_id).bind(now).bind(event_count as i64);
    }
    let inserted = query.fetch_all(&mut *connection).await?;
    inserted.iter().map(|row| row.try_get("txn_id")).collect()
}

/// Keeps the room events of the fresh transactions until the bot is done.
async fn insert_inbox(
    connection: &mut sqlx::AnyConnection,
    group: &[Write],
    fresh: &std::collections::HashSet<String>,
    now: i64,
) -> Result<(), sqlx::Error> {
    let mut seen = std::collections::HashSet::new();
    let rows: Vec<(&String, &String, &String)> = group
        .iter()
        .filter_map(|write| match write {
            Write::Transaction {
                txn_id,
                room_events,
                ..
            } if fresh.contains(txn_id) && seen.insert(txn_id) => Some((txn_id, room_events)),
            _ => None,
        })
        .flat_map(|(txn_id, events)| events.iter().map(move |(id, event)| (id, txn_id, event)))
        .collect();
    // Chunked: both databases cap the values one statement may bind.
    for chunk in rows.chunks(INBOX_ROWS_PER_STATEMENT) {
        let values: Vec<String> = (0..chunk.len())
            .map(|n| format!("({})", placeholders(4 * n + 1, 4)))
            .collect();
        let sql = format!(
            "INSERT INTO inbox (event_id, txn_id, event, received_at) VALUES {} ON CONFLICT (event_id) DO NOTHING",
            values.join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (event_id, txn_id, event) in chunk {
            query = query.bind(*event_id).bind(*txn_id).bind(*event).bind(now);
        }
        query.execute(&mut *connection).await?;
    }
    Ok(())
}

/// Inbox rows per statement: 4 values each, well under SQLite's 32,766.
const INBOX_ROWS_PER_STATEMENT: usize = 1000;

/// Drops the events the bot is done with; the ones that were there.
async fn clear_inbox(
    connection: &mut sqlx::AnyConnection,
    group: &[Write],
) -> Result<std::collections::HashSet<String>, sqlx::Error> {
    let ids: Vec<&String> = group
        .iter()
        .filter_map(|write| match write {
            Write::InboxDone { event_id, .. } => Some(event_id),
            Write::Transaction { .. } => None,
        })
        .collect();
    if ids.is_empty() {
        return Ok(Default::default());
    }
    let sql = format!(
        "DELETE FROM inbox WHERE event_id IN ({}) RETURNING event_id",
        placeholders(1, ids.len())
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for id in ids {
        query = query.bind(id);
    }
    let deleted = query.fetch_all(&mut *connection).await?;
    deleted.iter().map(|row| row.try_get("event_id")).collect()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatabaseKind {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("could not write to the doctor's database: {0}")]
    Write(String),
    #[error(
        "database URI `{0}` is not supported: use sqlite:PATH or postgres://user:password@host/db (the value of `database` in the config)"
    )]
    Unsupported(String),
    #[error(
        "cannot open the database ({kind:?}): {source}. Check `database` in the config and that the path or server is reachable."
    )]
    Open {
        kind: DatabaseKind,
        #[source]
        source: sqlx::Error,
    },
    #[error(
        "cannot create the doctor's database {file}: {reason}. Point `database` in the config at a file in a folder the doctor may write (sqlite:/var/lib/bridge-doctor/doctor.db, say)."
    )]
    SqliteFile { file: String, reason: String },
    #[error("cannot prepare the database tables: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database query failed: {0}")]
    Query(#[from] sqlx::Error),
}

/// The database keeps message text (the inbox): its files are the
/// doctor's user's alone. The file is created 0600 here before SQLite
/// would create it under the umask; SQLite gives the WAL and shared-memory
/// files the database file's mode. Files an earlier version made are
/// narrowed. A file that cannot be created is named here, since SQLite
/// would only say "unable to open database file".
fn private_sqlite_files(path: &str) -> Result<(), StoreError> {
    use std::io::ErrorKind;
    use std::os::unix::fs::OpenOptionsExt;
    let file = path.split('?').next().unwrap_or_default();
    let file = file.strip_prefix("//").unwrap_or(file);
    if file.is_empty() || file.starts_with(':') {
        return Ok(());
    }
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(crate::shared::private::FILE_MODE)
        .open(file);
    let reason = match created {
        Err(err) if err.kind() == ErrorKind::NotADirectory => {
            "a folder on its path is a file".to_owned()
        }
        Err(err) if err.kind() == ErrorKind::NotFound => "its folder does not exist".to_owned(),
        Err(err) if err.kind() != ErrorKind::AlreadyExists => err.to_string(),
        _ => {
            for suffix in ["", "-wal", "-shm"] {
                crate::shared::private::narrow_file(std::path::Path::new(&format!(
                    "{file}{suffix}"
                )));
            }
            return Ok(());
        }
    };
    Err(StoreError::SqliteFile {
        file: file.to_owned(),
        reason,
    })
}

impl Store {
    /// Opens (creating a SQLite file when missing) and migrates.
    pub async fn open(uri: &str) -> Result<Store, StoreError> {
        install_default_drivers();
        let (kind, connect_uri) = if let Some(path) = uri.strip_prefix("sqlite:") {
            private_sqlite_files(path)?;
            let separator = if path.contains('?') { '&' } else { '?' };
            (
                DatabaseKind::Sqlite,
                format!("sqlite:{path}{separator}mode=rwc"),
            )
        } else if uri.starts_with("postgres://") || uri.starts_with("postgresql://") {
            (DatabaseKind::Postgres, uri.to_owned())
        } else {
            return Err(StoreError::Unsupported(crate::shared::redact::uri(uri)));
        };
        let pool = AnyPoolOptions::new()
            .max_connections(if kind == DatabaseKind::Sqlite { 1 } else { 4 })
            // A broken connection shows in the query itself; a test query
            // before each use would double the round trips of every commit.
            .test_before_acquire(false)
            .connect(&connect_uri)
            .await
            .map_err(|source| StoreError::Open { kind, source })?;
        if kind == DatabaseKind::Sqlite {
            // WAL lets `check` read while `run` writes.
            sqlx::query("PRAGMA journal_mode=WAL")
                .execute(&pool)
                .await?;
        }
        sqlx::migrate!("./migrations").run(&pool).await?;
        // A homeserver re-sends a transaction for a few days at most: older
        // command events need not be remembered.
        let forget_before = time::OffsetDateTime::now_utc().unix_timestamp() - HANDLED_EVENTS_KEPT;
        sqlx::query("DELETE FROM handled_events WHERE handled_at < $1")
            .bind(forget_before)
            .execute(&pool)
            .await?;
        let (writes, pending) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(write_groups(pool.clone(), pending));
        Ok(Store { pool, kind, writes })
    }

    pub fn kind(&self) -> DatabaseKind {
        self.kind
    }

    /// Records a transaction id with its room events (`(event_id, event
    /// JSON)`), durably, before the homeserver gets its 200; `false` when
    /// the id was seen before (its events are then in the inbox already, or
    /// handled). Transactions that arrive together share one commit.
    pub async fn record_transaction(
        &self,
        txn_id: &str,
        event_count: usize,
        room_events: &[(String, String)],
    ) -> Result<bool, StoreError> {
        self.write(|done| Write::Transaction {
            txn_id: txn_id.to_owned(),
            event_count,
            room_events: room_events.to_vec(),
            done,
        })
        .await
    }

    /// Hands a write to the writer and waits until it is committed.
    async fn write(
        &self,
        write: impl FnOnce(tokio::sync::oneshot::Sender<Result<bool, String>>) -> Write,
    ) -> Result<bool, StoreError> {
        let stopped = || StoreError::Write("the writer stopped".to_owned());
        let (done, outcome) = tokio::sync::oneshot::channel();
        self.writes.send(write(done)).map_err(|_| stopped())?;
        outcome
            .await
            .map_err(|_| stopped())?
            .map_err(StoreError::Write)
    }

    /// Room events received but not handled yet (the doctor stopped first),
    /// oldest first: `(txn_id, event JSON)`.
    pub async fn inbox(&self) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query("SELECT txn_id, event FROM inbox ORDER BY received_at, event_id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("txn_id")?, row.try_get("event")?)))
            .collect()
    }

    /// The bot is done with this event (committed with the next group).
    pub async fn inbox_done(&self, event_id: &str) -> Result<(), StoreError> {
        self.write(|done| Write::InboxDone {
            event_id: event_id.to_owned(),
            done,
        })
        .await
        .map(|_| ())
    }

    /// Whether this command event was answered before (by either path,
    /// also before a restart).
    pub async fn is_handled(&self, event_id: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 AS one FROM handled_events WHERE event_id = $1")
            .bind(event_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// Remembers that this command event has been answered.
    pub async fn mark_handled(&self, event_id: &str) -> Result<(), StoreError> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        sqlx::query(
            "INSERT INTO handled_events (event_id, handled_at) VALUES ($1, $2) ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(event_id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The bot's device, when it has one.
    pub async fn bot_device(&self, user_id: &str) -> Result<Option<StoredDevice>, StoreError> {
        let row = sqlx::query("SELECT device_id, access_token FROM bot_device WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some(StoredDevice {
            device_id: row.try_get("device_id")?,
            access_token: row.try_get("access_token")?,
        }))
    }

    pub async fn set_bot_device(
        &self,
        user_id: &str,
        device_id: &str,
        access_token: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO bot_device (user_id, device_id, access_token) VALUES ($1, $2, $3) ON CONFLICT (user_id) DO UPDATE SET device_id = excluded.device_id, access_token = excluded.access_token",
        )
        .bind(user_id)
        .bind(device_id)
        .bind(access_token)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The bot's delivery probe room, when it has one.
    pub async fn probe_room(&self, user_id: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT room_id FROM probe_room WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.and_then(|r| r.try_get::<String, _>("room_id").ok()))
    }

    pub async fn set_probe_room(&self, user_id: &str, room_id: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO probe_room (user_id, room_id) VALUES ($1, $2) ON CONFLICT (user_id) DO UPDATE SET room_id = excluded.room_id",
        )
        .bind(user_id)
        .bind(room_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The checks failing at the last watch run, by target.
    pub async fn failing_checks(&self) -> Result<FailingChecks, StoreError> {
        let rows = sqlx::query("SELECT target, check_id FROM failing_checks")
            .fetch_all(&self.pool)
            .await?;
        let mut failing = FailingChecks::new();
        for row in rows {
            failing
                .entry(row.try_get("target")?)
                .or_default()
                .insert(row.try_get("check_id")?);
        }
        Ok(failing)
    }

    /// Replaces what fails for `target`, keeping `since` of what still fails.
    pub async fn set_failing_checks(
        &self,
        target: &str,
        checks: &std::collections::BTreeSet<String>,
    ) -> Result<(), StoreError> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut transaction = self.pool.begin().await?;
        let known: Vec<String> =
            sqlx::query("SELECT check_id FROM failing_checks WHERE target = $1")
                .bind(target)
                .fetch_all(&mut *transaction)
                .await?
                .iter()
                .filter_map(|row| row.try_get("check_id").ok())
                .collect();
        for gone in known.iter().filter(|c| !checks.contains(*c)) {
            sqlx::query("DELETE FROM failing_checks WHERE target = $1 AND check_id = $2")
                .bind(target)
                .bind(gone)
                .execute(&mut *transaction)
                .await?;
        }
        for check in checks.iter().filter(|c| !known.contains(c)) {
            sqlx::query("INSERT INTO failing_checks (target, check_id, since) VALUES ($1, $2, $3)")
                .bind(target)
                .bind(check)
                .bind(now)
                .execute(&mut *transaction)
                .await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    /// Each admin's management room, where alerts go: `(user, room)`.
    pub async fn management_rooms(&self) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query("SELECT user_id, room_id FROM management_rooms ORDER BY user_id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("user_id")?, row.try_get("room_id")?)))
            .collect()
    }

    pub async fn set_management_room(
        &self,
        user_id: &str,
        room_id: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO management_rooms (user_id, room_id) VALUES ($1, $2) ON CONFLICT (user_id) DO UPDATE SET room_id = excluded.room_id",
        )
        .bind(user_id)
        .bind(room_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Appends an announced change to the watch history.
    pub async fn add_history(&self, entry: &HistoryEntry) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO watch_history (target, at, change, checks) VALUES ($1, $2, $3, $4)",
        )
        .bind(&entry.target)
        .bind(entry.at)
        .bind(&entry.change)
        .bind(&entry.checks)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The last `limit` announced changes, newest first, of `target` or all.
    pub async fn history(
        &self,
        target: Option<&str>,
        limit: i64,
    ) -> Result<Vec<HistoryEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT target, at, change, checks FROM watch_history WHERE $1 = '' OR target = $1 ORDER BY at DESC LIMIT $2",
        )
        .bind(target.unwrap_or_default())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(HistoryEntry {
                    target: row.try_get("target")?,
                    at: row.try_get("at")?,
                    change: row.try_get("change")?,
                    checks: row.try_get("checks")?,
                })
            })
            .collect()
    }

    /// `watch off` (muted) or `watch on` for a room.
    pub async fn set_muted(&self, room_id: &str, muted: bool) -> Result<(), StoreError> {
        let sql = if muted {
            "INSERT INTO muted_rooms (room_id) VALUES ($1) ON CONFLICT (room_id) DO NOTHING"
        } else {
            "DELETE FROM muted_rooms WHERE room_id = $1"
        };
        sqlx::query(sql).bind(room_id).execute(&self.pool).await?;
        Ok(())
    }

    pub async fn is_muted(&self, room_id: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 AS one FROM muted_rooms WHERE room_id = $1")
            .bind(room_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// What a target looked like when last healthy (fingerprints as JSON).
    pub async fn healthy_fingerprints(&self, target: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT fingerprints FROM healthy_fingerprints WHERE target = $1")
            .bind(target)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.and_then(|r| r.try_get("fingerprints").ok()))
    }

    pub async fn set_healthy_fingerprints(
        &self,
        target: &str,
        fingerprints: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO healthy_fingerprints (target, fingerprints) VALUES ($1, $2) ON CONFLICT (target) DO UPDATE SET fingerprints = excluded.fingerprints",
        )
        .bind(target)
        .bind(fingerprints)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn transaction_count(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM appservice_transactions")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<i64, _>("n")?)
    }

    /// The server's version string, for the support packet.
    pub async fn server_version(&self) -> Result<String, StoreError> {
        let sql = match self.kind {
            DatabaseKind::Sqlite => "SELECT sqlite_version() AS v",
            DatabaseKind::Postgres => "SELECT version() AS v",
        };
        let row = sqlx::query(sql).fetch_one(&self.pool).await?;
        Ok(row.try_get::<String, _>("v")?)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn repeated_transaction_is_recorded_once_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let uri = format!("sqlite:{}", dir.path().join("d.db").display());
        let store = Store::open(&uri).await.unwrap();
        let events = [("$e1".to_owned(), "{\"event_id\":\"$e1\"}".to_owned())];
        assert!(store.record_transaction("t1", 2, &events).await.unwrap());
        assert!(!store.record_transaction("t1", 2, &events).await.unwrap());
        store.close().await;
        let store = Store::open(&uri).await.unwrap();
        assert!(!store.record_transaction("t1", 2, &[]).await.unwrap());
        assert_eq!(store.transaction_count().await.unwrap(), 1);
        assert!(!store.server_version().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn the_database_and_its_wal_are_the_users_alone_whatever_the_umask() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("d.db");
        let store = Store::open(&format!("sqlite:{}", file.display()))
            .await
            .unwrap();
        store.record_transaction("t1", 0, &[]).await.unwrap();
        for suffix in ["", "-wal", "-shm"] {
            let path = format!("{}{suffix}", file.display());
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{path}");
        }
        store.close().await;
    }

    #[tokio::test]
    async fn unhandled_events_and_answered_commands_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let uri = format!("sqlite:{}", dir.path().join("d.db").display());
        let store = Store::open(&uri).await.unwrap();
        let events = [
            ("$a".to_owned(), "{\"event_id\":\"$a\"}".to_owned()),
            ("$b".to_owned(), "{\"event_id\":\"$b\"}".to_owned()),
        ];
        assert!(store.record_transaction("t1", 2, &events).await.unwrap());
        store.inbox_done("$a").await.unwrap();
        store.mark_handled("$a").await.unwrap();
        assert!(store.bot_device("@doctor:d").await.unwrap().is_none());
        store
            .set_bot_device("@doctor:d", "DEV1", "t1")
            .await
            .unwrap();
        store
            .set_bot_device("@doctor:d", "DEV2", "t2")
            .await
            .unwrap();
        store.close().await;
        let store = Store::open(&uri).await.unwrap();
        assert_eq!(
            store.inbox().await.unwrap(),
            [("t1".to_owned(), "{\"event_id\":\"$b\"}".to_owned())],
            "what the bot had not handled when it stopped"
        );
        assert!(store.is_handled("$a").await.unwrap());
        assert!(!store.is_handled("$b").await.unwrap());
        let device = store.bot_device("@doctor:d").await.unwrap().unwrap();
        assert_eq!(
            (device.device_id.as_str(), device.access_token.as_deref()),
            ("DEV2", Some("t2"))
        );
    }

    #[tokio::test]
    async fn unsupported_uri_is_explained_without_password() {
        let err = Store::open("mysql://u:s3cret@h/db")
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("not supported"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
    }
}
