//! Device authentication: a fresh challenge per connection, signed by the
//! device's identity key, whose hash must be the account ID it claims.
//!
//! Because the account ID is the hash of the identity key, the first login of a
//! device registers it and no later login can put another key behind the ID.

use libsignal_protocol::IdentityKey;
use rand::RngCore;
use sha2::{Digest, Sha256};

pub use rankfile_proto::auth_message;

use crate::limits::{ACCOUNT_ID_LEN, CHALLENGE_LEN, MAX_DEVICE_ID};
use crate::storage::{AccountId, MailboxId};

/// Domain separation for account IDs (the core's rule).
const ACCOUNT_ID_DOMAIN: &[u8] = b"rankfile account id v1";

/// A connection's challenge.
pub type Challenge = [u8; CHALLENGE_LEN];

/// Why a login was refused (said to the client in plain words).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The account ID is not 20 bytes.
    #[error("account id must be 20 bytes")]
    AccountIdLength,
    /// The device ID is not 1..=127.
    #[error("device id out of range")]
    DeviceId,
    /// The identity key did not parse.
    #[error("identity key did not parse")]
    IdentityKey,
    /// The identity key does not hash to the account ID.
    #[error("identity key does not belong to the account id")]
    WrongAccount,
    /// The signature does not verify over this connection's challenge.
    #[error("signature does not verify")]
    BadSignature,
}

/// A fresh random challenge.
pub fn new_challenge() -> Challenge {
    let mut c = [0u8; CHALLENGE_LEN];
    rand::rng().fill_bytes(&mut c);
    c
}

/// The account ID of an identity key: first 20 bytes of
/// SHA-256("rankfile account id v1" || serialized key).
pub fn account_id_for(identity_key: &IdentityKey) -> AccountId {
    let digest = Sha256::new()
        .chain_update(ACCOUNT_ID_DOMAIN)
        .chain_update(identity_key.serialize())
        .finalize();
    let mut id = [0u8; ACCOUNT_ID_LEN];
    id.copy_from_slice(&digest[..ACCOUNT_ID_LEN]);
    id
}

/// Checks a login against this connection's challenge; on success returns the
/// device's mailbox and its parsed identity key.
pub fn verify(
    challenge: &Challenge,
    account_id: &[u8],
    device_id: u32,
    identity_key: &[u8],
    signature: &[u8],
) -> Result<(MailboxId, IdentityKey), AuthError> {
    let account: AccountId = account_id
        .try_into()
        .map_err(|_| AuthError::AccountIdLength)?;
    if device_id == 0 || device_id > MAX_DEVICE_ID {
        return Err(AuthError::DeviceId);
    }
    let key = IdentityKey::decode(identity_key).map_err(|_| AuthError::IdentityKey)?;
    // Public values on both sides: an ordinary comparison is fine.
    if account_id_for(&key) != account {
        return Err(AuthError::WrongAccount);
    }
    let message = auth_message(challenge, &account, device_id);
    if !key.public_key().verify_signature(&message, signature) {
        return Err(AuthError::BadSignature);
    }
    Ok((
        MailboxId {
            account,
            device: device_id,
        },
        key,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use libsignal_protocol::IdentityKeyPair;

    fn signed(
        pair: &IdentityKeyPair,
        challenge: &Challenge,
        account: &AccountId,
        device: u32,
    ) -> Vec<u8> {
        pair.private_key()
            .calculate_signature(&auth_message(challenge, account, device), &mut rand::rng())
            .expect("sign")
            .to_vec()
    }

    #[test]
    fn good_login_verifies() {
        let pair = IdentityKeyPair::generate(&mut rand::rng());
        let account = account_id_for(pair.identity_key());
        let c = new_challenge();
        let sig = signed(&pair, &c, &account, 2);
        let (m, _) = verify(&c, &account, 2, &pair.identity_key().serialize(), &sig).expect("ok");
        assert_eq!(m.device, 2);
    }

    #[test]
    fn bad_logins_refused() {
        let pair = IdentityKeyPair::generate(&mut rand::rng());
        let other = IdentityKeyPair::generate(&mut rand::rng());
        let account = account_id_for(pair.identity_key());
        let key = pair.identity_key().serialize();
        let c = new_challenge();
        let sig = signed(&pair, &c, &account, 1);
        assert_eq!(
            verify(&new_challenge(), &account, 1, &key, &sig).err(),
            Some(AuthError::BadSignature)
        );
        assert_eq!(
            verify(&c, &account, 2, &key, &sig).err(),
            Some(AuthError::BadSignature)
        );
        assert_eq!(
            verify(&c, &account, 0, &key, &sig).err(),
            Some(AuthError::DeviceId)
        );
        assert_eq!(
            verify(&c, &account, 128, &key, &sig).err(),
            Some(AuthError::DeviceId)
        );
        assert_eq!(
            verify(&c, &account[..19], 1, &key, &sig).err(),
            Some(AuthError::AccountIdLength)
        );
        assert_eq!(
            verify(&c, &account, 1, &key[..10], &sig).err(),
            Some(AuthError::IdentityKey)
        );
        let other_account = account_id_for(other.identity_key());
        assert_eq!(
            verify(&c, &other_account, 1, &key, &sig).err(),
            Some(AuthError::WrongAccount)
        );
        let forged = signed(&other, &c, &account, 1);
        assert_eq!(
            verify(&c, &account, 1, &key, &forged).err(),
            Some(AuthError::BadSignature)
        );
    }
}
