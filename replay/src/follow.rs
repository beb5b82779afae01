//! Reading every party event in stream order from a position, as the services fold the log
//! ([`EventFeed`]), and the subject filter of such a reader ([`events_filter`]).
//!
//! **Why not async-nats' ordered consumers.** The pull one asks for 500 messages at a time, a
//! number async-nats 0.51 fixes, and the server waits on each request: on this project's
//! benchmark it read a quarter to a third slower than a pull consumer with a wider window. The push
//! one is paced by the server's flow control, whose window (up to 32 MiB on nats-server 2.15)
//! outgrows the client's subscription buffer (65,536 messages): a projector pausing for its
//! checkpoints had tens of thousands of events dropped by its own client, then read again. An
//! [`EventFeed`] is a pull consumer whose window the caller sets ([`ReadAhead`]), in messages and
//! in bytes, with what the ordered consumers add: it checks that no delivered message is missing
//! (the consumer sequence), and makes its consumer again from the last event it handed over
//! after a gap, a missed heartbeat, a deleted consumer or a server restart.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use async_nats::jetstream::consumer::pull::{self, MessagesErrorKind};
use async_nats::jetstream::consumer::{AckPolicy, Consumer, DeliverPolicy};
use async_nats::jetstream::stream::{self, Stream};
use futures::StreamExt;
use ledger_schemas::subject;

/// How far ahead of its reader an [`EventFeed`] lets the server send: the window of each pull
/// request, in messages and in bytes. Another window is asked for once half of the last was
/// read, so at most one and a half windows are on their way or in the client's buffer at once.
/// The memory a feed holds is bounded by one and a half times `bytes`, plus the client's own
/// bookkeeping of each message (a few hundred bytes).
///
/// `bytes` is raised to twice the largest message the server accepts (its `max_payload`, 1 MiB
/// by default) if lower: the server does not send a message larger than what a pull request
/// asks for, so a smaller window could never deliver such a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadAhead {
    /// Messages, at least 1.
    pub messages: usize,
    /// Bytes of messages as the server counts them, at least 1 KiB.
    pub bytes: usize,
}

impl Default for ReadAhead {
    /// 20,000 messages or 8 MiB: wide enough that the server never waits on a reader that
    /// pauses for a checkpoint of a few milliseconds; one and a half of it (30,000 messages)
    /// stays far below the client's subscription buffer (65,536 messages).
    fn default() -> Self {
        Self {
            messages: 20_000,
            bytes: 8 << 20,
        }
    }
}

const _: () = assert!(ReadAhead::MOST_MESSAGES * 3 / 2 < 65_536);

impl ReadAhead {
    /// The widest window in messages: one and a half of it fit the client's subscription
    /// buffer (65,536 messages, async-nats' default).
    pub const MOST_MESSAGES: usize = 40_000;

    /// Held to what the client's buffer allows (1 to [`ReadAhead::MOST_MESSAGES`] messages, so
    /// that one and a half windows fit its 65,536; 1 KiB to 256 MiB), and at least twice
    /// `max_payload` bytes.
    pub fn bounded(self, max_payload: usize) -> Self {
        Self {
            messages: self.messages.clamp(1, Self::MOST_MESSAGES),
            bytes: self
                .bytes
                .clamp(1 << 10, 256 << 20)
                .max(max_payload.saturating_mul(2)),
        }
    }
}

/// The consumer an [`EventFeed`] reads with, delivering from the stream sequence `start` on
/// (from the first when `start` is 0 or 1): ephemeral, unacknowledged, one replica in memory,
/// removed by the server 30 s after its reader is gone, filtered by [`events_filter`] of
/// `events` as its stream last read them. Public so that a benchmark can read alike.
pub fn feed_consumer(events: &stream::Config, start: u64) -> pull::Config {
    pull::Config {
        filter_subject: events_filter(events),
        deliver_policy: match start {
            0 | 1 => DeliverPolicy::All,
            start_sequence => DeliverPolicy::ByStartSequence { start_sequence },
        },
        ack_policy: AckPolicy::None,
        memory_storage: true,
        num_replicas: 1,
        inactive_threshold: Duration::from_secs(30),
        ..Default::default()
    }
}

/// How long a pull request waits on the server, and the heartbeat it asks for: a silent
/// consumer (deleted, or its server restarted) is noticed within twice the heartbeat.
const EXPIRES: Duration = Duration::from_secs(30);
const HEARTBEAT: Duration = Duration::from_secs(5);

/// Pauses between two attempts to make the consumer again, doubling from the first to the
/// longest.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MOST_BACKOFF: Duration = Duration::from_secs(5);

/// One party event's message as an [`EventFeed`] delivers it: what a fold reads of it.
#[derive(Debug)]
pub struct Followed {
    /// Its stream sequence.
    pub seq: u64,
    /// Messages left for this feed in the stream after it when it was delivered.
    pub pending: u64,
    /// The subject it was stored on.
    pub subject: async_nats::Subject,
    /// The payload.
    pub payload: bytes::Bytes,
}

