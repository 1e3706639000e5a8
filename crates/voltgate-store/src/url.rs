//! Turns a store URL into the backend to open, so a typo is reported before anything touches
//! the disk or the network.
//!
//! Error messages quote at most the scheme, host, port, database and user, never the rest of
//! the URL: a network database's URL may carry a password.

use std::path::PathBuf;
use std::time::Duration;

use percent_encoding::percent_decode_str;

use crate::error::StoreError;

const SUPPORTED: &str =
    "sqlite://PATH, sqlite:PATH, sqlite::memory: or postgres://USER@HOST:PORT/DB";

/// PostgreSQL's own port, used when the URL names none.
const POSTGRES_PORT: u16 = 5432;

/// How long opening a PostgreSQL store waits for the server before giving up, unless the URL
/// sets `connect_timeout`.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections a PostgreSQL store keeps at most, unless the URL sets `max_connections`. Every
/// write is one short statement and PostgreSQL groups concurrent commits itself, so a few
/// connections per core of the database server carry the gateway's load.
const DEFAULT_MAX_CONNECTIONS: u32 = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StoreUrl {
    Sqlite(SqliteTarget),
    Postgres(PostgresTarget),
}

/// Where a PostgreSQL store lives and how to reach it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct PostgresTarget {
    pub(crate) user: String,
    pub(crate) password: Option<String>,
    /// A host name or address, or (from `?host=/dir`) the directory of a unix socket.
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) database: String,
    pub(crate) application_name: Option<String>,
    /// `sslmode=disable`. Otherwise `prefer`, which without TLS in this build also connects
    /// in plain text.
    pub(crate) ssl_disabled: bool,
    pub(crate) connect_timeout: Duration,
    pub(crate) max_connections: u32,
}

/// Never prints the password.
impl std::fmt::Debug for PostgresTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl PostgresTarget {
    /// `database `DB` on HOST:PORT as USER`: what error messages say, without the password.
    pub(crate) fn describe(&self) -> String {
        format!(
            "database `{}` on {}:{} as user `{}`",
            self.database, self.host, self.port, self.user
        )
    }
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
            "postgres" | "postgresql" => parse_postgres(rest).map(StoreUrl::Postgres),
            _ => Err(StoreError::InvalidUrl(format!(
                "unknown store URL scheme `{scheme}`; expected {SUPPORTED}"
            ))),
        }
    }
}

/// The URL with any password replaced by `***`, for showing a configured store (e.g. in
/// `voltgate config check`). Works on any text, also one that is not a valid store URL.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

fn invalid_postgres(reason: &str) -> StoreError {
    StoreError::InvalidUrl(format!(
        "{reason}; expected postgres://USER[:PASSWORD]@HOST[:PORT]/DB"
    ))
}

fn decode(part: &str, what: &str) -> Result<String, StoreError> {
    percent_decode_str(part)
        .decode_utf8()
        .map(|text| text.into_owned())
        .map_err(|_| invalid_postgres(&format!("the {what} is not valid percent-encoded UTF-8")))
}

/// `HOST`, `HOST:PORT`, `[V6]` or `[V6]:PORT`.
fn split_host_port(hostport: &str) -> Result<(&str, u16), StoreError> {
    let (host, port) = match hostport.strip_prefix('[') {
        Some(bracketed) => {
            let (host, after) = bracketed
                .split_once(']')
                .ok_or_else(|| invalid_postgres("an IPv6 host needs its closing `]`"))?;
            (host, after.strip_prefix(':'))
        }
        None => match hostport.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (hostport, None),
        },
    };
    let port = match port {
        None => POSTGRES_PORT,
        Some(port) => port
            .parse::<u16>()
            .ok()
            .filter(|port| *port != 0)
            .ok_or_else(|| {
                invalid_postgres(&format!(
                    "the port `{port}` is not a number from 1 to 65535"
                ))
            })?,
    };
    Ok((host, port))
}

