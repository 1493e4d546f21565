//! Sealed sender: wrapping a 1:1 ciphertext so the relay cannot see who sent
//! it, and unwrapping one on arrival.
//!
//! The sender's identity travels inside, in a libsignal `SenderCertificate`
//! issued by the relay and chained to its trust root. On arrival the
//! certificate is checked against the trust root, and the sender's account ID
//! is computed from the certificate's identity key — never taken from the
//! certificate's text — and must agree with the UUID the certificate names.

use libsignal_protocol::{
    sealed_sender_decrypt_to_usmc, sealed_sender_encrypt_from_usmc, CiphertextMessage,
    CiphertextMessageType, ContentHint, DeviceId, IdentityKey, IdentityKeyStore,
    PreKeySignalMessage, ProtocolAddress, PublicKey, SenderCertificate, SignalMessage, Timestamp,
    UnidentifiedSenderMessageContent,
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::account_id::AccountId;
use crate::error::{Error, Result};
use crate::store::signal::{CertificateDigest, SignalCache, View};

/// The UUID under which an account appears in sender certificates and in
/// multi-recipient sealed messages: the first 16 bytes of its account ID.
pub fn service_uuid(account: &AccountId) -> Uuid {
    let mut b = [0u8; 16];
    b.copy_from_slice(&account.as_bytes()[..16]);
    Uuid::from_bytes(b)
}

/// Wraps `ciphertext` (already encrypted to `destination`) in sealed sender.
pub(crate) fn seal(
    view: View<'_, '_, '_>,
    destination: &ProtocolAddress,
    certificate: &[u8],
    ciphertext: &CiphertextMessage,
) -> Result<Vec<u8>> {
    let cert = SenderCertificate::deserialize(certificate)?;
    let usmc = UnidentifiedSenderMessageContent::new(
        ciphertext.message_type(),
        cert,
        ciphertext.serialize().to_vec(),
        ContentHint::Resendable,
        None,
    )?;
    Ok(futures::executor::block_on(
        sealed_sender_encrypt_from_usmc(destination, &usmc, &view, &mut rand::rng()),
    )?)
}

/// A sealed message opened: who sent it, from which device, and the inner
/// ciphertext still to decrypt.
pub(crate) struct Unsealed {
    pub sender: AccountId,
    pub device: DeviceId,
    pub message: Inner,
}

pub(crate) enum Inner {
    PreKey(PreKeySignalMessage),
    Signal(SignalMessage),
    /// A channel message under the sender's sender key, and the channel
    /// (group ID) the sealed envelope names.
    SenderKey {
        message: Vec<u8>,
        group_id: Option<Vec<u8>>,
    },
    /// A libsignal `PlaintextContent`: a decryption-error receipt.
    Plaintext(Vec<u8>),
}

/// Checks a sender certificate against the trust root: its signatures once per
/// certificate (remembered by digest), its expiry on every message.
fn check_certificate(
    cache: &SignalCache,
    cert: &SenderCertificate,
    (root, root_bytes): (&PublicKey, &[u8]),
    now_ms: u64,
) -> Result<()> {
    let digest: CertificateDigest = Sha256::new()
        .chain_update(root_bytes)
        .chain_update(cert.serialized()?)
        .finalize()
        .into();
    match cache.checked_certificate(&digest) {
        Some(expires) if now_ms <= expires => return Ok(()),
        Some(_) => return Err(Error::DecryptionFailed("sender certificate not valid")),
        None => {}
    }
    if !cert.validate(root, Timestamp::from_epoch_millis(now_ms))? {
        return Err(Error::DecryptionFailed("sender certificate not valid"));
    }
    cache.remember_certificate(digest, cert.expiration()?.epoch_millis());
    Ok(())
}

/// Opens a sealed message addressed to us and checks its sender certificate
/// was valid at `at_ms` (see [`check_opened`]).
pub(crate) fn unseal(
    view: View<'_, '_, '_>,
    bytes: &[u8],
    trust_root: &[u8],
    at_ms: u64,
) -> Result<Unsealed> {
    let usmc = open(&view, bytes)?;
    check_opened(view, &usmc, trust_root, at_ms)
}

/// Takes the outer layer off a sealed message: the sender certificate and the
/// inner ciphertext, neither checked yet.
pub(crate) fn open(
    identity: &dyn IdentityKeyStore,
    bytes: &[u8],
) -> Result<UnidentifiedSenderMessageContent> {
    futures::executor::block_on(sealed_sender_decrypt_to_usmc(bytes, identity))
        .map_err(|_| Error::DecryptionFailed("sealed envelope"))
}

/// Checks an opened sealed message's sender certificate against the trust
/// root, valid at `at_ms` — the time the relay stored the message, less a
/// bounded skew, not the time this phone reads it, so that a phone off for
/// days loses nothing sent meanwhile — and names its sender.
pub(crate) fn check_opened(
    view: View<'_, '_, '_>,
    usmc: &UnidentifiedSenderMessageContent,
    trust_root: &[u8],
    at_ms: u64,
) -> Result<Unsealed> {
    let root = PublicKey::deserialize(trust_root)
        .map_err(|_| Error::Storage("stored trust root is malformed".into()))?;
    let cert = usmc.sender()?;
    check_certificate(view.cache(), cert, (&root, trust_root), at_ms)?;
    let key = IdentityKey::new(cert.key()?);
    let sender = AccountId::from_identity_key(&key);
    let named = Uuid::parse_str(cert.sender_uuid()?)
        .map_err(|_| Error::DecryptionFailed("sender certificate names no account"))?;
    if named != service_uuid(&sender) {
        return Err(Error::IdentityMismatch(sender));
    }
    let device = cert.sender_device_id()?;
    let message = match usmc.msg_type()? {
        CiphertextMessageType::PreKey => Inner::PreKey(
            PreKeySignalMessage::try_from(usmc.contents()?)
                .map_err(|_| Error::DecryptionFailed("malformed prekey message"))?,
        ),
        CiphertextMessageType::Whisper => Inner::Signal(
            SignalMessage::try_from(usmc.contents()?)
                .map_err(|_| Error::DecryptionFailed("malformed message"))?,
        ),
        CiphertextMessageType::SenderKey => Inner::SenderKey {
            message: usmc.contents()?.to_vec(),
            group_id: usmc.group_id()?.map(<[u8]>::to_vec),
        },
        CiphertextMessageType::Plaintext => Inner::Plaintext(usmc.contents()?.to_vec()),
    };
    Ok(Unsealed {
        sender,
        device,
        message,
    })
}

#[cfg(test)]
mod tests {
    use libsignal_protocol::{IdentityKeyPair, KeyPair, ServerCertificate};

    use super::*;

    const NOW: u64 = 1_800_000_000_000;

    struct Issuer {
        root: KeyPair,
        server: KeyPair,
        server_cert: ServerCertificate,
    }

    fn new_issuer() -> Issuer {
        let mut rng = rand::rng();
        let root = KeyPair::generate(&mut rng);
        let server = KeyPair::generate(&mut rng);
        let server_cert = ServerCertificate::new(1, server.public_key, &root.private_key, &mut rng)
            .expect("server certificate");
        Issuer {
            root,
            server,
            server_cert,
        }
    }

    fn certificate(issuer: &Issuer, expires: u64) -> SenderCertificate {
        let mut rng = rand::rng();
        let sender = IdentityKeyPair::generate(&mut rng);
        SenderCertificate::new(
            Uuid::from_bytes(rand::random()).to_string(),
            None,
            *sender.public_key(),
            DeviceId::new(1).expect("device"),
            Timestamp::from_epoch_millis(expires),
            issuer.server_cert.clone(),
            &issuer.server.private_key,
            &mut rng,
        )
        .expect("sender certificate")
    }

    fn cache() -> SignalCache {
        SignalCache::new(IdentityKeyPair::generate(&mut rand::rng()), 1)
    }

    #[test]
    fn a_checked_certificate_is_remembered_until_it_expires() {
        let issuer = new_issuer();
        let root = issuer.root.public_key;
        let root_bytes = root.serialize();
        let cert = certificate(&issuer, NOW + 60_000);
        let cache = cache();
        check_certificate(&cache, &cert, (&root, &root_bytes), NOW).expect("valid");
        assert_eq!(cache.certificates_remembered(), 1);
        check_certificate(&cache, &cert, (&root, &root_bytes), NOW + 60_000).expect("still valid");
        // Remembered, but expired all the same.
        assert!(check_certificate(&cache, &cert, (&root, &root_bytes), NOW + 60_001).is_err());
    }

    #[test]
    fn a_certificate_checked_under_one_root_is_not_taken_under_another() {
        let issuer = new_issuer();
        let root_bytes = issuer.root.public_key.serialize();
        let cert = certificate(&issuer, NOW + 60_000);
        let cache = cache();
        check_certificate(&cache, &cert, (&issuer.root.public_key, &root_bytes), NOW)
            .expect("valid");
        let other = KeyPair::generate(&mut rand::rng()).public_key;
        let other_bytes = other.serialize();
        assert!(check_certificate(&cache, &cert, (&other, &other_bytes), NOW).is_err());
    }

    #[test]
    fn a_forged_or_expired_certificate_is_refused_and_not_remembered() {
        let issuer = new_issuer();
        let root = issuer.root.public_key;
        let root_bytes = root.serialize();
        let cache = cache();
        // Signed by a server key the root never certified.
        let rogue = Issuer {
            root: KeyPair::generate(&mut rand::rng()),
            ..new_issuer()
        };
        let forged = certificate(&rogue, NOW + 60_000);
        assert!(check_certificate(&cache, &forged, (&root, &root_bytes), NOW).is_err());
        let expired = certificate(&issuer, NOW - 1);
        assert!(check_certificate(&cache, &expired, (&root, &root_bytes), NOW).is_err());
        assert_eq!(cache.certificates_remembered(), 0);
    }
}
