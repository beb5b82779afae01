//! The index of a site's calls in progress, in the internal bucket `LEDGER_PROJECTOR`: key
//! `active.<site>.<call>`, value the call's first stream sequence as decimal text. The site's
//! leading projector writes it at its checkpoints (fenced); a new leader, the command service
//! and `ledger calls` read it.

use bytes::Bytes;
use ledger_schemas::{Site, subject};
use uuid::Uuid;

use super::floor::{Floor, floor_key};
use super::keys::{StoredKey, latest};
use crate::{Nats, Stores};
use async_nats::jetstream::kv::Operation;

/// One call in progress as the index holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Indexed {
    /// The call.
    pub call: Uuid,
    /// Stream sequence of its first event.
    pub first_seq: u64,
    /// The index key's revision.
    pub revision: u64,
}

/// The index key of a call in progress at `site`.
pub fn index_key(site: Site, call: Uuid) -> String {
    let mut key = format!("active.{site}.");
    subject::push_uuid(&mut key, call);
    key
}

/// The index value: the call's first stream sequence.
pub fn index_value(first_seq: u64) -> Bytes {
    Bytes::from(first_seq.to_string())
}

/// The calls in progress at `site` as its index holds them. A malformed key or value is logged
/// and left out.
///
/// # Errors
///
/// When the bucket cannot be read.
pub async fn indexed(
    nats: &Nats,
    stores: &Stores,
    site: Site,
) -> Result<Vec<Indexed>, async_nats::Error> {
    let keys = latest(&nats.client, &stores.projector, &format!("active.{site}.>")).await?;
    Ok(entries(site, keys))
}

/// The index as of `floor` at least, for a replicated bucket: read together with the floor key
/// from one replica (the bucket's last value of every key, one filter), and read again while that
/// replica has not yet caught up with the floor's revision (a follower may answer while it lags;
/// see `ledger_replay`'s module on reading). Costs the keys of every site, not only this one's.
///
/// # Errors
///
/// When the bucket cannot be read, or no replica caught up within a few seconds.
pub async fn indexed_as_of(
    nats: &Nats,
    stores: &Stores,
    site: Site,
    floor: Floor,
) -> Result<Vec<Indexed>, async_nats::Error> {
    let (active, floor_key) = (format!("active.{site}."), floor_key(site));
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(RETRY).await;
        }
        let keys: Vec<StoredKey> = latest(&nats.client, &stores.projector, ">")
            .await?
            .into_iter()
            .filter(|k| k.key == floor_key || k.key.starts_with(active.as_str()))
            .collect();
        let seen = keys
            .iter()
            .find(|k| k.key == floor_key)
            .map_or(0, |k| k.revision);
        if seen >= floor.revision {
            return Ok(entries(
                site,
                keys.into_iter().filter(|k| k.key != floor_key).collect(),
            ));
        }
        tracing::debug!(%site, seen, floor = floor.revision, "the index was read from a replica behind the floor; reading again");
    }
    Err(format!(
        "the index of {site} was read {ATTEMPTS} times from a replica behind the floor's revision {}",
        floor.revision
    )
    .into())
}

/// Reading the index again from a lagging replica: attempts, and the pause between them.
const ATTEMPTS: usize = 50;
const RETRY: std::time::Duration = std::time::Duration::from_millis(100);

fn entries(site: Site, keys: Vec<StoredKey>) -> Vec<Indexed> {
    keys.into_iter()
        .filter(|k| k.operation == Operation::Put)
        .filter_map(|k| {
            let call = k.key.rsplit('.').next().and_then(subject::parse_uuid_token);
            let first_seq = std::str::from_utf8(&k.value)
                .ok()
                .and_then(|v| v.parse::<u64>().ok());
            match (call, first_seq) {
                (Some(call), Some(first_seq)) => Some(Indexed {
                    call,
                    first_seq,
                    revision: k.revision,
                }),
                _ => {
                    tracing::warn!(%site, key = %k.key, "ignoring a malformed index entry");
                    None
                }
            }
        })
        .collect()
}
