//! The fold of many calls: every call a site's services hold in memory, folded with [`evolve`],
//! and the eviction of calls that ended long enough ago.
//!
//! The projector, the command service and history readers all fold the same way; each keeps
//! its own data beside every call (`T`: the projector's list bookkeeping, nothing for the
//! command service), so a call costs one map entry whoever holds it.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};

use ledger_schemas::{DecodeError, EventSubject, PartyEvent};
use uuid::Uuid;

use crate::call::{Call, Change, Skip, evolve};

/// What reading one stored message did to a [`Fold`].
#[derive(Debug)]
pub enum Ingested {
    /// The event was applied to its call.
    Applied {
        /// The call.
        call: Uuid,
        /// What changed.
        change: Change,
        /// It was the first event applied to the call (the call is new to the fold).
        first: bool,
        /// The call ended with it: every party has gone.
        ended: bool,
    },
    /// A position already read: nothing changed.
    Redelivered,
    /// Not applied: it makes no sense for the state of its call.
    Anomaly(Uuid, Skip),
    /// Not applied: it could not be decoded, or disagrees with its subject.
    Undecodable(DecodeError),
}

/// A stored message read as a party event, before it is folded. Decoding is pure and apart
/// from the fold, so a task reading ahead can do it while the fold runs.
#[derive(Debug)]
pub enum Decoded {
    /// The event, checked against its subject.
    Event(PartyEvent),
    /// Not an event of its subject: why, and the call the subject names, if it names one.
    Undecodable {
        /// The call of the subject, when the subject is an event subject.
        call: Option<Uuid>,
        /// Why it could not be read.
        error: DecodeError,
    },
}

impl Decoded {
    /// Decodes the message stored on `subject`.
    pub fn of(subject: &str, payload: &[u8]) -> Self {
        match PartyEvent::decode_on(subject, payload) {
            Ok(event) => Self::Event(event),
            Err(error) => Self::Undecodable {
                call: EventSubject::parse(subject).ok().map(|p| p.call),
                error,
            },
        }
    }
}

/// Counters of a [`Fold`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FoldCounters {
    /// Events applied.
    pub applied: u64,
    /// Messages at a position already read (redeliveries, replays).
    pub redelivered: u64,
    /// Events that decoded but made no sense for their call.
    pub anomalies: u64,
    /// Messages that could not be decoded or disagreed with their subject.
    pub undecodable: u64,
}

/// Many calls folded from the log, each with the holder's data `T` beside it.
#[derive(Debug)]
pub struct Fold<T = ()> {
    calls: HashMap<Uuid, (Call, T)>,
    /// Calls that ended, in the order they ended (the oldest first).
    ended: VecDeque<Uuid>,
    last_seq: u64,
    counters: FoldCounters,
}

impl<T: Default> Default for Fold<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Default> Fold<T> {
    /// An empty fold.
    pub fn new() -> Self {
        Self {
            calls: HashMap::new(),
            ended: VecDeque::new(),
            last_seq: 0,
            counters: FoldCounters::default(),
        }
    }

    /// Reads the message stored at `seq` on `subject`.
    ///
    /// Pure and total: whatever the bytes, the message is applied, recognised as read, or
    /// skipped and counted. An undecodable message of a known call still advances that call's
    /// read position (its optimistic-concurrency sequence).
    pub fn ingest(&mut self, seq: u64, subject: &str, payload: &[u8]) -> Ingested {
        self.ingest_decoded(seq, Decoded::of(subject, payload))
    }

    /// Reads the message stored at `seq`, decoded beforehand: the same as [`Fold::ingest`].
    pub fn ingest_decoded(&mut self, seq: u64, decoded: Decoded) -> Ingested {
        match decoded {
            Decoded::Event(event) => self.apply(seq, &event),
            Decoded::Undecodable { call, error } => {
                self.last_seq = self.last_seq.max(seq);
                if let Some((call, _)) = call.and_then(|id| self.calls.get_mut(&id)) {
                    call.observe(seq);
                }
                self.counters.undecodable += 1;
                Ingested::Undecodable(error)
            }
        }
    }

