//! Events for the app: what changed, in the order it happened. The app drains
//! them after each operation (the transport turns this into one stream).

use crate::account_id::AccountId;
use crate::committee::{CommitteeId, RejectReason};

/// Something the app should show or act on.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A message was stored and can be shown.
    MessageStored { peer: AccountId, message_id: i64 },
    /// A channel message was stored.
    ChannelMessageStored {
        channel_id: [u8; 16],
        sender: AccountId,
        message_id: i64,
    },
    /// Its author edited a channel message: read it again.
    ChannelMessageEdited {
        channel_id: [u8; 16],
        message_id: i64,
    },
    /// Its author deleted a channel message: it is gone from the store.
    ChannelMessageDeleted {
        channel_id: [u8; 16],
        message_id: i64,
    },
    /// A 1:1 message's disappearing timer ran out: it is gone from the store.
    MessageExpired { peer: AccountId, message_id: i64 },
    /// The other side set the disappearing timer of the conversation with
    /// `peer` (seconds, 0 off): texts from now on go after that long.
    ConversationTimerChanged { peer: AccountId, secs: u32 },
    /// A channel message's disappearing timer ran out: it is gone from the store.
    ChannelMessageExpired {
        channel_id: [u8; 16],
        message_id: i64,
    },
    /// An edit or delete of someone else's channel message: refused.
    ChannelChangeRejected {
        channel_id: [u8; 16],
        sender: AccountId,
    },
    /// A message from an account awaiting the user's decision was stored, held.
    MessageHeld { from: AccountId, message_id: i64 },
    /// A message from `from` could not be read (its sender key or our session
    /// with them is missing): kept, and its sender asked to send it again.
    /// [`crate::Account::unreadable_messages`] lists those still waiting.
    MessageUnreadable { from: AccountId },
    /// An account we had not met opened a session with us.
    ContactAdded { account: AccountId },
    /// `new_account` claims to replace `contact`; accept or reject it.
    IdentityChanged {
        contact: AccountId,
        new_account: AccountId,
    },
    /// Someone presented an identity key that does not belong to `account`:
    /// a swapped key, refused.
    IdentityMismatch { account: AccountId },
    /// A committee's membership log changed (members, roles, name, channels…).
    CommitteeChanged { committee_id: CommitteeId },
    /// An entry of a committee's log was not applied: the fold rejected it.
    CommitteeChangeRejected {
        committee_id: CommitteeId,
        reason: RejectReason,
    },
    /// This account was added to a committee (its whole log arrived).
    AddedToCommittee { committee_id: CommitteeId },
    /// A channel message came from someone who may not post there (not a
    /// member, or not allowed in an announcement channel): dropped.
    ChannelMessageRejected {
        channel_id: [u8; 16],
        sender: AccountId,
    },
    /// This device (an organizer's) admitted a newcomer from an invite.
    MemberAdmitted {
        committee_id: CommitteeId,
        account: AccountId,
    },
    /// A join request this device received was refused (wrong secret, invite
    /// expired, used up or revoked, or we are no longer an organizer).
    JoinRefused {
        committee_id: CommitteeId,
        account: AccountId,
        reason: RejectReason,
    },
    /// An alert arrived for the first time: show it (full screen).
    AlertReceived {
        alert_id: crate::alert::AlertId,
        via: CommitteeId,
    },
    /// A reminder of an alert not yet answered: show it again.
    AlertRenotified { alert_id: crate::alert::AlertId },
    /// An alert waits for this organizer's approval before entering a committee.
    AlertHeld {
        alert_id: crate::alert::AlertId,
        committee_id: CommitteeId,
    },
    /// Someone answered an alert this device delivered to them.
    AlertAnswered {
        alert_id: crate::alert::AlertId,
        from: AccountId,
        answer: crate::alert::AlertAnswer,
    },
    /// Counts of answers to an alert this device raised or passed on came
    /// back from further along the cascade: its status changed.
    AlertCountsChanged { alert_id: crate::alert::AlertId },
    /// An organizer of another committee proposes a link with ours.
    LinkProposed {
        proposal_id: [u8; 16],
        from: AccountId,
        target: CommitteeId,
    },
}
