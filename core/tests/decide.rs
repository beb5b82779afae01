//! Given/when/then tests of TDeleteFromConference: one named test per row of the contract's
//! check table, in the contract's order, plus the cases where we beat the original switch.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a panic is the failure report

mod fixture;

use fixture::{Given, dn, party, site};
use ledger_core::{Decision, after_conflict, unavailable};
use ledger_schemas::{RefusalCode, Role};

/// A three-site conference: customer and agent 7001 at SiteA, agent 7001 at SiteB (same DN,
/// other site), agent 7003 at SiteC, supervisor 7100 at SiteA monitoring party 2.
fn conference() -> Given {
    Given::new()
        .joined(1, "+14155550100", "SiteA", Role::Customer)
        .joined(2, "7001", "SiteA", Role::Agent)
        .joined(3, "7001", "SiteB", Role::Agent)
        .joined(4, "7003", "SiteC", Role::Agent)
        .supervisor(5, "7100", "SiteA", 2)
}

const ALL_ON: &str = "call_info,remote_delete,propagate";

// --- the check table, row by row ---

#[test]
fn bad_request_when_the_request_cannot_be_decoded() {
    let refusal = ledger_core::admit(b"\x93\x01\x02\x03").unwrap_err().refusal;
    assert_eq!(refusal.code, RefusalCode::BadRequest);
    assert_eq!(refusal.code.terr(), 53);
    assert!(
        refusal.message.contains("expected a map"),
        "{}",
        refusal.message
    );
}

#[test]
fn unknown_call_when_the_site_knows_nothing_of_the_call() {
    Given::new()
        .when("SiteA", ALL_ON, "7001", "7003")
        .then_refused(RefusalCode::UnknownCall, 56);
}

#[test]
fn unknown_call_when_no_party_is_present_in_this_sites_view() {
    // Parties exist at SiteB only, and SiteA does not propagate: nothing in SiteA's view.
    Given::new()
        .joined(1, "7001", "SiteB", Role::Agent)
        .joined(2, "7002", "SiteB", Role::Agent)
        .when("SiteA", "call_info,remote_delete", "7001", "7002")
        .then_refused(RefusalCode::UnknownCall, 56);
}

#[test]
fn requester_not_in_call_when_this_dn_is_absent() {
    conference()
        .when("SiteA", ALL_ON, "9999", "7003")
        .then_refused(RefusalCode::RequesterNotInCall, 470);
}

#[test]
fn requester_not_in_call_when_this_dn_is_located_at_another_site() {
    // 7003 is in the call, but at SiteC: it cannot request through SiteA.
    conference()
        .when("SiteA", ALL_ON, "7003", "7001@SiteB")
        .then_refused(RefusalCode::RequesterNotInCall, 470);
}

#[test]
fn not_a_conference_with_fewer_than_three_parties() {
    // Two parties and a supervisor: supervisors do not make a conference.
    Given::new()
        .joined(1, "7001", "SiteA", Role::Agent)
        .joined(2, "7002", "SiteA", Role::Customer)
        .supervisor(3, "7100", "SiteA", 1)
        .when("SiteA", ALL_ON, "7001", "7002")
        .then_refused(RefusalCode::NotAConference, 496);
}

#[test]
fn party_not_in_call_when_other_dn_matches_nobody() {
    conference()
        .when("SiteA", ALL_ON, "7001", "4242")
        .then_refused(RefusalCode::PartyNotInCall, 470);
}

#[test]
fn party_not_in_call_when_the_party_has_already_left() {
    conference()
        .left(4, "SiteC")
        .joined(6, "7004", "SiteA", Role::Agent)
        .when("SiteA", ALL_ON, "7001", &party(4).to_string())
        .then_refused(RefusalCode::PartyNotInCall, 470);
}

#[test]
fn ambiguous_party_lists_both_candidates_and_deletes_nothing() {
    let refusal = conference()
        .when("SiteC", ALL_ON, "7003", "7001")
        .then_refused(RefusalCode::AmbiguousParty, 53);
    let ids: Vec<_> = refusal.candidates.iter().map(|c| c.party).collect();
    assert_eq!(ids, vec![party(2), party(3)]);
    assert_eq!(refusal.candidates[0].location, site("SiteA"));
    assert_eq!(refusal.candidates[1].location, site("SiteB"));
}

