//! Stored 1:1 messages and the content codec: what goes inside the ciphertext.

use prost::Message as _;
use rand::RngCore;
use rankfile_proto::v1 as pb;
use rusqlite::{params, Connection, Row};

use crate::account_id::AccountId;
use crate::conversation_timer::Timer;
use crate::error::{Error, Result};
use crate::settings::ACCESS_KEY_LEN;

/// Largest text body accepted, in bytes.
pub const MAX_TEXT_LEN: usize = 64 * 1024;
/// Encoded content is padded to a multiple of this many bytes, so ciphertext
/// lengths reveal only a coarse size.
const PADDING_BLOCK: usize = 64;
/// Bytes of an envelope ID.
pub const ENVELOPE_ID_LEN: usize = 16;

/// A message as the app shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoredMessage {
    /// The local row ID, stable for the message's life on this device.
    pub id: i64,
    pub peer: AccountId,
    pub outgoing: bool,
    pub body: String,
    /// The sender's clock when written, ms since the epoch.
    pub sent_at_ms: i64,
    /// When this device stored it, ms since the epoch.
    pub stored_at_ms: i64,
    /// Held back until the user decides on an identity change.
    pub held: bool,
    /// The envelope ID the message travelled under.
    pub envelope_id: [u8; ENVELOPE_ID_LEN],
    /// When both phones delete it (the conversation's disappearing timer),
    /// ms since the epoch; `None`: kept.
    pub expires_at_ms: Option<i64>,
}

/// A message row as read: id, peer, outgoing, body, sent, stored, state,
/// envelope ID, expiry.
type Raw = (
    i64,
    Vec<u8>,
    bool,
    String,
    i64,
    i64,
    i64,
    Vec<u8>,
    Option<i64>,
);

fn from_row(r: &Row<'_>) -> rusqlite::Result<Raw> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
    ))
}

fn decode(raw: Raw) -> Result<StoredMessage> {
    let (id, peer, outgoing, body, sent_at_ms, stored_at_ms, state, envelope_id, expires_at_ms) =
        raw;
    Ok(StoredMessage {
        id,
        peer: AccountId::from_bytes(&peer)?,
        outgoing,
        body,
        sent_at_ms,
        stored_at_ms,
        held: state == 1,
        envelope_id: envelope_id
            .try_into()
            .map_err(|_| Error::Storage("stored envelope id is malformed".into()))?,
        expires_at_ms,
    })
}

/// A page of the conversation with `peer`, newest first, starting below
/// `before_id` when given. Held messages are included and marked.
pub(crate) fn history(
    conn: &Connection,
    peer: &AccountId,
    before_id: Option<i64>,
    limit: u32,
) -> Result<Vec<StoredMessage>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, peer, outgoing, body, sent_at, stored_at, state, envelope_id, expires_at
         FROM messages
         WHERE peer = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3",
    )?;
    let rows = stmt.query_map(
        params![&peer.as_bytes()[..], before_id.unwrap_or(i64::MAX), limit],
        from_row,
    )?;
    rows.map(|r| decode(r?)).collect()
}

