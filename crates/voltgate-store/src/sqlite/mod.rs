//! The SQLite backend of [`Store`](crate::Store): the one shipped today, for a single gateway
//! process.
//!
//! A file database runs in WAL mode with one writer task ([`writer`]: every write is one
//! statement, committed in groups) and a small pool of `query_only` read connections that
//! WAL lets run while the writer commits. `sqlite::memory:` is one private in-memory
//! connection that serves both writes and reads, so there is no second connection that could
//! see other data.

mod impl_store;
mod rows;
mod writer;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, SqliteConnection};
use tokio::sync::Mutex;

use crate::error::StoreError;
use crate::records::{BootRecord, MeterValuesRecord, SecurityEventRecord};
use crate::url::{SqliteLocation, SqliteTarget, StoreUrl, SyncMode};
pub use writer::WriteStats;
use writer::{SharedConnection, Statement, WriteFn, Writer};

static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Read connections of a file database; SQLite readers do not block each other in WAL mode.
const READ_CONNECTIONS: u32 = 4;

/// How long a statement waits for another process holding the database lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// A function that runs one read with borrowed arguments.
type ReadFn<A, T> = for<'c> fn(&'c mut SqliteConnection, &'c A) -> Statement<'c, T>;

#[derive(Debug)]
enum Readers {
    Pool(SqlitePool),
    /// The writer's own connection (in-memory databases).
    Writer(SharedConnection),
}

/// A [`Store`](crate::Store) kept in one SQLite database.
///
/// Must be used inside the tokio runtime it was opened in, which runs its writer task.
#[derive(Debug)]
pub struct SqliteStore {
    writer: Writer,
    readers: Readers,
}

impl SqliteStore {
    /// Opens (creating if missing) the database a `sqlite:` URL names and migrates it.
    ///
    /// Accepted forms: `sqlite://PATH`, `sqlite:PATH`, `sqlite::memory:`, each optionally with
    /// `?synchronous=normal` to trade power-loss durability for write throughput.
    pub async fn open(url: &str) -> Result<SqliteStore, StoreError> {
        match StoreUrl::parse(url)? {
            StoreUrl::Sqlite(target) => SqliteStore::open_target(&target).await,
            StoreUrl::Postgres(_) => Err(StoreError::InvalidUrl(
                "SqliteStore needs a sqlite: URL".to_owned(),
            )),
        }
    }

    pub(crate) async fn open_target(target: &SqliteTarget) -> Result<SqliteStore, StoreError> {
        let store = match &target.location {
            SqliteLocation::Memory => SqliteStore::open_memory().await?,
            SqliteLocation::File(path) => SqliteStore::open_file(path, target.sync).await?,
        };
        store.run_migrations().await?;
        Ok(store)
    }

    async fn open_memory() -> Result<SqliteStore, StoreError> {
        let conn = SqliteConnectOptions::new()
            .in_memory(true)
            .foreign_keys(true)
            .connect()
            .await?;
        let shared: SharedConnection = Arc::new(Mutex::new(Some(conn)));
        Ok(SqliteStore {
            writer: Writer::spawn(Arc::clone(&shared)),
            readers: Readers::Writer(shared),
        })
    }

