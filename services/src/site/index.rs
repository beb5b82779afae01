//! The index of a site's calls in progress, in the internal bucket `LEDGER_PROJECTOR`: key
//! `active.<site>.<call>`, value the call's first stream sequence as decimal text. The site's
//! leading projector writes it at its checkpoints (fenced); a new leader, the command service
//! and `ledger calls` read it.

use bytes::Bytes;
use ledger_schemas::{Site, subject};
use uuid::Uuid;

use super::keys::latest;
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
    Ok(keys
        .into_iter()
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
        .collect())
}
