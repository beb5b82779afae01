//! The `ledger` binary as a user runs it, without a server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a panic is the failure report

use std::process::Command;

fn ledger() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ledger"))
}

#[test]
fn help_lists_the_subcommands() {
    let out = ledger().arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for cmd in ["serve", "provision"] {
        assert!(text.contains(cmd), "{cmd} missing from:\n{text}");
    }
}

#[test]
fn an_unreachable_server_is_a_clear_error_and_a_failure_status() {
    let out = ledger()
        .args(["provision", "--nats", "nats://127.0.0.1:1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot connect to NATS at nats://127.0.0.1:1"),
        "{err}"
    );
}

#[test]
fn a_bad_site_name_is_refused_before_connecting() {
    let out = ledger()
        .args([
            "serve",
            "--site",
            "bad.site",
            "--nats",
            "nats://127.0.0.1:1",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("site \"bad.site\" contains '.'"), "{err}");
}
