//! Latency of accepted TDeleteFromConference requests, next to a raw async-nats publish with the
//! same optimistic-concurrency headers, in the same run.

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, message::PublishMessage};
use ledger_schemas::{
    ConfigKey, DeleteReply, DeleteRequest, DeletedBy, Dn, EventBody, Joined, Message, MonitorMode,
    OptionName, PartyEvent, Role, Site, Target, subject,
};
use uuid::Uuid;

use super::BenchError;
use crate::output::bar;
use ledger_services::{
    Config, Nats, Publisher, StoreConfig, ledger_stream_config, now_us, provision,
};

/// Settings of the latency benchmark.
#[derive(Debug, Clone)]
pub(crate) struct DeleteLatency {
    /// Accepted deletes measured per round (and as many raw publishes).
    pub(crate) requests: usize,
    /// Rounds, alternating raw publishes and deletes.
    pub(crate) rounds: usize,
    /// Show progress bars.
    pub(crate) progress: bool,
}

/// Percentiles of one measurement, in microseconds.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Latencies {
    /// What was measured.
    pub(crate) what: &'static str,
    /// Samples.
    pub(crate) samples: usize,
    /// Median.
    pub(crate) p50_us: f64,
    /// 99th percentile.
    pub(crate) p99_us: f64,
    /// 99.9th percentile.
    pub(crate) p999_us: f64,
}

/// Both measurements and the ratio of their 99th percentiles.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct LatencyReport {
    /// The raw publish with the same headers.
    pub(crate) raw: Latencies,
    /// Accepted TDeleteFromConference, request to reply.
    pub(crate) delete: Latencies,
    /// `delete.p99_us / raw.p99_us`.
    pub(crate) p99_ratio: f64,
}

fn percentiles(what: &'static str, mut us: Vec<f64>) -> Latencies {
    us.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let i = ((us.len() as f64 * q).ceil() as usize).saturating_sub(1);
        us.get(i.min(us.len().saturating_sub(1)))
            .copied()
            .unwrap_or(f64::NAN)
    };
    Latencies {
        what,
        samples: us.len(),
        p50_us: at(0.50),
        p99_us: at(0.99),
        p999_us: at(0.999),
    }
}

/// Parties per benchmark call: a requester, the deleted ones, and two that keep it a conference.
const PARTIES: usize = 22;

fn joined(call: Uuid, site: Site, party: Uuid, dn: Dn) -> PartyEvent {
    PartyEvent {
        id: Uuid::now_v7(),
        call,
        site,
        ts: now_us(),
        party,
        body: EventBody::Joined(Joined {
            dn,
            role: Role::Agent,
            mode: MonitorMode::Normal,
            monitors: None,
        }),
    }
}

