//! The counting rules, given a call's events, when they are folded, then these exact figures.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use ledger_schemas::{
    Counts, DeletedBy, Dn, EventBody, Joined, MonitorMode, PartyEvent, Role, SLOT_US, Site,
};
use uuid::Uuid;

use super::*;

/// 2026-11-27T00:00:00Z in microseconds.
const DAY: u64 = 1_795_737_600_000_000;
const MIN: u64 = 60_000_000;

/// `h:m` on 2026-11-27 (UTC), in microseconds.
fn at(h: u64, m: u64) -> u64 {
    DAY + (h * 60 + m) * MIN
}

fn site(s: &str) -> Site {
    Site::new(s).unwrap()
}

/// A call's events, folded as they are given.
struct Given {
    stats: Stats,
    seq: u64,
    call: Uuid,
}

impl Given {
    fn new() -> Self {
        Self {
            stats: Stats::tracking_changes(),
            seq: 0,
            call: Uuid::from_u128(1),
        }
    }

    fn call(&mut self, n: u128) -> &mut Self {
        self.call = Uuid::from_u128(n);
        self
    }

    fn event(&mut self, site_: &str, party: u128, ts: u64, body: EventBody) -> &mut Self {
        self.seq += 1;
        let e = PartyEvent {
            id: Uuid::from_u128(u128::from(self.seq) << 64),
            call: self.call,
            site: site(site_),
            ts,
            party: Uuid::from_u128(party),
            body,
        };
        let ingested = self.stats.ingest_event(self.seq, &e.subject(), &e.encode());
        assert!(matches!(ingested, Ingested::Applied { .. }), "{ingested:?}");
        self
    }

    fn joins(&mut self, site_: &str, party: u128, role: Role, ts: u64) -> &mut Self {
        let body = EventBody::Joined(Joined {
            dn: Dn::new(&format!("{party}")).unwrap(),
            role,
            mode: MonitorMode::Normal,
            monitors: None,
        });
        self.event(site_, party, ts, body)
    }

    fn supervises(
        &mut self,
        site_: &str,
        party: u128,
        monitors: u128,
        mode: MonitorMode,
        ts: u64,
    ) -> &mut Self {
        let body = EventBody::Joined(Joined {
            dn: Dn::new("9001").unwrap(),
            role: Role::Supervisor,
            mode,
            monitors: Some(Uuid::from_u128(monitors)),
        });
        self.event(site_, party, ts, body)
    }

    fn leaves(&mut self, site_: &str, party: u128, ts: u64) -> &mut Self {
        self.event(site_, party, ts, EventBody::Left { reason: None })
    }

    fn deletes(&mut self, site_: &str, by: u128, party: u128, ts: u64) -> &mut Self {
        let body = EventBody::Deleted {
            by: DeletedBy {
                party: Uuid::from_u128(by),
                dn: Dn::new(&format!("{by}")).unwrap(),
                site: site(site_),
            },
            request: Uuid::from_u128(party << 8 | by),
        };
        self.event(site_, party, ts, body)
    }

    /// The figures of `site_`'s slot starting at `start`.
    fn slot(&self, site_: &str, start: u64) -> Counts {
        self.stats
            .slot_figures(site(site_), start)
            .map(|f| f.counts)
            .unwrap_or_default()
    }

    fn observed_now(&self, site_: &str) -> bool {
        let now = self.stats.call_now(site(site_), self.call);
        assert!(now.agents.iter().all(|a| a.observed == now.observed));
        now.observed
    }
}

const A: u128 = 10; // agent at SiteA
const C: u128 = 11; // customer at SiteA
const B: u128 = 12; // agent at SiteB
const S: u128 = 20; // supervisor
const S2: u128 = 21; // second supervisor

