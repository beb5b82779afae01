//! Reading a time window of a stream: a consumer started by time, stopped once past the window,
//! so that a window costs what it holds, not what the stream holds.

use async_nats::jetstream::{
    self,
    consumer::{DeliverPolicy, pull},
};
use futures::StreamExt;

use crate::read::{ReadError, StoredMessage};

/// How much earlier than a window's start reading begins, and how much later it stops: the
/// window selects by the `ts` in the messages, the stream orders by the time it stored them.
pub const MARGIN_US: u64 = 5 * 60 * 1_000_000;

/// A window of time, in microseconds since the epoch; open ends unbounded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Window {
    /// Messages at or after this time.
    pub since: Option<u64>,
    /// Messages at or before this time.
    pub until: Option<u64>,
}

impl Window {
    /// Whether `ts` is in the window.
    pub fn contains(&self, ts: u64) -> bool {
        self.since.is_none_or(|s| ts >= s) && self.until.is_none_or(|u| ts <= u)
    }
}

fn time_of(us: u64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// Reads the messages of `stream` on `filter` stored in `window` (with [`MARGIN_US`] either
/// side), in stream order. `progress` is told, as reading goes, how many were read of how many
/// the consumer had pending when it started.
///
/// # Errors
///
/// [`ReadError`] when the stream cannot be read.
pub async fn read_window(
    js: &jetstream::Context,
    stream: &'static str,
    filter: &str,
    window: Window,
    mut progress: impl FnMut(u64, u64),
) -> Result<Vec<StoredMessage>, ReadError> {
    let unavailable = |e: &dyn std::fmt::Display| ReadError::Unavailable {
        stream,
        reason: e.to_string(),
    };
    let deliver_policy = match window.since {
        Some(since) => DeliverPolicy::ByStartTime {
            start_time: time_of(since.saturating_sub(MARGIN_US)),
        },
        None => DeliverPolicy::All,
    };
    let stop_after = window.until.map(|u| time_of(u.saturating_add(MARGIN_US)));
    let consumer = js
        .get_stream(stream)
        .await
        .map_err(|e| unavailable(&e))?
        .create_consumer(pull::OrderedConfig {
            filter_subject: filter.to_owned(),
            deliver_policy,
            ..Default::default()
        })
        .await
        .map_err(|e| unavailable(&e))?;
    let total = consumer.cached_info().num_pending;
    let mut out = Vec::new();
    if total == 0 {
        return Ok(out);
    }
    let mut messages = consumer.messages().await.map_err(|e| unavailable(&e))?;
    let mut read = 0;
    while let Some(msg) = messages.next().await {
        let msg = msg.map_err(|e| unavailable(&e))?;
        let info = msg.info().map_err(|e| unavailable(&e))?;
        read += 1;
        let (seq, pending, stored) = (info.stream_sequence, info.pending, info.published);
        if read % 1024 == 0 || pending == 0 {
            progress(read, total);
        }
        if stop_after.is_some_and(|limit| stored > limit) {
            break;
        }
        out.push(StoredMessage {
            seq,
            subject: msg.subject.to_string(),
            payload: msg.payload.clone(),
        });
        if pending == 0 {
            break;
        }
    }
    progress(read, total);
    Ok(out)
}
