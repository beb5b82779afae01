//! One TDeleteFromConference request: decode, decide against the view, append, audit, reply.

use bytes::Bytes;
use ledger_core::{Admitted, Call, Decision, View, admit, after_conflict, decide, unavailable};
use ledger_schemas::{
    Accepted, AuditRecord, DeleteReply, DeleteRequest, Message, PartyEvent, Refusal, RefusalCode,
    Site, SiteOptions, subject,
};
use uuid::Uuid;

use super::append::{Appended, append, audit};
use super::{Calls, CommandContext};
use crate::clock::now_us;

/// Handles one request and returns the encoded reply, and whether it was accepted. Every reply
/// to a request that names a call is recorded in the audit before it is returned.
pub(super) async fn handle(
    ctx: &CommandContext,
    calls: &mut Calls,
    payload: &[u8],
) -> (Bytes, bool) {
    let options = *ctx.options.borrow();
    let site = ctx.site;
    let mut view_seq = 0;
    let (mut reply, audited) = match admit(payload) {
        Err(bad) => {
            tracing::debug!(%site, error = %bad.refusal.message, "refused a malformed request");
            let reply = DeleteReply {
                request: bad.request,
                outcome: Err(bad.refusal),
            };
            (
                reply,
                bad.call
                    .zip(bad.audited)
                    .map(|(c, r)| (c, r, bad.request_bytes)),
            )
        }
        Ok(Admitted { request, raw }) => {
            let (outcome, seq) = decide_and_append(ctx, calls, &request, &options).await;
            view_seq = seq;
            match &outcome {
                Ok(a) => {
                    tracing::info!(%site, call = %request.call, request = %request.request, seq = a.seq, "deleted {}", request.other_dn)
                }
                Err(r) => {
                    tracing::info!(%site, call = %request.call, request = %request.request, code = r.code.as_str(), "refused: {}", r.message)
                }
            }
            let reply = DeleteReply {
                request: Some(request.request),
                outcome,
            };
            (reply, Some((request.call, raw, None)))
        }
    };
    if let Some((call, raw, request_bytes)) = audited {
        let record = AuditRecord {
            id: Uuid::now_v7(),
            ts: now_us(),
            site,
            request: raw,
            request_bytes,
            reply: reply.clone(),
            view_seq,
            config: options,
        };
        if let Err(e) = audit(&ctx.nats.js, call, &record).await {
            // The decision cannot be put on record: the client is told to retry, and a retry
            // with the same request id is answered as the first decision was.
            tracing::error!(%site, %call, error = %e, "cannot record the decision in LEDGER_AUDIT; answering unavailable");
            reply.outcome = Err(unavailable());
        }
    }
    (Bytes::from(reply.encode()), reply.outcome.is_ok())
}

/// Refusals a view that lags the stream could cause: checked again after catching up the call.
fn may_be_stale(code: RefusalCode) -> bool {
    !matches!(
        code,
        RefusalCode::BadRequest | RefusalCode::Conflict | RefusalCode::Unavailable
    )
}

/// The stream sequence of the site's view of `call`: the last event applied to it.
fn view_seq(calls: &Calls, site: Site, call: Uuid, options: &SiteOptions) -> u64 {
    calls
        .call(call)
        .and_then(|c| View::new(c, site, options.propagates()).last_applied())
        .map_or(0, |s| s.seq)
}

/// Decides and appends, and returns the outcome with the sequence of the view the final
/// decision was checked against.
async fn decide_and_append(
    ctx: &CommandContext,
    calls: &mut Calls,
    request: &DeleteRequest,
    options: &SiteOptions,
) -> (Result<Accepted, Refusal>, u64) {
    let mut checked_at = 0;
    let outcome = attempt_delete(ctx, calls, request, options, &mut checked_at).await;
    (outcome, checked_at)
}

