#![no_main]
//! Fuzz target `reply`: see `ledger_core::fuzz::reply`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ledger_core::fuzz::reply(data);
});
