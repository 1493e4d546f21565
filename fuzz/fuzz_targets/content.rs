//! Fuzz target: a decrypted content message (`Content`) of any kind, decoded
//! and checked as the receive path does before applying it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = rankfile_core::fuzzing::content(data);
});
