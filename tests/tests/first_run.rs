//! The first run, as a newcomer makes it: `ledger demo` and `ledger up` on an embedded server
//! (no NATS_URL, no context), another `ledger` process finding `ledger up` through its state
//! file, no process left behind after a clean stop or a SIGKILL, and `ledger sim` playing the
//! same script twice from one seed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use ledger_schemas::Role;
use uuid::Uuid;

/// Processes whose command line mentions `path` (other than this test).
fn processes_using(path: &Path) -> Vec<String> {
    let needle = path.display().to_string();
    let me = std::process::id();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != me)
        .filter_map(|pid| {
            let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let cmd = String::from_utf8_lossy(&raw).replace('\0', " ");
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let zombie = stat
                .rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z'));
            (cmd.contains(&needle) && !zombie).then(|| format!("{pid}: {cmd}"))
        })
        .collect()
}

fn wait_until_none_use(path: &Path, limit: Duration) -> Vec<String> {
    let start = Instant::now();
    loop {
        let left = processes_using(path);
        if left.is_empty() || start.elapsed() > limit {
            return left;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn demo_runs_to_the_end_on_a_private_server_and_leaves_nothing_running() {
    let home = tempfile::tempdir().unwrap();
    let out = ledger_in(home.path()).arg("demo").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for section in [
        "A private nats-server",
        "LCTParty list",
        "refused: ambiguous_party",
        "candidate",
        "refused: not_authorized",
        "accepted: party_deleted",
        "The audit of the call",
        "The replay of the call",
    ] {
        assert!(
            stdout.contains(section),
            "{section:?} missing from:\n{stdout}"
        );
    }
    let left = wait_until_none_use(home.path(), Duration::from_secs(5));
    assert!(left.is_empty(), "left running: {left:?}");
}

/// The state file of a data folder, once `ledger up` has written it.
fn state(data: &Path) -> serde_json::Value {
    json_file(&data.join("call-ledger/ledger-server.json"))
}

/// A JSON file another process writes, once it is there and whole (waits at most `WAIT`).
fn json_file(path: &Path) -> serde_json::Value {
    let start = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && let Ok(v) = serde_json::from_str::<serde_json::Value>(&text)
        {
            return v;
        }
        assert!(start.elapsed() < WAIT, "no JSON file at {}", path.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn up_serves_a_delete_from_another_process_that_finds_it_and_stops_cleanly_on_sigterm() {
    let home = tempfile::tempdir().unwrap();
    let mut up = ledger_in(home.path());
    up.arg("up").stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = up.spawn().unwrap();
    let state = state(&home.path().join("data"));
    let url = state["url"].as_str().unwrap().to_owned();
    assert_eq!(state["pid"].as_u64(), Some(u64::from(child.id())));
    // `nats --context ledger` reaches it.
    // Written just after the state file: waited for like it.
    let ctx = json_file(&home.path().join("config/nats/context/ledger.json"));
    assert_eq!(ctx["url"].as_str(), Some(url.as_str()));

    // A conference at SiteA, published by a producer once the services have provisioned.
    let nats = connect(&url, "test").await;
    eventually(WAIT, "the streams", || async {
        nats.js.get_stream("LEDGER_EVENTS").await.ok()
    })
    .await;
    let publisher = ledger_services::Publisher::new(nats.js.clone());
    let c = CallBuilder::new();
    let (a, b, x) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    for e in [
        c.join("SiteA", a, "7001", Role::Agent),
        c.join("SiteA", b, "7002", Role::Agent),
        c.join("SiteA", x, "+14155550100", Role::Customer),
    ] {
        publisher.publish(&e).await.unwrap();
    }
    // Another `ledger` process, given no server, finds `ledger up` through the state file.
    let call = c.call.to_string();
    let reply = eventually(WAIT, "the delete to be served", || {
        let mut delete = ledger_in(home.path());
        delete.args([
            "delete",
            "--site",
            "SiteA",
            "--call",
            &call,
            "--this-dn",
            "7001",
            "--other-dn",
            "7002",
            "--format",
            "json",
        ]);
        async move {
            let out = delete.output().unwrap();
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
        }
    })
    .await;
    let reply: serde_json::Value = serde_json::from_str(reply.trim()).unwrap();
    assert_eq!(reply["ok"], true, "{reply}");

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "ledger up did not stop"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    let left = wait_until_none_use(home.path(), Duration::from_secs(5));
    assert!(left.is_empty(), "left running: {left:?}");
    assert!(
        !home
            .path()
            .join("data/call-ledger/ledger-server.json")
            .exists()
    );
}

#[test]
fn after_up_is_killed_no_server_is_left_for_long_and_the_next_up_starts_cleanly() {
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join("data");
    let mut first = ledger_in(home.path())
        .arg("up")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let before = state(&data);
    first.kill().unwrap();
    let _ = first.wait();
    // Its supervisor stops the server.
    let left = wait_until_none_use(home.path(), Duration::from_secs(5));
    assert!(left.is_empty(), "left running after SIGKILL: {left:?}");
    let mut second = ledger_in(home.path())
        .arg("up")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let after = loop {
        let s = state(&data);
        if s["pid"] != before["pid"] {
            break s;
        }
        assert!(start.elapsed() < WAIT, "the second up did not start");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(after["pid"].as_u64(), Some(u64::from(second.id())));
    let _ = second.kill();
    let _ = second.wait();
    let left = wait_until_none_use(home.path(), Duration::from_secs(5));
    assert!(left.is_empty(), "left running: {left:?}");
}

#[tokio::test]
async fn sim_with_a_seed_plays_the_same_script_twice() {
    let l = Ledger::start().await;
    let serving = l.serve(&["SiteA", "SiteB", "SiteC"], test_config());
    let home = tempfile::tempdir().unwrap();
    let mut scripts = Vec::new();
    for run in 0..2 {
        let script = home.path().join(format!("script-{run}.jsonl"));
        let out = ledger_in(home.path())
            .args([
                "sim",
                "--server",
                l.url(),
                "--seed",
                "11",
                "--calls",
                "30",
                "--rate",
                "200",
                "--gap-ms",
                "5",
                "--format",
                "json",
            ])
            .arg("--script")
            .arg(&script)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(summary["calls"], 30, "{summary}");
        assert_eq!(summary["seed"], 11);
        scripts.push(std::fs::read_to_string(&script).unwrap());
    }
    assert!(scripts[0].lines().count() > 60, "{}", scripts[0]);
    assert_eq!(scripts[0], scripts[1], "the same seed played two scripts");
    serving.stop().await;
}
