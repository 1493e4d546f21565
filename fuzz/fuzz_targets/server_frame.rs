//! Fuzz target: a `ServerFrame` as the client reads it off the WebSocket, and
//! what the client hands on to the core from it: the login challenge to sign
//! and the trust root to record (`Hello`), a sender certificate to check and
//! keep, a contact's prekey bundle to import, and a delivery to receive.
//! (The transport's own dispatch is a match on the body; this target plays it
//! against the fixture phone, copied once per process.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message as _;
use rankfile_core::{Account, Inbound};
use rankfile_proto::v1::{server_frame::Body, ServerFrame};
use std::cell::RefCell;

thread_local! {
    static PHONE: RefCell<Option<Account>> = const { RefCell::new(None) };
}

fuzz_target!(|data: &[u8]| {
    let Ok(frame) = ServerFrame::decode(data) else {
        return;
    };
    PHONE.with(|phone| {
        let mut phone = phone.borrow_mut();
        let phone = phone.get_or_insert_with(|| rankfile_fuzz::receiver("server-frame"));
        match frame.body {
            Some(Body::Hello(h)) => {
                let _ = phone.sign_relay_challenge(&h.challenge);
                let _ = phone.set_relay_trust_root(&h.trust_root);
            }
            Some(Body::SenderCertificate(c)) => {
                let _ = phone.set_sender_certificate(&c.certificate);
            }
            Some(Body::Bundle(b)) => {
                let _ = rankfile_core::import_bundle(&b.encode_to_vec());
            }
            Some(Body::Deliver(d)) => {
                let inbound = if d.sealed {
                    Inbound::Delivered {
                        sealed: &d.envelope,
                        stored_at_ms: d.stored_at_ms,
                    }
                } else {
                    Inbound::Envelope(&d.envelope)
                };
                phone
                    .receive_all(&[inbound])
                    .expect("a storage failure on a healthy disk");
                phone.drain_events();
            }
            _ => {}
        }
    });
});
