#![no_main]
//! Fuzz target `list`: see `ledger_core::fuzz::list`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ledger_core::fuzz::list(data);
});
