//! `ledger bench catch-up` and `ledger bench delete`.

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
    /// Rounds of each reader, alternating; medians are reported.
    #[arg(long, default_value_t = 3)]
    pub(crate) rounds: usize,
    /// Most events handled between two acknowledgements (both readers).
    #[arg(long, default_value_t = 1000)]
    pub(crate) batch: usize,
}

/// `ledger bench catch-up`: the projector's catch-up rate next to a raw pull consumer.
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
            config: Config::default().batch(args.batch),
            progress: g.format == Format::Table,
        },
    )
    .await?;
    let mut out = std::io::stdout().lock();
    match g.format {
        Format::Json => writeln!(out, "{}", serde_json::to_string(&report)?)?,
        Format::Table => {
            writeln!(
                out,
                "{:<42} {:>10} {:>14}  rounds (s)",
                "READER", "EVENTS", "MEDIAN EV/S"
            )?;
            for r in [&report.raw, &report.projector] {
                let rounds: Vec<String> = r.seconds.iter().map(|s| format!("{s:.2}")).collect();
                writeln!(
                    out,
                    "{:<42} {:>10} {:>14.0}  {}",
                    r.reader,
                    r.events,
                    r.median_rate,
                    rounds.join(" ")
                )?;
            }
            writeln!(
                out,
                "list writes per event (coalesced): {:.3}",
                report.list_writes_per_event
            )?;
            writeln!(out, "ratio projector/raw: {:.2}", report.ratio)?;
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
        Format::Table => {
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
