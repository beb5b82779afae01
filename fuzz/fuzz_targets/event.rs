#![no_main]
//! Fuzz target `event`: see `ledger_core::fuzz::event`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ledger_core::fuzz::event(data);
});
