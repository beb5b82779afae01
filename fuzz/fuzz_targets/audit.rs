#![no_main]
//! Fuzz target `audit`: see `ledger_core::fuzz::audit`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ledger_core::fuzz::audit(data);
});
