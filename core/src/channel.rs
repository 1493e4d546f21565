//! Committee channels on the wire: each member's sender key, distributed over
//! the 1:1 sessions, and channel messages encrypted once under it and sealed for
//! every recipient in one multi-recipient upload that the relay fans out.
//!
//! A removed member keeps the sender keys it had, so after a removal every
//! remaining member starts a new sender key (a new distribution ID) and sends it
//! only to those who remain; messages under it are unreadable to the removed.

use std::collections::HashMap;

use async_trait::async_trait;
use libsignal_protocol::{
    create_sender_key_distribution_message, group_encrypt, sealed_sender_multi_recipient_encrypt,
    CiphertextMessageType, ContentHint, DeviceId, Direction, IdentityChange, IdentityKey,
    IdentityKeyPair, IdentityKeyStore, ProtocolAddress, SenderCertificate, ServiceId,
    SessionRecord, SignalProtocolError, UnidentifiedSenderMessageContent,
};
use rand::RngCore;
use rusqlite::{params, Connection};
use uuid::Uuid;

use crate::account::Account;
use crate::account_id::AccountId;
use crate::clock::now_ms;
use crate::contact;
use crate::error::{Error, Result};
use crate::message::{self, Body, CHANNEL_ID_LEN, ENVELOPE_ID_LEN};
use crate::sealed::service_uuid;
use crate::send::OutgoingEnvelope;
use crate::settings::ACCESS_KEY_LEN;
use crate::store::signal::{address, Pending, SignalStores};

/// A channel message as the app shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChannelMessage {
    pub id: i64,
    pub channel_id: [u8; CHANNEL_ID_LEN],
    pub sender: AccountId,
    pub outgoing: bool,
    pub body: String,
    pub sent_at_ms: i64,
    pub stored_at_ms: i64,
}

pub(crate) struct NewChannelMessage<'a> {
    pub channel_id: &'a [u8; CHANNEL_ID_LEN],
    pub envelope_id: &'a [u8; ENVELOPE_ID_LEN],
    pub sender: &'a AccountId,
    pub outgoing: bool,
    pub body: &'a str,
    pub sent_at_ms: i64,
}

pub(crate) fn insert_message(conn: &Connection, m: &NewChannelMessage<'_>) -> Result<i64> {
    conn.prepare_cached(
        "INSERT INTO channel_messages (channel_id, envelope_id, sender, outgoing, body, sent_at, stored_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        &m.channel_id[..],
        &m.envelope_id[..],
        &m.sender.as_bytes()[..],
        m.outgoing,
        m.body,
        m.sent_at_ms,
        now_ms()
    ])?;
    Ok(conn.last_insert_rowid())
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

impl Account {
    /// Sends this account's sender key for a channel to one member, over the 1:1
    /// session, making the key on first use. `distribution_id` names the key's
    /// generation: a new one after every removal from the channel.
    pub fn send_sender_key(
        &mut self,
        to: &AccountId,
        channel_id: [u8; CHANNEL_ID_LEN],
        distribution_id: Uuid,
    ) -> Result<OutgoingEnvelope> {
        let own = address(&self.id(), self.me.device_id);
        let message = {
            let tx = self.store.write()?;
            let mut pending = Pending::default();
            let stores = SignalStores::new(&tx, &self.cache, &mut pending);
            let skdm = futures::executor::block_on(create_sender_key_distribution_message(
                &own,
                distribution_id,
                &mut stores.view(),
                &mut rand::rng(),
            ))?;
            stores.commit_op()?;
            pending.flush(&tx)?;
            tx.commit()?;
            skdm.serialized().to_vec()
        };
        self.send_body(
            to,
            &Body::SenderKeyDistribution {
                channel_id,
                distribution_id,
                message,
            },
        )
    }