/// Number of stored messages (all peers, both directions).
pub(crate) fn count(conn: &Connection) -> Result<u64> {
    let n: i64 = conn.query_row("SELECT count(*) FROM messages", [], |r| r.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

pub(crate) struct NewMessage<'a> {
    pub envelope_id: &'a [u8; ENVELOPE_ID_LEN],
    pub peer: &'a AccountId,
    pub outgoing: bool,
    pub body: &'a str,
    pub sent_at_ms: i64,
    pub stored_at_ms: i64,
    pub held: bool,
    /// When the purge deletes it; `None`: never.
    pub expires_at: Option<i64>,
}

pub(crate) const INSERT_SQL: &str =
    "INSERT INTO messages (envelope_id, peer, outgoing, body, sent_at, stored_at, state, expires_at)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

pub(crate) fn insert(conn: &Connection, m: &NewMessage<'_>) -> Result<i64> {
    conn.prepare_cached(INSERT_SQL)?.execute(params![
        &m.envelope_id[..],
        &m.peer.as_bytes()[..],
        m.outgoing,
        m.body,
        m.sent_at_ms,
        m.stored_at_ms,
        i64::from(m.held),
        m.expires_at
    ])?;
    Ok(conn.last_insert_rowid())
}

/// Bytes of a channel ID.
pub const CHANNEL_ID_LEN: usize = 16;

/// What a content message carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Body {
    /// A 1:1 text, and the conversation timer it was written under.
    Text { body: String, timer: Timer },
    /// A change of the 1:1 conversation's disappearing timer.
    ConversationTimer(Timer),
    /// The sender replaced its access key: the content's own
    /// `sender_access_key` is the new one (`crate::access_key`).
    AccessKeyChanged,
    /// A channel message (sent under a sender key): a post, an edit or a
    /// delete.
    ChannelText {
        channel_id: [u8; CHANNEL_ID_LEN],
        content: crate::channel::ChannelContent,
    },
    /// A member's sender key for a channel (sent over a 1:1 session).
    SenderKeyDistribution {
        channel_id: [u8; CHANNEL_ID_LEN],
        distribution_id: uuid::Uuid,
        message: Vec<u8>,
    },
    /// Entries of a committee's membership log (sent over a 1:1 session).
    CommitteeUpdate {
        committee_id: crate::committee::CommitteeId,
        entries: Vec<crate::committee::SignedEntry>,
        /// Members' access keys the sender knows (see `content.proto`).
        access_keys: Vec<(AccountId, [u8; ACCESS_KEY_LEN])>,
    },
    /// A newcomer redeeming an invite (sent to the organizer the invite names).
    JoinRequest(crate::committee::JoinRequest),
    /// A member asking for the entries of a committee's log it lacks: the
    /// answer is every entry the answerer holds beyond `heads`.
    CommitteeEntriesRequest {
        committee_id: crate::committee::CommitteeId,
        heads: Vec<crate::committee::EntryHash>,
        missing: Vec<crate::committee::EntryHash>,
    },
    /// Opens a session between two members of a committee (see
    /// the committee session rules).
    CommitteeHello {
        committee_id: crate::committee::CommitteeId,
        reply_wanted: bool,
    },
    /// One delivery of an emergency alert.
    Alert(crate::alert::AlertMessage),
    /// An answer to an alert, to the member who delivered it.
    AlertAnswer {
        alert_id: crate::alert::AlertId,
        answer: crate::alert::AlertAnswer,
        answered_at_ms: u64,
    },
    /// A proposal (or acceptance) of a link between committees.
    LinkProposal(crate::link::LinkProposal),
    /// Counts of an alert's answers, or a note that it reached us first by
    /// another path, back to a device that delivered it.
    AlertRollCall(crate::alert::RollCall),
}

/// Most entries one committee update carries: a whole log of a committee at
/// its largest fits, and the envelope limit bounds the bytes anyway.
pub const MAX_UPDATE_ENTRIES: usize = 16_384;

fn check_text(body: &str) -> Result<()> {
    if body.len() > MAX_TEXT_LEN {
        return Err(Error::MessageTooLarge {
            len: body.len(),
            max: MAX_TEXT_LEN,
        });
    }
    Ok(())
}

/// Encodes a content message, padded.
pub(crate) fn encode_content(
    body: &Body,
    sent_at_ms: i64,
    replaces: Option<&AccountId>,
    access_key: &[u8; ACCESS_KEY_LEN],
) -> Result<Vec<u8>> {
    encode(body, sent_at_ms, replaces, access_key, 0)
}

/// Encodes a content message sent again for a recipient who could not read
/// the first copy, which its receipt named by `handle`.
pub(crate) fn encode_resent(
    body: &Body,
    sent_at_ms: i64,
    access_key: &[u8; ACCESS_KEY_LEN],
    handle: u64,
) -> Result<Vec<u8>> {
    encode(body, sent_at_ms, None, access_key, handle)
}