#[test]
fn a_supervisor_who_leaves_before_the_call_ends_stops_observed_time_then_and_the_call_counts_once()
{
    let mut g = Given::new();
    g.joins("SiteA", A, Role::Agent, at(10, 0))
        .joins("SiteA", C, Role::Customer, at(10, 0));
    assert!(!g.observed_now("SiteA"));
    g.supervises("SiteA", S, A, MonitorMode::Coach, at(10, 1));
    assert!(g.observed_now("SiteA"), "on at the supervisor's join");
    assert_eq!(g.stats.site_now(site("SiteA")).observed, 1);
    g.leaves("SiteA", S, at(10, 4));
    assert!(
        !g.observed_now("SiteA"),
        "off at its leave, the call going on"
    );
    assert_eq!(g.stats.site_now(site("SiteA")).observed, 0);
    assert_eq!(g.stats.site_now(site("SiteA")).calls, 1);
    g.leaves("SiteA", A, at(10, 10))
        .leaves("SiteA", C, at(10, 10));

    let c = g.slot("SiteA", at(10, 0));
    assert_eq!(c.calls, 1);
    assert_eq!(c.observed, 1);
    assert_eq!(c.conferences, 0);
    assert_eq!(c.call_us, 10 * MIN);
    assert_eq!(c.observed_us, 3 * MIN, "not until the call ended");
    assert_eq!(c.observed_coach_us, 3 * MIN);
    assert_eq!(c.observed_mute_us + c.observed_normal_us, 0);
    assert_eq!(g.stats.site_now(site("SiteA")).calls, 0);
}

#[test]
fn a_supervisor_who_monitors_two_calls_in_turn_adds_to_each_only_while_in_it() {
    let mut g = Given::new();
    g.call(1).joins("SiteA", A, Role::Agent, at(10, 0)).joins(
        "SiteA",
        C,
        Role::Customer,
        at(10, 0),
    );
    g.call(2)
        .joins("SiteA", A + 100, Role::Agent, at(10, 5))
        .joins("SiteA", C + 100, Role::Customer, at(10, 5));
    g.call(1)
        .supervises("SiteA", S, A, MonitorMode::Mute, at(10, 2))
        .leaves("SiteA", S, at(10, 6));
    g.call(2)
        .supervises("SiteA", S, A + 100, MonitorMode::Connect, at(10, 7))
        .leaves("SiteA", S, at(10, 12));
    g.call(1)
        .leaves("SiteA", A, at(10, 20))
        .leaves("SiteA", C, at(10, 20));
    g.call(2)
        .leaves("SiteA", A + 100, at(10, 30))
        .leaves("SiteA", C + 100, at(10, 30));

    let c = g.slot("SiteA", at(10, 0));
    assert_eq!((c.calls, c.observed), (2, 2));
    assert_eq!(c.observed_mute_us, 4 * MIN, "10:02 to 10:06 in call 1");
    assert_eq!(c.observed_connect_us, 5 * MIN, "10:07 to 10:12 in call 2");
    assert_eq!(c.observed_us, 9 * MIN);
    // Calls: 10:00-10:20 and 10:05-10:30, split at 10:15 and 10:30.
    assert_eq!(c.call_us, 15 * MIN + 10 * MIN);
    assert_eq!(g.slot("SiteA", at(10, 15)).call_us, 5 * MIN + 15 * MIN);
    assert_eq!(g.slot("SiteA", at(10, 15)).calls, 0);
}

#[test]
fn a_supervisor_deleted_by_another_supervisor_stops_observing_at_the_delete() {
    let mut g = Given::new();
    g.joins("SiteA", A, Role::Agent, at(10, 0))
        .joins("SiteA", C, Role::Customer, at(10, 0))
        .supervises("SiteA", S, A, MonitorMode::Normal, at(10, 1))
        .supervises("SiteA", S2, A, MonitorMode::Mute, at(10, 2))
        .deletes("SiteA", S2, S, at(10, 3));
    assert!(
        g.observed_now("SiteA"),
        "the second supervisor still observes"
    );
    g.leaves("SiteA", S2, at(10, 5));
    assert!(!g.observed_now("SiteA"));
    g.leaves("SiteA", A, at(10, 9))
        .leaves("SiteA", C, at(10, 9));

    let c = g.slot("SiteA", at(10, 0));
    assert_eq!(c.observed, 1, "one call, observed by two in turn");
    assert_eq!(
        c.observed_us,
        4 * MIN,
        "from 10:01 until the last left at 10:05"
    );
    assert_eq!(c.observed_normal_us, 2 * MIN, "until the delete at 10:03");
    assert_eq!(c.observed_mute_us, 3 * MIN);
    assert_eq!((c.deletes_local, c.deletes_remote), (1, 0));
}

