//! A throwaway PostgreSQL server for tests that need a real one: the store's contract tests and
//! the end-to-end tests of the gateway on PostgreSQL.
//!
//! One server per test process, started on first use from Debian's `postgresql` binaries in a
//! directory under the cargo target directory, on a free loopback port, with fsync off (a test
//! database need not survive power loss). Every test takes a database of its own
//! ([`PostgresServer::create_database`]), so tests stay independent and can run in parallel.
//! `initdb` refuses to run as root, so as root the server runs as the `postgres` user. A
//! watchdog stops the server and removes its directory when the test process is gone, however
//! it ended. A test that stops the database under a gateway takes a server of its own
//! ([`PostgresServer::own`]), so no other test sees it go away.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use anyhow::{bail, Context, Result};

/// Where Debian installs the server binaries (one directory per major version).
const DEBIAN_BINARIES: &str = "/usr/lib/postgresql";

/// The superuser of the throwaway cluster (local connections are trusted).
const SUPERUSER: &str = "postgres";

/// A running throwaway PostgreSQL server.
#[derive(Debug)]
pub struct PostgresServer {
    pub port: u16,
    bin: PathBuf,
    databases: AtomicUsize,
    as_root: bool,
    dir: PathBuf,
    data: PathBuf,
    owned: bool,
}

impl PostgresServer {
    /// The server of this test process, started on first use. Panics with what to install
    /// when the PostgreSQL binaries are missing, and with the server's own words when it does
    /// not start.
    pub fn shared() -> &'static PostgresServer {
        static SERVER: OnceLock<PostgresServer> = OnceLock::new();
        SERVER.get_or_init(|| {
            PostgresServer::start(false).unwrap_or_else(|err| panic!("test PostgreSQL: {err:#}"))
        })
    }

    /// A server for this test alone, which it may stop and restart; stopped and removed when
    /// dropped. Its commits are durable (`synchronous_commit=on`), as on a real server: an
    /// immediate stop must not lose what the gateway was told was stored.
    pub fn own() -> Result<PostgresServer> {
        PostgresServer::start(true)
    }

    /// Stops the server at once (`pg_ctl -m immediate`: open connections are cut, as when the
    /// database host goes away); [`PostgresServer::restart`] brings it back on the same port
    /// with the same data.
    pub fn stop(&self) -> Result<()> {
        let mut stop = as_server_user(self.as_root, &self.bin.join("pg_ctl"));
        stop.args([
            "-D",
            &self.data.to_string_lossy(),
            "-m",
            "immediate",
            "-w",
            "stop",
        ]);
        run_logged(stop, &self.dir.join("pg_ctl-stop.log"), "pg_ctl stop")
    }

    pub fn restart(&self) -> Result<()> {
        run_logged(
            self.start_command(self.port),
            &self.dir.join("pg_ctl.log"),
            "pg_ctl start",
        )
    }

    /// Creates an empty database and returns its URL
    /// (`postgres://postgres@127.0.0.1:PORT/NAME`).
    pub fn create_database(&self) -> Result<String> {
        let n = self.databases.fetch_add(1, Ordering::Relaxed);
        let name = format!("test_{}_{n}", std::process::id());
        self.sql("postgres", &format!("CREATE DATABASE {name}"))?;
        Ok(self.url(&name))
    }

    /// The URL of a database of this server.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{database}", self.port)
    }

    /// Runs SQL with `psql` as the superuser and returns what it printed (unaligned, tuples
    /// only).
    pub fn sql(&self, database: &str, sql: &str) -> Result<String> {
        let output = Command::new(self.bin.join("psql"))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", SUPERUSER, "-d", database, "-c", sql])
            .stdin(Stdio::null())
            .output()
            .context("cannot run psql")?;
        if !output.status.success() {
            bail!(
                "psql `{sql}` failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    fn start(owned: bool) -> Result<PostgresServer> {
        let bin = server_binaries(Path::new(DEBIAN_BINARIES))?;
        let as_root = is_root()?;
        let dir = server_dir(as_root)?;
        let data = dir.join("data");
        let log = dir.join("initdb.log");
        let mut initdb = as_server_user(as_root, &bin.join("initdb"));
        initdb
            .args(["-D", &data.to_string_lossy(), "-U", SUPERUSER])
            .args(["--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"]);
        run_logged(initdb, &log, "initdb")?;

        // A port taken between the probe and the start makes the start fail: try again.
        let mut last_error = None;
        let mut server = PostgresServer {
            port: 0,
            bin,
            databases: AtomicUsize::new(0),
            as_root,
            dir,
            data,
            owned,
        };
        for _ in 0..5 {
            server.port = free_port()?;
            let start = server.start_command(server.port);
            match run_logged(start, &server.dir.join("pg_ctl.log"), "pg_ctl start") {
                Ok(()) => {
                    watch_parent(as_root, &server.bin, &server.dir, &server.data)?;
                    return Ok(server);
                }
                Err(err) => last_error = Some(err),
            }
        }
        let dir = server.dir.clone();
        let server_log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
        let _ = std::fs::remove_dir_all(&dir);
        Err(last_error
            .unwrap_or_else(|| anyhow::anyhow!("no start attempted"))
            .context(server_log))
    }

    fn start_command(&self, port: u16) -> Command {
        let mut start = as_server_user(self.as_root, &self.bin.join("pg_ctl"));
        start
            .args(["-D", &self.data.to_string_lossy(), "-l"])
            .arg(self.dir.join("server.log"))
            .args(["-w", "-t", "30", "start", "-o"])
            .arg(format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off \
                 -c synchronous_commit={} -c full_page_writes=off -c max_connections=200",
                self.dir.display(),
                // The shared server trades durability across a crash for speed; it is never
                // stopped under a test.
                if self.owned { "on" } else { "off" },
            ));
        start
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        if self.owned {
            let _ = self.stop();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The newest `ROOT/*/bin` (Debian: `/usr/lib/postgresql/VERSION/bin`) holding `initdb`,
/// `pg_ctl` and `psql`.
fn server_binaries(root: &Path) -> Result<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            ["initdb", "pg_ctl", "psql"]
                .iter()
                .all(|tool| bin.join(tool).is_file())
                .then_some((version, bin))
        })
        .collect();
    found.sort();
    match found.pop() {
        Some((_, bin)) => Ok(bin),
        None => bail!(
            "no PostgreSQL server binaries in {}/*/bin: install Debian's `postgresql` package \
             (apt-get install postgresql; tests/run.sh does this)",
            root.display()
        ),
    }
}

