//! Requests about the account itself, made on its logged-in connection:
//! an upload token before an anonymous attachment upload, and deleting the
//! account at the relay.
//!
//! They go through the connection manager (`Command::Request`), which owns the
//! logged-in link; offline, they fail with [`Error::Offline`].

use rankfile_proto::v1 as pb;
use tokio::sync::oneshot;

use super::client::{Client, Command};
use crate::account::Account;
use crate::error::{Error, Result};

impl Client {
    /// Panic wipe: stops the client and destroys the store's files so nothing
    /// can be recovered from them (the app must also delete the database key
    /// from the OS keystore). [`crate::panic_wipe`] does the same with no
    /// open client and no key.
    pub async fn wipe(self) -> Result<()> {
        self.shutdown().await?.wipe()
    }

    /// Sends one request on the logged-in connection and waits for its answer.
    pub(super) async fn logged_in_request(
        &self,
        body: pb::client_frame::Body,
    ) -> Result<pb::server_frame::Body> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::Request { body, reply })
            .await
            .map_err(|_| Error::Offline)?;
        rx.await.map_err(|_| Error::Offline)?
    }

    /// A token for one anonymous upload of `size` bytes: the relay counts the
    /// bytes against this account's upload budget when it issues the token,
    /// and the token itself names no account.
    pub(super) async fn upload_token(&self, size: u64) -> Result<Vec<u8>> {
        match self
            .logged_in_request(pb::client_frame::Body::UploadToken(
                pb::UploadTokenRequest { size },
            ))
            .await?
        {
            pb::server_frame::Body::UploadToken(t) if t.max_bytes >= size => Ok(t.token),
            _ => Err(Error::Transport(
                "unexpected answer to an upload token request".into(),
            )),
        }
    }

    /// Deletes this account at the relay: every device's record, mailbox,
    /// prekeys and push endpoint there, and the attachments this device
    /// uploaded that the relay still holds. Then the client stops and gives
    /// the account back; the local store stays readable (history, contacts)
    /// until the user wipes it, but never connects again
    /// ([`Error::AccountDeletedAtRelay`]), so nothing re-registers the account.
    /// Needs a connection. If the relay does not confirm, nothing changes in
    /// the store, the client is shut down all the same, and the error says
    /// why: open the account and start a client again to retry.
    pub async fn delete_account(self) -> Result<Account> {
        let owned = self.account.call(|a| a.owned_uploads()).await??;
        let attachments = owned
            .iter()
            .map(|(address, key)| pb::OwnedAttachment {
                address: address.to_vec(),
                delete_key: key.to_vec(),
            })
            .collect();
        let answer = self
            .logged_in_request(pb::client_frame::Body::DeleteAccount(pb::DeleteAccount {
                attachments,
            }))
            .await;
        let confirmed = matches!(answer, Ok(pb::server_frame::Body::Ok(_)));
        if confirmed {
            self.account.call(|a| a.forget_relay_account()).await??;
        }
        let account = self.shutdown().await?;
        match answer {
            Ok(_) if confirmed => Ok(account),
            Ok(_) => Err(Error::Transport(
                "unexpected answer to an account deletion".into(),
            )),
            Err(e) => Err(e),
        }
    }
}
