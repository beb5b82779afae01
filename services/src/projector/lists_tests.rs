//! Given/when/then tests of a leading projector's state, without NATS.

use ledger_core::{Decoded, Ingested};
use ledger_schemas::{
    Dn, EventBody, Joined, LctList, Message, MonitorMode, OptionName, PartyEvent, Role, Site,
    SiteOptions,
};
use uuid::Uuid;

use super::{Found, IndexWrite, ListOp, ListWrite, Lists};

fn site(s: &str) -> Site {
    Site::new(s).unwrap()
}

fn options(call_info: bool, propagate: bool) -> SiteOptions {
    let mut o = SiteOptions {
        call_info,
        ..SiteOptions::default()
    };
    let word: &[u8] = if propagate { b"current" } else { b"original" };
    o.set(OptionName::UseDataFrom, word).unwrap();
    o
}

struct Given {
    lists: Lists,
    seq: u64,
    call: Uuid,
    options: SiteOptions,
    /// Every message ingested, as stored: `(seq, subject, payload)`.
    log: Vec<(u64, String, Vec<u8>)>,
    /// The next revision a write gets.
    revision: u64,
}

impl Given {
    fn new(call_info: bool, propagate: bool) -> Self {
        Self {
            lists: Lists::new(site("SiteA"), 2),
            seq: 0,
            call: Uuid::from_u128(1),
            options: options(call_info, propagate),
            log: Vec::new(),
            revision: 1000,
        }
    }

    fn event(&mut self, origin: &str, party: u128, body: EventBody) -> Ingested {
        self.seq += 1;
        let e = PartyEvent {
            id: Uuid::from_u128(1000 + u128::from(self.seq)),
            call: self.call,
            site: site(origin),
            ts: self.seq,
            party: Uuid::from_u128(party),
            body,
        };
        let options = self.options;
        let (subject, payload) = (e.subject(), e.encode());
        self.log.push((self.seq, subject.clone(), payload.clone()));
        self.lists
            .ingest(self.seq, Decoded::of(&subject, &payload), &options)
    }

    fn join(&mut self, origin: &str, party: u128, dn: &str) -> Ingested {
        self.event(
            origin,
            party,
            EventBody::Joined(Joined {
                dn: Dn::new(dn).unwrap(),
                role: Role::Agent,
                mode: MonitorMode::Normal,
                monitors: None,
            }),
        )
    }

    fn leave(&mut self, origin: &str, party: u128) -> Ingested {
        self.event(origin, party, EventBody::Left { reason: None })
    }

    /// The list writes now, each confirmed as stored.
    fn writes(&mut self) -> Vec<ListWrite> {
        let options = self.options;
        let writes = self.lists.list_writes(&options);
        for w in &writes {
            self.revision += 1;
            self.lists.list_written(w.call, self.revision);
        }
        writes
    }

    /// A checkpoint's index writes, each confirmed: `(puts, removals)`.
    fn index(&mut self) -> (Vec<IndexWrite>, Vec<IndexWrite>) {
        let (puts, removals) = self.lists.index_writes();
        for w in puts.iter().chain(&removals) {
            self.revision += 1;
            self.lists.index_written(w, self.revision, false);
        }
        (puts, removals)
    }
}

fn puts(writes: &[ListWrite]) -> Vec<(u64, usize)> {
    writes
        .iter()
        .filter_map(|w| match &w.op {
            ListOp::Put(list) => Some((list.seq, list.parties.len())),
            _ => None,
        })
        .collect()
}

/// The one list put.
fn the_put(writes: &[ListWrite]) -> LctList {
    match writes {
        [
            ListWrite {
                op: ListOp::Put(list),
                ..
            },
        ] => list.clone(),
        other => panic!("expected one put, got {other:?}"),
    }
}

fn stored(list: LctList, revision: u64) -> Found {
    Found {
        revision,
        list: Some(list),
    }
}

#[test]
fn several_events_of_one_call_make_one_write() {
    let mut g = Given::new(true, false);
    g.join("SiteA", 1, "7001");
    g.join("SiteA", 2, "7002");
    g.join("SiteA", 3, "7003");
    let writes = g.writes();
    assert_eq!(
        puts(&writes),
        vec![(3, 3)],
        "one list, at the last sequence"
    );
    assert_eq!(writes[0].expected, 0, "a key never seen is expected absent");
    let (index, _) = g.index();
    assert_eq!(
        index
            .iter()
            .map(|w| (w.call, w.first_seq))
            .collect::<Vec<_>>(),
        vec![(g.call, Some(1))]
    );
    assert!(g.writes().is_empty(), "nothing more to do");
    assert_eq!(g.index(), (vec![], vec![]));
}

