//! What a channel message carries: a post (text, the message it replies to,
//! attachments, the timer in force), an edit or a delete, and the reference
//! by which every member names a message. Wire conversions check every field.

use rankfile_proto::v1 as pb;

use crate::account_id::AccountId;
use crate::attachment::{AttachmentPointer, MAX_ATTACHMENTS};
use crate::committee::MAX_DISAPPEARING_SECS;
use crate::error::{Error, Result};
use crate::message::MAX_TEXT_LEN;

/// Bytes of the ID an author gives each of its channel messages.
pub const MESSAGE_REF_LEN: usize = 16;

/// Names a channel message on every member's device: its author and the
/// random ID the author gave it (local row IDs differ from device to device).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct MessageRef {
    /// Who wrote it.
    pub author: AccountId,
    /// The author's ID for it.
    pub id: [u8; MESSAGE_REF_LEN],
}

impl MessageRef {
    pub(crate) fn to_wire(self) -> pb::ChannelMessageRef {
        pb::ChannelMessageRef {
            author: self.author.as_bytes().to_vec(),
            message_id: self.id.to_vec(),
        }
    }

    fn from_wire(r: Option<pb::ChannelMessageRef>) -> Result<Self> {
        let r = r.ok_or(Error::InvalidContent("no message reference"))?;
        Ok(MessageRef {
            author: AccountId::from_bytes(&r.author)
                .map_err(|_| Error::InvalidContent("bad message author"))?,
            id: ref_id(&r.message_id)?,
        })
    }

    /// A fresh random ID for a message by `author`.
    pub(crate) fn random(author: AccountId) -> Self {
        let mut id = [0u8; MESSAGE_REF_LEN];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut id);
        MessageRef { author, id }
    }
}

fn ref_id(bytes: &[u8]) -> Result<[u8; MESSAGE_REF_LEN]> {
    bytes
        .try_into()
        .map_err(|_| Error::InvalidContent("bad message id"))
}

fn timer(secs: u32) -> Result<u32> {
    if secs > MAX_DISAPPEARING_SECS {
        return Err(Error::InvalidContent("disappearing timer too long"));
    }
    Ok(secs)
}

fn text(body: String) -> Result<String> {
    if body.len() > MAX_TEXT_LEN {
        return Err(Error::InvalidContent("text too long"));
    }
    Ok(body)
}

/// The limits a receiver applies to a post's or an edit's text and
/// attachments, checked on what we are about to send: before anything is
/// written for it (the sender keys a post needs, say).
pub(crate) fn check_outgoing(body: &str, attachments: usize) -> Result<()> {
    if attachments > MAX_ATTACHMENTS {
        return Err(Error::InvalidAttachment("too many attachments"));
    }
    if body.len() > MAX_TEXT_LEN {
        return Err(Error::MessageTooLarge {
            len: body.len(),
            max: MAX_TEXT_LEN,
        });
    }
    Ok(())
}

/// One channel message's content (the author is the sender).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ChannelContent {
    /// A new message.
    Post {
        /// The author's ID for it.
        id: [u8; MESSAGE_REF_LEN],
        body: String,
        reply_to: Option<MessageRef>,
        attachments: Vec<AttachmentPointer>,
        /// The channel's timer when sent, seconds; 0 off.
        expire_timer_secs: u32,
    },
    /// New text for one of the sender's messages.
    Edit {
        target: MessageRef,
        body: String,
        expire_timer_secs: u32,
    },
    /// One of the sender's messages deleted.
    Delete { target: MessageRef },
}

impl ChannelContent {
    /// Checks what we are about to send against the limits a receiver applies.
    pub(crate) fn check(&self) -> Result<()> {
        match self {
            ChannelContent::Post {
                body, attachments, ..
            } => check_outgoing(body, attachments.len()),
            ChannelContent::Edit { body, .. } => check_outgoing(body, 0),
            ChannelContent::Delete { .. } => Ok(()),
        }
    }

    pub(crate) fn to_wire(&self, channel_id: &[u8]) -> pb::content::Body {
        let channel_id = channel_id.to_vec();
        match self {
            ChannelContent::Post {
                id,
                body,
                reply_to,
                attachments,
                expire_timer_secs,
            } => pb::content::Body::ChannelText(pb::ChannelText {
                channel_id,
                body: body.clone(),
                message_id: id.to_vec(),
                reply_to: reply_to.map(MessageRef::to_wire),
                attachments: attachments.iter().map(|a| a.to_wire()).collect(),
                expire_timer_secs: *expire_timer_secs,
            }),
            ChannelContent::Edit {
                target,
                body,
                expire_timer_secs,
            } => pb::content::Body::ChannelEdit(pb::ChannelEdit {
                channel_id,
                target: Some(target.to_wire()),
                body: body.clone(),
                expire_timer_secs: *expire_timer_secs,
            }),
            ChannelContent::Delete { target } => {
                pb::content::Body::ChannelDelete(pb::ChannelDelete {
                    channel_id,
                    target: Some(target.to_wire()),
                })
            }
        }
    }

