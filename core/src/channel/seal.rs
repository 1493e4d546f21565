//! Sealing a channel message for its recipients: the ciphertext under the
//! sender's sender key, wrapped once in a multi-recipient sealed-sender
//! message that the relay splits into each recipient's mailbox. Used when a
//! message is sent, and again when one waited in the outbox past its sender
//! certificate (`crate::reseal`).

use std::collections::HashMap;

use async_trait::async_trait;
use libsignal_protocol::{
    sealed_sender_multi_recipient_encrypt, CiphertextMessageType, ContentHint, DeviceId, Direction,
    IdentityChange, IdentityKey, IdentityKeyPair, IdentityKeyStore, ProtocolAddress,
    SenderCertificate, ServiceId, SessionRecord, SignalProtocolError,
    UnidentifiedSenderMessageContent,
};

use crate::account_id::AccountId;
use crate::contact;
use crate::error::{Error, Result};
use crate::sealed::service_uuid;
use crate::settings::ACCESS_KEY_LEN;
use crate::store::signal::{address, SignalStores};
use crate::store::WriteTransaction;

/// A channel message sealed for its recipients.
pub(crate) struct Sealed {
    /// The one upload: a libsignal `SealedSenderV2SentMessage`.
    pub payload: Vec<u8>,
    /// The XOR of the recipients' access keys, which the relay checks.
    pub access_key: [u8; ACCESS_KEY_LEN],
}

/// Seals `inner` (a `SenderKeyMessage` of channel `group`) with `certificate`
/// for every one of `recipients`, who must be contacts with a session and an
/// access key and no identity change pending.
pub(crate) fn for_members(
    tx: &WriteTransaction<'_>,
    stores: &SignalStores<'_, '_>,
    (own, registration_id): (IdentityKeyPair, u32),
    recipients: &[AccountId],
    (certificate, inner, group): (&[u8], &[u8], &[u8]),
) -> Result<Sealed> {
    let mut access_key = [0u8; ACCESS_KEY_LEN];
    let mut named = Vec::with_capacity(recipients.len());
    let mut sessions: Vec<SessionRecord> = Vec::with_capacity(recipients.len());
    let mut keys = HashMap::with_capacity(recipients.len());
    for r in recipients {
        let c = contact::get(tx, r)?.ok_or(Error::UnknownContact(*r))?;
        if c.pending_successor.is_some() {
            return Err(Error::IdentityChangePending(*r));
        }
        let key = contact::access_key(tx, r)?.ok_or(Error::NoAccessKey(*r))?;
        for (a, k) in access_key.iter_mut().zip(key) {
            *a ^= k;
        }
        let device = DeviceId::try_from(c.device_id)
            .map_err(|_| Error::Storage("stored device id is out of range".into()))?;
        let record = stores
            .session(&address(r, device).to_string())?
            .ok_or(Error::NoSession(*r))?;
        let identity = contact::identity_key(tx, r)?.ok_or(Error::UnknownContact(*r))?;
        let service_name = ProtocolAddress::new(service_uuid(r).to_string(), device);
        keys.insert(service_name.to_string(), identity);
        named.push(service_name);
        sessions.push(record);
    }
    let usmc = UnidentifiedSenderMessageContent::new(
        CiphertextMessageType::SenderKey,
        SenderCertificate::deserialize(certificate)?,
        inner.to_vec(),
        ContentHint::Resendable,
        Some(group.to_vec()),
    )?;
    let identities = RecipientIdentities {
        own,
        registration_id,
        keys,
    };
    let named_refs: Vec<&ProtocolAddress> = named.iter().collect();
    let session_refs: Vec<&SessionRecord> = sessions.iter().collect();
    let payload = futures::executor::block_on(sealed_sender_multi_recipient_encrypt(
        &named_refs,
        &session_refs,
        std::iter::empty::<ServiceId>(),
        &usmc,
        &identities,
        &mut rand::rng(),
    ))?;
    Ok(Sealed {
        payload,
        access_key,
    })
}

/// libsignal's multi-recipient encryption names recipients by ServiceId
/// strings and asks an identity store for their keys under those names; this
/// store answers for exactly the recipients of one message.
struct RecipientIdentities {
    own: IdentityKeyPair,
    registration_id: u32,
    keys: HashMap<String, IdentityKey>,
}

#[async_trait(?Send)]
impl IdentityKeyStore for RecipientIdentities {
    async fn get_identity_key_pair(&self) -> Result<IdentityKeyPair, SignalProtocolError> {
        Ok(self.own)
    }
    async fn get_local_registration_id(&self) -> Result<u32, SignalProtocolError> {
        Ok(self.registration_id)
    }
    async fn save_identity(
        &mut self,
        _: &ProtocolAddress,
        _: &IdentityKey,
    ) -> Result<IdentityChange, SignalProtocolError> {
        Err(SignalProtocolError::InvalidState(
            "save_identity",
            "read-only recipient list".into(),
        ))
    }
    async fn is_trusted_identity(
        &self,
        address: &ProtocolAddress,
        identity: &IdentityKey,
        _: Direction,
    ) -> Result<bool, SignalProtocolError> {
        Ok(self.keys.get(&address.to_string()) == Some(identity))
    }
    async fn get_identity(
        &self,
        address: &ProtocolAddress,
    ) -> Result<Option<IdentityKey>, SignalProtocolError> {
        Ok(self.keys.get(&address.to_string()).copied())
    }
}
