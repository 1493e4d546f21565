//! Prekeys: making them, rotating them, and the bundle other devices use to
//! open a PQXDH session with this one.
//!
//! Policy:
//! - one signed EC prekey and one last-resort Kyber prekey are current; each is
//!   replaced after [`SIGNED_PREKEY_ROTATION_MS`], and a replaced one is kept for
//!   [`SIGNED_PREKEY_RETENTION_MS`] so first messages still in flight can be read;
//! - one-time EC and Kyber prekeys are made in batches of [`ONE_TIME_BATCH`];
//!   each goes into at most one bundle, and a new batch is made when fewer
//!   than [`ONE_TIME_LOW_WATER`] remain unhanded;
//! - a one-time prekey is deleted when a first message uses it, inside the
//!   transaction that stores that message.

use libsignal_protocol::{
    kem, DeviceId, GenericSignedPreKey, IdentityKey, KeyPair, KyberPreKeyId, KyberPreKeyRecord,
    PreKeyBundle, PreKeyId, PreKeyRecord, PublicKey, SignalProtocolError, SignedPreKeyId,
    SignedPreKeyRecord, Timestamp,
};
use prost::Message as _;
use rankfile_proto::v1 as pb;
use rusqlite::{params, Connection, OptionalExtension};

use crate::account_id::AccountId;
use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::identity::LocalIdentity;

/// One-time prekeys made at a time.
pub const ONE_TIME_BATCH: u32 = 100;
/// Make a new batch when fewer unhanded one-time prekeys than this remain.
pub const ONE_TIME_LOW_WATER: u32 = 20;
/// A signed (EC and last-resort Kyber) prekey is replaced after 7 days.
pub const SIGNED_PREKEY_ROTATION_MS: i64 = 7 * 24 * 3600 * 1000;
/// A replaced signed prekey is deleted 30 days after its successor was made.
pub const SIGNED_PREKEY_RETENTION_MS: i64 = 30 * 24 * 3600 * 1000;
/// Prekey IDs stay within 24 bits, as libsignal's clients keep them.
const PREKEY_ID_MODULUS: u32 = 0xFF_FFFF;
/// The KEM of Kyber prekeys (ML-KEM-1024 in its Kyber1024 form, as libsignal uses).
const KYBER_KEY_TYPE: kem::KeyType = kem::KeyType::Kyber1024;
/// Largest encoded bundle accepted on import (a Kyber1024 key is 1,569 bytes).
const MAX_BUNDLE_LEN: usize = 4096;

/// Takes the next ID from the named counter, within 1..=PREKEY_ID_MODULUS.
fn next_id(conn: &Connection, counter: &str) -> Result<u32> {
    let current: Option<u32> = conn
        .query_row(
            "SELECT value FROM counters WHERE name = ?1",
            [counter],
            |r| r.get(0),
        )
        .optional()?;
    let id = match current {
        Some(v) => v % PREKEY_ID_MODULUS + 1,
        None => rand::Rng::random_range(&mut rand::rng(), 1..=PREKEY_ID_MODULUS),
    };
    conn.execute(
        "INSERT OR REPLACE INTO counters (name, value) VALUES (?1, ?2)",
        params![counter, id],
    )?;
    Ok(id)
}

/// Makes a new signed EC prekey and makes it current.
pub(crate) fn new_signed_prekey(conn: &Connection, me: &LocalIdentity) -> Result<u32> {
    let mut rng = rand::rng();
    let id = next_id(conn, "signed_prekey")?;
    let pair = KeyPair::generate(&mut rng);
    let signature = me
        .key_pair
        .private_key()
        .calculate_signature(&pair.public_key.serialize(), &mut rng)
        .map_err(SignalProtocolError::from)?;
    let now = now_ms();
    let record = SignedPreKeyRecord::new(
        SignedPreKeyId::from(id),
        Timestamp::from_epoch_millis(u64::try_from(now).unwrap_or(0)),
        &pair,
        &signature,
    );
    conn.execute(
        "INSERT OR REPLACE INTO signed_prekeys (id, record, created_at) VALUES (?1, ?2, ?3)",
        params![id, record.serialize()?, now],
    )?;
    Ok(id)
}

/// Makes a Kyber prekey, one-time or last-resort.
pub(crate) fn new_kyber_prekey(
    conn: &Connection,
    me: &LocalIdentity,
    last_resort: bool,
) -> Result<u32> {
    let id = next_id(conn, "kyber_prekey")?;
    let record = KyberPreKeyRecord::generate(
        KYBER_KEY_TYPE,
        KyberPreKeyId::from(id),
        me.key_pair.private_key(),
    )?;
    conn.execute(
        "INSERT OR REPLACE INTO kyber_prekeys (id, record, last_resort, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![id, record.serialize()?, last_resort, now_ms()],
    )?;
    Ok(id)
}

