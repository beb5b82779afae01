//! `ledger replay` and `ledger audit`: reading history back.

use std::io::Write;

use super::{CliError, Format, Globals};
use async_nats::jetstream;
use ledger_schemas::Site;

use super::parse_site;
use crate::connect;

/// Arguments of `ledger replay`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReplayArgs {
    /// The call to replay.
    #[arg(long)]
    pub call: uuid::Uuid,
    /// Show this site's view (under its propagation setting now) instead of the global view.
    #[arg(long, value_parser = parse_site)]
    pub site: Option<Site>,
}

/// `ledger replay`: every stored event of a call in stream order, with the parties after it.
///
/// # Errors
///
/// When NATS cannot be reached.
pub async fn replay(g: &Globals, args: ReplayArgs) -> Result<(), CliError> {
    let client = connect(&g.nats, "ledger-replay").await?;
    let viewpoint = match args.site {
        None => ledger_replay::Viewpoint::Global,
        Some(site) => {
            let js = jetstream::new(client.clone());
            let config = js
                .get_key_value(ledger_schemas::subject::CONFIG_BUCKET)
                .await?;
            let key = ledger_schemas::ConfigKey {
                site,
                option: ledger_schemas::OptionName::UseDataFrom,
            };
            let propagates = config
                .get(key.to_string())
                .await?
                .is_some_and(|v| v.as_ref() == b"current");
            ledger_replay::Viewpoint::Site { site, propagates }
        }
    };
    let messages = ledger_replay::read_call(&client, args.call, 1, None).await?;
    if messages.is_empty() {
        return Err(format!("no event of call {} is stored", args.call).into());
    }
    let steps = ledger_replay::fold(args.call, &messages, viewpoint);
    let mut out = std::io::stdout().lock();
    if g.format == Format::Table {
        writeln!(
            out,
            "{:>8}  {:<14} {:<24} PARTIES AFTER",
            "SEQ", "KIND", "PARTY"
        )?;
    }
    for step in &steps {
        let line = step.to_json();
        match g.format {
            Format::Json => writeln!(out, "{line}")?,
            Format::Table => {
                let who = match (&step.who, line["party"].as_str()) {
                    (Some((dn, at)), _) => format!("{dn}@{at}"),
                    (None, Some(party)) => party.chars().take(8).collect(),
                    (None, None) => String::new(),
                };
                let kind = line["kind"].as_str().unwrap_or("(undecodable)");
                let note = line["skipped"]
                    .as_str()
                    .or(line["error"].as_str())
                    .map(|n| format!("  [not applied: {n}]"))
                    .unwrap_or_default();
                let parties: Vec<String> = step
                    .parties
                    .iter()
                    .map(|p| format!("{}@{}", p.dn, p.location))
                    .collect();
                writeln!(
                    out,
                    "{:>8}  {kind:<14} {who:<24} {}{note}",
                    step.seq,
                    parties.join(", ")
                )?;
            }
        }
    }
    Ok(())
}

/// Arguments of `ledger audit`.
#[derive(Debug, Clone, clap::Args)]
pub struct AuditArgs {
    /// Only the decisions about this call.
    #[arg(long)]
    pub call: Option<uuid::Uuid>,
    /// Only the decisions of this site.
    #[arg(long, value_parser = parse_site)]
    pub site: Option<Site>,
}

/// `ledger audit`: every recorded decision in stream order.
///
/// # Errors
///
/// When NATS cannot be reached.
pub async fn audit(g: &Globals, args: AuditArgs) -> Result<(), CliError> {
    let client = connect(&g.nats, "ledger-audit").await?;
    let js = jetstream::new(client);
    let entries = ledger_replay::read_audit(&js, args.site, args.call).await?;
    let mut out = std::io::stdout().lock();
    if g.format == Format::Table {
        writeln!(
            out,
            "{:>6}  {:<27} {:<8} {:<36} {:<10} {:<38} RESULT",
            "SEQ", "TIME (µs)", "SITE", "CALL", "THIS_DN", "OTHER_DN"
        )?;
    }
    for entry in entries {
        let record = match entry.record {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(seq = entry.seq, error = %e, "an audit record does not decode; skipped");
                continue;
            }
        };
        let code = record.reply.code().map(|c| c.as_str());
        let line = serde_json::json!({
            "ts": record.ts,
            "site": record.site.as_str(),
            "call": entry.call.to_string(),
            "request": record.reply.request.map(|r| r.to_string()),
            "this_dn": record.request_text("this_dn"),
            "other_dn": record.request_text("other_dn"),
            "ok": record.reply.outcome.is_ok(),
            "code": code,
        });
        match g.format {
            Format::Json => writeln!(out, "{line}")?,
            Format::Table => writeln!(
                out,
                "{:>6}  {:<27} {:<8} {:<36} {:<10} {:<38} {}",
                entry.seq,
                record.ts,
                record.site,
                entry.call,
                record.request_text("this_dn").unwrap_or("-"),
                record.request_text("other_dn").unwrap_or("-"),
                code.unwrap_or("ok"),
            )?,
        }
    }
    Ok(())
}
