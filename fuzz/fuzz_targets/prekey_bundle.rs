//! Fuzz target: a prekey bundle (`PreKeyBundle`) as fetched from the relay's
//! directory or scanned from a contact, imported into libsignal's form.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(bundle) = rankfile_core::import_bundle(data) {
        let _ = bundle.device_id();
    }
});
