//! The subcommands of the `ledger` binary: each connects, does its work, and prints a table or
//! JSON Lines (`--format json`). A file per topic; this one holds what they share.

mod audit;
mod bench;
mod calls;
mod config;
mod delete;
mod demo;
mod lct;
mod ops;
mod replay;
mod serve;
mod stats;
mod tail;
mod up;
mod verify;

use ledger_schemas::Site;

pub(crate) use audit::{AuditArgs, audit};
pub(crate) use bench::{
    CatchUpArgs, DeleteBenchArgs, PublishBenchArgs, ReplayBenchArgs, bench_catch_up, bench_delete,
    bench_publish, bench_replay,
};
pub(crate) use calls::{CallsArgs, calls};
pub(crate) use config::{ConfigCommand, config};
pub(crate) use delete::{Answer, DeleteArgs, delete};
pub(crate) use demo::{DemoArgs, demo};
pub(crate) use lct::{LctArgs, lct};
pub(crate) use ops::{ProvisionArgs, StatusArgs, provision, status};
pub(crate) use replay::{ReplayArgs, replay};
pub(crate) use serve::{ServeArgs, serve};
pub(crate) use stats::{StatsArgs, stats};
pub(crate) use tail::{SubscriptionsArgs, TailArgs, subscriptions, tail};
pub(crate) use up::{UpArgs, up};
pub(crate) use verify::{VerifyArgs, verify};

use crate::CliError;
use crate::connection::{ConnArgs, Endpoint};
use crate::output::Format;

/// Options every subcommand shares.
#[derive(Debug, Clone)]
pub(crate) struct Globals {
    /// Where the server comes from.
    pub(crate) conn: ConnArgs,
    /// Output format.
    pub(crate) format: Format,
}

impl Globals {
    /// Connects as client `name` (see [`ConnArgs::connect`]).
    pub(crate) async fn connect(&self, name: &str) -> Result<Endpoint, CliError> {
        self.conn.connect(name).await
    }
}

/// Parses a site name for clap.
pub(crate) fn parse_site(s: &str) -> Result<Site, String> {
    Site::new(s).map_err(|e| e.to_string())
}

/// Resolves on SIGINT or SIGTERM.
pub(crate) async fn shutdown_signal() {
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
