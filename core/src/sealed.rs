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
    CiphertextMessageType, ContentHint, DeviceId, IdentityKey, PreKeySignalMessage,
    ProtocolAddress, PublicKey, SenderCertificate, SignalMessage, Timestamp,
    UnidentifiedSenderMessageContent,
};
use uuid::Uuid;

use crate::account_id::AccountId;
use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::store::signal::View;

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
}

/// Opens a sealed message addressed to us and checks its sender certificate.
pub(crate) fn unseal(view: View<'_, '_, '_>, bytes: &[u8], trust_root: &[u8]) -> Result<Unsealed> {
    let usmc = futures::executor::block_on(sealed_sender_decrypt_to_usmc(bytes, &view))
        .map_err(|_| Error::DecryptionFailed("sealed envelope"))?;
    let root = PublicKey::deserialize(trust_root)
        .map_err(|_| Error::Storage("stored trust root is malformed".into()))?;
    let cert = usmc.sender()?;
    let now = Timestamp::from_epoch_millis(u64::try_from(now_ms()).unwrap_or(0));
    if !cert.validate(&root, now)? {
        return Err(Error::DecryptionFailed("sender certificate not valid"));
    }
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
        _ => return Err(Error::DecryptionFailed("unexpected sealed content")),
    };
    Ok(Unsealed {
        sender,
        device,
        message,
    })
}
