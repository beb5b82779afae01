//! Subscriptions to party events: decoded events with their stream sequence and the parties
//! after them in a view, as they are stored.
//!
//! - **Ephemeral**: an ordered consumer of this client's own; nothing is left on the server once
//!   the subscription is closed ([`Subscription::close`]; a dropped one is removed by the server
//!   after half a minute of inactivity).
//! - **Durable**: a named consumer that the caller acknowledges ([`Observed::ack`]) once it has
//!   handled an event; after a restart it resumes after the last acknowledged one. At least once:
//!   an event handled but not yet acknowledged when the process died is delivered again.
//!
//! **Views.** Every event of a call is folded (the filters choose what is yielded, not what is
//! folded), so the parties after an event are the whole view. A call first met after its start is
//! read back from its first event before its first event is yielded.
//!
//! **Bounds.** Events are pulled in batches ([`Options::batch`]): a subscriber slower than the
//! stream leaves the rest on the server (it waits; nothing is dropped). Calls in progress are held
//! in memory, with the last [`Options::ended_kept`] ended calls.

use std::collections::HashMap;
use std::time::Duration;

use async_nats::jetstream::{
    self,
    consumer::{AckPolicy, DeliverPolicy, pull},
};
use futures::{Stream, StreamExt};
use ledger_core::{Fold, Ingested, View, global_lct_parties};
use ledger_schemas::{Dn, EventBody, EventKind, EventSubject, LctParty, PartyEvent, Site, subject};
use uuid::Uuid;

use crate::fold::{Viewpoint, party_json};
use crate::read::{History, ReadError};

/// Metadata key marking a durable consumer as a ledger subscription (its value describes it).
pub const SUBSCRIPTION_METADATA: &str = "ledger-subscription";

/// How far before a start time the consumer starts: events are selected by their `ts`, which a
/// producer sets; the server orders by the time it stored them.
const TIME_MARGIN_US: u64 = 5 * 60 * 1_000_000;

/// Where a subscription starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Only events stored after it opens.
    New,
    /// From the first stored event.
    Beginning,
    /// From this stream sequence.
    Seq(u64),
    /// From the first event whose `ts` is at or after this time (microseconds since the epoch).
    Time(u64),
}

/// A DN to follow: in any site, or at one site (`dn@site`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnFilter {
    /// A DN wherever it is.
    Dn(Dn),
    /// A DN at one site.
    DnAt(Dn, Site),
}

impl DnFilter {
    /// Parses `dn` or `dn@site`.
    ///
    /// # Errors
    ///
    /// When the DN or site breaks the naming rules.
    pub fn parse(s: &str) -> Result<Self, ledger_schemas::NameError> {
        match s.rsplit_once('@') {
            Some((dn, site)) => Ok(Self::DnAt(Dn::new(dn)?, Site::new(site)?)),
            None => Ok(Self::Dn(Dn::new(s)?)),
        }
    }

    /// Whether a party with `dn` located at `site` is this one.
    pub fn matches(&self, dn: Dn, site: Site) -> bool {
        match self {
            Self::Dn(d) => *d == dn,
            Self::DnAt(d, s) => *d == dn && *s == site,
        }
    }
}

/// Which events a subscription yields.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only this call's.
    pub call: Option<Uuid>,
    /// Only events of this kind (the parties are still the whole view after each).
    pub kind: Option<EventKind>,
    /// Only the events of calls this DN takes part in, from its join on.
    pub dn: Option<DnFilter>,
}

/// Ephemeral or durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Durability {
    /// An ordered consumer of this client's own.
    Ephemeral,
    /// A named durable consumer, resumed where it was acknowledged.
    Durable(String),
}

/// Settings of a subscription.
#[derive(Debug, Clone)]
pub struct Options {
    /// What to yield.
    pub filter: Filter,
    /// Whose view the parties are in.
    pub view: Viewpoint,
    /// Where to start (a durable subscription that exists resumes where it was instead).
    pub start: Start,
    /// Ephemeral or durable.
    pub durability: Durability,
    /// Events pulled at once. Default 256.
    pub batch: usize,
    /// Ended calls remembered. Default 10,000.
    pub ended_kept: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            filter: Filter::default(),
            view: Viewpoint::Global,
            start: Start::New,
            durability: Durability::Ephemeral,
            batch: 256,
            ended_kept: 10_000,
        }
    }
}