fn encode(
    body: &Body,
    sent_at_ms: i64,
    replaces: Option<&AccountId>,
    access_key: &[u8; ACCESS_KEY_LEN],
    resends: u64,
) -> Result<Vec<u8>> {
    let body = match body {
        Body::Text { body: text, timer } => {
            check_text(text)?;
            pb::content::Body::Text(pb::Text {
                body: text.clone(),
                expire_timer_secs: timer.secs,
                expire_timer_version: timer.version,
            })
        }
        Body::ConversationTimer(timer) => {
            pb::content::Body::ConversationTimer(pb::ConversationTimer {
                expire_timer_secs: timer.secs,
                version: timer.version,
            })
        }
        Body::AccessKeyChanged => pb::content::Body::AccessKeyChanged(pb::AccessKeyChanged {}),
        Body::ChannelText {
            channel_id,
            content,
        } => {
            content.check()?;
            content.to_wire(channel_id)
        }
        Body::SenderKeyDistribution {
            channel_id,
            distribution_id,
            message,
        } => pb::content::Body::SenderKeyDistribution(pb::SenderKeyDistribution {
            channel_id: channel_id.to_vec(),
            distribution_id: distribution_id.as_bytes().to_vec(),
            message: message.clone(),
        }),
        Body::CommitteeUpdate {
            committee_id,
            entries,
            access_keys,
        } => pb::content::Body::CommitteeUpdate(pb::CommitteeUpdate {
            committee_id: committee_id.0.to_vec(),
            entries: entries.iter().map(|e| e.encode()).collect(),
            access_keys: access_keys
                .iter()
                .map(|(a, k)| pb::MemberAccessKey {
                    account: a.as_bytes().to_vec(),
                    access_key: k.to_vec(),
                })
                .collect(),
        }),
        Body::JoinRequest(request) => pb::content::Body::CommitteeJoinRequest(request.to_wire()),
        Body::CommitteeEntriesRequest {
            committee_id,
            heads,
            missing,
        } => pb::content::Body::CommitteeEntriesRequest(pb::CommitteeEntriesRequest {
            committee_id: committee_id.0.to_vec(),
            heads: heads.iter().map(|h| h.0.to_vec()).collect(),
            missing: missing.iter().map(|h| h.0.to_vec()).collect(),
        }),
        Body::CommitteeHello {
            committee_id,
            reply_wanted,
        } => pb::content::Body::CommitteeHello(pb::CommitteeHello {
            committee_id: committee_id.0.to_vec(),
            reply_wanted: *reply_wanted,
        }),
        Body::Alert(alert) => pb::content::Body::Alert(alert.to_wire()),
        Body::AlertAnswer {
            alert_id,
            answer,
            answered_at_ms,
        } => pb::content::Body::AlertAnswer(pb::AlertAnswer {
            alert_id: alert_id.0.to_vec(),
            answer: answer.to_wire(),
            answered_at_ms: *answered_at_ms,
        }),
        Body::LinkProposal(p) => pb::content::Body::LinkProposal(p.to_wire()),
        Body::AlertRollCall(crate::alert::RollCall::Counts(c)) => {
            pb::content::Body::AlertCounts(c.to_wire())
        }
        Body::AlertRollCall(crate::alert::RollCall::ReachedBefore(id)) => {
            pb::content::Body::AlertReachedBefore(pb::AlertReachedBefore {
                alert_id: id.0.to_vec(),
            })
        }
    };
    let mut content = pb::Content {
        sent_at_ms: u64::try_from(sent_at_ms).unwrap_or(0),
        body: Some(body),
        replaces_account_id: replaces.map(|r| r.as_bytes().to_vec()).unwrap_or_default(),
        sender_access_key: access_key.to_vec(),
        padding: Vec::new(),
        resends,
    };
    // The filler field costs a tag byte and a length byte (it is never over
    // 127 bytes) besides itself, and must not be empty (prost would omit it).
    let bare = content.encoded_len() + 2;
    let fill = match (PADDING_BLOCK - bare % PADDING_BLOCK) % PADDING_BLOCK {
        0 => PADDING_BLOCK,
        n => n,
    };
    let mut padding = vec![0u8; fill];
    rand::rng().fill_bytes(&mut padding);
    content.padding = padding;
    Ok(content.encode_to_vec())
}

/// A decoded content message.
pub(crate) struct Decoded {
    pub body: Body,
    pub sent_at_ms: i64,
    pub replaces: Option<AccountId>,
    pub sender_access_key: Option<[u8; ACCESS_KEY_LEN]>,
    /// The receipt handle this content was sent again for, if it was.
    pub resends: Option<u64>,
}

