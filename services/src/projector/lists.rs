//! A leading projector's state without I/O: the fold of the site's calls, and beside each call
//! what is stored under its keys (list and index entry, with their revisions). It says which
//! fenced writes the events read so far call for; the leader carries them out and reports back.
//!
//! Two rules keep a stored list from going back in time, whatever instance wrote it last:
//!
//! - **The hold.** After taking over from another instance (or over lists already stored), no
//!   list is written until the fold has read as far as the stream reached at take-over
//!   ([`Lists::hold_until`]): before that, a list computed here could be older than one the
//!   previous leader stored. The index is kept meanwhile, so checkpoints go on.
//! - **Per key.** A list is written only when the fold has read at least as far as the `seq`
//!   of what is stored under its key (a list, or a deletion marker's `Ledger-Seq`); a key found
//!   written by another instance waits until the fold has caught up with it.
//!
//! A call's index entry is kept while the call is in progress or its list still has a write to
//! make, so that a successor re-folds the call and makes that write.

use std::collections::HashMap;

use ledger_core::{Decoded, Fold, Ingested, ListChange, Shown, View, list_change};
use ledger_schemas::{LctList, Site, SiteOptions};
use uuid::Uuid;

use crate::status::Counters;

/// What this instance knows of one call's keys, kept beside the call in the fold.
#[derive(Debug, Default)]
pub(crate) struct Keys {
    /// The call's view changed since its list was last computed.
    dirty: bool,
    /// What the list key holds (a digest of the list, or for a deleted key of an empty list at
    /// the sequence it was deleted at); `None` when nothing is stored (never written, or
    /// forgotten).
    stored: Option<Shown>,
    /// The list key's revision (0: it never existed, as far as this instance knows).
    lct_revision: u64,
    /// The index key's revision (0: never existed).
    index_revision: u64,
    /// The call is in the index.
    indexed: bool,
}

impl Keys {
    fn stored_seq(&self) -> u64 {
        self.stored.map_or(0, |l| l.seq)
    }
}

/// A fenced write of a call's list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListWrite {
    /// The call.
    pub(crate) call: Uuid,
    /// The key's revision the write expects.
    pub(crate) expected: u64,
    /// What to do.
    pub(crate) op: ListOp,
}

/// What a list write does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ListOp {
    /// Store the list and publish it.
    Put(LctList),
    /// The view emptied: delete the key (the marker carries the list's `seq`) and publish this
    /// last, empty list.
    End(LctList),
    /// `sip-enable-call-info` was turned off: delete the key, publish nothing.
    Forget {
        /// The `seq` of the list that was stored.
        seq: u64,
    },
    /// The call ended without this instance ever storing its list, but a predecessor may
    /// have: delete the key expecting it absent, publish nothing. A list the predecessor stored
    /// (even one landing late) makes the delete refused, and it is then read back and ended.
    Verify {
        /// The `seq` of the view's last event.
        seq: u64,
    },
}

/// A fenced write of a call's index entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IndexWrite {
    /// The call.
    pub(crate) call: Uuid,
    /// The key's revision the write expects.
    pub(crate) expected: u64,
    /// Record the call with its first stream sequence, or (`None`) remove it.
    pub(crate) first_seq: Option<u64>,
}

/// What a key was found to hold when read back (at take-over, or after a refused write).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Found {
    /// Its revision (0: it holds nothing).
    pub(crate) revision: u64,
    /// A list, or an empty list at a deletion marker's sequence; `None` for nothing.
    pub(crate) list: Option<LctList>,
}

/// The projected state of one site.
#[derive(Debug)]
pub(crate) struct Lists {
    site: Site,
    fold: Fold<Keys>,
    /// Calls whose list is to be computed and written.
    dirty: Vec<Uuid>,
    /// Dirty calls whose key holds a list newer than the fold has read, and the lowest such
    /// `seq`: they wait until the fold reaches it.
    deferred: Vec<Uuid>,
    deferred_until: u64,
    /// Lists found stored for calls the fold does not hold (yet): taken into the call when its
    /// first event is applied, so that what is written next is compared with them.
    found: HashMap<Uuid, Found>,
    /// No list is written until the fold has read this sequence.
    hold_until: Option<u64>,
    /// The stream's last sequence when this instance took over from another: a call with an
    /// event up to it may have a list the predecessor stored, even one it stored late.
    inherited: u64,
    ended_kept: usize,
    counters: Counters,
}

impl Lists {
    /// An empty state for `site`, remembering up to `ended_kept` ended calls.
    pub(crate) fn new(site: Site, ended_kept: usize) -> Self {
        Self {
            site,
            fold: Fold::new(),
            dirty: Vec::new(),
            deferred: Vec::new(),
            deferred_until: u64::MAX,
            found: HashMap::new(),
            hold_until: None,
            inherited: 0,
            ended_kept,
            counters: Counters::default(),
        }
    }

