//! `ledger verify`: whether the lists and the audit agree with the log.

use std::io::Write;
use std::time::Duration;

use ledger_replay::{SiteToCheck, Verification, verify as check};
use ledger_schemas::{Site, subject};
use ledger_services::{Role, Stores, sites_options, statuses};

use super::{Globals, parse_site};
use crate::CliError;
use crate::output::Format;

/// Arguments of `ledger verify`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct VerifyArgs {
    /// A site whose lists to check (repeat for several; default: every site with an option set).
    #[arg(long = "site", value_parser = parse_site)]
    pub(crate) sites: Vec<Site>,
    /// Seconds to wait for each site's leading projector to catch up with the stream first.
    #[arg(long, default_value_t = 30)]
    pub(crate) wait: u64,
}

/// `ledger verify`: folds the whole event stream and compares every site's lists with it, and
/// the audit's accepted decisions with the stored deletes. Exit status 0 when everything
/// agrees, 1 otherwise (the differences are printed).
///
/// # Errors
///
/// When NATS cannot be reached, or the record does not agree with the log.
pub(crate) async fn verify(g: &Globals, args: VerifyArgs) -> Result<(), CliError> {
    let ep = g.connect("ledger-verify").await?;
    let nats = &ep.nats;
    let stores = Stores::open(&nats.js)
        .await
        .map_err(|_| "the ledger's streams and buckets not found: run `ledger provision`")?;
    let known = sites_options(&stores.config).await?;
    let sites: Vec<SiteToCheck> = if args.sites.is_empty() {
        known
            .iter()
            .map(|(site, o)| SiteToCheck {
                site: *site,
                propagates: o.propagates(),
            })
            .collect()
    } else {
        args.sites
            .iter()
            .map(|&site| SiteToCheck {
                site,
                propagates: known
                    .iter()
                    .find(|(s, _)| *s == site)
                    .is_some_and(|(_, o)| o.propagates()),
            })
            .collect()
    };
    let mut events = stores.events.clone();
    let up_to = events
        .info()
        .await
        .map_err(|e| format!("cannot read {}: {e}", subject::EVENTS_STREAM))?
        .state
        .last_sequence;
    wait_for_projectors(&nats.client, &sites, up_to, Duration::from_secs(args.wait)).await?;
    let report = check(&nats.history, &nats.js, &stores.lct, &sites, up_to).await?;
    print(&report, g.format)?;
    if report.agrees() {
        Ok(())
    } else {
        Err("the record does not agree with the log (above)".into())
    }
}

/// Waits until every site's leading projector has written its lists up to `up_to`.
async fn wait_for_projectors(
    client: &async_nats::Client,
    sites: &[SiteToCheck],
    up_to: u64,
    limit: Duration,
) -> Result<(), CliError> {
    let deadline = tokio::time::Instant::now() + limit;
    for s in sites {
        loop {
            let written = statuses(client, s.site, Duration::from_millis(300))
                .await
                .into_iter()
                .filter(|st| st.role == Role::Leader)
                .map(|st| st.counters.written_seq)
                .max();
            match written {
                Some(w) if w >= up_to => break,
                _ if tokio::time::Instant::now() >= deadline => {
                    return Err(format!(
                        "{}'s projector has not written its lists up to {up_to} within {limit:?} \
                         (written up to {}): is `ledger serve --site {}` running?",
                        s.site,
                        written.map_or_else(
                            || "nothing, no leader answers".to_owned(),
                            |w| w.to_string()
                        ),
                        s.site
                    )
                    .into());
                }
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }
    Ok(())
}

fn print(r: &Verification, format: Format) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    if format == Format::Json {
        let mut json = serde_json::to_value(r)?;
        json["agrees"] = r.agrees().into();
        writeln!(out, "{json}")?;
        return Ok(());
    }
    writeln!(
        out,
        "events    {} read up to sequence {}: {} undecodable, {} anomalies skipped, {} event ids stored twice",
        r.events, r.up_to, r.undecodable, r.anomalies, r.doubled
    )?;
    writeln!(
        out,
        "calls     {} seen, {} in progress",
        r.calls, r.in_progress
    )?;
    for s in &r.sites {
        writeln!(
            out,
            "lists     {:<8} {} calls compared, {} differ{}",
            s.site,
            s.compared,
            s.differ,
            if s.newer > 0 {
                format!(", {} written after the check began (skipped)", s.newer)
            } else {
                String::new()
            }
        )?;
    }
    writeln!(
        out,
        "audit     {} party_deleted stored, {} accepted requests: {} deletes without a decision, {} decisions without a delete",
        r.deletes, r.accepted, r.deletes_unaudited, r.accepted_missing
    )?;
    for d in &r.differences {
        writeln!(out, "differs   {d}")?;
    }
    writeln!(
        out,
        "result    {}",
        if r.agrees() { "agrees" } else { "DIFFERS" }
    )?;
    Ok(())
}
