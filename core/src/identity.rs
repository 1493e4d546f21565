//! This device's identity: the account's libsignal identity key pair, its
//! registration ID and device ID, kept in the `local_identity` row.

use libsignal_protocol::{DeviceId, IdentityKeyPair};
use rand::Rng;
use rusqlite::{params, Connection, OptionalExtension};
use zeroize::Zeroizing;

use crate::account_id::AccountId;
use crate::clock::now_ms;
use crate::error::{Error, Result};

/// The first device of an account. (Linked devices are a later issue.)
pub const PRIMARY_DEVICE_ID: u8 = 1;

/// Registration IDs are 14 bits, as libsignal's clients use them.
const REGISTRATION_ID_MAX: u32 = 0x3FFF;

/// The local account as stored.
#[derive(Clone, Copy)]
pub(crate) struct LocalIdentity {
    pub key_pair: IdentityKeyPair,
    pub registration_id: u32,
    pub device_id: DeviceId,
}

impl LocalIdentity {
    pub fn account_id(&self) -> AccountId {
        AccountId::from_identity_key(self.key_pair.identity_key())
    }

    /// A new random identity for the primary device.
    pub fn generate() -> Result<Self> {
        let mut rng = rand::rng();
        let key_pair = IdentityKeyPair::generate(&mut rng);
        Ok(LocalIdentity {
            key_pair,
            registration_id: rng.random_range(1..=REGISTRATION_ID_MAX),
            device_id: DeviceId::new(PRIMARY_DEVICE_ID)
                .map_err(|_| Error::Protocol("device id out of range".into()))?,
        })
    }

    pub fn save(&self, conn: &Connection) -> Result<()> {
        let serialized = Zeroizing::new(self.key_pair.serialize().to_vec());
        conn.execute(
            "INSERT INTO local_identity (id, identity_key_pair, registration_id, device_id, created_at)
             VALUES (0, ?1, ?2, ?3, ?4)",
            params![
                &serialized[..],
                self.registration_id,
                u32::from(self.device_id),
                now_ms()
            ],
        )?;
        Ok(())
    }

    pub fn load(conn: &Connection) -> Result<Self> {
        let row: Option<(Vec<u8>, u32, u32)> = conn
            .query_row(
                "SELECT identity_key_pair, registration_id, device_id FROM local_identity WHERE id = 0",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let (pair, registration_id, device) = row.ok_or(Error::NoAccount)?;
        let pair = Zeroizing::new(pair);
        let key_pair = IdentityKeyPair::try_from(&pair[..])
            .map_err(|_| Error::Storage("stored identity key pair is malformed".into()))?;
        let device_id = DeviceId::try_from(device)
            .map_err(|_| Error::Storage("stored device id is out of range".into()))?;
        Ok(LocalIdentity {
            key_pair,
            registration_id,
            device_id,
        })
    }
}
