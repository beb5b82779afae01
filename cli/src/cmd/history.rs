//! `ledger replay` and `ledger audit`: reading history back.

use std::io::Write;

use super::Globals;
use crate::CliError;
use crate::output::{Format, time};
use ledger_schemas::Site;
use ledger_services::Nats;

use super::parse_site;

/// Arguments of `ledger replay`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ReplayArgs {
    /// The call to replay.
    #[arg(long)]
    pub(crate) call: uuid::Uuid,
    /// Show this site's view (under its propagation setting now) instead of the global view.
    #[arg(long, value_parser = parse_site)]
    pub(crate) site: Option<Site>,
}

/// `ledger replay`: every stored event of a call in stream order, with the parties after it.
///
/// # Errors
///
/// When NATS cannot be reached.
pub(crate) async fn replay(g: &Globals, args: ReplayArgs) -> Result<(), CliError> {
    let ep = g.connect("ledger-replay").await?;
    let mut out = std::io::stdout().lock();
    print_replay(&ep.nats, args.call, args.site, g.format, &mut out).await
}

/// Prints a call's replay (see [`replay`]) to `out`.
///
/// # Errors
///
/// When NATS cannot be reached or no event of the call is stored.
pub(crate) async fn print_replay(
    nats: &Nats,
    call: uuid::Uuid,
    site: Option<Site>,
    format: Format,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let viewpoint = match site {
        None => ledger_replay::Viewpoint::Global,
        Some(site) => {
            let config = nats
                .js
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
    let messages = nats.history.read_call(call, 1, None).await?;
    if messages.is_empty() {
        return Err(format!("no event of call {call} is stored").into());
    }
    let steps = ledger_replay::fold(call, &messages, viewpoint);
    if format == Format::Table {
        writeln!(
            out,
            "{:>8}  {:<30} {:<14} {:<24} PARTIES AFTER",
            "SEQ", "TIME", "KIND", "PARTY"
        )?;
    }
    for step in &steps {
        let line = step.to_json();
        match format {
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
                let at = line["ts"].as_u64().map(time).unwrap_or_default();
                writeln!(
                    out,
                    "{:>8}  {at:<30} {kind:<14} {who:<24} {}{note}",
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
pub(crate) struct AuditArgs {
    /// Only the decisions about this call.
    #[arg(long)]
    pub(crate) call: Option<uuid::Uuid>,
    /// Only the decisions of this site.
    #[arg(long, value_parser = parse_site)]
    pub(crate) site: Option<Site>,
}

/// `ledger audit`: every recorded decision in stream order.
///
/// # Errors
///
/// When NATS cannot be reached.
pub(crate) async fn audit(g: &Globals, args: AuditArgs) -> Result<(), CliError> {
    let ep = g.connect("ledger-audit").await?;
    let mut out = std::io::stdout().lock();
    print_audit(&ep.nats, args.site, args.call, g.format, &mut out).await
}

/// Prints the recorded decisions (see [`audit`]) to `out`.
///
/// # Errors
///
/// When NATS cannot be reached.
pub(crate) async fn print_audit(
    nats: &Nats,
    site: Option<Site>,
    call: Option<uuid::Uuid>,
    format: Format,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let entries = ledger_replay::read_audit(&nats.js, site, call).await?;
    if format == Format::Table {
        writeln!(
            out,
            "{:>6}  {:<30} {:<8} {:<36} {:<10} {:<38} RESULT",
            "SEQ", "DECIDED", "SITE", "CALL", "THIS_DN", "OTHER_DN"
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
        match format {
            Format::Json => writeln!(out, "{line}")?,
            Format::Table => writeln!(
                out,
                "{:>6}  {:<30} {:<8} {:<36} {:<10} {:<38} {}",
                entry.seq,
                time(record.ts),
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