/// Why a subscription failed.
#[derive(Debug, thiserror::Error)]
pub enum SubscribeError {
    /// NATS or the stream could not be reached.
    #[error("subscription: {what}: {source}")]
    Unavailable {
        /// What was being done.
        what: &'static str,
        /// The cause.
        #[source]
        source: async_nats::Error,
    },
    /// A call could not be read back.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// A durable subscription of that name exists with other filters.
    #[error("subscription {0:?} exists with another filter; remove it first")]
    Mismatch(String),
}

fn unavailable(what: &'static str) -> impl FnOnce(async_nats::Error) -> SubscribeError {
    move |source| SubscribeError::Unavailable { what, source }
}

/// One event as a subscription yields it.
#[derive(Debug)]
pub struct Observed {
    /// Its stream sequence.
    pub seq: u64,
    /// The event.
    pub event: PartyEvent,
    /// Why the fold skipped it (an anomaly), when it did.
    pub skipped: Option<String>,
    /// The present non-supervisor parties in the view after it.
    pub parties: Vec<LctParty>,
    /// The DN and location of the party it is about, when the call knows it.
    pub who: Option<(Dn, Site)>,
    ack: Option<jetstream::Message>,
}

impl Observed {
    /// Acknowledges a durable subscription's event: it is not delivered again. Nothing to do for
    /// an ephemeral one.
    ///
    /// # Errors
    ///
    /// When NATS cannot be reached.
    pub async fn ack(&self) -> Result<(), SubscribeError> {
        if let Some(msg) = &self.ack {
            msg.ack().await.map_err(unavailable("acknowledging"))?;
        }
        Ok(())
    }

    /// The event as a line of `ledger tail`: the `ledger replay` line plus `call`.
    pub fn to_json(&self) -> serde_json::Value {
        let e = &self.event;
        let mut line = serde_json::json!({
            "seq": self.seq,
            "call": e.call.to_string(),
            "ts": e.ts,
            "site": e.site.as_str(),
            "kind": e.kind().as_str(),
            "party": e.party.to_string(),
        });
        match &e.body {
            EventBody::Joined(j) => {
                line["dn"] = j.dn.as_str().into();
                line["role"] = j.role.as_str().into();
            }
            EventBody::Left { .. } => {}
            EventBody::Deleted { by, request } => {
                line["by"] = serde_json::json!({
                    "party": by.party.to_string(), "dn": by.dn.as_str(), "site": by.site.as_str(),
                });
                line["request"] = request.to_string().into();
            }
        }
        if let Some(why) = &self.skipped {
            line["skipped"] = why.as_str().into();
        }
        line["parties"] = self.parties.iter().map(party_json).collect();
        line
    }
}

/// What a subscription has read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Messages read from the stream.
    pub read: u64,
    /// Events yielded.
    pub yielded: u64,
    /// Messages that could not be decoded (skipped).
    pub undecodable: u64,
}

/// What the subscription knows of a call beside its fold.
#[derive(Debug, Default)]
struct Track {
    /// The DN filter's party has joined.
    followed: bool,
}

type Messages =
    std::pin::Pin<Box<dyn Stream<Item = Result<jetstream::Message, async_nats::Error>> + Send>>;

/// A subscription to party events.
pub struct Subscription {
    js: jetstream::Context,
    history: History,
    messages: Messages,
    consumer: String,
    durable: bool,
    fold: Fold<Track>,
    options: Options,
    since_ts: u64,
    pending_at_open: u64,
    counts: Counts,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("consumer", &self.consumer)
            .field("counts", &self.counts)
            .finish_non_exhaustive()
    }
}

fn describe(filter: &Filter) -> String {
    format!(
        "call={} kind={} dn={}",
        filter.call.map_or_else(|| "*".into(), |c| c.to_string()),
        filter.kind.map_or("*", EventKind::as_str),
        match filter.dn {
            None => "*".into(),
            Some(DnFilter::Dn(d)) => d.to_string(),
            Some(DnFilter::DnAt(d, s)) => format!("{d}@{s}"),
        }
    )
}

