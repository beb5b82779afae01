//! Given/when/then tests of the fold and of site views.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a panic is the failure report

mod fixture;

use fixture::{CALL, Given, dn, event, party, site};
use ledger_core::{Call, Skip, View, evolve};
use ledger_schemas::{EventBody, Joined, MonitorMode, Role};

fn joined_body(d: &str) -> EventBody {
    EventBody::Joined(Joined {
        dn: dn(d),
        role: Role::Agent,
        mode: MonitorMode::Normal,
        monitors: None,
    })
}

fn two_sites() -> Given {
    Given::new()
        .joined(1, "+14155550100", "SiteA", Role::Customer)
        .joined(2, "7001", "SiteA", Role::Agent)
        .joined(3, "7002", "SiteB", Role::Agent)
}

#[test]
fn a_second_join_of_a_present_party_is_skipped() {
    let mut call = two_sites().call().clone();
    let before = call.clone();
    let e = event(10, "SiteA", party(2), joined_body("7001"));
    assert_eq!(evolve(&mut call, 10, &e), Err(Skip::SecondJoin(party(2))));
    assert_eq!(call.parties(), before.parties());
    assert_eq!(call.last_read(), 10, "the position still advances");
}

#[test]
fn a_leave_of_an_unknown_party_is_skipped() {
    let mut call = two_sites().call().clone();
    let e = event(10, "SiteA", party(9), EventBody::Left { reason: None });
    assert_eq!(evolve(&mut call, 10, &e), Err(Skip::UnknownParty(party(9))));
}

#[test]
fn a_second_leave_is_skipped() {
    let mut call = two_sites().left(3, "SiteB").call().clone();
    let e = event(10, "SiteB", party(3), EventBody::Left { reason: None });
    assert_eq!(evolve(&mut call, 10, &e), Err(Skip::AlreadyGone(party(3))));
}

#[test]
fn events_after_the_call_ended_are_skipped() {
    let given = two_sites()
        .left(1, "SiteA")
        .left(2, "SiteA")
        .left(3, "SiteB");
    assert!(given.call().has_ended());
    let mut call = given.call().clone();
    let e = event(10, "SiteA", party(7), joined_body("7007"));
    assert_eq!(evolve(&mut call, 10, &e), Err(Skip::AfterEnd));
    assert!(call.parties().iter().all(|p| p.id != party(7)));
}

#[test]
fn a_position_already_read_changes_nothing() {
    let given = two_sites();
    let mut call = given.call().clone();
    let e = event(2, "SiteA", party(8), joined_body("7008"));
    assert_eq!(
        evolve(&mut call, 2, &e),
        Err(Skip::AlreadyRead { seq: 2, last: 3 })
    );
    assert_eq!(&call, given.call());
    assert!(!Skip::AlreadyRead { seq: 2, last: 3 }.is_anomaly());
}

#[test]
fn an_event_of_another_call_is_skipped() {
    let mut call = Call::new(CALL);
    let mut e = event(1, "SiteA", party(1), joined_body("7001"));
    e.call = uuid::Uuid::from_u128(42);
    assert!(matches!(evolve(&mut call, 1, &e), Err(Skip::OtherCall(_))));
}

#[test]
fn an_undecodable_message_still_advances_the_calls_position() {
    let mut call = two_sites().call().clone();
    call.observe(7);
    assert_eq!(call.last_read(), 7);
    call.observe(5);
    assert_eq!(call.last_read(), 7);
}

#[test]
fn each_site_sees_its_parties_and_with_propagation_all() {
    let given = two_sites();
    let a_local = View::new(given.call(), site("SiteA"), false).lct_list();
    let b_local = View::new(given.call(), site("SiteB"), false).lct_list();
    let a_all = View::new(given.call(), site("SiteA"), true).lct_list();
    assert_eq!(a_local.parties.len(), 2);
    assert_eq!(a_local.seq, 2, "SiteA's view last applied event 2");
    assert_eq!(b_local.parties.len(), 1);
    assert_eq!(b_local.seq, 3);
    assert_eq!(a_all.parties.len(), 3);
    assert!(a_all.is_conference() && !a_local.is_conference());
    let order: Vec<_> = a_all.parties.iter().map(|p| p.party).collect();
    assert_eq!(order, vec![party(1), party(2), party(3)], "join order");
}

#[test]
fn a_remote_delete_published_here_of_a_local_party_reaches_the_local_view() {
    // SiteB deletes SiteA's customer: the event is about a party located at SiteA, so SiteA's
    // view applies it even without propagation.
    let given = two_sites().apply(
        "SiteB",
        party(1),
        EventBody::Deleted {
            by: ledger_schemas::DeletedBy {
                party: party(3),
                dn: dn("7002"),
                site: site("SiteB"),
            },
            request: uuid::Uuid::from_u128(77),
        },
    );
    let a_local = View::new(given.call(), site("SiteA"), false).lct_list();
    assert_eq!(a_local.parties.len(), 1);
    assert_eq!(a_local.seq, 4);
    let c_local = View::new(given.call(), site("SiteC"), false).lct_list();
    assert!(
        c_local.is_empty() && c_local.seq == 0,
        "SiteC applied nothing"
    );
}

#[test]
fn a_supervisor_leaving_early_changes_only_the_supervisor_list() {
    let given = two_sites().supervisor(4, "7100", "SiteA", 2);
    let view = |g: &Given| View::new(g.call(), site("SiteA"), true).lct_list();
    let with = view(&given);
    assert_eq!(with.supervisors.len(), 1);
    assert_eq!(with.supervisors[0].monitors, Some(party(2)));
    assert_eq!(with.supervisors[0].mode, MonitorMode::Coach);
    let after = given.left(4, "SiteA");
    let without = view(&after);
    assert!(without.supervisors.is_empty());
    assert_eq!(without.parties, with.parties, "parties untouched");
    assert!(without.is_conference(), "still a conference");
    assert_eq!(without.seq, 5);
    // The monitored agent leaving later is counted once, as itself.
    let later = view(&after.left(2, "SiteA"));
    assert_eq!(later.parties.len(), 2);
}

#[test]
fn the_view_empties_when_its_last_party_leaves_but_the_call_goes_on() {
    let given = two_sites().left(3, "SiteB");
    let b = View::new(given.call(), site("SiteB"), false);
    assert!(b.is_empty());
    assert_eq!(b.lct_list().seq, 4, "the leave was applied in SiteB's view");
    assert!(!given.call().has_ended());
}
