//! `ledger bench catch-up`, `delete`, `replay` and `publish`.

use std::io::Write;

use super::Globals;
use crate::CliError;
use crate::output::Format;
use ledger_services::Config;

/// Arguments of `ledger bench catch-up`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct CatchUpArgs {
    /// Events in the stream; missing ones are published first (use a server of its own).
    #[arg(long, default_value_t = 1_000_000)]
    pub(crate) events: u64,
    /// Calls in progress at once in the synthetic traffic.
    #[arg(long, default_value_t = 100)]
    pub(crate) concurrent_calls: usize,
    /// Rounds of each reader, their order turning each round; medians are reported.
    #[arg(long, default_value_t = 3)]
    pub(crate) rounds: usize,
    /// Most events handled at once by every reader (1 to 100,000).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=ledger_services::MAX_BATCH as u64))]
    pub(crate) batch: u64,
    /// Events the server may send ahead of the projector's fold (and of the bare reader alike)
    /// in each pull request, 1 to 40,000.
    #[arg(long, default_value_t = ledger_replay::ReadAhead::default().messages as u64, value_parser = clap::value_parser!(u64).range(1..=ledger_replay::ReadAhead::MOST_MESSAGES as u64))]
    pub(crate) read_ahead: u64,
}

/// `ledger bench catch-up`: the projector's catch-up rate next to raw consumers (the baseline,
/// async-nats' ordered consumer; a bare pull consumer with the projector's window).
///
/// # Errors
///
/// When NATS fails.
pub(crate) async fn bench_catch_up(g: &Globals, args: CatchUpArgs) -> Result<(), CliError> {
    let ep = g.connect("ledger-bench").await?;
    let report = crate::bench::catch_up(
        ep.nats.clone(),
        crate::bench::CatchUp {
            events: args.events,
            concurrent_calls: args.concurrent_calls,
            rounds: args.rounds,
            config: Config {
                read_ahead: ledger_replay::ReadAhead {
                    messages: usize::try_from(args.read_ahead).unwrap_or(usize::MAX),
                    ..Default::default()
                },
                ..Config::default().batch(usize::try_from(args.batch).unwrap_or(usize::MAX))
            },
            progress: g.format == Format::Table,
        },
    )
    .await?;
    let mut out = std::io::stdout().lock();
    match g.format {
        Format::Json => writeln!(out, "{}", serde_json::to_string(&report)?)?,
        _ => {
            writeln!(
                out,
                "{:<42} {:>10} {:>14}  {:<17} CPU µs/EVENT",
                "READER", "EVENTS", "MEDIAN EV/S", "ROUNDS (s)"
            )?;
            let list = |v: &[f64]| {
                v.iter()
                    .map(|s| format!("{s:.2}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            for r in [&report.baseline, &report.bare, &report.projector] {
                writeln!(
                    out,
                    "{:<42} {:>10} {:>14.0}  {:<17} {}",
                    r.reader,
                    r.events,
                    r.median_rate,
                    list(&r.seconds),
                    list(&r.cpu_us_per_event)
                )?;
            }
            writeln!(
                out,
                "list writes per event (coalesced): {:.3}",
                report.list_writes_per_event
            )?;
            writeln!(
                out,
                "ratio projector/baseline: {:.2}; projector/bare: {:.2}",
                report.ratio_to_baseline, report.ratio_to_bare
            )?;
        }
    }
    Ok(())
}

/// Arguments of `ledger bench delete`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct DeleteBenchArgs {
    /// Accepted deletes (and raw publishes) per round.
    #[arg(long, default_value_t = 2000)]
    pub(crate) requests: usize,
    /// Rounds, alternating.
    #[arg(long, default_value_t = 3)]
    pub(crate) rounds: usize,
}

/// `ledger bench delete`: accepted-delete latency next to a raw publish with the same headers.
///
/// # Errors
///
/// When NATS fails.
pub(crate) async fn bench_delete(g: &Globals, args: DeleteBenchArgs) -> Result<(), CliError> {
    let ep = g.connect("ledger-bench").await?;
    let report = crate::bench::delete_latency(
        ep.nats.clone(),
        crate::bench::DeleteLatency {
            requests: args.requests,
            rounds: args.rounds,
            progress: g.format == Format::Table,
        },
    )
    .await?;
    let mut out = std::io::stdout().lock();
    match g.format {
        Format::Json => writeln!(out, "{}", serde_json::to_string(&report)?)?,
        _ => {
            writeln!(
                out,
                "{:<55} {:>8} {:>9} {:>9} {:>9}",
                "WHAT", "SAMPLES", "P50 µs", "P99 µs", "P99.9 µs"
            )?;
            for l in [&report.raw, &report.delete] {
                writeln!(
                    out,
                    "{:<55} {:>8} {:>9.0} {:>9.0} {:>9.0}",
                    l.what, l.samples, l.p50_us, l.p99_us, l.p999_us
                )?;
            }
            writeln!(out, "p99 ratio delete/raw: {:.2}", report.p99_ratio)?;
        }
    }
    Ok(())
}

/// Arguments of `ledger bench replay`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ReplayBenchArgs {
    /// Stream sizes to measure at, in events (events are published up to each in turn).
    #[arg(long = "events", value_delimiter = ',', default_values_t = [1_000_000u64, 10_000_000])]
    pub(crate) sizes: Vec<u64>,
    /// Calls in progress at once while publishing.
    #[arg(long, default_value_t = 1000)]
    pub(crate) concurrent_calls: usize,
    /// Calls replayed at each size.
    #[arg(long, default_value_t = 200)]
    pub(crate) samples: usize,
}

