//! `ledger replay`: a call's stored events with the parties after each, or every site's lists at
//! a moment (`--at`).

use std::io::Write;

use ledger_replay::{Cut, Viewpoint, list_json, lists_at};
use ledger_schemas::{ConfigKey, OptionName, Site, subject};
use ledger_services::Nats;

use super::{Globals, parse_site};
use crate::CliError;
use crate::output::{Format, Position, parse_position, time};

/// Arguments of `ledger replay`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ReplayArgs {
    /// The call to replay.
    #[arg(long)]
    pub(crate) call: uuid::Uuid,
    /// Show this site's view (under its propagation setting now) instead of the global view.
    #[arg(long, value_parser = parse_site)]
    pub(crate) site: Option<Site>,
    /// Instead, every site's list as it was just after this stream sequence, or after the last
    /// event whose `ts` is not later than this time (RFC 3339).
    #[arg(long, value_parser = parse_position)]
    pub(crate) at: Option<Position>,
}

/// `ledger replay`.
///
/// # Errors
///
/// When NATS cannot be reached or no event of the call is stored.
pub(crate) async fn replay(g: &Globals, args: ReplayArgs) -> Result<(), CliError> {
    let ep = g.connect("ledger-replay").await?;
    let mut out = std::io::stdout().lock();
    match args.at {
        Some(at) => print_lists_at(&ep.nats, args.call, at, g.format, &mut out).await,
        None => print_replay(&ep.nats, args.call, args.site, g.format, &mut out).await,
    }
}

/// Whether `site` propagates party events now (`extrouter/use-data-from = current`).
pub(crate) async fn propagates(nats: &Nats, site: Site) -> Result<bool, CliError> {
    let config = nats.js.get_key_value(subject::CONFIG_BUCKET).await?;
    let key = ConfigKey {
        site,
        option: OptionName::UseDataFrom,
    };
    Ok(config
        .get(key.to_string())
        .await?
        .is_some_and(|v| v.as_ref() == b"current"))
}

/// Prints a call's replay to `out`: one line per stored event, in stream order.
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
        None => Viewpoint::Global,
        Some(site) => Viewpoint::Site {
            site,
            propagates: propagates(nats, site).await?,
        },
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
        if format == Format::Json {
            writeln!(out, "{line}")?;
            continue;
        }
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
    Ok(())
}

/// Prints every site's list of `call` at `at` (`ledger replay --at`).
async fn print_lists_at(
    nats: &Nats,
    call: uuid::Uuid,
    at: Position,
    format: Format,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let messages = nats.history.read_call(call, 1, None).await?;
    if messages.is_empty() {
        return Err(format!("no event of call {call} is stored").into());
    }
    let cut = match at {
        Position::Seq(seq) => Cut::Seq(seq),
        Position::Time(ts) => Cut::Time(ts),
    };
    // The options now in force (their history is on the audit record, not in the fold).
    let mut sites = std::collections::HashMap::new();
    for m in &messages {
        if let Ok(parsed) = ledger_schemas::EventSubject::parse(&m.subject)
            && !sites.contains_key(&parsed.site)
        {
            sites.insert(parsed.site, propagates(nats, parsed.site).await?);
        }
    }
    let lists = lists_at(call, &messages, cut, |s| {
        sites.get(&s).copied().unwrap_or(false)
    });
    if lists.is_empty() {
        return Err(format!("call {call} had no event at that moment").into());
    }
    for list in &lists {
        if format == Format::Json {
            writeln!(out, "{}", list_json(list))?;
            continue;
        }
        let when = if list.ts > 0 {
            time(list.ts)
        } else {
            "-".into()
        };
        writeln!(
            out,
            "{} as of stream sequence {} ({when}):",
            list.site, list.seq
        )?;
        crate::output::lct_table(out, list)?;
    }
    Ok(())
}
