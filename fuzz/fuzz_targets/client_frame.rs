//! Fuzz target: a `ClientFrame` as the relay reads it off the WebSocket,
//! decoded and its request checked (login, prekey upload, multi-recipient
//! payload, field lengths) as the relay's handlers check them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use libsignal_protocol::IdentityKey;
use std::sync::OnceLock;

static IDENTITY: OnceLock<IdentityKey> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    // The logged-in device: the fixture phone, whose prekey uploads are seeds.
    let identity = IDENTITY.get_or_init(|| {
        let phone = rankfile_fuzz::receiver("client-frame");
        IdentityKey::decode(&phone.identity_key()).expect("identity key")
    });
    let _ = rankfile_relay::fuzzing::client_frame(data, &rankfile_fuzz::CHALLENGE, identity);
});
