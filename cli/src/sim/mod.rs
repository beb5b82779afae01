//! `ledger sim`: realistic traffic through the contract, played from a seeded script
//! ([`script`]) at a set rate of calls a second: party events published as a site's producer
//! would, and TDeleteFromConference requests sent to the sites' command services.

mod script;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use ledger_schemas::{
    ConfigKey, DeleteReply, DeleteRequest, Dn, EventBody, Joined, Message, OptionName, PartyEvent,
    Site, Target, subject,
};
use ledger_services::{Nats, PublishError, Published, Publisher, StoreConfig, now_us, provision};
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::CliError;
use crate::cmd::{Globals, parse_site};
use crate::output::{Format, bar};
pub(crate) use script::{Action, Aim, Script};

/// Arguments of `ledger sim`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct SimArgs {
    /// A site taking part (repeatable) [default: SiteA, SiteB and SiteC].
    #[arg(long = "site", value_parser = parse_site)]
    pub(crate) sites: Vec<Site>,
    /// Calls to play.
    #[arg(long, default_value_t = 100)]
    pub(crate) calls: u64,
    /// Calls started per second.
    #[arg(long, default_value_t = 10.0)]
    pub(crate) rate: f64,
    /// Mean time between two steps of one call, in milliseconds (a call of ten steps lasts
    /// about ten times this).
    #[arg(long, default_value_t = 2000)]
    pub(crate) gap_ms: u64,
    /// Seed of the script: the same seed and settings play the same script (call numbers,
    /// kinds, sites, DNs, roles) [default: from the clock].
    #[arg(long)]
    pub(crate) seed: Option<u64>,
    /// Write the script as played to this file, one JSON object a line.
    #[arg(long)]
    pub(crate) script: Option<PathBuf>,
    /// Publish acknowledgements awaited at once.
    #[arg(long, default_value_t = 256)]
    pub(crate) in_flight: usize,
    /// Leave the sites' options as they are. By default the simulator turns on, for its sites,
    /// call info, remote deletes and Party Events propagation, so that multi-site conferences
    /// and remote deletes happen as in a deployment that uses them.
    #[arg(long)]
    pub(crate) keep_options: bool,
    /// Stamp the events with a simulated clock that starts at this time (RFC 3339), each event
    /// at its time in the script, instead of the real clock: with --speed, a day is played in
    /// minutes. The deletes of the script are skipped (counted as `skipped`): the command
    /// service stamps its decisions with the real clock.
    #[arg(long, value_parser = crate::output::parse_time)]
    pub(crate) clock: Option<u64>,
    /// Play the script this many times faster than real time.
    #[arg(long, default_value_t = 1.0)]
    pub(crate) speed: f64,
}

/// What a run did.
#[derive(Debug, Default, serde::Serialize)]
pub(crate) struct Summary {
    pub(crate) seed: u64,
    pub(crate) calls: u64,
    pub(crate) events: u64,
    /// Delete requests by outcome: `ok`, a refusal code, or `no_answer`.
    pub(crate) deletes: BTreeMap<String, u64>,
    /// From the first step to the last.
    pub(crate) seconds: f64,
    /// Calls started per second, over the time the calls were starting.
    pub(crate) calls_per_s: f64,
    /// Events published per second, over the whole run.
    pub(crate) events_per_s: f64,
    /// Events acknowledged as stored by the server (each once, whatever the resends).
    pub(crate) acknowledged: u64,
    /// Publishes sent again with the same event id after no acknowledgement came (a server or
    /// a node away); an event stored before its acknowledgement was lost is acknowledged as a
    /// duplicate and stored once.
    pub(crate) resent: u64,
    /// Acknowledgements that said the event was already stored.
    pub(crate) duplicates: u64,
    /// Delete requests sent again with the same request id after no answer, `unavailable` or
    /// `conflict`.
    pub(crate) requests_resent: u64,
}

impl Summary {
    fn count(&mut self, (published, resends): (Published, u64)) {
        self.acknowledged += 1;
        self.resent += resends;
        self.duplicates += u64::from(published.duplicate);
    }
}

