//! Appending a decided `party_deleted` with per-call optimistic concurrency, and the audit.

use async_nats::jetstream::{self, context::PublishError, message::PublishMessage};
use bytes::Bytes;
use ledger_schemas::{AuditRecord, Message, PartyEvent, subject};

use crate::fence::is_wrong_last_sequence;

/// How an append ended.
#[derive(Debug)]
pub(super) enum Appended {
    /// Stored at this sequence.
    Stored(u64),
    /// The request id was already stored (a resend inside the duplicate window) at this
    /// sequence: the stored event, not ours, is the answer.
    Duplicate(u64),
    /// The call changed since the expected sequence: bring the view up to date and decide again.
    Conflict,
}

/// Publishes `event` (encoded as `payload`) with `Nats-Msg-Id` = the request id, and the
/// expectation that the last message on `ledger.ev.<call>.>` is at `expected`.
///
/// # Errors
///
/// The publish error when it is neither stored, a duplicate, nor a conflict.
pub(super) async fn append(
    js: &jetstream::Context,
    event: &PartyEvent,
    payload: Bytes,
    request: uuid::Uuid,
    expected: u64,
) -> Result<Appended, PublishError> {
    let message = PublishMessage::build()
        .payload(payload)
        .message_id(request.to_string())
        .expected_last_subject_sequence(expected)
        .header(
            "Nats-Expected-Last-Subject-Sequence-Subject",
            subject::call_events(event.call).as_str(),
        );
    let ack = match js.send_publish(event.subject(), message).await {
        Ok(pending) => pending.await,
        Err(e) => Err(e),
    };
    match ack {
        Ok(ack) if ack.duplicate => Ok(Appended::Duplicate(ack.sequence)),
        Ok(ack) => Ok(Appended::Stored(ack.sequence)),
        Err(e) if is_wrong_last_sequence(&e) => Ok(Appended::Conflict),
        Err(e) => Err(e),
    }
}

/// Records a decision on `ledger.audit.<site>.<call>` and waits for the acknowledgement.
///
/// # Errors
///
/// The publish error when the record is not stored.
pub(super) async fn audit(
    js: &jetstream::Context,
    call: uuid::Uuid,
    record: &AuditRecord,
) -> Result<(), PublishError> {
    let subject = subject::audit(record.site, call);
    let message = PublishMessage::build()
        .payload(record.encode().into())
        .message_id(record.id.to_string());
    js.send_publish(subject, message).await?.await?;
    Ok(())
}
