//! The events after the floor, a batch at a time.
//!
//! The stream is read with an [`EventFeed`]: a pull consumer of this leader's own that asks for
//! windows of [`ledger_replay::ReadAhead`] events (20,000 by default), the next once half of the last was read,
//! so the server goes on sending while the leader folds a batch or waits for a checkpoint's
//! writes. Each batch is what has arrived when the leader asks, at most
//! `batch` events, each decoded as it is taken (the message is freed at once, only its stream
//! position and the event are kept), in a buffer the leader reuses.
//!
//! **Overflow policy: backpressure.** The feed never holds more than its read-ahead: when the
//! leader is slower than the stream, the rest waits in the stream. In memory at most: the
//! messages of one and a half windows in the client's buffer (30,000 or 12 MiB by default) and one batch of
//! decoded events (a few hundred bytes each: about half a megabyte at the default batch of
//! 1,000, some 50 MB at the largest, 100,000).

use futures::{FutureExt, StreamExt};
use ledger_core::Decoded;
use ledger_replay::{EventFeed, Followed};

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

/// What the feed hands over: an event, or the error that ended reading.
pub(super) type Item = Result<Delivered, async_nats::Error>;

/// The events after the floor.
pub(super) struct Feed {
    events: EventFeed,
    batch: usize,
    /// Reading ended (its error, if any, was handed over).
    ended: bool,
}

impl Feed {
    /// Reads `events`, handing over at most `batch` events at a time (held to 1 to
    /// [`crate::MAX_BATCH`]).
    pub(super) fn new(events: EventFeed, batch: usize) -> Self {
        Self {
            events,
            batch: batch.clamp(1, crate::MAX_BATCH),
            ended: false,
        }
    }

    /// Waits for an event, then moves into `into` (cleared first) it and those that have
    /// arrived after it, at most a batch. Returns false once reading ended and everything was
    /// handed over. Cancel-safe: it hands over nothing until it returns.
    pub(super) async fn next_batch(&mut self, into: &mut Vec<Item>) -> bool {
        into.clear();
        if self.ended {
            return false;
        }
        let Some(first) = self.events.next().await else {
            self.ended = true;
            return false;
        };
        self.ended = take(first, into);
        while !self.ended && into.len() < self.batch {
            match self.events.next().now_or_never() {
                Some(Some(next)) => self.ended = take(next, into),
                Some(None) => self.ended = true,
                None => break,
            }
        }
        true
    }
}

/// Adds one delivered message to `buffer`, decoded; returns whether it ended reading (an error,
/// handed over last).
fn take(item: Result<Followed, async_nats::Error>, buffer: &mut Vec<Item>) -> bool {
    match item {
        Ok(f) => {
            buffer.push(Ok(Delivered {
                seq: f.seq,
                pending: f.pending,
                event: Decoded::of(f.subject.as_str(), &f.payload),
            }));
            false
        }
        Err(e) => {
            buffer.push(Err(e));
            true
        }
    }
}
