//! A site's projected state without I/O: the calls it folds, what it has published, and the
//! writes a batch calls for. The projector loop feeds it messages and carries out its effects.

use std::collections::{HashMap, VecDeque};

use ledger_core::{Call, ListChange, Skip, View, evolve, list_change};
use ledger_schemas::{DecodeError, EventSubject, LctList, Message, PartyEvent, Site, SiteOptions};
use uuid::Uuid;

use crate::status::Counters;

/// What reading one stored message did.
#[derive(Debug)]
pub enum Ingested {
    /// Applied to the fold.
    Applied,
    /// A position already handled: nothing changed.
    Redelivered,
    /// Not applied: it makes no sense for the state.
    Anomaly(Uuid, Skip),
    /// Not applied: it could not be decoded.
    Undecodable(DecodeError),
}

/// A write of a call's LCTParty list that a batch calls for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListEffect {
    /// Put the list in KV and publish it.
    Put(LctList),
    /// The view emptied: delete the key and publish this last, empty list.
    End(LctList),
    /// `sip-enable-call-info` was turned off: delete the key, publish nothing.
    Forget(Uuid),
}

/// Everything a batch (or an option change) calls for, to do before acknowledging it.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Effects {
    /// LCTParty list writes, at most one per call.
    pub lists: Vec<ListEffect>,
    /// Calls that became active: record them in the index with their first stream sequence.
    pub index_puts: Vec<(Uuid, u64)>,
    /// Calls that ended: remove them from the index (after the acknowledgement).
    pub index_deletes: Vec<Uuid>,
    /// The stream sequence these effects bring the lists up to: once they are made, every list
    /// is current as of this event.
    pub through: u64,
}

impl Effects {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.lists.is_empty() && self.index_puts.is_empty() && self.index_deletes.is_empty()
    }
}

#[derive(Debug)]
struct Entry {
    call: Call,
    first_seq: u64,
    indexed: bool,
    ended: bool,
    dirty: bool,
    published: Option<LctList>,
}

impl Entry {
    fn new(call: Uuid, first_seq: u64) -> Self {
        Self {
            call: Call::new(call),
            first_seq,
            indexed: false,
            ended: false,
            dirty: false,
            published: None,
        }
    }
}

/// The projected state of one site.
#[derive(Debug)]
pub struct SiteState {
    site: Site,
    calls: HashMap<Uuid, Entry>,
    dirty: Vec<Uuid>,
    ended: VecDeque<Uuid>,
    ended_kept: usize,
    counters: Counters,
    lists: bool,
    /// Lists found in KV at take-over for calls that the index does not name.
    adopted: HashMap<Uuid, LctList>,
    /// While set and not reached by the fold, no list is written (see [`Self::hold_lists_until`]).
    hold_until: Option<u64>,
}

impl SiteState {
    /// An empty state for `site`'s projector, remembering up to `ended_kept` ended calls.
    pub fn new(site: Site, ended_kept: usize) -> Self {
        Self {
            site,
            calls: HashMap::new(),
            dirty: Vec::new(),
            ended: VecDeque::new(),
            ended_kept,
            counters: Counters::default(),
            lists: true,
            adopted: HashMap::new(),
            hold_until: None,
        }
    }

    /// An empty state that only folds (no lists, no index): the command service's view.
    pub fn without_lists(site: Site, ended_kept: usize) -> Self {
        Self {
            lists: false,
            ..Self::new(site, ended_kept)
        }
    }

    /// The site.
    pub fn site(&self) -> Site {
        self.site
    }

    /// Whether this state keeps LCTParty lists (a projector's) or only folds (a command
    /// service's).
    pub fn keeps_lists(&self) -> bool {
        self.lists
    }

    /// Lists found in KV at take-over for calls that the index does not name: the previous
    /// leader wrote them from events after its acknowledged floor, which are delivered again.
    /// Each becomes its call's published list when the call's first event arrives, so what is
    /// written next is compared with what is stored.
    pub fn adopt(&mut self, lists: impl IntoIterator<Item = LctList>) {
        self.adopted
            .extend(lists.into_iter().map(|list| (list.call, list)));
    }

