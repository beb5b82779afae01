//! Re-folding a site's calls in progress at start: every indexed call from its first event up to
//! the floor, with batched direct gets of the call's subjects. The cost is the events of the
//! calls in progress, not the history.

use futures::{StreamExt, TryStreamExt};
use ledger_core::Fold;
use ledger_replay::StoredMessage;
use ledger_schemas::Site;

use super::SiteError;
use super::floor::Floor;
use super::index::{Indexed, indexed, indexed_as_of};
use crate::{Nats, Stores};

/// Calls read back at once.
const PARALLEL: usize = 16;

/// Restores into `fold` every call `site`'s index holds, as of `floor`, and counts everything up
/// to `floor` as read. `restored` is called with each call's index entry and the holder's data.
/// With a floor of 0 nothing was handled: the index is not read.
///
/// Complete on a replicated deployment too: there the index is read from a replica that has
/// caught up with the floor's revision, and each call's events up to the floor are checked with
/// the stream leader (a follower answering reads may lag). A single replica is always current.
///
/// # Errors
///
/// [`SiteError`] when the index or the stream cannot be read.
pub async fn recover<T: Default>(
    nats: &Nats,
    stores: &Stores,
    site: Site,
    fold: &mut Fold<T>,
    floor: Floor,
    mut restored: impl FnMut(&Indexed, &mut T),
) -> Result<usize, SiteError> {
    fold.resume_at(floor.seq);
    if floor.seq == 0 {
        return Ok(0);
    }
    // Only a replicated stream has followers that may answer while they lag.
    let replicated_index = stores.projector.stream.cached_info().config.num_replicas > 1;
    let replicated_events = stores.events.cached_info().config.num_replicas > 1;
    let calls = if replicated_index {
        indexed_as_of(nats, stores, site, floor).await
    } else {
        indexed(nats, stores, site).await
    }
    .map_err(SiteError::unavailable(
        "reading the index of calls in progress",
    ))?;
    if !calls.is_empty() {
        tracing::info!(%site, calls = calls.len(), floor = floor.seq, "re-folding the calls in progress");
    }
    let loaded: Vec<(Indexed, (Vec<StoredMessage>, usize))> = futures::stream::iter(calls)
        .map(|entry| async move {
            let read = if replicated_events {
                nats.history
                    .read_call_through(entry.call, entry.first_seq, floor.seq)
                    .await
            } else {
                nats.history
                    .read_call(entry.call, entry.first_seq, Some(floor.seq))
                    .await
                    .map(|messages| (messages, 0))
            };
            read.map(|messages| (entry, messages))
        })
        .buffer_unordered(PARALLEL)
        .try_collect()
        .await?;
    let count = loaded.len();
    let from_leader: usize = loaded.iter().map(|(_, (_, n))| n).sum();
    if from_leader > 0 {
        tracing::info!(%site, events = from_leader, "a replica answering direct gets lagged: events read from the stream leader");
    }
    for (entry, (messages, _)) in loaded {
        let data = fold.restore(
            entry.call,
            messages
                .iter()
                .map(|m| (m.seq, m.subject.as_str(), m.payload.as_ref())),
        );
        restored(&entry, data);
    }
    Ok(count)
}
