//! Replaying one call on streams of growing size: the call's events read back with batched
//! direct gets and folded (what `ledger replay` does, printing aside), next to the raw batched
//! direct get of the same messages, in the same run. Replaying a call should cost what the call
//! holds, not what the stream holds.

use std::time::{Duration, Instant};

use futures::StreamExt;
use ledger_replay::{Viewpoint, fold};
use ledger_schemas::subject;
use ledger_services::{Config, Nats, Publisher, provision};
use uuid::Uuid;

use super::BenchError;
use super::traffic::Traffic;
use crate::output::bar;

/// Settings of the replay benchmark.
#[derive(Debug, Clone)]
pub(crate) struct ReplayBench {
    /// Stream sizes to measure at, ascending: events are published up to each in turn.
    pub(crate) sizes: Vec<u64>,
    /// Calls in progress at once while publishing (their events interleave).
    pub(crate) concurrent_calls: usize,
    /// Calls replayed at each size, drawn across the whole stream.
    pub(crate) samples: usize,
    /// Show progress bars.
    pub(crate) progress: bool,
}

/// Per-call times, in microseconds.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Times {
    pub(crate) median_us: f64,
    pub(crate) p99_us: f64,
}

/// The figures at one stream size.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct AtSize {
    pub(crate) events: u64,
    pub(crate) calls: usize,
    pub(crate) events_per_call: f64,
    /// Read back and folded.
    pub(crate) replay: Times,
    /// The raw batched direct get of the same messages.
    pub(crate) raw: Times,
    /// `replay.median_us / raw.median_us`.
    pub(crate) ratio_to_raw: f64,
}

/// The report.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct ReplayReport {
    pub(crate) sizes: Vec<AtSize>,
    /// The replay median at the largest size over the one at the smallest.
    pub(crate) growth: f64,
}

fn times(mut us: Vec<f64>) -> Times {
    us.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let i = ((us.len() as f64 * q).ceil() as usize).saturating_sub(1);
        us.get(i.min(us.len().saturating_sub(1)))
            .copied()
            .unwrap_or(f64::NAN)
    };
    Times {
        median_us: at(0.5),
        p99_us: at(0.99),
    }
}

/// Runs the benchmark on the server `nats` is connected to (use one of its own: the stream keeps
/// the synthetic events).
///
/// # Errors
///
/// When NATS fails.
pub(crate) async fn replay(nats: Nats, bench: ReplayBench) -> Result<ReplayReport, BenchError> {
    let stores = provision(&nats.js, &Config::default().store).await?;
    let publisher = Publisher::new(nats.js.clone());
    let mut traffic = Traffic::new(bench.concurrent_calls)?;
    let mut events_stream = stores.events.clone();
    let mut published = events_stream.info().await?.state.messages;
    // Every call published, in order: samples are drawn across the whole stream.
    let mut calls: Vec<Uuid> = Vec::new();
    let mut seen: std::collections::HashSet<Uuid> = std::collections::HashSet::new();
    let mut rng: u64 = 0x2545_f491_4f6c_dd1d;
    let mut report = Vec::new();
    for &size in &bench.sizes {
        let bar = bar(bench.progress, size.saturating_sub(published), "publishing");
        let mut chunk = Vec::with_capacity(10_000);
        while published < size {
            chunk.clear();
            while chunk.len() < 10_000 && published + (chunk.len() as u64) < size {
                let e = traffic.next_event()?;
                if seen.insert(e.call) {
                    calls.push(e.call);
                }
                chunk.push(e);
            }
            publisher.publish_all(&chunk, 4096).await?;
            published += chunk.len() as u64;
            bar.inc(chunk.len() as u64);
        }
        bar.finish_and_clear();
        let mut replayed = Vec::new();
        let mut raw = Vec::new();
        let mut events = 0usize;
        for _ in 0..bench.samples {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let call = calls[(rng % calls.len().max(1) as u64) as usize];
            let start = Instant::now();
            let n = raw_direct_get(&nats.client, call).await?;
            raw.push(start.elapsed().as_secs_f64() * 1e6);
            let start = Instant::now();
            let messages = nats.history.read_call(call, 1, None).await?;
            let steps = fold(call, &messages, Viewpoint::Global);
            replayed.push(start.elapsed().as_secs_f64() * 1e6);
            events += n.max(steps.len());
        }
        let (replay, raw) = (times(replayed), times(raw));
        tracing::info!(
            size,
            median_us = replay.median_us,
            raw_median_us = raw.median_us,
            "replay at size"
        );
        report.push(AtSize {
            events: published,
            calls: bench.samples,
            events_per_call: events as f64 / bench.samples.max(1) as f64,
            ratio_to_raw: replay.median_us / raw.median_us,
            replay,
            raw,
        });
    }
    let growth = match (report.first(), report.last()) {
        (Some(a), Some(b)) => b.replay.median_us / a.replay.median_us,
        _ => f64::NAN,
    };
    Ok(ReplayReport {
        sizes: report,
        growth,
    })
}

/// The raw batched direct get of a call's messages with plain async-nats: one request, messages
/// until the end-of-batch status. Returns how many came.
async fn raw_direct_get(client: &async_nats::Client, call: Uuid) -> Result<usize, BenchError> {
    let inbox = client.new_inbox();
    let mut sub = client.subscribe(inbox.clone()).await?;
    let request = serde_json::json!({
        "seq": 1,
        "next_by_subj": subject::call_events(call),
        "batch": 1024,
    });
    client
        .publish_with_reply(
            format!("$JS.API.DIRECT.GET.{}", subject::EVENTS_STREAM),
            inbox,
            request.to_string().into(),
        )
        .await?;
    let mut n = 0;
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), sub.next())
            .await?
            .ok_or("the connection closed")?;
        if msg.status.is_some() {
            break;
        }
        n += 1;
    }
    Ok(n)
}
