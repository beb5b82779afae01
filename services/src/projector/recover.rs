//! Take-over: re-folding the calls in progress from the index, up to the acknowledged floor.

use futures::{StreamExt, TryStreamExt};
use ledger_replay::read_call;
use ledger_schemas::subject;
use uuid::Uuid;

use ledger_schemas::Site;

use ledger_schemas::{LctList, Message};

use super::{ProjectorError, SiteState, unavailable};
use crate::Stores;

/// Calls re-folded at once.
const PARALLEL: usize = 16;

/// Restores `state` from the index of active calls: each call's stored events from its first
/// sequence up to `floor` (the consumer's acknowledged floor; later events are redelivered), and
/// the list last written to KV.
pub(crate) async fn recover(
    client: &async_nats::Client,
    stores: &Stores,
    state: &mut SiteState,
    floor: u64,
) -> Result<(), ProjectorError> {
    if floor == 0 {
        // Nothing was acknowledged: the consumer delivers the whole stream from the start.
        return Ok(());
    }
    let site = state.site();
    let prefix = format!("active.{site}.");
    let keys: Vec<String> = stores
        .projector
        .keys()
        .await
        .map_err(|e| unavailable("listing active calls")(e.into()))?
        .try_filter(|k| futures::future::ready(k.starts_with(&prefix)))
        .try_collect()
        .await
        .map_err(|e| unavailable("listing active calls")(e.into()))?;
    if keys.is_empty() {
        return Ok(());
    }
    tracing::info!(%site, calls = keys.len(), floor, "re-folding the calls in progress");
    let loaded: Vec<_> = futures::stream::iter(keys)
        .map(|key| load(client, stores, site, key, floor))
        .buffer_unordered(PARALLEL)
        .try_collect()
        .await?;
    for (call, first_seq, messages, published) in loaded.into_iter().flatten() {
        state.recover(
            call,
            first_seq,
            messages.into_iter().map(|m| (m.seq, m.subject, m.payload)),
            published,
        );
    }
    Ok(())
}

type Loaded = (
    Uuid,
    u64,
    Vec<ledger_replay::StoredMessage>,
    Option<ledger_schemas::LctList>,
);

async fn load(
    client: &async_nats::Client,
    stores: &Stores,
    site: Site,
    key: String,
    floor: u64,
) -> Result<Option<Loaded>, ProjectorError> {
    let Some(call) = key.rsplit('.').next().and_then(subject::parse_uuid_token) else {
        tracing::warn!(%site, key, "ignoring a malformed index key");
        return Ok(None);
    };
    let value = stores
        .projector
        .get(&key)
        .await
        .map_err(|e| unavailable("reading the index")(e.into()))?;
    let Some(first_seq) = value.and_then(|v| std::str::from_utf8(&v).ok()?.parse::<u64>().ok())
    else {
        return Ok(None);
    };
    let messages = read_call(client, call, first_seq, Some(floor)).await?;
    let published = stores
        .lct
        .get(subject::lct_key(site, call))
        .await
        .map_err(|e| unavailable("reading LCTParty lists")(e.into()))?
        .and_then(|b| LctList::decode(&b).ok());
    Ok(Some((call, first_seq, messages, published)))
}
