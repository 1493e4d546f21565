//! What the account gives the relay and takes from it: the signed answer to
//! the login challenge, prekeys for the directory, the sealed-sender trust
//! root and sender certificates. No networking here; the transport carries it.

use libsignal_protocol::{
    GenericSignedPreKey, KyberPreKeyRecord, PreKeyRecord, PublicKey, SenderCertificate,
    SignedPreKeyRecord, Timestamp,
};
use rankfile_proto::{auth_message, v1 as pb};
use rusqlite::Connection;
use uuid::Uuid;

use crate::account::Account;
use crate::error::{Error, Result};
use crate::prekeys;
use crate::sealed::service_uuid;
use crate::settings::{self, ACCESS_KEY_LEN};

/// Fetch a new sender certificate when the current one expires within this.
const CERTIFICATE_REFRESH_MS: i64 = 6 * 60 * 60 * 1000;
/// Longest login challenge accepted for signing.
const MAX_CHALLENGE_LEN: usize = 64;

impl Account {
    /// Answers the relay's login challenge: an `Auth` signed with the identity key.
    #[cfg_attr(feature = "testing", rankfile_testing_pub::public)]
    pub(crate) fn sign_relay_challenge(&self, challenge: &[u8]) -> Result<pb::Auth> {
        if challenge.is_empty() || challenge.len() > MAX_CHALLENGE_LEN {
            return Err(Error::InvalidEnvelope("bad login challenge"));
        }
        let id = self.id();
        let message = auth_message(challenge, id.as_bytes(), self.device_id());
        let signature = self
            .me
            .key_pair
            .private_key()
            .calculate_signature(&message, &mut rand::rng())
            .map_err(libsignal_protocol::SignalProtocolError::from)?;
        Ok(pb::Auth {
            account_id: id.as_bytes().to_vec(),
            device_id: self.device_id(),
            identity_key: self.identity_key(),
            signature: signature.to_vec(),
        })
    }

    /// This account's unidentified-access key (made on first use).
    #[cfg_attr(feature = "testing", rankfile_testing_pub::public)]
    pub(crate) fn access_key(&mut self) -> Result<[u8; ACCESS_KEY_LEN]> {
        Ok(self.settings.access_key)
    }

    /// Records the relay's sealed-sender trust root, received over the pinned
    /// TLS connection. Once set it never changes silently: a different root is
    /// refused.
    #[cfg_attr(feature = "testing", rankfile_testing_pub::public)]
    pub(crate) fn set_relay_trust_root(&mut self, key: &[u8]) -> Result<()> {
        PublicKey::deserialize(key).map_err(|_| Error::InvalidEnvelope("bad trust root"))?;
        match settings::trust_root(self.store.conn())? {
            Some(existing) if existing == key => Ok(()),
            Some(_) => Err(Error::RelayTrustRootChanged),
            None => {
                settings::set_trust_root(self.store.conn(), key)?;
                self.settings.trust_root = Some(key.to_vec());
                Ok(())
            }
        }
    }

    /// Whether the transport should fetch a (new) sender certificate.
    #[cfg_attr(feature = "testing", rankfile_testing_pub::public)]
    pub(crate) fn needs_sender_certificate(&self) -> Result<bool> {
        let fresh_until = self.clock.now_ms() + CERTIFICATE_REFRESH_MS;
        Ok(self
            .settings
            .sender_certificate
            .as_ref()
            .is_none_or(|(_, expires)| *expires <= fresh_until))
    }

    /// Stores a sender certificate from the relay after checking that it chains
    /// to the trust root and names this account, device and identity key.
    #[cfg_attr(feature = "testing", rankfile_testing_pub::public)]
    pub(crate) fn set_sender_certificate(&mut self, certificate: &[u8]) -> Result<()> {
        let conn = self.store.conn();
        let root =
            settings::trust_root(conn)?.ok_or(Error::InvalidEnvelope("no trust root yet"))?;
        let root = PublicKey::deserialize(&root)
            .map_err(|_| Error::Storage("stored trust root is malformed".into()))?;
        let cert = SenderCertificate::deserialize(certificate)
            .map_err(|_| Error::InvalidEnvelope("bad sender certificate"))?;
        let now = Timestamp::from_epoch_millis(self.clock.now_u64());
        let ours = cert.validate(&root, now).unwrap_or(false)
            && cert.key().ok().as_ref() == Some(self.me.key_pair.public_key())
            && cert.sender_device_id().ok() == Some(self.me.device_id)
            && cert
                .sender_uuid()
                .ok()
                .and_then(|u| Uuid::parse_str(u).ok())
                == Some(service_uuid(&self.id()));
        if !ours {
            return Err(Error::InvalidEnvelope(
                "sender certificate is not ours or not valid",
            ));
        }
        settings::set_sender_certificate(conn, certificate)?;
        let expires = settings::certificate_expiry(certificate)
            .ok_or(Error::InvalidEnvelope("bad sender certificate"))?;
        self.settings.sender_certificate = Some((certificate.to_vec(), expires));
        Ok(())
    }

