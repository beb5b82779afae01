//! `ledger audit`: the decisions of the command services and, with `--changes`, the conference
//! and option changes, in time order.

use std::io::Write;

use ledger_replay::{AuditQuery, DnFilter, Outcome, TrailLine, Window, audit_trail};
use ledger_schemas::Site;
use ledger_services::Nats;

use super::{Globals, parse_site};
use crate::CliError;
use crate::output::{Format, bar, csv_field, parse_time, time};

/// Arguments of `ledger audit`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct AuditArgs {
    /// Only what concerns this call.
    #[arg(long)]
    pub(crate) call: Option<uuid::Uuid>,
    /// Only the decisions of this site (and the changes it published).
    #[arg(long, value_parser = parse_site)]
    pub(crate) site: Option<Site>,
    /// Only the calls this DN took part in (`dn@site` for one site's DN); lists changes too.
    #[arg(long, value_parser = DnFilter::parse)]
    pub(crate) dn: Option<DnFilter>,
    /// Conference changes too, in time order with the decisions (and option changes, without
    /// --dn or --call).
    #[arg(long)]
    pub(crate) changes: bool,
    /// From this time (RFC 3339): only this window of the streams is read.
    #[arg(long, value_parser = parse_time)]
    pub(crate) since: Option<u64>,
    /// Up to this time (RFC 3339).
    #[arg(long, value_parser = parse_time)]
    pub(crate) until: Option<u64>,
    /// Only decisions accepted, or refused.
    #[arg(long, value_enum)]
    pub(crate) outcome: Option<OutcomeArg>,
    /// Report on standard error how many stored messages were read.
    #[arg(short, long)]
    pub(crate) verbose: bool,
}

/// `--outcome`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum OutcomeArg {
    /// Accepted.
    Ok,
    /// Refused.
    Refused,
}

/// The columns of the CSV, in order: the JSON keys of the lines.
const DECISION_COLUMNS: &[&str] = &[
    "ts", "site", "call", "request", "this_dn", "other_dn", "ok", "code",
];
const TYPED_COLUMNS: &[&str] = &[
    "type", "seq", "ts", "site", "call", "request", "this_dn", "other_dn", "ok", "code", "kind",
    "party", "dn", "by", "key", "old", "new", "refused",
];

/// `ledger audit`.
///
/// # Errors
///
/// When NATS cannot be reached.
pub(crate) async fn audit(g: &Globals, args: AuditArgs) -> Result<(), CliError> {
    let ep = g.connect("ledger-audit").await?;
    let query = AuditQuery {
        call: args.call,
        site: args.site,
        dn: args.dn,
        window: Window {
            since: args.since,
            until: args.until,
        },
        outcome: args.outcome.map(|o| match o {
            OutcomeArg::Ok => Outcome::Ok,
            OutcomeArg::Refused => Outcome::Refused,
        }),
        changes: args.changes,
    };
    let mut out = std::io::stdout().lock();
    let read = print_trail(&ep.nats, &query, g.format, &mut out).await?;
    if args.verbose {
        eprintln!("ledger audit: read {read} stored messages");
    }
    Ok(())
}

/// Prints the trail `query` asks for to `out`; returns how many stored messages were read.
///
/// # Errors
///
/// When NATS cannot be reached.
pub(crate) async fn print_trail(
    nats: &Nats,
    query: &AuditQuery,
    format: Format,
    out: &mut impl Write,
) -> Result<u64, CliError> {
    let progress = bar(format == Format::Table, 0, "reading");
    let trail = audit_trail(&nats.js, &nats.history, query, |read, total| {
        progress.set_length(total.max(read));
        progress.set_position(read);
    })
    .await?;
    progress.finish_and_clear();
    let typed = query.changes || query.dn.is_some();
    match format {
        Format::Json => {
            for line in &trail.lines {
                writeln!(out, "{}", line.to_json(typed))?;
            }
        }
        Format::Csv => {
            let columns = if typed {
                TYPED_COLUMNS
            } else {
                DECISION_COLUMNS
            };
            writeln!(out, "{}", columns.join(","))?;
            for line in &trail.lines {
                let mut v = line.to_json(typed);
                if let Some(by) = v.get("by").cloned().filter(|b| b.is_object()) {
                    v["by"] = format!(
                        "{}@{} ({})",
                        by["dn"].as_str().unwrap_or_default(),
                        by["site"].as_str().unwrap_or_default(),
                        by["party"].as_str().unwrap_or_default()
                    )
                    .into();
                }
                let fields: Vec<String> = columns
                    .iter()
                    .map(|c| csv_field(v.get(*c).unwrap_or(&serde_json::Value::Null)))
                    .collect();
                writeln!(out, "{}", fields.join(","))?;
            }
        }
        _ => print_table(&trail.lines, out)?,
    }
    Ok(trail.read)
}

fn print_table(lines: &[TrailLine], out: &mut impl Write) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<30} {:<8} {:<36} {:<9} WHAT",
        "TIME", "SITE", "CALL", "TYPE"
    )?;
    for line in lines {
        let row = match line {
            TrailLine::Decision {
                ts,
                site,
                call,
                this_dn,
                other_dn,
                code,
                ..
            } => (
                *ts,
                site.to_string(),
                call.to_string(),
                "decision",
                format!(
                    "{} deletes {}: {}",
                    this_dn.as_deref().unwrap_or("-"),
                    other_dn.as_deref().unwrap_or("-"),
                    code.unwrap_or("ok")
                ),
            ),
            TrailLine::Change {
                ts,
                site,
                call,
                kind,
                dn,
                by,
                ..
            } => (
                *ts,
                site.to_string(),
                call.to_string(),
                "change",
                match by {
                    Some(by) => format!(
                        "{} {} by {}@{}",
                        kind.as_str(),
                        dn.map_or_else(|| "?".to_owned(), |d| d.to_string()),
                        by.dn,
                        by.site
                    ),
                    None => format!(
                        "{} {}",
                        kind.as_str(),
                        dn.map_or_else(|| "?".to_owned(), |d| d.to_string())
                    ),
                },
            ),
            TrailLine::OptionChange {
                ts,
                site,
                key,
                old,
                new,
                refused,
                ..
            } => (
                *ts,
                site.to_string(),
                "-".to_owned(),
                "option",
                format!(
                    "{key}: {} -> {}{}",
                    old.as_deref().unwrap_or("(unset)"),
                    new.as_deref().unwrap_or("(default)"),
                    if *refused { " (refused)" } else { "" }
                ),
            ),
        };
        writeln!(
            out,
            "{:<30} {:<8} {:<36} {:<9} {}",
            time(row.0),
            row.1,
            row.2,
            row.3,
            row.4
        )?;
    }
    Ok(())
}