    /// Holds every list write until the fold has read `horizon`, the stream's last sequence
    /// when this instance took over (from another instance, or over lists already stored).
    ///
    /// The previous leader may have written lists from events up to there before it stopped
    /// without acknowledging them; a rebuilt consumer reads from the start, behind every stored
    /// list. Until the fold has read as far, a list computed here may be
    /// older than the stored one; writing it would move the list back in time, and a change
    /// shown before would be shown again. Held, the lists stay as the previous leader left
    /// them, then each is compared with the stored one and only real changes are written.
    /// The index is kept meanwhile, so checkpoints go on.
    pub fn hold_lists_until(&mut self, horizon: u64) {
        self.hold_until = Some(horizon);
    }

    /// Ends the hold early: nothing is pending on the stream, so the fold has read it all.
    pub fn caught_up(&mut self) {
        if self.hold_until.is_some() {
            self.hold_until = Some(0);
        }
    }

    fn holding(&self) -> bool {
        self.hold_until
            .is_some_and(|horizon| self.counters.last_seq < horizon)
    }

    /// The counters so far.
    pub fn counters(&self) -> Counters {
        let mut c = self.counters;
        c.active_calls = (self.calls.len() - self.ended.len()) as u64;
        c
    }

    /// The folded call, if the site knows it (active, or ended recently).
    pub fn call(&self, id: Uuid) -> Option<&Call> {
        self.calls.get(&id).map(|e| &e.call)
    }

    fn mark_dirty(dirty: &mut Vec<Uuid>, entry: &mut Entry, id: Uuid) {
        if !entry.dirty {
            entry.dirty = true;
            dirty.push(id);
        }
    }

    /// Reads the message stored at `seq` on `subject`, under the options in force.
    pub fn ingest(
        &mut self,
        seq: u64,
        subject: &str,
        payload: &[u8],
        options: &SiteOptions,
    ) -> Ingested {
        self.counters.last_seq = self.counters.last_seq.max(seq);
        let parsed = match EventSubject::parse(subject) {
            Ok(p) => p,
            Err(e) => {
                self.counters.undecodable += 1;
                return Ingested::Undecodable(e.into());
            }
        };
        let event = match PartyEvent::decode(payload).and_then(|e| {
            e.check_subject(&parsed, subject)?;
            Ok(e)
        }) {
            Ok(e) => e,
            Err(e) => {
                // It still counts as read on the call's subjects (optimistic concurrency).
                if let Some(entry) = self.calls.get_mut(&parsed.call) {
                    entry.call.observe(seq);
                }
                self.counters.undecodable += 1;
                return Ingested::Undecodable(e);
            }
        };
        let adopted = &mut self.adopted;
        let entry = self.calls.entry(event.call).or_insert_with(|| {
            let mut entry = Entry::new(event.call, seq);
            entry.published = adopted.remove(&event.call);
            entry
        });
        match evolve(&mut entry.call, seq, &event) {
            Ok(change) => {
                self.counters.applied += 1;
                let ended = entry.call.has_ended();
                if change.applies_to(self.site, options.propagates()) || !entry.indexed || ended {
                    Self::mark_dirty(&mut self.dirty, entry, event.call);
                }
                Ingested::Applied
            }
            Err(Skip::AlreadyRead { .. }) => {
                self.counters.redelivered += 1;
                Ingested::Redelivered
            }
            Err(skip) => {
                self.counters.anomalies += 1;
                if entry.call.parties().is_empty() {
                    // Nothing but anomalies: there is no call to keep (but a stored list to
                    // compare with, if it had one).
                    let gone = self.calls.remove(&event.call);
                    if let Some(list) = gone.and_then(|e| e.published) {
                        self.adopted.insert(event.call, list);
                    }
                }
                Ingested::Anomaly(event.call, skip)
            }
        }
    }

    /// Re-derives every call's view: after an option change.
    pub fn mark_all_dirty(&mut self) {
        for (id, entry) in &mut self.calls {
            Self::mark_dirty(&mut self.dirty, entry, *id);
        }
    }

