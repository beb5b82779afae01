//! The `ledger` binary's outputs that scripts read (`--format json`), against a real server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a panic is the failure report

mod common;

use common::{Ledger, test_config};
use ledger_test_harness::ledger_binary;

async fn ledger(l: &Ledger, args: &[&str]) -> (i32, Vec<serde_json::Value>, String) {
    let run = tokio::process::Command::new(ledger_binary().unwrap())
        .args(args)
        .args(["--nats", l.url(), "--format", "json"])
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .output();
    // A hang is a failure, not a stuck test run.
    let out = tokio::time::timeout(std::time::Duration::from_secs(120), run)
        .await
        .unwrap_or_else(|_| panic!("ledger {args:?} did not finish within 120 s"))
        .unwrap();
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}")))
        .collect();
    (
        out.status.code().unwrap_or(-1),
        lines,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn keys(v: &serde_json::Value) -> Vec<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

#[tokio::test]
async fn delete_audit_and_replay_print_the_contracts_json_lines() {
    let l = Ledger::start().await;
    l.all_options_on(&["SiteA", "SiteB", "SiteC"]).await;
    let serving = l.serve(&["SiteA", "SiteB", "SiteC"], test_config());
    let c = l.conference().await;
    let call = c.call.call.to_string();
    // Wait until SiteC's command service listens (a request about another call).
    l.delete(
        "SiteC",
        &common::request(uuid::Uuid::now_v7(), "7003", "7001"),
    )
    .await;

    // Refused (ambiguous): exit status 2, the candidates in the reply.
    let (status, out, err) = ledger(
        &l,
        &[
            "delete",
            "--site",
            "SiteC",
            "--call",
            &call,
            "--this-dn",
            "7003",
            "--other-dn",
            "7001",
        ],
    )
    .await;
    assert_eq!(status, 2, "{err}");
    assert_eq!(out[0]["ok"], false);
    assert_eq!(out[0]["error"]["code"], "ambiguous_party");
    assert_eq!(out[0]["error"]["terr"], 53);
    assert_eq!(out[0]["error"]["candidates"].as_array().unwrap().len(), 2);

    // Accepted: exit status 0, seq and event, the parties after it.
    let (status, out, err) = ledger(
        &l,
        &[
            "delete",
            "--site",
            "SiteC",
            "--call",
            &call,
            "--this-dn",
            "7003",
            "--other-dn",
            "7001@SiteB",
            "--reason",
            "comment=test",
        ],
    )
    .await;
    assert_eq!(status, 0, "{err}");
    assert_eq!(out[0]["ok"], true);
    assert!(out[0]["seq"].as_u64().unwrap() > 5);
    assert_eq!(out[0]["parties"].as_array().unwrap().len(), 3);

    // The audit: one line per decision, in stream order, with the contract's keys.
    let (status, out, err) = ledger(&l, &["audit", "--call", &call]).await;
    assert_eq!(status, 0, "{err}");
    assert_eq!(out.len(), 2);
    assert_eq!(
        keys(&out[0]),
        [
            "ts", "site", "call", "request", "this_dn", "other_dn", "ok", "code"
        ]
    );
    assert_eq!(out[0]["code"], "ambiguous_party");
    assert_eq!(out[1]["ok"], true);
    assert_eq!(out[1]["code"], serde_json::Value::Null);
    assert_eq!(out[1]["other_dn"], "7001@SiteB");
    assert_eq!(out[1]["call"], call.as_str());
    let (_, by_site, _) = ledger(&l, &["audit", "--site", "SiteA"]).await;
    assert!(by_site.is_empty(), "SiteA decided nothing");
    let (_, everything, _) = ledger(&l, &["audit"]).await;
    assert_eq!(everything.len(), 3, "with the warm-up request");

    // Replay: one line per stored event, the global view after each.
    let (status, out, err) = ledger(&l, &["replay", "--call", &call]).await;
    assert_eq!(status, 0, "{err}");
    assert_eq!(out.len(), 6);
    assert_eq!(
        keys(&out[0]),
        [
            "seq", "ts", "site", "kind", "party", "dn", "role", "parties"
        ]
    );
    let last = &out[5];
    assert_eq!(last["kind"], "party_deleted");
    assert_eq!(last["by"]["dn"], "7003");
    assert!(last["request"].is_string());
    assert_eq!(last["parties"].as_array().unwrap().len(), 3);
    // SiteC's view without propagation: its own agent only.
    l.set_option("SiteC", ledger_schemas::OptionName::UseDataFrom, "original")
        .await;
    let (_, out, _) = ledger(&l, &["replay", "--call", &call, "--site", "SiteC"]).await;
    assert_eq!(out[5]["parties"].as_array().unwrap().len(), 1);
    serving.stop().await;
}

#[tokio::test]
async fn a_missing_call_and_an_absent_service_are_errors_with_a_failure_status() {
    let l = Ledger::start().await;
    let (status, _, err) = ledger(
        &l,
        &["replay", "--call", "0192f3a4-5b6c-7d8e-9f01-23456789abcd"],
    )
    .await;
    assert_eq!(status, 1);
    assert!(err.contains("no event of call"), "{err}");
    let (status, _, err) = ledger(
        &l,
        &[
            "delete",
            "--site",
            "SiteZ",
            "--call",
            "0192f3a4-5b6c-7d8e-9f01-23456789abcd",
            "--this-dn",
            "7001",
            "--other-dn",
            "7002",
        ],
    )
    .await;
    assert_eq!(status, 1);
    assert!(err.contains("SiteZ"), "{err}");
}

#[tokio::test]
async fn config_set_validates_and_get_shows_the_options_in_force() {
    let l = Ledger::start().await;
    let (status, out, err) = ledger(
        &l,
        &[
            "config",
            "set",
            "--site",
            "SiteA",
            "TServer/sip-remote-del-from-conf",
            "true",
        ],
    )
    .await;
    assert_eq!(status, 0, "{err}");
    assert_eq!(out[1]["option"], "TServer.sip-remote-del-from-conf");
    assert_eq!(out[1]["value"], "true");
    assert_eq!(out[1]["source"], "LEDGER_CONFIG");
    assert_eq!(out[2]["value"], "original");
    assert_eq!(out[2]["source"], "default");
    let (status, _, err) = ledger(
        &l,
        &[
            "config",
            "set",
            "--site",
            "SiteA",
            "TServer.sip-enable-call-info",
            "yes",
        ],
    )
    .await;
    assert_eq!(status, 1);
    assert!(err.contains("does not take \"yes\""), "{err}");
    let stored = l
        .stores
        .config
        .get("SiteA.TServer.sip-enable-call-info")
        .await
        .unwrap();
    assert!(stored.is_none(), "a refused value is never written");
}

#[tokio::test]
async fn the_benchmarks_run_and_report_their_ratios_as_json() {
    let l = Ledger::start().await;
    let (status, out, err) = ledger(
        &l,
        &[
            "bench",
            "catch-up",
            "--events",
            "3000",
            "--concurrent-calls",
            "20",
            "--rounds",
            "1",
        ],
    )
    .await;
    assert_eq!(status, 0, "{err}");
    let report = &out[0];
    for reader in ["baseline", "bare", "projector"] {
        assert_eq!(report[reader]["events"], 3000, "{report}");
    }
    assert!(
        report["ratio_to_baseline"].as_f64().unwrap() > 0.0,
        "{report}"
    );
    assert!(report["ratio_to_bare"].as_f64().unwrap() > 0.0, "{report}");
    let writes = report["list_writes_per_event"].as_f64().unwrap();
    assert!(writes > 0.0 && writes <= 1.0, "{report}");

    let (status, out, err) = ledger(
        &l,
        &["bench", "delete", "--requests", "30", "--rounds", "1"],
    )
    .await;
    assert_eq!(status, 0, "{err}");
    let report = &out[0];
    for side in ["raw", "delete"] {
        let p50 = report[side]["p50_us"].as_f64().unwrap();
        let p99 = report[side]["p99_us"].as_f64().unwrap();
        assert!(0.0 < p50 && p50 <= p99, "{report}");
    }
    assert!(report["p99_ratio"].as_f64().unwrap() > 0.0, "{report}");
}

#[tokio::test]
async fn calls_lists_the_calls_in_progress_the_quietest_first() {
    use common::{CallBuilder, WAIT, eventually};
    use ledger_schemas::Role;
    use uuid::Uuid;
    let l = Ledger::start().await;
    l.configure("SiteA", false).await;
    let serving = l.serve(&["SiteA"], test_config());
    let (quiet, busy, ended) = (CallBuilder::new(), CallBuilder::new(), CallBuilder::new());
    let p: Vec<Uuid> = (0..6).map(|_| Uuid::now_v7()).collect();
    l.publish(&quiet.join("SiteA", p[0], "7001", Role::Agent))
        .await;
    l.publish(&quiet.join("SiteA", p[1], "7002", Role::Customer))
        .await;
    l.publish(&busy.join("SiteA", p[2], "7003", Role::Agent))
        .await;
    l.publish(&ended.join("SiteA", p[4], "7005", Role::Agent))
        .await;
    l.publish(&ended.leave("SiteA", p[4])).await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let last = l
        .publish(&busy.join("SiteB", p[3], "7004", Role::Agent))
        .await;
    // The index is written at the projector's checkpoints (every 500 ms while events arrive).
    let out = eventually(WAIT, "both calls in progress listed", || async {
        let (status, out, err) = ledger(&l, &["calls", "--site", "SiteA"]).await;
        assert_eq!(status, 0, "{err}");
        (out.len() == 2).then_some(out)
    })
    .await;
    assert_eq!(out[0]["call"], quiet.call.to_string(), "the quietest first");
    assert_eq!(out[0]["parties"], 2);
    assert_eq!(out[1]["call"], busy.call.to_string());
    assert_eq!(out[1]["last_seq"], last);
    assert_eq!(out[1]["parties"], 1, "SiteB's agent is not in SiteA's view");
    assert!(out[0]["idle_s"].as_u64().is_some());
    assert_eq!(
        keys(&out[0]),
        [
            "call",
            "first_seq",
            "last_seq",
            "last_stored_us",
            "idle_s",
            "parties"
        ]
    );
    serving.stop().await;
}
