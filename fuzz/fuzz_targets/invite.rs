//! Fuzz target: invite links and QR payloads (text, as scanned or pasted
//! through the bindings) and the join requests that redeem them, checked by
//! the organizer's device against the committee's log.
//!
//! The first byte chooses: even, the rest is a link or QR text; odd, a
//! `CommitteeJoinRequest` the organizer admits or refuses.
#![no_main]

use libfuzzer_sys::fuzz_target;
use libsignal_protocol::IdentityKeyPair;
use rankfile_core::committee::{CommitteeLog, InviteToken, JoinRequest};
use std::sync::OnceLock;

static FIXTURE: OnceLock<(CommitteeLog, IdentityKeyPair)> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let Some((mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        let Ok(text) = std::str::from_utf8(rest) else {
            return;
        };
        if let Ok(token) = InviteToken::parse(text) {
            // A token that parses prints back as a link that parses to it.
            let again = InviteToken::parse(&token.to_link()).expect("round trip");
            assert_eq!(again.to_link(), token.to_link());
        }
    } else if let Ok(request) = JoinRequest::decode(rest) {
        let (log, founder) =
            FIXTURE.get_or_init(|| (rankfile_fuzz::committee(), rankfile_fuzz::founder()));
        let mut log = log.clone();
        let before = log.state().clone();
        if log.admit(founder, &request).is_err() {
            assert_eq!(&before, log.state(), "a refused join changed the log");
        }
    }
});
