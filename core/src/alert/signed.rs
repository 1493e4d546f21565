//! An alert as its raiser signed it: [`RaisedAlert`] (what is the same on
//! every path: where and by whom it was raised, and what it says) and
//! [`SignedAlert`], the bytes exactly as signed, the raiser's XEdDSA signature
//! over them, and the ID derived from them.
//!
//! Forwarders pass the bytes and the signature on untouched, so every phone
//! checks the raiser's own signature over what it received. The ID is a hash
//! of the bytes: a copy that differs from what the raiser signed has another
//! ID (and no valid signature), so it can never take the genuine alert's place
//! in anyone's store.

use libsignal_protocol::{IdentityKey, IdentityKeyPair};
use prost::Message as _;
use rankfile_proto::v1 as pb;
use sha2::{Digest, Sha256};

use super::types::{AlertDraft, AlertId, AlertKind, AlertScope, ALERT_ID_LEN};
use crate::account_id::AccountId;
use crate::committee::CommitteeId;
use crate::error::{Error, Result};

/// Domain separation for the raiser's signature.
const SIGN_DOMAIN: &[u8] = b"rankfile alert signature v1";
/// Domain separation for the hash that names an alert.
const ID_DOMAIN: &[u8] = b"rankfile alert id v1";
/// Largest signed alert accepted, in bytes: the longest title, text and place
/// with every other field fits in well under this.
pub const MAX_RAISED_LEN: usize = 6 * 1024;
/// Bytes of an XEdDSA signature.
const SIGNATURE_LEN: usize = 64;

/// What the raiser signs.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RaisedAlert {
    /// The committee or council it was raised in.
    pub origin: CommitteeId,
    /// Who raised it: the hash of `raiser_key`.
    pub raiser: AccountId,
    pub raiser_key: IdentityKey,
    /// The raiser's clock when raising it, ms since the epoch.
    pub raised_at_ms: u64,
    pub draft: AlertDraft,
}

/// A raised alert as it travels and is kept: the signed bytes, the signature,
/// the ID they give, and what the bytes say.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SignedAlert {
    /// A `RaisedAlert` message, exactly as signed.
    pub(crate) bytes: Vec<u8>,
    /// The raiser's XEdDSA signature over the domain label and `bytes`.
    pub(crate) signature: Vec<u8>,
    /// The alert's ID: a hash of `bytes`.
    pub(crate) id: AlertId,
    /// What `bytes` say, parsed and checked for shape.
    pub(crate) raised: RaisedAlert,
}

impl AlertId {
    /// The ID of the alert whose signed bytes are `raised`: the first bytes of
    /// SHA-256 over a domain label and them.
    pub fn of(raised: &[u8]) -> Self {
        let mut h = Sha256::new();
        h.update(ID_DOMAIN);
        h.update(raised);
        let mut id = [0u8; ALERT_ID_LEN];
        id.copy_from_slice(&h.finalize()[..ALERT_ID_LEN]);
        AlertId(id)
    }
}

pub(super) fn signing_message(raised: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(SIGN_DOMAIN.len() + raised.len());
    m.extend_from_slice(SIGN_DOMAIN);
    m.extend_from_slice(raised);
    m
}

impl SignedAlert {
    /// Signs a new alert raised in `origin` by the holder of `key` at `now_ms`.
    pub(crate) fn raise(
        key: &IdentityKeyPair,
        origin: CommitteeId,
        draft: AlertDraft,
        now_ms: u64,
    ) -> Result<Self> {
        draft.check()?;
        let d = &draft;
        let bytes = pb::RaisedAlert {
            origin_committee_id: origin.0.to_vec(),
            raiser_identity_key: key.identity_key().serialize().to_vec(),
            raised_at_ms: now_ms,
            kind: d.kind.to_wire(),
            scope: d.scope.to_wire(),
            title: d.title.clone(),
            text: d.text.clone(),
            place: d.place.clone(),
            starts_at_ms: d.starts_at_ms,
            expires_at_ms: d.expires_at_ms,
            answers_wanted: d.answers_wanted,
        }
        .encode_to_vec();
        let signature = key
            .private_key()
            .calculate_signature(&signing_message(&bytes), &mut rand::rng())
            .map_err(libsignal_protocol::SignalProtocolError::from)?
            .to_vec();
        Self::parse(bytes, signature)
    }