    /// Prekeys for the relay's directory: the current signed and last-resort
    /// keys and every one-time key not yet published (marked published now).
    /// Applies the prekey policy first, so a low stock is replenished.
    #[cfg_attr(feature = "testing", rankfile_testing_pub::public)]
    pub(crate) fn prekeys_for_upload(&mut self) -> Result<pb::UploadPreKeys> {
        let tx = self.store.write()?;
        prekeys::maintain(&tx, &self.me, self.clock.now_ms(), self.one_time_batch)?;
        let upload = collect_upload(&tx, self.me.registration_id)?;
        tx.commit()?;
        Ok(upload)
    }

    /// Makes a fresh batch of one-time prekeys and returns everything unpublished,
    /// for when the relay reports its stock of this device's keys is low.
    #[cfg_attr(feature = "testing", rankfile_testing_pub::public)]
    pub(crate) fn replenish_prekeys(&mut self) -> Result<pb::UploadPreKeys> {
        let tx = self.store.write()?;
        prekeys::new_one_time_prekeys(&tx, self.one_time_batch)?;
        for _ in 0..self.one_time_batch {
            prekeys::new_kyber_prekey(&tx, &self.me, false)?;
        }
        let upload = collect_upload(&tx, self.me.registration_id)?;
        tx.commit()?;
        Ok(upload)
    }
}

fn collect_upload(conn: &Connection, registration_id: u32) -> Result<pb::UploadPreKeys> {
    let signed: Vec<u8> = conn.query_row(
        "SELECT record FROM signed_prekeys ORDER BY created_at DESC, id DESC LIMIT 1",
        [],
        |r| r.get(0),
    )?;
    let signed = SignedPreKeyRecord::deserialize(&signed)?;
    let last_resort: Vec<u8> = conn.query_row(
        "SELECT record FROM kyber_prekeys WHERE last_resort = 1 ORDER BY created_at DESC, id DESC LIMIT 1",
        [],
        |r| r.get(0),
    )?;
    let last_resort = KyberPreKeyRecord::deserialize(&last_resort)?;

    let mut one_time = Vec::new();
    {
        let mut stmt =
            conn.prepare("SELECT record FROM prekeys WHERE handed_out = 0 ORDER BY id")?;
        let rows = stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))?;
        for r in rows {
            let rec = PreKeyRecord::deserialize(&r?)?;
            one_time.push(pb::OneTimePreKey {
                id: u32::from(rec.id()?),
                public_key: rec.public_key()?.serialize().to_vec(),
            });
        }
    }
    let mut kyber = Vec::new();
    {
        let mut stmt = conn.prepare(
            "SELECT record FROM kyber_prekeys WHERE handed_out = 0 AND last_resort = 0 ORDER BY id",
        )?;
        let rows = stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))?;
        for r in rows {
            let rec = KyberPreKeyRecord::deserialize(&r?)?;
            kyber.push(signed_prekey(&rec)?);
        }
    }
    conn.execute("UPDATE prekeys SET handed_out = 1 WHERE handed_out = 0", [])?;
    conn.execute(
        "UPDATE kyber_prekeys SET handed_out = 1 WHERE handed_out = 0 AND last_resort = 0",
        [],
    )?;
    Ok(pb::UploadPreKeys {
        registration_id,
        signed_prekey: Some(pb::SignedPreKey {
            id: u32::from(signed.id()?),
            public_key: signed.public_key()?.serialize().to_vec(),
            signature: signed.signature()?,
        }),
        kyber_last_resort: Some(signed_prekey(&last_resort)?),
        one_time_prekeys: one_time,
        one_time_kyber_prekeys: kyber,
    })
}

fn signed_prekey(rec: &KyberPreKeyRecord) -> Result<pb::SignedPreKey> {
    Ok(pb::SignedPreKey {
        id: u32::from(rec.id()?),
        public_key: rec.public_key()?.serialize().to_vec(),
        signature: rec.signature()?,
    })
}
