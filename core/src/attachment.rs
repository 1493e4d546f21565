//! Attachments: a file encrypted on the device under a fresh random key
//! (AES-256-GCM-SIV), padded so its blob reveals only a coarse size, and named
//! at the relay by the SHA-256 of that blob. The [`AttachmentPointer`] — address,
//! key, plaintext digest, size, type and name — travels only inside end-to-end
//! encrypted content. Pure functions: the transport moves the blobs.

use std::fmt;

use aes_gcm_siv::aead::{Aead, KeyInit};
use aes_gcm_siv::{Aes256GcmSiv, Nonce};
use rand::RngCore;
use rankfile_proto::v1 as pb;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// Largest file accepted, in bytes: well under the relay's default blob limit
/// (100 MB) after padding, and small enough to hold in a phone's memory.
pub const MAX_ATTACHMENT_LEN: u64 = 64 * 1024 * 1024;
/// Most attachments on one message.
pub const MAX_ATTACHMENTS: usize = 32;
/// Longest file name, in bytes of UTF-8.
pub const MAX_FILE_NAME_LEN: usize = 255;
/// Longest content type, in bytes.
pub const MAX_CONTENT_TYPE_LEN: usize = 127;
/// Bytes of an attachment key (AES-256).
const KEY_LEN: usize = 32;
/// Bytes of the nonce at the head of a blob.
const NONCE_LEN: usize = 12;
/// Bytes of the authentication tag at the end of a blob.
const TAG_LEN: usize = 16;
/// Bytes of a SHA-256 address or digest.
pub const DIGEST_LEN: usize = 32;
/// Files are padded to at least this many bytes.
const MIN_PADDED: u64 = 541;

/// Where an attachment is and how to open it. The key never leaves the core:
/// `Debug` shows only the address, and equality compares the key in constant time.
#[derive(Clone)]
pub struct AttachmentPointer {
    pub(crate) address: [u8; DIGEST_LEN],
    pub(crate) key: Zeroizing<[u8; KEY_LEN]>,
    pub(crate) digest: [u8; DIGEST_LEN],
    pub(crate) size: u64,
    pub(crate) content_type: String,
    pub(crate) file_name: String,
}

impl AttachmentPointer {
    /// The blob's address at the relay (SHA-256 of the encrypted blob).
    pub fn address(&self) -> [u8; DIGEST_LEN] {
        self.address
    }
    /// The file's size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }
    /// The MIME type the sender gave.
    pub fn content_type(&self) -> &str {
        &self.content_type
    }
    /// The file name the sender gave (never a path).
    pub fn file_name(&self) -> &str {
        &self.file_name
    }

    /// The blob's exact length: nonce, padded plaintext, tag.
    pub(crate) fn blob_len(&self) -> u64 {
        NONCE_LEN as u64 + padded_len(self.size) + TAG_LEN as u64
    }

    pub(crate) fn to_wire(&self) -> pb::AttachmentPointer {
        pb::AttachmentPointer {
            address: self.address.to_vec(),
            key: self.key.to_vec(),
            digest: self.digest.to_vec(),
            size: self.size,
            content_type: self.content_type.clone(),
            file_name: self.file_name.clone(),
        }
    }

    /// Reads and checks a pointer from received content.
    pub(crate) fn from_wire(p: &pb::AttachmentPointer) -> Result<Self> {
        let fixed = |b: &[u8], what: &'static str| -> Result<[u8; DIGEST_LEN]> {
            b.try_into().map_err(|_| Error::InvalidContent(what))
        };
        let key = Zeroizing::new(fixed(&p.key, "bad attachment key")?);
        if p.size > MAX_ATTACHMENT_LEN {
            return Err(Error::InvalidContent("attachment too large"));
        }
        check_names(&p.content_type, &p.file_name)
            .map_err(|_| Error::InvalidContent("bad attachment name or type"))?;
        Ok(AttachmentPointer {
            address: fixed(&p.address, "bad attachment address")?,
            key,
            digest: fixed(&p.digest, "bad attachment digest")?,
            size: p.size,
            content_type: p.content_type.clone(),
            file_name: p.file_name.clone(),
        })
    }
}

