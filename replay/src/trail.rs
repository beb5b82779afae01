//! The audit trail: the decisions of the command services, and with them, on request, the
//! conference changes (joins, leaves, deletes) and the option changes, in time order.

use std::collections::HashSet;

use async_nats::jetstream;
use ledger_core::Fold;
use ledger_schemas::{
    AuditRecord, DeletedBy, Dn, EventBody, EventKind, Message, OptionChanged, PartyEvent, Site,
    subject,
};
use uuid::Uuid;

use crate::read::{History, ReadError};
use crate::subscribe::DnFilter;
use crate::window::{Window, read_window};

/// Decisions accepted or refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted.
    Ok,
    /// Refused (any code).
    Refused,
}

/// What an audit reads.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Only this call's.
    pub call: Option<Uuid>,
    /// Only decisions and changes of this site (the deciding site; the publishing site).
    pub site: Option<Site>,
    /// Only the calls this DN took part in; implies `changes`.
    pub dn: Option<DnFilter>,
    /// Only what happened in this window (decisions: when decided; changes: their `ts`).
    pub window: Window,
    /// Only decisions with this outcome.
    pub outcome: Option<Outcome>,
    /// Conference changes too (and option changes, without `dn`).
    pub changes: bool,
}

/// One line of the trail.
#[derive(Debug, Clone, PartialEq)]
pub enum TrailLine {
    /// A TDeleteFromConference decision.
    Decision {
        /// Sequence in `LEDGER_AUDIT`.
        seq: u64,
        /// When decided.
        ts: u64,
        /// The deciding site.
        site: Site,
        /// The call.
        call: Uuid,
        /// The request id, when the request had one.
        request: Option<Uuid>,
        /// The requester's DN as sent.
        this_dn: Option<String>,
        /// The target as sent.
        other_dn: Option<String>,
        /// Accepted or not.
        ok: bool,
        /// The refusal code.
        code: Option<&'static str>,
    },
    /// A party joined, left or was deleted.
    Change {
        /// Sequence in `LEDGER_EVENTS`.
        seq: u64,
        /// The event's `ts`.
        ts: u64,
        /// The publishing site.
        site: Site,
        /// The call.
        call: Uuid,
        /// What happened.
        kind: EventKind,
        /// The party.
        party: Uuid,
        /// The party's DN, when the call knows it.
        dn: Option<Dn>,
        /// Who deleted it.
        by: Option<DeletedBy>,
    },
    /// An option changed.
    OptionChange {
        /// Sequence in `LEDGER_AUDIT`.
        seq: u64,
        /// When recorded.
        ts: u64,
        /// The site.
        site: Site,
        /// The option (key without the site).
        key: &'static str,
        /// The value before.
        old: Option<String>,
        /// The value written.
        new: Option<String>,
        /// It was invalid and refused.
        refused: bool,
    },
}

impl TrailLine {
    /// When it happened.
    pub fn ts(&self) -> u64 {
        match self {
            Self::Decision { ts, .. } | Self::Change { ts, .. } | Self::OptionChange { ts, .. } => {
                *ts
            }
        }
    }

    /// The line as `ledger audit --format json` prints it; `typed` adds `type` (with changes).
    pub fn to_json(&self, typed: bool) -> serde_json::Value {
        let mut v = match self {
            Self::Decision {
                ts,
                site,
                call,
                request,
                this_dn,
                other_dn,
                ok,
                code,
                ..
            } => serde_json::json!({
                "ts": ts, "site": site.as_str(), "call": call.to_string(),
                "request": request.map(|r| r.to_string()), "this_dn": this_dn,
                "other_dn": other_dn, "ok": ok, "code": code,
            }),
            Self::Change {
                seq,
                ts,
                site,
                call,
                kind,
                party,
                dn,
                by,
            } => {
                let mut v = serde_json::json!({
                    "seq": seq, "ts": ts, "site": site.as_str(), "call": call.to_string(),
                    "kind": kind.as_str(), "party": party.to_string(),
                    "dn": dn.map(|d| d.to_string()),
                });
                if let Some(by) = by {
                    v["by"] = serde_json::json!({
                        "party": by.party.to_string(), "dn": by.dn.as_str(), "site": by.site.as_str(),
                    });
                }
                v
            }
            Self::OptionChange {
                ts,
                site,
                key,
                old,
                new,
                refused,
                ..
            } => {
                let mut v = serde_json::json!({
                    "ts": ts, "site": site.as_str(), "key": key, "old": old, "new": new,
                });
                if *refused {
                    v["refused"] = true.into();
                }
                v
            }
        };
        if typed && let Some(map) = v.as_object_mut() {
            let kind = match self {
                Self::Decision { .. } => "decision",
                Self::Change { .. } => "change",
                Self::OptionChange { .. } => "option",
            };
            let mut typed = serde_json::Map::new();
            typed.insert("type".into(), kind.into());
            typed.extend(std::mem::take(map));
            *map = typed;
        }
        v
    }
}

