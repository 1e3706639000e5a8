//! Starting and stopping a real gateway process with its own temporary working directory.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

/// The admin token every test gateway is started with.
pub const ADMIN_TOKEN: &str = "vg_test_admin_0123456789abcdef0123456789abcdef";

/// Builds the workspace binaries once per test run and returns the path of `name`.
pub fn binary_path(name: &str) -> Result<PathBuf> {
    static BUILT: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    let target = BUILT
        .get_or_init(|| {
            let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
            let mut build = Command::new(env!("CARGO"));
            build
                .args(["build", "-p", "voltgate", "-p", "voltgate-sim", "--bins"])
                .current_dir(manifest);
            // `cargo test` gives this process the variables of the package under test
            // (CARGO_PKG_NAME, CARGO_MANIFEST_DIR, …). Build scripts that watch them (ring's
            // does) would see them changed and rebuild, and the outer `cargo test` would
            // rebuild them back: minutes per run.
            for (name, _) in std::env::vars_os() {
                if is_package_variable(&name.to_string_lossy()) {
                    build.env_remove(&name);
                }
            }
            let status = build
                .status()
                .map_err(|e| format!("cannot run cargo build: {e}"))?;
            if !status.success() {
                return Err("cargo build of the binaries failed".to_string());
            }
            let target_dir = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| manifest.join("..").join("target"));
            Ok(target_dir.join("debug"))
        })
        .clone()
        .map_err(|e| anyhow!(e))?;
    let path = target.join(name);
    if !path.exists() {
        bail!("{} was not built", path.display());
    }
    Ok(path)
}

/// Whether cargo sets `name` for the package whose test runs (not for the whole invocation).
fn is_package_variable(name: &str) -> bool {
    name == "OUT_DIR"
        || name.starts_with("CARGO_PKG_")
        || name.starts_with("CARGO_BIN_")
        || name.starts_with("CARGO_CFG_")
        || [
            "CARGO_MANIFEST_DIR",
            "CARGO_MANIFEST_PATH",
            "CARGO_MANIFEST_LINKS",
            "CARGO_CRATE_NAME",
            "CARGO_PRIMARY_PACKAGE",
            "CARGO_TARGET_TMPDIR",
            "CARGO_RUSTC_CURRENT_DIR",
        ]
        .contains(&name)
}

/// How to start a gateway for one test.
#[derive(Debug, Clone)]
pub struct GatewayOptions {
    pub preset: String,
    pub db: Option<String>,
    pub extra_args: Vec<String>,
    pub envs: Vec<(String, String)>,
}

impl GatewayOptions {
    pub fn preset(preset: &str) -> Self {
        GatewayOptions {
            preset: preset.to_string(),
            db: None,
            extra_args: Vec::new(),
            envs: Vec::new(),
        }
    }

    pub fn arg(mut self, arg: &str) -> Self {
        self.extra_args.push(arg.to_string());
        self
    }

    /// Scripted chargers see only the calls their test expects, so the gateway's own
    /// local-list sync (on by default) is switched off unless the test passes the flag itself.
    fn local_list_default(&self) -> &'static [&'static str] {
        let chosen = self
            .extra_args
            .iter()
            .any(|arg| arg.starts_with("--local-auth-lists"))
            || self
                .envs
                .iter()
                .any(|(name, _)| name == "VOLTGATE_LOCAL_AUTH_LISTS");
        if chosen {
            &[]
        } else {
            &["--local-auth-lists", "false"]
        }
    }

    pub fn db(mut self, url: &str) -> Self {
        self.db = Some(url.to_string());
        self
    }
}

