#![no_main]
//! Fuzz target `decide`: see `ledger_core::fuzz::decide_over`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ledger_core::fuzz::decide_over(data);
});