    async fn open_file(path: &Path, sync: SyncMode) -> Result<SqliteStore, StoreError> {
        // A missing directory is most likely a typo or an unmounted volume: creating it would
        // start a fresh, empty estate (and a new admin token) without a word.
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            match std::fs::metadata(dir) {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => {
                    return Err(StoreError::Io {
                        path: dir.to_path_buf(),
                        source: std::io::Error::other("not a directory"),
                    })
                }
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                    return Err(StoreError::MissingDirectory(dir.to_path_buf()))
                }
                Err(source) => {
                    return Err(StoreError::Io {
                        path: dir.to_path_buf(),
                        source,
                    })
                }
            }
        }
        let common = SqliteConnectOptions::new()
            .filename(path)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let writer_conn = common
            .clone()
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match sync {
                SyncMode::Full => SqliteSynchronous::Full,
                SyncMode::Normal => SqliteSynchronous::Normal,
            })
            .connect()
            .await?;
        let readers = SqlitePoolOptions::new()
            .max_connections(READ_CONNECTIONS)
            .test_before_acquire(false)
            .connect_lazy_with(common.pragma("query_only", "ON"));
        Ok(SqliteStore {
            writer: Writer::spawn(Arc::new(Mutex::new(Some(writer_conn)))),
            readers: Readers::Pool(readers),
        })
    }

    /// Applies any migration not yet applied; running it again is a no-op. [`open`] already
    /// does this.
    ///
    /// [`open`]: SqliteStore::open
    pub async fn run_migrations(&self) -> Result<(), StoreError> {
        self.writer.migrate(&MIGRATOR).await
    }

    /// Commits every write queued so far, then closes all connections. Later calls fail.
    pub async fn close(&self) {
        self.writer.close().await;
        if let Readers::Pool(pool) = &self.readers {
            pool.close().await;
        }
    }

    /// Counters of the group-committing writer, e.g. for metrics.
    pub fn write_stats(&self) -> WriteStats {
        self.writer.stats()
    }

    /// The charger's boot history, newest first.
    pub async fn boots(&self, charger: &str) -> Result<Vec<BootRecord>, StoreError> {
        self.read(charger, |conn, charger| {
            Box::pin(async move {
                let found = sqlx::query(
                    "SELECT vendor, model, serial, firmware, ocpp_version, at \
                     FROM charger_boots WHERE charger = ? ORDER BY id DESC",
                )
                .bind(charger)
                .fetch_all(conn)
                .await?;
                rows::all(&found, rows::boot)
            })
        })
        .await
    }

    /// The meter values stored for a charger's transaction, in arrival order.
    pub async fn meter_values(
        &self,
        charger: &str,
        transaction_id: i64,
    ) -> Result<Vec<MeterValuesRecord>, StoreError> {
        self.read(&(charger, transaction_id), |conn, (charger, id)| {
            Box::pin(async move {
                let found = sqlx::query(
                    "SELECT m.transaction_id, m.seq, m.sample, m.at FROM meter_values m \
                     JOIN transactions t ON t.id = m.transaction_id \
                     WHERE t.id = ? AND t.charger = ? ORDER BY m.id",
                )
                .bind(*id)
                .bind(*charger)
                .fetch_all(conn)
                .await?;
                rows::all(&found, rows::meter_values)
            })
        })
        .await
    }

    /// Security events of a charger, newest first.
    pub async fn security_events(
        &self,
        charger: &str,
    ) -> Result<Vec<SecurityEventRecord>, StoreError> {
        self.read(charger, |conn, charger| {
            Box::pin(async move {
                let found = sqlx::query(
                    "SELECT id, charger, kind, at, info FROM security_events \
                     WHERE charger = ? ORDER BY id DESC",
                )
                .bind(charger)
                .fetch_all(conn)
                .await?;
                rows::all(&found, rows::security_event)
            })
        })
        .await
    }

    /// Runs a read on a read connection (or, in memory, between two write batches).
    async fn read<A, T>(&self, args: &A, query: ReadFn<A, T>) -> Result<T, StoreError>
    where
        A: ?Sized + Sync,
    {
        match &self.readers {
            Readers::Pool(pool) => {
                let mut conn = pool.acquire().await?;
                query(&mut conn, args).await
            }
            Readers::Writer(shared) => {
                let mut guard = shared.lock().await;
                let conn = guard.as_mut().ok_or(StoreError::Closed)?;
                query(conn, args).await
            }
        }
    }

    /// Runs a write through the writer task; resolves once it is committed.
    async fn write<D, T>(&self, data: D, statement: WriteFn<D, T>) -> Result<T, StoreError>
    where
        D: Send + Sync + 'static,
        T: Send + 'static,
    {
        self.writer.write(data, statement).await
    }
}
