//! The one error type every backend returns, so callers can react to a conflict or a missing
//! row without knowing which database sits behind the [`Store`](crate::Store).
//!
//! Messages name ids (charger, principal, token id) but never secrets such as token hashes,
//! password hashes or the credentials inside a database URL.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Preparing the database location failed (e.g. its directory could not be created).
    #[error("store i/o error at {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The directory of a database file does not exist; it is not created, so a mistyped path
    /// or a missing volume does not silently start an empty database.
    #[error("the database directory {} does not exist; create it (or fix the path) and start again", .0.display())]
    MissingDirectory(PathBuf),
    /// The database refused or failed a statement.
    #[error("store database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Bringing the schema up to date failed; the store was not opened.
    #[error("store schema migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// The write clashes with a row that already exists (e.g. a duplicate API token).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The row the call refers to does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The store URL could not be understood.
    #[error("invalid store URL: {0}")]
    InvalidUrl(String),
    /// The database server could not be reached, or refused the connection (wrong user,
    /// password or database name). `target` names database, host, port and user; never the
    /// password.
    #[error("cannot open the PostgreSQL store ({target}): {reason}")]
    Unreachable { target: String, reason: String },
    /// The store was closed (or its writer stopped); nothing more can be written.
    #[error("the store is closed")]
    Closed,
    /// A write the store grouped with others into one statement failed with them; the
    /// reason is the statement's error.
    #[error("store database error (in a batch of writes): {0}")]
    BatchFailed(String),
    /// A stored value could not be turned back into a record (e.g. a malformed JSON column).
    #[error("stored data is malformed: {0}")]
    Corrupt(String),
}

/// Turns constraint failures of a write that names a principal into the caller's terms.
pub(crate) fn refused_write(
    err: sqlx::Error,
    principal: &str,
    duplicate: impl FnOnce() -> String,
) -> StoreError {
    if let sqlx::Error::Database(db) = &err {
        if db.is_foreign_key_violation() {
            return StoreError::NotFound(format!("principal `{principal}` does not exist"));
        }
        if db.is_unique_violation() {
            return StoreError::Conflict(duplicate());
        }
    }
    StoreError::Database(err)
}
