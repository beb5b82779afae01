//! The events after the floor, read ahead by a task of their own.
//!
//! An ordered consumer asks the server for more messages only while its stream is polled, and
//! keeps a few hundred in flight. Polled from the leader's loop, it would stop asking while the
//! leader folds a batch, and the server would wait on the fold. The reader task polls it all the
//! time, keeps of each message only what the fold needs (its stream position, and the event
//! decoded: the reader decodes while the leader folds, on bytes it has just received, and the
//! message itself is freed on the reader's side), and hands the events over
//! through a bounded queue of `2 × batch` events, which the leader drains a batch at a time into
//! a buffer it reuses.
//!
//! **Overflow policy: backpressure.** When the queue is full the reader waits, so the consumer
//! stops asking the server, and at most the queue plus what the consumer holds are in memory: a
//! decoded event takes a few hundred bytes, so about half a megabyte at the default batch of
//! 1,000, and some 50 MB at the largest (100,000).
//!
//! The task ends when the consumer's stream ends or fails, or when the feed is dropped (it is
//! aborted then, so a deposed leader leaves nothing reading).

use async_nats::jetstream::consumer::pull::{self, OrderedError, OrderedErrorKind};
use async_nats::jetstream::consumer::{Consumer, StreamError};
use futures::StreamExt;
use ledger_core::Decoded;
use ledger_schemas::Site;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// One event as the fold reads it.
#[derive(Debug)]
pub(super) struct Delivered {
    /// Its stream sequence.
    pub(super) seq: u64,
    /// Messages left in the stream after it when it was delivered.
    pub(super) pending: u64,
    /// The event, decoded.
    pub(super) event: Decoded,
}

/// What the reader hands over: an event, or the error that ended reading.
pub(super) type Item = Result<Delivered, OrderedError>;

/// The events after the floor.
pub(super) struct Feed {
    events: mpsc::Receiver<Item>,
    batch: usize,
    reader: JoinHandle<()>,
}

impl Feed {
    /// Starts reading `consumer` for `site`, handing over at most `batch` events at a time
    /// (held to 1 to [`crate::MAX_BATCH`]).
    pub(super) async fn new(
        consumer: Consumer<pull::OrderedConfig>,
        site: Site,
        batch: usize,
    ) -> Result<Self, StreamError> {
        let batch = batch.clamp(1, crate::MAX_BATCH);
        let mut messages = consumer.messages().await?;
        let (tx, events) = mpsc::channel(2 * batch);
        let reader = tokio::spawn(async move {
            while let Some(item) = messages.next().await {
                let item = match item {
                    Ok(msg) => match msg.info() {
                        Ok(info) => Ok(Delivered {
                            seq: info.stream_sequence,
                            pending: info.pending,
                            event: Decoded::of(msg.subject.as_str(), &msg.payload),
                        }),
                        Err(e) => {
                            tracing::warn!(%site, error = %e, "a delivered message has no stream position; skipped");
                            continue;
                        }
                    },
                    Err(e) if e.kind() == OrderedErrorKind::Pull => {
                        tracing::warn!(%site, error = %e, "event delivery hiccup; continuing");
                        continue;
                    }
                    Err(e) => Err(e),
                };
                let failed = item.is_err();
                if tx.send(item).await.is_err() || failed {
                    return;
                }
            }
        });
        Ok(Self {
            events,
            batch,
            reader,
        })
    }

    /// Waits for events, then moves into `into` (cleared first) those that have arrived, at most
    /// a batch. Returns false once the consumer's stream ended and every event was handed over.
    pub(super) async fn next_batch(&mut self, into: &mut Vec<Item>) -> bool {
        into.clear();
        self.events.recv_many(into, self.batch).await > 0
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.reader.abort();
    }
}
