//! Reading what a bucket holds now: the last value or marker of each key under a prefix, with
//! its revision and headers, which a fenced writer needs to know what it may overwrite.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{
    consumer::{DeliverPolicy, ReplayPolicy, push},
    kv::{self, Operation},
    stream::DirectGetErrorKind,
};
use bytes::Bytes;
use futures::StreamExt;

use crate::fence::marker_seq;

/// How long to wait for the next key before calling the bucket unavailable.
const TIMEOUT: Duration = Duration::from_secs(5);

/// The last message of one key.
#[derive(Debug, Clone)]
pub struct StoredKey {
    /// The key (without the bucket's prefix).
    pub key: String,
    /// Its revision: the stream sequence of that message.
    pub revision: u64,
    /// A value, or a deletion marker.
    pub operation: Operation,
    /// The value (empty for a marker).
    pub value: Bytes,
    /// For a marker: the stream sequence the deletion reflects, when it says.
    pub marker_seq: Option<u64>,
    /// The message expires by the server's clock (it carries `Nats-TTL`).
    pub expires: bool,
}

fn expires(headers: Option<&HeaderMap>) -> bool {
    headers.is_some_and(|h| h.get("Nats-TTL").is_some())
}

fn operation(headers: Option<&HeaderMap>) -> Operation {
    let Some(h) = headers else {
        return Operation::Put;
    };
    match h.get("KV-Operation").map(|v| v.as_str()) {
        Some("DEL") => Operation::Delete,
        Some("PURGE") => Operation::Purge,
        Some(_) => Operation::Put,
        // A marker the server placed when a message expired.
        None if h.get("Nats-Marker-Reason").is_some() => Operation::Purge,
        None => Operation::Put,
    }
}

/// Every key of `kv` under `key_filter` (a key, or a pattern such as `SiteA.>`) as it is now:
/// values and markers alike, read with one ordered consumer.
///
/// # Errors
///
/// When the bucket cannot be read in time.
pub async fn latest(
    client: &async_nats::Client,
    kv: &kv::Store,
    key_filter: &str,
) -> Result<Vec<StoredKey>, async_nats::Error> {
    read(client, kv, key_filter, DeliverPolicy::LastPerSubject).await
}

/// Every revision of the keys of `kv` under `key_filter` from revision `from` on, in the order
/// they were written, as far as the bucket's history keeps them.
///
/// # Errors
///
/// When the bucket cannot be read in time.
pub async fn since(
    client: &async_nats::Client,
    kv: &kv::Store,
    key_filter: &str,
    from: u64,
) -> Result<Vec<StoredKey>, async_nats::Error> {
    let policy = DeliverPolicy::ByStartSequence {
        start_sequence: from.max(1),
    };
    read(client, kv, key_filter, policy).await
}

async fn read(
    client: &async_nats::Client,
    kv: &kv::Store,
    key_filter: &str,
    deliver_policy: DeliverPolicy,
) -> Result<Vec<StoredKey>, async_nats::Error> {
    let consumer = kv
        .stream
        .create_consumer(push::OrderedConfig {
            deliver_subject: client.new_inbox(),
            filter_subject: format!("{}{key_filter}", kv.prefix),
            deliver_policy,
            replay_policy: ReplayPolicy::Instant,
            ..Default::default()
        })
        .await?;
    let mut keys = Vec::new();
    if consumer.cached_info().num_pending == 0 {
        return Ok(keys);
    }
    let mut messages = consumer.messages().await?;
    loop {
        let msg = match tokio::time::timeout(TIMEOUT, messages.next()).await {
            Ok(Some(msg)) => msg?,
            Ok(None) => return Err("the connection closed while reading keys".into()),
            Err(_) => return Err(format!("no key within {TIMEOUT:?}").into()),
        };
        let info = msg.info()?;
        let (revision, pending) = (info.stream_sequence, info.pending);
        let headers = msg.headers.as_ref();
        keys.push(StoredKey {
            key: msg
                .subject
                .strip_prefix(kv.prefix.as_str())
                .unwrap_or(&msg.subject)
                .to_owned(),
            revision,
            operation: operation(headers),
            marker_seq: marker_seq(headers),
            expires: expires(headers),
            value: msg.payload.clone(),
        });
        if pending == 0 {
            return Ok(keys);
        }
    }
}

/// One key of `kv` as it is now; `None` when it holds nothing (never written, or its marker
/// expired).
///
/// # Errors
///
/// When the bucket cannot be read.
pub async fn latest_one(kv: &kv::Store, key: &str) -> Result<Option<StoredKey>, async_nats::Error> {
    match kv
        .stream
        .direct_get_last_for_subject(format!("{}{key}", kv.prefix))
        .await
    {
        Ok(msg) => Ok(Some(StoredKey {
            key: key.to_owned(),
            revision: msg.sequence,
            operation: operation(Some(&msg.headers)),
            marker_seq: marker_seq(Some(&msg.headers)),
            expires: expires(Some(&msg.headers)),
            value: msg.payload,
        })),
        Err(e) if e.kind() == DirectGetErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}