#[test]
fn each_write_expects_the_revision_of_the_last() {
    let mut g = Given::new(true, false);
    g.join("SiteA", 1, "7001");
    g.writes();
    let first = g.revision;
    g.join("SiteA", 2, "7002");
    assert_eq!(g.writes()[0].expected, first);
    g.index();
    g.leave("SiteA", 1);
    g.leave("SiteA", 2);
    let end = g.writes();
    assert!(matches!(&end[0].op, ListOp::End(list) if list.seq == 4));
    assert_eq!(end[0].expected, first + 1);
    let (_, removals) = g.index();
    assert_eq!(removals.len(), 1);
    assert_eq!(
        removals[0].expected,
        first + 2,
        "the index key's own revision"
    );
}

#[test]
fn an_event_outside_the_view_writes_nothing() {
    let mut g = Given::new(true, false);
    g.join("SiteA", 1, "7001");
    g.writes();
    g.join("SiteB", 2, "7002");
    assert!(
        g.writes().is_empty(),
        "SiteB's party is not in SiteA's view"
    );
}

#[test]
fn the_view_emptying_ends_the_list_once_and_the_call_leaves_the_index_when_it_ends() {
    let mut g = Given::new(true, false);
    g.join("SiteA", 1, "7001");
    g.join("SiteB", 2, "7002");
    g.writes();
    g.index();
    g.leave("SiteA", 1);
    match g.writes().as_slice() {
        [
            ListWrite {
                op: ListOp::End(list),
                ..
            },
        ] => assert!(list.is_empty() && list.seq == 3),
        other => panic!("expected one end, got {other:?}"),
    }
    assert_eq!(g.index(), (vec![], vec![]), "the call goes on at SiteB");
    g.leave("SiteB", 2);
    assert!(g.writes().is_empty(), "already ended in this view");
    let (_, removals) = g.index();
    assert_eq!(
        removals.iter().map(|w| w.call).collect::<Vec<_>>(),
        vec![g.call]
    );
}

#[test]
fn a_call_that_starts_and_ends_between_checkpoints_never_touches_the_index() {
    let mut g = Given::new(false, false);
    g.join("SiteA", 1, "7001");
    g.leave("SiteA", 1);
    g.writes();
    assert_eq!(g.index(), (vec![], vec![]));
}

#[test]
fn an_ended_call_with_a_list_still_to_write_stays_in_the_index() {
    // Held (after a take-over), the call starts and ends between checkpoints: its list write
    // waits, so a successor must find the call in the index.
    let mut g = Given::new(true, false);
    g.lists.hold_until(10);
    g.join("SiteA", 1, "7001");
    g.leave("SiteA", 1);
    assert!(g.writes().is_empty());
    let (puts, _) = g.index();
    assert_eq!(puts.len(), 1, "recorded while its write is pending");
    g.lists.caught_up();
    g.writes();
    let (_, removals) = g.index();
    assert_eq!(removals.len(), 1, "removed once written");
}

#[test]
fn turning_call_info_off_forgets_the_lists_and_on_brings_them_back() {
    let mut g = Given::new(true, false);
    g.join("SiteA", 1, "7001");
    g.writes();
    g.options.call_info = false;
    g.lists.mark_all_dirty();
    assert!(matches!(
        g.writes().as_slice(),
        [ListWrite {
            op: ListOp::Forget { seq: 1 },
            ..
        }]
    ));
    g.options.call_info = true;
    g.lists.mark_all_dirty();
    assert_eq!(puts(&g.writes()), vec![(1, 1)]);
}

#[test]
fn turning_propagation_on_widens_the_view_to_the_whole_log() {
    let mut g = Given::new(true, false);
    g.join("SiteA", 1, "7001");
    g.join("SiteB", 2, "7002");
    assert_eq!(puts(&g.writes()), vec![(1, 1)]);
    g.options = options(true, true);
    g.lists.mark_all_dirty();
    assert_eq!(puts(&g.writes()), vec![(2, 2)]);
}

