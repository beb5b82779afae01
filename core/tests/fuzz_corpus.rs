//! The fuzz corpus kept in `fuzz/corpus/<target>/` (inputs that reach new code) and the crashes
//! found and fixed (`fuzz/regressions/<target>/`), replayed through the same entry points as
//! ordinary tests: no fuzzing here, only the inputs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use ledger_core::fuzz::{TARGETS, run};

fn replay(folder: &str) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz")
        .join(folder);
    let mut replayed = 0;
    for target in TARGETS {
        let Ok(entries) = std::fs::read_dir(root.join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            assert!(run(target, &data), "unknown target {target}");
            replayed += 1;
        }
    }
    replayed
}

#[test]
fn the_kept_corpus_replays_through_every_target_without_a_panic() {
    let n = replay("corpus");
    assert!(n >= 30, "only {n} corpus inputs: is fuzz/corpus there?");
}

#[test]
fn every_crash_found_stays_fixed() {
    replay("regressions");
}
