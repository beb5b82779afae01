//! A three-node cluster on loopback, streams and buckets at R3, under steady load from
//! `ledger sim`: the node holding the event stream's leader is stopped and restarted, then the
//! next leader's. Nothing acknowledged is lost or doubled, and `ledger verify` finds every list
//! equal to the fold of the log and every accepted delete on the audit.
//!
//! About two minutes, so behind `--ignored`:
//!
//! ```sh
//! cargo test -p ledger-test-harness --test cluster -- --ignored --nocapture
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{connect, eventually, ledger_in};
use ledger_schemas::subject;
use ledger_test_harness::{Cluster, LedgerProcess};

/// Which node leads `stream` now, by its index in the cluster (names are `ledger-test-<i>`).
async fn leader_of(js: &async_nats::jetstream::Context, stream: &str) -> usize {
    eventually(Duration::from_secs(60), "a stream leader", || async {
        let mut s = js.get_stream(stream).await.ok()?;
        let leader = s.info().await.ok()?.cluster.as_ref()?.leader.clone()?;
        leader.strip_prefix("ledger-test-")?.parse().ok()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "about two minutes: cargo test -p ledger-test-harness --test cluster -- --ignored"]
async fn stream_leaders_stopped_under_load_lose_nothing_acknowledged() {
    let mut cluster = Cluster::start(3).unwrap();
    let urls = cluster.urls();
    let home = tempfile::tempdir().unwrap();
    // The cluster elects its JetStream leader once the nodes meet: retry until it serves.
    eventually(Duration::from_secs(60), "streams at R3", || async {
        let out = ledger_in(home.path())
            .args(["provision", "--replicas", "3", "--server", &urls])
            .output()
            .unwrap();
        out.status.success().then_some(())
    })
    .await;
    let sites = ["--site", "SiteA", "--site", "SiteB", "--site", "SiteC"];
    let serve = |urls: &str| {
        let mut args = vec![
            "serve",
            "--server",
            urls,
            "--replicas",
            "3",
            "--lease-ttl",
            "2",
        ];
        args.extend(sites);
        LedgerProcess::start(&args).unwrap()
    };
    // Two processes serving every site, their server lists in different orders.
    let reversed: Vec<&str> = urls.split(',').rev().collect();
    let reversed = reversed.join(",");
    let first = serve(&urls);
    let second = serve(&reversed);
    let out = home.path().join("sim.json");
    let mut sim_args = vec![
        "sim", "--server", &urls, "--calls", "900", "--rate", "10", "--gap-ms", "800", "--seed",
        "11", "--format", "json",
    ];
    sim_args.extend(sites);
    let mut sim = LedgerProcess::start_with_stdout(&sim_args, &out).unwrap();

    let admin = connect(&urls, "test").await;
    let mut stopped = Vec::new();
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_secs(12)).await;
        let leader = leader_of(&admin.js, subject::EVENTS_STREAM).await;
        println!("stopping node {leader}, the leader of LEDGER_EVENTS");
        cluster.nodes[leader].kill();
        stopped.push(leader);
        tokio::time::sleep(Duration::from_secs(8)).await;
        tokio::task::block_in_place(|| cluster.nodes[leader].restart()).unwrap();
        println!("node {leader} restarted");
    }
    let status = tokio::task::block_in_place(|| sim.wait(Duration::from_secs(180))).unwrap();
    assert!(status.success(), "ledger sim failed:\n{}", sim.log());
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    println!("sim: {summary}\nnodes stopped: {stopped:?}");
    let acknowledged = summary["acknowledged"].as_u64().unwrap();
    let sent = summary["events"].as_u64().unwrap();
    assert_eq!(
        acknowledged, sent,
        "every event the sim sent was acknowledged"
    );
    let deletes = summary["deletes"].as_object().unwrap();
    assert_eq!(
        deletes.get("no_answer"),
        None,
        "a delete request never answered"
    );
    let accepted = deletes
        .get("ok")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0);

    // Exactly what was acknowledged is stored: the events once each, and the accepted deletes.
    let stored = eventually(Duration::from_secs(30), "the stream's count", || async {
        let mut s = admin.js.get_stream(subject::EVENTS_STREAM).await.ok()?;
        Some(s.info().await.ok()?.state.messages)
    })
    .await;
    assert_eq!(
        stored,
        acknowledged + accepted,
        "stored = acknowledged events + accepted deletes"
    );

    // Every list equals the fold of the log; every accepted delete is on the audit, once.
    let out = ledger_in(home.path())
        .args([
            "verify", "--server", &urls, "--wait", "60", "--format", "json",
        ])
        .args(sites)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    println!("verify: {report}");
    let (mut takeovers, mut lagged) = (0, 0);
    for process in [&first, &second] {
        let log = process.log();
        takeovers += log.matches("projecting this site").count();
        lagged += log.matches("events read from the stream leader").count();
    }
    println!(
        "take-overs: {takeovers}; recoveries that found a lagging replica and read from the leader: {lagged}"
    );
    if !out.status.success() {
        explain_differences(home.path(), &urls, &report);
        for (name, process) in [("first", &first), ("second", &second)] {
            let log = process.log();
            let notable: Vec<&str> = log
                .lines()
                .filter(|l| !l.contains("\"level\":\"INFO\"") || l.contains("projecting"))
                .collect();
            println!(
                "{name} ledger serve, warnings and take-overs:\n{}",
                notable.join("\n")
            );
        }
    }
    assert!(
        out.status.success(),
        "{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(report.trim()).unwrap();
    assert_eq!(report["doubled"], 0);
    assert_eq!(report["deletes"].as_u64(), Some(accepted));
    assert!(
        report["sites"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["differ"] == 0)
    );
}

/// On a failed verification, prints each differing call's replay in the global view and in the
/// differing site's, so that a failure can be understood from the test's output alone.
fn explain_differences(home: &std::path::Path, urls: &str, report: &str) {
    let Ok(report) = serde_json::from_str::<serde_json::Value>(report.trim()) else {
        return;
    };
    let differences = report["differences"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for difference in differences.iter().filter_map(|d| d.as_str()).take(3) {
        let Some((key, _)) = difference.split_once(':') else {
            continue;
        };
        let Some((site, call)) = key.split_once('.') else {
            continue;
        };
        for view in [None, Some(site)] {
            let mut cmd = ledger_in(home);
            cmd.args(["replay", "--server", urls, "--call", call]);
            if let Some(site) = view {
                cmd.args(["--site", site]);
            }
            if let Ok(out) = cmd.output() {
                println!(
                    "replay of {call} ({}):\n{}{}",
                    view.unwrap_or("global view"),
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }
}