#[test]
fn redelivered_events_change_nothing_and_are_counted() {
    let mut g = Given::new(true, false);
    g.join("SiteA", 1, "7001");
    g.writes();
    let (_, subject, payload) = g.log[0].clone();
    let options = g.options;
    assert!(matches!(
        g.lists.ingest(1, Decoded::of(&subject, &payload), &options),
        Ingested::Redelivered
    ));
    assert!(g.writes().is_empty());
    assert_eq!(g.lists.counters().redelivered, 1);
}

#[test]
fn only_the_most_recent_ended_calls_are_remembered() {
    let mut g = Given::new(false, false);
    for n in 0..4u128 {
        g.call = Uuid::from_u128(100 + n);
        g.join("SiteA", 1, "7001");
        g.leave("SiteA", 1);
        g.writes();
        g.index();
        g.lists.evict();
    }
    let c = g.lists.counters();
    assert_eq!(c.active_calls, 0);
    assert!(
        g.lists.fold_mut().call(Uuid::from_u128(100)).is_none(),
        "the oldest is forgotten"
    );
    assert!(g.lists.fold_mut().call(Uuid::from_u128(103)).is_some());
}

#[test]
fn a_list_stored_by_a_replaced_leader_after_the_floor_is_compared_with_and_ended() {
    // Given a leader that wrote a call's list, then was replaced before recording the call in
    // the index or moving the floor.
    let mut replaced = Given::new(true, false);
    replaced.join("SiteA", 1, "7001");
    replaced.join("SiteA", 2, "7002");
    let list = the_put(&replaced.writes());
    // When the next leader finds it stored and reads the call again, to its end.
    let mut g = Given::new(true, false);
    g.lists.found_stored([(g.call, stored(list, 77))]);
    g.lists.hold_until(4);
    g.join("SiteA", 1, "7001");
    g.join("SiteA", 2, "7002");
    assert!(g.writes().is_empty(), "held until the horizon");
    let (puts, _) = g.index();
    assert_eq!(puts.len(), 1, "the index is kept meanwhile");
    g.leave("SiteA", 1);
    g.leave("SiteA", 2);
    // Then the stored list is ended, expecting its revision, not left behind.
    match g.writes().as_slice() {
        [
            ListWrite {
                op: ListOp::End(list),
                expected: 77,
                ..
            },
        ] => assert!(list.is_empty() && list.seq == 4),
        other => panic!("expected the end of the stored list, got {other:?}"),
    }
}

#[test]
fn a_restored_call_is_never_written_back_in_time() {
    // Given a leader that moved the floor past the first join, then wrote the list of three
    // and was replaced.
    let mut replaced = Given::new(true, false);
    replaced.join("SiteA", 1, "7001");
    replaced.join("SiteA", 2, "7002");
    replaced.join("SiteA", 3, "7003");
    let list = the_put(&replaced.writes());
    // When the next leader re-folds the call up to the floor, and finds the stored list.
    let mut g = Given::new(true, false);
    let first = &replaced.log[..1];
    let keys = g.lists.fold_mut().restore(
        g.call,
        first
            .iter()
            .map(|(s, subj, p)| (*s, subj.as_str(), p.as_slice())),
    );
    Lists::restored(keys, 5);
    g.lists.fold_mut().resume_at(1);
    g.lists.found_stored([(g.call, stored(list, 90))]);
    // Then the list as of the floor (one party) is not written over the stored one (three),
    // even without a hold: the fold has not read as far as the stored list.
    assert!(g.writes().is_empty());
    assert!(
        !g.lists.has_pending_writes(),
        "waiting for the fold, not spinning"
    );
    // And once the fold has read as far, the same list is not written again.
    g.seq = 1;
    g.join("SiteA", 2, "7002");
    g.join("SiteA", 3, "7003");
    assert!(g.writes().is_empty(), "nothing changed");
    g.leave("SiteA", 3);
    let writes = g.writes();
    assert_eq!(puts(&writes), vec![(4, 2)]);
    assert_eq!(writes[0].expected, 90);
}

