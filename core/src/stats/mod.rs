//! Statistics folded from the log: each site's figures per 15-minute slot and its real-time
//! state, from the same [`Fold`] of calls as the lists, so that the live figures and a recount
//! from history are the same function of the same messages.
//!
//! The rules (per site, over the global view: every event applied, whatever the options):
//!
//! - A site is **in** a call while a party (not a supervisor) located there is present. A call
//!   counts once per site it was ever in, in the slot of the call's first event.
//! - The call is a **conference** while three parties (not supervisors) are present; it is
//!   **observed** while a supervisor that monitors one of its parties (a party that joined the
//!   call, present or not) is present: from the first such supervisor's join (or the monitored
//!   party's, if it came later) until the last one leaves or is deleted, not until the call ends. Each counts once per call and site, in the call's slot,
//!   if it happened while the site was in the call.
//! - **Durations** (call, conference, observed, and observed by mode: the mode a supervisor
//!   joined in) are the time a flag stayed on while the site was in the call, counted when the
//!   flag turns off and split across the slots it spans, from the events' `ts`. A flag's time
//!   runs from the `ts` of the event that turned it on to the `ts` of the one that turned it off
//!   (none when that is earlier: a late event); a span is counted up to [`MAX_SPAN_US`].
//! - An accepted **delete** is its `party_deleted` event, counted at the deciding site in the
//!   slot of its `ts`, local or remote by the deleted party's location; **refusals** come from
//!   the audit records, by code, in the slot of the decision.
//! - Everything is counted in the slot of its own `ts`, however late it arrives.

mod group;
mod track;

use std::collections::{BTreeMap, HashMap};

use ledger_schemas::{
    AuditRecord, CallNow, Counts, EventBody, Figures, LctSupervisor, Message, PartyEvent, Role,
    SLOT_US, Site, SiteNow, StatsKey, slot_of, subject,
};
use uuid::Uuid;

use crate::call::Call;
use crate::fold::{Fold, FoldCounters, Ingested};
pub use group::{Width, regroup};
use track::{CONFERENCE, FLAGS, IN_CALL, MODES, OBSERVED, SiteTrack, Track, call_flags, in_call};

/// Ended calls kept after they end (for events that arrive after the end), the oldest forgotten
/// first. A constant, so that every reader of the same messages forgets the same calls.
pub const KEEP_ENDED: usize = 4096;

/// The longest span of a flag that is counted: 7 days. A longer one (a clock far off) is counted
/// as its last 7 days, and [`StatsCounters::clamped`] says how often that happened.
pub const MAX_SPAN_US: u64 = 7 * 24 * 3600 * 1_000_000;

/// Counters of a [`Stats`] fold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsCounters {
    /// The fold of the calls.
    pub events: FoldCounters,
    /// Audit records read.
    pub audit_records: u64,
    /// Audit messages that could not be decoded (counted, never applied).
    pub audit_undecodable: u64,
    /// Spans longer than [`MAX_SPAN_US`], counted as their last 7 days.
    pub clamped: u64,
}

/// A site's calls in progress, as counted so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Now {
    seq: u64,
    ts: u64,
    calls: u64,
    conferences: u64,
    observed: u64,
}

/// The statistics of every site, folded from `LEDGER_EVENTS` and `LEDGER_AUDIT`.
#[derive(Debug)]
pub struct Stats {
    fold: Fold<Track>,
    slots: BTreeMap<(Site, u64), Counts>,
    now: BTreeMap<Site, Now>,
    audit_seq: u64,
    counters: StatsCounters,
    /// Keys changed since [`Stats::take_changes`], with the `(seq, ts)` of a call's last event
    /// (to end the call's key if the call was forgotten meanwhile); `None`: not tracked.
    changed: Option<HashMap<StatsKey, (u64, u64)>>,
}

impl Default for Stats {
    fn default() -> Self {
        Self::new()
    }
}

impl Stats {
    /// An empty fold, for a recount.
    pub fn new() -> Self {
        Self {
            fold: Fold::new(),
            slots: BTreeMap::new(),
            now: BTreeMap::new(),
            audit_seq: 0,
            counters: StatsCounters::default(),
            changed: None,
        }
    }

