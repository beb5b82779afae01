//! A site's floor: the stream sequence up to which its leading projector has handled every
//! event and recorded every call in progress in the index. It is the key `floor.<site>` of
//! `LEDGER_PROJECTOR` (decimal text), written only by the leader, fenced on its revision, so
//! a replaced leader can never move it.
//!
//! Up to the floor, the index is exact: a reader re-folds the indexed calls up to it and
//! follows the stream from the next sequence.

use async_nats::jetstream::{context::ConsumerInfoErrorKind, kv::Operation};
use bytes::Bytes;
use ledger_schemas::Site;

use super::keys::latest_one;
use crate::Stores;

/// A site's floor and the revision of its key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Floor {
    /// Every event up to this stream sequence is handled; 0 when none is.
    pub seq: u64,
    /// The key's revision (0: never written, or only known from a legacy consumer).
    pub revision: u64,
}

/// The key of `site`'s floor.
pub fn floor_key(site: Site) -> String {
    format!("floor.{site}")
}

/// The value of a floor.
pub fn floor_value(seq: u64) -> Bytes {
    Bytes::from(seq.to_string())
}

/// The durable consumer that versions before the floor key kept per site; its acknowledged
/// floor is read once when the key does not exist yet.
pub fn legacy_consumer(site: Site) -> String {
    format!("ledger-projector-{site}")
}

/// Reads `site`'s floor.
///
/// # Errors
///
/// When the bucket or the stream cannot be read.
pub async fn read_floor(stores: &Stores, site: Site) -> Result<Floor, async_nats::Error> {
    match latest_one(&stores.projector, &floor_key(site)).await? {
        Some(k) if k.operation == Operation::Put => {
            let seq = std::str::from_utf8(&k.value)
                .ok()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{} holds no sequence", floor_key(site)))?;
            Ok(Floor {
                seq,
                revision: k.revision,
            })
        }
        found => {
            let revision = found.map_or(0, |k| k.revision);
            match stores.events.consumer_info(legacy_consumer(site)).await {
                Ok(info) => Ok(Floor {
                    seq: info.ack_floor.stream_sequence,
                    revision,
                }),
                Err(e) if e.kind() == ConsumerInfoErrorKind::NotFound => {
                    Ok(Floor { seq: 0, revision })
                }
                Err(e) => Err(e.into()),
            }
        }
    }
}
