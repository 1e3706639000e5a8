//! Turns a store URL into the backend to open, so a typo or an unbuilt backend is reported
//! before anything touches the disk.
//!
//! Error messages quote at most the scheme and never the rest of the URL, which for a network
//! database would carry credentials.

use std::path::PathBuf;

use crate::error::StoreError;

const SUPPORTED: &str = "sqlite://PATH, sqlite:PATH or sqlite::memory:";

/// Backends a URL may name that this build does not contain.
const PLANNED_SCHEMES: &[&str] = &["postgres", "postgresql"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StoreUrl {
    Sqlite(SqliteTarget),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SqliteTarget {
    pub(crate) location: SqliteLocation,
    pub(crate) sync: SyncMode,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SqliteLocation {
    /// One in-memory database shared by every connection of the store.
    Memory,
    File(PathBuf),
}

/// How hard a commit waits for the disk (SQLite `PRAGMA synchronous` in WAL mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SyncMode {
    /// Every commit is flushed to the disk before the call returns: survives power loss.
    Full,
    /// Commits survive a process crash; the last ones may be lost on power loss or an OS crash.
    Normal,
}

impl StoreUrl {
    pub(crate) fn parse(url: &str) -> Result<StoreUrl, StoreError> {
        let Some((scheme, rest)) = url.split_once(':') else {
            return Err(StoreError::InvalidUrl(format!(
                "a store URL needs a scheme; expected {SUPPORTED}"
            )));
        };
        let scheme = scheme.to_ascii_lowercase();
        match scheme.as_str() {
            "sqlite" => parse_sqlite(rest).map(StoreUrl::Sqlite),
            planned if PLANNED_SCHEMES.contains(&planned) => {
                Err(StoreError::UnsupportedBackend { scheme })
            }
            _ => Err(StoreError::InvalidUrl(format!(
                "unknown store URL scheme `{scheme}`; expected {SUPPORTED}"
            ))),
        }
    }
}

fn parse_sqlite(rest: &str) -> Result<SqliteTarget, StoreError> {
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    };
    let mut sync = SyncMode::Full;
    for pair in query.into_iter().flat_map(|q| q.split('&')) {
        if pair.is_empty() {
            continue;
        }
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match (key, value.to_ascii_lowercase().as_str()) {
            ("synchronous", "full") => sync = SyncMode::Full,
            ("synchronous", "normal") => sync = SyncMode::Normal,
            ("synchronous", _) => {
                return Err(StoreError::InvalidUrl(
                    "`synchronous` must be `full` or `normal`".to_owned(),
                ))
            }
            _ => {
                return Err(StoreError::InvalidUrl(format!(
                    "unknown sqlite URL parameter `{key}`; only `synchronous` is understood"
                )))
            }
        }
    }
    let location = match path {
        "" => {
            return Err(StoreError::InvalidUrl(format!(
                "the sqlite URL names no file; expected {SUPPORTED}"
            )))
        }
        ":memory:" => SqliteLocation::Memory,
        file => SqliteLocation::File(PathBuf::from(file)),
    };
    Ok(SqliteTarget { location, sync })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str) -> StoreUrl {
        StoreUrl::Sqlite(SqliteTarget {
            location: SqliteLocation::File(PathBuf::from(path)),
            sync: SyncMode::Full,
        })
    }

    #[test]
    fn sqlite_url_forms() {
        let memory = StoreUrl::Sqlite(SqliteTarget {
            location: SqliteLocation::Memory,
            sync: SyncMode::Full,
        });
        let cases = [
            ("sqlite::memory:", memory.clone()),
            ("sqlite://:memory:", memory),
            (
                "sqlite:///var/lib/voltgate/db.sqlite",
                file("/var/lib/voltgate/db.sqlite"),
            ),
            ("sqlite://data/voltgate.db", file("data/voltgate.db")),
            ("sqlite:voltgate.db", file("voltgate.db")),
            ("SQLite:voltgate.db", file("voltgate.db")),
            ("sqlite:/abs/voltgate.db", file("/abs/voltgate.db")),
        ];
        for (url, expected) in cases {
            assert_eq!(StoreUrl::parse(url).unwrap(), expected, "{url}");
        }
    }

    #[test]
    fn synchronous_parameter() {
        let parsed = StoreUrl::parse("sqlite://v.db?synchronous=normal").unwrap();
        let StoreUrl::Sqlite(target) = parsed;
        assert_eq!(target.sync, SyncMode::Normal);
        assert_eq!(target.location, SqliteLocation::File(PathBuf::from("v.db")));
        assert!(matches!(
            StoreUrl::parse("sqlite://v.db?synchronous=off"),
            Err(StoreError::InvalidUrl(_))
        ));
        assert!(matches!(
            StoreUrl::parse("sqlite://v.db?mode=ro"),
            Err(StoreError::InvalidUrl(_))
        ));
    }

    #[test]
    fn postgres_is_reported_as_not_built_in_without_leaking_credentials() {
        for url in [
            "postgres://admin:hunter2@db/voltgate",
            "postgresql://admin:hunter2@db/v",
        ] {
            let err = StoreUrl::parse(url).unwrap_err();
            assert!(
                matches!(err, StoreError::UnsupportedBackend { .. }),
                "{url}"
            );
            let message = err.to_string();
            assert!(
                message.contains("not built into this binary yet"),
                "{message}"
            );
            assert!(!message.contains("hunter2"), "{message}");
        }
    }

    #[test]
    fn malformed_urls_are_invalid() {
        for url in [
            "",
            "voltgate.db",
            "sqlite:",
            "sqlite://",
            "redis://x:secret@host",
            "sqlite:?",
        ] {
            let err = StoreUrl::parse(url).unwrap_err();
            assert!(matches!(err, StoreError::InvalidUrl(_)), "{url}: {err}");
            assert!(!err.to_string().contains("secret"), "{err}");
        }
    }
}
