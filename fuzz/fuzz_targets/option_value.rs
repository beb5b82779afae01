#![no_main]
//! Fuzz target `option_value`: see `ledger_core::fuzz::option_value`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ledger_core::fuzz::option_value(data);
});
