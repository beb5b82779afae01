//! Publishing party events through the library's producer API ([`Publisher::publish_all`]: encode,
//! `Nats-Msg-Id`, a window of acknowledgements in flight), next to raw async-nats publishes of
//! the same events already encoded, with `Nats-Msg-Id` and the same window, in the same run.

use std::future::IntoFuture;
use std::time::Instant;

use async_nats::jetstream::message::PublishMessage;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use ledger_schemas::{Message, PartyEvent};

use super::BenchError;
use super::traffic::Traffic;
use crate::output::bar;
use ledger_services::{Nats, Publisher, StoreConfig, provision};

/// Settings of the publish benchmark.
#[derive(Debug, Clone)]
pub(crate) struct PublishBench {
    /// Events per round, for each publisher.
    pub(crate) events: u64,
    /// Rounds, alternating the two publishers.
    pub(crate) rounds: usize,
    /// Acknowledgements in flight at most (both publishers).
    pub(crate) in_flight: usize,
    /// Show progress bars.
    pub(crate) progress: bool,
}

/// One publisher's rounds.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct PublishRate {
    /// What was measured.
    pub(crate) publisher: &'static str,
    /// Events per round.
    pub(crate) events: u64,
    /// Seconds per round.
    pub(crate) seconds: Vec<f64>,
    /// Median events acknowledged per second.
    pub(crate) median_rate: f64,
}

/// Both publishers and the ratio of their medians.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct PublishReport {
    /// Raw async-nats publishes of pre-encoded events with `Nats-Msg-Id`.
    pub(crate) raw: PublishRate,
    /// `Publisher::publish_all`.
    pub(crate) ledger: PublishRate,
    /// `ledger.median_rate / raw.median_rate`.
    pub(crate) ratio: f64,
}

fn rate(publisher: &'static str, events: u64, seconds: Vec<f64>) -> PublishRate {
    let mut sorted = seconds.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN);
    PublishRate {
        publisher,
        events,
        seconds,
        median_rate: events as f64 / median,
    }
}

/// Runs the benchmark: every round publishes fresh events (new ids, so none is a duplicate).
///
/// # Errors
///
/// When NATS fails.
pub(crate) async fn publish(nats: Nats, bench: PublishBench) -> Result<PublishReport, BenchError> {
    provision(&nats.js, &StoreConfig::default()).await?;
    let mut traffic = Traffic::new(1000)?;
    let mut batch = |n: u64| -> Result<Vec<PartyEvent>, BenchError> {
        (0..n).map(|_| Ok(traffic.next_event()?)).collect()
    };
    let publisher = Publisher::new(nats.js.clone());
    let (mut raw, mut ledger) = (Vec::new(), Vec::new());
    for round in 0..bench.rounds.max(1) {
        // Raw: what the ledger's producer sends, encoded beforehand.
        let events = batch(bench.events)?;
        let encoded: Vec<(String, bytes::Bytes, String)> = events
            .iter()
            .map(|e| (e.subject(), e.encode().into(), e.id.to_string()))
            .collect();
        let progress = bar(
            bench.progress,
            bench.events,
            &format!("raw, round {}", round + 1),
        );
        let start = Instant::now();
        let mut pending = FuturesUnordered::new();
        for (subject, payload, id) in encoded {
            if pending.len() >= bench.in_flight.max(1)
                && let Some(done) = pending.next().await
            {
                done?;
                progress.inc(1);
            }
            let message = PublishMessage::build().payload(payload).message_id(id);
            pending.push(nats.js.send_publish(subject, message).await?.into_future());
        }
        while let Some(done) = pending.next().await {
            done?;
            progress.inc(1);
        }
        raw.push(start.elapsed().as_secs_f64());
        progress.finish_and_clear();

        // The library: encoding included.
        let events = batch(bench.events)?;
        let progress = bar(
            bench.progress,
            1,
            &format!("Publisher, round {}", round + 1),
        );
        let start = Instant::now();
        let report = publisher.publish_all(&events, bench.in_flight).await?;
        ledger.push(start.elapsed().as_secs_f64());
        progress.finish_and_clear();
        if report.stored != bench.events {
            return Err(format!("{} of {} events stored", report.stored, bench.events).into());
        }
    }
    let raw = rate(
        "raw async-nats, pre-encoded, Nats-Msg-Id",
        bench.events,
        raw,
    );
    let ledger = rate("Publisher::publish_all", bench.events, ledger);
    let ratio = ledger.median_rate / raw.median_rate;
    Ok(PublishReport { raw, ledger, ratio })
}