    /// Applies one decoded event stored at `seq`.
    pub fn apply(&mut self, seq: u64, event: &PartyEvent) -> Ingested {
        self.last_seq = self.last_seq.max(seq);
        let (call, _) = self
            .calls
            .entry(event.call)
            .or_insert_with(|| (Call::new(event.call), T::default()));
        let first = call.parties().is_empty();
        match evolve(call, seq, event) {
            Ok(change) => {
                self.counters.applied += 1;
                let ended = call.has_ended();
                if ended {
                    self.ended.push_back(event.call);
                }
                Ingested::Applied {
                    call: event.call,
                    change,
                    first,
                    ended,
                }
            }
            Err(Skip::AlreadyRead { .. }) => {
                self.counters.redelivered += 1;
                Ingested::Redelivered
            }
            Err(skip) => {
                self.counters.anomalies += 1;
                if first {
                    // Nothing but anomalies: there is no call to keep.
                    self.calls.remove(&event.call);
                }
                Ingested::Anomaly(event.call, skip)
            }
        }
    }

    /// Restores `call` from its stored messages `(seq, subject, payload)` in stream order (at a
    /// take-over, from the index of calls in progress), and returns its data for the holder to
    /// fill. Messages that do not decode only advance the call's read position.
    pub fn restore<'a>(
        &mut self,
        id: Uuid,
        messages: impl IntoIterator<Item = (u64, &'a str, &'a [u8])>,
    ) -> &mut T {
        let mut call = Call::new(id);
        for (seq, subject, payload) in messages {
            match PartyEvent::decode_on(subject, payload) {
                Ok(e) => {
                    let _ = evolve(&mut call, seq, &e);
                }
                Err(_) => call.observe(seq),
            }
        }
        if call.has_ended() && !self.ended.contains(&id) {
            self.ended.push_back(id);
        }
        match self.calls.entry(id) {
            Entry::Occupied(held) => {
                let slot = held.into_mut();
                slot.0 = call;
                &mut slot.1
            }
            Entry::Vacant(free) => &mut free.insert((call, T::default())).1,
        }
    }

    /// Counts every message up to `floor` as read: a previous holder handled them.
    pub fn resume_at(&mut self, floor: u64) {
        self.last_seq = self.last_seq.max(floor);
    }

    /// The stream sequence of the last message read.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// The counters so far.
    pub fn counters(&self) -> FoldCounters {
        self.counters
    }

    /// Calls in progress: held and not ended.
    pub fn active_calls(&self) -> usize {
        self.calls.len() - self.ended.len()
    }

    /// The folded call, if held (in progress, or ended recently).
    pub fn call(&self, id: Uuid) -> Option<&Call> {
        self.calls.get(&id).map(|(c, _)| c)
    }

    /// Every held call (in progress, or ended recently), in no particular order.
    pub fn calls(&self) -> impl Iterator<Item = &Call> {
        self.calls.values().map(|(c, _)| c)
    }

    /// The folded call and the holder's data beside it.
    pub fn get_mut(&mut self, id: Uuid) -> Option<(&Call, &mut T)> {
        self.calls.get_mut(&id).map(|(c, t)| (&*c, t))
    }

    /// Every held call with the holder's data.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&Call, &mut T)> {
        self.calls.values_mut().map(|(c, t)| (&*c, t))
    }

    /// Forgets the calls that ended longest ago, keeping the last `keep`, as long as
    /// `forgettable` says the holder is done with them (it stops at the first it is not: calls
    /// are forgotten in the order they ended). Returns how many were forgotten.
    pub fn evict_ended(&mut self, keep: usize, forgettable: impl Fn(&T) -> bool) -> usize {
        let mut evicted = 0;
        while self.ended.len() > keep {
            let Some(&oldest) = self.ended.front() else {
                break;
            };
            match self.calls.get(&oldest) {
                Some((_, t)) if !forgettable(t) => break,
                _ => {}
            }
            self.ended.pop_front();
            self.calls.remove(&oldest);
            evicted += 1;
        }
        evicted
    }
}

#[cfg(test)]
mod tests {
    use ledger_schemas::{Dn, EventBody, Joined, Message, MonitorMode, Role, Site};

    use super::*;

    fn event(call: u128, party: u128, body: EventBody) -> PartyEvent {
        PartyEvent {
            id: Uuid::now_v7(),
            call: Uuid::from_u128(call),
            site: Site::new("SiteA").unwrap(),
            ts: 1,
            party: Uuid::from_u128(party),
            body,
        }
    }

