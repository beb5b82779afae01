//! Subscribe, replay, audit: the three things users do with the ledger, through the library and
//! the `ledger` command, against a real nats-server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::process::Output;
use std::time::Duration;

use common::*;
use futures::StreamExt;
use ledger_replay::{Durability, Filter, Options, Start, Subscription, Viewpoint};
use ledger_schemas::{EventKind, OptionName, PartyEvent, Role};
use ledger_test_harness::LedgerProcess;
use nix::sys::signal::Signal;
use uuid::Uuid;

fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Two calls: in the first, 7001 at SiteA and 7002 at SiteB with a customer, 7002 leaving;
/// in the second, 7003 and 7004 at SiteA only.
struct Two {
    first: CallBuilder,
    second: CallBuilder,
    seqs: Vec<u64>,
}

async fn two_calls(l: &Ledger) -> Two {
    let (first, second) = (CallBuilder::new(), CallBuilder::new());
    let p: Vec<Uuid> = (0..5).map(|_| Uuid::now_v7()).collect();
    let events = [
        first.join("SiteA", p[0], "+14155550100", Role::Customer),
        first.join("SiteA", p[1], "7001", Role::Agent),
        second.join("SiteA", p[3], "7003", Role::Agent),
        first.join("SiteB", p[2], "7002", Role::Agent),
        second.join("SiteA", p[4], "7004", Role::Agent),
        first.leave("SiteB", p[2]),
    ];
    let mut seqs = Vec::new();
    for e in &events {
        seqs.push(l.publish(e).await);
    }
    Two {
        first,
        second,
        seqs,
    }
}

#[tokio::test]
async fn a_call_read_back_up_to_a_sequence_stops_there() {
    let l = Ledger::start().await;
    let two = two_calls(&l).await;
    let upto = l
        .nats
        .history
        .read_call(two.first.call, 1, Some(two.seqs[3]))
        .await
        .unwrap();
    assert_eq!(
        upto.iter().map(|m| m.seq).collect::<Vec<_>>(),
        vec![two.seqs[0], two.seqs[1], two.seqs[3]]
    );
}