fn parse_postgres(rest: &str) -> Result<PostgresTarget, StoreError> {
    let Some(rest) = rest.strip_prefix("//") else {
        return Err(invalid_postgres("a postgres URL starts with `postgres://`"));
    };
    let (rest, query) = match rest.split_once('?') {
        Some((rest, query)) => (rest, Some(query)),
        None => (rest, None),
    };
    let (authority, database) = rest.split_once('/').unwrap_or((rest, ""));
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((userinfo, hostport)) => (Some(userinfo), hostport),
        None => (None, authority),
    };
    let (user, password) = match userinfo {
        Some(userinfo) => match userinfo.split_once(':') {
            Some((user, password)) => (decode(user, "user")?, Some(decode(password, "password")?)),
            None => (decode(userinfo, "user")?, None),
        },
        None => (String::new(), None),
    };
    if user.is_empty() {
        return Err(invalid_postgres("the postgres URL names no user"));
    }
    let (host, port) = split_host_port(hostport)?;
    let mut host = decode(host, "host")?;
    let database = decode(database, "database name")?;
    if database.is_empty() || database.contains('/') {
        return Err(invalid_postgres("the postgres URL names no database"));
    }
    let mut application_name = None;
    let mut ssl_disabled = false;
    let mut connect_timeout = DEFAULT_CONNECT_TIMEOUT;
    let mut max_connections = DEFAULT_MAX_CONNECTIONS;
    for pair in query.into_iter().flat_map(|q| q.split('&')) {
        if pair.is_empty() {
            continue;
        }
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = decode(value, key)?;
        match key {
            "host" if value.starts_with('/') => host = value,
            "host" => {
                return Err(invalid_postgres(
                    "`host` must be the directory of a unix socket (an absolute path)",
                ))
            }
            "application_name" => application_name = Some(value),
            "connect_timeout" => {
                let seconds = value
                    .parse::<u64>()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| {
                        invalid_postgres(
                            "`connect_timeout` must be a whole number of seconds above 0",
                        )
                    })?;
                connect_timeout = Duration::from_secs(seconds);
            }
            "max_connections" => {
                max_connections =
                    value
                        .parse::<u32>()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| {
                            invalid_postgres("`max_connections` must be a whole number above 0")
                        })?;
            }
            "sslmode" if matches!(value.as_str(), "disable" | "prefer") => {
                ssl_disabled = value == "disable";
            }
            "sslmode" => {
                return Err(invalid_postgres(
                    "only `sslmode=disable` or `sslmode=prefer` is supported: this build \
                     speaks to PostgreSQL without TLS",
                ))
            }
            _ => {
                return Err(invalid_postgres(&format!(
                    "unknown postgres URL parameter `{key}`; understood: host, \
                     application_name, connect_timeout, max_connections, sslmode"
                )))
            }
        }
    }
    if host.is_empty() {
        return Err(invalid_postgres("the postgres URL names no host"));
    }
    Ok(PostgresTarget {
        user,
        password,
        host,
        port,
        database,
        application_name,
        ssl_disabled,
        connect_timeout,
        max_connections,
    })
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
        let StoreUrl::Sqlite(target) = parsed else {
            panic!("not a sqlite URL");
        };
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

    fn postgres(url: &str) -> PostgresTarget {
        match StoreUrl::parse(url) {
            Ok(StoreUrl::Postgres(target)) => target,
            other => panic!("{url}: {other:?}"),
        }
    }

    #[test]
    fn postgres_url_forms() {
        let plain = postgres("postgres://voltgate@db.internal:5433/estate");
        assert_eq!(
            (plain.user.as_str(), plain.password.as_deref()),
            ("voltgate", None)
        );
        assert_eq!((plain.host.as_str(), plain.port), ("db.internal", 5433));
        assert_eq!(plain.database, "estate");
        assert_eq!(plain.max_connections, DEFAULT_MAX_CONNECTIONS);
        assert_eq!(plain.connect_timeout, DEFAULT_CONNECT_TIMEOUT);

        let full = postgres(
            "postgresql://vg:p%40ss%3Aword@127.0.0.1/voltgate?application_name=node-1\
             &connect_timeout=3&max_connections=4&sslmode=disable",
        );
        assert_eq!(full.password.as_deref(), Some("p@ss:word"));
        assert_eq!(
            (full.host.as_str(), full.port),
            ("127.0.0.1", POSTGRES_PORT)
        );
        assert_eq!(full.application_name.as_deref(), Some("node-1"));
        assert_eq!(full.connect_timeout, Duration::from_secs(3));
        assert_eq!(full.max_connections, 4);

        let v6 = postgres("POSTGRES://vg@[::1]:6000/v");
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 6000));
        let socket = postgres("postgres://vg@localhost/v?host=%2Frun%2Fpostgresql");
        assert_eq!(socket.host, "/run/postgresql");
    }

    #[test]
    fn postgres_errors_never_show_the_password() {
        let target = postgres("postgres://vg:hunter2@db:5432/v");
        assert!(!format!("{target:?}").contains("hunter2"));
        assert_eq!(target.describe(), "database `v` on db:5432 as user `vg`");
        for url in [
            "postgres://vg:hunter2@db:99999/v",
            "postgres://vg:hunter2@db/",
            "postgres://:hunter2@db/v",
            "postgres://vg:hunter2@/v",
            "postgres:vg:hunter2@db/v",
            "postgres://vg:hunter2@db/v?sslmode=require",
            "postgres://vg:hunter2@db/v?pool=3",
            "postgres://vg:hunter2@db/v?max_connections=0",
            "postgres://vg:hunter2@db/v?connect_timeout=soon",
            "postgres://vg:hunter2@db/v?host=relative",
            "postgres://vg:hunter2@[::1/v",
        ] {
            let err = StoreUrl::parse(url).unwrap_err();
            assert!(matches!(err, StoreError::InvalidUrl(_)), "{url}: {err}");
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
    }

    #[test]
    fn redacting_hides_only_the_password() {
        let cases = [
            (
                "postgres://vg:hunter2@db:5432/v?sslmode=disable",
                "postgres://vg:***@db:5432/v?sslmode=disable",
            ),
            ("postgres://vg@db/v", "postgres://vg@db/v"),
            ("sqlite://voltgate.db", "sqlite://voltgate.db"),
            ("sqlite::memory:", "sqlite::memory:"),
            ("postgresql://a:b:c@h/d", "postgresql://a:***@h/d"),
        ];
        for (url, shown) in cases {
            assert_eq!(redact_url(url), shown, "{url}");
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
