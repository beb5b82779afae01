//! Reading stored messages of one call back from `LEDGER_EVENTS` with batched direct gets.
//!
//! A direct get with `next_by_subj` asks the server for the messages of one subject filter, so
//! reading a call costs what the call holds, not what the stream holds (nats-server 2.11+).
//!
//! **Direct gets may be stale.** On a replicated stream any replica answers a direct get, and a
//! follower that is catching up (after a restart it answers from 90% synchronised on) does not
//! yet hold the latest messages. A replica applies the log in order, so what it lacks is always
//! a tail. [`History::read_call_through`] is for readers that must see everything up to a
//! sequence (a projector or command service re-folding a call up to its floor): it asks the
//! stream leader (`STREAM.MSG.GET`, never answered by a follower) whether the call has a message
//! after the last one read and up to that sequence, and reads any such tail from the leader.

use std::time::Duration;

use async_nats::jetstream::{self, stream::RawMessageErrorKind};
use async_nats::{Client, HeaderMap};
use bytes::Bytes;
use futures::StreamExt;
use ledger_schemas::subject;
use uuid::Uuid;

/// Messages asked for in one direct-get batch.
const BATCH: usize = 1024;
/// How long to wait for the next message of a batch before calling the server unavailable.
const TIMEOUT: Duration = Duration::from_secs(5);

/// One message as stored in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// Its stream sequence.
    pub seq: u64,
    /// Its subject.
    pub subject: String,
    /// Its payload.
    pub payload: Bytes,
}

/// Why history could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The server did not answer in time or the connection failed.
    #[error("cannot read {stream} from NATS: {reason}")]
    Unavailable {
        /// The stream.
        stream: &'static str,
        /// What happened.
        reason: String,
    },
    /// The server answered with something that is not a stored message.
    #[error("unexpected answer from {stream}: {reason}")]
    Protocol {
        /// The stream.
        stream: &'static str,
        /// What was wrong.
        reason: String,
    },
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.as_str().parse().ok()
}

/// Reads stored messages back with batched direct gets, through a client and the JetStream API
/// prefix of its domain.
#[derive(Debug, Clone)]
pub struct History {
    client: Client,
    api: String,
    js: jetstream::Context,
}

impl History {
    /// History read through `client`, in the account's own JetStream (`$JS.API`).
    pub fn new(client: Client) -> Self {
        Self::with_api_prefix(client, "$JS.API")
    }

