//! Account IDs: the hash of an account's public identity key.
//!
//! Nobody, the relay included, can put another key behind an ID: every key that
//! arrives (in a bundle, a prekey message, a relay login) is hashed and compared
//! with the ID it claims. People see the ID as a short text with a checksum, so a
//! mistyped or misread ID is caught rather than naming somebody else.

use std::fmt;

use libsignal_protocol::IdentityKey;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

pub use rankfile_proto::wire::ACCOUNT_ID_LEN;

/// Domain separation for the account-ID hash.
const ACCOUNT_ID_DOMAIN: &[u8] = b"rankfile account id v1";
/// Domain separation for the text form's checksum.
const CHECKSUM_DOMAIN: &[u8] = b"rankfile account id checksum v1";
/// Prefix of the text form; the version digit lets the form change later.
const TEXT_PREFIX: &str = "rf1";
/// Characters of base32 for the 20 ID bytes (160 bits / 5).
const BODY_CHARS: usize = 32;
/// Checksum characters (15 bits): a random typo passes with odds 1 in 32,768.
const CHECK_CHARS: usize = 3;
/// Characters per group in the text form.
const GROUP: usize = 5;

/// An account's ID: the first 20 bytes of SHA-256 over its public identity key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId([u8; ACCOUNT_ID_LEN]);

impl AccountId {
    /// The ID that belongs to `identity_key`.
    pub fn from_identity_key(identity_key: &IdentityKey) -> Self {
        let mut h = Sha256::new();
        h.update(ACCOUNT_ID_DOMAIN);
        h.update(identity_key.serialize());
        let digest = h.finalize();
        let mut id = [0u8; ACCOUNT_ID_LEN];
        id.copy_from_slice(&digest[..ACCOUNT_ID_LEN]);
        AccountId(id)
    }

    /// Whether `identity_key` is the key this ID was made from.
    pub fn matches(&self, identity_key: &IdentityKey) -> bool {
        // Both sides are public, so an ordinary comparison is fine.
        Self::from_identity_key(identity_key) == *self
    }

    /// The raw 20 bytes.
    pub fn as_bytes(&self) -> &[u8; ACCOUNT_ID_LEN] {
        &self.0
    }

    /// Reads raw bytes, as carried in protobuf messages.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let id: [u8; ACCOUNT_ID_LEN] = bytes
            .try_into()
            .map_err(|_| Error::InvalidAccountId("wrong length"))?;
        Ok(AccountId(id))
    }

    /// The lower-case hex form: the name of the account in libsignal addresses
    /// and database keys.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Reads the hex form.
    pub fn from_hex(s: &str) -> Result<Self> {
        let bytes = hex::decode(s).map_err(|_| Error::InvalidAccountId("not hex"))?;
        Self::from_bytes(&bytes)
    }

    /// Parses the text form people see (`rf1-xxxxx-…`), ignoring case, spaces and
    /// dashes, and checks its checksum.
    pub fn parse(text: &str) -> Result<Self> {
        let cleaned: String = text
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .map(|c| c.to_ascii_lowercase())
            .collect();
        let rest = cleaned
            .strip_prefix(TEXT_PREFIX)
            .ok_or(Error::InvalidAccountId("does not start with rf1"))?;
        if rest.len() != BODY_CHARS + CHECK_CHARS {
            return Err(Error::InvalidAccountId("wrong length"));
        }
        let (body, check) = rest.split_at(BODY_CHARS);
        let bytes = crate::base32::decode(body).ok_or(Error::InvalidAccountId("not base32"))?;
        let id = Self::from_bytes(&bytes)?;
        if check != id.checksum() {
            return Err(Error::InvalidAccountId("checksum does not match"));
        }
        Ok(id)
    }

    fn checksum(&self) -> String {
        let mut h = Sha256::new();
        h.update(CHECKSUM_DOMAIN);
        h.update(self.0);
        let d = h.finalize();
        let bits = (u32::from(d[0]) << 16) | (u32::from(d[1]) << 8) | u32::from(d[2]);
        (0..CHECK_CHARS)
            .map(|i| crate::base32::ALPHABET[((bits >> (19 - 5 * i)) & 31) as usize] as char)
            .collect()
    }
}

impl fmt::Display for AccountId {
    /// `rf1-` then seven groups of five base32 characters, the last three of
    /// which are the checksum.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let chars = crate::base32::encode(&self.0) + &self.checksum();
        f.write_str(TEXT_PREFIX)?;
        for chunk in chars.as_bytes().chunks(GROUP) {
            f.write_str("-")?;
            f.write_str(std::str::from_utf8(chunk).map_err(|_| fmt::Error)?)?;
        }
        Ok(())
    }
}

impl fmt::Debug for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccountId({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libsignal_protocol::IdentityKeyPair;

    fn some_id() -> AccountId {
        let pair = IdentityKeyPair::generate(&mut rand::rng());
        AccountId::from_identity_key(pair.identity_key())
    }

    #[test]
    fn text_form_round_trips() {
        for _ in 0..50 {
            let id = some_id();
            let text = id.to_string();
            assert!(text.starts_with("rf1-"));
            assert_eq!(text.len(), 3 + 7 * 6);
            assert_eq!(AccountId::parse(&text).expect("parses"), id);
            assert_eq!(
                AccountId::parse(&text.to_uppercase().replace('-', " ")).expect("parses"),
                id
            );
            assert_eq!(AccountId::from_hex(&id.to_hex()).expect("hex"), id);
        }
    }

    #[test]
    fn a_changed_character_is_caught() {
        let id = some_id();
        let text = id.to_string();
        let mut caught = 0;
        let mut tried = 0;
        for (i, c) in text.char_indices().skip(4) {
            if c == '-' {
                continue;
            }
            let replacement = if c == 'a' { 'b' } else { 'a' };
            let mut changed = text.clone();
            changed.replace_range(i..i + 1, &replacement.to_string());
            tried += 1;
            if AccountId::parse(&changed).is_err() {
                caught += 1;
            }
        }
        // A single change passes the 15-bit checksum only by a 1-in-32,768 chance.
        assert!(caught >= tried - 1, "caught {caught} of {tried}");
    }

    #[test]
    fn garbage_is_a_typed_error() {
        for s in ["", "rf1", "rf2-aaaaa", "rf1-!!!!!", &"a".repeat(1000)] {
            assert!(matches!(
                AccountId::parse(s),
                Err(Error::InvalidAccountId(_))
            ));
        }
        assert!(AccountId::from_bytes(&[0; 19]).is_err());
    }

    #[test]
    fn id_is_bound_to_its_key() {
        let a = IdentityKeyPair::generate(&mut rand::rng());
        let b = IdentityKeyPair::generate(&mut rand::rng());
        let id = AccountId::from_identity_key(a.identity_key());
        assert!(id.matches(a.identity_key()));
        assert!(!id.matches(b.identity_key()));
    }
}