    /// An empty fold that also remembers which keys changed, for a live projection.
    pub fn tracking_changes() -> Self {
        Self {
            changed: Some(HashMap::new()),
            ..Self::new()
        }
    }

    /// Starts remembering which keys change (a live projection, once it has recounted).
    pub fn track_changes(&mut self) {
        self.changed.get_or_insert_with(HashMap::new);
    }

    /// The starts of `site`'s slots with figures, in order.
    pub fn slots(&self, site: Site) -> impl Iterator<Item = u64> + '_ {
        self.slots
            .range((site, 0)..=(site, u64::MAX))
            .map(|(&(_, start), _)| start)
    }

    /// Reads the event stored at `seq` on `subject` (`LEDGER_EVENTS`).
    pub fn ingest_event(&mut self, seq: u64, subject: &str, payload: &[u8]) -> Ingested {
        match PartyEvent::decode_on(subject, payload) {
            Ok(event) => self.apply(seq, &event),
            Err(_) => {
                let ingested = self.fold.ingest(seq, subject, payload);
                self.counters.events = self.fold.counters();
                ingested
            }
        }
    }

    /// Applies one decoded event stored at `seq`.
    pub fn apply(&mut self, seq: u64, event: &PartyEvent) -> Ingested {
        let ingested = self.fold.apply(seq, event);
        let Ingested::Applied { call, ended, .. } = &ingested else {
            return ingested;
        };
        let (call, ended) = (*call, *ended);
        if let Some((folded, track)) = self.fold.get_mut(call) {
            let first_ts = *track.first_ts.get_or_insert(event.ts);
            let mut sink = Sink {
                slots: &mut self.slots,
                now: &mut self.now,
                changed: self.changed.as_mut(),
                clamped: &mut self.counters.clamped,
            };
            sink.step(folded, track, first_ts, event.ts, seq);
            if let EventBody::Deleted { .. } = event.body
                && let Some(p) = folded.party(event.party)
            {
                let c = sink.slot(event.site, event.ts);
                if p.location == event.site {
                    c.deletes_local += 1;
                } else {
                    c.deletes_remote += 1;
                }
            }
        }
        if ended {
            self.fold.evict_ended(KEEP_ENDED, |_| true);
        }
        self.counters.events = self.fold.counters();
        ingested
    }

    /// Reads the audit message stored at `seq` on `subject` (`LEDGER_AUDIT`): a refused delete
    /// is counted; accepted deletes are counted from their events, option changes not at all.
    /// Returns `false` when the message could not be decoded.
    pub fn ingest_audit(&mut self, seq: u64, subject: &str, payload: &[u8]) -> bool {
        self.audit_seq = self.audit_seq.max(seq);
        if subject.rsplit('.').next() == Some(subject::OPTIONS_TOKEN) {
            return true;
        }
        let Ok(record) = AuditRecord::decode(payload) else {
            self.counters.audit_undecodable += 1;
            return false;
        };
        self.counters.audit_records += 1;
        if let Some(code) = record.reply.code() {
            let mut sink = Sink {
                slots: &mut self.slots,
                now: &mut self.now,
                changed: self.changed.as_mut(),
                clamped: &mut self.counters.clamped,
            };
            *sink
                .slot(record.site, record.ts)
                .refused
                .entry(code.as_str().to_owned())
                .or_default() += 1;
        }
        true
    }

    /// The last sequences read: of `LEDGER_EVENTS` and of `LEDGER_AUDIT`.
    pub fn last_read(&self) -> (u64, u64) {
        (self.fold.last_seq(), self.audit_seq)
    }

    /// The counters so far.
    pub fn counters(&self) -> StatsCounters {
        self.counters
    }

    /// Every site's figures, slot by slot in key order (site, then start).
    pub fn figures(&self) -> impl Iterator<Item = Figures> + '_ {
        let (seq, audit_seq) = self.last_read();
        self.slots
            .iter()
            .map(move |(&(site, start), counts)| Figures {
                site,
                start,
                seq,
                audit_seq,
                counts: counts.clone(),
            })
    }

    /// One slot's figures of a site, if anything was counted in it.
    pub fn slot_figures(&self, site: Site, start: u64) -> Option<Figures> {
        let (seq, audit_seq) = self.last_read();
        self.slots.get(&(site, start)).map(|counts| Figures {
            site,
            start,
            seq,
            audit_seq,
            counts: counts.clone(),
        })
    }

    /// The sites with figures or calls, in order.
    pub fn sites(&self) -> Vec<Site> {
        let mut sites: Vec<Site> = self.now.keys().copied().collect();
        sites.extend(self.slots.keys().map(|(s, _)| *s));
        sites.sort_unstable();
        sites.dedup();
        sites
    }

    /// `site`'s calls in progress now.
    pub fn site_now(&self, site: Site) -> SiteNow {
        let n = self.now.get(&site).copied().unwrap_or_default();
        SiteNow {
            site,
            seq: n.seq,
            ts: n.ts,
            calls: n.calls,
            conferences: n.conferences,
            observed: n.observed,
        }
    }

    /// `call` as `site` sees it now; `ended` when the site is not in it (or it was forgotten).
    pub fn call_now(&self, site: Site, call: Uuid) -> CallNow {
        let mut now = CallNow {
            call,
            site,
            seq: 0,
            ts: 0,
            ended: true,
            conference: false,
            observed: false,
            observers: Vec::new(),
            agents: Vec::new(),
        };
        let Some(folded) = self.fold.call(call) else {
            return now;
        };
        now.seq = folded.last_read();
        now.ts = last_ts(folded);
        if !in_call(folded, site) {
            return now;
        }
        let flags = call_flags(folded);
        now.ended = false;
        now.conference = flags & CONFERENCE != 0;
        now.observed = flags & OBSERVED != 0;
        for p in folded.parties().iter().filter(|p| p.is_present()) {
            if track::observes(folded, p) {
                now.observers.push(LctSupervisor {
                    party: p.id,
                    dn: p.dn,
                    location: p.location,
                    mode: p.mode,
                    monitors: p.monitors,
                });
            } else if p.role == Role::Agent && p.location == site {
                now.agents.push(ledger_schemas::AgentNow {
                    party: p.id,
                    dn: p.dn,
                    observed: now.observed,
                });
            }
        }
        now
    }

    /// The calls `site` is in now, in no particular order.
    pub fn calls_in_progress(&self, site: Site) -> impl Iterator<Item = Uuid> + '_ {
        self.fold
            .calls()
            .filter(move |c| in_call(c, site))
            .map(Call::id)
    }

    /// The keys changed since the last call, with the `(seq, ts)` a call's key was last changed
    /// at (for a call forgotten meanwhile). Empty unless built with [`Stats::tracking_changes`].
    pub fn take_changes(&mut self) -> HashMap<StatsKey, (u64, u64)> {
        self.changed
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Marks keys changed again (a write that must be made later).
    pub fn restore_changes(&mut self, keys: impl IntoIterator<Item = (StatsKey, (u64, u64))>) {
        if let Some(changed) = self.changed.as_mut() {
            for (key, at) in keys {
                let slot = changed.entry(key).or_insert(at);
                *slot = (slot.0.max(at.0), slot.1.max(at.1));
            }
        }
    }
}