/// Makes `n` one-time EC prekeys.
pub(crate) fn new_one_time_prekeys(conn: &Connection, n: u32) -> Result<()> {
    let mut rng = rand::rng();
    let mut insert =
        conn.prepare_cached("INSERT OR REPLACE INTO prekeys (id, record) VALUES (?1, ?2)")?;
    for _ in 0..n {
        let id = next_id(conn, "prekey")?;
        let record = PreKeyRecord::new(PreKeyId::from(id), &KeyPair::generate(&mut rng));
        insert.execute(params![id, record.serialize()?])?;
    }
    Ok(())
}

/// Everything a new account needs: a signed prekey, a last-resort Kyber
/// prekey, and a batch of `batch` of each kind of one-time prekey
/// ([`ONE_TIME_BATCH`] unless the account was made with other options).
pub(crate) fn initial(conn: &Connection, me: &LocalIdentity, batch: u32) -> Result<()> {
    new_signed_prekey(conn, me)?;
    new_kyber_prekey(conn, me, true)?;
    new_one_time_prekeys(conn, batch)?;
    for _ in 0..batch {
        new_kyber_prekey(conn, me, false)?;
    }
    Ok(())
}

/// Applies the rotation and replenishment policy at time `now`, making
/// one-time prekeys in batches of `batch`. Returns whether anything changed.
pub(crate) fn maintain(
    conn: &Connection,
    me: &LocalIdentity,
    now: i64,
    batch: u32,
) -> Result<bool> {
    let mut changed = false;
    let newest_signed: Option<i64> =
        conn.query_row("SELECT max(created_at) FROM signed_prekeys", [], |r| {
            r.get(0)
        })?;
    if newest_signed.is_none_or(|t| now - t >= SIGNED_PREKEY_ROTATION_MS) {
        new_signed_prekey(conn, me)?;
        changed = true;
    }
    let newest_last_resort: Option<i64> = conn.query_row(
        "SELECT max(created_at) FROM kyber_prekeys WHERE last_resort = 1",
        [],
        |r| r.get(0),
    )?;
    if newest_last_resort.is_none_or(|t| now - t >= SIGNED_PREKEY_ROTATION_MS) {
        new_kyber_prekey(conn, me, true)?;
        changed = true;
    }
    // Retire replaced signed keys once their successor is old enough.
    changed |= conn.execute(
        "DELETE FROM signed_prekeys WHERE created_at < (SELECT max(created_at) FROM signed_prekeys) - ?1",
        [SIGNED_PREKEY_RETENTION_MS],
    )? > 0;
    changed |= conn.execute(
        "DELETE FROM kyber_prekeys WHERE last_resort = 1 AND created_at <
           (SELECT max(created_at) FROM kyber_prekeys WHERE last_resort = 1) - ?1",
        [SIGNED_PREKEY_RETENTION_MS],
    )? > 0;

    let unhanded: u32 = conn.query_row(
        "SELECT count(*) FROM prekeys WHERE handed_out = 0",
        [],
        |r| r.get(0),
    )?;
    if unhanded < ONE_TIME_LOW_WATER && batch > 0 {
        new_one_time_prekeys(conn, batch)?;
        changed = true;
    }
    let unhanded_kyber: u32 = conn.query_row(
        "SELECT count(*) FROM kyber_prekeys WHERE handed_out = 0 AND last_resort = 0",
        [],
        |r| r.get(0),
    )?;
    if unhanded_kyber < ONE_TIME_LOW_WATER && batch > 0 {
        for _ in 0..batch {
            new_kyber_prekey(conn, me, false)?;
        }
        changed = true;
    }
    Ok(changed)
}

