//! Safety numbers: libsignal fingerprints over two accounts' IDs and identity
//! keys, shown as 60 digits and as a QR payload. Both sides compute the same
//! digits; scanning the other phone's QR code checks them without reading.

use libsignal_protocol::{Fingerprint, IdentityKey};

use crate::account_id::AccountId;
use crate::error::{Error, Result};

/// Fingerprint format version (libsignal's scannable version 2).
const FINGERPRINT_VERSION: u32 = 2;
/// Hash iterations, as libsignal's clients use.
const FINGERPRINT_ITERATIONS: u32 = 5200;

/// The safety number between this account and a contact.
#[derive(Clone, PartialEq, Eq)]
pub struct SafetyNumber {
    /// 60 digits in twelve groups of five, identical on both phones.
    pub digits: String,
    /// What this phone shows as a QR code for the other to scan.
    pub scannable: Vec<u8>,
    fingerprint_bytes: Vec<u8>,
}

impl std::fmt::Debug for SafetyNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SafetyNumber({})", self.digits)
    }
}

impl SafetyNumber {
    pub(crate) fn compute(
        local: &AccountId,
        local_key: &IdentityKey,
        remote: &AccountId,
        remote_key: &IdentityKey,
    ) -> Result<Self> {
        let fp = Fingerprint::new(
            FINGERPRINT_VERSION,
            FINGERPRINT_ITERATIONS,
            local.as_bytes(),
            local_key,
            remote.as_bytes(),
            remote_key,
        )
        .map_err(|e| Error::Protocol(e.to_string()))?;
        let raw = fp
            .display_string()
            .map_err(|e| Error::Protocol(e.to_string()))?;
        let digits = raw
            .as_bytes()
            .chunks(5)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        let scannable = fp
            .scannable
            .serialize()
            .map_err(|e| Error::Protocol(e.to_string()))?;
        Ok(SafetyNumber {
            digits,
            scannable: scannable.clone(),
            fingerprint_bytes: scannable,
        })
    }

    /// Whether `scanned` (the other phone's QR payload) matches this number.
    pub fn matches_scanned(&self, scanned: &[u8]) -> Result<bool> {
        let ours = libsignal_protocol::ScannableFingerprint::deserialize(&self.fingerprint_bytes)
            .map_err(|e| Error::Protocol(e.to_string()))?;
        match ours.compare(scanned) {
            Ok(m) => Ok(m),
            // Garbage from the camera is a mismatch, not a failure.
            Err(_) => Ok(false),
        }
    }
}
