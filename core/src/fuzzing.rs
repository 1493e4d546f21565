//! Entry points for the fuzz targets in `fuzz/`: the crate's parsers of
//! untrusted input that are not public on their own, each behind the smallest
//! function that runs it as the receive path does, and the few encoders the
//! fuzz seed generator needs to write real encodings. Not an API: hidden from
//! the docs, and nothing outside `fuzz/` calls it.

use libsignal_protocol::IdentityKeyPair;
use prost::Message as _;
use rankfile_proto::v1 as pb;

use crate::account_id::AccountId;
use crate::alert::{AlertDraft, AlertKind, AlertMessage, AlertScope, SignedAlert};
use crate::attachment::AttachmentPointer;
use crate::committee::CommitteeId;
use crate::error::{Error, Result};
use crate::message;
use crate::receive;

/// A decrypted content message of any kind (`Content`), decoded and checked
/// as the receive path does before it applies anything.
pub fn content(bytes: &[u8]) -> Result<()> {
    message::decode_content(bytes).map(|_| ())
}

/// An attachment pointer (`AttachmentPointer`) as a channel post carries it.
pub fn attachment_pointer(bytes: &[u8]) -> Result<AttachmentPointer> {
    let p = pb::AttachmentPointer::decode(bytes)
        .map_err(|_| Error::InvalidContent("not an attachment pointer"))?;
    AttachmentPointer::from_wire(&p)
}

/// One delivery of an alert (`Alert`): parsed, its shape checked, and its
/// raiser's signature verified. Says whether the signature holds.
pub fn alert(bytes: &[u8]) -> Result<bool> {
    let a = pb::Alert::decode(bytes).map_err(|_| Error::InvalidContent("not an alert"))?;
    let m = AlertMessage::from_wire(a)?;
    Ok(m.alert.verify())
}

/// An identified envelope (`Envelope`), parsed down to its sender and its
/// libsignal message, before any decryption. Returns the sender.
pub fn identified_envelope(bytes: &[u8]) -> Result<AccountId> {
    receive::parse_envelope(bytes).map(|(_, parsed)| parsed.sender)
}

/// A real `Alert` encoding for the seed corpus: an alert raised in `origin`
/// by `raiser` at `now_ms`, signed, as one hop delivers it.
pub fn alert_seed(raiser: &IdentityKeyPair, origin: [u8; 16], now_ms: u64) -> Result<Vec<u8>> {
    let draft = AlertDraft {
        kind: AlertKind::RapidResponse,
        scope: AlertScope::Network,
        title: "Raid at gate 3".into(),
        text: "Security are at gate 3. Come if you can.".into(),
        place: "Gate 3".into(),
        starts_at_ms: now_ms,
        expires_at_ms: now_ms + 3_600_000,
        answers_wanted: true,
    };
    let alert = SignedAlert::raise(raiser, CommitteeId(origin), draft, now_ms)?;
    let m = AlertMessage {
        alert,
        via: CommitteeId(origin),
        held: false,
        renotify: false,
    };
    Ok(m.to_wire().encode_to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_seed_parses_and_verifies() {
        let key = IdentityKeyPair::generate(&mut rand::rng());
        let bytes = alert_seed(&key, [3; 16], 1_800_000_000_000).expect("seed");
        assert_eq!(alert(&bytes).ok(), Some(true));
        // The same alert with a flipped byte in its signature still parses but
        // no longer verifies; garbage is a typed error.
        let mut a = pb::Alert::decode(bytes.as_slice()).expect("decode");
        a.signature[0] ^= 1;
        assert_eq!(alert(&a.encode_to_vec()).ok(), Some(false));
        assert!(alert(&[0xff, 0xff]).is_err());
    }

    #[test]
    fn garbage_is_refused_with_typed_errors() {
        assert!(matches!(content(&[0xff]), Err(Error::InvalidContent(_))));
        assert!(matches!(
            attachment_pointer(&[0x0a, 0x01, 0x00]),
            Err(Error::InvalidContent(_))
        ));
        assert!(matches!(
            identified_envelope(&[1, 2, 3]),
            Err(Error::InvalidEnvelope(_))
        ));
    }
}