/// Runs the benchmark on the server `client` is connected to (use one of its own): a command
/// service for site `BenchD` in this process, calls of 22 agents, and deletes one at a time.
///
/// # Errors
///
/// When NATS fails or a delete is refused.
pub(crate) async fn delete_latency(
    nats: Nats,
    bench: DeleteLatency,
) -> Result<LatencyReport, BenchError> {
    let (client, js) = (nats.client.clone(), nats.js.clone());
    let stores = provision(&js, &StoreConfig::default()).await?;
    // The baseline's own stream, with the settings of LEDGER_EVENTS.
    let raw_stream = ledger_stream_config("BENCH_RAW", "bench.raw.>", &StoreConfig::default());
    js.get_or_create_stream(raw_stream).await?;
    let site = Site::new("BenchD")?;
    for option in [
        OptionName::SipEnableCallInfo,
        OptionName::SipRemoteDelFromConf,
    ] {
        let key = ConfigKey { site, option }.to_string();
        stores.config.put(key, "true".into()).await?;
    }
    let config = Config {
        projector: false,
        stats: false,
        ..Config::default()
    };
    let serving = ledger_services::ServeHandle::spawn(nats.clone(), vec![site], config);

    // Wait until the service answers (a reply, even a refusal, means it is listening).
    let subject = subject::delete_from_conference(site);
    let deadline = Instant::now() + Duration::from_secs(20);
    while client.request(subject.clone(), "".into()).await.is_err() {
        if Instant::now() > deadline {
            return Err("the command service did not start within 20 s".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let publisher = Publisher::new(js.clone());
    let mut raw = Vec::new();
    let mut deletes = Vec::new();
    for _ in 0..bench.rounds.max(1) {
        raw.extend(raw_round(&js, bench.requests, bench.progress).await?);
        deletes
            .extend(delete_round(&client, &publisher, site, bench.requests, bench.progress).await?);
    }
    serving.stop().await?;
    let raw = percentiles("raw publish, Nats-Msg-Id + per-call expected sequence", raw);
    let delete = percentiles("TDeleteFromConference accepted (request to reply)", deletes);
    let p99_ratio = delete.p99_us / raw.p99_us;
    Ok(LatencyReport {
        raw,
        delete,
        p99_ratio,
    })
}

/// Publishes `n` events one at a time, each with `Nats-Msg-Id` and the expectation of the
/// previous sequence on its call's subjects, as the command service does.
async fn raw_round(
    js: &jetstream::Context,
    n: usize,
    progress: bool,
) -> Result<Vec<f64>, BenchError> {
    let bar = bar(progress, n as u64, "raw publish");
    let mut out = Vec::with_capacity(n);
    let mut call = Uuid::now_v7();
    let mut last = 0;
    let payload = sample_deleted().encode();
    for i in 0..n {
        if i % (PARTIES - 3) == 0 {
            call = Uuid::now_v7();
            last = 0;
        }
        let filter = format!("bench.raw.{call}.>");
        let message = PublishMessage::build()
            .payload(payload.clone().into())
            .message_id(Uuid::now_v7().to_string())
            .expected_last_subject_sequence(last)
            .header(
                "Nats-Expected-Last-Subject-Sequence-Subject",
                filter.as_str(),
            );
        let start = Instant::now();
        let ack = js
            .send_publish(format!("bench.raw.{call}.BenchD.party_deleted"), message)
            .await?
            .await?;
        out.push(start.elapsed().as_secs_f64() * 1e6);
        last = ack.sequence;
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(out)
}

fn sample_deleted() -> PartyEvent {
    let dn = Dn::new("7000").unwrap_or_else(|_| unreachable!("a valid DN"));
    let site = Site::new("BenchD").unwrap_or_else(|_| unreachable!("a valid site"));
    PartyEvent {
        id: Uuid::now_v7(),
        call: Uuid::now_v7(),
        site,
        ts: now_us(),
        party: Uuid::now_v7(),
        body: EventBody::Deleted {
            by: DeletedBy {
                party: Uuid::now_v7(),
                dn,
                site,
            },
            request: Uuid::now_v7(),
        },
    }
}

/// Sends `n` deletes one at a time, each removing one agent of a 22-agent call at the site.
async fn delete_round(
    client: &async_nats::Client,
    publisher: &Publisher,
    site: Site,
    n: usize,
    progress: bool,
) -> Result<Vec<f64>, BenchError> {
    let per_call = PARTIES - 3;
    let calls: Vec<Uuid> = (0..n.div_ceil(per_call)).map(|_| Uuid::now_v7()).collect();
    let mut events = Vec::with_capacity(calls.len() * PARTIES);
    for call in &calls {
        for i in 0..PARTIES {
            events.push(joined(
                *call,
                site,
                Uuid::now_v7(),
                Dn::new(&format!("7{i:03}"))?,
            ));
        }
    }
    publisher.publish_all(&events, 1024).await?;
    let bar = bar(progress, n as u64, "delete");
    let subject = subject::delete_from_conference(site);
    let mut out = Vec::with_capacity(n);
    // Let the service's view take the calls in (its first answers would include catching up).
    tokio::time::sleep(Duration::from_millis(200)).await;
    for i in 0..n {
        let request = DeleteRequest {
            request: Uuid::now_v7(),
            call: calls[i / per_call],
            this_dn: Dn::new("7000")?,
            other_dn: Target::parse(&format!("7{:03}", 1 + i % per_call))?,
            reasons: Default::default(),
            extensions: Default::default(),
        };
        let payload = request.encode();
        let start = Instant::now();
        let reply = client.request(subject.clone(), payload.into()).await?;
        let elapsed = start.elapsed().as_secs_f64() * 1e6;
        let reply = DeleteReply::decode(&reply.payload)?;
        if let Err(refusal) = reply.outcome {
            return Err(format!("a benchmark delete was refused: {refusal}").into());
        }
        out.push(elapsed);
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(out)
}
