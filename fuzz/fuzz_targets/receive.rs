//! Fuzz target: the receive path. Bytes go through unsealing, decryption and
//! the atomic receive into a real SQLCipher store (the fixture phone, copied
//! once per process), which must end unchanged or with exactly one new message.
//!
//! The first byte chooses how the bytes arrive: 0 an identified envelope, 1 a
//! sealed message taken in by hand, otherwise a sealed message as the relay
//! delivers it, with the time the relay stored it in the next 8 bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rankfile_core::{Account, Inbound, Received};
use std::cell::RefCell;

thread_local! {
    static PHONE: RefCell<Option<Account>> = const { RefCell::new(None) };
}

fuzz_target!(|data: &[u8]| {
    let Some((mode, rest)) = data.split_first() else {
        return;
    };
    let inbound = match mode {
        0 => Inbound::Envelope(rest),
        1 => Inbound::Sealed(rest),
        _ => {
            let Some((at, sealed)) = rest.split_first_chunk::<8>() else {
                return;
            };
            Inbound::Delivered {
                sealed,
                stored_at_ms: u64::from_be_bytes(*at),
            }
        }
    };
    PHONE.with(|phone| {
        let mut phone = phone.borrow_mut();
        let phone = phone.get_or_insert_with(|| rankfile_fuzz::receiver("receive"));
        let before = phone.dump_database().expect("dump");
        let count = phone.message_count().expect("count");
        let results = phone
            .receive_all(&[inbound])
            .expect("a storage failure on a healthy disk");
        phone.drain_events();
        let after_count = phone.message_count().expect("count");
        match results.first() {
            Some(Err(_)) | Some(Ok(Received::Duplicate)) | None => {
                let after = phone.dump_database().expect("dump");
                assert!(
                    before == after,
                    "a refused or duplicate envelope changed the store"
                );
            }
            Some(Ok(Received::Stored { .. }))
            | Some(Ok(Received::Held { .. }))
            | Some(Ok(Received::Channel { .. })) => {
                assert_eq!(after_count, count + 1, "not exactly one new message");
            }
            Some(Ok(_)) => {
                assert_eq!(after_count, count, "a control envelope stored a message");
            }
        }
    });
});