#[test]
fn a_call_across_midnight_utc_counts_in_its_first_slot_and_splits_its_time() {
    let mut g = Given::new();
    g.joins("SiteA", A, Role::Agent, at(23, 50))
        .joins("SiteA", C, Role::Customer, at(23, 50))
        .leaves("SiteA", A, at(24, 20))
        .leaves("SiteA", C, at(24, 20));
    assert_eq!(g.slot("SiteA", at(23, 45)).calls, 1);
    assert_eq!(g.slot("SiteA", at(23, 45)).call_us, 10 * MIN);
    assert_eq!(g.slot("SiteA", at(24, 0)).call_us, 15 * MIN);
    assert_eq!(g.slot("SiteA", at(24, 15)).call_us, 5 * MIN);
    assert_eq!(g.slot("SiteA", at(24, 0)).calls, 0);

    let days = regroup(g.stats.figures(), |s| Width::Day.start_at_offset(s, 0));
    let day = |d: u64| &days[&(site("SiteA"), (DAY + d * 96 * SLOT_US) as i64)];
    assert_eq!((day(0).calls, day(0).call_us), (1, 10 * MIN));
    assert_eq!((day(1).calls, day(1).call_us), (0, 20 * MIN));
}

#[test]
fn a_call_across_a_local_midnight_splits_at_the_local_midnight() {
    // 22:50Z to 23:20Z is 23:50 to 00:20 in Paris in winter (UTC+1).
    let mut g = Given::new();
    g.joins("SiteA", A, Role::Agent, at(22, 50))
        .joins("SiteA", C, Role::Customer, at(22, 50))
        .leaves("SiteA", A, at(23, 20))
        .leaves("SiteA", C, at(23, 20));
    let hour = 3_600_000_000_i64;
    let utc = regroup(g.stats.figures(), |s| Width::Day.start_at_offset(s, 0));
    assert_eq!(utc.len(), 1, "one UTC day");
    let local = regroup(g.stats.figures(), |s| Width::Day.start_at_offset(s, hour));
    // Local midnights: 23:00 UTC the day before, and 23:00 UTC that day.
    let day = |d: i64| &local[&(site("SiteA"), DAY as i64 + d * 96 * SLOT_US as i64 - hour)];
    assert_eq!((day(0).calls, day(0).call_us), (1, 10 * MIN));
    assert_eq!((day(1).calls, day(1).call_us), (0, 20 * MIN));
    let hours = regroup(g.stats.figures(), |s| Width::Hour.start_at_offset(s, hour));
    assert_eq!(hours.len(), 2);
}

#[test]
fn a_call_whose_agent_is_deleted_while_observed_stays_observed_until_the_supervisor_leaves() {
    let mut g = Given::new();
    g.joins("SiteA", A, Role::Agent, at(10, 0))
        .joins("SiteA", C, Role::Customer, at(10, 0))
        .joins("SiteB", B, Role::Agent, at(10, 0))
        .supervises("SiteA", S, A, MonitorMode::Coach, at(10, 1))
        .deletes("SiteB", B, A, at(10, 3));
    let now = g.stats.call_now(site("SiteA"), g.call);
    assert!(
        now.agents.is_empty(),
        "the deleted agent is no longer listed"
    );
    assert!(now.observed && !now.conference);
    g.leaves("SiteA", S, at(10, 6));
    assert!(!g.observed_now("SiteA"));
    g.leaves("SiteA", C, at(10, 10))
        .leaves("SiteB", B, at(10, 10));

    let a = g.slot("SiteA", at(10, 0));
    assert_eq!((a.calls, a.conferences, a.observed), (1, 1, 1));
    assert_eq!(a.conference_us, 3 * MIN, "three parties until the delete");
    assert_eq!(
        a.observed_us,
        5 * MIN,
        "until the supervisor left, not the agent"
    );
    assert_eq!(a.call_us, 10 * MIN);
    let b = g.slot("SiteB", at(10, 0));
    assert_eq!((b.calls, b.conferences, b.observed), (1, 1, 1));
    assert_eq!(
        (b.deletes_local, b.deletes_remote),
        (0, 1),
        "decided at SiteB"
    );
    assert_eq!(b.observed_us, 5 * MIN);
}

