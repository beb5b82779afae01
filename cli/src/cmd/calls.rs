//! `ledger calls`: the calls in progress at a site, the quietest first, to find calls whose
//! leaves never came.

use std::io::Write;

use futures::{StreamExt, TryStreamExt};
use ledger_schemas::{LctList, Message, Site, subject};
use uuid::Uuid;

use super::{Globals, parse_site};
use crate::CliError;
use crate::output::Format;
use ledger_services::site::indexed;

/// Calls looked up at once.
const PARALLEL: usize = 16;

/// Arguments of `ledger calls`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct CallsArgs {
    /// The site whose calls in progress to list.
    #[arg(long, value_parser = parse_site)]
    pub(crate) site: Site,
}

/// One call in progress at a site.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct CallInProgress {
    /// The call.
    pub(crate) call: Uuid,
    /// Stream sequence of its first event.
    pub(crate) first_seq: u64,
    /// Stream sequence of its last stored event (any site's).
    pub(crate) last_seq: u64,
    /// When the server stored that event, microseconds since the Unix epoch.
    pub(crate) last_stored_us: u64,
    /// Seconds since then.
    pub(crate) idle_s: u64,
    /// Parties in the site's LCTParty list; `None` when the site keeps no list of the call.
    pub(crate) parties: Option<usize>,
}

/// `ledger calls`: every call the site's projector holds in progress (its index, as of its last
/// checkpoint), with its last stored event and the size of its list, the quietest first.
///
/// # Errors
///
/// When NATS cannot be reached or the streams and buckets do not exist yet.
pub(crate) async fn calls(g: &Globals, args: CallsArgs) -> Result<(), CliError> {
    let ep = g.connect("ledger-calls").await?;
    let nats = &ep.nats;
    let missing =
        |what: &str| format!("{what} not found: run `ledger serve` or `ledger provision`");
    let stores = ledger_services::Stores::open(&nats.js)
        .await
        .map_err(|_| missing("the ledger's streams and buckets"))?;
    let indexed = indexed(nats, &stores, args.site).await?;
    let now = ledger_services::now_us();
    let (lct, events) = (&stores.lct, &stores.events);
    let mut calls: Vec<CallInProgress> = futures::stream::iter(indexed)
        .map(|entry| async move {
            let (call, first_seq) = (entry.call, entry.first_seq);
            let last = events
                .direct_get_last_for_subject(subject::call_events(call))
                .await?;
            let stored_us = u64::try_from(last.time.unix_timestamp_nanos() / 1000).unwrap_or(0);
            let parties = lct
                .get(subject::lct_key(args.site, call))
                .await?
                .and_then(|b| LctList::decode(&b).ok())
                .map(|list| list.parties.len());
            Ok::<_, CliError>(Some(CallInProgress {
                call,
                first_seq,
                last_seq: last.sequence,
                last_stored_us: stored_us,
                idle_s: now.saturating_sub(stored_us) / 1_000_000,
                parties,
            }))
        })
        .buffer_unordered(PARALLEL)
        .try_filter_map(|c| futures::future::ready(Ok(c)))
        .try_collect()
        .await?;
    calls.sort_by_key(|c| (c.last_stored_us, c.call));
    let mut out = std::io::stdout().lock();
    match g.format {
        Format::Json => {
            for c in &calls {
                writeln!(out, "{}", serde_json::to_string(c)?)?;
            }
        }
        _ => {
            writeln!(
                out,
                "{:<36} {:>10} {:>10} {:>12} {:>7}",
                "CALL", "FIRST SEQ", "LAST SEQ", "IDLE", "PARTIES"
            )?;
            for c in &calls {
                let parties = c.parties.map_or("-".to_owned(), |n| n.to_string());
                writeln!(
                    out,
                    "{:<36} {:>10} {:>10} {:>12} {:>7}",
                    c.call,
                    c.first_seq,
                    c.last_seq,
                    idle(c.idle_s),
                    parties
                )?;
            }
        }
    }
    Ok(())
}

/// `3h07m`, `12m05s`, `9s`.
fn idle(s: u64) -> String {
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::idle;

    #[test]
    fn idle_times_read_at_a_glance() {
        assert_eq!(idle(9), "9s");
        assert_eq!(idle(725), "12m05s");
        assert_eq!(idle(3 * 3600 + 7 * 60 + 5), "3h07m");
    }
}
