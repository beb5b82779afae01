//! Statistics against a real nats-server: the real-time state a supervisor's early leave turns
//! off, and live figures equal to a recount of a simulated day.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use futures::StreamExt;
use ledger_schemas::{CallNow, Message, Role, SiteNow, StatsKey};
use uuid::Uuid;

/// The call's state as stored, once it reflects the event at `seq`.
async fn call_now_at(l: &Ledger, call: Uuid, seq: u64) -> Option<CallNow> {
    let key = StatsKey::Call(site("SiteA"), call).key();
    eventually(WAIT, "the call's state to reach the event", || async {
        let entry = l.stores.stats.entry(&key).await.ok()??;
        match entry.operation {
            async_nats::jetstream::kv::Operation::Put => {
                let now = CallNow::decode(&entry.value).unwrap();
                (now.seq >= seq).then_some(Some(now))
            }
            _ => Some(None),
        }
    })
    .await
}

async fn site_now(l: &Ledger) -> SiteNow {
    let entry = l
        .stores
        .stats
        .entry(StatsKey::Now(site("SiteA")).key())
        .await
        .unwrap()
        .unwrap();
    SiteNow::decode(&entry.value).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_observed_flag_turns_on_at_the_supervisors_join_and_off_at_its_early_leave() {
    let l = Ledger::start().await;
    let serving = l.serve(&["SiteA"], test_config());
    let call = CallBuilder::new();
    let mut published = l
        .client
        .subscribe(StatsKey::Call(site("SiteA"), call.call).subject())
        .await
        .unwrap();
    let (agent, customer, sup) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());

    l.publish(&call.join("SiteA", customer, "+14155550100", Role::Customer))
        .await;
    let joined = l
        .publish(&call.join("SiteA", agent, "7001", Role::Agent))
        .await;
    let now = call_now_at(&l, call.call, joined).await.unwrap();
    assert!(!now.observed, "not observed before a supervisor joins");
    assert_eq!(now.agents.len(), 1);

    let on = l
        .publish(&call.supervise("SiteA", sup, "7100", agent))
        .await;
    let now = call_now_at(&l, call.call, on).await.unwrap();
    assert!(now.observed, "on at the supervisor's join");
    assert!(now.agents[0].observed);
    assert_eq!(now.observers.len(), 1);
    assert_eq!(now.observers[0].party, sup);
    assert_eq!(now.observers[0].mode.as_str(), "coach");
    let counts = site_now(&l).await;
    assert_eq!((counts.calls, counts.observed), (1, 1));

    let off = l.publish(&call.leave("SiteA", sup)).await;
    let now = call_now_at(&l, call.call, off).await.unwrap();
    assert!(!now.observed, "off at its leave");
    assert!(!now.ended, "while the call goes on");
    assert!(now.observers.is_empty());
    let counts = site_now(&l).await;
    assert_eq!((counts.calls, counts.observed), (1, 0));

    l.publish(&call.leave("SiteA", agent)).await;
    let end = l.publish(&call.leave("SiteA", customer)).await;
    eventually(WAIT, "the call's key to be deleted", || async {
        let entry = l
            .stores
            .stats
            .entry(StatsKey::Call(site("SiteA"), call.call).key())
            .await
            .ok()?;
        entry
            .is_none_or(|e| e.operation != async_nats::jetstream::kv::Operation::Put)
            .then_some(())
    })
    .await;
    assert_eq!(site_now(&l).await.calls, 0);

    // What was published: the flag follows the events, and the last message ends the call.
    let mut seen = Vec::new();
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_secs(1), published.next()).await {
        seen.push(CallNow::decode(&m.payload).unwrap());
    }
    assert!(!seen.is_empty());
    for m in &seen {
        assert_eq!(m.observed, m.seq >= on && m.seq < off, "{m:?}");
    }
    let last = seen.last().unwrap();
    assert!(last.ended && last.seq == end, "{last:?}");

    // The figures: one call, observed once.
    let home = tempfile::tempdir().unwrap();
    let out = ledger_ok(
        &l,
        home.path(),
        &["stats", "--format", "json", "--by", "day"],
    );
    let line: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(line["calls"], 1, "{line}");
    assert_eq!(line["observed"], 1, "{line}");
    assert_eq!(line["observed_coach_us"], line["observed_us"], "{line}");
    serving.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_figures_equal_a_recount_of_a_simulated_stream_of_thousands_of_calls() {
    let l = Ledger::start().await;
    let serving = l.serve(&["SiteA", "SiteB", "SiteC"], test_config());
    let home = tempfile::tempdir().unwrap();
    let out = ledger_ok(
        &l,
        home.path(),
        &[
            "sim", "--calls", "2000", "--rate", "500", "--gap-ms", "5", "--seed", "5", "--format",
            "json",
        ],
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["calls"], 2000, "{summary}");

    let recount = ledger_ok(
        &l,
        home.path(),
        &["stats", "--recount", "--by", "15m", "--format", "json"],
    );
    let recount = String::from_utf8_lossy(&recount.stdout).to_string();
    let live = eventually(
        Duration::from_secs(60),
        "the live figures to catch up",
        || {
            let (l, home, recount) = (&l, home.path(), &recount);
            async move {
                let out = ledger_ok(l, home, &["stats", "--by", "15m", "--format", "json"]);
                let live = String::from_utf8_lossy(&out.stdout).to_string();
                (live == *recount).then_some(live)
            }
        },
    )
    .await;
    let rows: Vec<serde_json::Value> = live
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let sum = |k: &str| rows.iter().map(|r| r[k].as_u64().unwrap()).sum::<u64>();
    assert!(sum("calls") >= 2000, "every call counts at a site at least");
    for figure in [
        "conferences",
        "observed",
        "observed_us",
        "conference_us",
        "deletes_local",
    ] {
        assert!(sum(figure) > 0, "{figure} is 0 over 2,000 simulated calls");
    }
    let refused: u64 = rows
        .iter()
        .flat_map(|r| r["refused"].as_object().unwrap().values())
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert!(refused > 0, "the simulation's refused deletes are counted");
    serving.stop().await;
}
