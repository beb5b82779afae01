//! Crash tests against real nats-server processes with `sync_interval: always`: the server killed
//! with SIGKILL in the middle of a burst and restarted on its store; `ledger serve` killed with
//! SIGKILL in the middle of a burst; the store full, then its limit raised by a reload (SIGHUP).
//! A test binary of its own; the tests run one at a time (a lock), each bounded in time, and
//! assert with counts that nothing acknowledged was lost or doubled.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "crash/burst.rs"]
mod burst;
mod common;

use std::time::Duration;

use burst::{Burst, Fault, Plan};
use common::*;
use ledger_schemas::{RefusalCode, Role, subject};
use ledger_test_harness::{LedgerProcess, NatsServer};
use tokio::sync::Mutex;
use uuid::Uuid;

/// One crash test at a time: they kill processes and fill disks.
static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_burst_and_restarted_loses_and_doubles_nothing_acknowledged() {
    let _one = ONE_AT_A_TIME.lock().await;
    let mut l = Ledger::start().await;
    l.all_options_on(&["SiteA", "SiteB"]).await;
    let serving = l.serve(&["SiteA"], test_config());
    let plan = Plan::new(12, 10, 400);
    let burst = Burst::prepare(&l, &plan).await;
    // SIGKILL once a third of the burst is answered; a second later the server comes back on the
    // same port and store. Everything in flight then gets no answer and is sent again.
    let report = burst
        .run(
            &plan,
            Fault::KillServer(&mut l.server),
            Duration::from_secs(1),
        )
        .await;
    println!("{report}");
    assert!(
        report.mid_burst(),
        "the kill landed after the burst: {report}"
    );
    burst::assert_nothing_lost_or_doubled(&l, &plan, &report).await;
    serving.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ledger_serve_killed_mid_burst_of_deletes_loses_and_doubles_nothing() {
    let _one = ONE_AT_A_TIME.lock().await;
    let l = Ledger::start().await;
    l.all_options_on(&["SiteA", "SiteB"]).await;
    let args = [
        "serve",
        "--nats",
        l.url(),
        "--site",
        "SiteA",
        "--lease-ttl",
        "2",
    ];
    let mut first = LedgerProcess::start(&args).unwrap();
    let plan = Plan::new(12, 10, 400);
    let burst = Burst::prepare(&l, &plan).await;
    let mut second = None;
    // SIGKILL once a third of the burst is answered, then a new process at once: the requests
    // the killed one held get no answer and are sent again to the new one.
    let report = burst
        .run(
            &plan,
            Fault::KillServe {
                process: &mut first,
                replacement: &mut second,
                args: &args,
            },
            Duration::ZERO,
        )
        .await;
    println!("{report}");
    assert!(
        report.mid_burst(),
        "the kill landed after the burst: {report}"
    );
    burst::assert_nothing_lost_or_doubled(&l, &plan, &report).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_store_refuses_with_a_clear_error_and_works_again_after_a_reload() {
    let _one = ONE_AT_A_TIME.lock().await;
    let mut l =
        Ledger::start_on(NatsServer::start_with_jetstream("  max_file_store: 2MB").unwrap()).await;
    l.all_options_on(&["SiteA", "SiteB"]).await;
    let serving = l.serve(&["SiteA"], test_config());
    let publisher = l.publisher.clone();
    // A conference whose agents are deleted below.
    let c = CallBuilder::new();
    let requester = Uuid::now_v7();
    let targets: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
    publisher
        .publish(&c.join("SiteA", requester, "7000", Role::Agent))
        .await
        .unwrap();
    for (i, t) in targets.iter().enumerate() {
        publisher
            .publish(&c.join("SiteB", *t, &format!("710{i}"), Role::Agent))
            .await
            .unwrap();
    }
    let first = l
        .delete("SiteA", &request(c.call, "7000", &targets[0].to_string()))
        .await;
    assert!(first.outcome.is_ok(), "{first:?}");

    // Fill the store: calls of four parties until a publish is refused.
    let mut acked = 1 + targets.len() as u64 + 1;
    let mut refused = None;
    'fill: for _ in 0..20_000 {
        let call = CallBuilder::new();
        for i in 0..4 {
            let event = call.join("SiteA", Uuid::now_v7(), &format!("72{i:02}"), Role::Agent);
            match publisher.publish(&event).await {
                Ok(_) => acked += 1,
                Err(e) => {
                    refused = Some((event, e.to_string()));
                    break 'fill;
                }
            }
        }
    }
    let (refused_event, error) = refused.expect("the store never filled up");
    println!("refused after {acked} events: {error}");
    assert!(
        error.contains("insufficient resources"),
        "a publish to a full store fails with the server's reason: {error}"
    );
    // The command service answers `unavailable`, promptly, and keeps running.
    let req = request(c.call, "7000", &targets[1].to_string());
    let reply = tokio::time::timeout(Duration::from_secs(30), l.delete("SiteA", &req))
        .await
        .expect("the command service hangs on a full store");
    assert_eq!(code(&reply), Some(RefusalCode::Unavailable), "{reply:?}");
    assert!(
        !l.statuses("SiteA").await.is_empty(),
        "the services stopped answering"
    );

    // More room, without restarting anything.
    l.server.reload_jetstream("  max_file_store: 64MB").unwrap();
    let stored = eventually(
        Duration::from_secs(30),
        "the refused event stored",
        || async { publisher.publish(&refused_event).await.ok() },
    )
    .await;
    assert!(!stored.duplicate);
    acked += 1;
    let again = eventually(
        Duration::from_secs(30),
        "the same request accepted",
        || async {
            let r = l.delete("SiteA", &req).await;
            r.outcome.is_ok().then_some(r)
        },
    )
    .await;
    let accepted = again.outcome.unwrap();
    assert_eq!(
        accepted.parties.len(),
        2,
        "the requester and one agent left"
    );
    // The lists catch up: the call's list shows both deletes.
    eventually(
        Duration::from_secs(60),
        "the list after the reload",
        || async {
            l.lct("SiteA", c.call)
                .await
                .filter(|x| x.parties.len() == 2 && x.seq == accepted.seq)
        },
    )
    .await;
    // Every acknowledged event is stored once: the events, plus the two deletes.
    let info =
        l.js.get_stream(subject::EVENTS_STREAM)
            .await
            .unwrap()
            .info()
            .await
            .unwrap()
            .state
            .messages;
    assert_eq!(info, acked + 1, "acknowledged events and two deletes");
    let deletes = l.deletions(c.call).await;
    assert_eq!(deletes.len(), 2);
    serving.stop().await;
}
