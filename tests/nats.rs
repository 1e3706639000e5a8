//! Throwaway NATS servers (with JetStream) for the cluster tests: Debian's `nats-server` on a
//! free loopback port, its JetStream files in a directory of its own. A test that stops and
//! restarts NATS gets a server of its own ([`NatsServer::start`]); the rest share one per
//! test process ([`NatsServer::shared`]) and keep apart by naming their nodes and chargers
//! uniquely. A watchdog stops every server when the test process is gone, however it ended.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// How long a server may take to accept connections.
const START_LIMIT: Duration = Duration::from_secs(10);

/// A running NATS server; stopped when dropped.
#[derive(Debug)]
pub struct NatsServer {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Mutex<Option<Child>>,
}

impl NatsServer {
    /// The server this test process shares, started on first use.
    pub fn shared() -> &'static NatsServer {
        static SERVER: OnceLock<NatsServer> = OnceLock::new();
        SERVER
            .get_or_init(|| NatsServer::start().unwrap_or_else(|err| panic!("test NATS: {err:#}")))
    }

    /// A server of the caller's own, on a free port.
    pub fn start() -> Result<NatsServer> {
        let binary = nats_binary()?;
        let mut last_error = None;
        // A port taken between the probe and the start makes the start fail: try again.
        for _ in 0..5 {
            let server = NatsServer {
                port: free_port()?,
                dir: tempfile::tempdir().context("no directory for NATS")?,
                child: Mutex::new(None),
            };
            match server.run(&binary) {
                Ok(()) => return Ok(server),
                Err(err) => last_error = Some(err),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("no start attempted")))
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Stops the server at once (SIGKILL); [`NatsServer::restart`] brings it back on the same
    /// port with the same JetStream files.
    pub fn stop(&self) {
        if let Some(mut child) = self.child.lock().ok().and_then(|mut c| c.take()) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn restart(&self) -> Result<()> {
        self.stop();
        let binary = nats_binary()?;
        let deadline = Instant::now() + START_LIMIT;
        loop {
            match self.run(&binary) {
                Ok(()) => return Ok(()),
                // The port may linger a moment after the kill.
                Err(err) if Instant::now() > deadline => return Err(err),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    fn run(&self, binary: &PathBuf) -> Result<()> {
        let store = self.dir.path().join("jetstream");
        let log = self.dir.path().join("nats.log");
        let mut child = Command::new(binary)
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(&store)
            .arg("-l")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start nats-server")?;
        watch_parent(child.id())?;
        let deadline = Instant::now() + START_LIMIT;
        loop {
            if let Some(status) = child.try_wait()? {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                bail!("nats-server exited ({status}): {}", text.trim());
            }
            if ready(&log) {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                bail!("nats-server did not get ready within {START_LIMIT:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Ok(mut slot) = self.child.lock() {
            *slot = Some(child);
        }
        Ok(())
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The server logs this line once it accepts clients (JetStream included).
fn ready(log: &std::path::Path) -> bool {
    std::fs::read_to_string(log).is_ok_and(|text| text.contains("Server is ready"))
}

fn nats_binary() -> Result<PathBuf> {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/bin"] {
        let path = PathBuf::from(dir).join("nats-server");
        if path.is_file() {
            return Ok(path);
        }
    }
    bail!("no nats-server binary: install Debian's `nats-server` package (tests/run.sh does this)")
}

fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("no free loopback port")?;
    Ok(listener.local_addr()?.port())
}

/// A detached shell that kills the server when this process is gone.
fn watch_parent(server: u32) -> Result<()> {
    let script = format!(
        "while kill -0 {pid} 2>/dev/null && kill -0 {server} 2>/dev/null; do sleep 0.5; done; \
         kill -9 {server} 2>/dev/null",
        pid = std::process::id(),
    );
    Command::new("setsid")
        .args(["bash", "-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start the NATS watchdog")?;
    Ok(())
}
