//! Sealed sender on the relay: the trust root and server certificate that sign
//! sender certificates, access-key checks, and the fan-out of multi-recipient
//! (Sealed Sender v2) messages.
//!
//! The relay never learns who sent a sealed message: it checks only that the
//! sender knew the recipients' access keys, and stores the per-recipient bytes
//! that libsignal's `sealed_sender_decrypt` accepts.

use std::path::Path;

use libsignal_protocol::{
    Aci, DeviceId, IdentityKey, KeyPair, PrivateKey, PublicKey, SealedSenderV2SentMessage,
    SenderCertificate, ServerCertificate, ServiceId, Timestamp,
};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::limits::ACCESS_KEY_LEN;
use crate::storage::{AccessKey, AccountId};

/// Sender certificates are valid this long.
pub const SENDER_CERTIFICATE_LIFETIME_MS: u64 = 24 * 3600 * 1000;
/// Key ID of the relay's server certificate (libsignal revokes 0xDEADC357 only).
const SERVER_KEY_ID: u32 = 1;
/// File in the data directory holding the keys.
const KEY_FILE: &str = "sealed-sender.keys";
/// First line of the key file: names the format.
const KEY_FILE_MAGIC: &[u8] = b"rankfile relay sealed sender keys v1\n";
const PRIVATE_KEY_LEN: usize = 32;

/// The relay's sealed-sender keys.
pub struct ServerKeys {
    trust_root: PublicKey,
    server_private: PrivateKey,
    server_certificate: ServerCertificate,
}

impl std::fmt::Debug for ServerKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerKeys")
            .field("trust_root", &hex::encode(self.trust_root.serialize()))
            .finish_non_exhaustive()
    }
}

impl ServerKeys {
    /// Loads the keys from `dir`, making them on first start (file mode 0600).
    pub fn load_or_create(dir: &Path) -> Result<Self> {
        let path = dir.join(KEY_FILE);
        if !path.exists() {
            let mut rng = rand::rng();
            let trust = KeyPair::generate(&mut rng);
            let server = KeyPair::generate(&mut rng);
            let cert = ServerCertificate::new(
                SERVER_KEY_ID,
                server.public_key,
                &trust.private_key,
                &mut rng,
            )?;
            let mut bytes = Zeroizing::new(Vec::new());
            bytes.extend_from_slice(KEY_FILE_MAGIC);
            bytes.extend_from_slice(&trust.private_key.serialize());
            bytes.extend_from_slice(&server.private_key.serialize());
            bytes.extend_from_slice(cert.serialized()?);
            crate::tls::write_private(&path, &bytes)?;
            tracing::info!("made the sealed-sender trust root and server certificate");
        }
        let bytes = Zeroizing::new(std::fs::read(&path)?);
        Self::parse(&bytes)
    }

    fn parse(bytes: &[u8]) -> Result<Self> {
        let rest = bytes
            .strip_prefix(KEY_FILE_MAGIC)
            .ok_or(Error::Corrupt("sealed-sender key file header"))?;
        if rest.len() <= 2 * PRIVATE_KEY_LEN {
            return Err(Error::Corrupt("sealed-sender key file too short"));
        }
        let (trust, rest) = rest.split_at(PRIVATE_KEY_LEN);
        let (server, cert) = rest.split_at(PRIVATE_KEY_LEN);
        let trust_private =
            PrivateKey::deserialize(trust).map_err(|_| Error::Corrupt("trust root key"))?;
        let server_private =
            PrivateKey::deserialize(server).map_err(|_| Error::Corrupt("server key"))?;
        let server_certificate = ServerCertificate::deserialize(cert)?;
        let trust_root = trust_private
            .public_key()
            .map_err(|_| Error::Corrupt("trust root key"))?;
        if !server_certificate.validate(&trust_root)?
            || server_certificate.public_key()?
                != server_private
                    .public_key()
                    .map_err(|_| Error::Corrupt("server key"))?
        {
            return Err(Error::Corrupt("server certificate does not match the keys"));
        }
        Ok(ServerKeys {
            trust_root,
            server_private,
            server_certificate,
        })
    }