impl Subscription {
    /// Opens a subscription to `LEDGER_EVENTS` through `js`, reading calls back through
    /// `history`.
    ///
    /// # Errors
    ///
    /// [`SubscribeError`] when the stream cannot be reached, or a durable subscription of that
    /// name exists with another filter.
    pub async fn open(
        js: &jetstream::Context,
        history: &History,
        options: Options,
    ) -> Result<Self, SubscribeError> {
        let stream = js
            .get_stream(subject::EVENTS_STREAM)
            .await
            .map_err(|e| unavailable("finding the event stream")(e.into()))?;
        let filter_subject = options
            .filter
            .call
            .map_or_else(|| subject::EVENTS_SUBJECTS.to_owned(), subject::call_events);
        let (deliver_policy, since_ts) = match options.start {
            Start::New => (DeliverPolicy::New, 0),
            Start::Beginning => (DeliverPolicy::All, 0),
            Start::Seq(seq) => (
                DeliverPolicy::ByStartSequence {
                    start_sequence: seq.max(1),
                },
                0,
            ),
            Start::Time(ts) => {
                let from = ts.saturating_sub(TIME_MARGIN_US);
                let nanos = i128::from(from) * 1000;
                let start_time = time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
                    .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
                (DeliverPolicy::ByStartTime { start_time }, ts)
            }
        };
        let (messages, consumer, durable, pending): (Messages, String, bool, u64) = match &options
            .durability
        {
            Durability::Ephemeral => {
                let name = format!("ledger-sub-{}", Uuid::now_v7().simple());
                let consumer = stream
                    .create_consumer(pull::OrderedConfig {
                        name: Some(name.clone()),
                        filter_subject,
                        deliver_policy,
                        ..Default::default()
                    })
                    .await
                    .map_err(|e| unavailable("creating the subscription's consumer")(e.into()))?;
                let pending = consumer.cached_info().num_pending;
                let stream = consumer
                    .messages()
                    .await
                    .map_err(|e| unavailable("reading events")(e.into()))?
                    .map(|m| m.map_err(async_nats::Error::from));
                (Box::pin(stream), name, false, pending)
            }
            Durability::Durable(name) => {
                let description = describe(&options.filter);
                let consumer = match stream.get_consumer::<pull::Config>(name).await {
                    Ok(mut existing) => {
                        let meta = existing
                            .cached_info()
                            .config
                            .metadata
                            .get(SUBSCRIPTION_METADATA);
                        if meta != Some(&description) {
                            return Err(SubscribeError::Mismatch(name.clone()));
                        }
                        // Events a previous reader took and never acknowledged would come back
                        // only after the acknowledgement wait, after newer ones: start again at
                        // the acknowledged floor instead (consumer reset, nats-server 2.14+).
                        if existing.cached_info().num_ack_pending > 0 {
                            match existing.reset(None).await {
                                Ok(r) => {
                                    tracing::debug!(subscription = %name, seq = r.reset_seq, "resumed at the acknowledged floor")
                                }
                                Err(e) => {
                                    tracing::warn!(subscription = %name, error = %e, "could not move the subscription back to its acknowledged floor (nats-server 2.14+); unacknowledged events come back after 30 s")
                                }
                            }
                        }
                        existing
                    }
                    Err(_) => stream
                        .create_consumer(pull::Config {
                            durable_name: Some(name.clone()),
                            filter_subject,
                            deliver_policy,
                            ack_policy: AckPolicy::Explicit,
                            ack_wait: Duration::from_secs(30),
                            max_ack_pending: i64::try_from(options.batch * 4).unwrap_or(1024),
                            metadata: HashMap::from([(
                                SUBSCRIPTION_METADATA.to_owned(),
                                description,
                            )]),
                            ..Default::default()
                        })
                        .await
                        .map_err(|e| unavailable("creating the durable subscription")(e.into()))?,
                };
                let info = consumer.cached_info();
                let pending = info.num_pending + u64::try_from(info.num_ack_pending).unwrap_or(0);
                let stream = consumer
                    .stream()
                    .max_messages_per_batch(options.batch.max(1))
                    .messages()
                    .await
                    .map_err(|e| unavailable("reading events")(e.into()))?
                    .map(|m| m.map_err(async_nats::Error::from));
                (Box::pin(stream), name.clone(), true, pending)
            }
        };
        Ok(Self {
            js: js.clone(),
            history: history.clone(),
            messages,
            consumer,
            durable,
            fold: Fold::new(),
            options,
            since_ts,
            pending_at_open: pending,
            counts: Counts::default(),
        })
    }

