//! The subcommands of the `ledger` binary: each connects, does its work, and prints a table or
//! JSON Lines.

use std::io::Write;

use async_nats::jetstream;

use std::time::Duration;

use ledger_schemas::Site;

use crate::{Config, StoreConfig, connect, provision as provision_stores};

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

/// Arguments of `ledger serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// A site to serve (repeat for several): its projector (and command service).
    #[arg(long = "site", required = true, value_parser = parse_site)]
    pub sites: Vec<Site>,
    /// Replicas of each stream and bucket when they are created (3 on a three-node cluster).
    #[arg(long, default_value_t = 1)]
    pub replicas: usize,
    /// Most events handled between two acknowledgements.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// Seconds a site's projector lease lives without renewal (a standby takes over after it).
    #[arg(long, default_value_t = 10.0)]
    pub lease_ttl: f64,
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

/// `ledger serve`: runs the named sites until SIGINT or SIGTERM, then stops cleanly.
///
/// # Errors
///
/// When NATS cannot be reached or the streams cannot be provisioned.
pub async fn serve(g: &Globals, args: ServeArgs) -> Result<(), CliError> {
    let client = connect(&g.nats, "ledger-serve").await?;
    let config = Config::default()
        .batch(args.batch)
        .lease_ttl(Duration::from_secs_f64(args.lease_ttl.max(0.1)))
        .store(StoreConfig {
            replicas: args.replicas,
            ..StoreConfig::default()
        });
    crate::serve(client, &args.sites, config, shutdown_signal()).await?;
    Ok(())
}