    /// The fold, for recovery.
    pub(crate) fn fold_mut(&mut self) -> &mut Fold<Keys> {
        &mut self.fold
    }

    /// Marks a call restored from the index (its keys' revisions known) for comparison with
    /// what is stored.
    pub(crate) fn restored(keys: &mut Keys, index_revision: u64) {
        keys.indexed = true;
        keys.index_revision = index_revision;
    }

    /// Records what the list keys of the site hold now (read at take-over): for calls the fold
    /// holds, beside the call; for others, until their first event.
    pub(crate) fn found_stored(&mut self, stored: impl IntoIterator<Item = (Uuid, Found)>) {
        for (call, found) in stored {
            match self.fold.get_mut(call) {
                Some((_, keys)) => {
                    keys.lct_revision = found.revision;
                    keys.stored = found.list.as_ref().map(Shown::of);
                    mark(&mut self.dirty, keys, call);
                }
                None => {
                    self.found.insert(call, found);
                }
            }
        }
        // Calls restored from the index with nothing stored: compare with nothing.
        for (call, keys) in self.fold.iter_mut() {
            if keys.indexed && !keys.dirty {
                mark(&mut self.dirty, keys, call.id());
            }
        }
    }

    /// Holds every list write until the fold has read `horizon` (see the module's doc).
    pub(crate) fn hold_until(&mut self, horizon: u64) {
        self.hold_until = Some(horizon);
        self.inherited = horizon;
    }

    /// Ends the hold early: nothing is pending on the stream, so the fold has read it all.
    pub(crate) fn caught_up(&mut self) {
        if self.hold_until.is_some() {
            self.hold_until = Some(0);
        }
    }

    /// Whether list writes are held.
    pub(crate) fn holding(&self) -> bool {
        self.hold_until
            .is_some_and(|horizon| self.fold.last_seq() < horizon)
    }

    /// The stream sequence of the last message read.
    pub(crate) fn last_seq(&self) -> u64 {
        self.fold.last_seq()
    }

    /// Reads the message stored at `seq`, decoded, under the options in force.
    pub(crate) fn ingest(&mut self, seq: u64, decoded: Decoded, options: &SiteOptions) -> Ingested {
        let outcome = self.fold.ingest_decoded(seq, decoded);
        if let Ingested::Applied {
            call,
            change,
            first,
            ended,
        } = &outcome
            && let Some((_, keys)) = self.fold.get_mut(*call)
        {
            if *first && let Some(found) = self.found.remove(call) {
                keys.lct_revision = found.revision;
                keys.stored = found.list.as_ref().map(Shown::of);
            }
            if change.applies_to(self.site, options.propagates()) || *first || *ended {
                mark(&mut self.dirty, keys, *call);
            }
        }
        outcome
    }

    /// Re-derives every call's view: after an option change.
    pub(crate) fn mark_all_dirty(&mut self) {
        for (call, keys) in self.fold.iter_mut() {
            mark(&mut self.dirty, keys, call.id());
        }
    }

    /// Whether a list write may be computed now.
    pub(crate) fn has_pending_writes(&self) -> bool {
        !self.holding() && (!self.dirty.is_empty() || self.fold.last_seq() >= self.deferred_until)
    }

    /// Counts calls restored at take-over.
    pub(crate) fn count_recovered(&mut self, calls: usize) {
        self.counters.recovered_calls += calls as u64;
    }

