//! The subcommands of the `ledger` binary: each connects, does its work, and prints a table or
//! JSON Lines.

use std::io::Write;

use async_nats::jetstream;

use crate::{StoreConfig, connect, provision as provision_stores};

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

/// Arguments of `ledger provision`.
#[derive(Debug, Clone, clap::Args)]
pub struct ProvisionArgs {
    /// Replicas of each stream and bucket (3 on a three-node cluster).
    #[arg(long, default_value_t = 1)]
    pub replicas: usize,
}

/// `ledger provision`: creates the streams and buckets when absent and prints their state.
///
/// # Errors
///
/// When NATS cannot be reached or a stream exists with incompatible settings.
pub async fn provision(g: &Globals, args: ProvisionArgs) -> Result<(), CliError> {
    let client = connect(&g.nats, "ledger-provision").await?;
    let js = jetstream::new(client);
    let store = StoreConfig {
        replicas: args.replicas,
        ..StoreConfig::default()
    };
    let mut stores = provision_stores(&js, &store).await?;
    let mut rows = Vec::new();
    for s in [&mut stores.events, &mut stores.audit] {
        let info = s.info().await?;
        rows.push((
            info.config.name.clone(),
            "stream",
            info.state.messages,
            info.config.num_replicas,
        ));
    }
    for kv in [&stores.lct, &stores.config] {
        let status = kv.status().await?;
        rows.push((
            status.bucket().to_owned(),
            "kv",
            status.values(),
            status.info.config.num_replicas,
        ));
    }
    let mut out = std::io::stdout().lock();
    match g.format {
        Format::Json => {
            for (name, kind, messages, replicas) in rows {
                let line = serde_json::json!({
                    "name": name, "kind": kind, "messages": messages, "replicas": replicas,
                });
                writeln!(out, "{line}")?;
            }
        }
        Format::Table => {
            writeln!(
                out,
                "{:<16} {:<7} {:>10} {:>8}",
                "NAME", "KIND", "MESSAGES", "REPLICAS"
            )?;
            for (name, kind, messages, replicas) in rows {
                writeln!(out, "{name:<16} {kind:<7} {messages:>10} {replicas:>8}")?;
            }
        }
    }
    Ok(())
}
