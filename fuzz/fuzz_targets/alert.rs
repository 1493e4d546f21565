//! Fuzz target: one delivery of an alert (`Alert`): the signed alert parsed,
//! its shape checked and the raiser's signature verified.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = rankfile_core::fuzzing::alert(data);
});
