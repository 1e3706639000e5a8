//! The PostgreSQL backend of [`Store`](crate::Store): one database that several gateway
//! processes can share, and that lives on another machine than the gateway.
//!
//! Every write is one statement (deleting a principal is one database transaction of two),
//! sent straight through a connection pool: PostgreSQL locks rows, not the whole database, and
//! groups concurrent commits on its own, so the group-committing writer task of the SQLite
//! backend has no job here. Durability is PostgreSQL's: a commit is flushed to its WAL before
//! the call returns (with the server's default `synchronous_commit = on`).

mod audit_writer;
mod impl_store;
mod rows;

use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgSslMode};
use sqlx::{ConnectOptions, Connection};

use crate::error::StoreError;
use crate::records::{BootRecord, MeterValuesRecord, SecurityEventRecord};
use crate::url::{PostgresTarget, StoreUrl};

static MIGRATOR: Migrator = sqlx::migrate!("./migrations-postgres");

/// A [`Store`](crate::Store) kept in one PostgreSQL database.
#[derive(Debug)]
pub struct PostgresStore {
    pool: PgPool,
    audit: audit_writer::AuditWriter,
}

impl PostgresStore {
    /// Connects to the database a `postgres://` (or `postgresql://`) URL names and migrates
    /// it. The server must answer within the URL's `connect_timeout` (10 s by default);
    /// otherwise, and when it refuses the user, password or database, this fails with
    /// [`StoreError::Unreachable`], which names database, host, port and user but never the
    /// password.
    pub async fn open(url: &str) -> Result<PostgresStore, StoreError> {
        match StoreUrl::parse(url)? {
            StoreUrl::Postgres(target) => PostgresStore::open_target(&target).await,
            StoreUrl::Sqlite(_) => Err(StoreError::InvalidUrl(
                "PostgresStore needs a postgres:// URL".to_owned(),
            )),
        }
    }

    pub(crate) async fn open_target(target: &PostgresTarget) -> Result<PostgresStore, StoreError> {
        let options = connect_options(target);
        let unreachable = |reason: String| StoreError::Unreachable {
            target: target.describe(),
            reason,
        };
        // One connection first, bounded in time, so a wrong address or credential is reported
        // as such at start instead of as a pool time-out at the first request.
        let mut conn = tokio::time::timeout(target.connect_timeout, options.connect())
            .await
            .map_err(|_| {
                unreachable(format!(
                    "no answer within {} s",
                    target.connect_timeout.as_secs()
                ))
            })?
            .map_err(|err| unreachable(err.to_string()))?;
        MIGRATOR.run(&mut conn).await?;
        conn.close().await?;
        let pool = PgPoolOptions::new()
            .max_connections(target.max_connections)
            .acquire_timeout(target.connect_timeout)
            .idle_timeout(Some(Duration::from_secs(300)))
            .connect_lazy_with(options);
        let audit = audit_writer::AuditWriter::start(pool.clone());
        Ok(PostgresStore { pool, audit })
    }

    /// Applies any migration not yet applied; running it again is a no-op. [`open`] already
    /// does this. Several processes may run it at once: PostgreSQL's advisory lock lets one
    /// migrate while the others wait.
    ///
    /// [`open`]: PostgresStore::open
    pub async fn run_migrations(&self) -> Result<(), StoreError> {
        MIGRATOR.run(self.pool()?).await?;
        Ok(())
    }

    /// Waits for statements under way, then closes every connection. Later calls fail with
    /// [`StoreError::Closed`].
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The charger's boot history, newest first.
    pub async fn boots(&self, charger: &str) -> Result<Vec<BootRecord>, StoreError> {
        let found = sqlx::query(
            "SELECT vendor, model, serial, firmware, ocpp_version, at \
             FROM charger_boots WHERE charger = $1 ORDER BY id DESC",
        )
        .bind(charger)
        .fetch_all(self.pool()?)
        .await?;
        rows::all(&found, rows::boot)
    }

    /// The meter values stored for a charger's transaction, in arrival order.
    pub async fn meter_values(
        &self,
        charger: &str,
        transaction_id: i64,
    ) -> Result<Vec<MeterValuesRecord>, StoreError> {
        let found = sqlx::query(
            "SELECT m.transaction_id, m.seq, m.sample::text AS sample, m.at FROM meter_values m \
             JOIN transactions t ON t.id = m.transaction_id \
             WHERE t.id = $1 AND t.charger = $2 ORDER BY m.id",
        )
        .bind(transaction_id)
        .bind(charger)
        .fetch_all(self.pool()?)
        .await?;
        rows::all(&found, rows::meter_values)
    }

    /// Security events of a charger, newest first.
    pub async fn security_events(
        &self,
        charger: &str,
    ) -> Result<Vec<SecurityEventRecord>, StoreError> {
        let found = sqlx::query(
            "SELECT id, charger, kind, at, info::text AS info FROM security_events \
             WHERE charger = $1 ORDER BY id DESC",
        )
        .bind(charger)
        .fetch_all(self.pool()?)
        .await?;
        rows::all(&found, rows::security_event)
    }

    /// The pool, or [`StoreError::Closed`] once the store was closed.
    fn pool(&self) -> Result<&PgPool, StoreError> {
        if self.pool.is_closed() {
            return Err(StoreError::Closed);
        }
        Ok(&self.pool)
    }
}

fn connect_options(target: &PostgresTarget) -> PgConnectOptions {
    // `new` reads the libpq environment (PGPASSWORD, ~/.pgpass ...) for what the URL leaves out.
    let mut options = PgConnectOptions::new()
        .host(&target.host)
        .port(target.port)
        .username(&target.user)
        .database(&target.database)
        .ssl_mode(if target.ssl_disabled {
            PgSslMode::Disable
        } else {
            PgSslMode::Prefer
        });
    if let Some(password) = &target.password {
        options = options.password(password);
    }
    if let Some(name) = &target.application_name {
        options = options.application_name(name);
    }
    options
}
