//! Messages across the FFI: 1:1 [`Message`]s and committee-channel
//! [`ChannelPost`]s as records, and the channel methods of [`Client`]
//! (post, edit, delete, read a page).

use rankfile_core::{ChannelMessage, StoredMessage};

use crate::client::Client;
use crate::error::ClientError;
use crate::ids;
use crate::runtime::run;

/// A 1:1 message as stored on this phone.
#[derive(uniffi::Record)]
pub struct Message {
    /// Stable for the message's life on this phone.
    pub id: i64,
    pub peer: String,
    pub outgoing: bool,
    pub body: String,
    /// The sender's clock when written, ms since the epoch.
    pub sent_at_ms: i64,
    /// When this phone stored it, ms since the epoch.
    pub stored_at_ms: i64,
    /// Held until the user decides on the sender's identity change.
    pub held: bool,
    /// When both phones delete it, ms since the epoch.
    pub expires_at_ms: Option<i64>,
}

impl From<StoredMessage> for Message {
    fn from(m: StoredMessage) -> Self {
        Message {
            id: m.id,
            peer: m.peer.to_string(),
            outgoing: m.outgoing,
            body: m.body,
            sent_at_ms: m.sent_at_ms,
            stored_at_ms: m.stored_at_ms,
            held: m.held,
            expires_at_ms: m.expires_at_ms,
        }
    }
}

/// A message in a committee channel as stored on this phone.
#[derive(uniffi::Record)]
pub struct ChannelPost {
    /// Stable for the message's life on this phone.
    pub id: i64,
    pub channel_id: String,
    pub sender: String,
    pub outgoing: bool,
    /// The text, as last edited.
    pub body: String,
    pub sent_at_ms: i64,
    pub stored_at_ms: i64,
    /// The author's clock at the latest edit, if any.
    pub edited_at_ms: Option<i64>,
    pub expires_at_ms: Option<i64>,
    /// How many files came with it.
    pub attachments: u32,
}

impl From<ChannelMessage> for ChannelPost {
    fn from(m: ChannelMessage) -> Self {
        ChannelPost {
            id: m.id,
            channel_id: ids::hex(m.channel_id),
            sender: m.sender.to_string(),
            outgoing: m.outgoing,
            body: m.body,
            sent_at_ms: m.sent_at_ms,
            stored_at_ms: m.stored_at_ms,
            edited_at_ms: m.edited_at_ms,
            expires_at_ms: m.expires_at_ms,
            attachments: u32::try_from(m.attachments.len()).unwrap_or(u32::MAX),
        }
    }
}

#[uniffi::export]
impl Client {
    /// Posts `text` in a channel of a committee, to every member.
    pub async fn post(
        &self,
        committee: String,
        channel: String,
        text: String,
    ) -> Result<(), ClientError> {
        let core = self.core()?;
        let (committee, channel) = (ids::committee(&committee)?, ids::channel(&channel)?);
        run(async move {
            core.post(committee, channel, text).await?;
            Ok(())
        })
        .await
    }

    /// Replaces the text of one of our posts on every member's phone.
    pub async fn edit_post(&self, message_id: i64, text: String) -> Result<(), ClientError> {
        let core = self.core()?;
        run(async move {
            core.edit_message(message_id, text).await?;
            Ok(())
        })
        .await
    }

    /// Deletes one of our posts on every member's phone.
    pub async fn delete_post(&self, message_id: i64) -> Result<(), ClientError> {
        let core = self.core()?;
        run(async move {
            core.delete_message(message_id).await?;
            Ok(())
        })
        .await
    }

    /// A page of a channel, newest first, older than `before_id` when given.
    pub async fn channel_posts(
        &self,
        channel: String,
        before_id: Option<i64>,
        limit: u32,
    ) -> Result<Vec<ChannelPost>, ClientError> {
        let (core, channel) = (self.core()?, ids::channel(&channel)?);
        run(async move {
            let page = core.channel_history(channel, before_id, limit).await?;
            Ok(page.into_iter().map(ChannelPost::from).collect())
        })
        .await
    }
}
