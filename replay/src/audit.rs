//! Reading the audit back: every decision, in stream order.

use async_nats::jetstream::{self, consumer::DeliverPolicy, consumer::pull};
use futures::StreamExt;
use ledger_schemas::{AuditRecord, Message, Site, subject};
use uuid::Uuid;

use crate::read::ReadError;

/// One stored audit record.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    /// Stream sequence in `LEDGER_AUDIT`.
    pub seq: u64,
    /// The call of the subject.
    pub call: Uuid,
    /// The record, or why it does not decode.
    pub record: Result<AuditRecord, String>,
}

/// Reads the audit records of `site` (every site when `None`) about `call` (every call when
/// `None`), in stream order.
///
/// # Errors
///
/// [`ReadError`] when the stream cannot be read.
pub async fn read_audit(
    js: &jetstream::Context,
    site: Option<Site>,
    call: Option<Uuid>,
) -> Result<Vec<AuditEntry>, ReadError> {
    const STREAM: &str = subject::AUDIT_STREAM;
    let unavailable = |e: &dyn std::fmt::Display| ReadError::Unavailable {
        stream: STREAM,
        reason: e.to_string(),
    };
    let filter = format!(
        "ledger.audit.{}.{}",
        site.map_or_else(|| "*".to_owned(), |s| s.to_string()),
        call.map_or_else(|| "*".to_owned(), |c| c.to_string())
    );
    let stream = js.get_stream(STREAM).await.map_err(|e| unavailable(&e))?;
    let mut consumer = stream
        .create_consumer(pull::OrderedConfig {
            filter_subject: filter,
            deliver_policy: DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .map_err(|e| unavailable(&e))?;
    let pending = consumer
        .info()
        .await
        .map_err(|e| unavailable(&e))?
        .num_pending;
    let mut out = Vec::new();
    if pending == 0 {
        return Ok(out);
    }
    let mut messages = consumer.messages().await.map_err(|e| unavailable(&e))?;
    while let Some(msg) = messages.next().await {
        let msg = msg.map_err(|e| unavailable(&e))?;
        let info = msg.info().map_err(|e| unavailable(&e))?;
        let (seq, left) = (info.stream_sequence, info.pending);
        // Option changes share the stream; this reads decisions.
        if msg.subject.rsplit('.').next() == Some(subject::OPTIONS_TOKEN) {
            if left == 0 {
                break;
            }
            continue;
        }
        let call = msg
            .subject
            .rsplit('.')
            .next()
            .and_then(subject::parse_uuid_token)
            .unwrap_or_default();
        out.push(AuditEntry {
            seq,
            call,
            record: AuditRecord::decode(&msg.payload).map_err(|e| e.to_string()),
        });
        if left == 0 {
            break;
        }
    }
    Ok(out)
}
