//! The duress passphrase's verifier: `home/duress`, 32 bytes beside the salt,
//! checked before the store is opened. Typed at any unlock, the duress
//! passphrase wipes the home and is then answered as a wrong passphrase is.
//!
//! The verifier is SHA-256 over a domain label and the key the duress
//! passphrase derives (Argon2id with the home's salt and cost). Every unlock
//! derives the key of what was typed once, hashes it and compares the hash
//! with the verifier in constant time, so an unlock costs the same work
//! whether or not the duress passphrase was typed, and whether or not one is
//! set. Guessing the duress passphrase from a copied disk costs what guessing
//! the real one costs (an Argon2id per guess), and finding it reveals nothing
//! of the store.
//!
//! The file is always there: without a duress passphrase it holds 32 random
//! bytes, which no one can tell from a verifier (SHA-256 output), so a seized
//! home does not say whether typing the wrong thing destroys it. Homes made
//! before the file existed get one, random, at their next unlock.

use std::io::Write;
use std::path::Path;

use rand::RngCore;
use rankfile_core::DatabaseKey;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{CliError, Result};

/// Bytes of the verifier.
pub const VERIFIER_LEN: usize = 32;
/// Separates the verifier's hash from any other use of the key.
const DOMAIN: &[u8] = b"rankfile duress passphrase verifier v1";

/// What the verifier file holds.
pub struct Verifier([u8; VERIFIER_LEN]);

impl Verifier {
    /// A verifier that nothing matches, indistinguishable from a real one:
    /// what a home without a duress passphrase holds.
    pub fn unset() -> Self {
        let mut bytes = [0u8; VERIFIER_LEN];
        rand::rng().fill_bytes(&mut bytes);
        Verifier(bytes)
    }

    /// The verifier of the duress passphrase whose key is `key`.
    pub fn for_key(key: &DatabaseKey) -> Self {
        Verifier(tag(key))
    }

    /// Whether `key` (derived from what was typed) is the duress passphrase's.
    /// Constant time in the key and the verifier.
    pub fn matches(&self, key: &DatabaseKey) -> bool {
        tag(key).ct_eq(&self.0).into()
    }

    /// Reads the verifier; `None` when the home has none yet (made before
    /// duress passphrases existed).
    pub fn load(path: &Path) -> Result<Option<Self>> {
        match std::fs::read(path) {
            Ok(bytes) => {
                let bytes: [u8; VERIFIER_LEN] = bytes.as_slice().try_into().map_err(|_| {
                    CliError::Other(format!(
                        "{} is damaged ({} bytes, expected {VERIFIER_LEN})",
                        path.display(),
                        bytes.len()
                    ))
                })?;
                Ok(Some(Verifier(bytes)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(CliError::io(format!("reading {}", path.display()))(e)),
        }
    }

    /// Replaces the verifier file whole: written to a temporary file beside
    /// it, flushed, then renamed over it, so a crash leaves the old verifier
    /// or the new one, never a torn one.
    pub fn save(&self, path: &Path) -> Result<()> {
        let what = || format!("writing {}", path.display());
        let dir = path
            .parent()
            .ok_or_else(|| CliError::Other(format!("{} has no directory", path.display())))?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(CliError::io(what()))?;
        tmp.write_all(&self.0)
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(CliError::io(what()))?;
        tmp.persist(path)
            .map_err(|e| CliError::io(what())(e.error))?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

fn tag(key: &DatabaseKey) -> [u8; VERIFIER_LEN] {
    let mut h = Sha256::new();
    h.update(DOMAIN);
    h.update(key.expose_for_keystore());
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_duress_key_matches_and_unset_matches_nothing() {
        let duress = DatabaseKey::new([1; 32]);
        let real = DatabaseKey::new([2; 32]);
        let v = Verifier::for_key(&duress);
        assert!(v.matches(&duress));
        assert!(!v.matches(&real));
        let unset = Verifier::unset();
        assert!(!unset.matches(&duress) && !unset.matches(&real));
    }

    #[test]
    fn saved_and_loaded_whole_and_a_damaged_file_is_an_error() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("duress");
        assert!(Verifier::load(&path).expect("load").is_none());
        let key = DatabaseKey::new([3; 32]);
        Verifier::for_key(&key).save(&path).expect("save");
        assert!(Verifier::load(&path)
            .expect("load")
            .expect("there")
            .matches(&key));
        Verifier::unset().save(&path).expect("replace");
        assert_eq!(std::fs::read(&path).expect("read").len(), VERIFIER_LEN);
        assert!(!Verifier::load(&path)
            .expect("load")
            .expect("there")
            .matches(&key));
        std::fs::write(&path, [0u8; 5]).expect("damage");
        assert!(Verifier::load(&path).is_err());
    }
}