/// A running gateway process. Killed when dropped.
pub struct Gateway {
    child: Child,
    pub ocpp_url: String,
    pub api_url: String,
    pub admin_token: String,
    pub workdir: tempfile::TempDir,
    output: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// stderr alone (the log), line by line.
    errors: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Gateway {
    pub fn start(options: GatewayOptions) -> Result<Gateway> {
        let workdir = tempfile::tempdir()?;
        Self::start_in(options, workdir)
    }

    /// Starts a gateway in an existing working directory (to restart on the same database).
    pub fn start_in(options: GatewayOptions, workdir: tempfile::TempDir) -> Result<Gateway> {
        let binary = binary_path("voltgate")?;
        let db = options.db.clone().unwrap_or_else(|| {
            format!("sqlite://{}", workdir.path().join("voltgate.db").display())
        });
        let mut command = Command::new(binary);
        command
            .current_dir(workdir.path())
            .args([
                "--ocpp-listen",
                "127.0.0.1:0",
                "--api-listen",
                "127.0.0.1:0",
            ])
            .args(["--db", &db, "--preset", &options.preset])
            .args(["--admin-token", ADMIN_TOKEN])
            .args(&options.extra_args)
            .args(options.local_list_default())
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in &options.envs {
            command.env(key, value);
        }
        let mut child = command.spawn().context("starting voltgate")?;
        let output = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let errors = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (lines_tx, lines_rx) = mpsc::channel::<String>();
        if let Some(stdout) = child.stdout.take() {
            spawn_reader(stdout, output.clone(), Some(lines_tx));
        }
        let mut stderr_reader = None;
        if let Some(stderr) = child.stderr.take() {
            let (errors_tx, errors_rx) = mpsc::channel::<String>();
            stderr_reader = Some(spawn_reader(stderr, output.clone(), Some(errors_tx)));
            let errors = errors.clone();
            std::thread::spawn(move || {
                for line in errors_rx {
                    if let Ok(mut all) = errors.lock() {
                        all.push(line);
                    }
                }
            });
        }
        let mut ocpp_url = None;
        let mut api_url = None;
        while ocpp_url.is_none() || api_url.is_none() {
            let line = match lines_rx.recv_timeout(Duration::from_secs(30)) {
                Ok(line) => line,
                Err(_) => {
                    // Stdout closes as the process exits, possibly before its last words on
                    // stderr (the reason it stopped) are read: take those in first.
                    let _ = child.kill();
                    let _ = child.wait();
                    if let Some(reader) = stderr_reader.take() {
                        let _ = reader.join();
                    }
                    let seen = output.lock().map(|o| o.join("\n")).unwrap_or_default();
                    bail!("voltgate did not report its listeners; output:\n{seen}");
                }
            };
            if let Some(url) = banner_value(&line, "voltgate: ocpp listening on") {
                ocpp_url = Some(url);
            } else if let Some(url) = banner_value(&line, "voltgate: api listening on") {
                api_url = Some(url);
            }
        }
        Ok(Gateway {
            child,
            ocpp_url: ocpp_url.unwrap_or_default(),
            api_url: api_url.unwrap_or_default(),
            admin_token: ADMIN_TOKEN.to_string(),
            workdir,
            output,
            errors,
        })
    }

    /// What the process wrote to stderr so far, line by line.
    pub fn stderr_lines(&self) -> Vec<String> {
        self.errors.lock().map(|e| e.clone()).unwrap_or_default()
    }

    /// Sends a signal by name (`TERM`, `INT`, ...) without waiting for anything.
    pub fn signal(&self, name: &str) -> Result<()> {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()?;
        if !status.success() {
            bail!("kill -{name} failed");
        }
        Ok(())
    }

    /// Waits up to `limit` for the process to exit and returns how it ended.
    pub fn wait_exit(&mut self, limit: Duration) -> Result<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if std::time::Instant::now() > deadline {
                bail!("voltgate did not exit within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Everything the process printed so far (stdout and stderr interleaved by line).
    pub fn output(&self) -> String {
        self.output.lock().map(|o| o.join("\n")).unwrap_or_default()
    }

    /// The `wss://` URL prefix of the charger TLS listener, when the gateway runs one.
    pub fn ocpp_tls_url(&self) -> Option<String> {
        self.output()
            .lines()
            .find_map(|line| banner_value(line, "voltgate: ocpp-tls listening on"))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process at once (SIGKILL) and hands back the working directory for a restart.
    pub fn kill(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let dir = tempfile::tempdir().expect("temp dir");
        std::mem::replace(&mut self.workdir, dir)
    }

    /// Sends SIGTERM and waits up to `limit` for the process to exit; returns its exit code.
    pub fn terminate(mut self, limit: Duration) -> Result<(Option<i32>, tempfile::TempDir)> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        if !status.success() {
            bail!("kill -TERM failed");
        }
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait()? {
                let dir = tempfile::tempdir()?;
                return Ok((status.code(), std::mem::replace(&mut self.workdir, dir)));
            }
            if std::time::Instant::now() > deadline {
                bail!("voltgate did not exit within {limit:?} after SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn api(&self) -> crate::Api {
        crate::Api::new(&self.api_url, &self.admin_token)
    }

    pub fn api_as(&self, token: &str) -> crate::Api {
        crate::Api::new(&self.api_url, token)
    }

    /// The WebSocket URL a charger with this id connects to.
    pub fn charger_url(&self, id: &str) -> String {
        format!("{}/{}", self.ocpp_url.trim_end_matches('/'), id)
    }
}

impl Drop for Gateway {
    /// Stops the process, and fails the test when a gateway task panicked: tokio catches a
    /// task's panic and the process lives on, so only its output tells.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            return;
        }
        let output = self.output();
        if let Some(line) = output.lines().find(|line| line.contains("panicked at")) {
            panic!("a gateway task panicked: {line}\nfull output:\n{output}");
        }
    }
}

fn spawn_reader(
    stream: impl std::io::Read + Send + 'static,
    output: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    lines: Option<mpsc::Sender<String>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if let Some(tx) = &lines {
                let _ = tx.send(line.clone());
            }
            if let Ok(mut out) = output.lock() {
                out.push(line);
            }
        }
    })
}

/// The value of one line of the start-up banner on stdout: `MESSAGE VALUE` (or `MESSAGE: VALUE`)
/// as text, or a JSON object whose `message` is MESSAGE under `--log-format json`.
pub fn banner_value(line: &str, message: &str) -> Option<String> {
    if line.starts_with('{') {
        let object: serde_json::Value = serde_json::from_str(line).ok()?;
        if object["message"] != message {
            return None;
        }
        return ["url", "admin_token"]
            .iter()
            .find_map(|key| object[key].as_str().map(str::to_owned));
    }
    let rest = line.strip_prefix(message)?;
    let value = rest.strip_prefix(':').unwrap_or(rest).trim();
    (!value.is_empty()).then(|| value.to_owned())
}