    pub(crate) fn from_post(t: pb::ChannelText) -> Result<Self> {
        if t.attachments.len() > MAX_ATTACHMENTS {
            return Err(Error::InvalidContent("too many attachments"));
        }
        Ok(ChannelContent::Post {
            id: ref_id(&t.message_id)?,
            body: text(t.body)?,
            reply_to: t
                .reply_to
                .map(|r| MessageRef::from_wire(Some(r)))
                .transpose()?,
            attachments: t
                .attachments
                .iter()
                .map(AttachmentPointer::from_wire)
                .collect::<Result<_>>()?,
            expire_timer_secs: timer(t.expire_timer_secs)?,
        })
    }

    pub(crate) fn from_edit(e: pb::ChannelEdit) -> Result<Self> {
        Ok(ChannelContent::Edit {
            target: MessageRef::from_wire(e.target)?,
            body: text(e.body)?,
            expire_timer_secs: timer(e.expire_timer_secs)?,
        })
    }

    pub(crate) fn from_delete(d: pb::ChannelDelete) -> Result<Self> {
        Ok(ChannelContent::Delete {
            target: MessageRef::from_wire(d.target)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;
    use crate::message::{decode_content, encode_content, Body};
    use crate::settings::ACCESS_KEY_LEN;

    const CHANNEL: [u8; 16] = [3; 16];

    fn author() -> AccountId {
        AccountId::from_bytes(&[5; 20]).expect("id")
    }

    fn round_trip(content: ChannelContent) {
        let body = Body::ChannelText {
            channel_id: CHANNEL,
            content,
        };
        let bytes = encode_content(&body, 42, None, &[1; ACCESS_KEY_LEN]).expect("encode");
        assert_eq!(decode_content(&bytes).expect("decode").body, body);
    }

    #[test]
    fn posts_edits_and_deletes_round_trip() {
        let (pointer, _) =
            crate::attachment::encrypt(b"agenda", "text/plain", "agenda.txt").expect("file");
        let target = MessageRef {
            author: author(),
            id: [9; MESSAGE_REF_LEN],
        };
        round_trip(ChannelContent::Post {
            id: [1; MESSAGE_REF_LEN],
            body: "see the agenda".into(),
            reply_to: Some(target),
            attachments: vec![pointer],
            expire_timer_secs: 3600,
        });
        round_trip(ChannelContent::Edit {
            target,
            body: "new text".into(),
            expire_timer_secs: 0,
        });
        round_trip(ChannelContent::Delete { target });
    }

    /// Content as a hostile member could encrypt it: each bad field is a
    /// typed error, never a panic.
    #[test]
    fn malformed_channel_content_is_a_typed_error() {
        let good = pb::ChannelText {
            channel_id: CHANNEL.to_vec(),
            body: "x".into(),
            message_id: vec![1; MESSAGE_REF_LEN],
            reply_to: None,
            attachments: Vec::new(),
            expire_timer_secs: 0,
        };
        let bad_posts = [
            pb::ChannelText {
                message_id: vec![1; 15],
                ..good.clone()
            },
            pb::ChannelText {
                expire_timer_secs: MAX_DISAPPEARING_SECS + 1,
                ..good.clone()
            },
            pb::ChannelText {
                reply_to: Some(pb::ChannelMessageRef {
                    author: vec![5; 19],
                    message_id: vec![9; MESSAGE_REF_LEN],
                }),
                ..good.clone()
            },
            pb::ChannelText {
                body: "x".repeat(MAX_TEXT_LEN + 1),
                ..good.clone()
            },
            pb::ChannelText {
                attachments: vec![pb::AttachmentPointer::default(); 1],
                ..good.clone()
            },
            pb::ChannelText {
                attachments: vec![pb::AttachmentPointer::default(); MAX_ATTACHMENTS + 1],
                ..good.clone()
            },
        ];
        let wrap = |body| {
            pb::Content {
                sent_at_ms: 1,
                body: Some(body),
                ..pb::Content::default()
            }
            .encode_to_vec()
        };
        assert!(decode_content(&wrap(pb::content::Body::ChannelText(good.clone()))).is_ok());
        for bad in bad_posts {
            assert!(matches!(
                decode_content(&wrap(pb::content::Body::ChannelText(bad))),
                Err(Error::InvalidContent(_))
            ));
        }
        let no_target = pb::content::Body::ChannelEdit(pb::ChannelEdit {
            channel_id: CHANNEL.to_vec(),
            target: None,
            body: "x".into(),
            expire_timer_secs: 0,
        });
        assert!(matches!(
            decode_content(&wrap(no_target)),
            Err(Error::InvalidContent(_))
        ));
        let bad_channel = pb::content::Body::ChannelDelete(pb::ChannelDelete {
            channel_id: vec![3; 4],
            target: Some(pb::ChannelMessageRef {
                author: vec![5; 20],
                message_id: vec![9; MESSAGE_REF_LEN],
            }),
        });
        assert!(matches!(
            decode_content(&wrap(bad_channel)),
            Err(Error::InvalidContent(_))
        ));
    }
}
