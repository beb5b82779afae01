//! Checking that what the services derived agrees with the log: every site's LCTParty lists
//! against the fold of the events, every `party_deleted` against an accepted decision in the
//! audit (and back), and the event stream against event ids stored twice.
//!
//! The fold is the core's, the same the projectors run; calls are forgotten once they ended and
//! were checked, so memory follows the calls in progress, not the length of the log.

use std::collections::{HashMap, HashSet};

use async_nats::jetstream::{self, kv};
use futures::TryStreamExt;
use ledger_core::{Fold, Ingested, View};
use ledger_schemas::{EventBody, LctList, Message, PartyEvent, Site, subject};
use uuid::Uuid;

use crate::{History, ReadError, read_audit};

/// Events read from the stream at once.
const PAGE: u64 = 10_000;
/// Ended calls kept in the fold to recognise late events, as a projector does by default.
const ENDED_KEPT: usize = 10_000;
/// Differences described in a report, at most (the rest are counted).
const DESCRIBED: usize = 20;

/// A site to check, and whether it shows other sites' parties (`extrouter/use-data-from`).
#[derive(Debug, Clone, Copy)]
pub struct SiteToCheck {
    /// The site.
    pub site: Site,
    /// Its propagation setting.
    pub propagates: bool,
}

/// One site's lists, checked.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SiteReport {
    /// The site.
    pub site: String,
    /// Calls whose list (or its absence) was compared with the fold.
    pub compared: u64,
    /// Lists that differ from the fold, are missing, or should not exist.
    pub differ: u64,
    /// Lists written after the last event checked (a projector ahead of the check): skipped.
    pub newer: u64,
}

/// What [`verify`] found.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Verification {
    /// The last stream sequence checked.
    pub up_to: u64,
    /// Events read.
    pub events: u64,
    /// Messages that did not decode.
    pub undecodable: u64,
    /// Events the fold skipped as anomalies (the projectors skip the same).
    pub anomalies: u64,
    /// Event ids stored more than once.
    pub doubled: u64,
    /// Calls seen.
    pub calls: u64,
    /// Calls in progress at `up_to`.
    pub in_progress: u64,
    /// Each site's lists.
    pub sites: Vec<SiteReport>,
    /// `party_deleted` events stored.
    pub deletes: u64,
    /// Accepted decisions in the audit (distinct requests).
    pub accepted: u64,
    /// `party_deleted` events without an accepted decision naming them.
    pub deletes_unaudited: u64,
    /// Accepted decisions naming no stored `party_deleted`.
    pub accepted_missing: u64,
    /// The first differences, described.
    pub differences: Vec<String>,
}

impl Verification {
    /// Whether everything agrees.
    pub fn agrees(&self) -> bool {
        self.doubled == 0
            && self.undecodable == 0
            && self.sites.iter().all(|s| s.differ == 0)
            && self.deletes_unaudited == 0
            && self.accepted_missing == 0
    }

    fn differ(&mut self, site: usize, what: String) {
        if let Some(s) = self.sites.get_mut(site) {
            s.differ += 1;
        }
        if self.differences.len() < DESCRIBED {
            self.differences.push(what);
        }
    }
}