    /// The trust root's public key (33 bytes), sent in Hello.
    pub fn trust_root(&self) -> Vec<u8> {
        self.trust_root.serialize().to_vec()
    }

    /// Issues a sender certificate for an authenticated device; returns it
    /// serialized with its expiry.
    pub fn issue(
        &self,
        account: &AccountId,
        device: u32,
        identity_key: &[u8],
        now_ms: u64,
    ) -> Result<(Vec<u8>, u64)> {
        let key = IdentityKey::decode(identity_key)?;
        let device = u8::try_from(device)
            .ok()
            .and_then(|d| DeviceId::new(d).ok())
            .ok_or(Error::Corrupt("device id"))?;
        let expires = now_ms.saturating_add(SENDER_CERTIFICATE_LIFETIME_MS);
        let cert = SenderCertificate::new(
            aci_string(account),
            None,
            *key.public_key(),
            device,
            Timestamp::from_epoch_millis(expires),
            self.server_certificate.clone(),
            &self.server_private,
            &mut rand::rng(),
        )?;
        Ok((cert.serialized()?.to_vec(), expires))
    }
}

/// The ACI of an account: its first 16 bytes as a UUID.
pub fn aci_bytes(account: &AccountId) -> [u8; 16] {
    let mut b = [0u8; 16];
    b.copy_from_slice(&account[..16]);
    b
}

/// The ACI's text form, as carried in sender certificates and libsignal addresses.
pub fn aci_string(account: &AccountId) -> String {
    Aci::from_uuid_bytes(aci_bytes(account)).service_id_string()
}

/// Constant-time comparison of a presented access key with the stored one.
pub fn access_key_matches(stored: Option<&AccessKey>, presented: &[u8]) -> bool {
    match stored {
        Some(stored) if presented.len() == ACCESS_KEY_LEN => bool::from(stored.ct_eq(presented)),
        _ => false,
    }
}

/// One recipient named in a multi-recipient message.
#[derive(Debug)]
pub struct FanOutRecipient {
    /// The ACI (16 bytes), or the fixed-width service ID of a non-ACI recipient.
    pub service_id: Vec<u8>,
    /// The ACI bytes when the recipient is an ACI.
    pub aci: Option<[u8; 16]>,
    /// Devices the sender addressed.
    pub devices: Vec<u32>,
}

/// Why a multi-recipient payload was refused before any work for its recipients.
#[derive(Debug, PartialEq, Eq)]
pub enum FanOutError {
    /// It did not parse.
    Malformed,
    /// It names more recipients than the relay takes in one upload.
    TooManyRecipients,
    /// A recipient's part would be larger than the relay stores.
    TooLarge,
}

/// Reads who a Sealed Sender v2 SentMessage is for, copying none of its
/// ciphertext: counts are checked (at most `max_recipients`) before the
/// per-recipient bytes are built by [`received_for`].
pub fn recipients_of(
    payload: &[u8],
    max_recipients: usize,
) -> Result<Vec<FanOutRecipient>, FanOutError> {
    let sent = SealedSenderV2SentMessage::parse(payload).map_err(|_| FanOutError::Malformed)?;
    let named = sent
        .recipients
        .values()
        .filter(|r| !r.devices.is_empty())
        .count();
    if named > max_recipients {
        return Err(FanOutError::TooManyRecipients);
    }
    let mut out = Vec::with_capacity(named);
    for (service_id, recipient) in &sent.recipients {
        if recipient.devices.is_empty() {
            // An excluded recipient: nothing to deliver.
            continue;
        }
        let aci = match service_id {
            ServiceId::Aci(_) => Some(service_id.raw_uuid().into_bytes()),
            _ => None,
        };
        let mut devices: Vec<u32> = recipient
            .devices
            .iter()
            .map(|(d, _)| u32::from(*d))
            .collect();
        devices.sort_unstable();
        devices.dedup();
        out.push(FanOutRecipient {
            service_id: service_id.service_id_fixed_width_binary().to_vec(),
            aci,
            devices,
        });
    }
    Ok(out)
}