impl fmt::Debug for AttachmentPointer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AttachmentPointer")
            .field("address", &hex::encode(&self.address[..8]))
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl PartialEq for AttachmentPointer {
    fn eq(&self, other: &Self) -> bool {
        bool::from(self.key.ct_eq(&*other.key))
            && self.address == other.address
            && self.digest == other.digest
            && self.size == other.size
            && self.content_type == other.content_type
            && self.file_name == other.file_name
    }
}

impl Eq for AttachmentPointer {}

/// Checks a content type (printable ASCII) and a file name (no directories,
/// no control characters), each within its limit.
pub(crate) fn check_names(content_type: &str, file_name: &str) -> Result<()> {
    if content_type.len() > MAX_CONTENT_TYPE_LEN
        || !content_type.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(Error::InvalidAttachment("bad content type"));
    }
    if file_name.len() > MAX_FILE_NAME_LEN
        || file_name == "."
        || file_name == ".."
        || file_name
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_control())
    {
        return Err(Error::InvalidAttachment("bad file name"));
    }
    Ok(())
}

/// The padded length of a file of `size` bytes: the next power of 1.05 (at
/// least [`MIN_PADDED`]), so a blob's length says little about the file's.
fn padded_len(size: u64) -> u64 {
    let size = size.max(MIN_PADDED);
    // Exact in f64 for every size up to MAX_ATTACHMENT_LEN.
    let exp = ((size as f64).ln() / 1.05f64.ln()).ceil();
    let padded = 1.05f64.powf(exp).floor() as u64;
    padded.max(size)
}

/// Encrypts a file. Returns its pointer and the blob to upload.
pub fn encrypt(
    plaintext: &[u8],
    content_type: &str,
    file_name: &str,
) -> Result<(AttachmentPointer, Vec<u8>)> {
    let size = plaintext.len() as u64;
    if size > MAX_ATTACHMENT_LEN {
        return Err(Error::InvalidAttachment("file too large"));
    }
    check_names(content_type, file_name)?;
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    rand::rng().fill_bytes(&mut key[..]);
    let mut nonce = [0u8; NONCE_LEN];
    rand::rng().fill_bytes(&mut nonce);
    let cipher = Aes256GcmSiv::new_from_slice(&key[..])
        .map_err(|_| Error::InvalidAttachment("bad key length"))?;
    let padded_size = usize::try_from(padded_len(size))
        .map_err(|_| Error::InvalidAttachment("file too large"))?;
    let mut padded = Zeroizing::new(Vec::with_capacity(padded_size));
    padded.extend_from_slice(plaintext);
    padded.resize(padded_size, 0);
    let sealed = cipher
        .encrypt(Nonce::from_slice(&nonce), padded.as_slice())
        .map_err(|_| Error::InvalidAttachment("encryption failed"))?;
    let mut blob = Vec::with_capacity(NONCE_LEN + sealed.len());
    blob.extend_from_slice(&nonce);
    blob.extend_from_slice(&sealed);
    let pointer = AttachmentPointer {
        address: Sha256::digest(&blob).into(),
        key,
        digest: Sha256::digest(plaintext).into(),
        size,
        content_type: content_type.to_string(),
        file_name: file_name.to_string(),
    };
    Ok((pointer, blob))
}

