//! The NATS connection conventions of the `nats` CLI, against servers that require credentials:
//! a user and password, a token, an nkey, a context file; flags, then the environment, then the
//! context. A wrong secret fails with one line that does not show it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::Output;

use common::ledger_in;
use ledger_test_harness::NatsServer;

fn provision(home: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = ledger_in(home);
    cmd.arg("provision").args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Fails with exactly one line on standard error, which never shows `secret`.
fn assert_refused_quietly(out: &Output, secret: &str, what: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{what}: accepted");
    assert_eq!(err.trim_end().lines().count(), 1, "{what}: {err}");
    assert!(err.starts_with("ledger: "), "{what}: {err}");
    assert!(!err.contains(secret), "{what} shows the secret: {err}");
}

#[test]
fn a_user_and_password_connect_from_flags_or_the_environment() {
    let server = NatsServer::start_with_config(
        "authorization { user: ledger, password: \"pw-7h3-s3cr3t\" }\n",
    )
    .unwrap();
    let home = tempfile::tempdir().unwrap();
    let url = server.url();
    let out = provision(
        home.path(),
        &[
            "--server",
            url,
            "--user",
            "ledger",
            "--password",
            "pw-7h3-s3cr3t",
        ],
        &[],
    );
    assert_ok(&out, "flags");
    let out = provision(
        home.path(),
        &[],
        &[
            ("NATS_URL", url),
            ("NATS_USER", "ledger"),
            ("NATS_PASSWORD", "pw-7h3-s3cr3t"),
        ],
    );
    assert_ok(&out, "environment");
    // A flag wins over the environment.
    let out = provision(
        home.path(),
        &["--password", "pw-7h3-s3cr3t"],
        &[
            ("NATS_URL", url),
            ("NATS_USER", "ledger"),
            ("NATS_PASSWORD", "stale"),
        ],
    );
    assert_ok(&out, "flag over environment");
    let out = provision(
        home.path(),
        &[
            "--server",
            url,
            "--user",
            "ledger",
            "--password",
            "wrong-s3cr3t-value",
        ],
        &[],
    );
    assert_refused_quietly(&out, "wrong-s3cr3t-value", "a wrong password");
}

#[test]
fn a_token_connects_and_a_wrong_one_is_not_shown() {
    let server =
        NatsServer::start_with_config("authorization { token: \"t0k3n-s3cr3t\" }\n").unwrap();
    let home = tempfile::tempdir().unwrap();
    let out = provision(
        home.path(),
        &["--server", server.url(), "--token", "t0k3n-s3cr3t"],
        &[],
    );
    assert_ok(&out, "--token");
    let out = provision(
        home.path(),
        &[],
        &[("NATS_URL", server.url()), ("NATS_TOKEN", "t0k3n-s3cr3t")],
    );
    assert_ok(&out, "NATS_TOKEN");
    let out = provision(
        home.path(),
        &["--server", server.url(), "--token", "n0t-th3-t0k3n"],
        &[],
    );
    assert_refused_quietly(&out, "n0t-th3-t0k3n", "a wrong token");
}

#[test]
fn an_nkey_seed_file_connects_and_another_key_is_refused() {
    let user = nkeys::KeyPair::new_user();
    let server = NatsServer::start_with_config(&format!(
        "authorization {{ users: [ {{ nkey: {} }} ] }}\n",
        user.public_key()
    ))
    .unwrap();
    let home = tempfile::tempdir().unwrap();
    let seed = home.path().join("user.nk");
    std::fs::write(&seed, user.seed().unwrap()).unwrap();
    let out = provision(
        home.path(),
        &["--server", server.url(), "--nkey", seed.to_str().unwrap()],
        &[],
    );
    assert_ok(&out, "--nkey");
    let out = provision(
        home.path(),
        &[],
        &[
            ("NATS_URL", server.url()),
            ("NATS_NKEY", seed.to_str().unwrap()),
        ],
    );
    assert_ok(&out, "NATS_NKEY");
    let other = nkeys::KeyPair::new_user();
    let other_seed = other.seed().unwrap();
    let wrong = home.path().join("other.nk");
    std::fs::write(&wrong, &other_seed).unwrap();
    let out = provision(
        home.path(),
        &["--server", server.url(), "--nkey", wrong.to_str().unwrap()],
        &[],
    );
    assert_refused_quietly(&out, &other_seed, "another nkey");
}

#[test]
fn a_context_file_connects_named_selected_or_by_environment_and_flags_override_it() {
    let server =
        NatsServer::start_with_config("authorization { user: ledger, password: \"ctx-s3cr3t\" }\n")
            .unwrap();
    let home = tempfile::tempdir().unwrap();
    let contexts = home.path().join("config/nats/context");
    std::fs::create_dir_all(&contexts).unwrap();
    let context = |password: &str| {
        serde_json::json!({
            "description": "test", "url": server.url(), "user": "ledger", "password": password,
            "some_key_the_ledger_does_not_use": true,
        })
        .to_string()
    };
    std::fs::write(contexts.join("site-a.json"), context("ctx-s3cr3t")).unwrap();
    std::fs::write(contexts.join("stale.json"), context("old-pass")).unwrap();
    assert_ok(
        &provision(home.path(), &["--context", "site-a"], &[]),
        "--context",
    );
    assert_ok(
        &provision(home.path(), &[], &[("NATS_CONTEXT", "site-a")]),
        "NATS_CONTEXT",
    );
    std::fs::write(home.path().join("config/nats/context.txt"), "site-a\n").unwrap();
    assert_ok(&provision(home.path(), &[], &[]), "the selected context");
    // Flags and the environment override the context's values.
    assert_ok(
        &provision(
            home.path(),
            &["--context", "stale", "--password", "ctx-s3cr3t"],
            &[],
        ),
        "a flag over the context",
    );
    assert_ok(
        &provision(
            home.path(),
            &["--context", "stale"],
            &[("NATS_PASSWORD", "ctx-s3cr3t")],
        ),
        "the environment over the context",
    );
    let out = provision(home.path(), &["--context", "stale"], &[]);
    assert_refused_quietly(&out, "old-pass", "a context with a wrong password");
    let out = provision(home.path(), &["--context", "missing"], &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("context \"missing\" not found"));
}