/// Decides, appends with optimistic concurrency, and on a lost race brings the call up to date
/// and decides again, a bounded number of times.
async fn attempt_delete(
    ctx: &CommandContext,
    calls: &mut Calls,
    request: &DeleteRequest,
    options: &SiteOptions,
    checked_at: &mut u64,
) -> Result<Accepted, Refusal> {
    let site = ctx.site;
    let mut caught_up = false;
    let mut attempt = 0;
    loop {
        *checked_at = view_seq(calls, site, request.call, options);
        match decide(request, calls.call(request.call), site, options) {
            Err(refusal) if !caught_up && may_be_stale(refusal.code) => {
                catch_up(ctx, calls, request.call).await?;
                caught_up = true;
            }
            Err(refusal) => return Err(refusal),
            Ok(Decision::AlreadyDone { seq, event }) => {
                return Ok(accepted(calls, site, request, options, seq, event));
            }
            Ok(Decision::Delete(deletion)) => {
                attempt += 1;
                let expected = calls.call(request.call).map_or(0, Call::last_read);
                let event = deletion.into_event(Uuid::now_v7(), now_us(), site);
                let payload = Bytes::from(event.encode());
                let appended = append(&ctx.nats.js, &event, payload.clone(), request.request, expected)
                    .await
                    .map_err(|e| {
                        tracing::error!(%site, call = %request.call, error = %e, "cannot append party_deleted");
                        unavailable()
                    })?;
                match appended {
                    Appended::Stored(seq) => {
                        calls.ingest(seq, &event.subject(), &payload);
                        return Ok(accepted(calls, site, request, options, seq, event.id));
                    }
                    Appended::Duplicate(seq) => {
                        let id = stored_event(ctx, calls, request, seq).await?;
                        return Ok(accepted(calls, site, request, options, seq, id));
                    }
                    Appended::Conflict => {
                        if let Some(refusal) = after_conflict(attempt, ctx.config.max_attempts) {
                            return Err(refusal);
                        }
                        catch_up(ctx, calls, request.call).await?;
                        caught_up = true;
                    }
                }
            }
        }
    }
}

fn accepted(
    calls: &Calls,
    site: Site,
    request: &DeleteRequest,
    options: &SiteOptions,
    seq: u64,
    event: Uuid,
) -> Accepted {
    let parties = calls
        .call(request.call)
        .map(|c| View::new(c, site, options.propagates()).lct_parties())
        .unwrap_or_default();
    Accepted {
        seq,
        event,
        parties,
    }
}

/// Folds the call's events that the view has not read yet, straight from the stream.
async fn catch_up(ctx: &CommandContext, calls: &mut Calls, call: Uuid) -> Result<(), Refusal> {
    let from = calls.call(call).map_or(1, |c| c.last_read() + 1);
    let messages = ctx.nats.history.read_call(call, from, None)
        .await
        .map_err(|e| {
            tracing::error!(site = %ctx.site, %call, error = %e, "cannot bring the call up to date");
            unavailable()
        })?;
    for m in messages {
        calls.ingest(m.seq, &m.subject, &m.payload);
    }
    Ok(())
}

/// The id of the event a resent request stored the first time, read at its sequence.
async fn stored_event(
    ctx: &CommandContext,
    calls: &mut Calls,
    request: &DeleteRequest,
    seq: u64,
) -> Result<Uuid, Refusal> {
    let filter = subject::call_events(request.call);
    let messages = ctx
        .nats
        .history
        .read_filtered(subject::EVENTS_STREAM, &filter, seq, Some(seq))
        .await
        .map_err(|e| {
            tracing::error!(site = %ctx.site, seq, error = %e, "cannot read a stored event back");
            unavailable()
        })?;
    let Some(m) = messages.into_iter().next() else {
        tracing::error!(site = %ctx.site, seq, "the server named a stored event that cannot be read");
        return Err(unavailable());
    };
    calls.ingest(m.seq, &m.subject, &m.payload);
    PartyEvent::decode_on(&m.subject, &m.payload)
        .map(|e| e.id)
        .map_err(|e| {
            tracing::error!(site = %ctx.site, seq, error = %e, "a stored party_deleted does not decode");
            unavailable()
        })
}
