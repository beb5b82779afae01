//! Fenced writes: every write to a key that another instance could also write is conditional on
//! the revision this instance last knew for it (`Nats-Expected-Last-Subject-Sequence`), so a
//! writer that was replaced cannot overwrite what its successor stored.
//!
//! A key this instance has never seen is written expecting revision 0 ("never existed"), not
//! with async-nats `create`, which would also recreate a deleted key. A deletion leaves a marker
//! that carries the stream sequence it was made at ([`SEQ_HEADER`]) and expires after a set time
//! (`Nats-TTL`, nats-server 2.11+), so markers do not pile up.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{
    self,
    context::{PublishError, PublishErrorKind},
    kv,
    message::PublishMessage,
};
use bytes::Bytes;

/// Header of a deletion marker: the stream sequence of the event the deletion reflects.
pub const SEQ_HEADER: &str = "Ledger-Seq";

/// Why a fenced write did not happen.
#[derive(Debug, thiserror::Error)]
pub enum FenceError {
    /// The key is not at the expected revision: another instance wrote it.
    #[error("{key} was written by another instance (expected revision {expected})")]
    Refused {
        /// The key.
        key: String,
        /// The revision this instance expected.
        expected: u64,
    },
    /// NATS could not be reached or refused the write for another reason.
    #[error("cannot write {key}: {source}")]
    Unavailable {
        /// The key.
        key: String,
        /// The cause.
        #[source]
        source: PublishError,
    },
}

/// Whether a publish error is a refused expectation: 10071, or 10164 on replicated streams
/// (which async-nats reports as `Other`).
pub fn is_wrong_last_sequence(err: &PublishError) -> bool {
    if err.kind() == PublishErrorKind::WrongLastSequence {
        return true;
    }
    std::error::Error::source(err)
        .and_then(|s| s.downcast_ref::<jetstream::Error>())
        .is_some_and(|e| {
            e.error_code() == jetstream::ErrorCode::STREAM_WRONG_LAST_SEQUENCE
                || e.error_code() == jetstream::ErrorCode::STREAM_WRONG_LAST_SEQUENCE_CONSTANT
        })
}

/// What a deletion leaves behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    /// How long the marker stays; after it the key is gone as if never written.
    pub ttl: Duration,
    /// The stream sequence the deletion reflects, kept in [`SEQ_HEADER`].
    pub seq: Option<u64>,
    /// A purge marker (`KV-Operation: PURGE`) instead of a delete (`DEL`): the server places no
    /// marker of its own when it expires. For internal keys; contract keys are deleted.
    pub purge: bool,
}

/// Fenced writes to one bucket.
#[derive(Debug, Clone)]
pub struct Fence {
    js: jetstream::Context,
    prefix: String,
}

impl Fence {
    /// Fenced writes to `kv` through `js`.
    pub fn new(js: jetstream::Context, kv: &kv::Store) -> Self {
        Self {
            js,
            prefix: kv.put_prefix.clone().unwrap_or_else(|| kv.prefix.clone()),
        }
    }

    /// Stores `value` under `key` if the key is at revision `expected` (0: never existed, or
    /// gone), with a time-to-live when given. Returns the new revision.
    ///
    /// # Errors
    ///
    /// [`FenceError::Refused`] when the key is at another revision.
    pub async fn put(
        &self,
        key: &str,
        value: Bytes,
        expected: u64,
        ttl: Option<Duration>,
    ) -> Result<u64, FenceError> {
        let mut message = PublishMessage::build()
            .payload(value)
            .expected_last_subject_sequence(expected);
        if let Some(ttl) = ttl {
            message = message.ttl(ttl);
        }
        self.send(key, expected, message).await
    }

    /// Deletes `key` if it is at revision `expected`, leaving `marker`. Returns the marker's
    /// revision.
    ///
    /// # Errors
    ///
    /// [`FenceError::Refused`] when the key is at another revision.
    pub async fn delete(
        &self,
        key: &str,
        expected: u64,
        marker: Marker,
    ) -> Result<u64, FenceError> {
        let mut headers = HeaderMap::new();
        headers.insert("KV-Operation", if marker.purge { "PURGE" } else { "DEL" });
        if let Some(seq) = marker.seq {
            headers.insert(SEQ_HEADER, seq.to_string().as_str());
        }
        let message = PublishMessage::build()
            .headers(headers)
            .expected_last_subject_sequence(expected)
            .ttl(marker.ttl);
        self.send(key, expected, message).await
    }

    async fn send(
        &self,
        key: &str,
        expected: u64,
        message: PublishMessage,
    ) -> Result<u64, FenceError> {
        let subject = format!("{}{key}", self.prefix);
        let acked = match self.js.send_publish(subject, message).await {
            Ok(ack) => ack.await,
            Err(e) => Err(e),
        };
        match acked {
            Ok(ack) => Ok(ack.sequence),
            Err(e) if is_wrong_last_sequence(&e) => Err(FenceError::Refused {
                key: key.to_owned(),
                expected,
            }),
            Err(source) => Err(FenceError::Unavailable {
                key: key.to_owned(),
                source,
            }),
        }
    }
}

/// The stream sequence a deletion marker reflects, from its headers.
pub fn marker_seq(headers: Option<&HeaderMap>) -> Option<u64> {
    headers?.get(SEQ_HEADER)?.as_str().parse().ok()
}