/// Folds `LEDGER_EVENTS` up to `up_to` and compares every call's list at each of `sites` in
/// `lct` with the site's view, and the audit's accepted decisions with the stored deletes.
/// Lists written after `up_to` are skipped (counted as newer); run it when the projectors have
/// caught up.
///
/// # Errors
///
/// [`ReadError`] when a stream or the bucket cannot be read.
pub async fn verify(
    history: &History,
    js: &jetstream::Context,
    lct: &kv::Store,
    sites: &[SiteToCheck],
    up_to: u64,
) -> Result<Verification, ReadError> {
    let unavailable = |stream: &'static str| {
        move |e: &dyn std::fmt::Display| ReadError::Unavailable {
            stream,
            reason: e.to_string(),
        }
    };
    let live: HashSet<String> = lct
        .keys()
        .await
        .map_err(|e| unavailable(subject::LCT_BUCKET)(&e))?
        .try_collect()
        .await
        .map_err(|e| unavailable(subject::LCT_BUCKET)(&e))?;
    let mut report = Verification {
        up_to,
        sites: sites
            .iter()
            .map(|s| SiteReport {
                site: s.site.to_string(),
                ..SiteReport::default()
            })
            .collect(),
        ..Verification::default()
    };
    let mut fold: Fold<bool> = Fold::new();
    let mut ids: HashSet<Uuid> = HashSet::new();
    let mut deletes: HashMap<u64, Uuid> = HashMap::new();
    let mut from = 1;
    while from <= up_to {
        let last = up_to.min(from + PAGE - 1);
        let page = history
            .read_filtered(
                subject::EVENTS_STREAM,
                subject::EVENTS_SUBJECTS,
                from,
                Some(last),
            )
            .await?;
        for m in &page {
            report.events += 1;
            if let Ok(event) = PartyEvent::decode_on(&m.subject, &m.payload) {
                if !ids.insert(event.id) {
                    report.doubled += 1;
                    if report.differences.len() < DESCRIBED {
                        report.differences.push(format!(
                            "event {} stored twice (again at {})",
                            event.id, m.seq
                        ));
                    }
                }
                if matches!(event.body, EventBody::Deleted { .. }) {
                    deletes.insert(m.seq, event.id);
                }
            }
            match fold.ingest(m.seq, &m.subject, &m.payload) {
                Ingested::Applied {
                    call, ended: true, ..
                } => {
                    compare_call(&fold, call, sites, lct, &live, up_to, &mut report).await?;
                    if let Some((_, checked)) = fold.get_mut(call) {
                        *checked = true;
                    }
                }
                Ingested::Applied {
                    call, first: true, ..
                } => {
                    report.calls += 1;
                    let _ = call;
                }
                Ingested::Anomaly(..) => report.anomalies += 1,
                Ingested::Undecodable(e) => {
                    report.undecodable += 1;
                    if report.differences.len() < DESCRIBED {
                        report
                            .differences
                            .push(format!("message {} does not decode: {e}", m.seq));
                    }
                }
                _ => {}
            }
            fold.evict_ended(ENDED_KEPT, |checked| *checked);
        }
        from = last + 1;
        if page.is_empty() {
            break;
        }
    }
    // The calls in progress, and the lists that belong to no call in progress.
    let mut open: Vec<Uuid> = Vec::new();
    for (call, checked) in fold.iter_mut() {
        if !*checked && !call.has_ended() {
            open.push(call.id());
        }
    }
    report.in_progress = open.len() as u64;
    let mut expected_keys: HashSet<String> = HashSet::new();
    for &call in &open {
        compare_call(&fold, call, sites, lct, &live, up_to, &mut report).await?;
        for s in sites {
            expected_keys.insert(subject::lct_key(s.site, call));
        }
    }
    let checked_sites: HashSet<String> = sites.iter().map(|s| s.site.to_string()).collect();
    for key in &live {
        let ours = subject::parse_lct_key(key)
            .is_ok_and(|(site, _)| checked_sites.contains(site.as_str()));
        if ours && !expected_keys.contains(key) && !ended_key_checked(key, &fold) {
            let site = sites
                .iter()
                .position(|s| key.starts_with(s.site.as_str()))
                .unwrap_or(0);
            report.differ(site, format!("{key}: a list of no call in progress"));
        }
    }
    // The audit: every accepted decision names a stored party_deleted, and back.
    let mut accepted: HashMap<Uuid, (u64, Uuid)> = HashMap::new();
    for entry in read_audit(js, None, None).await? {
        let Ok(record) = entry.record else { continue };
        if let (Some(request), Ok(ok)) = (record.reply.request, &record.reply.outcome)
            && ok.seq <= up_to
        {
            accepted.entry(request).or_insert((ok.seq, ok.event));
        }
    }
    report.deletes = deletes.len() as u64;
    report.accepted = accepted.len() as u64;
    let named: HashSet<(u64, Uuid)> = accepted.values().copied().collect();
    for (&seq, &id) in &deletes {
        if !named.contains(&(seq, id)) {
            report.deletes_unaudited += 1;
            if report.differences.len() < DESCRIBED {
                report.differences.push(format!(
                    "party_deleted {id} at {seq} has no accepted decision in the audit"
                ));
            }
        }
    }
    for (request, (seq, id)) in &accepted {
        if deletes.get(seq) != Some(id) {
            report.accepted_missing += 1;
            if report.differences.len() < DESCRIBED {
                report.differences.push(format!(
                    "request {request} was accepted as {id} at {seq}, which is not stored"
                ));
            }
        }
    }
    Ok(report)
}

/// Whether `key` is the list of a call the fold saw end (already compared when it ended).
fn ended_key_checked(key: &str, fold: &Fold<bool>) -> bool {
    subject::parse_lct_key(key)
        .ok()
        .and_then(|(_, call)| fold.call(call))
        .is_some_and(ledger_core::Call::has_ended)
}

/// Compares one call's list at every site with the site's view of the fold.
async fn compare_call(
    fold: &Fold<bool>,
    call: Uuid,
    sites: &[SiteToCheck],
    lct: &kv::Store,
    live: &HashSet<String>,
    up_to: u64,
    report: &mut Verification,
) -> Result<(), ReadError> {
    let Some(folded) = fold.call(call) else {
        return Ok(());
    };
    for (i, s) in sites.iter().enumerate() {
        let view = View::new(folded, s.site, s.propagates);
        let key = subject::lct_key(s.site, call);
        report.sites[i].compared += 1;
        let stored = if live.contains(&key) {
            lct.get(&key).await.map_err(|e| ReadError::Unavailable {
                stream: subject::LCT_BUCKET,
                reason: e.to_string(),
            })?
        } else {
            None
        };
        let stored = stored.map(|b| LctList::decode(&b));
        match (view.is_empty(), stored) {
            (true, None) => {}
            (_, Some(Ok(list))) if list.seq > up_to => report.sites[i].newer += 1,
            (false, Some(Ok(list))) if list == view.lct_list() => {}
            (true, Some(_)) => report.differ(
                i,
                format!("{key}: a list of a call with no party in the view"),
            ),
            (false, None) => report.differ(
                i,
                format!(
                    "{key}: no list, the fold has {} parties",
                    view.present().count()
                ),
            ),
            (false, Some(Ok(list))) => report.differ(
                i,
                format!(
                    "{key}: the list at seq {} differs from the fold at seq {}",
                    list.seq,
                    view.lct_list().seq
                ),
            ),
            (false, Some(Err(e))) => {
                report.differ(i, format!("{key}: the list does not decode: {e}"))
            }
        }
    }
    Ok(())
}