    /// The list writes the events read so far call for (none while holding): at most one per
    /// call, each expecting the revision this instance knows. A call whose key holds a list newer
    /// than what the fold has read stays pending.
    pub(crate) fn list_writes(&mut self, options: &SiteOptions) -> Vec<ListWrite> {
        let mut writes = Vec::new();
        if self.holding() {
            return writes;
        }
        if self.hold_until.take().is_some() {
            // Every call the previous leader wrote has had its events by now.
            if !self.found.is_empty() {
                tracing::info!(site = %self.site, lists = self.found.len(), "stored lists of calls with no event after the floor are left as they are");
            }
            self.found = HashMap::new();
        }
        let position = self.fold.last_seq();
        let mut todo = std::mem::take(&mut self.dirty);
        if position >= self.deferred_until {
            todo.append(&mut self.deferred);
            self.deferred_until = u64::MAX;
        }
        for id in todo {
            let Some((call, keys)) = self.fold.get_mut(id) else {
                continue;
            };
            if keys.stored_seq() > position {
                self.deferred_until = self.deferred_until.min(keys.stored_seq());
                self.deferred.push(id);
                continue;
            }
            keys.dirty = false;
            let list = View::new(call, self.site, options.propagates()).lct_list();
            let unverified = keys.stored.is_none()
                && keys.lct_revision == 0
                && call.has_ended()
                && call.first_seq() <= self.inherited
                && options.call_info;
            let seq = list.seq;
            let op = match list_change(keys.stored, list, options.call_info) {
                Some(ListChange::Put(list)) => {
                    self.counters.lists_published += 1;
                    ListOp::Put(list)
                }
                Some(ListChange::End(list)) => {
                    self.counters.lists_ended += 1;
                    ListOp::End(list)
                }
                Some(ListChange::Forget) => ListOp::Forget {
                    seq: keys.stored_seq(),
                },
                None if unverified => ListOp::Verify { seq },
                None => continue,
            };
            // Assumed stored: the next list is compared with this one. A refused write is read
            // back and corrected by `refused`.
            keys.stored = match &op {
                ListOp::Put(list) | ListOp::End(list) => Some(Shown::of(list)),
                ListOp::Verify { seq } => Some(Shown::of(&LctList {
                    seq: *seq,
                    ..View::new(call, self.site, options.propagates()).lct_list()
                })),
                ListOp::Forget { .. } => None,
            };
            writes.push(ListWrite {
                call: id,
                expected: keys.lct_revision,
                op,
            });
        }
        writes
    }

    /// Records the new revision of a call's list key after a write succeeded.
    pub(crate) fn list_written(&mut self, call: Uuid, revision: u64) {
        if let Some((_, keys)) = self.fold.get_mut(call) {
            keys.lct_revision = revision;
        }
    }

    /// Records what a call's list key was found to hold after a write to it was refused: the
    /// call is compared with that, and written again once the fold has read as far.
    pub(crate) fn list_refused(&mut self, call: Uuid, found: Found) {
        self.counters.writes_refused += 1;
        if let Some((_, keys)) = self.fold.get_mut(call) {
            keys.lct_revision = found.revision;
            keys.stored = found.list.as_ref().map(Shown::of);
            mark(&mut self.dirty, keys, call);
        }
    }

    /// The index writes a checkpoint makes: every call in progress, or with a list write still
    /// to make, that the index does not hold is recorded; every call that ended with its lists
    /// written is removed.
    pub(crate) fn index_writes(&mut self) -> (Vec<IndexWrite>, Vec<IndexWrite>) {
        let (mut puts, mut removals) = (Vec::new(), Vec::new());
        for (call, keys) in self.fold.iter_mut() {
            let needed = !call.has_ended() || keys.dirty;
            if needed && !keys.indexed && !call.parties().is_empty() {
                puts.push(IndexWrite {
                    call: call.id(),
                    expected: keys.index_revision,
                    first_seq: Some(call.first_seq()),
                });
            } else if !needed && keys.indexed {
                removals.push(IndexWrite {
                    call: call.id(),
                    expected: keys.index_revision,
                    first_seq: None,
                });
            }
        }
        (puts, removals)
    }

    /// Records the outcome of an index write: the key's new revision, or (refused) the
    /// revision it was found at, to expect next time.
    pub(crate) fn index_written(&mut self, write: &IndexWrite, revision: u64, refused: bool) {
        if refused {
            self.counters.writes_refused += 1;
        }
        if let Some((_, keys)) = self.fold.get_mut(write.call) {
            keys.index_revision = revision;
            if !refused {
                keys.indexed = write.first_seq.is_some();
            }
        }
    }

    /// Forgets ended calls beyond the ones kept, once nothing is left to write for them.
    pub(crate) fn evict(&mut self) {
        self.fold
            .evict_ended(self.ended_kept, |keys| !keys.dirty && !keys.indexed);
    }

    /// The counters so far.
    pub(crate) fn counters(&self) -> Counters {
        let fold = self.fold.counters();
        Counters {
            applied: fold.applied,
            redelivered: fold.redelivered,
            anomalies: fold.anomalies,
            undecodable: fold.undecodable,
            active_calls: self.fold.active_calls() as u64,
            last_seq: self.fold.last_seq(),
            ..self.counters
        }
    }

    /// Counts one batch read.
    pub(crate) fn count_batch(&mut self) {
        self.counters.batches += 1;
    }

    /// Counts an option change put on the record.
    pub(crate) fn count_option_recorded(&mut self) {
        self.counters.options_recorded += 1;
    }
}

fn mark(dirty: &mut Vec<Uuid>, keys: &mut Keys, call: Uuid) {
    if !keys.dirty {
        keys.dirty = true;
        dirty.push(call);
    }
}

#[cfg(test)]
#[path = "lists_tests.rs"]
mod tests;