/// Checks a downloaded blob against its pointer and decrypts it: the address
/// (so the relay cannot swap blobs), the tag (so nobody without the key can
/// forge one), then the plaintext's size and digest.
pub fn decrypt(pointer: &AttachmentPointer, blob: &[u8]) -> Result<Vec<u8>> {
    if blob.len() as u64 != pointer.blob_len() {
        return Err(Error::InvalidAttachment("blob of the wrong length"));
    }
    let address: [u8; DIGEST_LEN] = Sha256::digest(blob).into();
    if address != pointer.address {
        return Err(Error::InvalidAttachment("blob does not match its address"));
    }
    let cipher = Aes256GcmSiv::new_from_slice(&pointer.key[..])
        .map_err(|_| Error::InvalidAttachment("bad key length"))?;
    let (nonce, sealed) = blob.split_at(NONCE_LEN);
    let mut padded = cipher
        .decrypt(Nonce::from_slice(nonce), sealed)
        .map_err(|_| Error::InvalidAttachment("blob does not decrypt"))?;
    let size =
        usize::try_from(pointer.size).map_err(|_| Error::InvalidAttachment("file too large"))?;
    if padded.len() < size || padded[size..].iter().any(|b| *b != 0) {
        return Err(Error::InvalidAttachment("bad padding"));
    }
    padded.truncate(size);
    let digest: [u8; DIGEST_LEN] = Sha256::digest(&padded).into();
    if digest != pointer.digest {
        return Err(Error::InvalidAttachment("file does not match its digest"));
    }
    Ok(padded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_round_trips_and_its_blob_is_padded() {
        for len in [0usize, 1, 540, 541, 542, 10_000, 100_000] {
            let file: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let (p, blob) = encrypt(&file, "application/pdf", "minutes.pdf").expect("encrypt");
            assert_eq!(blob.len() as u64, p.blob_len());
            assert!(padded_len(len as u64) >= len as u64);
            assert!(padded_len(len as u64) <= (len as u64).max(MIN_PADDED) * 106 / 100);
            assert_eq!(decrypt(&p, &blob).expect("decrypt"), file);
            let back = AttachmentPointer::from_wire(&p.to_wire()).expect("wire");
            assert_eq!(back, p);
        }
        // Files of nearby sizes share a blob length.
        let (a, _) = encrypt(&[1u8; 5000], "", "a").expect("a");
        let (b, _) = encrypt(&[1u8; 5010], "", "b").expect("b");
        assert_eq!(a.blob_len(), b.blob_len());
    }

    #[test]
    fn a_changed_blob_or_a_wrong_key_is_refused() {
        let (p, blob) = encrypt(b"strike fund ledger", "text/plain", "ledger.txt").expect("enc");
        let mut flipped = blob.clone();
        flipped[20] ^= 1;
        assert!(matches!(
            decrypt(&p, &flipped),
            Err(Error::InvalidAttachment(_))
        ));
        // A blob that matches a forged address still needs the key.
        let mut forged = p.clone();
        forged.address = Sha256::digest(&flipped).into();
        assert!(matches!(
            decrypt(&forged, &flipped),
            Err(Error::InvalidAttachment("blob does not decrypt"))
        ));
        let mut wrong_key = p.clone();
        wrong_key.key[0] ^= 1;
        assert!(matches!(
            decrypt(&wrong_key, &blob),
            Err(Error::InvalidAttachment("blob does not decrypt"))
        ));
        assert!(matches!(
            decrypt(&p, &blob[..blob.len() - 1]),
            Err(Error::InvalidAttachment(_))
        ));
        let mut lying = p.clone();
        lying.digest[0] ^= 1;
        assert!(matches!(
            decrypt(&lying, &blob),
            Err(Error::InvalidAttachment("file does not match its digest"))
        ));
    }

    #[test]
    fn names_are_checked_and_debug_hides_the_key() {
        for bad in ["../etc/passwd", "a/b", "a\\b", "..", "line\nbreak"] {
            assert!(encrypt(b"x", "text/plain", bad).is_err(), "{bad}");
        }
        assert!(encrypt(b"x", "text plain", "ok.txt").is_err());
        let (p, _) = encrypt(b"x", "text/plain", "ok.txt").expect("ok");
        let shown = format!("{p:?}");
        assert!(!shown.contains(&hex::encode(&p.key[..])));
        let mut wire = p.to_wire();
        wire.key.truncate(31);
        assert!(matches!(
            AttachmentPointer::from_wire(&wire),
            Err(Error::InvalidContent(_))
        ));
    }
}
