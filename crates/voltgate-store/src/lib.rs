//! The durable store of Voltgate: everything that must survive a restart.
//!
//! # The boundary
//!
//! The gateway talks to persistence only through the object-safe [`Store`] trait, usually as an
//! `Arc<dyn Store>` obtained from [`open`], which picks the backend by URL scheme. What crosses
//! the boundary is plain data ([`records`]): no connections, rows or SQL types, and no clock
//! (times are RFC 3339 strings the caller supplies). The contract every backend keeps:
//!
//! - **Durability**: a write is committed when its future resolves with `Ok`.
//! - **Atomic single writes**: every write is one statement, so a crash never leaves half of it.
//! - **Idempotent session start**: [`Store::start_transaction`] is keyed by `(charger, key)`
//!   with a unique constraint; a retry, also a concurrent one, returns the first row.
//! - **Replay order**: role-engine state is read back in an order the engine accepts (parents
//!   before children, then insertion order).
//! - **Cascades**: deleting a principal removes its API tokens, id tokens and assignments;
//!   transactions and the audit log keep naming it.
//! - **Append-only audit**: records are never deleted; only the outcome may be filled in later.
//! - **Errors** are [`StoreError`] values that never carry secrets (hashes, URL credentials).
//!
//! # The SQLite backend
//!
//! The default backend: [`SqliteStore`] (`sqlite://PATH`, `sqlite:PATH`, `sqlite::memory:`).
//! Schema changes are numbered files in `migrations/`, applied on every open (a no-op when
//! nothing is new). A file database runs in WAL mode with foreign keys on and
//! `synchronous=FULL`: every commit is flushed to the disk before the caller hears `Ok`, so it
//! survives power loss, not just a crash of the process. Because a flush costs about a
//! millisecond, all writes go through one writer task that commits whatever is queued in one
//! transaction (group commit, see [`WriteStats`]); reads use a separate pool of read-only
//! connections. `?synchronous=normal` skips the per-commit flush: commits then survive a
//! process crash but the last ones may be lost on power loss. BENCHMARKS.md has the numbers.
//! `sqlite::memory:` is a single private in-memory connection that serves reads and writes
//! alike, so no second connection can ever see different data; it is gone when the store is.
//!
//! # The PostgreSQL backend
//!
//! [`PostgresStore`] (`postgres://USER[:PASSWORD]@HOST[:PORT]/DB`, also `postgresql://`): one
//! database that outlives the gateway's machine and that several gateway processes can share.
//! It has its own numbered migrations in `migrations-postgres/` (the same schema written for
//! PostgreSQL: identity columns for insertion order, `BOOLEAN`, `JSONB`, PL/pgSQL triggers for
//! the append-only audit log), applied on every open under PostgreSQL's advisory lock. Writes
//! go straight through a connection pool: each is one statement (deleting a principal is one
//! transaction of two), and PostgreSQL's row locks and unique constraints give the same
//! idempotency and first-stop-wins rules as SQLite's single writer. Opening fails with
//! [`StoreError::Unreachable`] when the server does not answer within the connect timeout or
//! refuses the credentials or database.
//!
//! The contract checks in `tests/store.rs` run every check on both backends.

mod error;
mod postgres;
pub mod records;
mod replay;
mod sqlite;
mod store;
mod url;

use std::sync::Arc;

pub use error::StoreError;
pub use postgres::PostgresStore;
pub use records::{
    ApiTokenRecord, AssignmentRecord, AuditFilter, AuditRecord, BootRecord, ChargerBehaviour,
    ChargerRecord, IdTokenRecord, LocalListRecord, MeterValuesRecord, NewTransaction,
    PrincipalRecord, RoleRecord, ScopeRecord, SecurityEventRecord, StoredAuditRecord,
    TransactionFilter, TransactionRecord,
};
pub use sqlite::{SqliteStore, WriteStats};
pub use store::Store;
pub use url::redact_url;

use url::StoreUrl;

/// Whether a store URL names a PostgreSQL database (one several processes can share).
pub fn is_postgres_url(url: &str) -> bool {
    matches!(StoreUrl::parse(url), Ok(StoreUrl::Postgres(_)))
}

/// Opens the store a URL names, creating and migrating it as needed.
///
/// `sqlite://PATH` / `sqlite:PATH` (file created if missing, optional `?synchronous=normal`),
/// `sqlite::memory:` (one in-memory database for this store), `postgres://USER@HOST:PORT/DB`
/// or `postgresql://...` (an existing database, see [`PostgresStore::open`]). Other schemes
/// fail with [`StoreError::InvalidUrl`].
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    match StoreUrl::parse(url)? {
        StoreUrl::Sqlite(target) => Ok(Arc::new(SqliteStore::open_target(&target).await?)),
        StoreUrl::Postgres(target) => Ok(Arc::new(PostgresStore::open_target(&target).await?)),
    }
}
