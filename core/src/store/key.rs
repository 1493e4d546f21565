//! The database key: 32 bytes from the OS keystore, kept in one place on the
//! heap and zeroized when dropped.

use std::fmt;

use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, Result};

/// Length of a database key.
pub const DATABASE_KEY_LEN: usize = 32;

/// The 32-byte key that encrypts a store. There is no default: on phones it
/// comes from the Android Keystore or the iOS Keychain, on the desktop from a
/// passphrase. Its `Debug` shows a short hash, never the key.
///
/// Not `Clone`: every copy of a key is one more place memory must be wiped.
/// The bytes live in a box, so moving a key moves a pointer and leaves no
/// stale copy of the bytes behind on the stack.
///
/// ```compile_fail
/// fn copy(key: &rankfile_core::DatabaseKey) -> rankfile_core::DatabaseKey {
///     key.clone()
/// }
/// ```
pub struct DatabaseKey(Box<[u8; DATABASE_KEY_LEN]>);

impl DatabaseKey {
    /// Wraps 32 key bytes. The caller's array is a copy the caller must wipe;
    /// [`DatabaseKey::fill`] writes a key in place instead.
    pub fn new(bytes: [u8; DATABASE_KEY_LEN]) -> Self {
        DatabaseKey(Box::new(bytes))
    }

    /// A key written in place by `write` (a key derivation, a read from the
    /// keystore), so no copy of it exists outside this key. If `write`
    /// fails, what it wrote is wiped.
    pub fn fill<E>(
        write: impl FnOnce(&mut [u8; DATABASE_KEY_LEN]) -> std::result::Result<(), E>,
    ) -> std::result::Result<Self, E> {
        let mut key = DatabaseKey(Box::new([0u8; DATABASE_KEY_LEN]));
        write(&mut key.0)?;
        Ok(key)
    }

    /// Reads a key from a slice, checking its length.
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        if bytes.len() != DATABASE_KEY_LEN {
            return Err(Error::DatabaseKeyLength(bytes.len()));
        }
        Self::fill(|k| {
            k.copy_from_slice(bytes);
            Ok(())
        })
    }

    /// A fresh random key (tests, and apps that make the key themselves before
    /// handing it to the keystore).
    pub fn generate() -> Self {
        let mut key = DatabaseKey(Box::new([0u8; DATABASE_KEY_LEN]));
        rand::Rng::fill(&mut rand::rng(), &mut key.0[..]);
        key
    }

    /// The key's bytes, for handing a key this side generated to the OS
    /// keystore (or, in tests, to another process). Keep the borrow short.
    pub fn expose_for_keystore(&self) -> &[u8; DATABASE_KEY_LEN] {
        &self.0
    }

    /// A second key with the same bytes, for the one place in the store that
    /// must open a connection later on its own (the checkpointer). Crate-only,
    /// so that outside the store a key has exactly one owner.
    pub(crate) fn duplicate(&self) -> Self {
        let mut key = DatabaseKey(Box::new([0u8; DATABASE_KEY_LEN]));
        key.0.copy_from_slice(&self.0[..]);
        key
    }

    /// The text that keys a SQLCipher connection with this raw key, `x'…'`
    /// (so SQLCipher skips its passphrase KDF), for `sqlite3_key_v2`
    /// (`open.rs`): built in one buffer sized once (no reallocation leaves a
    /// copy behind) and zeroized when dropped. It never passes through SQL,
    /// so SQLite's parser and statements never hold a copy: SQLCipher copies
    /// it into its own private heap, locked and wiped when freed, and keeps
    /// it there for as long as the connection is open (it needs it for every
    /// page).
    pub(crate) fn raw_key_text(&self) -> Zeroizing<Vec<u8>> {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut s = Zeroizing::new(Vec::with_capacity(3 + 2 * DATABASE_KEY_LEN));
        s.extend_from_slice(b"x'");
        for b in self.0.iter() {
            s.push(HEX[usize::from(b >> 4)]);
            s.push(HEX[usize::from(b & 15)]);
        }
        s.push(b'\'');
        s
    }
}

impl Drop for DatabaseKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for DatabaseKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digest = Sha256::digest(&self.0[..]);
        write!(f, "DatabaseKey(sha256:{})", hex::encode(&digest[..4]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_does_not_show_the_key() {
        let key = DatabaseKey::new([0xab; 32]);
        let shown = format!("{key:?}");
        assert!(!shown.contains("abab"), "{shown}");
        assert!(shown.starts_with("DatabaseKey(sha256:"));
    }

    #[test]
    fn wrong_length_is_refused() {
        assert!(matches!(
            DatabaseKey::from_slice(&[1; 31]),
            Err(Error::DatabaseKeyLength(31))
        ));
        let key = DatabaseKey::from_slice(&[1; 32]).expect("32 bytes");
        assert_eq!(key.expose_for_keystore(), &[1; 32]);
    }

    #[test]
    fn the_raw_key_text_is_the_hex_and_sized_once() {
        let key = DatabaseKey::new([0x0f; 32]);
        let s = key.raw_key_text();
        assert_eq!(&s[..], format!("x'{}'", "0f".repeat(32)).as_bytes());
        // Filled without growing: no reallocation left a copy behind.
        assert_eq!(s.len(), s.capacity());
    }

    #[test]
    fn fill_writes_in_place_and_a_failure_gives_no_key() {
        let key = DatabaseKey::fill(|k| {
            k[0] = 7;
            Ok::<(), ()>(())
        })
        .expect("filled");
        assert_eq!(key.expose_for_keystore()[0], 7);
        assert!(DatabaseKey::fill(|_| Err::<(), _>("no keystore")).is_err());
        assert_eq!(
            key.duplicate().expose_for_keystore(),
            key.expose_for_keystore()
        );
    }
}