    fn join(call: u128, party: u128) -> PartyEvent {
        event(
            call,
            party,
            EventBody::Joined(Joined {
                dn: Dn::new("7001").unwrap(),
                role: Role::Agent,
                mode: MonitorMode::Normal,
                monitors: None,
            }),
        )
    }

    fn leave(call: u128, party: u128) -> PartyEvent {
        event(call, party, EventBody::Left { reason: None })
    }

    fn ingest(fold: &mut Fold<u8>, seq: u64, e: &PartyEvent) -> Ingested {
        fold.ingest(seq, &e.subject(), &e.encode())
    }

    #[test]
    fn a_call_is_held_from_its_first_event_until_evicted_after_it_ended() {
        let mut fold = Fold::<u8>::new();
        assert!(matches!(
            ingest(&mut fold, 1, &join(1, 10)),
            Ingested::Applied {
                first: true,
                ended: false,
                ..
            }
        ));
        assert_eq!(fold.active_calls(), 1);
        assert!(matches!(
            ingest(&mut fold, 2, &leave(1, 10)),
            Ingested::Applied {
                first: false,
                ended: true,
                ..
            }
        ));
        assert_eq!(fold.active_calls(), 0);
        assert_eq!(fold.evict_ended(1, |_| true), 0, "one ended call is kept");
        assert!(fold.call(Uuid::from_u128(1)).is_some());
        assert_eq!(fold.evict_ended(0, |_| true), 1);
        assert!(fold.call(Uuid::from_u128(1)).is_none());
    }

    #[test]
    fn eviction_waits_for_the_holder_and_keeps_the_order_calls_ended_in() {
        let mut fold = Fold::<u8>::new();
        for call in 1..=3u128 {
            ingest(&mut fold, call as u64 * 2 - 1, &join(call, 10));
            ingest(&mut fold, call as u64 * 2, &leave(call, 10));
        }
        if let Some((_, busy)) = fold.get_mut(Uuid::from_u128(1)) {
            *busy = 1;
        }
        assert_eq!(fold.evict_ended(0, |t| *t == 0), 0, "the oldest is busy");
        if let Some((_, busy)) = fold.get_mut(Uuid::from_u128(1)) {
            *busy = 0;
        }
        assert_eq!(fold.evict_ended(1, |t| *t == 0), 2);
        assert!(
            fold.call(Uuid::from_u128(3)).is_some(),
            "the newest is kept"
        );
    }

    #[test]
    fn anomalies_about_unknown_calls_keep_nothing() {
        let mut fold = Fold::<u8>::new();
        assert!(matches!(
            ingest(&mut fold, 1, &leave(9, 10)),
            Ingested::Anomaly(_, Skip::UnknownParty(_))
        ));
        assert!(fold.call(Uuid::from_u128(9)).is_none());
        assert_eq!(fold.counters().anomalies, 1);
    }

    #[test]
    fn an_undecodable_message_advances_its_calls_position() {
        let mut fold = Fold::<u8>::new();
        let j = join(1, 10);
        ingest(&mut fold, 1, &j);
        let subject = j.subject();
        assert!(matches!(
            fold.ingest(2, &subject, b"garbage"),
            Ingested::Undecodable(_)
        ));
        assert_eq!(fold.call(Uuid::from_u128(1)).map(Call::last_read), Some(2));
        assert_eq!(fold.last_seq(), 2);
        assert!(matches!(ingest(&mut fold, 1, &j), Ingested::Redelivered));
    }

    #[test]
    fn a_restored_call_equals_the_call_folded_live() {
        let mut live = Fold::<u8>::new();
        let events = [join(1, 10), join(1, 11), leave(1, 10)];
        let stored: Vec<(u64, String, Vec<u8>)> = events
            .iter()
            .enumerate()
            .map(|(i, e)| (i as u64 + 1, e.subject(), e.encode()))
            .collect();
        for (seq, subject, payload) in &stored {
            live.ingest(*seq, subject, payload);
        }
        let mut restored = Fold::<u8>::new();
        restored.restore(
            Uuid::from_u128(1),
            stored
                .iter()
                .map(|(s, subj, p)| (*s, subj.as_str(), p.as_slice())),
        );
        assert_eq!(
            restored.call(Uuid::from_u128(1)),
            live.call(Uuid::from_u128(1))
        );
    }
}
