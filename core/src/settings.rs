//! Small named values in the `settings` table: this account's
//! unidentified-access key, the relay's sealed-sender trust root, the
//! current sender certificate, and this device's push endpoint.

use rand::RngCore;
use rusqlite::{params, Connection, OptionalExtension};

use crate::error::{Error, Result};

pub use rankfile_proto::wire::ACCESS_KEY_LEN;

const ACCESS_KEY: &str = "access_key";
const ACCESS_KEY_AT_RELAY: &str = "access_key_at_relay";
const TRUST_ROOT: &str = "trust_root";
const SENDER_CERTIFICATE: &str = "sender_certificate";
const PUSH_ENDPOINT: &str = "push_endpoint";

pub(crate) fn get(conn: &Connection, name: &str) -> Result<Option<Vec<u8>>> {
    Ok(conn
        .prepare_cached("SELECT value FROM settings WHERE name = ?1")?
        .query_row([name], |r| r.get(0))
        .optional()?)
}

pub(crate) fn put(conn: &Connection, name: &str, value: &[u8]) -> Result<()> {
    conn.prepare_cached("INSERT OR REPLACE INTO settings (name, value) VALUES (?1, ?2)")?
        .execute(params![name, value])?;
    Ok(())
}

/// This account's access key, made on first use. Contacts learn it inside our
/// messages; the relay admits sealed messages to us only with it.
pub(crate) fn access_key(conn: &Connection) -> Result<[u8; ACCESS_KEY_LEN]> {
    if let Some(v) = get(conn, ACCESS_KEY)? {
        return v
            .try_into()
            .map_err(|_| Error::Storage("stored access key is malformed".into()));
    }
    let mut key = [0u8; ACCESS_KEY_LEN];
    rand::rng().fill_bytes(&mut key);
    put(conn, ACCESS_KEY, &key)?;
    Ok(key)
}

/// Replaces this account's access key (`crate::access_key`).
pub(crate) fn set_access_key(conn: &Connection, key: &[u8; ACCESS_KEY_LEN]) -> Result<()> {
    put(conn, ACCESS_KEY, key)
}

/// The access key the relay last confirmed for this account.
pub(crate) fn access_key_at_relay(conn: &Connection) -> Result<Option<[u8; ACCESS_KEY_LEN]>> {
    Ok(get(conn, ACCESS_KEY_AT_RELAY)?.and_then(|v| v.try_into().ok()))
}

pub(crate) fn set_access_key_at_relay(conn: &Connection, key: &[u8; ACCESS_KEY_LEN]) -> Result<()> {
    put(conn, ACCESS_KEY_AT_RELAY, key)
}

pub(crate) fn trust_root(conn: &Connection) -> Result<Option<Vec<u8>>> {
    get(conn, TRUST_ROOT)
}

pub(crate) fn set_trust_root(conn: &Connection, key: &[u8]) -> Result<()> {
    put(conn, TRUST_ROOT, key)
}

pub(crate) fn sender_certificate(conn: &Connection) -> Result<Option<Vec<u8>>> {
    get(conn, SENDER_CERTIFICATE)
}

pub(crate) fn set_sender_certificate(conn: &Connection, cert: &[u8]) -> Result<()> {
    put(conn, SENDER_CERTIFICATE, cert)
}

/// The push endpoint the relay is to hear about at each login: a URL to
/// register, or `""` for a clear it has not confirmed yet; `None` when there
/// is nothing to tell it.
pub(crate) fn push_endpoint(conn: &Connection) -> Result<Option<String>> {
    get(conn, PUSH_ENDPOINT)?
        .map(|v| {
            String::from_utf8(v)
                .map_err(|_| Error::Storage("stored push endpoint is malformed".into()))
        })
        .transpose()
}

/// Remembers a push endpoint to register (`""`: to clear).
pub(crate) fn set_push_endpoint(conn: &Connection, url: &str) -> Result<()> {
    put(conn, PUSH_ENDPOINT, url.as_bytes())
}

/// Forgets the push endpoint if it is still `url`: the relay confirmed a clear,
/// or refused the URL for good.
pub(crate) fn forget_push_endpoint(conn: &Connection, url: &str) -> Result<()> {
    conn.prepare_cached("DELETE FROM settings WHERE name = ?1 AND value = ?2")?
        .execute(params![PUSH_ENDPOINT, url.as_bytes()])?;
    Ok(())
}

/// The settings the hot paths read, kept in memory beside the store: the
/// access key, the sender certificate (with its expiry) and the trust root.
pub(crate) struct Cached {
    pub access_key: [u8; ACCESS_KEY_LEN],
    /// The key the relay last confirmed: when it is not `access_key`, the
    /// relay is to be told before the outbox goes.
    pub access_key_at_relay: Option<[u8; ACCESS_KEY_LEN]>,
    pub sender_certificate: Option<(Vec<u8>, i64)>,
    pub trust_root: Option<Vec<u8>>,
}

impl Cached {
    /// Reads them (making the access key if this store has none yet).
    pub(crate) fn load(conn: &Connection) -> Result<Self> {
        let sender_certificate = sender_certificate(conn)?.and_then(|c| {
            let expires = certificate_expiry(&c)?;
            Some((c, expires))
        });
        Ok(Cached {
            access_key: access_key(conn)?,
            access_key_at_relay: access_key_at_relay(conn)?,
            sender_certificate,
            trust_root: trust_root(conn)?,
        })
    }
}

/// A sender certificate's expiry in ms since the epoch, if it parses.
pub(crate) fn certificate_expiry(cert: &[u8]) -> Option<i64> {
    let c = libsignal_protocol::SenderCertificate::deserialize(cert).ok()?;
    let exp = c.expiration().ok()?;
    Some(i64::try_from(exp.epoch_millis()).unwrap_or(i64::MAX))
}
