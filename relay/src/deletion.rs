//! Deleting an account: a logged-in device asks, and every device's record,
//! mailbox, prekeys and push endpoint go from the store in one transaction,
//! with the attachments the device names and proves it uploaded (by the key
//! whose hash came with each upload); then their blob files, and what the
//! relay cached in memory about the account.
//!
//! The store's `secure_delete` zeroes the freed pages, so after a checkpoint
//! the database file holds no trace of the account. A device of the account
//! that logs in later registers afresh: deletion is of what the relay holds
//! now, not a ban.

use rankfile_proto::v1::{self as pb, server_frame::Body as Out};
use sha2::{Digest, Sha256};

use crate::attachment;
use crate::frame::{fixed, Refusal, Reply};
use crate::relay::Relay;
use crate::storage::{AccountId, Address};

/// Attachments one DeleteAccount may name: more than a device uploads within
/// an attachment's lifetime at the default budget, and a bound on the work
/// one frame asks for.
pub const MAX_OWNED_ATTACHMENTS: usize = 4096;

/// DeleteAccount from a device of `account`.
pub async fn delete_account(relay: &Relay, account: AccountId, req: pb::DeleteAccount) -> Reply {
    if req.attachments.len() > MAX_OWNED_ATTACHMENTS {
        return Err(Refusal::too_large("too many attachments in one deletion"));
    }
    let mut owned: Vec<(Address, [u8; 32])> = Vec::with_capacity(req.attachments.len());
    for a in &req.attachments {
        let address = fixed::<32>(&a.address, "attachment address must be 32 bytes")?;
        let key = fixed::<32>(&a.delete_key, "delete key must be 32 bytes")?;
        owned.push((address, Sha256::digest(key).into()));
    }
    let gone = relay.store.delete_account(account, owned).await?;
    relay.devices.forget_account(&account);
    attachment::remove_blobs(&relay.config.data_dir, &gone).await;
    tracing::debug!(attachments = gone.len(), "account deleted");
    Ok(Out::Ok(pb::Ok {}))
}
