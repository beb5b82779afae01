//! Given/when/then tests of a site's projected state, without NATS.

use ledger_schemas::{
    Dn, EventBody, Joined, LctList, Message, MonitorMode, OptionName, PartyEvent, Role, Site,
    SiteOptions,
};
use uuid::Uuid;

use super::state::{Effects, Ingested, ListEffect, SiteState};

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
    state: SiteState,
    seq: u64,
    call: Uuid,
    options: SiteOptions,
    /// Every message ingested, as stored: `(seq, subject, payload)`.
    log: Vec<(u64, String, bytes::Bytes)>,
}

impl Given {
    fn new(call_info: bool, propagate: bool) -> Self {
        Self {
            state: SiteState::new(site("SiteA"), 2),
            seq: 0,
            call: Uuid::from_u128(1),
            options: options(call_info, propagate),
            log: Vec::new(),
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
        let (subject, payload) = (e.subject(), bytes::Bytes::from(e.encode()));
        self.log.push((self.seq, subject.clone(), payload.clone()));
        self.state.ingest(self.seq, &subject, &payload, &options)
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

    fn effects(&mut self) -> Effects {
        let options = self.options;
        self.state.effects(&options)
    }
}

fn puts(fx: &Effects) -> Vec<(u64, usize)> {
    fx.lists
        .iter()
        .filter_map(|l| match l {
            ListEffect::Put(list) => Some((list.seq, list.parties.len())),
            _ => None,
        })
        .collect()
}

#[test]
fn several_events_of_one_call_in_a_batch_make_one_write() {
    let mut g = Given::new(true, false);
    g.join("SiteA", 1, "7001");
    g.join("SiteA", 2, "7002");
    g.join("SiteA", 3, "7003");
    let fx = g.effects();
    assert_eq!(puts(&fx), vec![(3, 3)], "one list, at the last sequence");
    assert_eq!(fx.index_puts, vec![(g.call, 1)]);
    assert!(g.effects().is_empty(), "nothing more to do");
}

#[test]
fn an_event_outside_the_view_writes_nothing() {
    let mut g = Given::new(true, false);
    g.join("SiteA", 1, "7001");
    g.effects();
    g.join("SiteB", 2, "7002");
    assert!(
        g.effects().lists.is_empty(),
        "SiteB's party is not in SiteA's view"
    );
}

#[test]
fn the_view_emptying_ends_the_list_once() {
    let mut g = Given::new(true, false);
    g.join("SiteA", 1, "7001");
    g.join("SiteB", 2, "7002");
    g.effects();
    g.leave("SiteA", 1);
    let fx = g.effects();
    match fx.lists.as_slice() {
        [ListEffect::End(list)] => assert!(list.is_empty() && list.seq == 3),
        other => panic!("expected one end, got {other:?}"),
    }
    assert!(fx.index_deletes.is_empty(), "the call goes on at SiteB");
    g.leave("SiteB", 2);
    let fx = g.effects();
    assert!(fx.lists.is_empty(), "already ended in this view");
    assert_eq!(fx.index_deletes, vec![g.call], "the call ended");
}

#[test]
fn a_call_that_starts_and_ends_between_effects_never_touches_the_index() {
    let mut g = Given::new(false, false);
    g.join("SiteA", 1, "7001");
    g.leave("SiteA", 1);
    let fx = g.effects();
    assert!(fx.index_puts.is_empty() && fx.index_deletes.is_empty());
}

#[test]
fn turning_call_info_off_forgets_the_lists_and_on_brings_them_back() {
    let mut g = Given::new(true, false);
    g.join("SiteA", 1, "7001");
    g.effects();
    g.options.call_info = false;
    g.state.mark_all_dirty();
    assert_eq!(g.effects().lists, vec![ListEffect::Forget(g.call)]);
    g.options.call_info = true;
    g.state.mark_all_dirty();
    assert_eq!(puts(&g.effects()), vec![(1, 1)]);
}

#[test]
fn turning_propagation_on_widens_the_view_to_the_whole_log() {
    let mut g = Given::new(true, false);
    g.join("SiteA", 1, "7001");
    g.join("SiteB", 2, "7002");
    assert_eq!(puts(&g.effects()), vec![(1, 1)]);
    g.options = options(true, true);
    g.state.mark_all_dirty();
    assert_eq!(puts(&g.effects()), vec![(2, 2)]);
}

#[test]
fn redelivered_events_change_nothing_and_are_counted() {
    let mut g = Given::new(true, false);
    g.join("SiteA", 1, "7001");
    g.effects();
    let e = PartyEvent {
        id: Uuid::from_u128(1001),
        call: g.call,
        site: site("SiteA"),
        ts: 1,
        party: Uuid::from_u128(1),
        body: EventBody::Left { reason: None },
    };
    let outcome = g.state.ingest(1, &e.subject(), &e.encode(), &g.options);
    assert!(matches!(outcome, Ingested::Redelivered));
    assert!(g.effects().is_empty());
    assert_eq!(g.state.counters().redelivered, 1);
}

#[test]
fn an_undecodable_payload_still_advances_the_calls_position() {
    let mut g = Given::new(true, false);
    g.join("SiteA", 1, "7001");
    let subject = format!("ledger.ev.{}.SiteA.party_left", g.call);
    let outcome = g.state.ingest(7, &subject, b"\x00", &g.options);
    assert!(matches!(outcome, Ingested::Undecodable(_)));
    assert_eq!(g.state.call(g.call).unwrap().last_read(), 7);
    assert_eq!(g.state.counters().undecodable, 1);
}

#[test]
fn anomalies_about_unknown_calls_keep_nothing_in_memory() {
    let mut g = Given::new(true, false);
    g.call = Uuid::from_u128(99);
    let outcome = g.leave("SiteA", 5);
    assert!(matches!(outcome, Ingested::Anomaly(..)));
    assert!(g.state.call(g.call).is_none());
    assert_eq!(g.state.counters().anomalies, 1);
}

#[test]
fn only_the_most_recent_ended_calls_are_remembered() {
    let mut g = Given::new(false, false);
    for n in 0..3u128 {
        g.call = Uuid::from_u128(100 + n);
        g.join("SiteA", 1, "7001");
        g.leave("SiteA", 1);
        g.effects();
    }
    assert!(
        g.state.call(Uuid::from_u128(100)).is_none(),
        "the oldest is forgotten"
    );
    assert!(g.state.call(Uuid::from_u128(102)).is_some());
    assert_eq!(g.state.counters().active_calls, 0);
}

#[test]
fn effects_bring_the_lists_up_to_the_last_message_read_even_an_undecodable_one() {
    let mut g = Given::new(true, true);
    g.join("SiteA", 1, "7001");
    g.join("SiteB", 2, "7002");
    assert_eq!(g.effects().through, 2);
    let options = g.options;
    let outcome = g.state.ingest(3, "ledger.ev.garbage", b"\x01", &options);
    assert!(matches!(outcome, Ingested::Undecodable(_)));
    let fx = g.effects();
    assert!(fx.lists.is_empty());
    assert_eq!(fx.through, 3, "nothing to write, and nothing left behind");
}

#[test]
fn taking_over_at_a_floor_counts_the_events_up_to_it_as_handled() {
    let mut g = Given::new(true, false);
    g.state.resume_at(40);
    assert_eq!(g.state.counters().last_seq, 40);
    assert_eq!(g.effects().through, 40);
}

/// The one list a batch puts.
fn the_put(fx: &Effects) -> LctList {
    match fx.lists.as_slice() {
        [ListEffect::Put(list)] => list.clone(),
        other => panic!("expected one put, got {other:?}"),
    }
}

#[test]
fn a_list_written_after_the_floor_by_a_crashed_leader_is_ended_with_its_call() {
    // Given a leader that wrote a call's list, then died before recording the call in the index
    // or acknowledging its events.
    let mut crashed = Given::new(true, false);
    crashed.join("SiteA", 1, "7001");
    crashed.join("SiteA", 2, "7002");
    let stored = the_put(&crashed.effects());
    // When the next leader adopts the stored list and reads the call again, to its end.
    let mut g = Given::new(true, false);
    g.state.adopt([stored]);
    g.state.hold_lists_until(4);
    g.join("SiteA", 1, "7001");
    g.join("SiteA", 2, "7002");
    let fx = g.effects();
    assert!(fx.lists.is_empty(), "held until the horizon: {fx:?}");
    assert_eq!(
        fx.index_puts,
        vec![(g.call, 1)],
        "the index is kept meanwhile"
    );
    g.leave("SiteA", 1);
    g.leave("SiteA", 2);
    // Then the stored list is ended, not left behind.
    let fx = g.effects();
    match fx.lists.as_slice() {
        [ListEffect::End(list)] => assert!(list.is_empty() && list.seq == 4),
        other => panic!("expected the end of the stored list, got {other:?}"),
    }
    assert_eq!(fx.index_deletes, vec![g.call]);
    assert_eq!(fx.through, 4);
}

#[test]
fn a_recovered_list_never_goes_back_in_time() {
    // Given a leader that acknowledged the first join, then wrote the list of three and died.
    let mut crashed = Given::new(true, false);
    crashed.join("SiteA", 1, "7001");
    crashed.join("SiteA", 2, "7002");
    crashed.join("SiteA", 3, "7003");
    let stored = the_put(&crashed.effects());
    // When the next leader re-folds the call up to the floor, with the stored list.
    let mut g = Given::new(true, false);
    g.state
        .recover(g.call, 1, crashed.log[..1].to_vec(), Some(stored));
    g.state.resume_at(1);
    g.state.hold_lists_until(3);
    // Then the list as of the floor (one party) is not written over the stored one (three).
    let fx = g.effects();
    assert!(fx.lists.is_empty(), "{fx:?}");
    assert_eq!(
        fx.through, 0,
        "the lists are not written through anything new"
    );
    // And once the fold has read as far as the stored list, the same list is not written again.
    g.seq = 1;
    g.join("SiteA", 2, "7002");
    g.join("SiteA", 3, "7003");
    let fx = g.effects();
    assert!(fx.lists.is_empty(), "nothing changed: {fx:?}");
    assert_eq!(fx.through, 3);
    g.leave("SiteA", 3);
    assert_eq!(puts(&g.effects()), vec![(4, 2)]);
}

#[test]
fn the_hold_ends_when_nothing_is_pending() {
    let mut g = Given::new(true, false);
    g.state.hold_lists_until(100);
    g.join("SiteA", 1, "7001");
    assert!(!g.state.has_pending_effects());
    assert!(g.effects().lists.is_empty());
    g.state.caught_up();
    assert!(g.state.has_pending_effects());
    assert_eq!(puts(&g.effects()), vec![(1, 1)]);
}

#[test]
fn an_adopted_list_outlives_an_anomaly_that_arrives_before_its_call() {
    let mut crashed = Given::new(true, false);
    crashed.join("SiteA", 1, "7001");
    let stored = the_put(&crashed.effects());
    let mut g = Given::new(true, false);
    g.state.adopt([stored]);
    g.state.hold_lists_until(3);
    // A leave of a party nobody joined: an anomaly, and no call to keep.
    assert!(matches!(g.leave("SiteA", 9), Ingested::Anomaly(..)));
    assert!(g.state.call(g.call).is_none());
    g.join("SiteA", 1, "7001");
    g.leave("SiteA", 1);
    match g.effects().lists.as_slice() {
        [ListEffect::End(list)] => assert_eq!(list.seq, 3),
        other => panic!("expected the stored list ended, got {other:?}"),
    }
}