    /// History read through `client` with another JetStream API prefix (a domain's is
    /// `$JS.<domain>.API`).
    pub fn with_api_prefix(client: Client, api: impl Into<String>) -> Self {
        let api = api.into();
        let js = jetstream::with_prefix(client.clone(), &api);
        Self { client, api, js }
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Reads every message of `stream` whose subject matches `filter`, from stream sequence
    /// `from` up to `up_to` inclusive (`None`: to the end), in stream order.
    ///
    /// # Errors
    ///
    /// [`ReadError`] when the server cannot be reached or answers outside the protocol.
    pub async fn read_filtered(
        &self,
        stream: &'static str,
        filter: &str,
        from: u64,
        up_to: Option<u64>,
    ) -> Result<Vec<StoredMessage>, ReadError> {
        read_filtered(&self.client, &self.api, stream, filter, from, up_to).await
    }

    /// Reads every stored event of `call` from stream sequence `from` up to `up_to` inclusive,
    /// complete even when the replica answering the direct gets lags (see the module's doc): the
    /// tail after the last event read is checked with the stream leader and read from it. Also
    /// says how many events only the leader had.
    ///
    /// # Errors
    ///
    /// [`ReadError`] when the server cannot be reached or answers outside the protocol.
    pub async fn read_call_through(
        &self,
        call: Uuid,
        from: u64,
        up_to: u64,
    ) -> Result<(Vec<StoredMessage>, usize), ReadError> {
        let mut messages = self.read_call(call, from, Some(up_to)).await?;
        let filter = subject::call_events(call);
        let stream = self
            .js
            .get_stream_no_info(subject::EVENTS_STREAM)
            .await
            .map_err(|e| ReadError::Unavailable {
                stream: subject::EVENTS_STREAM,
                reason: e.to_string(),
            })?;
        let mut from_leader = 0;
        loop {
            let next = messages.last().map_or(from.max(1), |m| m.seq + 1);
            if next > up_to {
                break;
            }
            let found = match stream
                .get_first_raw_message_by_subject(filter.as_str(), next)
                .await
            {
                Ok(m) => m,
                Err(e) if e.kind() == RawMessageErrorKind::NoMessageFound => break,
                Err(e) => {
                    return Err(ReadError::Unavailable {
                        stream: subject::EVENTS_STREAM,
                        reason: e.to_string(),
                    });
                }
            };
            if found.sequence > up_to {
                break;
            }
            messages.push(StoredMessage {
                seq: found.sequence,
                subject: found.subject.to_string(),
                payload: found.payload,
            });
            from_leader += 1;
        }
        Ok((messages, from_leader))
    }

    /// Reads the stored events of `call` from stream sequence `from` up to `up_to` inclusive.
    ///
    /// # Errors
    ///
    /// [`ReadError`] when the server cannot be reached.
    pub async fn read_call(
        &self,
        call: Uuid,
        from: u64,
        up_to: Option<u64>,
    ) -> Result<Vec<StoredMessage>, ReadError> {
        let filter = subject::call_events(call);
        self.read_filtered(subject::EVENTS_STREAM, &filter, from, up_to)
            .await
    }
}

async fn read_filtered(
    client: &Client,
    api: &str,
    stream: &'static str,
    filter: &str,
    from: u64,
    up_to: Option<u64>,
) -> Result<Vec<StoredMessage>, ReadError> {
    let unavailable = |reason: String| ReadError::Unavailable { stream, reason };
    let api = format!("{api}.DIRECT.GET.{stream}");
    let mut out = Vec::new();
    let mut next = from.max(1);
    loop {
        let inbox = client.new_inbox();
        let mut sub = client
            .subscribe(inbox.clone())
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let request = serde_json::json!({
            "seq": next,
            "next_by_subj": filter,
            "batch": BATCH,
        });
        // The server honours `up_to_seq` only for multi-subject requests, not for a batch on
        // one filter: the bound is kept here.
        client
            .publish_with_reply(api.clone(), inbox, request.to_string().into())
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let mut got = 0;
        let mut more = false;
        loop {
            let msg = match tokio::time::timeout(TIMEOUT, sub.next()).await {
                Ok(Some(m)) => m,
                Ok(None) => return Err(unavailable("the connection closed".into())),
                Err(_) => return Err(unavailable(format!("no answer within {TIMEOUT:?}"))),
            };
            if let Some(status) = msg.status {
                match status.as_u16() {
                    // End of batch: Nats-Num-Pending says whether more remain past it.
                    204 => {
                        more = msg
                            .headers
                            .as_ref()
                            .and_then(|h| header_u64(h, "Nats-Num-Pending"))
                            .is_some_and(|n| n > 0);
                        break;
                    }
                    // No message matches (any more).
                    404 => break,
                    other => {
                        return Err(ReadError::Protocol {
                            stream,
                            reason: format!(
                                "status {other} {}",
                                msg.description.unwrap_or_default()
                            ),
                        });
                    }
                }
            }
            let headers = msg.headers.as_ref();
            let seq = headers.and_then(|h| header_u64(h, "Nats-Sequence"));
            let subj = headers
                .and_then(|h| h.get("Nats-Subject"))
                .map(|v| v.as_str());
            let (Some(seq), Some(subj)) = (seq, subj) else {
                return Err(ReadError::Protocol {
                    stream,
                    reason: "a message without Nats-Sequence or Nats-Subject".into(),
                });
            };
            if up_to.is_some_and(|u| seq > u) {
                more = false;
                break;
            }
            out.push(StoredMessage {
                seq,
                subject: subj.to_owned(),
                payload: msg.payload,
            });
            next = seq + 1;
            got += 1;
        }
        let _ = sub.unsubscribe().await;
        if !more || got == 0 {
            return Ok(out);
        }
    }
}