    /// Encrypts `body` once under this account's sender key for the channel and
    /// seals it for every recipient in one multi-recipient message; commits the
    /// advanced sender key, the message and the outbox entry before returning.
    /// Each recipient must be a contact whose access key we hold.
    pub fn send_channel_text(
        &mut self,
        channel_id: [u8; CHANNEL_ID_LEN],
        distribution_id: Uuid,
        recipients: &[AccountId],
        body: &str,
    ) -> Result<OutgoingEnvelope> {
        let me = self.id();
        let own = address(&me, self.me.device_id);
        let certificate = self
            .settings
            .sender_certificate
            .as_ref()
            .filter(|(_, expires)| *expires > now_ms())
            .map(|(c, _)| c.clone())
            .ok_or(Error::NoSenderCertificate)?;
        let sent_at_ms = now_ms();
        let plaintext = message::encode_content(
            &Body::ChannelText {
                channel_id,
                body: body.to_string(),
            },
            sent_at_ms,
            None,
            &self.settings.access_key,
        )?;

        let tx = self.store.write()?;
        let mut pending = Pending::default();
        let stores = SignalStores::new(&tx, &self.cache, &mut pending);
        let mut access_key = [0u8; ACCESS_KEY_LEN];
        let mut named = Vec::with_capacity(recipients.len());
        let mut sessions: Vec<SessionRecord> = Vec::with_capacity(recipients.len());
        let mut keys = HashMap::with_capacity(recipients.len());
        for r in recipients {
            let c = contact::get(&tx, r)?.ok_or(Error::UnknownContact(*r))?;
            if c.pending_successor.is_some() {
                return Err(Error::IdentityChangePending(*r));
            }
            let key = contact::access_key(&tx, r)?.ok_or(Error::NoAccessKey(*r))?;
            for (a, k) in access_key.iter_mut().zip(key) {
                *a ^= k;
            }
            let device = DeviceId::try_from(c.device_id)
                .map_err(|_| Error::Storage("stored device id is out of range".into()))?;
            let record = stores
                .session(&address(r, device).to_string())?
                .ok_or(Error::NoSession(*r))?;
            let identity = contact::identity_key(&tx, r)?.ok_or(Error::UnknownContact(*r))?;
            let service_name = ProtocolAddress::new(service_uuid(r).to_string(), device);
            keys.insert(service_name.to_string(), identity);
            named.push(service_name);
            sessions.push(record);
        }
        let message = futures::executor::block_on(group_encrypt(
            &mut stores.view(),
            &own,
            distribution_id,
            &plaintext,
            &mut rand::rng(),
        ))?;
        let usmc = UnidentifiedSenderMessageContent::new(
            CiphertextMessageType::SenderKey,
            SenderCertificate::deserialize(&certificate)?,
            message.serialized().to_vec(),
            ContentHint::Resendable,
            Some(channel_id.to_vec()),
        )?;
        let identities = RecipientIdentities {
            own: self.me.key_pair,
            registration_id: self.me.registration_id,
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
        stores.commit_op()?;

        let mut envelope_id = [0u8; ENVELOPE_ID_LEN];
        rand::rng().fill_bytes(&mut envelope_id);
        insert_message(
            &tx,
            &NewChannelMessage {
                channel_id: &channel_id,
                envelope_id: &envelope_id,
                sender: &me,
                outgoing: true,
                body,
                sent_at_ms,
            },
        )?;
        tx.prepare_cached(
            "INSERT INTO outbox (envelope_id, recipient, recipient_device, envelope, created_at, sealed, access_key, multi)
             VALUES (?1, ?2, 0, ?3, ?4, 1, ?5, 1)",
        )?
        .execute(params![&envelope_id[..], &channel_id[..], &payload, sent_at_ms, &access_key[..]])?;
        pending.flush(&tx)?;
        tx.commit()?;
        self.cache.absorb(pending);
        Ok(OutgoingEnvelope {
            envelope_id,
            recipient: me,
            recipient_device: 0,
            bytes: payload,
            sealed: true,
            access_key: Some(access_key),
            multi: true,
        })
    }

    /// A page of a channel, newest first, below `before_id` when given.
    pub fn channel_history(
        &self,
        channel_id: &[u8; CHANNEL_ID_LEN],
        before_id: Option<i64>,
        limit: u32,
    ) -> Result<Vec<ChannelMessage>> {
        let mut stmt = self.store.conn().prepare_cached(
            "SELECT id, sender, outgoing, body, sent_at, stored_at FROM channel_messages
             WHERE channel_id = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3",
        )?;
        let rows = stmt.query_map(
            params![&channel_id[..], before_id.unwrap_or(i64::MAX), limit],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, bool>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, i64>(5)?,
                ))
            },
        )?;
        rows.map(|row| {
            let (id, sender, outgoing, body, sent_at_ms, stored_at_ms) = row?;
            Ok(ChannelMessage {
                id,
                channel_id: *channel_id,
                sender: AccountId::from_bytes(&sender)?,
                outgoing,
                body,
                sent_at_ms,
                stored_at_ms,
            })
        })
        .collect()
    }
}
