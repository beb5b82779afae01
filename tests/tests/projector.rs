//! The contract's "Party events", "Site views and LCTParty lists" and "Configuration" sections
//! against a real nats-server, with the projectors running as they do in `ledger serve`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a panic is the failure report

mod common;

use std::time::Duration;

use common::{
    CallBuilder, Ledger, WAIT, assert_lists_equal_the_fold, eventually, names, site, test_config,
    traffic,
};
use futures::StreamExt;
use ledger_schemas::{LctList, Message, OptionName, Role, subject};
use uuid::Uuid;

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

/// Waits until `at`'s list of `call` has these parties.
async fn wait_list(l: &Ledger, at: &str, call: Uuid, want: &[(&str, &str)]) -> LctList {
    let want = pairs(want);
    eventually(WAIT, &format!("{at}'s list to be {want:?}"), || async {
        l.lct(at, call).await.filter(|list| names(list) == want)
    })
    .await
}

async fn wait_no_list(l: &Ledger, at: &str, call: Uuid) {
    eventually(WAIT, &format!("{at}'s list to be deleted"), || async {
        l.lct(at, call).await.is_none().then_some(())
    })
    .await;
}

#[tokio::test]
async fn site_views_apply_local_events_and_with_propagation_every_event() {
    let l = Ledger::start().await;
    l.configure("SiteA", true).await;
    l.configure("SiteB", true).await;
    l.configure("SiteC", false).await;
    let serving = l.serve(&["SiteA", "SiteB", "SiteC"], test_config());
    let c = CallBuilder::new();
    let (cust, a1, b1, c1) = (
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
    );
    l.publish(&c.join("SiteA", cust, "+14155550100", Role::Customer))
        .await;
    l.publish(&c.join("SiteA", a1, "7001", Role::Agent)).await;
    l.publish(&c.join("SiteB", b1, "7001", Role::Agent)).await;
    let last = l.publish(&c.join("SiteC", c1, "7003", Role::Agent)).await;
    let all = [
        ("+14155550100", "SiteA"),
        ("7001", "SiteA"),
        ("7001", "SiteB"),
        ("7003", "SiteC"),
    ];
    let a = wait_list(&l, "SiteA", c.call, &all).await;
    let b = wait_list(&l, "SiteB", c.call, &all).await;
    // SiteC does not propagate: only its own party, and its list stops at its own event.
    let cl = wait_list(&l, "SiteC", c.call, &[("7003", "SiteC")]).await;
    assert_eq!(a.seq, last);
    assert_eq!(b.seq, last);
    assert_eq!(cl.seq, last);
    assert_eq!(a.site, site("SiteA"));
    assert!(a.is_conference() && !cl.is_conference());
    serving.stop().await;
}

