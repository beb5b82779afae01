//! Take-over: the consumer repositioned at the acknowledged floor, the calls in progress re-folded
//! from the index up to it, and the lists the previous leader left in KV read back.

use std::collections::HashMap;
use std::time::Duration;

use async_nats::jetstream::{
    self,
    consumer::{AckPolicy, DeliverPolicy, ReplayPolicy, pull, push},
    context::ConsumerInfoErrorKind,
};
use futures::{StreamExt, TryStreamExt};
use ledger_replay::read_call;
use ledger_schemas::{LctList, Message, Site, subject};
use uuid::Uuid;

use super::index::{first_seq, indexed_calls};
use super::{ProjectorError, SiteContext, SiteState, consumer_name, unavailable};
use crate::Stores;

/// Calls re-folded at once.
const PARALLEL: usize = 16;
/// How long to wait for the next stored list before calling KV unavailable.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Where a leader starts.
pub(super) struct TakeOver {
    pub(super) consumer: jetstream::consumer::Consumer<pull::Config>,
    /// The acknowledged floor: every event up to it is handled.
    pub(super) floor: u64,
    /// Whether another instance read this consumer before.
    pub(super) again: bool,
    /// The stream's last sequence now: no earlier instance can have read beyond it.
    pub(super) horizon: u64,
}

/// Positions the site's durable consumer right after its acknowledged floor.
///
/// A consumer left by a crashed instance has events delivered to it and not acknowledged. The
/// server would redeliver those only after the acknowledgement wait, and deliver newer events
/// first; with acknowledge-all, acknowledging a newer event would then acknowledge the older ones
/// unhandled. So the leader recreates the consumer at the floor: delivery resumes in stream order
/// with nothing skipped.
pub(super) async fn take_over_consumer(ctx: &SiteContext) -> Result<TakeOver, ProjectorError> {
    let name = consumer_name(ctx.site);
    let events = &ctx.stores.events;
    let (floor, again) = match events.consumer_info(&name).await {
        Ok(info) => {
            events
                .delete_consumer(&name)
                .await
                .map_err(|e| unavailable("repositioning the projector's consumer")(e.into()))?;
            (info.ack_floor.stream_sequence, true)
        }
        Err(e) if e.kind() == ConsumerInfoErrorKind::NotFound => (0, false),
        Err(e) => return Err(unavailable("reading the projector's consumer")(e.into())),
    };
    let horizon = events
        .get_info()
        .await
        .map_err(|e| unavailable("reading the event stream's position")(e.into()))?
        .state
        .last_sequence;
    let deliver_policy = match floor {
        0 => DeliverPolicy::All,
        floor => DeliverPolicy::ByStartSequence {
            start_sequence: floor + 1,
        },
    };
    let consumer = events
        .create_consumer(pull::Config {
            durable_name: Some(name),
            filter_subject: subject::EVENTS_SUBJECTS.to_owned(),
            ack_policy: AckPolicy::All,
            deliver_policy,
            max_ack_pending: ctx.config.max_ack_pending,
            ack_wait: Duration::from_secs(30),
            ..Default::default()
        })
        .await
        .map_err(|e| unavailable("creating the projector's consumer")(e.into()))?;
    Ok(TakeOver {
        consumer,
        floor,
        again,
        horizon,
    })
}

/// Restores `state` at take-over.
///
/// - Calls in the index: each call's stored events from its first sequence up to `floor` (the
///   consumer's acknowledged floor; later events are delivered again), with the list last
///   written to KV.
/// - For a state that keeps lists, every other list of the site in KV is adopted: the previous
///   leader wrote it from events after the floor, before recording the call in the index.
///
/// Returns how many lists of the site were found in KV.
pub(crate) async fn recover(
    client: &async_nats::Client,
    stores: &Stores,
    state: &mut SiteState,
    floor: u64,
) -> Result<usize, ProjectorError> {
    let site = state.site();
    let mut lists = if state.keeps_lists() {
        site_lists(client, stores, site).await?
    } else {
        HashMap::new()
    };
    let found = lists.len();
    // With nothing acknowledged, the consumer delivers the whole stream from the start.
    let indexed = if floor == 0 {
        Vec::new()
    } else {
        indexed_calls(&stores.projector, site)
            .await
            .map_err(unavailable("listing active calls"))?
    };
    if !indexed.is_empty() {
        tracing::info!(%site, calls = indexed.len(), floor, "re-folding the calls in progress");
    }
    let loaded: Vec<_> = futures::stream::iter(indexed)
        .map(|(call, key)| load(client, stores, call, key, floor))
        .buffer_unordered(PARALLEL)
        .try_collect()
        .await?;
    for (call, first_seq, messages) in loaded.into_iter().flatten() {
        let published = lists.remove(&call);
        state.recover(
            call,
            first_seq,
            messages.into_iter().map(|m| (m.seq, m.subject, m.payload)),
            published,
        );
    }
    if !lists.is_empty() {
        tracing::info!(%site, calls = lists.len(), "adopting lists written after the acknowledged floor");
        state.adopt(lists.into_values());
    }
    Ok(found)
}

/// Every list of `site` in KV `LEDGER_LCT`, by call: the last value of each of its keys, read
/// with one ordered consumer. Deleted keys and undecodable values are left out.
async fn site_lists(
    client: &async_nats::Client,
    stores: &Stores,
    site: Site,
) -> Result<HashMap<Uuid, LctList>, ProjectorError> {
    let failed = |e: async_nats::Error| unavailable("reading LCTParty lists")(e);
    let consumer = stores
        .lct
        .stream
        .create_consumer(push::OrderedConfig {
            deliver_subject: client.new_inbox(),
            filter_subject: format!("{}{site}.>", stores.lct.prefix),
            deliver_policy: DeliverPolicy::LastPerSubject,
            replay_policy: ReplayPolicy::Instant,
            ..Default::default()
        })
        .await
        .map_err(|e| failed(e.into()))?;
    let mut lists = HashMap::new();
    if consumer.cached_info().num_pending == 0 {
        return Ok(lists);
    }
    let mut messages = consumer.messages().await.map_err(|e| failed(e.into()))?;
    loop {
        let msg = match tokio::time::timeout(TIMEOUT, messages.next()).await {
            Ok(Some(msg)) => msg.map_err(|e| failed(e.into()))?,
            Ok(None) => return Err(failed("the connection closed".into())),
            Err(_) => return Err(failed(format!("no list within {TIMEOUT:?}").into())),
        };
        let info = msg.info().map_err(failed)?;
        let pending = info.pending;
        let deleted = msg
            .headers
            .as_ref()
            .and_then(|h| h.get("KV-Operation"))
            .is_some_and(|op| matches!(op.as_str(), "DEL" | "PURGE"));
        if !deleted {
            match LctList::decode(&msg.payload) {
                Ok(list) => {
                    lists.insert(list.call, list);
                }
                Err(e) => {
                    tracing::warn!(%site, subject = %msg.subject, error = %e, "ignoring an undecodable stored list")
                }
            }
        }
        if pending == 0 {
            return Ok(lists);
        }
    }
}

type Loaded = (Uuid, u64, Vec<ledger_replay::StoredMessage>);

async fn load(
    client: &async_nats::Client,
    stores: &Stores,
    call: Uuid,
    key: String,
    floor: u64,
) -> Result<Option<Loaded>, ProjectorError> {
    let first = first_seq(&stores.projector, &key)
        .await
        .map_err(unavailable("reading the index"))?;
    let Some(first) = first else {
        return Ok(None);
    };
    let messages = read_call(client, call, first, Some(floor)).await?;
    Ok(Some((call, first, messages)))
}