/// Builds this device's bundle, handing out one one-time EC prekey and one
/// one-time Kyber prekey (or the last-resort one when none is left).
pub(crate) fn export_bundle(conn: &Connection, me: &LocalIdentity) -> Result<pb::PreKeyBundle> {
    let signed: Vec<u8> = conn.query_row(
        "SELECT record FROM signed_prekeys ORDER BY created_at DESC, id DESC LIMIT 1",
        [],
        |r| r.get(0),
    )?;
    let signed = SignedPreKeyRecord::deserialize(&signed)?;

    let one_time: Option<(u32, Vec<u8>)> = conn
        .query_row(
            "SELECT id, record FROM prekeys WHERE handed_out = 0 ORDER BY id LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (one_time_prekey_id, one_time_prekey) = match one_time {
        Some((id, record)) => {
            conn.execute("UPDATE prekeys SET handed_out = 1 WHERE id = ?1", [id])?;
            let record = PreKeyRecord::deserialize(&record)?;
            (Some(id), record.public_key()?.serialize().to_vec())
        }
        None => (None, Vec::new()),
    };

    let kyber: Option<(u32, Vec<u8>)> = conn
        .query_row(
            "SELECT id, record FROM kyber_prekeys WHERE handed_out = 0 AND last_resort = 0
             ORDER BY id LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (kyber_id, kyber_record) = match kyber {
        Some((id, record)) => {
            conn.execute(
                "UPDATE kyber_prekeys SET handed_out = 1 WHERE id = ?1",
                [id],
            )?;
            (id, record)
        }
        None => conn.query_row(
            "SELECT id, record FROM kyber_prekeys WHERE last_resort = 1
             ORDER BY created_at DESC, id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?,
    };
    let kyber = KyberPreKeyRecord::deserialize(&kyber_record)?;

    Ok(pb::PreKeyBundle {
        identity_key: me.key_pair.identity_key().serialize().to_vec(),
        account_id: me.account_id().as_bytes().to_vec(),
        registration_id: me.registration_id,
        device_id: u32::from(me.device_id),
        one_time_prekey_id,
        one_time_prekey,
        signed_prekey_id: u32::from(signed.id()?),
        signed_prekey: signed.public_key()?.serialize().to_vec(),
        signed_prekey_signature: signed.signature()?,
        kyber_prekey_id: kyber_id,
        kyber_prekey: kyber.public_key()?.serialize().to_vec(),
        kyber_prekey_signature: kyber.signature()?,
    })
}

/// A bundle read from untrusted bytes and checked: the identity key hashes to
/// the account ID it claims, and both prekey signatures verify.
pub struct ImportedBundle {
    pub account_id: AccountId,
    pub(crate) bundle: PreKeyBundle,
}

impl ImportedBundle {
    /// The bundle's device.
    pub fn device_id(&self) -> Result<DeviceId> {
        Ok(self.bundle.device_id()?)
    }
}

/// Parses and checks a bundle.
pub fn import_bundle(bytes: &[u8]) -> Result<ImportedBundle> {
    if bytes.len() > MAX_BUNDLE_LEN {
        return Err(Error::InvalidBundle("too large"));
    }
    let b = pb::PreKeyBundle::decode(bytes).map_err(|_| Error::InvalidBundle("not a bundle"))?;
    let identity_key = IdentityKey::decode(&b.identity_key)
        .map_err(|_| Error::InvalidBundle("bad identity key"))?;
    let account_id =
        AccountId::from_bytes(&b.account_id).map_err(|_| Error::InvalidBundle("bad account id"))?;
    if !account_id.matches(&identity_key) {
        return Err(Error::IdentityMismatch(account_id));
    }
    let device_id =
        DeviceId::try_from(b.device_id).map_err(|_| Error::InvalidBundle("bad device id"))?;
    let one_time = match b.one_time_prekey_id {
        Some(id) => Some((
            PreKeyId::from(id),
            PublicKey::deserialize(&b.one_time_prekey)
                .map_err(|_| Error::InvalidBundle("bad one-time prekey"))?,
        )),
        None => None,
    };
    let signed = PublicKey::deserialize(&b.signed_prekey)
        .map_err(|_| Error::InvalidBundle("bad signed prekey"))?;
    let kyber = kem::PublicKey::deserialize(&b.kyber_prekey)
        .map_err(|_| Error::InvalidBundle("bad kyber prekey"))?;
    if !identity_key
        .public_key()
        .verify_signature(&b.signed_prekey, &b.signed_prekey_signature)
    {
        return Err(Error::InvalidBundle(
            "signed prekey signature does not verify",
        ));
    }
    if !identity_key
        .public_key()
        .verify_signature(&b.kyber_prekey, &b.kyber_prekey_signature)
    {
        return Err(Error::InvalidBundle(
            "kyber prekey signature does not verify",
        ));
    }
    let bundle = PreKeyBundle::new(
        b.registration_id,
        device_id,
        one_time,
        SignedPreKeyId::from(b.signed_prekey_id),
        signed,
        b.signed_prekey_signature,
        KyberPreKeyId::from(b.kyber_prekey_id),
        kyber,
        b.kyber_prekey_signature,
        identity_key,
    )
    .map_err(|_| Error::InvalidBundle("inconsistent"))?;
    Ok(ImportedBundle { account_id, bundle })
}
