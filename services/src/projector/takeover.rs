//! Taking over a site's projection, in this order:
//!
//! 1. **Fence the floor.** The floor key is written back at its revision: from then on a
//!    replaced leader's checkpoint is refused, so the floor only moves by this leader.
//! 2. **Note the horizon**, the stream's last sequence: no earlier leader can have read beyond
//!    it before this take-over.
//! 3. **Record the option changes** made while no leader recorded them, and apply them.
//! 4. **Re-fold the calls in progress** from the index up to the floor ([`crate::site`]).
//! 5. **Read back what the site's list keys hold**, with their revisions: the previous leader
//!    may have written lists from events after the floor; those are compared with, and while the
//!    fold is behind the horizon no list is written ([`Lists::hold_until`]).
//! 6. **Read the stream after the floor** with a consumer of this instance's own
//!    ([`EventFeed`]): a replaced leader's reads can never take events from it.

use std::collections::HashMap;
use std::time::Duration;

use async_nats::jetstream::kv::Operation;
use ledger_replay::EventFeed;
use ledger_schemas::{LctList, Message as _, subject};
use uuid::Uuid;

use super::feed::Feed;
use super::leader::Leader;
use super::lists::{Found, Lists};
use super::option_log::{OptionLog, Recorded};
use super::writer::{Writer, Written};
use super::{ProjectorError, SiteContext};
use crate::lease::{Keeper, Lease, LeaseError};
use crate::site::floor::{Floor, legacy_consumer, read_floor};
use crate::site::keys::{StoredKey, latest};
use crate::site::{SiteError, recover};

/// Attempts to fence the floor against writes landing meanwhile.
const ATTEMPTS: usize = 3;

/// Takes over `ctx`'s site holding `lease`; on failure the lease is released.
///
/// # Errors
///
/// [`ProjectorError`] when NATS fails or the lease was lost meanwhile.
pub(super) async fn take_over(ctx: &SiteContext, lease: Lease) -> Result<Leader, ProjectorError> {
    let instance = lease.instance();
    let keeper = Keeper::start(lease);
    let writer = Writer::new(ctx, keeper.standing());
    match prepare(ctx, &writer, instance).await {
        Ok(ready) => Ok(Leader::new(ctx, instance, keeper, writer, ready)),
        Err(e) => {
            keeper.release().await;
            Err(e)
        }
    }
}

/// Everything a leader starts from.
pub(super) struct Ready {
    pub(super) lists: Lists,
    pub(super) floor: Floor,
    pub(super) options: OptionLog,
    pub(super) feed: Feed,
}

async fn prepare(
    ctx: &SiteContext,
    writer: &Writer,
    instance: Uuid,
) -> Result<Ready, ProjectorError> {
    let site = ctx.site;
    let (floor, led_before) = fence_floor(ctx, writer, instance).await?;
    let mut stream = ctx.stores.events.clone();
    let events = stream.info().await.map_err(|e| {
        ProjectorError::unavailable("reading the event stream's position")(e.into())
    })?;
    let horizon = events.state.last_sequence;

    let (mut options, backlog) = OptionLog::start(&ctx.nats, &ctx.stores, site).await?;
    let mut lists = Lists::new(site, ctx.config.ended_calls_kept);
    for change in &backlog {
        if options.record(change).await? != Recorded::Ignored {
            lists.count_option_recorded();
        }
    }

    let recovered = recover(
        &ctx.nats,
        &ctx.stores,
        site,
        lists.fold_mut(),
        floor,
        |entry, keys| Lists::restored(keys, entry.revision),
    )
    .await?;
    lists.count_recovered(recovered);
    let stored = stored_lists(ctx, floor.seq).await?;
    let over_stored = !stored.is_empty();
    lists.found_stored(stored);
    // After another instance, or over lists already stored (a rebuild from the start).
    if led_before || over_stored {
        lists.hold_until(horizon);
    }

    let events = EventFeed::start(
        &ctx.nats.client,
        &stream,
        floor.seq + 1,
        ctx.config.read_ahead,
    )
    .await
    .map_err(ProjectorError::unavailable("reading events"))?;
    if events.pending_at_start() == 0 {
        lists.caught_up();
    }
    let feed = Feed::new(events, ctx.config.batch_size());
    Ok(Ready {
        lists,
        floor,
        options,
        feed,
    })
}

/// Writes the floor back at its revision, so that a replaced leader's next checkpoint is
/// refused; also says whether an instance led the site before. A floor known only from the
/// durable consumer of an earlier version is moved into its key, and that consumer removed.
async fn fence_floor(
    ctx: &SiteContext,
    writer: &Writer,
    instance: Uuid,
) -> Result<(Floor, bool), ProjectorError> {
    let site = ctx.site;
    for _ in 0..ATTEMPTS {
        let floor = read_floor(&ctx.stores, site)
            .await
            .map_err(SiteError::unavailable("reading the floor"))?;
        match writer.write_floor(floor.seq, floor.revision).await? {
            Written::Stored(revision) => {
                if floor.revision == 0 && floor.seq > 0 {
                    tracing::info!(%site, floor = floor.seq, "moved the floor from the durable consumer of an earlier version");
                    if let Err(e) = ctx
                        .stores
                        .events
                        .delete_consumer(&legacy_consumer(site))
                        .await
                    {
                        tracing::warn!(%site, error = %e, "could not remove the earlier version's consumer");
                    }
                }
                let led_before = floor.revision != 0 || floor.seq > 0;
                return Ok((
                    Floor {
                        seq: floor.seq,
                        revision,
                    },
                    led_before,
                ));
            }
            Written::Refused => {
                if !Lease::names(&ctx.stores.projector, site, instance).await? {
                    return Err(LeaseError::Lost { site }.into());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    Err(ProjectorError::unavailable("fencing the floor")(
        "the floor kept changing during the take-over".into(),
    ))
}

/// What the site's list keys hold now, by call; not the markers of lists deleted at or before
/// the floor: those calls' views emptied before anything this leader reads, so whatever it
/// writes for them is newer.
async fn stored_lists(
    ctx: &SiteContext,
    floor: u64,
) -> Result<HashMap<Uuid, Found>, ProjectorError> {
    let keys = latest(
        &ctx.nats.client,
        &ctx.stores.lct,
        &format!("{}.>", ctx.site),
    )
    .await
    .map_err(ProjectorError::unavailable("reading LCTParty lists"))?;
    Ok(keys
        .into_iter()
        .filter(|k| k.operation == Operation::Put || k.marker_seq.is_none_or(|seq| seq > floor))
        .filter_map(|k| {
            let call = k
                .key
                .rsplit('.')
                .next()
                .and_then(subject::parse_uuid_token)?;
            Some((call, found(ctx, call, &k)))
        })
        .collect())
}

/// What one list key holds, as the projector compares with it.
pub(super) fn found(ctx: &SiteContext, call: Uuid, k: &StoredKey) -> Found {
    let list = match k.operation {
        Operation::Put => match LctList::decode(&k.value) {
            Ok(list) => Some(list),
            Err(e) => {
                tracing::warn!(site = %ctx.site, key = %k.key, error = %e, "a stored list does not decode; it will be overwritten");
                None
            }
        },
        Operation::Delete | Operation::Purge => k.marker_seq.map(|seq| LctList {
            call,
            site: ctx.site,
            seq,
            ts: 0,
            parties: Vec::new(),
            supervisors: Vec::new(),
        }),
    };
    Found {
        revision: k.revision,
        list,
    }
}
