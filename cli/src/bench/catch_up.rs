//! The projector's catch-up rate over a stream, next to a raw async-nats ordered consumer
//! reading the same stream in the same run.

use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use futures::StreamExt;
use ledger_replay::events_filter;
use ledger_schemas::{ConfigKey, OptionName, Site};
use uuid::Uuid;

use super::BenchError;
use super::traffic::Traffic;
use crate::output::bar;
use ledger_services::{Config, Nats, Publisher, Stores, provision};

/// Settings of a catch-up benchmark.
#[derive(Debug, Clone)]
pub(crate) struct CatchUp {
    /// Events in the stream (published first when the stream holds fewer).
    pub(crate) events: u64,
    /// Calls in progress at once while generating (their events interleave in the stream).
    pub(crate) concurrent_calls: usize,
    /// Rounds of each reader; medians are reported.
    pub(crate) rounds: usize,
    /// Projector settings (batch size).
    pub(crate) config: Config,
    /// Show progress bars.
    pub(crate) progress: bool,
}

/// One reader's rate.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Rate {
    /// What was measured.
    pub(crate) reader: &'static str,
    /// Events read.
    pub(crate) events: u64,
    /// Seconds per round.
    pub(crate) seconds: Vec<f64>,
    /// Median events per second.
    pub(crate) median_rate: f64,
    /// This process's CPU time (user and system, every thread) per event, in microseconds, per
    /// round: what reading costs on the client's side, steadier than the rate on a shared
    /// machine.
    pub(crate) cpu_us_per_event: Vec<f64>,
}

/// The result: both rates and their ratio.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct CatchUpReport {
    /// The raw pull consumer.
    pub(crate) raw: Rate,
    /// The projector.
    pub(crate) projector: Rate,
    /// `projector.median_rate / raw.median_rate`.
    pub(crate) ratio: f64,
    /// LCTParty list writes (puts and ends) per event in the projector's median round: how much
    /// coalescing saved.
    pub(crate) list_writes_per_event: f64,
}

/// Runs the benchmark on the server `client` is connected to. Use a server of its own: the
/// stream keeps the synthetic events (it refuses purges).
///
/// # Errors
///
/// When NATS fails.
pub(crate) async fn catch_up(nats: Nats, bench: CatchUp) -> Result<CatchUpReport, BenchError> {
    let js = nats.js.clone();
    let stores = provision(&js, &bench.config.store).await?;
    let mut info = stores.events.clone();
    let stored = info.info().await?.state.messages;
    if stored < bench.events {
        let publisher = Publisher::new(js.clone());
        let mut traffic = Traffic::new(bench.concurrent_calls)?;
        let missing = bench.events - stored;
        let bar = bar(bench.progress, missing, "publishing");
        let mut chunk = Vec::with_capacity(10_000);
        let mut n = 0;
        while n < missing {
            chunk.clear();
            while chunk.len() < 10_000 && n < missing {
                chunk.push(traffic.next_event()?);
                n += 1;
            }
            publisher.publish_all(&chunk, 4096).await?;
            bar.inc(chunk.len() as u64);
        }
        bar.finish_and_clear();
    }
    let total = info.info().await?.state.last_sequence;
    let events = info.info().await?.state.messages;
    let mut raw = Vec::new();
    let mut projected = Vec::new();
    let mut raw_cpu = Vec::new();
    let mut projected_cpu = Vec::new();
    let mut writes = Vec::new();
    for round in 0..bench.rounds.max(1) {
        let cpu = CpuTime::now();
        raw.push(raw_read(&stores, events, &bench, round).await?);
        raw_cpu.push(cpu.per_event(events));
        let cpu = CpuTime::now();
        let (seconds, written) = project(&nats, &stores, total, &bench, round).await?;
        projected_cpu.push(cpu.per_event(events));
        projected.push(seconds);
        writes.push(written);
        tracing::info!(
            round,
            raw_s = raw[round],
            projector_s = projected[round],
            "catch-up round"
        );
    }
    let raw = rate("raw async-nats ordered consumer", events, raw, raw_cpu);
    let projector = rate(
        "projector (call info on, propagation on)",
        events,
        projected,
        projected_cpu,
    );
    let ratio = projector.median_rate / raw.median_rate;
    writes.sort_unstable();
    let median_writes = writes.get(writes.len() / 2).copied().unwrap_or(0);
    Ok(CatchUpReport {
        raw,
        projector,
        ratio,
        list_writes_per_event: median_writes as f64 / events.max(1) as f64,
    })
}