fn channel_id(bytes: &[u8]) -> Result<[u8; CHANNEL_ID_LEN]> {
    bytes
        .try_into()
        .map_err(|_| Error::InvalidContent("bad channel id"))
}

pub(crate) fn decode_content(bytes: &[u8]) -> Result<Decoded> {
    let c =
        pb::Content::decode(bytes).map_err(|_| Error::InvalidContent("not a content message"))?;
    let replaces = if c.replaces_account_id.is_empty() {
        None
    } else {
        Some(
            AccountId::from_bytes(&c.replaces_account_id)
                .map_err(|_| Error::InvalidContent("bad replaced account id"))?,
        )
    };
    let sender_access_key = match c.sender_access_key.len() {
        0 => None,
        ACCESS_KEY_LEN => c.sender_access_key.as_slice().try_into().ok(),
        _ => return Err(Error::InvalidContent("bad access key")),
    };
    let body = match c.body {
        Some(pb::content::Body::Text(t)) => {
            if t.body.len() > MAX_TEXT_LEN {
                return Err(Error::InvalidContent("text too long"));
            }
            Body::Text {
                timer: Timer::checked(t.expire_timer_secs, t.expire_timer_version)?,
                body: t.body,
            }
        }
        Some(pb::content::Body::ConversationTimer(t)) => {
            Body::ConversationTimer(Timer::checked(t.expire_timer_secs, t.version)?)
        }
        Some(pb::content::Body::AccessKeyChanged(_)) => Body::AccessKeyChanged,
        Some(pb::content::Body::ChannelText(t)) => Body::ChannelText {
            channel_id: channel_id(&t.channel_id)?,
            content: crate::channel::ChannelContent::from_post(t)?,
        },
        Some(pb::content::Body::ChannelEdit(e)) => Body::ChannelText {
            channel_id: channel_id(&e.channel_id)?,
            content: crate::channel::ChannelContent::from_edit(e)?,
        },
        Some(pb::content::Body::ChannelDelete(d)) => Body::ChannelText {
            channel_id: channel_id(&d.channel_id)?,
            content: crate::channel::ChannelContent::from_delete(d)?,
        },
        Some(pb::content::Body::SenderKeyDistribution(d)) => Body::SenderKeyDistribution {
            channel_id: channel_id(&d.channel_id)?,
            distribution_id: uuid::Uuid::from_slice(&d.distribution_id)
                .map_err(|_| Error::InvalidContent("bad distribution id"))?,
            message: d.message,
        },
        Some(pb::content::Body::CommitteeUpdate(u)) => {
            if u.entries.len() > MAX_UPDATE_ENTRIES {
                return Err(Error::InvalidContent("too many committee entries"));
            }
            Body::CommitteeUpdate {
                committee_id: crate::committee::CommitteeId::from_bytes(&u.committee_id)
                    .map_err(|_| Error::InvalidContent("bad committee id"))?,
                entries: u
                    .entries
                    .iter()
                    .map(|e| crate::committee::SignedEntry::decode(e))
                    .collect::<Result<_>>()?,
                access_keys: u
                    .access_keys
                    .iter()
                    .take(crate::committee::MAX_MEMBERS)
                    .map(|k| {
                        Ok((
                            AccountId::from_bytes(&k.account)
                                .map_err(|_| Error::InvalidContent("bad member id"))?,
                            k.access_key
                                .as_slice()
                                .try_into()
                                .map_err(|_| Error::InvalidContent("bad access key"))?,
                        ))
                    })
                    .collect::<Result<_>>()?,
            }
        }
        Some(pb::content::Body::CommitteeJoinRequest(r)) => Body::JoinRequest(
            crate::committee::JoinRequest::from_wire(r)
                .map_err(|_| Error::InvalidContent("bad join request"))?,
        ),
        Some(pb::content::Body::CommitteeEntriesRequest(r)) => {
            let hashes = |list: &[Vec<u8>]| {
                if list.len() > crate::committee::MAX_PARENTS * 4 {
                    return Err(Error::InvalidContent("too many entry hashes"));
                }
                list.iter()
                    .map(|h| {
                        crate::committee::EntryHash::from_bytes(h)
                            .map_err(|_| Error::InvalidContent("bad entry hash"))
                    })
                    .collect::<Result<Vec<_>>>()
            };
            Body::CommitteeEntriesRequest {
                committee_id: crate::committee::CommitteeId::from_bytes(&r.committee_id)
                    .map_err(|_| Error::InvalidContent("bad committee id"))?,
                heads: hashes(&r.heads)?,
                missing: hashes(&r.missing)?,
            }
        }
        Some(pb::content::Body::CommitteeHello(h)) => Body::CommitteeHello {
            committee_id: crate::committee::CommitteeId::from_bytes(&h.committee_id)
                .map_err(|_| Error::InvalidContent("bad committee id"))?,
            reply_wanted: h.reply_wanted,
        },
        Some(pb::content::Body::Alert(a)) => Body::Alert(crate::alert::AlertMessage::from_wire(a)?),
        Some(pb::content::Body::AlertAnswer(a)) => Body::AlertAnswer {
            alert_id: crate::alert::AlertId::from_bytes(&a.alert_id)?,
            answer: crate::alert::AlertAnswer::from_wire(a.answer)?,
            answered_at_ms: a.answered_at_ms,
        },
        Some(pb::content::Body::LinkProposal(p)) => {
            Body::LinkProposal(crate::link::LinkProposal::from_wire(p)?)
        }
        Some(pb::content::Body::AlertCounts(c)) => Body::AlertRollCall(
            crate::alert::RollCall::Counts(crate::alert::AlertCounts::from_wire(&c)?),
        ),
        Some(pb::content::Body::AlertReachedBefore(r)) => Body::AlertRollCall(
            crate::alert::RollCall::ReachedBefore(crate::alert::AlertId::from_bytes(&r.alert_id)?),
        ),
        None => return Err(Error::InvalidContent("no body")),
    };
    Ok(Decoded {
        body,
        sent_at_ms: i64::try_from(c.sent_at_ms).unwrap_or(i64::MAX),
        replaces,
        sender_access_key,
        resends: (c.resends != 0).then_some(c.resends),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_is_padded_to_blocks_and_round_trips() {
        for len in [0, 1, 50, 61, 62, 63, 64, 200, 1000] {
            let body = "x".repeat(len);
            let text = Body::Text {
                body: body.clone(),
                timer: Timer {
                    secs: 3600,
                    version: 2,
                },
            };
            let bytes = encode_content(&text, 42, None, &[7; ACCESS_KEY_LEN]).expect("encode");
            assert_eq!(
                bytes.len() % PADDING_BLOCK,
                0,
                "len {len} → {}",
                bytes.len()
            );
            let back = decode_content(&bytes).expect("decode");
            assert_eq!(back.body, text);
            assert_eq!(back.sent_at_ms, 42);
            assert!(back.replaces.is_none());
            assert_eq!(back.sender_access_key, Some([7; ACCESS_KEY_LEN]));
        }
    }

    #[test]
    fn oversize_text_is_refused() {
        let body = "x".repeat(MAX_TEXT_LEN + 1);
        assert!(matches!(
            encode_content(
                &Body::Text {
                    body: body.clone(),
                    timer: Timer::default()
                },
                0,
                None,
                &[7; ACCESS_KEY_LEN]
            ),
            Err(Error::MessageTooLarge { .. })
        ));
    }

    #[test]
    fn garbage_content_is_a_typed_error() {
        assert!(matches!(
            decode_content(&[0xff, 0xff, 0xff]),
            Err(Error::InvalidContent(_))
        ));
        assert!(matches!(decode_content(&[]), Err(Error::InvalidContent(_))));
    }

    #[test]
    fn a_timer_longer_than_a_year_is_refused_in_texts_and_changes() {
        let long = crate::committee::MAX_DISAPPEARING_SECS + 1;
        for body in [
            pb::content::Body::Text(pb::Text {
                body: "hi".into(),
                expire_timer_secs: long,
                expire_timer_version: 1,
            }),
            pb::content::Body::ConversationTimer(pb::ConversationTimer {
                expire_timer_secs: long,
                version: 1,
            }),
        ] {
            let bytes = pb::Content {
                body: Some(body),
                ..Default::default()
            }
            .encode_to_vec();
            assert!(matches!(
                decode_content(&bytes),
                Err(Error::InvalidContent(_))
            ));
        }
    }
}