fn is_root() -> Result<bool> {
    let output = Command::new("id")
        .arg("-u")
        .output()
        .context("cannot run id -u")?;
    Ok(String::from_utf8_lossy(&output.stdout).trim() == "0")
}

/// A fresh directory for the cluster that the server's user can write: under the cargo target
/// directory (found from the test binary's path, `target/<profile>/deps/<test>`), or under the
/// system's temporary directory when the target directory is closed to that user.
fn server_dir(as_root: bool) -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot locate the test binary")?;
    let target_tmp = exe
        .ancestors()
        .find(|dir| dir.join("CACHEDIR.TAG").is_file())
        .map(|target| target.join("tmp"));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let name = format!("postgres-{}-{nanos}", std::process::id());
    for base in target_tmp.into_iter().chain([std::env::temp_dir()]) {
        let dir = base.join(&name);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        if !as_root {
            return Ok(dir);
        }
        let owned = Command::new("chown")
            .args([&format!("{SUPERUSER}:"), &*dir.to_string_lossy()])
            .status()
            .context("cannot run chown")?;
        let writable = Command::new("runuser")
            .args(["-u", SUPERUSER, "--", "test", "-w"])
            .arg(&dir)
            .status()
            .context("cannot run runuser")?;
        if owned.success() && writable.success() {
            return Ok(dir);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
    bail!("no directory the {SUPERUSER} user can write for the test cluster")
}

fn as_server_user(as_root: bool, program: &Path) -> Command {
    if as_root {
        let mut command = Command::new("runuser");
        command.args(["-u", SUPERUSER, "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn run_logged(mut command: Command, log: &Path, what: &str) -> Result<()> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {what}"))?;
    let mut text = output.stdout;
    text.extend_from_slice(&output.stderr);
    let _ = std::fs::write(log, &text);
    if !output.status.success() {
        bail!(
            "{what} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&text).trim()
        );
    }
    Ok(())
}

fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("no free loopback port")?;
    Ok(listener.local_addr()?.port())
}

/// Starts a detached shell that waits for this process to end, then stops the server at once
/// and removes its directory.
fn watch_parent(as_root: bool, bin: &Path, dir: &Path, data: &Path) -> Result<()> {
    let stop = format!(
        "{}{} -D '{}' -m immediate stop",
        if as_root {
            format!("runuser -u {SUPERUSER} -- ")
        } else {
            String::new()
        },
        bin.join("pg_ctl").display(),
        data.display()
    );
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; {stop} >/dev/null 2>&1; \
         rm -rf '{dir}'",
        pid = std::process::id(),
        dir = dir.display()
    );
    Command::new("setsid")
        .args(["bash", "-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start the PostgreSQL watchdog")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_binaries_say_what_to_install() {
        let empty = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(empty.path().join("15").join("bin")).unwrap();
        let err = server_binaries(empty.path()).unwrap_err().to_string();
        assert!(
            err.contains("install Debian's `postgresql` package"),
            "{err}"
        );
    }

    #[test]
    fn the_newest_complete_version_is_chosen() {
        let root = tempfile::tempdir().unwrap();
        for (version, tools) in [
            ("13", &["initdb", "pg_ctl", "psql"][..]),
            ("15", &["initdb", "pg_ctl", "psql"][..]),
            ("16", &["initdb"][..]),
        ] {
            let bin = root.path().join(version).join("bin");
            std::fs::create_dir_all(&bin).unwrap();
            for tool in tools {
                std::fs::write(bin.join(tool), "").unwrap();
            }
        }
        assert_eq!(
            server_binaries(root.path()).unwrap(),
            root.path().join("15").join("bin")
        );
    }
}