/// Every party event stored from a position on, in stream order, each once: a pull consumer of
/// this reader's own with a window of [`ReadAhead`], made again from the last event handed over
/// whenever it cannot go on. A [`futures::Stream`] of [`Followed`] events, which ends only when
/// the client closes.
///
/// Its states: **reading** the current consumer's messages; **remaking** the consumer from the
/// last event handed over, after a gap, a missed heartbeat, a deleted consumer or a server
/// restart (while NATS cannot be reached it keeps trying, pausing up to 5 s between two
/// attempts). An error the server gives that remaking cannot mend (a refused pull request) is
/// handed over as an item.
pub struct EventFeed {
    events: Stream,
    read_ahead: ReadAhead,
    state: State,
    /// The consumer sequence of the last message the current consumer delivered.
    delivered: u64,
    /// The stream sequence to start from when the consumer is made again.
    next: u64,
    /// The pause before the next attempt to remake the consumer, after a failed one.
    backoff: Duration,
    pending_at_start: u64,
    remade: u64,
}

/// A consumer being made, and the messages it starts with, with what it had pending.
type Making = Pin<Box<dyn Future<Output = Result<(pull::Stream, u64), async_nats::Error>> + Send>>;

enum State {
    /// Boxed: the state is moved whenever it changes, and a stream is many times the size of
    /// the boxed future of the other state.
    Reading(Box<pull::Stream>),
    Remaking(Making),
}

impl std::fmt::Debug for EventFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventFeed")
            .field("next", &self.next)
            .field("read_ahead", &self.read_ahead)
            .field("remade", &self.remade)
            .finish_non_exhaustive()
    }
}

impl EventFeed {
    /// Starts reading `events` through `client` from the stream sequence `start` (the first
    /// when 0 or 1), with the filter its settings as last read call for.
    ///
    /// # Errors
    ///
    /// When the consumer cannot be made (NATS unreachable, no such stream, no permission).
    pub async fn start(
        client: &async_nats::Client,
        events: &Stream,
        start: u64,
        read_ahead: ReadAhead,
    ) -> Result<Self, async_nats::Error> {
        let read_ahead = read_ahead.bounded(client.server_info().max_payload);
        let next = start.max(1);
        let (messages, pending_at_start) = make(events.clone(), next, read_ahead).await?;
        Ok(Self {
            events: events.clone(),
            read_ahead,
            state: State::Reading(Box::new(messages)),
            delivered: 0,
            next,
            backoff: Duration::ZERO,
            pending_at_start,
            remade: 0,
        })
    }

    /// Events the stream held for this feed when it started.
    pub fn pending_at_start(&self) -> u64 {
        self.pending_at_start
    }

    /// How many times the consumer was made again.
    pub fn remade(&self) -> u64 {
        self.remade
    }

    /// Remakes the consumer from `next`, after `backoff`.
    fn remake(&mut self) {
        let (events, next, read_ahead, pause) = (
            self.events.clone(),
            self.next,
            self.read_ahead,
            self.backoff,
        );
        self.state = State::Remaking(Box::pin(async move {
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
            make(events, next, read_ahead).await
        }));
    }

    /// Takes one delivered message: the event, or `None` when it shows a gap (then the
    /// consumer is being made again) or is not the consumer's (skipped).
    fn delivered(&mut self, m: async_nats::jetstream::Message) -> Option<Followed> {
        let (consumer_seq, seq, pending) = match m.info() {
            Ok(i) => (i.consumer_sequence, i.stream_sequence, i.pending),
            // Not the consumer's: whatever else reached its inbox. Nothing is missing for it.
            Err(e) => {
                tracing::warn!(error = %e, "a message without a stream position on the feed's inbox; skipped");
                return None;
            }
        };
        if consumer_seq != self.delivered + 1 {
            tracing::info!(
                expected = self.delivered + 1,
                got = consumer_seq,
                "messages went missing on the way; reading again from {}",
                self.next
            );
            self.remake();
            return None;
        }
        self.delivered = consumer_seq;
        self.next = seq + 1;
        let async_nats::Message {
            subject, payload, ..
        } = m.message;
        Some(Followed {
            seq,
            pending,
            subject,
            payload,
        })
    }
}

impl futures::Stream for EventFeed {
    type Item = Result<Followed, async_nats::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            match &mut this.state {
                State::Remaking(making) => match ready!(making.as_mut().poll(cx)) {
                    Ok((messages, _)) => {
                        this.state = State::Reading(Box::new(messages));
                        this.delivered = 0;
                        this.backoff = Duration::ZERO;
                        this.remade += 1;
                    }
                    Err(e) => {
                        tracing::warn!(from = this.next, error = %e, "could not make the event consumer again; retrying");
                        this.backoff = (this.backoff * 2).clamp(FIRST_BACKOFF, MOST_BACKOFF);
                        this.remake();
                    }
                },
                State::Reading(messages) => match ready!(messages.poll_next_unpin(cx)) {
                    None => return Poll::Ready(None),
                    Some(Ok(m)) => {
                        if let Some(event) = this.delivered(m) {
                            return Poll::Ready(Some(Ok(event)));
                        }
                    }
                    Some(Err(e)) => match e.kind() {
                        MessagesErrorKind::MissingHeartbeat
                        | MessagesErrorKind::ConsumerDeleted
                        | MessagesErrorKind::NoResponders => {
                            tracing::info!(error = %e, "reading events again from {}", this.next);
                            this.remake();
                        }
                        // A pull request could not be sent (disconnected): asked again on
                        // reconnection, and any message lost meanwhile shows as a gap.
                        MessagesErrorKind::Pull => {
                            tracing::debug!(error = %e, "a pull request failed");
                        }
                        _ => return Poll::Ready(Some(Err(e.into()))),
                    },
                },
            }
        }
    }
}

