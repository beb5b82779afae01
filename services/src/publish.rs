//! Publishing party events: encoded, deduplicated by event id, many acknowledgements in flight.

use async_nats::jetstream::{self, context::PublishAckFuture, message::PublishMessage};
use futures::stream::{FuturesUnordered, StreamExt};
use ledger_schemas::{Message, PartyEvent};

/// Why an event was not stored.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The publish or its acknowledgement failed; retrying with the same event id is safe
    /// (within the stream's two-minute duplicate window the event is stored once).
    #[error("event {id} was not acknowledged: {source}")]
    Unavailable {
        /// The event id.
        id: uuid::Uuid,
        /// The cause.
        #[source]
        source: async_nats::Error,
    },
}

/// The stored position of a published event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    /// Stream sequence.
    pub seq: u64,
    /// Whether the event id was already stored (a retried publish): nothing new was stored.
    pub duplicate: bool,
}

/// Totals of [`Publisher::publish_all`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Report {
    /// Events newly stored.
    pub stored: u64,
    /// Events that were already stored.
    pub duplicates: u64,
    /// The highest stream sequence acknowledged.
    pub last_seq: u64,
}

/// Publishes party events to `LEDGER_EVENTS` for producers (a SIP Server adapter, a simulator,
/// tests). Cheap to clone.
#[derive(Debug, Clone)]
pub struct Publisher {
    js: jetstream::Context,
}

impl Publisher {
    /// A publisher over a JetStream context.
    pub fn new(js: jetstream::Context) -> Self {
        Self { js }
    }

    /// Sends one event with `Nats-Msg-Id` set to its id; the returned future resolves to its
    /// acknowledgement. Sending waits when the context already has its maximum of
    /// acknowledgements in flight.
    ///
    /// # Errors
    ///
    /// [`PublishError`] when the event cannot be sent.
    pub async fn send(&self, event: &PartyEvent) -> Result<PendingAck, PublishError> {
        let id = event.id;
        let message = PublishMessage::build()
            .payload(event.encode().into())
            .message_id(id.to_string());
        let ack = self
            .js
            .send_publish(event.subject(), message)
            .await
            .map_err(|e| PublishError::Unavailable {
                id,
                source: e.into(),
            })?;
        Ok(PendingAck { id, ack })
    }

    /// Publishes one event and waits for its acknowledgement.
    ///
    /// # Errors
    ///
    /// [`PublishError`] when it is not acknowledged.
    pub async fn publish(&self, event: &PartyEvent) -> Result<Published, PublishError> {
        self.send(event).await?.wait().await
    }

    /// Publishes every event in order, with at most `in_flight` acknowledgements outstanding.
    ///
    /// # Errors
    ///
    /// The first [`PublishError`]; events sent before it may be stored, and publishing them
    /// again is safe.
    pub async fn publish_all<'a>(
        &self,
        events: impl IntoIterator<Item = &'a PartyEvent>,
        in_flight: usize,
    ) -> Result<Report, PublishError> {
        let mut pending = FuturesUnordered::new();
        let mut report = Report::default();
        let mut count = |p: Published| {
            if p.duplicate {
                report.duplicates += 1;
            } else {
                report.stored += 1;
            }
            report.last_seq = report.last_seq.max(p.seq);
        };
        for event in events {
            let full = pending.len() >= in_flight.max(1);
            if full && let Some(done) = pending.next().await {
                count(done?);
            }
            let sent = self.send(event).await?;
            pending.push(sent.wait());
        }
        while let Some(done) = pending.next().await {
            count(done?);
        }
        Ok(report)
    }
}

/// An event sent and not yet acknowledged.
#[derive(Debug)]
pub struct PendingAck {
    id: uuid::Uuid,
    ack: PublishAckFuture,
}

impl PendingAck {
    /// Waits for the acknowledgement.
    ///
    /// # Errors
    ///
    /// [`PublishError`] when it does not come.
    pub async fn wait(self) -> Result<Published, PublishError> {
        let ack = self.ack.await.map_err(|e| PublishError::Unavailable {
            id: self.id,
            source: e.into(),
        })?;
        Ok(Published {
            seq: ack.sequence,
            duplicate: ack.duplicate,
        })
    }
}
