//! `ledger provision` and `ledger status`.

use std::io::Write;

use super::Globals;
use crate::CliError;
use crate::output::Format;
use ledger_schemas::Site;

use super::parse_site;
use ledger_services::{StoreConfig, provision as provision_stores};

/// Arguments of `ledger provision`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ProvisionArgs {
    /// Replicas of each stream and bucket (3 on a three-node cluster).
    #[arg(long, default_value_t = 1)]
    pub(crate) replicas: usize,
}

/// `ledger provision`: creates the streams and buckets when absent and prints their state.
///
/// # Errors
///
/// When NATS cannot be reached or a stream exists with incompatible settings.
pub(crate) async fn provision(g: &Globals, args: ProvisionArgs) -> Result<(), CliError> {
    let ep = g.connect("ledger-provision").await?;
    let js = &ep.nats.js;
    let store = StoreConfig {
        replicas: args.replicas,
        ..StoreConfig::default()
    };
    let mut stores = provision_stores(js, &store).await?;
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
        _ => {
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

/// Arguments of `ledger status`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct StatusArgs {
    /// The site whose projector to ask.
    #[arg(long, value_parser = parse_site)]
    pub(crate) site: Site,
}

/// `ledger status`: asks a site's projector for its role and counters.
///
/// # Errors
///
/// When NATS cannot be reached or no projector of the site answers.
pub(crate) async fn status(g: &Globals, args: StatusArgs) -> Result<(), CliError> {
    let ep = g.connect("ledger-status").await?;
    let client = &ep.nats.client;
    let reply = client
        .request(ledger_services::status_subject(args.site), "".into())
        .await
        .map_err(|e| format!("no projector of {} answered: {e}", args.site))?;
    let status: serde_json::Value = serde_json::from_slice(&reply.payload)?;
    let mut out = std::io::stdout().lock();
    match g.format {
        Format::Json => writeln!(out, "{status}")?,
        _ => {
            writeln!(out, "site      {}", status["site"].as_str().unwrap_or("?"))?;
            writeln!(out, "role      {}", status["role"].as_str().unwrap_or("?"))?;
            writeln!(
                out,
                "instance  {}",
                status["instance"].as_str().unwrap_or("?")
            )?;
            if let Some(counters) = status["counters"].as_object() {
                for (name, value) in counters {
                    writeln!(out, "{name:<17} {value}")?;
                }
            }
        }
    }
    Ok(())
}
