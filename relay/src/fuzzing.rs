//! Entry point for the relay's fuzz target in `fuzz/`: a client frame decoded
//! as the connection decodes it, then every check of its request that needs
//! no store (login signature, prekey upload, multi-recipient payload, field
//! lengths) run as the handlers run them. Not an API: hidden from the docs.

use libsignal_protocol::IdentityKey;
use rankfile_proto::v1::client_frame::Body as In;

use crate::auth::{self, Challenge};
use crate::config::Config;
use crate::directory;
use crate::frame::{self, Refusal};
use crate::mailbox;
use crate::sealed::{received_for, recipients_of};

/// What one client frame came to: the request ID and, for a refused frame or
/// request, the refusal's code (as on the wire).
pub type Outcome = (u64, Result<(), i32>);

/// Decodes `bytes` as a `ClientFrame` and checks its request: a login against
/// `challenge`, a prekey upload against `identity` (the logged-in device's
/// key), the rest as the handlers do before they touch the store.
pub fn client_frame(bytes: &[u8], challenge: &Challenge, identity: &IdentityKey) -> Outcome {
    let (request_id, body) = match frame::decode(bytes) {
        Ok(ok) => ok,
        Err((id, refusal)) => return (id, Err(refusal.code as i32)),
    };
    (
        request_id,
        check(body, challenge, identity).map_err(|r| r.code as i32),
    )
}

fn check(body: In, challenge: &Challenge, identity: &IdentityKey) -> Result<(), Refusal> {
    let config = Config::default();
    match body {
        In::Auth(a) => {
            auth::verify(
                challenge,
                &a.account_id,
                a.device_id,
                &a.identity_key,
                &a.signature,
            )
            .map_err(|e| Refusal::unauthorized(e.to_string()))?;
        }
        In::UploadPrekeys(req) => {
            directory::check_upload(&req, identity)?;
        }
        In::Send(req) => {
            mailbox::recipient(&req.recipient_account_id, req.recipient_device_id)?;
            frame::priority_from_wire(req.priority)?;
        }
        In::SendSealed(req) => {
            mailbox::recipient(&req.recipient_account_id, req.recipient_device_id)?;
            frame::priority_from_wire(req.priority)?;
        }
        In::SendMultiSealed(req) => {
            recipients_of(&req.payload, config.max_multi_recipients)
                .map_err(|_| Refusal::malformed("multi-recipient payload refused"))?;
            received_for(&req.payload, config.max_envelope_bytes, |_| true)
                .map_err(|_| Refusal::malformed("multi-recipient payload refused"))?;
        }
        In::SetAccessKey(req) => {
            frame::fixed::<16>(&req.access_key, "access key must be 16 bytes")?;
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use libsignal_protocol::IdentityKeyPair;
    use prost::Message as _;
    use rankfile_proto::v1 as pb;

    use super::*;

    #[test]
    fn frames_are_decoded_and_checked() {
        let key = IdentityKeyPair::generate(&mut rand::rng());
        let challenge = [7u8; 32];
        assert!(client_frame(&[0xff, 0xff], &challenge, key.identity_key())
            .1
            .is_err());
        let frame = |body| {
            pb::ClientFrame {
                version: crate::PROTOCOL_VERSION,
                request_id: 9,
                body: Some(body),
            }
            .encode_to_vec()
        };
        let ping = frame(In::Ping(pb::Ping {}));
        assert_eq!(
            client_frame(&ping, &challenge, key.identity_key()),
            (9, Ok(()))
        );
        let account = auth::account_id_for(key.identity_key());
        let signature = key
            .private_key()
            .calculate_signature(
                &auth::auth_message(&challenge, &account, 1),
                &mut rand::rng(),
            )
            .expect("sign");
        let mut login = pb::Auth {
            account_id: account.to_vec(),
            device_id: 1,
            identity_key: key.identity_key().serialize().to_vec(),
            signature: signature.to_vec(),
        };
        let good = frame(In::Auth(login.clone()));
        assert_eq!(
            client_frame(&good, &challenge, key.identity_key()).1,
            Ok(())
        );
        login.device_id = 2;
        let bad = frame(In::Auth(login));
        assert!(client_frame(&bad, &challenge, key.identity_key())
            .1
            .is_err());
        let multi = frame(In::SendMultiSealed(pb::SendMultiSealed {
            payload: vec![0x23, 5, 1, 2, 3],
            ..Default::default()
        }));
        assert!(client_frame(&multi, &challenge, key.identity_key())
            .1
            .is_err());
    }
}
