//! A site's live statistics: the core's [`Stats`] fold over `LEDGER_EVENTS` and the site's
//! audit records, kept in KV `LEDGER_STATS` (keys `<site>.now`, `<site>.call.<call>`,
//! `<site>.fig.<start>`) and published on `ledger.stats.<key>` after each change.
//!
//! One instance per site leads, by the lease `stats.<site>` of `LEDGER_PROJECTOR` (the same
//! server-expired lease as the projector's, under its own key), and every write is fenced
//! ([`crate::fence`]) on the revision this instance last knew for the key.
//!
//! ```text
//!   Standby ──lease taken──▶ Recounting ──read to the end at take-over──▶ Live
//!      ▲                          │                                          │
//!      └──── SteppingDown ◀── failure ◀──────────────────────────────────────┤
//!      └──────────────────────────────────────── deposed (lease lost) ───────┘
//! ```
//!
//! A new leader recounts from the start of both streams (the fold is the one a recount uses,
//! so the live figures equal a recount by construction) and writes nothing until it has read
//! as far as the streams reached when it took over: until then its figures could be older than
//! what its predecessor stored. A key whose stored figures already equal its own is not
//! written again. A refused write means another instance wrote the key: if the lease still
//! names this instance, the write was a deposed leader's late one, and the key is read back and
//! written again once this fold has read past what it holds; otherwise this instance stands by.
//! The cost of this simplicity is a take-over time that grows with the streams (about a
//! second per 60,000 events on two cores).

use std::collections::HashMap;
use std::time::Duration;

use async_nats::jetstream::kv::Operation;
use bytes::Bytes;
use futures::StreamExt;
use ledger_core::stats::Stats;
use ledger_replay::stats::StatsReader;
use ledger_schemas::{CallNow, Figures, Message, Site, SiteNow, StatsKey};
use tokio::sync::watch;
use uuid::Uuid;

use crate::fence::{Fence, FenceError, Marker};
use crate::lease::{Keeper, Lease, Standing};
use crate::site::keys;
use crate::{Config, Nats, Stores};

/// How long a live leader waits for new messages before it writes what changed.
const POLL: Duration = Duration::from_millis(200);
/// Writes in flight at once.
const IN_FLIGHT: usize = 32;

/// What a site's statistics projection needs.
#[derive(Debug, Clone)]
pub struct StatsContext {
    /// The connection.
    pub nats: Nats,
    /// The streams and buckets.
    pub stores: Stores,
    /// The site.
    pub site: Site,
    /// This process's id (the lease's value).
    pub instance: Uuid,
    /// Settings (`lease_ttl`, `store.marker_ttl`).
    pub config: Config,
}

/// The key of the statistics lease of `site` in `LEDGER_PROJECTOR`.
pub fn stats_lease_key(site: Site) -> String {
    format!("stats.{site}")
}

enum Role {
    Standby,
    Leading(Box<Lease>),
    SteppingDown,
}

enum Ended {
    Stopped,
    Deposed,
    Failed(String),
}

/// Runs `site`'s statistics projection until `shutdown`.
pub async fn run(ctx: StatsContext, mut shutdown: watch::Receiver<bool>) {
    let site = ctx.site;
    let fence = Fence::new(ctx.nats.js.clone(), &ctx.stores.projector);
    let mut role = Role::Standby;
    loop {
        role = match role {
            Role::Standby => match Lease::acquire_key(
                &ctx.stores.projector,
                &fence,
                stats_lease_key(site),
                site,
                ctx.instance,
                ctx.config.lease_ttl,
                &mut shutdown,
            )
            .await
            {
                Ok(Some(lease)) => Role::Leading(Box::new(lease)),
                Ok(None) => return,
                Err(e) => {
                    tracing::error!(%site, error = %e, "cannot take the statistics lease; retrying");
                    Role::SteppingDown
                }
            },
            Role::Leading(lease) => match lead(&ctx, *lease, &mut shutdown).await {
                Ended::Stopped => return,
                Ended::Deposed => {
                    tracing::warn!(%site, "no longer the statistics leader: writing nothing more");
                    Role::Standby
                }
                Ended::Failed(e) => {
                    tracing::error!(%site, error = %e, "statistics projection failed; stepping down");
                    Role::SteppingDown
                }
            },
            Role::SteppingDown => tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => Role::Standby,
                _ = shutdown.changed() => return,
            },
        };
    }
}

/// What a key holds, as this instance knows it.
#[derive(Debug, Clone, Default)]
struct Held {
    revision: u64,
    /// The value (`None`: deleted, or never written).
    value: Option<Bytes>,
    /// The `LEDGER_EVENTS` and `LEDGER_AUDIT` sequences it reflects.
    at: (u64, u64),
}

