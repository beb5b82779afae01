#![no_main]
//! Fuzz target `request`: see `ledger_core::fuzz::request`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ledger_core::fuzz::request(data);
});
