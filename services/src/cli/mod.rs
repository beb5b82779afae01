//! The subcommands of the `ledger` binary: each connects, does its work, and prints a table or
//! JSON Lines (`--format json`). A file per topic; this one holds what they share.

mod bench;
mod calls;
mod config;
mod delete;
mod history;
mod ops;
mod serve;

use ledger_schemas::Site;

pub use bench::{CatchUpArgs, DeleteBenchArgs, bench_catch_up, bench_delete};
pub use calls::{CallInProgress, CallsArgs, calls};
pub use config::{ConfigCommand, config};
pub use delete::{Answer, DeleteArgs, delete, reply_json};
pub use history::{AuditArgs, ReplayArgs, audit, replay};
pub use ops::{ProvisionArgs, StatusArgs, provision, status};
pub use serve::{Role, ServeArgs, serve};

/// A boxed error for the binary's top level.
pub type CliError = Box<dyn std::error::Error + Send + Sync>;

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for people.
    Table,
    /// One JSON object a line, UUIDs as text, for scripts.
    Json,
}

/// Options every subcommand shares.
#[derive(Debug, Clone)]
pub struct Globals {
    /// NATS URL(s).
    pub nats: String,
    /// Output format.
    pub format: Format,
}

/// Logs go to standard error through `tracing`; `RUST_LOG` filters them (default `info`). With
/// `--format json` the log lines are JSON too.
pub fn init_logging(format: Format) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,async_nats=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        Format::Json => builder.json().try_init(),
        Format::Table => builder.try_init(),
    };
}

/// Parses a site name for clap.
pub fn parse_site(s: &str) -> Result<Site, String> {
    Site::new(s).map_err(|e| e.to_string())
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => tracing::info!("SIGINT received"),
        _ = term => tracing::info!("SIGTERM received"),
    }
}

/// Parses `key=value` for clap.
pub(crate) fn parse_pair(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{s:?} is not key=value"))
}