/// How long an event is sent again while no acknowledgement comes, before the run fails.
const RESEND_FOR: Duration = Duration::from_secs(120);
/// Attempts of a delete request that gets no final answer.
const DELETE_ATTEMPTS: u32 = 5;

/// Publishes `event` until the server acknowledges it, sending it again with the same event id
/// (stored once within the stream's duplicate window) after a failure, for at most
/// [`RESEND_FOR`]. Returns the acknowledgement and the number of resends.
///
/// A call's events are stored in the order the switch sends them: `after` is the previous event of
/// the same call, and this one is sent only once that one is acknowledged (or has failed), so a
/// resent join can never land after the party's leave. `done` tells the next event of the call.
async fn deliver(
    publisher: Publisher,
    event: PartyEvent,
    after: Option<oneshot::Receiver<()>>,
    done: oneshot::Sender<()>,
) -> Result<(Published, u64), PublishError> {
    if let Some(previous) = after {
        // An error only means the previous delivery ended without acknowledgement (its error
        // fails the run).
        let _ = previous.await;
    }
    let delivered = send_until_acknowledged(&publisher, &event).await;
    let _ = done.send(());
    delivered
}

async fn send_until_acknowledged(
    publisher: &Publisher,
    event: &PartyEvent,
) -> Result<(Published, u64), PublishError> {
    let started = Instant::now();
    let mut resends = 0;
    loop {
        match publisher.publish(event).await {
            Ok(p) => return Ok((p, resends)),
            Err(e) if started.elapsed() >= RESEND_FOR => return Err(e),
            Err(e) => {
                tracing::warn!(event = %event.id, error = %e, "no acknowledgement; sending the event again");
                resends += 1;
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
}

/// A call being played: its id and its parties' ids, and which were deleted.
struct Live {
    id: Uuid,
    parties: Vec<Uuid>,
    deleted: HashSet<usize>,
    /// Signalled when the call's last event sent so far is acknowledged.
    last_delivered: Option<oneshot::Receiver<()>>,
}

impl Live {
    /// The pair that orders the call's next event after its previous one.
    fn next_in_order(&mut self) -> (Option<oneshot::Receiver<()>>, oneshot::Sender<()>) {
        let (done, next) = oneshot::channel();
        (self.last_delivered.replace(next), done)
    }
}

/// `ledger sim`.
///
/// # Errors
///
/// When NATS fails or the script file cannot be written.
pub(crate) async fn sim(g: &Globals, args: SimArgs) -> Result<(), CliError> {
    let ep = g.connect("ledger-sim").await?;
    let sites = if args.sites.is_empty() {
        ["SiteA", "SiteB", "SiteC"]
            .iter()
            .map(|s| Site::new(s))
            .collect::<Result<_, _>>()?
    } else {
        args.sites.clone()
    };
    let seed = args
        .seed
        .unwrap_or_else(|| now_us() ^ u64::from(std::process::id()));
    let summary = play(&ep.nats, &args, sites, seed).await?;
    let mut out = std::io::stdout().lock();
    match g.format {
        Format::Json => writeln!(out, "{}", serde_json::to_string(&summary)?)?,
        _ => {
            writeln!(out, "seed        {}", summary.seed)?;
            writeln!(out, "calls       {}", summary.calls)?;
            writeln!(
                out,
                "events      {} ({} acknowledged, {} resent, {} already stored)",
                summary.events, summary.acknowledged, summary.resent, summary.duplicates
            )?;
            for (outcome, n) in &summary.deletes {
                writeln!(out, "deletes     {n:>6} {outcome}")?;
            }
            if summary.requests_resent > 0 {
                writeln!(
                    out,
                    "resent      {} delete requests",
                    summary.requests_resent
                )?;
            }
            writeln!(out, "elapsed     {:.1} s", summary.seconds)?;
            writeln!(
                out,
                "rate        {:.1} calls started/s, {:.0} events/s",
                summary.calls_per_s, summary.events_per_s
            )?;
        }
    }
    Ok(())
}

/// Plays the script of `seed` and returns what happened.
async fn play(
    nats: &Nats,
    args: &SimArgs,
    sites: Vec<Site>,
    seed: u64,
) -> Result<Summary, CliError> {
    let stores = provision(&nats.js, &StoreConfig::default()).await?;
    if !args.keep_options {
        for &site in &sites {
            for (option, value) in [
                (OptionName::SipEnableCallInfo, "true"),
                (OptionName::SipRemoteDelFromConf, "true"),
                (OptionName::UseDataFrom, "current"),
            ] {
                let key = ConfigKey { site, option }.to_string();
                if stores.config.get(&key).await?.as_deref() != Some(value.as_bytes()) {
                    stores
                        .config
                        .put(key, value.as_bytes().to_vec().into())
                        .await?;
                }
            }
        }
    }
    let publisher = Publisher::new(nats.js.clone());
    let mut script = Script::new(seed, sites, args.calls, args.rate, args.gap_ms * 1000);
    let mut script_out = match &args.script {
        Some(path) => Some(std::io::BufWriter::new(std::fs::File::create(path)?)),
        None => None,
    };
    let progress = bar(true, args.calls, "calls");
    let mut summary = Summary {
        seed,
        ..Summary::default()
    };
    let mut live: HashMap<u64, Live> = HashMap::new();
    let mut acks = FuturesUnordered::new();
    let speed = if args.speed.is_finite() && args.speed > 0.0 {
        args.speed
    } else {
        return Err("--speed must be a positive number".into());
    };
    let start = Instant::now();
    let mut last_start = Duration::ZERO;
    let mut played = 0u64;
    while let Some(step) = script.next() {
        // Acknowledgements are collected while waiting for the step's time: the publishes in
        // flight progress only while they are polled.
        let due = tokio::time::Instant::from_std(
            start + Duration::from_secs_f64(step.at_us as f64 / 1e6 / speed),
        );
        let ts = args.clock.map_or_else(now_us, |c| c + step.at_us);
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(due) => break,
                Some(ack) = acks.next(), if !acks.is_empty() => summary.count(ack?),
            }
        }
        let Some(parties) = script.parties(step.call).map(<[_]>::to_vec) else {
            continue;
        };
        if !live.contains_key(&step.call) {
            last_start = start.elapsed();
        }
        let call = live.entry(step.call).or_insert_with(|| Live {
            id: Uuid::now_v7(),
            parties: (0..parties.len()).map(|_| Uuid::now_v7()).collect(),
            deleted: HashSet::new(),
            last_delivered: None,
        });
        let (kind, who) = match &step.action {
            Action::Join {
                party,
                site,
                dn,
                role,
                mode,
                monitors,
            } => {
                let event = PartyEvent {
                    id: Uuid::now_v7(),
                    call: call.id,
                    site: *site,
                    ts,
                    party: call.parties[*party],
                    body: EventBody::Joined(Joined {
                        dn: Dn::new(dn)?,
                        role: *role,
                        mode: *mode,
                        monitors: monitors.map(|m| call.parties[m]),
                    }),
                };
                let (after, done) = call.next_in_order();
                acks.push(deliver(publisher.clone(), event, after, done));
                summary.events += 1;
                ("party_joined", *party)
            }
            Action::Leave { party, reason } => {
                if call.deleted.contains(party) {
                    script.forget_if_done(step.call);
                    continue;
                }
                let event = PartyEvent {
                    id: Uuid::now_v7(),
                    call: call.id,
                    site: parties[*party].site,
                    ts,
                    party: call.parties[*party],
                    body: EventBody::Left {
                        reason: Some((*reason).to_owned()),
                    },
                };
                let (after, done) = call.next_in_order();
                acks.push(deliver(publisher.clone(), event, after, done));
                summary.events += 1;
                ("party_left", *party)
            }
            Action::Delete { .. } if args.clock.is_some() => {
                // The command service stamps its decisions with the real clock: a delete
                // among events of a simulated clock would end spans at another time.
                *summary.deletes.entry("skipped".to_owned()).or_insert(0) += 1;
                script.forget_if_done(step.call);
                if script.parties(step.call).is_none() {
                    live.remove(&step.call);
                }
                continue;
            }
            Action::Delete { by, aim } => {
                // The command service must find every event of the call stored.
                while let Some(ack) = acks.next().await {
                    summary.count(ack?);
                }
                let (target, other_dn) = match aim {
                    Aim::Party(t) => (*t, call.parties[*t].to_string()),
                    Aim::DnAt(t) => (*t, format!("{}@{}", parties[*t].dn, parties[*t].site)),
                    Aim::Dn(t) => (*t, parties[*t].dn.clone()),
                };
                let outcome = delete(
                    nats,
                    parties[*by].site,
                    call.id,
                    &parties[*by].dn,
                    &other_dn,
                    &mut summary.requests_resent,
                )
                .await?;
                if outcome == "ok" {
                    call.deleted.insert(target);
                }
                *summary.deletes.entry(outcome).or_insert(0) += 1;
                ("delete_request", *by)
            }
        };
        while acks.len() >= args.in_flight.max(1) {
            if let Some(ack) = acks.next().await {
                summary.count(ack?);
            }
        }
        if let Some(out) = script_out.as_mut() {
            let p = &parties[who];
            let line = serde_json::json!({
                "n": played, "call": step.call, "kind": kind,
                "site": p.site.as_str(), "dn": p.dn, "role": p.role.as_str(),
            });
            writeln!(out, "{line}")?;
        }
        played += 1;
        progress.set_position(script.started());
        script.forget_if_done(step.call);
        if script.parties(step.call).is_none() {
            live.remove(&step.call);
        }
    }
    while let Some(ack) = acks.next().await {
        summary.count(ack?);
    }
    if let Some(mut out) = script_out {
        out.flush()?;
    }
    progress.finish_and_clear();
    summary.calls = script.started();
    summary.seconds = start.elapsed().as_secs_f64();
    // The first call starts at once: n calls take n - 1 intervals.
    summary.calls_per_s =
        summary.calls.saturating_sub(1) as f64 / last_start.as_secs_f64().max(1e-9);
    summary.events_per_s = summary.events as f64 / summary.seconds.max(1e-9);
    Ok(summary)
}

/// Sends one TDeleteFromConference and returns its outcome: `ok`, the refusal code, or
/// `no_answer`; sends it again with the same request id while the answer is not final.
async fn delete(
    nats: &Nats,
    site: Site,
    call: Uuid,
    this_dn: &str,
    other_dn: &str,
    resent: &mut u64,
) -> Result<String, CliError> {
    let request = DeleteRequest {
        request: Uuid::now_v7(),
        call,
        this_dn: Dn::new(this_dn)?,
        other_dn: Target::parse(other_dn)?,
        reasons: BTreeMap::from([("origin".to_owned(), "ledger sim".to_owned())]),
        extensions: BTreeMap::new(),
    };
    let payload = bytes::Bytes::from(request.encode());
    let mut outcome = String::new();
    for attempt in 0..DELETE_ATTEMPTS {
        if attempt > 0 {
            *resent += 1;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let answer = tokio::time::timeout(
            Duration::from_secs(5),
            nats.client
                .request(subject::delete_from_conference(site), payload.clone()),
        )
        .await;
        outcome = match answer {
            Ok(Ok(msg)) => match DeleteReply::decode(&msg.payload) {
                Ok(reply) => reply
                    .code()
                    .map_or_else(|| "ok".to_owned(), |c| c.as_str().to_owned()),
                Err(_) => "undecodable_reply".to_owned(),
            },
            _ => "no_answer".to_owned(),
        };
        // Sent again with the same request id, an accepted delete is answered as the first time.
        if !matches!(outcome.as_str(), "no_answer" | "unavailable" | "conflict") {
            break;
        }
    }
    Ok(outcome)
}