#[tokio::test]
async fn tail_filters_by_call_kind_and_dn_and_site_gives_that_sites_view() {
    let l = Ledger::start().await;
    let two = two_calls(&l).await;
    let home = tempfile::tempdir().unwrap();
    let tail = |extra: &[&str]| {
        let mut args = vec!["tail", "--since", "1", "--until-idle", "--format", "json"];
        args.extend_from_slice(extra);
        json_lines(&ledger_ok(&l, home.path(), &args))
    };
    let all = tail(&[]);
    assert_eq!(
        all.iter()
            .map(|v| v["seq"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        two.seqs
    );
    let first = two.first.call.to_string();
    let by_call = tail(&["--call", &first]);
    assert_eq!(by_call.len(), 4);
    assert!(by_call.iter().all(|v| v["call"] == first.as_str()));
    let joins = tail(&["--kind", "party_joined"]);
    assert_eq!(joins.len(), 5);
    assert!(joins.iter().all(|v| v["kind"] == "party_joined"));
    // The whole view after each event, even when only joins are shown.
    assert_eq!(joins[3]["parties"].as_array().unwrap().len(), 3);
    let with_7003 = tail(&["--dn", "7003"]);
    assert!(
        with_7003
            .iter()
            .all(|v| v["call"] == two.second.call.to_string().as_str())
    );
    assert_eq!(with_7003.len(), 2, "from 7003's join on");
    assert!(tail(&["--dn", "7003@SiteB"]).is_empty());
    // SiteA without propagation does not see SiteB's agent; the global view does.
    let site_a = tail(&["--call", &first, "--site", "SiteA"]);
    assert_eq!(site_a[2]["parties"].as_array().unwrap().len(), 2);
    assert_eq!(by_call[2]["parties"].as_array().unwrap().len(), 3);
    l.set_option("SiteA", OptionName::UseDataFrom, "current")
        .await;
    let site_a = tail(&["--call", &first, "--site", "SiteA"]);
    assert_eq!(site_a[2]["parties"].as_array().unwrap().len(), 3);
    // Without --since, only what is stored after the start: nothing here.
    assert!(
        json_lines(&ledger_ok(
            &l,
            home.path(),
            &["tail", "--until-idle", "--format", "json"]
        ))
        .is_empty()
    );
    assert!(
        json_lines(&ledger_ok(
            &l,
            home.path(),
            &[
                "tail",
                "--since",
                "999999",
                "--until-idle",
                "--format",
                "json"
            ]
        ))
        .is_empty()
    );
}

#[tokio::test]
async fn an_ephemeral_subscription_leaves_no_consumer_behind() {
    let l = Ledger::start().await;
    two_calls(&l).await;
    let mut sub = Subscription::open(
        &l.js,
        &l.nats.history,
        Options {
            start: Start::Beginning,
            ..Options::default()
        },
    )
    .await
    .unwrap();
    let first = sub.next().await.unwrap().unwrap();
    assert_eq!(first.seq, 1);
    let consumers = |l: &Ledger| {
        let stream = l.stores.events.clone();
        async move { stream.consumer_names().count().await }
    };
    assert_eq!(consumers(&l).await, 1);
    sub.close().await.unwrap();
    assert_eq!(
        consumers(&l).await,
        0,
        "the subscription's consumer is gone"
    );
    // The command too: a tail that ends leaves nothing.
    let home = tempfile::tempdir().unwrap();
    ledger_ok(&l, home.path(), &["tail", "--since", "1", "--until-idle"]);
    assert_eq!(consumers(&l).await, 0);
}

#[tokio::test]
async fn a_durable_subscription_resumes_after_its_process_is_killed_without_missing_an_event() {
    let l = Ledger::start().await;
    let home = tempfile::tempdir().unwrap();
    let call = CallBuilder::new();
    let parties: Vec<Uuid> = (0..200).map(|_| Uuid::now_v7()).collect();
    let events: Vec<PartyEvent> = parties
        .iter()
        .enumerate()
        .map(|(i, p)| call.join("SiteA", *p, &format!("{}", 7000 + i), Role::Agent))
        .collect();
    l.publisher.publish_all(&events[..100], 64).await.unwrap();
    // The first reader prints some events, then is killed mid-stream.
    let out = home.path().join("first.jsonl");
    let first = LedgerProcess::start_with_stdout(
        &[
            "tail",
            "--durable",
            "billing",
            "--since",
            "1",
            "--format",
            "json",
            "--server",
            l.url(),
        ],
        &out,
    )
    .unwrap();
    eventually(WAIT, "the first reader to print", || async {
        (std::fs::read_to_string(&out)
            .unwrap_or_default()
            .lines()
            .count()
            >= 30)
            .then_some(())
    })
    .await;
    first.signal(Signal::SIGKILL).unwrap();
    let printed_before: BTreeSet<u64> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()?["seq"].as_u64())
        .collect();
    l.publisher.publish_all(&events[100..], 64).await.unwrap();
    // It resumes where it was acknowledged: nothing is missed (some may come twice).
    let again = json_lines(&ledger_ok(
        &l,
        home.path(),
        &[
            "tail",
            "--durable",
            "billing",
            "--until-idle",
            "--format",
            "json",
        ],
    ));
    let printed_after: BTreeSet<u64> = again.iter().map(|v| v["seq"].as_u64().unwrap()).collect();
    let all: BTreeSet<u64> = printed_before.union(&printed_after).copied().collect();
    assert_eq!(all, (1..=200).collect::<BTreeSet<u64>>());
    assert!(printed_after.len() < 200, "it resumed, not restarted");
    // It is listed with its position, and removed.
    let list = json_lines(&ledger_ok(
        &l,
        home.path(),
        &["subscriptions", "--format", "json"],
    ));
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["name"], "billing");
    assert_eq!(list[0]["acked_seq"], 200);
    assert_eq!(list[0]["lag"], 0);
    ledger_ok(&l, home.path(), &["subscriptions", "--remove", "billing"]);
    assert!(
        json_lines(&ledger_ok(
            &l,
            home.path(),
            &["subscriptions", "--format", "json"]
        ))
        .is_empty()
    );
    // The library too: a durable subscription yields what it was not acknowledged.
    let mut sub = Subscription::open(
        &l.js,
        &l.nats.history,
        Options {
            start: Start::Beginning,
            durability: Durability::Durable("lib".into()),
            filter: Filter {
                kind: Some(EventKind::PartyJoined),
                ..Filter::default()
            },
            view: Viewpoint::Global,
            ..Options::default()
        },
    )
    .await
    .unwrap();
    let one = sub.next().await.unwrap().unwrap();
    one.ack().await.unwrap();
    drop(sub);
    let mut sub = Subscription::open(
        &l.js,
        &l.nats.history,
        Options {
            start: Start::Beginning,
            durability: Durability::Durable("lib".into()),
            filter: Filter {
                kind: Some(EventKind::PartyJoined),
                ..Filter::default()
            },
            ..Options::default()
        },
    )
    .await
    .unwrap();
    let next = tokio::time::timeout(Duration::from_secs(40), sub.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(next.seq, 2, "resumed after the acknowledged one");
}

#[tokio::test]
async fn replay_at_shows_the_lists_as_they_were_at_a_sequence_and_at_a_time() {
    let l = Ledger::start().await;
    let two = two_calls(&l).await;
    let home = tempfile::tempdir().unwrap();
    let call = two.first.call.to_string();
    let at = |when: &str| {
        json_lines(&ledger_ok(
            &l,
            home.path(),
            &["replay", "--call", &call, "--at", when, "--format", "json"],
        ))
    };
    // Just after SiteB's agent joined (seq 4): SiteA sees its own two, SiteB all three? No:
    // SiteB without propagation sees its own party and the events it published.
    let lists = at(&two.seqs[3].to_string());
    assert_eq!(lists.len(), 2, "{lists:?}");
    assert_eq!(lists[0]["site"], "SiteA");
    assert_eq!(lists[0]["parties"].as_array().unwrap().len(), 2);
    assert_eq!(lists[0]["seq"], two.seqs[1]);
    assert_eq!(lists[1]["site"], "SiteB");
    assert_eq!(lists[1]["parties"].as_array().unwrap().len(), 1);
    // Before SiteB took part, only SiteA.
    let lists = at(&two.seqs[1].to_string());
    assert_eq!(lists.len(), 1);
    // At a time: after the last event whose ts is not later.
    let events = l
        .nats
        .history
        .read_call(two.first.call, 1, None)
        .await
        .unwrap();
    let third = PartyEvent::decode_on(&events[2].subject, &events[2].payload).unwrap();
    let when = jiff::Timestamp::from_microsecond(i64::try_from(third.ts).unwrap())
        .unwrap()
        .to_string();
    let lists = at(&when);
    assert_eq!(lists[1]["site"], "SiteB");
    assert_eq!(lists[1]["seq"], two.seqs[3]);
    let before = ledger_in(home.path())
        .args([
            "replay",
            "--call",
            &call,
            "--at",
            "2001-01-01T00:00:00Z",
            "--server",
            l.url(),
        ])
        .output()
        .unwrap();
    assert!(!before.status.success());
    assert!(String::from_utf8_lossy(&before.stderr).contains("had no event at that moment"));
}

#[tokio::test]
async fn audit_by_dn_finds_every_call_the_dn_was_in_in_each_format_and_changes_list_options() {
    let l = Ledger::start().await;
    l.all_options_on(&["SiteA", "SiteB"]).await;
    let serving = l.serve(&["SiteA", "SiteB"], test_config());
    let conf = l.conference().await;
    // A delete in the conference (7001@SiteA removes SiteC's 7003), and a refusal.
    let reply = l
        .delete("SiteA", &request(conf.call.call, "7001", "7003@SiteC"))
        .await;
    assert!(reply.outcome.is_ok(), "{reply:?}");
    let refused = l
        .delete("SiteA", &request(conf.call.call, "7001", "7001"))
        .await;
    assert!(refused.outcome.is_err());
    // Another call without 7003.
    let other = two_calls(&l).await;
    let home = tempfile::tempdir().unwrap();
    let lines = json_lines(&ledger_ok(
        &l,
        home.path(),
        &["audit", "--dn", "7003@SiteC", "--format", "json"],
    ));
    let calls: BTreeSet<String> = lines
        .iter()
        .map(|v| v["call"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(calls, BTreeSet::from([conf.call.call.to_string()]));
    assert!(
        lines
            .iter()
            .any(|v| v["type"] == "decision" && v["ok"] == true)
    );
    assert!(
        lines.iter().any(|v| v["type"] == "change"
            && v["kind"] == "party_deleted"
            && v["by"]["dn"] == "7001")
    );
    assert!(
        lines
            .windows(2)
            .all(|w| w[0]["ts"].as_u64() <= w[1]["ts"].as_u64()),
        "in time order"
    );
    // A DN of the other call only.
    let lines = json_lines(&ledger_ok(
        &l,
        home.path(),
        &["audit", "--dn", "7004", "--format", "json"],
    ));
    assert!(!lines.is_empty());
    assert!(
        lines
            .iter()
            .all(|v| v["call"] == other.second.call.to_string().as_str())
    );
    // CSV: a header of the JSON keys, one row a line.
    let csv = ledger_ok(
        &l,
        home.path(),
        &["audit", "--dn", "7003@SiteC", "--format", "csv"],
    );
    let text = String::from_utf8_lossy(&csv.stdout);
    let mut rows = text.lines();
    assert!(rows.next().unwrap().starts_with("type,seq,ts,site,call"));
    assert_eq!(
        rows.count(),
        json_lines(&ledger_ok(
            &l,
            home.path(),
            &["audit", "--dn", "7003@SiteC", "--format", "json"]
        ))
        .len()
    );
    // The table names the call.
    let table = ledger_ok(&l, home.path(), &["audit", "--dn", "7003@SiteC"]);
    assert!(String::from_utf8_lossy(&table.stdout).contains(&conf.call.call.to_string()));
    // Decisions only, refused only.
    let refusals = json_lines(&ledger_ok(
        &l,
        home.path(),
        &["audit", "--outcome", "refused", "--format", "json"],
    ));
    assert_eq!(refusals.len(), 1);
    assert_eq!(refusals[0]["code"], "ambiguous_party");
    assert!(
        refusals[0].get("type").is_none(),
        "decisions alone carry no type"
    );
    // With --changes and no --dn: option changes too.
    let changes = json_lines(&ledger_ok(
        &l,
        home.path(),
        &["audit", "--changes", "--format", "json"],
    ));
    let options: Vec<&serde_json::Value> =
        changes.iter().filter(|v| v["type"] == "option").collect();
    assert!(
        options.iter().any(|v| v["site"] == "SiteA"
            && v["key"] == "TServer.sip-remote-del-from-conf"
            && v["new"] == "true"),
        "{options:?}"
    );
    serving.stop().await;
}

#[tokio::test]
async fn a_time_window_reads_only_that_window_of_the_streams() {
    let l = Ledger::start().await;
    let old: Vec<PartyEvent> = (0..300)
        .map(|i| {
            CallBuilder::new().join(
                "SiteA",
                Uuid::now_v7(),
                &format!("{}", 7000 + i % 50),
                Role::Agent,
            )
        })
        .collect();
    l.publisher.publish_all(&old, 64).await.unwrap();
    let home = tempfile::tempdir().unwrap();
    let everything = ledger_ok(
        &l,
        home.path(),
        &["audit", "--changes", "--format", "json", "-v"],
    );
    let read_all: u64 = read_count(&everything);
    assert!(read_all >= 300);
    // A window that ends before the events: reading stops at its end.
    let before = "2001-01-01T00:00:00Z";
    let windowed = ledger_ok(
        &l,
        home.path(),
        &[
            "audit",
            "--changes",
            "--until",
            before,
            "--format",
            "json",
            "-v",
        ],
    );
    assert!(json_lines(&windowed).is_empty());
    let read_windowed = read_count(&windowed);
    assert!(
        read_windowed < read_all,
        "{read_windowed} read for the window, {read_all} for all"
    );
    // A window that starts later than the reading margin after the old events reads none of
    // them: the consumers start by time.
    let later = (jiff::Timestamp::now() + jiff::SignedDuration::from_mins(10)).to_string();
    let since_later = ledger_ok(
        &l,
        home.path(),
        &[
            "audit",
            "--changes",
            "--since",
            &later,
            "--format",
            "json",
            "-v",
        ],
    );
    assert_eq!(read_count(&since_later), 0);
}

fn read_count(out: &Output) -> u64 {
    let err = String::from_utf8_lossy(&out.stderr);
    err.lines()
        .find_map(|l| {
            l.strip_prefix("ledger audit: read ")?
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no count on standard error: {err}"))
}

#[tokio::test]
async fn lct_as_genesys_key_value_pairs_matches_the_golden_file() {
    let l = Ledger::start().await;
    l.configure("SiteA", true).await;
    let serving = l.serve(&["SiteA"], test_config());
    // Fixed ids, so that the output is always the same.
    let call = CallBuilder {
        call: Uuid::from_u128(0x0192f3a4_5b6c_7d8e_9f01_0000000000ca),
    };
    let id = |n: u128| Uuid::from_u128(0x0192f3a4_5b6c_7d8e_9f01_000000000000 + n);
    for e in [
        call.join("SiteA", id(1), "+14155550100", Role::Customer),
        call.join("SiteA", id(2), "7001", Role::Agent),
        call.join("SiteB", id(3), "7001", Role::Agent),
        call.supervise("SiteA", id(4), "7100", id(2)),
    ] {
        l.publish(&e).await;
    }
    eventually(WAIT, "the list", || async {
        l.lct("SiteA", call.call)
            .await
            .filter(|list| list.supervisors.len() == 1)
    })
    .await;
    let home = tempfile::tempdir().unwrap();
    let out = ledger_ok(
        &l,
        home.path(),
        &[
            "lct",
            "--site",
            "SiteA",
            "--call",
            &call.call.to_string(),
            "--format",
            "genesys",
        ],
    );
    let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("golden/lct_genesys.txt");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &out.stdout).unwrap();
    }
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        std::fs::read_to_string(&golden).unwrap()
    );
    serving.stop().await;
}
