//! [`Client`] methods that read what this device holds: 1:1 conversation
//! history, channel history and search, read markers and unread counts,
//! messages kept unread until their sender repairs them, and what still
//! waits in the outbox. Pages come newest first; nothing here touches the
//! network.

use super::client::Client;
use crate::account_id::AccountId;
use crate::channel::ChannelMessage;
use crate::committee::ChannelId;
use crate::error::Result;
use crate::message::StoredMessage;
use crate::repair::UnreadableMessage;

impl Client {
    /// A page of the conversation with `peer`, newest first, below
    /// `before_id` when given.
    pub async fn history(
        &self,
        peer: AccountId,
        before_id: Option<i64>,
        limit: u32,
    ) -> Result<Vec<StoredMessage>> {
        self.account
            .call(move |a| a.history(&peer, before_id, limit))
            .await?
    }

    /// How many 1:1 messages this device stores.
    pub async fn message_count(&self) -> Result<u64> {
        self.account.call(|a| a.message_count()).await?
    }

    /// A page of a channel, newest first, below `before_id` when given;
    /// messages past their timer are never shown.
    pub async fn channel_history(
        &self,
        channel: ChannelId,
        before_id: Option<i64>,
        limit: u32,
    ) -> Result<Vec<ChannelMessage>> {
        self.account
            .call(move |a| a.channel_history(&channel, before_id, limit))
            .await?
    }

    /// Channel messages containing every word of `text` (case and accents
    /// ignored; never search syntax), newest first, in one channel or all.
    pub async fn search(
        &self,
        channel: Option<ChannelId>,
        text: String,
        before_id: Option<i64>,
        limit: u32,
    ) -> Result<Vec<ChannelMessage>> {
        self.account
            .call(move |a| a.search_channel_messages(channel.as_ref(), &text, before_id, limit))
            .await?
    }

    /// Marks a channel read up to the message with local ID `up_to`; the
    /// marker never moves back.
    pub async fn mark_channel_read(&self, channel: ChannelId, up_to: i64) -> Result<()> {
        self.account
            .call(move |a| a.mark_channel_read(&channel, up_to))
            .await?
    }

    /// The last message read in a channel, if any was marked.
    pub async fn channel_read_marker(&self, channel: ChannelId) -> Result<Option<i64>> {
        self.account
            .call(move |a| a.channel_read_marker(&channel))
            .await?
    }

    /// Messages from others in a channel after its read marker.
    pub async fn channel_unread_count(&self, channel: ChannelId) -> Result<u64> {
        self.account
            .call(move |a| a.channel_unread_count(&channel))
            .await?
    }

    /// Messages kept because they could not be read yet (their sender is
    /// asked to send again).
    pub async fn unreadable_messages(&self) -> Result<Vec<UnreadableMessage>> {
        self.account.call(|a| a.unreadable_messages()).await?
    }

    /// Envelopes committed here that the relay has not taken yet.
    pub async fn outbox_len(&self) -> Result<usize> {
        self.account.call(|a| a.outbox().map(|o| o.len())).await?
    }
}