    /// Reads a signed alert as it arrived: parses the bytes and checks their
    /// shape (lengths, known kinds, a key that decodes) and derives the ID.
    /// Does not check the signature ([`SignedAlert::verify`]): a phone that
    /// already holds these very bytes need not.
    pub(crate) fn parse(bytes: Vec<u8>, signature: Vec<u8>) -> Result<Self> {
        let bad = Error::InvalidAlert;
        if bytes.len() > MAX_RAISED_LEN {
            return Err(bad("signed alert too large"));
        }
        if signature.len() != SIGNATURE_LEN {
            return Err(bad("bad alert signature length"));
        }
        let r = pb::RaisedAlert::decode(bytes.as_slice())
            .map_err(|_| bad("signed alert does not parse"))?;
        let raiser_key =
            IdentityKey::decode(&r.raiser_identity_key).map_err(|_| bad("bad raiser key"))?;
        let draft = AlertDraft {
            kind: AlertKind::from_wire(r.kind)?,
            scope: AlertScope::from_wire(r.scope)?,
            title: r.title,
            text: r.text,
            place: r.place,
            starts_at_ms: r.starts_at_ms,
            expires_at_ms: r.expires_at_ms,
            answers_wanted: r.answers_wanted,
        };
        draft.check()?;
        let raised = RaisedAlert {
            origin: CommitteeId::from_bytes(&r.origin_committee_id)
                .map_err(|_| bad("bad origin committee"))?,
            raiser: AccountId::from_identity_key(&raiser_key),
            raiser_key,
            raised_at_ms: r.raised_at_ms,
            draft,
        };
        Ok(SignedAlert {
            id: AlertId::of(&bytes),
            bytes,
            signature,
            raised,
        })
    }

    /// Whether the signature is the raiser's over these bytes.
    pub(crate) fn verify(&self) -> bool {
        self.raised
            .raiser_key
            .public_key()
            .verify_signature(&signing_message(&self.bytes), &self.signature)
    }

    /// The alert's ID.
    pub fn id(&self) -> AlertId {
        self.id
    }

    /// What the raiser signed.
    pub fn raised(&self) -> &RaisedAlert {
        &self.raised
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft() -> AlertDraft {
        AlertDraft {
            kind: AlertKind::RapidResponse,
            scope: AlertScope::Network,
            title: "Raid at gate 3".into(),
            text: "Come now".into(),
            place: "Gate 3".into(),
            starts_at_ms: 0,
            expires_at_ms: 5_000,
            answers_wanted: true,
        }
    }

    #[test]
    fn a_raised_alert_verifies_and_its_id_is_its_bytes_hash() {
        let key = IdentityKeyPair::generate(&mut rand::rng());
        let signed = SignedAlert::raise(&key, CommitteeId([3; 16]), draft(), 1_000).expect("sign");
        assert!(signed.verify());
        assert_eq!(signed.id, AlertId::of(&signed.bytes));
        assert_eq!(
            signed.raised.raiser,
            AccountId::from_identity_key(key.identity_key())
        );
        let again =
            SignedAlert::parse(signed.bytes.clone(), signed.signature.clone()).expect("parses");
        assert_eq!(again, signed);
        // Raised alike a moment later: another alert.
        let twin = SignedAlert::raise(&key, CommitteeId([3; 16]), draft(), 1_001).expect("sign");
        assert_ne!(twin.id, signed.id);
    }

    #[test]
    fn a_changed_byte_or_another_key_does_not_verify() {
        let key = IdentityKeyPair::generate(&mut rand::rng());
        let signed = SignedAlert::raise(&key, CommitteeId([3; 16]), draft(), 1_000).expect("sign");
        let mut sig = signed.signature.clone();
        sig[7] ^= 1;
        let forged = SignedAlert::parse(signed.bytes.clone(), sig).expect("parses");
        assert!(!forged.verify());
        assert_eq!(forged.id, signed.id, "the ID is the bytes'");
        // Signed by someone else over a raised alert naming `key`'s holder.
        let other = IdentityKeyPair::generate(&mut rand::rng());
        let signature = other
            .private_key()
            .calculate_signature(&signing_message(&signed.bytes), &mut rand::rng())
            .expect("sign")
            .to_vec();
        let impostor = SignedAlert::parse(signed.bytes.clone(), signature).expect("parses");
        assert!(!impostor.verify());
    }

    #[test]
    fn malformed_signed_alerts_are_typed_errors() {
        let key = IdentityKeyPair::generate(&mut rand::rng());
        let signed = SignedAlert::raise(&key, CommitteeId([3; 16]), draft(), 1_000).expect("sign");
        let cases: Vec<(Vec<u8>, Vec<u8>)> = vec![
            (Vec::new(), signed.signature.clone()),
            (vec![0xff; 40], signed.signature.clone()),
            (signed.bytes.clone(), Vec::new()),
            (signed.bytes.clone(), vec![0; 65]),
            (vec![0; MAX_RAISED_LEN + 1], signed.signature.clone()),
            (
                signed.bytes[..signed.bytes.len() / 2].to_vec(),
                signed.signature.clone(),
            ),
        ];
        for (i, (bytes, signature)) in cases.into_iter().enumerate() {
            let r = SignedAlert::parse(bytes, signature);
            assert!(
                matches!(r, Err(Error::InvalidAlert(_) | Error::InvalidContent(_))),
                "case {i}: {r:?}"
            );
        }
    }
}
