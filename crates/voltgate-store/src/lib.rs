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
//! Shipped backend: [`SqliteStore`] (`sqlite://PATH`, `sqlite:PATH`, `sqlite::memory:`).
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
//! # What a PostgreSQL backend would need
//!
//! - A `postgres` cargo feature turning on sqlx's `postgres` driver and a `PgStore` that
//!   implements [`Store`]; [`open`] would route `postgres://` / `postgresql://` to it instead of
//!   answering [`StoreError::UnsupportedBackend`].
//! - Its own migrations directory: `INTEGER PRIMARY KEY AUTOINCREMENT` becomes
//!   `BIGINT GENERATED ALWAYS AS IDENTITY`, 0/1 integers become `BOOLEAN`, JSON text becomes
//!   `JSONB`, `?` placeholders become `$1, $2, …`, and the partial indices stay as they are.
//!   `ON CONFLICT … DO UPDATE … RETURNING` works unchanged, so start/stop keep their
//!   single-statement idempotency. The append-only audit triggers need PL/pgSQL functions.
//! - Rows ordered by insertion here use SQLite's `rowid`; PostgreSQL needs an explicit
//!   identity column for that order.
//! - Error mapping: SQLSTATE `23505` (unique) to [`StoreError::Conflict`], `23503` (foreign key)
//!   to [`StoreError::NotFound`].
//! - Durability comes from `synchronous_commit = on` (the default). PostgreSQL has row locks
//!   rather than one file lock and groups concurrent commits itself, so the pool can serve
//!   writers directly and the SQLite writer task is not needed.
//! - The contract checks in `tests/store.rs` call the trait through one fixture per backend;
//!   a PostgreSQL fixture (a URL from the environment) reuses them, apart from the few reads
//!   that only [`SqliteStore`] offers (boot history, meter values, security events).

mod error;
pub mod records;
mod sqlite;
mod store;
mod url;

use std::sync::Arc;

pub use error::StoreError;
pub use records::{
    ApiTokenRecord, AssignmentRecord, AuditFilter, AuditRecord, BootRecord, ChargerBehaviour,
    ChargerRecord, IdTokenRecord, LocalListRecord, MeterValuesRecord, NewTransaction,
    PrincipalRecord, RoleRecord, ScopeRecord, SecurityEventRecord, StoredAuditRecord,
    TransactionFilter, TransactionRecord,
};
pub use sqlite::{SqliteStore, WriteStats};
pub use store::Store;

use url::StoreUrl;

/// Opens the store a URL names, creating and migrating it as needed.
///
/// `sqlite://PATH` / `sqlite:PATH` (file created if missing, optional `?synchronous=normal`),
/// `sqlite::memory:` (one in-memory database for this store). Other schemes fail with
/// [`StoreError::UnsupportedBackend`] (`postgres://`) or [`StoreError::InvalidUrl`].
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    match StoreUrl::parse(url)? {
        StoreUrl::Sqlite(target) => Ok(Arc::new(SqliteStore::open_target(&target).await?)),
    }
}