/// One ACI recipient's part of a multi-recipient payload: its ACI and the bytes
/// it receives.
pub type RecipientPart = ([u8; 16], Vec<u8>);

/// What each ACI recipient of a multi-recipient payload that `wanted` picks
/// receives (libsignal's ReceivedMessage), in payload order: built only once
/// the sender has proved it knows those recipients' access keys. Each is
/// never longer than the payload; one longer than `max_len` stops the work.
pub fn received_for(
    payload: &[u8],
    max_len: usize,
    wanted: impl Fn(&[u8; 16]) -> bool,
) -> Result<Vec<RecipientPart>, FanOutError> {
    let sent = SealedSenderV2SentMessage::parse(payload).map_err(|_| FanOutError::Malformed)?;
    let mut out = Vec::new();
    for (service_id, recipient) in &sent.recipients {
        let ServiceId::Aci(_) = service_id else {
            continue;
        };
        let aci = service_id.raw_uuid().into_bytes();
        if recipient.devices.is_empty() || !wanted(&aci) {
            continue;
        }
        let parts = sent.received_message_parts_for_recipient(recipient);
        if parts.as_ref().iter().map(|p| p.len()).sum::<usize>() > max_len {
            return Err(FanOutError::TooLarge);
        }
        out.push((aci, parts.as_ref().concat()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_persist_and_certificates_validate() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = ServerKeys::load_or_create(dir.path()).expect("create");
        let b = ServerKeys::load_or_create(dir.path()).expect("load");
        assert_eq!(a.trust_root(), b.trust_root());
        let identity = libsignal_protocol::IdentityKeyPair::generate(&mut rand::rng());
        let account = [7u8; 20];
        let (cert, expires) = b
            .issue(&account, 3, &identity.identity_key().serialize(), 1_000)
            .expect("issue");
        let cert = SenderCertificate::deserialize(&cert).expect("parse");
        let root = PublicKey::deserialize(&a.trust_root()).expect("root");
        assert!(cert
            .validate(&root, Timestamp::from_epoch_millis(2_000))
            .expect("validate"));
        assert!(!cert
            .validate(&root, Timestamp::from_epoch_millis(expires + 1))
            .expect("validate"));
        assert_eq!(cert.sender_uuid().expect("uuid"), aci_string(&account));
        assert_eq!(u32::from(cert.sender_device_id().expect("device")), 3);
    }

    #[test]
    fn corrupt_key_file_refused() {
        assert!(ServerKeys::parse(b"nonsense").is_err());
        let mut bytes = KEY_FILE_MAGIC.to_vec();
        bytes.extend_from_slice(&[1u8; 80]);
        assert!(ServerKeys::parse(&bytes).is_err());
    }

    #[test]
    fn access_keys_compare() {
        let k = [5u8; 16];
        assert!(access_key_matches(Some(&k), &[5u8; 16]));
        assert!(!access_key_matches(Some(&k), &[6u8; 16]));
        assert!(!access_key_matches(Some(&k), &[5u8; 15]));
        assert!(!access_key_matches(None, &[5u8; 16]));
    }

    #[test]
    fn garbage_fan_out_refused() {
        assert_eq!(recipients_of(&[], 10).err(), Some(FanOutError::Malformed));
        assert_eq!(
            recipients_of(&[0x23, 5, 1, 2, 3], 10).err(),
            Some(FanOutError::Malformed)
        );
        assert!(received_for(&[], 100, |_| true).is_err());
    }
}
