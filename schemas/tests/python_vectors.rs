//! The golden vectors decoded by an independent MessagePack implementation (msgpack-python),
//! installed by `./dev setup` into `.tools/py`. Missing tools fail this test with the command that
//! installs them; it never skips.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a panic is the failure report

use std::path::PathBuf;
use std::process::Command;

#[test]
fn python_msgpack_decodes_every_vector_and_reencodes_canonical_ones() {
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let tools = crate_dir.join("../.tools/py");
    let script = crate_dir.join("vectors/check_vectors.py");
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(&python)
        .arg(&script)
        .env("PYTHONPATH", &tools)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {python}: {e}; install Python 3 and run `./dev setup`")
        });
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "check_vectors.py failed:\n{stdout}{stderr}"
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
}