    /// Restores a call from the index at take-over: its stored messages up to the position the
    /// site had acknowledged, and the list last written to KV (if any).
    pub fn recover(
        &mut self,
        call: Uuid,
        first_seq: u64,
        messages: impl IntoIterator<Item = (u64, String, bytes::Bytes)>,
        published: Option<LctList>,
    ) {
        let mut entry = Entry::new(call, first_seq);
        for (seq, subject, payload) in messages {
            match PartyEvent::decode_on(&subject, &payload) {
                Ok(e) => {
                    let _ = evolve(&mut entry.call, seq, &e);
                }
                Err(_) => entry.call.observe(seq),
            }
        }
        entry.indexed = true;
        entry.published = published;
        self.counters.recovered_calls += 1;
        // The options may have changed while no instance ran: compare on the next effects.
        Self::mark_dirty(&mut self.dirty, &mut entry, call);
        self.calls.insert(call, entry);
    }

    /// Takes over at `floor`: every event up to it was handled by a previous instance.
    pub fn resume_at(&mut self, floor: u64) {
        self.counters.last_seq = self.counters.last_seq.max(floor);
    }

    /// Whether events were folded whose effects have not been computed yet (and may be now).
    pub fn has_pending_effects(&self) -> bool {
        !self.dirty.is_empty() && !self.holding()
    }

    /// Counts one batch handled.
    pub fn count_batch(&mut self) {
        self.counters.batches += 1;
    }

    /// Records a call in progress that the index does not hold yet. A call that starts and ends
    /// within one batch never needs the index.
    fn index_if_new(entry: &mut Entry, id: Uuid, fx: &mut Effects) {
        if !entry.indexed && !entry.call.has_ended() && !entry.call.parties().is_empty() {
            entry.indexed = true;
            fx.index_puts.push((id, entry.first_seq));
        }
    }

    /// The writes that the events since the last call (or an option change) call for.
    pub fn effects(&mut self, options: &SiteOptions) -> Effects {
        let mut fx = Effects {
            through: self.counters.last_seq,
            ..Effects::default()
        };
        if self.holding() {
            // The index only; every call stays dirty, and ended calls stay indexed until their
            // lists are written.
            fx.through = 0;
            for id in &self.dirty {
                if let Some(entry) = self.calls.get_mut(id) {
                    Self::index_if_new(entry, *id, &mut fx);
                }
            }
            return fx;
        }
        if self.hold_until.take().is_some() {
            // Every call the previous leader wrote after the floor has had its events by now.
            self.adopted = HashMap::new();
        }
        let dirty = std::mem::take(&mut self.dirty);
        for id in dirty {
            let Some(entry) = self.calls.get_mut(&id) else {
                continue;
            };
            entry.dirty = false;
            let ended = entry.call.has_ended();
            if !self.lists {
                if ended && !entry.ended {
                    entry.ended = true;
                    self.ended.push_back(id);
                }
                continue;
            }
            Self::index_if_new(entry, id, &mut fx);
            let list = View::new(&entry.call, self.site, options.propagates()).lct_list();
            match list_change(entry.published.as_ref(), list, options.call_info) {
                Some(ListChange::Put(list)) => {
                    self.counters.lists_published += 1;
                    entry.published = Some(list.clone());
                    fx.lists.push(ListEffect::Put(list));
                }
                Some(ListChange::End(list)) => {
                    self.counters.lists_ended += 1;
                    entry.published = Some(list.clone());
                    fx.lists.push(ListEffect::End(list));
                }
                Some(ListChange::Forget) => fx.lists.push(ListEffect::Forget(id)),
                None => {}
            }
            if !options.call_info {
                entry.published = None;
            }
            if ended && !entry.ended {
                entry.ended = true;
                if entry.indexed {
                    fx.index_deletes.push(id);
                }
                self.ended.push_back(id);
            }
        }
        while self.ended.len() > self.ended_kept {
            if let Some(old) = self.ended.pop_front() {
                self.calls.remove(&old);
            }
        }
        fx
    }
}