/// The `ts` of the last event applied to `call`.
fn last_ts(call: &Call) -> u64 {
    call.parties()
        .iter()
        .flat_map(|p| std::iter::once(p.joined).chain(p.gone.map(|g| g.at)))
        .max_by_key(|at| at.seq)
        .map_or(0, |at| at.ts)
}

/// Where a step's figures go.
struct Sink<'a> {
    slots: &'a mut BTreeMap<(Site, u64), Counts>,
    now: &'a mut BTreeMap<Site, Now>,
    changed: Option<&'a mut HashMap<StatsKey, (u64, u64)>>,
    clamped: &'a mut u64,
}

impl Sink<'_> {
    fn mark(&mut self, key: StatsKey, seq: u64, ts: u64) {
        if let Some(changed) = self.changed.as_deref_mut() {
            changed.insert(key, (seq, ts));
        }
    }

    fn slot(&mut self, site: Site, ts: u64) -> &mut Counts {
        let start = slot_of(ts);
        self.mark(StatsKey::Figures(site, start), 0, 0);
        self.slots.entry((site, start)).or_default()
    }

    /// Brings `track` to what `call` is now, after the event at `seq`, `ts`.
    fn step(&mut self, call: &Call, track: &mut Track, first_ts: u64, ts: u64, seq: u64) {
        let flags = call_flags(call);
        for p in call.parties() {
            if !p.is_supervisor() && !track.sites.iter().any(|s| s.site == p.location) {
                track.sites.push(SiteTrack {
                    site: p.location,
                    on: 0,
                    counted: 0,
                    since: [0; FLAGS],
                });
            }
        }
        for i in 0..track.sites.len() {
            let site = track.sites[i].site;
            let on = if in_call(call, site) {
                IN_CALL | flags
            } else {
                0
            };
            let was = track.sites[i].on;
            if was & IN_CALL != 0 || on & IN_CALL != 0 {
                self.mark(StatsKey::Call(site, call.id()), seq, ts);
            }
            if was == on {
                continue;
            }
            track.sites[i].on = on;
            let mut now_changed = false;
            for flag in 0..FLAGS {
                let bit = 1u8 << flag;
                match (was & bit != 0, on & bit != 0) {
                    (false, true) => {
                        // A flag is part of its parent's time (conference and observed of the
                        // site's call time, a mode of observed time): a late event cannot start it
                        // before its parent started.
                        let since = &track.sites[i].since;
                        let start = match flag {
                            0 => ts,
                            1 | 2 => ts.max(since[0]),
                            _ => ts.max(since[2]),
                        };
                        track.sites[i].since[flag] = start;
                        if bit & (IN_CALL | CONFERENCE | OBSERVED) != 0 {
                            now_changed = true;
                            self.adjust_now(site, bit, true);
                            if track.sites[i].counted & bit == 0 {
                                track.sites[i].counted |= bit;
                                let c = self.slot(site, first_ts);
                                match bit {
                                    IN_CALL => c.calls += 1,
                                    CONFERENCE => c.conferences += 1,
                                    _ => c.observed += 1,
                                }
                            }
                        }
                    }
                    (true, false) => {
                        if bit & (IN_CALL | CONFERENCE | OBSERVED) != 0 {
                            now_changed = true;
                            self.adjust_now(site, bit, false);
                        }
                        self.span(site, flag, track.sites[i].since[flag], ts);
                    }
                    _ => {}
                }
            }
            if now_changed {
                let n = self.now.entry(site).or_default();
                n.seq = seq;
                n.ts = ts;
                self.mark(StatsKey::Now(site), seq, ts);
            }
        }
    }

    fn adjust_now(&mut self, site: Site, bit: u8, up: bool) {
        let n = self.now.entry(site).or_default();
        let figure = match bit {
            IN_CALL => &mut n.calls,
            CONFERENCE => &mut n.conferences,
            _ => &mut n.observed,
        };
        *figure = if up {
            figure.saturating_add(1)
        } else {
            figure.saturating_sub(1)
        };
    }

    /// Counts flag `flag`'s span `[from, to)` at `site`, split across slots.
    fn span(&mut self, site: Site, flag: usize, from: u64, to: u64) {
        let mut from = from;
        if to <= from {
            return;
        }
        if to - from > MAX_SPAN_US {
            *self.clamped += 1;
            from = to - MAX_SPAN_US;
        }
        while from < to {
            let end = (slot_of(from) + SLOT_US).min(to);
            let c = self.slot(site, from);
            let d = end - from;
            match flag {
                0 => c.call_us += d,
                1 => c.conference_us += d,
                2 => c.observed_us += d,
                _ => match MODES[flag - 3] {
                    ledger_schemas::MonitorMode::Mute => c.observed_mute_us += d,
                    ledger_schemas::MonitorMode::Coach => c.observed_coach_us += d,
                    ledger_schemas::MonitorMode::Connect => c.observed_connect_us += d,
                    ledger_schemas::MonitorMode::Normal => c.observed_normal_us += d,
                },
            }
            from = end;
        }
    }
}

#[cfg(test)]
mod tests;