fn rate(reader: &'static str, events: u64, seconds: Vec<f64>, cpu: Vec<f64>) -> Rate {
    let mut sorted = seconds.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN);
    Rate {
        reader,
        events,
        seconds,
        median_rate: events as f64 / median,
        cpu_us_per_event: cpu,
    }
}

/// This process's CPU time so far (every thread, user and system).
struct CpuTime(Duration);

impl CpuTime {
    fn now() -> Self {
        use nix::sys::resource::{UsageWho, getrusage};
        let of = |t: nix::sys::time::TimeVal| {
            Duration::new(
                u64::try_from(t.tv_sec()).unwrap_or(0),
                u32::try_from(t.tv_usec()).unwrap_or(0) * 1000,
            )
        };
        Self(
            getrusage(UsageWho::RUSAGE_SELF)
                .map(|u| of(u.user_time()) + of(u.system_time()))
                .unwrap_or_default(),
        )
    }

    /// Microseconds of CPU time since `self`, per event.
    fn per_event(&self, events: u64) -> f64 {
        let spent = Self::now().0.saturating_sub(self.0);
        spent.as_secs_f64() * 1e6 / events.max(1) as f64
    }
}

/// An ordered pull consumer reading the whole stream as the projector does (no
/// acknowledgements, batches of what has arrived up to the projector's batch size), doing
/// nothing with the messages.
async fn raw_read(
    stores: &Stores,
    events: u64,
    bench: &CatchUp,
    _round: usize,
) -> Result<f64, BenchError> {
    let bar = bar(bench.progress, events, "raw read");
    // Creating the consumer is part of reading, as it is of the projector's time.
    let start = Instant::now();
    let consumer = stores
        .events
        .create_consumer(pull::OrderedConfig {
            filter_subject: events_filter(&stores.events.cached_info().config),
            deliver_policy: DeliverPolicy::All,
            ..Default::default()
        })
        .await?;
    let mut chunks = consumer
        .messages()
        .await?
        .ready_chunks(bench.config.batch_size());
    let mut read = 0;
    while read < events {
        let Some(chunk) = chunks.next().await else {
            break;
        };
        for m in chunk {
            m?;
            read += 1;
        }
        bar.set_position(read);
    }
    let elapsed = start.elapsed().as_secs_f64();
    bar.finish_and_clear();
    Ok(elapsed)
}

/// A fresh site's projector catching up from the start of the stream, with call info and
/// propagation on (every event in its view, every change written and published). Returns the
/// seconds until every list is written, and the list writes made.
async fn project(
    nats: &Nats,
    stores: &Stores,
    last_seq: u64,
    bench: &CatchUp,
    round: usize,
) -> Result<(f64, u64), BenchError> {
    let site = Site::new(&format!(
        "Proj{}x{round}",
        &Uuid::now_v7().simple().to_string()[24..]
    ))?;
    for (option, value) in [
        (OptionName::SipEnableCallInfo, "true"),
        (OptionName::UseDataFrom, "current"),
    ] {
        let key = ConfigKey { site, option }.to_string();
        stores
            .config
            .put(key, value.as_bytes().to_vec().into())
            .await?;
    }
    let bar = bar(bench.progress, last_seq, "projector");
    let start = Instant::now();
    // The projector alone: it is what is measured.
    let config = Config {
        commands: false,
        stats: false,
        ..bench.config.clone()
    };
    let serving = ledger_services::ServeHandle::spawn(nats.clone(), vec![site], config);
    let status = ledger_services::status_subject(site);
    let written = loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let Ok(reply) = nats.client.request(status.clone(), "".into()).await else {
            continue;
        };
        let v: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap_or_default();
        // Done when every list is written, not only when every event is read.
        let seq = v["counters"]["written_seq"].as_u64().unwrap_or(0);
        bar.set_position(seq);
        if seq >= last_seq {
            let counter = |name: &str| v["counters"][name].as_u64().unwrap_or(0);
            break counter("lists_published") + counter("lists_ended");
        }
    };
    let elapsed = start.elapsed().as_secs_f64();
    bar.finish_and_clear();
    serving.stop().await?;
    Ok((elapsed, written))
}