    /// What has been read so far.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// Whether every message stored when the subscription opened has been read.
    pub fn caught_up(&self) -> bool {
        self.counts.read >= self.pending_at_open
    }

    /// The next event that matches, as it is stored; `None` when the feed ended.
    pub async fn next(&mut self) -> Option<Result<Observed, SubscribeError>> {
        self.next_until_idle(None).await
    }

    /// The next event that matches; with `idle`, `None` once every message stored when the
    /// subscription opened has been read and nothing more came within `idle`.
    pub async fn next_until_idle(
        &mut self,
        idle: Option<Duration>,
    ) -> Option<Result<Observed, SubscribeError>> {
        loop {
            let next = match idle {
                // Reading the stream is cancel-safe: a message not taken stays for the next call.
                Some(idle) if self.caught_up() => tokio::time::timeout(idle, self.messages.next())
                    .await
                    .ok()?,
                _ => self.messages.next().await,
            };
            let msg = match next? {
                Ok(msg) => msg,
                Err(e) => return Some(Err(unavailable("reading events")(e))),
            };
            self.counts.read += 1;
            match self.observe(msg).await {
                Ok(Some(observed)) => {
                    self.counts.yielded += 1;
                    return Some(Ok(observed));
                }
                Ok(None) => {}
                Err(e) => return Some(Err(e)),
            }
        }
    }

    /// Folds one message; returns it when it matches. A durable subscription's message that does
    /// not match is acknowledged here.
    async fn observe(
        &mut self,
        msg: jetstream::Message,
    ) -> Result<Option<Observed>, SubscribeError> {
        let seq = match msg.info() {
            Ok(info) => info.stream_sequence,
            Err(_) => return self.pass(msg).await,
        };
        let Ok(parsed) = EventSubject::parse(msg.subject.as_str()) else {
            self.counts.undecodable += 1;
            return self.pass(msg).await;
        };
        if self.fold.call(parsed.call).is_none() && seq > 1 {
            // First met here: read the call back from its start, not yielded.
            for m in self
                .history
                .read_call(parsed.call, 1, Some(seq - 1))
                .await?
            {
                self.fold.ingest(m.seq, &m.subject, &m.payload);
                self.follow(parsed.call);
            }
        }
        let outcome = self.fold.ingest(seq, msg.subject.as_str(), &msg.payload);
        self.follow(parsed.call);
        self.fold.evict_ended(self.options.ended_kept, |_| true);
        let skipped = match outcome {
            Ingested::Applied { .. } => None,
            Ingested::Anomaly(_, skip) => Some(skip.to_string()),
            Ingested::Redelivered => None,
            Ingested::Undecodable(_) => {
                self.counts.undecodable += 1;
                return self.pass(msg).await;
            }
        };
        let Ok(event) = PartyEvent::decode_on(msg.subject.as_str(), &msg.payload) else {
            return self.pass(msg).await;
        };
        let filter = self.options.filter;
        let followed = self
            .fold
            .get_mut(event.call)
            .is_none_or(|(_, track)| track.followed);
        let wanted = filter.call.is_none_or(|c| c == event.call)
            && filter.kind.is_none_or(|k| k == event.kind())
            && (filter.dn.is_none() || followed)
            && event.ts >= self.since_ts;
        if !wanted {
            return self.pass(msg).await;
        }
        let call = self.fold.call(event.call);
        let parties = call.map_or_else(Vec::new, |c| match self.options.view {
            Viewpoint::Global => global_lct_parties(c),
            Viewpoint::Site { site, propagates } => View::new(c, site, propagates).lct_parties(),
        });
        let who = call
            .and_then(|c| c.party(event.party))
            .map(|p| (p.dn, p.location));
        Ok(Some(Observed {
            seq,
            event,
            skipped,
            parties,
            who,
            ack: self.durable.then_some(msg),
        }))
    }