#[test]
fn a_late_event_counts_in_the_slot_of_its_ts_and_a_recount_gives_the_same() {
    let mut g = Given::new();
    g.joins("SiteA", A, Role::Agent, at(10, 20))
        .joins("SiteA", C, Role::Customer, at(10, 20))
        // Stored after the others, but it happened at 10:10.
        .joins("SiteB", B, Role::Agent, at(10, 10))
        .leaves("SiteB", B, at(10, 40))
        .leaves("SiteA", A, at(10, 40))
        .leaves("SiteA", C, at(10, 40));
    let b10 = g.slot("SiteB", at(10, 0));
    let b15 = g.slot("SiteB", at(10, 15));
    let b30 = g.slot("SiteB", at(10, 30));
    assert_eq!(b10.calls, 0, "a call counts in the slot of its first event");
    assert_eq!(b15.calls, 1);
    assert_eq!(
        b10.call_us,
        5 * MIN,
        "10:10 to 10:15, in the late event's slot"
    );
    assert_eq!(b15.call_us, 15 * MIN);
    assert_eq!(b30.call_us, 10 * MIN);
    assert_eq!(
        b10.conference_us + b15.conference_us + b30.conference_us,
        30 * MIN
    );
    // SiteA is in the call from 10:20: its conference time cannot start before.
    let a: u64 = [10, 15, 30]
        .iter()
        .map(|m| g.slot("SiteA", at(10, *m)).conference_us)
        .sum();
    assert_eq!(a, 20 * MIN, "not the 30 minutes since the late join's ts");

    // A recount reads the same messages in the same order.
    let mut r = Given::new();
    r.stats = Stats::new();
    r.joins("SiteA", A, Role::Agent, at(10, 20))
        .joins("SiteA", C, Role::Customer, at(10, 20))
        .joins("SiteB", B, Role::Agent, at(10, 10))
        .leaves("SiteB", B, at(10, 40))
        .leaves("SiteA", A, at(10, 40))
        .leaves("SiteA", C, at(10, 40));
    let live: Vec<_> = g.stats.figures().collect();
    let again: Vec<_> = r.stats.figures().collect();
    assert_eq!(live, again);
}

#[test]
fn a_supervisor_whose_monitored_agent_is_stored_after_it_observes_from_the_agents_join() {
    let mut g = Given::new();
    g.joins("SiteA", C, Role::Customer, at(10, 0)).supervises(
        "SiteB",
        S,
        A,
        MonitorMode::Mute,
        at(10, 1),
    );
    assert!(
        !g.observed_now("SiteA"),
        "the monitored agent is not in the call yet"
    );
    g.joins("SiteA", A, Role::Agent, at(10, 2));
    assert!(g.observed_now("SiteA"));
    g.leaves("SiteB", S, at(10, 5))
        .leaves("SiteA", A, at(10, 9))
        .leaves("SiteA", C, at(10, 9));
    let c = g.slot("SiteA", at(10, 0));
    assert_eq!(
        (c.observed, c.observed_us, c.observed_mute_us),
        (1, 3 * MIN, 3 * MIN)
    );
}

#[test]
fn a_span_from_a_clock_far_off_is_counted_as_its_last_seven_days() {
    let mut g = Given::new();
    g.joins("SiteA", A, Role::Agent, 0)
        .leaves("SiteA", A, at(10, 0));
    let total: u64 = g.stats.figures().map(|f| f.counts.call_us).sum();
    assert_eq!(total, MAX_SPAN_US);
    assert_eq!(g.stats.counters().clamped, 1);
}

#[test]
fn refusals_come_from_the_audit_and_option_changes_are_not_counted() {
    use ledger_schemas::{DeleteReply, Refusal, RefusalCode, SiteOptions};
    let mut stats = Stats::new();
    let record = AuditRecord {
        id: Uuid::from_u128(5),
        ts: at(10, 7),
        site: site("SiteA"),
        request: rmpv::Value::Map(Vec::new()),
        request_bytes: None,
        reply: DeleteReply {
            request: Some(Uuid::from_u128(6)),
            outcome: Err(Refusal::new(RefusalCode::NotAuthorized, "no")),
        },
        view_seq: 0,
        config: SiteOptions::default(),
    };
    let subject = subject::audit(site("SiteA"), Uuid::from_u128(1));
    assert!(stats.ingest_audit(1, &subject, &record.encode()));
    assert!(stats.ingest_audit(2, "ledger.audit.SiteA.options", b"anything"));
    assert!(!stats.ingest_audit(3, &subject, b"garbage"));
    let c = stats.slot_figures(site("SiteA"), at(10, 0)).unwrap().counts;
    assert_eq!(c.refused.get("not_authorized"), Some(&1));
    assert_eq!(stats.counters().audit_undecodable, 1);
    assert_eq!(stats.last_read(), (0, 3));
}