/// Makes a consumer of `events` from `next` and starts its messages; returns them and what it
/// had pending.
async fn make(
    events: Stream,
    next: u64,
    read_ahead: ReadAhead,
) -> Result<(pull::Stream, u64), async_nats::Error> {
    let consumer = events
        .create_consumer(feed_consumer(&events.cached_info().config, next))
        .await?;
    let pending = consumer.cached_info().num_pending;
    Ok((feed_messages(&consumer, read_ahead).await?, pending))
}

/// The messages of `consumer` as an [`EventFeed`] reads them: a window of `read_ahead` (held
/// as [`ReadAhead::bounded`] says), requests that wait 30 s on the server, a heartbeat every
/// 5 s. Public so that a benchmark can read alike.
///
/// # Errors
///
/// When the first pull request cannot be sent.
pub async fn feed_messages(
    consumer: &Consumer<pull::Config>,
    read_ahead: ReadAhead,
) -> Result<pull::Stream, async_nats::Error> {
    Ok(consumer
        .stream()
        .max_messages_per_batch(read_ahead.messages)
        .max_bytes_per_batch(read_ahead.bytes)
        .expires(EXPIRES)
        .heartbeat(HEARTBEAT)
        .messages()
        .await?)
}

/// The filter of a consumer reading every party event of the event stream whose settings are
/// `events`: none when the stream holds the event subjects alone, as the ledger provisions it
/// (and requires when it finds one); the events' wildcard otherwise.
///
/// A filter costs the server dearly on this stream: each call's events have subjects of their
/// own, and the server counts a filtered consumer's pending messages subject by subject when it
/// creates it (about 0.2 s per million events, nats-server 2.15.1), and again each time a
/// consumer is made again after a gap. Without a filter it reads the count off the
/// stream's state (about 2 ms), and delivers faster too.
pub fn events_filter(events: &stream::Config) -> String {
    if events.subjects == [subject::EVENTS_SUBJECTS] {
        String::new()
    } else {
        subject::EVENTS_SUBJECTS.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_filter_when_the_stream_holds_events_alone() {
        let mut events = stream::Config {
            subjects: vec![subject::EVENTS_SUBJECTS.to_owned()],
            ..Default::default()
        };
        assert_eq!(events_filter(&events), "");
        events.subjects.push("other.>".to_owned());
        assert_eq!(events_filter(&events), subject::EVENTS_SUBJECTS);
        events.subjects = vec!["ledger.ev.*.A.>".to_owned()];
        assert_eq!(events_filter(&events), subject::EVENTS_SUBJECTS);
    }

    #[test]
    fn a_consumer_from_the_start_or_a_position() {
        let events = stream::Config {
            subjects: vec![subject::EVENTS_SUBJECTS.to_owned()],
            ..Default::default()
        };
        for start in [0, 1] {
            assert_eq!(
                feed_consumer(&events, start).deliver_policy,
                DeliverPolicy::All
            );
        }
        let c = feed_consumer(&events, 42);
        assert_eq!(
            c.deliver_policy,
            DeliverPolicy::ByStartSequence { start_sequence: 42 }
        );
        assert_eq!(c.ack_policy, AckPolicy::None);
        assert!(c.durable_name.is_none());
    }

    #[test]
    fn read_ahead_is_bounded_and_fits_the_largest_message() {
        let r = ReadAhead {
            messages: 0,
            bytes: 0,
        }
        .bounded(1 << 20);
        assert_eq!((r.messages, r.bytes), (1, 2 << 20));
        // Whatever the server says its largest message is, the window is never empty.
        assert_eq!(
            ReadAhead {
                messages: 1,
                bytes: 0
            }
            .bounded(0)
            .bytes,
            1 << 10
        );
        let r = ReadAhead {
            messages: usize::MAX,
            bytes: usize::MAX,
        }
        .bounded(1 << 20);
        assert_eq!((r.messages, r.bytes), (ReadAhead::MOST_MESSAGES, 256 << 20));
        assert_eq!(ReadAhead::default().bounded(1 << 20), ReadAhead::default());
        // A server accepting larger messages widens the window in bytes.
        assert_eq!(ReadAhead::default().bounded(8 << 20).bytes, 16 << 20);
    }
}