#[test]
fn a_refused_write_is_compared_with_what_was_found_and_waits_for_the_fold() {
    let mut g = Given::new(true, false);
    g.join("SiteA", 1, "7001");
    let writes = g.lists.list_writes(&g.options);
    assert_eq!(writes.len(), 1);
    // A replaced leader's late write got there first, with a list of a later position.
    let mut theirs = the_put(&writes);
    theirs.seq = 3;
    g.lists.list_refused(g.call, stored(theirs, 55));
    assert!(g.writes().is_empty(), "the fold is at 1, the key at 3");
    g.join("SiteA", 2, "7002");
    g.join("SiteA", 3, "7003");
    let writes = g.writes();
    assert_eq!(puts(&writes), vec![(3, 3)]);
    assert_eq!(writes[0].expected, 55);
    assert_eq!(g.lists.counters().writes_refused, 1);
}

#[test]
fn an_ended_calls_marker_is_never_written_over() {
    // The key was deleted at sequence 3, when the call ended.
    let mut g = Given::new(true, true);
    let marker = LctList {
        call: g.call,
        site: site("SiteA"),
        seq: 3,
        ts: 0,
        parties: vec![],
        supervisors: vec![],
    };
    g.lists.found_stored([(g.call, stored(marker, 40))]);
    g.join("SiteA", 1, "7001");
    g.join("SiteB", 2, "7002");
    assert!(g.writes().is_empty(), "older than the deletion");
    g.leave("SiteA", 1);
    g.leave("SiteB", 2);
    assert!(g.writes().is_empty(), "ended: already deleted");
}

#[test]
fn the_hold_ends_when_nothing_is_pending() {
    let mut g = Given::new(true, false);
    g.lists.hold_until(100);
    g.join("SiteA", 1, "7001");
    assert!(!g.lists.has_pending_writes());
    assert!(g.writes().is_empty());
    g.lists.caught_up();
    assert!(g.lists.has_pending_writes());
    assert_eq!(puts(&g.writes()), vec![(1, 1)]);
}

#[test]
fn a_found_list_outlives_an_anomaly_that_arrives_before_its_call() {
    let mut replaced = Given::new(true, false);
    replaced.join("SiteA", 1, "7001");
    let list = the_put(&replaced.writes());
    let mut g = Given::new(true, false);
    g.lists.found_stored([(g.call, stored(list, 12))]);
    g.lists.hold_until(3);
    // A leave of a party nobody joined: an anomaly, and no call to keep.
    assert!(matches!(g.leave("SiteA", 9), Ingested::Anomaly(..)));
    g.join("SiteA", 1, "7001");
    g.leave("SiteA", 1);
    match g.writes().as_slice() {
        [
            ListWrite {
                op: ListOp::End(list),
                expected: 12,
                ..
            },
        ] => assert_eq!(list.seq, 3),
        other => panic!("expected the stored list ended, got {other:?}"),
    }
}

#[test]
fn a_call_ended_unseen_after_a_take_over_is_checked_for_a_predecessors_late_list() {
    // Taken over at 10; the call started before (its list may be the predecessor's, stored
    // late), and ends while held: nothing was ever stored as far as this instance knows.
    let mut g = Given::new(true, false);
    g.lists.hold_until(10);
    g.join("SiteA", 1, "7001");
    g.leave("SiteA", 1);
    g.lists.caught_up();
    let writes = g.lists.list_writes(&g.options);
    match writes.as_slice() {
        [
            ListWrite {
                op: ListOp::Verify { seq: 2 },
                expected: 0,
                ..
            },
        ] => {}
        other => panic!("expected a delete expecting the key absent, got {other:?}"),
    }
    // The predecessor's list got there first: the delete is refused, the list read back...
    let theirs = LctList {
        call: g.call,
        site: site("SiteA"),
        seq: 1,
        ts: 1,
        parties: vec![],
        supervisors: vec![],
    };
    let mut theirs = theirs;
    theirs.parties.push(ledger_schemas::LctParty {
        party: Uuid::from_u128(1),
        dn: Dn::new("7001").unwrap(),
        location: site("SiteA"),
        role: Role::Agent,
    });
    g.lists.list_refused(g.call, stored(theirs, 31));
    // ...and ended.
    match g.writes().as_slice() {
        [
            ListWrite {
                op: ListOp::End(list),
                expected: 31,
                ..
            },
        ] => assert_eq!(list.seq, 2),
        other => panic!("expected the late list ended, got {other:?}"),
    }
    // A call that started after the take-over has no predecessor's list to check.
    g.call = Uuid::from_u128(2);
    g.seq = 20;
    g.join("SiteA", 1, "7001");
    g.leave("SiteA", 1);
    assert!(g.writes().is_empty());
}
