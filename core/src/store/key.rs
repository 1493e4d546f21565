//! The database key: 32 bytes from the OS keystore, zeroized when dropped.

use std::fmt;

use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::{Error, Result};

/// Length of a database key.
pub const DATABASE_KEY_LEN: usize = 32;

/// The 32-byte key that encrypts a store. There is no default: on phones it
/// comes from the Android Keystore or the iOS Keychain, on the desktop from a
/// passphrase. Its `Debug` shows a short hash, never the key.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct DatabaseKey([u8; DATABASE_KEY_LEN]);

impl DatabaseKey {
    /// Wraps 32 key bytes.
    pub fn new(bytes: [u8; DATABASE_KEY_LEN]) -> Self {
        DatabaseKey(bytes)
    }

    /// Reads a key from a slice, checking its length.
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        let arr: [u8; DATABASE_KEY_LEN] = bytes
            .try_into()
            .map_err(|_| Error::DatabaseKeyLength(bytes.len()))?;
        Ok(DatabaseKey(arr))
    }

    /// A fresh random key (tests, and apps that make the key themselves before
    /// handing it to the keystore).
    pub fn generate() -> Self {
        let mut bytes = [0u8; DATABASE_KEY_LEN];
        rand::Rng::fill(&mut rand::rng(), &mut bytes);
        DatabaseKey(bytes)
    }

    /// The key's bytes, for handing a key this side generated to the OS
    /// keystore (or, in tests, to another process). Keep the borrow short.
    pub fn expose_for_keystore(&self) -> &[u8; DATABASE_KEY_LEN] {
        &self.0
    }

    /// The SQLCipher `PRAGMA key` value: a raw key (`x'…'`), so SQLCipher skips
    /// its passphrase KDF. The string is zeroized when dropped.
    pub(crate) fn pragma_value(&self) -> Zeroizing<String> {
        let mut s = Zeroizing::new(String::with_capacity(3 + 2 * DATABASE_KEY_LEN + 1));
        s.push_str("x'");
        for b in self.0 {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            s.push(HEX[usize::from(b >> 4)] as char);
            s.push(HEX[usize::from(b & 15)] as char);
        }
        s.push('\'');
        s
    }
}

impl fmt::Debug for DatabaseKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digest = Sha256::digest(self.0);
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
        assert!(DatabaseKey::from_slice(&[1; 32]).is_ok());
    }

    #[test]
    fn pragma_is_raw_hex() {
        let key = DatabaseKey::new([0x0f; 32]);
        let p = key.pragma_value();
        assert_eq!(p.len(), 2 + 64 + 1);
        assert!(p.starts_with("x'0f0f"));
    }
}
