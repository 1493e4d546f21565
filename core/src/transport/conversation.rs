//! [`Client`] methods for 1:1 conversations' disappearing timers: set by
//! either side, sent to the other phone, and enforced on both by the purger
//! (`transport::channel`), which the send wakes.

use super::client::{Client, Command};
use crate::account_id::AccountId;
use crate::error::Result;
use crate::send::OutgoingEnvelope;

impl Client {
    /// Sets the disappearing timer of the conversation with contact `peer`
    /// (seconds, 0 off), as [`Account::set_conversation_timer`]: the change
    /// is committed and queued for `peer`, and sent now when connected.
    ///
    /// [`Account::set_conversation_timer`]: crate::Account::set_conversation_timer
    pub async fn set_conversation_timer(
        &self,
        peer: AccountId,
        secs: u32,
    ) -> Result<OutgoingEnvelope> {
        let sent = self
            .account
            .call(move |a| a.set_conversation_timer(&peer, secs))
            .await??;
        let _ = self.commands.try_send(Command::FlushOutbox);
        Ok(sent)
    }

    /// The disappearing timer of the conversation with `peer`, in seconds
    /// (0: off).
    pub async fn conversation_timer(&self, peer: AccountId) -> Result<u32> {
        self.account
            .call(move |a| a.conversation_timer(&peer))
            .await?
    }
}
