//! `ledger tail` and `ledger subscriptions`: following party events as they are stored.

use std::io::Write;
use std::time::Duration;

use ledger_replay::{
    DnFilter, Durability, Filter, Observed, Options, Start, Subscription, Viewpoint, durables,
    remove_durable,
};
use ledger_schemas::{EventKind, Site};

use super::replay::propagates;
use super::{Globals, parse_site, shutdown_signal};
use crate::CliError;
use crate::output::{Format, Position, parse_position, time};

/// Arguments of `ledger tail`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct TailArgs {
    /// Only this call's events.
    #[arg(long)]
    pub(crate) call: Option<uuid::Uuid>,
    /// The parties after each event in this site's view (under its propagation setting now)
    /// instead of the global view.
    #[arg(long, value_parser = parse_site)]
    pub(crate) site: Option<Site>,
    /// Only events of this kind: party_joined, party_left or party_deleted.
    #[arg(long, value_parser = parse_kind)]
    pub(crate) kind: Option<EventKind>,
    /// Only the events of calls this DN takes part in (`dn@site` for one site's DN), from its
    /// join on.
    #[arg(long, value_parser = DnFilter::parse)]
    pub(crate) dn: Option<DnFilter>,
    /// From this stream sequence or time (RFC 3339) [default: only events stored from now].
    #[arg(long, value_parser = parse_position)]
    pub(crate) since: Option<Position>,
    /// A durable subscription of this name: it resumes after the last event printed, after a
    /// restart too (at least once).
    #[arg(long, value_parser = parse_durable)]
    pub(crate) durable: Option<String>,
    /// Stop once every matching event stored at the start is printed and nothing new came for a
    /// second.
    #[arg(long)]
    pub(crate) until_idle: bool,
}

fn parse_kind(s: &str) -> Result<EventKind, String> {
    EventKind::parse(s)
        .ok_or_else(|| format!("{s:?} is not party_joined, party_left or party_deleted"))
}

fn parse_durable(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    ok.then(|| s.to_owned())
        .ok_or_else(|| format!("{s:?}: a subscription name is 1 to 64 of [A-Za-z0-9_-]"))
}

/// `ledger tail`.
///
/// # Errors
///
/// When NATS cannot be reached, or a durable subscription of that name has other filters.
pub(crate) async fn tail(g: &Globals, args: TailArgs) -> Result<(), CliError> {
    let ep = g.connect("ledger-tail").await?;
    let nats = &ep.nats;
    let view = match args.site {
        None => Viewpoint::Global,
        Some(site) => Viewpoint::Site {
            site,
            propagates: propagates(nats, site).await?,
        },
    };
    let options = Options {
        filter: Filter {
            call: args.call,
            kind: args.kind,
            dn: args.dn,
        },
        view,
        start: match args.since {
            None => Start::New,
            Some(Position::Seq(seq)) => Start::Seq(seq),
            Some(Position::Time(ts)) => Start::Time(ts),
        },
        durability: args
            .durable
            .clone()
            .map_or(Durability::Ephemeral, Durability::Durable),
        ..Options::default()
    };
    let mut sub = Subscription::open(&nats.js, &nats.history, options).await?;
    let mut out = std::io::stdout().lock();
    if g.format != Format::Json {
        writeln!(
            out,
            "{:>8}  {:<30} {:<8} {:<14} {:<22} PARTIES AFTER",
            "SEQ", "TIME", "CALL", "KIND", "PARTY"
        )?;
    }
    let stop = shutdown_signal();
    tokio::pin!(stop);
    loop {
        let idle = args.until_idle.then_some(Duration::from_secs(1));
        let observed = tokio::select! {
            _ = &mut stop => break,
            next = sub.next_until_idle(idle) => match next {
                None => break,
                Some(observed) => observed?,
            },
        };
        print(&mut out, &observed, g.format)?;
        out.flush()?;
        // Printed: acknowledged (a durable subscription resumes after it).
        observed.ack().await?;
    }
    let counts = sub.counts();
    if counts.undecodable > 0 {
        tracing::warn!(
            skipped = counts.undecodable,
            "messages that do not decode were skipped"
        );
    }
    sub.close().await?;
    Ok(())
}

fn print(out: &mut impl Write, o: &Observed, format: Format) -> std::io::Result<()> {
    if format == Format::Json {
        return writeln!(out, "{}", o.to_json());
    }
    let who = o.who.map_or_else(
        || o.event.party.to_string()[..8].to_owned(),
        |(dn, at)| format!("{dn}@{at}"),
    );
    let parties: Vec<String> = o
        .parties
        .iter()
        .map(|p| format!("{}@{}", p.dn, p.location))
        .collect();
    let note = o
        .skipped
        .as_ref()
        .map(|s| format!("  [not applied: {s}]"))
        .unwrap_or_default();
    writeln!(
        out,
        "{:>8}  {:<30} {:<8} {:<14} {who:<22} {}{note}",
        o.seq,
        time(o.event.ts),
        &o.event.call.to_string()[..8],
        o.event.kind().as_str(),
        parties.join(", ")
    )
}

/// Arguments of `ledger subscriptions`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct SubscriptionsArgs {
    /// Remove this durable subscription.
    #[arg(long, value_parser = parse_durable)]
    pub(crate) remove: Option<String>,
}

/// `ledger subscriptions`: the durable subscriptions with their position and lag, or removes
/// one.
///
/// # Errors
///
/// When NATS cannot be reached or the subscription does not exist.
pub(crate) async fn subscriptions(g: &Globals, args: SubscriptionsArgs) -> Result<(), CliError> {
    let ep = g.connect("ledger-subscriptions").await?;
    if let Some(name) = &args.remove {
        remove_durable(&ep.nats.js, name).await?;
        println!("removed the subscription {name}");
        return Ok(());
    }
    let all = durables(&ep.nats.js).await?;
    let mut out = std::io::stdout().lock();
    if g.format == Format::Json {
        for d in &all {
            writeln!(out, "{}", serde_json::to_string(d)?)?;
        }
        return Ok(());
    }
    writeln!(
        out,
        "{:<24} {:>10} {:>8} {:>8}  FILTER",
        "NAME", "ACKED SEQ", "LAG", "UNACKED"
    )?;
    for d in &all {
        writeln!(
            out,
            "{:<24} {:>10} {:>8} {:>8}  {}",
            d.name, d.acked_seq, d.lag, d.unacked, d.filter
        )?;
    }
    Ok(())
}