/// `ledger bench replay`: one call read back and folded on streams of growing size, next to the
/// raw batched direct get.
///
/// # Errors
///
/// When NATS fails.
pub(crate) async fn bench_replay(g: &Globals, args: ReplayBenchArgs) -> Result<(), CliError> {
    let ep = g.connect("ledger-bench").await?;
    let mut sizes = args.sizes.clone();
    sizes.sort_unstable();
    let report = crate::bench::replay(
        ep.nats.clone(),
        crate::bench::ReplayBench {
            sizes,
            concurrent_calls: args.concurrent_calls,
            samples: args.samples,
            progress: g.format == Format::Table,
        },
    )
    .await?;
    let mut out = std::io::stdout().lock();
    match g.format {
        Format::Json => writeln!(out, "{}", serde_json::to_string(&report)?)?,
        _ => {
            writeln!(
                out,
                "{:>12} {:>8} {:>10} {:>14} {:>14} {:>12} {:>12} {:>7}",
                "EVENTS",
                "CALLS",
                "EV/CALL",
                "REPLAY P50 µs",
                "REPLAY P99 µs",
                "RAW P50 µs",
                "RAW P99 µs",
                "RATIO"
            )?;
            for s in &report.sizes {
                writeln!(
                    out,
                    "{:>12} {:>8} {:>10.1} {:>14.0} {:>14.0} {:>12.0} {:>12.0} {:>7.2}",
                    s.events,
                    s.calls,
                    s.events_per_call,
                    s.replay.median_us,
                    s.replay.p99_us,
                    s.raw.median_us,
                    s.raw.p99_us,
                    s.ratio_to_raw
                )?;
            }
            writeln!(
                out,
                "replay median, largest stream over smallest: {:.2}",
                report.growth
            )?;
        }
    }
    Ok(())
}

/// Arguments of `ledger bench publish`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct PublishBenchArgs {
    /// Events per round, for each publisher.
    #[arg(long, default_value_t = 100_000)]
    pub(crate) events: u64,
    /// Rounds, alternating.
    #[arg(long, default_value_t = 3)]
    pub(crate) rounds: usize,
    /// Acknowledgements in flight at most.
    #[arg(long, default_value_t = 256)]
    pub(crate) in_flight: usize,
}

/// `ledger bench publish`: the producer API next to raw publishes with `Nats-Msg-Id`.
///
/// # Errors
///
/// When NATS fails.
pub(crate) async fn bench_publish(g: &Globals, args: PublishBenchArgs) -> Result<(), CliError> {
    let ep = g.connect("ledger-bench").await?;
    let report = crate::bench::publish(
        ep.nats.clone(),
        crate::bench::PublishBench {
            events: args.events,
            rounds: args.rounds,
            in_flight: args.in_flight,
            progress: g.format == Format::Table,
        },
    )
    .await?;
    let mut out = std::io::stdout().lock();
    match g.format {
        Format::Json => writeln!(out, "{}", serde_json::to_string(&report)?)?,
        _ => {
            writeln!(
                out,
                "{:<44} {:>10} {:>14}  rounds (s)",
                "PUBLISHER", "EVENTS", "MEDIAN EV/S"
            )?;
            for r in [&report.raw, &report.ledger] {
                let rounds: Vec<String> = r.seconds.iter().map(|s| format!("{s:.2}")).collect();
                writeln!(
                    out,
                    "{:<44} {:>10} {:>14.0}  {}",
                    r.publisher,
                    r.events,
                    r.median_rate,
                    rounds.join(" ")
                )?;
            }
            writeln!(out, "ratio Publisher/raw: {:.2}", report.ratio)?;
        }
    }
    Ok(())
}
