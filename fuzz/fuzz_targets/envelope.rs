//! Fuzz target: an identified envelope (`Envelope`), parsed down to its sender
//! and its libsignal message before any decryption. (Sealed envelopes can only
//! be opened with the recipient's key: the `receive` target feeds them.)
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = rankfile_core::fuzzing::identified_envelope(data);
});