#[test]
fn invalid_target_when_the_requester_names_itself() {
    conference()
        .when("SiteA", ALL_ON, "7001", "7001@SiteA")
        .then_refused(RefusalCode::InvalidTarget, 53);
}

#[test]
fn call_info_disabled_for_a_remote_target() {
    conference()
        .when("SiteA", "remote_delete,propagate", "7001", "7003")
        .then_refused(RefusalCode::CallInfoDisabled, 1005);
}

#[test]
fn remote_delete_disabled_for_a_remote_target() {
    conference()
        .when("SiteA", "call_info,propagate", "7001", "7003")
        .then_refused(RefusalCode::RemoteDeleteDisabled, 1005);
}

#[test]
fn not_authorized_when_an_agent_deletes_a_supervisor() {
    conference()
        .when("SiteA", ALL_ON, "7001", "7100")
        .then_refused(RefusalCode::NotAuthorized, 472);
}

#[test]
fn conflict_once_the_attempts_are_spent() {
    assert_eq!(after_conflict(1, 3), None);
    assert_eq!(after_conflict(2, 3), None);
    let refusal = after_conflict(3, 3).unwrap();
    assert_eq!(refusal.code, RefusalCode::Conflict);
    assert_eq!(refusal.code.terr(), 52);
}

#[test]
fn unavailable_hides_the_cause_from_the_client() {
    let refusal = unavailable();
    assert_eq!(refusal.code, RefusalCode::Unavailable);
    assert_eq!(refusal.code.terr(), 58);
    assert!(!refusal.message.contains("nats"));
}

// --- accepted deletes ---

#[test]
fn local_delete_needs_no_option() {
    // Three parties at SiteA: a conference even in SiteA's own view.
    let deletion = conference()
        .joined(6, "7002", "SiteA", Role::Agent)
        .when("SiteA", "", "7001", "+14155550100")
        .then_deletes(1);
    assert_eq!(deletion.by.party, party(2));
    assert_eq!(deletion.by.dn, dn("7001"));
    assert_eq!(deletion.by.site, site("SiteA"));
}

#[test]
fn remote_delete_with_both_options_and_propagation() {
    conference()
        .when("SiteA", ALL_ON, "7001", "7003")
        .then_deletes(4);
}

#[test]
fn dn_at_site_and_party_id_each_name_exactly_one_of_two_same_dns() {
    conference()
        .when("SiteC", ALL_ON, "7003", "7001@SiteB")
        .then_deletes(3);
    conference()
        .when("SiteC", ALL_ON, "7003", "7001@SiteA")
        .then_deletes(2);
    conference()
        .when("SiteC", ALL_ON, "7003", &party(3).to_string())
        .then_deletes(3);
}

#[test]
fn a_supervisor_may_delete_a_supervisor() {
    conference()
        .supervisor(6, "7101", "SiteA", 3)
        .when("SiteA", ALL_ON, "7100", "7101")
        .then_deletes(6);
}

#[test]
fn a_supervisor_may_request_as_a_present_party() {
    conference()
        .when("SiteA", ALL_ON, "7100", "7003")
        .then_deletes(4);
}

#[test]
fn without_propagation_remote_parties_are_not_in_the_view() {
    // SiteA sees only its own three parties; 7003, at SiteC, is not among them.
    conference()
        .joined(6, "7002", "SiteA", Role::Agent)
        .when("SiteA", "call_info,remote_delete", "7001", "7003")
        .then_refused(RefusalCode::PartyNotInCall, 470);
}

#[test]
fn a_resent_request_is_answered_as_the_first_time() {
    let given = conference();
    let deletion = given.when("SiteA", ALL_ON, "7001", "7003").then_deletes(4);
    let given = given.deleted(&deletion, "SiteA");
    let seq = given.seq();
    match given.when_request("SiteA", ALL_ON, &given.request("7001", "7003")) {
        Ok(Decision::AlreadyDone { seq: s, .. }) => assert_eq!(s, seq),
        other => panic!("expected the first answer, got {other:?}"),
    }
}

#[test]
fn options_take_effect_for_the_next_request() {
    let given = conference();
    given
        .when("SiteA", "call_info,propagate", "7001", "7003")
        .then_refused(RefusalCode::RemoteDeleteDisabled, 1005);
    given.when("SiteA", ALL_ON, "7001", "7003").then_deletes(4);
}
