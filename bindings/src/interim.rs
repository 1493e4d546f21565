//! What the bindings need that the core's facade does not offer yet, each a
//! one-line call through `Client::with_account` or the store, to be replaced
//! by the facade method named on it when the facade branch lands (issue 20,
//! first part). Nothing here decides anything: each function is a call.

use std::path::Path;

use rankfile_core::committee::CommitteeId;
use rankfile_core::transport::{Client as CoreClient, RelayAddress};
use rankfile_core::{
    Account, AccountId, ChannelMessage, DatabaseKey, Error, SafetyNumber, StoredMessage,
};

use crate::error::ClientError;

/// The store's file inside the app's directory.
const STORE_FILE: &str = "rankfile.db";

/// `Client::open(dir, key, relay)`: opens the account in `dir`, creating it
/// on first use, and starts its client.
pub(crate) fn open(dir: &Path, key: &[u8], relay: RelayAddress) -> Result<CoreClient, ClientError> {
    let key = DatabaseKey::from_slice(key)?;
    std::fs::create_dir_all(dir).map_err(|e| ClientError::from(Error::Io(e)))?;
    let path = dir.join(STORE_FILE);
    let account = match Account::open(&path, &key) {
        Err(Error::StoreMissing) => Account::create(&path, &key)?,
        other => other?,
    };
    Ok(CoreClient::start(account, relay)?)
}

/// `Client::account_id`.
pub(crate) async fn account_id(core: &CoreClient) -> rankfile_core::Result<AccountId> {
    core.with_account(|a| a.id()).await
}

/// `Client::safety_number`.
pub(crate) async fn safety_number(
    core: &CoreClient,
    contact: AccountId,
) -> rankfile_core::Result<SafetyNumber> {
    core.with_account(move |a| a.safety_number(&contact))
        .await?
}

/// `Client::verify_contact`.
pub(crate) async fn verify_contact(
    core: &CoreClient,
    contact: AccountId,
    scanned: Vec<u8>,
) -> rankfile_core::Result<()> {
    core.with_account(move |a| a.verify_contact(&contact, &scanned))
        .await?
}

/// `Client::history`.
pub(crate) async fn history(
    core: &CoreClient,
    peer: AccountId,
    before_id: Option<i64>,
    limit: u32,
) -> rankfile_core::Result<Vec<StoredMessage>> {
    core.with_account(move |a| a.history(&peer, before_id, limit))
        .await?
}

/// `Client::channel_history`.
pub(crate) async fn channel_history(
    core: &CoreClient,
    channel: [u8; 16],
    before_id: Option<i64>,
    limit: u32,
) -> rankfile_core::Result<Vec<ChannelMessage>> {
    core.with_account(move |a| a.channel_history(&channel, before_id, limit))
        .await?
}

/// `Client::committees`.
pub(crate) async fn committees(core: &CoreClient) -> rankfile_core::Result<Vec<CommitteeId>> {
    core.with_account(|a| a.committees()).await?
}
