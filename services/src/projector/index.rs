//! The index of calls in progress in the internal bucket `LEDGER_PROJECTOR`: key
//! `active.<site>.<call>`, value the call's first stream sequence as decimal text. The projector
//! writes it at its checkpoints; a new leader, the command service and `ledger calls` read it.

use async_nats::jetstream::kv;
use futures::TryStreamExt;
use ledger_schemas::{Site, subject};
use uuid::Uuid;

/// The index key of a call in progress at `site`.
pub fn index_key(site: Site, call: Uuid) -> String {
    let mut key = index_prefix(site);
    subject::push_uuid(&mut key, call);
    key
}

fn index_prefix(site: Site) -> String {
    format!("active.{site}.")
}

/// The calls in progress at `site` as its index holds them, with their keys. A malformed key is
/// logged and left out.
///
/// # Errors
///
/// When the bucket cannot be read.
pub async fn indexed_calls(
    index: &kv::Store,
    site: Site,
) -> Result<Vec<(Uuid, String)>, async_nats::Error> {
    let prefix = index_prefix(site);
    let keys: Vec<String> = index
        .keys()
        .await?
        .try_filter(|k| futures::future::ready(k.starts_with(&prefix)))
        .try_collect()
        .await?;
    Ok(keys
        .into_iter()
        .filter_map(|key| {
            let call = key.rsplit('.').next().and_then(subject::parse_uuid_token);
            if call.is_none() {
                tracing::warn!(%site, key, "ignoring a malformed index key");
            }
            Some((call?, key))
        })
        .collect())
}

/// The first stream sequence indexed under `key`; `None` when the key is gone or its value is
/// not a sequence.
///
/// # Errors
///
/// When the bucket cannot be read.
pub async fn first_seq(index: &kv::Store, key: &str) -> Result<Option<u64>, async_nats::Error> {
    Ok(index
        .get(key)
        .await?
        .and_then(|v| std::str::from_utf8(&v).ok()?.parse::<u64>().ok()))
}