async fn lead(ctx: &StatsContext, lease: Lease, shutdown: &mut watch::Receiver<bool>) -> Ended {
    let site = ctx.site;
    let keeper = Keeper::start(lease);
    let standing = keeper.standing();
    tracing::info!(%site, "taking over this site's statistics: recounting");
    let prefix = format!("{site}.>");
    let mut held: HashMap<StatsKey, Held> =
        match keys::latest(&ctx.nats.client, &ctx.stores.stats, &prefix).await {
            Ok(found) => found
                .into_iter()
                .filter_map(|k| {
                    let key = StatsKey::parse(&k.key).ok()?;
                    Some((key, held_of(key, k)))
                })
                .collect(),
            Err(e) => return Ended::Failed(format!("cannot read {prefix}: {e}")),
        };
    let mut reader = StatsReader::new(
        ctx.stores.events.clone(),
        ctx.stores.audit.clone(),
        Some(site),
    );
    let writer = Fence::new(ctx.nats.js.clone(), &ctx.stores.stats);
    // No change is remembered while recounting (it would hold a key per call of the history);
    // once recounted, every key of the site is checked once.
    let mut stats = Stats::new();
    let mut live = false;
    loop {
        if *shutdown.borrow() {
            keeper.release().await;
            return Ended::Stopped;
        }
        if !standing.borrow().may_write() {
            return Ended::Deposed;
        }
        // Waits up to POLL for new events once everything was read.
        if let Err(e) = reader.read_page(&mut stats, POLL).await {
            return Ended::Failed(e.to_string());
        }
        if live || reader.caught_up() {
            if !live {
                live = true;
                let (next_event, _) = reader.position();
                tracing::info!(%site, events = next_event - 1, "statistics recounted; live");
                stats.track_changes();
                let (seq, _) = stats.last_read();
                let mut keys: Vec<(StatsKey, (u64, u64))> = stats
                    .slots(site)
                    .map(|start| (StatsKey::Figures(site, start), (seq, 0)))
                    .collect();
                keys.push((StatsKey::Now(site), (seq, 0)));
                keys.extend(
                    stats
                        .calls_in_progress(site)
                        .map(|c| (StatsKey::Call(site, c), (seq, 0))),
                );
                // Calls stored as in progress that may have ended meanwhile.
                keys.extend(held.iter().filter_map(|(k, h)| {
                    let stored = CallNow::decode(h.value.as_deref()?).ok()?;
                    matches!(k, StatsKey::Call(..)).then_some((*k, (stored.seq, stored.ts)))
                }));
                stats.restore_changes(keys);
            }
            let ended = write(ctx, &writer, &standing, &mut stats, &mut held).await;
            if let Some(ended) = ended {
                return ended;
            }
        }
    }
}

fn held_of(key: StatsKey, k: keys::StoredKey) -> Held {
    let deleted = k.operation != Operation::Put;
    let at = if deleted {
        (k.marker_seq.unwrap_or(0), 0)
    } else {
        read_at(key, &k.value)
    };
    Held {
        revision: k.revision,
        value: (!deleted).then_some(k.value),
        at,
    }
}

/// The sequences of both streams a value stored under `key` reflects.
fn read_at(key: StatsKey, value: &[u8]) -> (u64, u64) {
    let at = match key {
        StatsKey::Figures(..) => Figures::decode(value).map(|f| (f.seq, f.audit_seq)),
        StatsKey::Now(_) => SiteNow::decode(value).map(|n| (n.seq, 0)),
        StatsKey::Call(..) => CallNow::decode(value).map(|c| (c.seq, 0)),
    };
    at.unwrap_or((0, 0))
}

/// One fenced write: a value to store and publish, or a call's key to delete (publishing the
/// call's last state).
enum Op {
    Put(Bytes),
    Delete { seq: u64, last: Bytes },
}

/// What became of one write.
enum Outcome {
    Written(u64),
    /// Another instance wrote the key.
    Refused,
    /// The lease ran out before the write was sent: nothing was written.
    Deposed,
    Unavailable(FenceError),
}