#[tokio::test]
async fn lct_lists_are_kept_in_kv_and_published_after_every_change() {
    let l = Ledger::start().await;
    l.configure("SiteA", false).await;
    let mut sub = l.client.subscribe("ledger.lct.SiteA.>").await.unwrap();
    let serving = l.serve(&["SiteA"], test_config());
    let c = CallBuilder::new();
    let (p1, p2, sup) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let s1 = l.publish(&c.join("SiteA", p1, "7001", Role::Agent)).await;
    let s2 = l
        .publish(&c.join("SiteA", p2, "7002", Role::Customer))
        .await;
    let s3 = l.publish(&c.supervise("SiteA", sup, "7100", p1)).await;
    let mut seen = Vec::new();
    while seen.last() != Some(&s3) {
        let msg = tokio::time::timeout(WAIT, sub.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(msg.subject.as_str(), subject::lct(site("SiteA"), c.call));
        let list = LctList::decode(&msg.payload).unwrap();
        seen.push(list.seq);
    }
    // Batches may coalesce changes, but every published list is one the log had at a sequence.
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    assert!(seen.iter().all(|s| [s1, s2, s3].contains(s)));
    let list = wait_list(&l, "SiteA", c.call, &[("7001", "SiteA"), ("7002", "SiteA")]).await;
    assert_eq!(list.supervisors.len(), 1, "supervisors are listed apart");
    assert_eq!(list.supervisors[0].monitors, Some(p1));
    serving.stop().await;
}

#[tokio::test]
async fn a_call_ending_in_a_view_deletes_the_key_and_publishes_an_empty_list() {
    let l = Ledger::start().await;
    l.configure("SiteA", false).await;
    let serving = l.serve(&["SiteA"], test_config());
    let c = CallBuilder::new();
    let (p1, p2) = (Uuid::now_v7(), Uuid::now_v7());
    l.publish(&c.join("SiteA", p1, "7001", Role::Agent)).await;
    l.publish(&c.join("SiteA", p2, "7002", Role::Customer))
        .await;
    wait_list(&l, "SiteA", c.call, &[("7001", "SiteA"), ("7002", "SiteA")]).await;
    let mut sub = l
        .client
        .subscribe(subject::lct(site("SiteA"), c.call))
        .await
        .unwrap();
    l.publish(&c.leave("SiteA", p1)).await;
    let last = l.publish(&c.leave("SiteA", p2)).await;
    wait_no_list(&l, "SiteA", c.call).await;
    let final_list = loop {
        let msg = tokio::time::timeout(WAIT, sub.next())
            .await
            .unwrap()
            .unwrap();
        let list = LctList::decode(&msg.payload).unwrap();
        if list.seq == last {
            break list;
        }
    };
    assert!(final_list.is_empty(), "the last list has no parties");
    serving.stop().await;
}

#[tokio::test]
async fn a_supervisor_leaving_early_leaves_the_party_list_and_conference_intact() {
    let l = Ledger::start().await;
    l.configure("SiteA", true).await;
    let serving = l.serve(&["SiteA"], test_config());
    let c = CallBuilder::new();
    let (cust, a1, b1, sup) = (
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
    );
    l.publish(&c.join("SiteA", cust, "+14155550100", Role::Customer))
        .await;
    l.publish(&c.join("SiteA", a1, "7001", Role::Agent)).await;
    l.publish(&c.supervise("SiteA", sup, "7100", a1)).await;
    l.publish(&c.join("SiteB", b1, "7002", Role::Agent)).await;
    let want = [
        ("+14155550100", "SiteA"),
        ("7001", "SiteA"),
        ("7002", "SiteB"),
    ];
    let before = wait_list(&l, "SiteA", c.call, &want).await;
    assert_eq!(before.supervisors.len(), 1);
    let left = l.publish(&c.leave("SiteA", sup)).await;
    let after = eventually(WAIT, "the supervisor's leave", || async {
        l.lct("SiteA", c.call).await.filter(|x| x.seq == left)
    })
    .await;
    assert!(after.supervisors.is_empty());
    assert_eq!(after.parties, before.parties);
    assert!(after.is_conference());
    serving.stop().await;
}

#[tokio::test]
async fn an_option_changed_at_run_time_refolds_the_sites_view() {
    let l = Ledger::start().await;
    l.configure("SiteC", false).await;
    let serving = l.serve(&["SiteC"], test_config());
    let c = CallBuilder::new();
    let (a1, c1) = (Uuid::now_v7(), Uuid::now_v7());
    l.publish(&c.join("SiteA", a1, "7001", Role::Agent)).await;
    let last = l.publish(&c.join("SiteC", c1, "7003", Role::Agent)).await;
    wait_list(&l, "SiteC", c.call, &[("7003", "SiteC")]).await;
    // Propagation on: SiteC's view now equals the log folded with every event applied.
    l.set_option("SiteC", OptionName::UseDataFrom, "current")
        .await;
    let list = wait_list(&l, "SiteC", c.call, &[("7001", "SiteA"), ("7003", "SiteC")]).await;
    assert_eq!(list.seq, last);
    // An invalid value is refused: the previous value stays.
    l.set_option("SiteC", OptionName::UseDataFrom, "not a word")
        .await;
    l.set_option("SiteC", OptionName::SipEnableCallInfo, "maybe")
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(names(&l.lct("SiteC", c.call).await.unwrap()).len(), 2);
    // Propagation off again, then call info off: the list shrinks back, then is no longer kept.
    l.set_option("SiteC", OptionName::UseDataFrom, "original")
        .await;
    wait_list(&l, "SiteC", c.call, &[("7003", "SiteC")]).await;
    l.set_option("SiteC", OptionName::SipEnableCallInfo, "false")
        .await;
    wait_no_list(&l, "SiteC", c.call).await;
    // The default is false: deleting the key keeps it off; setting it on brings the list back.
    l.set_option("SiteC", OptionName::SipEnableCallInfo, "true")
        .await;
    wait_list(&l, "SiteC", c.call, &[("7003", "SiteC")]).await;
    serving.stop().await;
}

#[tokio::test]
async fn garbage_mismatched_and_anomalous_events_are_skipped_and_counted() {
    let l = Ledger::start().await;
    l.configure("SiteA", true).await;
    let serving = l.serve(&["SiteA"], test_config());
    let c = CallBuilder::new();
    let (p1, p2, p3) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let join1 = c.join("SiteA", p1, "7001", Role::Agent);
    l.publish(&join1).await;
    // Not MessagePack at all.
    l.publish_raw(
        format!("ledger.ev.{}.SiteA.party_joined", c.call),
        b"\xc1garbage".to_vec(),
    )
    .await;
    // A payload that disagrees with its subject (site).
    let j2 = c.join("SiteB", p2, "7002", Role::Agent);
    l.publish_raw(
        format!("ledger.ev.{}.SiteA.party_joined", c.call),
        j2.encode(),
    )
    .await;
    // A newer schema version.
    let mut v2 =
        rmpv::decode::read_value(&mut &c.join("SiteA", p3, "7003", Role::Agent).encode()[..])
            .unwrap();
    if let rmpv::Value::Map(m) = &mut v2 {
        m[0].1 = 2.into();
    }
    let mut bytes = Vec::new();
    rmpv::encode::write_value(&mut bytes, &v2).unwrap();
    l.publish_raw(format!("ledger.ev.{}.SiteA.party_joined", c.call), bytes)
        .await;
    // A subject that is not an event subject of the contract.
    l.publish_raw("ledger.ev.not-a-call".into(), join1.encode())
        .await;
    // Anomalies: a second join of a present party, a leave of an unknown one.
    let mut again = join1.clone();
    again.id = Uuid::now_v7();
    l.publish(&again).await;
    l.publish(&c.leave("SiteA", Uuid::now_v7())).await;
    // And good events keep flowing.
    l.publish(&c.join("SiteA", p2, "7002", Role::Customer))
        .await;
    wait_list(&l, "SiteA", c.call, &[("7001", "SiteA"), ("7002", "SiteA")]).await;
    let status = eventually(WAIT, "the counters", || async {
        l.status("SiteA").await.filter(|s| s.counters.applied == 2)
    })
    .await;
    assert_eq!(status.role, ledger_services::Role::Leader);
    assert_eq!(status.counters.undecodable, 4, "{:?}", status.counters);
    assert_eq!(status.counters.anomalies, 2, "{:?}", status.counters);
    // Everything stays in the append-only log.
    let info = l.stores.events.clone().info().await.unwrap().state.messages;
    assert_eq!(info, 8);
    serving.stop().await;
}

#[tokio::test]
async fn a_producer_retrying_a_publish_stores_the_event_once() {
    let l = Ledger::start().await;
    let c = CallBuilder::new();
    let e = c.join("SiteA", Uuid::now_v7(), "7001", Role::Agent);
    let first = l.publisher.publish(&e).await.unwrap();
    let again = l.publisher.publish(&e).await.unwrap();
    assert!(!first.duplicate && again.duplicate);
    assert_eq!(first.seq, again.seq);
    let report = l.publisher.publish_all([&e, &e], 8).await.unwrap();
    assert_eq!((report.stored, report.duplicates), (0, 2));
}

/// Publishes `calls` calls of four parties each, all joining and half of them ending, and returns
/// every event in order.
#[tokio::test]
async fn a_second_projector_of_the_same_site_stands_by_and_takes_over_when_the_first_stops() {
    let l = Ledger::start().await;
    l.configure("SiteA", true).await;
    let first = l.serve(&["SiteA"], test_config());
    eventually(WAIT, "a leader", || async {
        l.status("SiteA")
            .await
            .filter(|s| s.role == ledger_services::Role::Leader)
    })
    .await;
    let second = l.serve(&["SiteA"], test_config());
    let events = traffic(20);
    l.publisher.publish_all(&events, 64).await.unwrap();
    let total = l
        .stores
        .events
        .clone()
        .info()
        .await
        .unwrap()
        .state
        .last_sequence;
    eventually(WAIT, "the leader to catch up", || async {
        l.status("SiteA")
            .await
            .filter(|s| s.role == ledger_services::Role::Leader && s.counters.written_seq == total)
    })
    .await;
    // The lease names one holder: only it applies events.
    let holder = l
        .stores
        .projector
        .get("lease.SiteA")
        .await
        .unwrap()
        .unwrap();
    let holder = String::from_utf8(holder.to_vec()).unwrap();
    first.stop().await;
    // The standby takes over at once (the lease was released), and continues from the
    // acknowledged position: new events still reach the lists.
    let c = CallBuilder::new();
    let (p1, p2) = (Uuid::now_v7(), Uuid::now_v7());
    l.publish(&c.join("SiteA", p1, "7001", Role::Agent)).await;
    l.publish(&c.join("SiteA", p2, "7002", Role::Customer))
        .await;
    wait_list(&l, "SiteA", c.call, &[("7001", "SiteA"), ("7002", "SiteA")]).await;
    let s = l.status("SiteA").await.unwrap();
    assert_eq!(s.role, ledger_services::Role::Leader);
    assert_ne!(s.instance, holder, "the standby took over");
    assert_eq!(s.counters.anomalies, 0, "{:?}", s.counters);
    assert_lists_equal_the_fold(&l, &events).await;
    second.stop().await;
}

#[tokio::test]
async fn a_projector_rebuilt_from_the_start_does_not_show_history_again() {
    let l = Ledger::start().await;
    l.configure("SiteA", true).await;
    let events = traffic(30);
    l.publisher.publish_all(&events, 64).await.unwrap();
    let total = l
        .stores
        .events
        .clone()
        .info()
        .await
        .unwrap()
        .state
        .last_sequence;
    let first = l.serve(&["SiteA"], test_config());
    eventually(WAIT, "the lists", || async {
        l.status("SiteA")
            .await
            .filter(|s| s.counters.written_seq == total)
    })
    .await;
    first.stop().await;
    // An operator removes the floor: the next projector reads the stream from the start.
    l.stores.projector.delete("floor.SiteA").await.unwrap();
    let mut shown = l.client.subscribe("ledger.lct.SiteA.>").await.unwrap();
    let second = l.serve(&["SiteA"], test_config());
    let status = eventually(WAIT, "the rebuild", || async {
        l.status("SiteA")
            .await
            .filter(|s| s.counters.written_seq == total)
    })
    .await;
    assert_eq!(
        status.counters.applied,
        events.len() as u64,
        "it read everything"
    );
    // The stored lists already equal the fold: nothing is written or shown again.
    let again = tokio::time::timeout(Duration::from_millis(300), shown.next()).await;
    assert!(again.is_err(), "a list was shown again: {again:?}");
    assert_eq!(status.counters.lists_published, 0, "{:?}", status.counters);
    assert_lists_equal_the_fold(&l, &events).await;
    second.stop().await;
}