    /// Marks a call followed once the DN filter's party has joined it.
    fn follow(&mut self, call: Uuid) {
        let Some(dn) = self.options.filter.dn else {
            return;
        };
        if let Some((c, track)) = self.fold.get_mut(call)
            && !track.followed
        {
            track.followed = c.parties().iter().any(|p| dn.matches(p.dn, p.location));
        }
    }

    /// Leaves a message that is not yielded: acknowledged at once when durable.
    async fn pass(&self, msg: jetstream::Message) -> Result<Option<Observed>, SubscribeError> {
        if self.durable {
            msg.ack().await.map_err(unavailable("acknowledging"))?;
        }
        Ok(None)
    }

    /// Closes the subscription: an ephemeral one's consumers are removed from the server; a
    /// durable one stays, to be resumed.
    ///
    /// # Errors
    ///
    /// When the consumers cannot be removed.
    pub async fn close(self) -> Result<(), SubscribeError> {
        if self.durable {
            return Ok(());
        }
        drop(self.messages);
        let stream = self
            .js
            .get_stream(subject::EVENTS_STREAM)
            .await
            .map_err(|e| unavailable("finding the event stream")(e.into()))?;
        // The ordered consumer is named after ours, `_<n>` added each time it was recreated.
        let mut names = stream.consumer_names();
        let mut ours = Vec::new();
        while let Some(name) = names.next().await {
            let name = name.map_err(|e| unavailable("listing consumers")(e.into()))?;
            if name.starts_with(&self.consumer) {
                ours.push(name);
            }
        }
        for name in ours {
            let _ = stream.delete_consumer(&name).await;
        }
        Ok(())
    }
}

/// A durable subscription as the server holds it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DurableInfo {
    /// Its name.
    pub name: String,
    /// Its filter, as described when it was created.
    pub filter: String,
    /// The stream sequence of the last event it acknowledged.
    pub acked_seq: u64,
    /// Events stored after it that it has not read.
    pub lag: u64,
    /// Events delivered and not acknowledged yet.
    pub unacked: u64,
}

/// Every durable subscription on the event stream.
///
/// # Errors
///
/// When the stream cannot be reached.
pub async fn durables(js: &jetstream::Context) -> Result<Vec<DurableInfo>, SubscribeError> {
    let stream = js
        .get_stream(subject::EVENTS_STREAM)
        .await
        .map_err(|e| unavailable("finding the event stream")(e.into()))?;
    let mut consumers = stream.consumers();
    let mut out = Vec::new();
    while let Some(info) = consumers.next().await {
        let info = info.map_err(|e| unavailable("listing consumers")(e.into()))?;
        let Some(filter) = info.config.metadata.get(SUBSCRIPTION_METADATA) else {
            continue;
        };
        out.push(DurableInfo {
            name: info.name.clone(),
            filter: filter.clone(),
            acked_seq: info.ack_floor.stream_sequence,
            lag: info.num_pending,
            unacked: u64::try_from(info.num_ack_pending).unwrap_or(0),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Removes the durable subscription `name`.
///
/// # Errors
///
/// When it does not exist, is not a subscription, or NATS cannot be reached.
pub async fn remove_durable(js: &jetstream::Context, name: &str) -> Result<(), SubscribeError> {
    let stream = js
        .get_stream(subject::EVENTS_STREAM)
        .await
        .map_err(|e| unavailable("finding the event stream")(e.into()))?;
    let info = stream
        .consumer_info(name)
        .await
        .map_err(|e| unavailable("finding the subscription")(e.into()))?;
    if !info.config.metadata.contains_key(SUBSCRIPTION_METADATA) {
        return Err(SubscribeError::Mismatch(name.to_owned()));
    }
    stream
        .delete_consumer(name)
        .await
        .map_err(|e| unavailable("removing the subscription")(e.into()))?;
    Ok(())
}
