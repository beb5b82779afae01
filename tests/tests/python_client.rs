//! A client in another language (Python, nats-py + msgpack) publishes events per the contract
//! and reads the lists back: the README's example, run against a real server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a panic is the failure report

mod common;

use std::path::PathBuf;

use common::{Ledger, test_config};

#[tokio::test]
async fn a_python_client_publishes_events_and_reads_the_lists_back() {
    let l = Ledger::start().await;
    let serving = l.serve(&["SiteA"], test_config());
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = tokio::process::Command::new(std::env::var("PYTHON").unwrap_or("python3".into()))
        .arg(root.join("examples/python_client.py"))
        .env("PYTHONPATH", root.join(".tools/py"))
        .env("NATS_URL", l.url())
        .output()
        .await
        .expect("python3 runs (./dev setup installs nats-py and msgpack into .tools/py)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{stdout}\n{stderr}\n(./dev setup installs nats-py and msgpack)"
    );
    assert!(
        stdout.contains("EventUserEvent on ledger.lct.SiteA."),
        "{stdout}"
    );
    assert!(stdout.contains("7001           SiteB  agent"), "{stdout}");
    assert!(stdout.contains(": 3 parties"), "{stdout}");
    serving.stop().await;
}
