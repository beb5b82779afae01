//! The projector's catch-up rate over a stream, next to raw async-nats consumers reading the
//! same stream in the same run:
//!
//! - **the baseline**: async-nats' ordered pull consumer (`pull::OrderedConfig`, which asks for
//!   500 messages at a time), the way async-nats reads a stream in order, checking for gaps and
//!   making its consumer again: the job the projector's reader does;
//! - **the bare reader**: a pull consumer made and read as the projector's own
//!   ([`feed_consumer`] and [`feed_messages`], the same window) that checks nothing and does
//!   nothing with the messages: what receiving the bytes costs, so that the projector's rate
//!   over it shows what its own work (order checks, decoding, the fold, list writes) costs.
//!
//! Every reader runs in a task of its own on the runtime's worker threads, as the projector
//! does, and the order of the three turns by one each round, so that none always follows the
//! same one.

use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use futures::StreamExt;
use ledger_replay::{events_filter, feed_consumer, feed_messages};
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

/// The result: the rates and the projector's ratios to each raw reader.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct CatchUpReport {
    /// async-nats' ordered pull consumer: the baseline.
    pub(crate) baseline: Rate,
    /// A pull consumer read as the projector reads its own, checking nothing.
    pub(crate) bare: Rate,
    /// The projector.
    pub(crate) projector: Rate,
    /// `projector.median_rate / baseline.median_rate`: the projector against reading the
    /// stream in order with async-nats alone.
    pub(crate) ratio_to_baseline: f64,
    /// `projector.median_rate / bare.median_rate`: what the projector's own work costs over
    /// receiving the bytes.
    pub(crate) ratio_to_bare: f64,
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
    let mut baseline = Samples::default();
    let mut bare = Samples::default();
    let mut projected = Samples::default();
    let mut writes = Vec::new();
    // A raw reader in a task of its own on the runtime's worker threads, where the projector
    // reads too: this future runs under `block_on` on the main thread, outside the worker pool,
    // and a reader there was measured about a quarter slower than one on the workers.
    let raw = |kind| {
        let read = raw_read(nats.clone(), stores.clone(), events, bench.clone(), kind);
        async move { tokio::spawn(read).await? }
    };
    for round in 0..bench.rounds.max(1) {
        let mut order = [Reader::Baseline, Reader::Bare, Reader::Projector];
        let turns = round % order.len();
        order.rotate_left(turns);
        for reader in order {
            let cpu = CpuTime::now();
            match reader {
                Reader::Baseline => {
                    let seconds = raw(Kind::Ordered).await?;
                    baseline.push(seconds, &cpu, events);
                }
                Reader::Bare => {
                    let seconds = raw(Kind::Bare).await?;
                    bare.push(seconds, &cpu, events);
                }
                Reader::Projector => {
                    let (seconds, written) = project(&nats, &stores, total, &bench, round).await?;
                    projected.push(seconds, &cpu, events);
                    writes.push(written);
                }
            }
        }
        tracing::info!(
            round,
            baseline_s = baseline.seconds[round],
            bare_s = bare.seconds[round],
            projector_s = projected.seconds[round],
            "catch-up round"
        );
    }
    let baseline = baseline.rate("baseline: async-nats ordered consumer", events);
    let bare = bare.rate("bare pull consumer, the same window", events);
    let projector = projected.rate("projector (call info on, propagation on)", events);
    let ratio_to_baseline = projector.median_rate / baseline.median_rate;
    let ratio_to_bare = projector.median_rate / bare.median_rate;
    writes.sort_unstable();
    let median_writes = writes.get(writes.len() / 2).copied().unwrap_or(0);
    Ok(CatchUpReport {
        baseline,
        bare,
        projector,
        ratio_to_baseline,
        ratio_to_bare,
        list_writes_per_event: median_writes as f64 / events.max(1) as f64,
    })
}

/// One reader's rounds: seconds and CPU time per event.
#[derive(Default)]
struct Samples {
    seconds: Vec<f64>,
    cpu: Vec<f64>,
}

impl Samples {
    fn push(&mut self, seconds: f64, cpu: &CpuTime, events: u64) {
        self.seconds.push(seconds);
        self.cpu.push(cpu.per_event(events));
    }

    fn rate(self, reader: &'static str, events: u64) -> Rate {
        let mut sorted = self.seconds.clone();
        sorted.sort_by(f64::total_cmp);
        let median = sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN);
        Rate {
            reader,
            events,
            seconds: self.seconds,
            median_rate: events as f64 / median,
            cpu_us_per_event: self.cpu,
        }
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

/// The readers a round times.
#[derive(Debug, Clone, Copy)]
enum Reader {
    Baseline,
    Bare,
    Projector,
}

/// A raw reader of either kind.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// `pull::OrderedConfig`, with the projector's filter.
    Ordered,
    /// A pull consumer made and read as the projector's ([`feed_consumer`], [`feed_messages`]
    /// with the same read-ahead), without the projector's checks of the order.
    Bare,
}

/// A raw consumer reading the whole stream (no acknowledgements), taking what has arrived a
/// batch at a time, and doing nothing with the messages. Creating the consumer is part of
/// reading, as it is of the projector's time. Owns what it reads with, so that it can run
/// in a task of its own.
async fn raw_read(
    nats: Nats,
    stores: Stores,
    events: u64,
    bench: CatchUp,
    kind: Kind,
) -> Result<f64, BenchError> {
    let bar = bar(bench.progress, events, "raw read");
    let start = Instant::now();
    let read = match kind {
        Kind::Bare => {
            let config = feed_consumer(&stores.events.cached_info().config, 1);
            let consumer = stores.events.create_consumer(config).await?;
            let read_ahead = bench
                .config
                .read_ahead
                .bounded(nats.client.server_info().max_payload);
            drain(
                feed_messages(&consumer, read_ahead).await?,
                events,
                &bench,
                &bar,
            )
            .await?
        }
        Kind::Ordered => {
            let consumer = stores
                .events
                .create_consumer(pull::OrderedConfig {
                    filter_subject: events_filter(&stores.events.cached_info().config),
                    deliver_policy: DeliverPolicy::All,
                    ..Default::default()
                })
                .await?;
            drain(consumer.messages().await?, events, &bench, &bar).await?
        }
    };
    let elapsed = start.elapsed().as_secs_f64();
    bar.finish_and_clear();
    if read < events {
        return Err(format!("the consumer ended after {read} of {events} events").into());
    }
    Ok(elapsed)
}

/// Reads `events` messages off `messages` in chunks of what has arrived; returns how many it
/// read before the stream ended, if it did.
async fn drain<E: Into<async_nats::Error>>(
    messages: impl futures::Stream<Item = Result<async_nats::jetstream::Message, E>>,
    events: u64,
    bench: &CatchUp,
    bar: &indicatif::ProgressBar,
) -> Result<u64, BenchError> {
    let mut chunks = std::pin::pin!(messages.ready_chunks(bench.config.batch_size()));
    let mut read = 0;
    while read < events {
        let Some(chunk) = chunks.next().await else {
            break;
        };
        for m in chunk {
            m.map_err(Into::into)?;
            read += 1;
        }
        bar.set_position(read);
    }
    Ok(read)
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
