//! What deleting the account at the relay needs from the store: the
//! attachments this device uploaded, each with the key that deletes it there,
//! and the flag that says the relay account is gone (so the device never logs
//! in again and re-registers it).
//!
//! The local store itself is the user's: deleting the relay account leaves
//! history readable here until `wipe`.

use rand::RngCore;
use rusqlite::params;
use zeroize::Zeroizing;

use crate::account::Account;
use crate::error::{Error, Result};
use crate::settings;

/// Bytes of an attachment's delete key.
pub(crate) const DELETE_KEY_LEN: usize = 32;

/// `settings` name of the flag set once the relay confirmed the deletion.
const RELAY_ACCOUNT_DELETED: &str = "relay_account_deleted";

/// A fresh delete key for one upload.
pub(crate) fn new_delete_key() -> Zeroizing<[u8; DELETE_KEY_LEN]> {
    let mut key = Zeroizing::new([0u8; DELETE_KEY_LEN]);
    rand::rng().fill_bytes(&mut key[..]);
    key
}

/// An uploaded attachment and its delete key.
pub(crate) type OwnedUpload = ([u8; 32], Zeroizing<[u8; DELETE_KEY_LEN]>);

impl Account {
    /// Remembers an upload the relay confirmed, and forgets those the relay
    /// has dropped by now, in one transaction.
    pub(crate) fn record_upload(
        &mut self,
        address: [u8; 32],
        delete_key: &[u8; DELETE_KEY_LEN],
        expires_at_ms: u64,
    ) -> Result<()> {
        let now = self.clock.now_ms();
        let expires = i64::try_from(expires_at_ms).unwrap_or(i64::MAX);
        let tx = self.store.write()?;
        tx.prepare_cached("DELETE FROM uploaded_attachments WHERE expires_at_ms <= ?1")?
            .execute(params![now])?;
        tx.prepare_cached(
            "INSERT OR REPLACE INTO uploaded_attachments (address, delete_key, expires_at_ms) \
             VALUES (?1, ?2, ?3)",
        )?
        .execute(params![&address[..], &delete_key[..], expires])?;
        tx.commit()
    }

    /// The uploads the relay may still hold, with their delete keys.
    pub(crate) fn owned_uploads(&self) -> Result<Vec<OwnedUpload>> {
        let now = self.clock.now_ms();
        let conn = self.store.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT address, delete_key FROM uploaded_attachments WHERE expires_at_ms > ?1",
        )?;
        let rows = stmt.query_map(params![now], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                Zeroizing::new(r.get::<_, Vec<u8>>(1)?),
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (address, key) = row?;
            let address: [u8; 32] = address
                .try_into()
                .map_err(|_| Error::Storage("stored upload address is malformed".into()))?;
            let mut k = Zeroizing::new([0u8; DELETE_KEY_LEN]);
            if key.len() != DELETE_KEY_LEN {
                return Err(Error::Storage("stored delete key is malformed".into()));
            }
            k.copy_from_slice(&key);
            out.push((address, k));
        }
        Ok(out)
    }

    /// Records that the relay deleted this account: it never connects again,
    /// and the delete keys, of no use now, are gone (one transaction).
    pub(crate) fn forget_relay_account(&mut self) -> Result<()> {
        let tx = self.store.write()?;
        tx.prepare_cached("DELETE FROM uploaded_attachments")?
            .execute([])?;
        settings::put(&tx, RELAY_ACCOUNT_DELETED, &[1])?;
        tx.commit()
    }

    /// Whether this account was deleted at its relay.
    #[cfg_attr(feature = "testing", rankfile_testing_pub::public)]
    pub(crate) fn relay_account_deleted(&self) -> Result<bool> {
        Ok(settings::get(self.store.conn(), RELAY_ACCOUNT_DELETED)?.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::AccountOptions;
    use crate::clock::Clock;
    use crate::store::DatabaseKey;
    use std::sync::atomic::{AtomicI64, Ordering};
    use std::sync::Arc;

    #[test]
    fn uploads_are_kept_until_they_expire_and_gone_after_deletion() {
        let offset = Arc::new(AtomicI64::new(0));
        let dir = tempfile::tempdir().expect("tempdir");
        let options = AccountOptions::default().with_clock(Clock::shifted(offset.clone()));
        let mut a =
            Account::create_with(&dir.path().join("a.db"), &DatabaseKey::generate(), &options)
                .expect("account");
        let now = a.clock.now_u64();
        let key = new_delete_key();
        a.record_upload([1; 32], &key, now + 1000).expect("record");
        a.record_upload([2; 32], &new_delete_key(), now + 10_000)
            .expect("record");
        let owned = a.owned_uploads().expect("owned");
        assert_eq!(owned.len(), 2);
        assert!(owned
            .iter()
            .any(|(addr, k)| *addr == [1; 32] && k[..] == key[..]));
        offset.store(5000, Ordering::SeqCst);
        assert_eq!(a.owned_uploads().expect("owned").len(), 1);
        assert!(!a.relay_account_deleted().expect("flag"));
        a.forget_relay_account().expect("forget");
        assert!(a.relay_account_deleted().expect("flag"));
        assert!(a.owned_uploads().expect("owned").is_empty());
    }
}