/// The trail, and how many stored messages were read to build it.
#[derive(Debug, Clone, Default)]
pub struct Trail {
    /// The lines, in time order.
    pub lines: Vec<TrailLine>,
    /// Messages read from the streams.
    pub read: u64,
}

/// Reads the trail `query` asks for. A time window reads only that window of the streams;
/// `progress` is told how many messages were read of how many were pending.
///
/// # Errors
///
/// [`ReadError`] when a stream cannot be read.
pub async fn audit_trail(
    js: &jetstream::Context,
    history: &History,
    query: &AuditQuery,
    mut progress: impl FnMut(u64, u64),
) -> Result<Trail, ReadError> {
    let mut trail = Trail::default();
    let changes = query.changes || query.dn.is_some();
    // The calls the DN took part in, and the changes, from the events.
    let mut calls: Option<HashSet<Uuid>> = None;
    if changes {
        let filter = query
            .call
            .map_or_else(|| subject::EVENTS_SUBJECTS.to_owned(), subject::call_events);
        let messages = read_window(
            js,
            subject::EVENTS_STREAM,
            &filter,
            query.window,
            &mut progress,
        )
        .await?;
        trail.read += messages.len() as u64;
        let mut fold: Fold<()> = Fold::new();
        let mut with_dn = HashSet::new();
        for m in &messages {
            let Ok(event) = PartyEvent::decode_on(&m.subject, &m.payload) else {
                continue;
            };
            if fold.call(event.call).is_none() && m.seq > 1 {
                // A call that began before the window: its parties, from its start.
                let before = history.read_call(event.call, 1, Some(m.seq - 1)).await?;
                trail.read += before.len() as u64;
                for b in &before {
                    fold.ingest(b.seq, &b.subject, &b.payload);
                }
            }
            fold.ingest(m.seq, &m.subject, &m.payload);
            let Some(call) = fold.call(event.call) else {
                continue;
            };
            if let Some(dn) = query.dn
                && call.parties().iter().any(|p| dn.matches(p.dn, p.location))
            {
                with_dn.insert(event.call);
            }
            if !query.window.contains(event.ts) || query.site.is_some_and(|s| s != event.site) {
                continue;
            }
            let by = match &event.body {
                EventBody::Deleted { by, .. } => Some(*by),
                _ => None,
            };
            trail.lines.push(TrailLine::Change {
                seq: m.seq,
                ts: event.ts,
                site: event.site,
                call: event.call,
                kind: event.kind(),
                party: event.party,
                dn: call.party(event.party).map(|p| p.dn),
                by,
            });
        }
        if query.dn.is_some() {
            trail.lines.retain(|l| match l {
                TrailLine::Change { call, .. } => with_dn.contains(call),
                _ => true,
            });
            calls = Some(with_dn);
        }
    }
    // Decisions (and option changes) from the audit stream.
    let filter = format!(
        "ledger.audit.{}.{}",
        query.site.map_or_else(|| "*".to_owned(), |s| s.to_string()),
        query.call.map_or_else(|| "*".to_owned(), |c| c.to_string()),
    );
    let messages = read_window(
        js,
        subject::AUDIT_STREAM,
        &filter,
        query.window,
        &mut progress,
    )
    .await?;
    trail.read += messages.len() as u64;
    let options_too = query.changes && query.dn.is_none() && query.call.is_none();
    for m in &messages {
        if m.subject.rsplit('.').next() == Some(subject::OPTIONS_TOKEN) {
            if options_too
                && let Ok(c) = OptionChanged::decode(&m.payload)
                && query.window.contains(c.ts)
            {
                trail.lines.push(TrailLine::OptionChange {
                    seq: m.seq,
                    ts: c.ts,
                    site: c.site,
                    key: c.option.as_str(),
                    old: c.old,
                    new: c.new,
                    refused: c.refused,
                });
            }
            continue;
        }
        let Ok(record) = AuditRecord::decode(&m.payload) else {
            tracing::warn!(seq = m.seq, "an audit record does not decode; skipped");
            continue;
        };
        let call = m
            .subject
            .rsplit('.')
            .next()
            .and_then(subject::parse_uuid_token)
            .unwrap_or_default();
        let ok = record.reply.outcome.is_ok();
        let keep = query.window.contains(record.ts)
            && calls.as_ref().is_none_or(|c| c.contains(&call))
            && match query.outcome {
                None => true,
                Some(Outcome::Ok) => ok,
                Some(Outcome::Refused) => !ok,
            };
        if keep {
            trail.lines.push(TrailLine::Decision {
                seq: m.seq,
                ts: record.ts,
                site: record.site,
                call,
                request: record.reply.request,
                this_dn: record.request_text("this_dn").map(str::to_owned),
                other_dn: record.request_text("other_dn").map(str::to_owned),
                ok,
                code: record.reply.code().map(|c| c.as_str()),
            });
        }
    }
    if changes {
        trail.lines.sort_by_key(TrailLine::ts);
    }
    Ok(trail)
}