/// Writes every changed key of the site; `Some` when leading ended.
async fn write(
    ctx: &StatsContext,
    fence: &Fence,
    standing: &watch::Receiver<Standing>,
    stats: &mut Stats,
    held: &mut HashMap<StatsKey, Held>,
) -> Option<Ended> {
    let site = ctx.site;
    let read_to = stats.last_read();
    let mut ops = Vec::new();
    let mut deferred = Vec::new();
    for (key, (seq, ts)) in stats.take_changes() {
        if key.site() != site {
            continue;
        }
        let known = held.get(&key).cloned().unwrap_or_default();
        // What another instance stored past what this fold has read waits until it has.
        if known.at.0 > read_to.0 || known.at.1 > read_to.1 {
            deferred.push((key, (seq, ts)));
            continue;
        }
        let op = match key {
            StatsKey::Figures(s, start) => {
                let Some(f) = stats.slot_figures(s, start) else {
                    continue;
                };
                let same = known
                    .value
                    .as_deref()
                    .and_then(|v| Figures::decode(v).ok())
                    .is_some_and(|k| k.counts == f.counts);
                if same {
                    continue;
                }
                Op::Put(f.encode().into())
            }
            StatsKey::Now(s) => Op::Put(stats.site_now(s).encode().into()),
            StatsKey::Call(s, call) => {
                let mut now = stats.call_now(s, call);
                if now.ended {
                    if known.value.is_none() {
                        continue;
                    }
                    now.seq = now.seq.max(seq);
                    now.ts = now.ts.max(ts);
                    Op::Delete {
                        seq: now.seq,
                        last: now.encode().into(),
                    }
                } else {
                    Op::Put(now.encode().into())
                }
            }
        };
        ops.push((key, known.revision, op, (seq, ts)));
    }
    stats.restore_changes(deferred);
    if ops.is_empty() {
        return None;
    }
    let marker_ttl = ctx.config.store.marker_ttl;
    let mut results = futures::stream::iter(ops.into_iter().map(|(key, expected, op, at)| {
        let fence = fence.clone();
        let standing = standing.clone();
        async move {
            // Checked before each write: a lease that ran out mid-batch stops the rest.
            if !standing.borrow().may_write() {
                return (key, op, at, Outcome::Deposed);
            }
            let name = key.key();
            let result = match &op {
                Op::Put(v) => fence.put(&name, v.clone(), expected, None).await,
                Op::Delete { seq, .. } => {
                    let marker = Marker {
                        ttl: marker_ttl,
                        seq: Some(*seq),
                        purge: false,
                    };
                    fence.delete(&name, expected, marker).await
                }
            };
            let outcome = match result {
                Ok(revision) => Outcome::Written(revision),
                Err(FenceError::Refused { .. }) => Outcome::Refused,
                Err(e) => Outcome::Unavailable(e),
            };
            (key, op, at, outcome)
        }
    }))
    .buffer_unordered(IN_FLIGHT);
    let mut refused_keys = Vec::new();
    let mut deposed = false;
    let mut failed = None;
    while let Some((key, op, at, outcome)) = results.next().await {
        match outcome {
            Outcome::Written(revision) => {
                let published = match op {
                    Op::Put(v) => {
                        held.insert(
                            key,
                            Held {
                                revision,
                                at: read_at(key, &v),
                                value: Some(v.clone()),
                            },
                        );
                        v
                    }
                    Op::Delete { last, .. } => {
                        // The call's key is never written again: nothing to remember.
                        held.remove(&key);
                        last
                    }
                };
                // Published only while this instance may still write: a late publish could
                // follow a successor's newer one.
                if !standing.borrow().may_write() {
                    deposed = true;
                    continue;
                }
                if let Err(e) = ctx.nats.client.publish(key.subject(), published).await {
                    tracing::warn!(%site, error = %e, "could not publish a statistics change");
                }
            }
            Outcome::Refused => refused_keys.push((key, at)),
            Outcome::Deposed => deposed = true,
            Outcome::Unavailable(e) => failed = Some(e.to_string()),
        }
    }
    drop(results);
    if deposed {
        return Some(Ended::Deposed);
    }
    if let Some(e) = failed {
        return Some(Ended::Failed(e));
    }
    if refused_keys.is_empty() {
        None
    } else {
        refused(ctx, stats, held, refused_keys).await
    }
}

/// Another instance wrote these keys: a deposed leader's late writes while the lease names
/// this instance (read the keys back and write them again once this fold has read past what
/// they hold), or a live competitor's.
async fn refused(
    ctx: &StatsContext,
    stats: &mut Stats,
    held: &mut HashMap<StatsKey, Held>,
    refused_keys: Vec<(StatsKey, (u64, u64))>,
) -> Option<Ended> {
    let site = ctx.site;
    let ours = Lease::names_key(
        &ctx.stores.projector,
        &stats_lease_key(site),
        site,
        ctx.instance,
    )
    .await
    .unwrap_or(false);
    if !ours {
        return Some(Ended::Deposed);
    }
    for (key, at) in refused_keys {
        match keys::latest_one(&ctx.stores.stats, &key.key()).await {
            Ok(found) => {
                held.insert(key, found.map(|k| held_of(key, k)).unwrap_or_default());
                tracing::warn!(%site, key = %key.key(), "a deposed leader's late write; writing the key again");
                stats.restore_changes([(key, at)]);
            }
            Err(e) => return Some(Ended::Failed(e.to_string())),
        }
    }
    None
}
