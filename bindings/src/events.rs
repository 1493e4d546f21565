//! Events across the FFI: the listener trait the app implements, the
//! [`ClientEvent`] enum it receives (a translation of the core's `Event` and
//! the client's connection and delivery news), and the thread that carries
//! them from the core's broadcast to the listener.
//!
//! Events name what changed (IDs), never content: the app reads the message,
//! post or alert through the client, as the core's own events intend.

use std::sync::Arc;

use rankfile_core::transport::{
    ClientEvent as CoreClientEvent, ConnectionState as CoreState, DeliveryState as CoreDelivery,
};
use rankfile_core::Event as Core;
use tokio::sync::broadcast::{self, error::RecvError};

use crate::alerts::AlertAnswer;
use crate::ids;

/// Implemented by the app: receives every event of one client, in order, on
/// a thread of the bindings (one per client). Return quickly: the next event
/// waits for this call.
#[uniffi::export(with_foreign)]
pub trait ClientListener: Send + Sync {
    fn on_event(&self, event: ClientEvent);
}

/// The connection to the relay.
#[derive(uniffi::Enum, Clone, Debug, PartialEq, Eq)]
pub enum ConnectionState {
    Connecting,
    /// Logged in; `queued` messages waited at the relay.
    Connected {
        queued: u64,
    },
    /// Lost or refused; the next attempt comes after `retry_in_ms`.
    Disconnected {
        retry_in_ms: u64,
    },
    Stopped,
}

impl From<CoreState> for ConnectionState {
    fn from(s: CoreState) -> Self {
        match s {
            CoreState::Connecting => ConnectionState::Connecting,
            CoreState::Connected { queued } => ConnectionState::Connected { queued },
            // The reason names the relay's address: logged, not shown.
            CoreState::Disconnected {
                reason,
                retry_in_ms,
            } => {
                tracing::debug!("disconnected: {reason}");
                ConnectionState::Disconnected { retry_in_ms }
            }
            _ => ConnectionState::Stopped,
        }
    }
}

/// Where an outgoing message is.
#[derive(uniffi::Enum, Clone, Debug, PartialEq, Eq)]
pub enum DeliveryState {
    /// Encrypted and stored on this phone; waiting for the relay.
    Queued,
    /// The relay has it.
    Sent,
    /// The relay refused it for good.
    Failed,
}

/// Something for the app to show or act on. IDs are account IDs (`rf1-…`)
/// or hex (committees, channels, alerts, proposals); `message_id`s are the
/// local IDs `history` and `channel_posts` return.
#[derive(uniffi::Enum, Clone, Debug, PartialEq, Eq)]
pub enum ClientEvent {
    /// A 1:1 message was stored.
    MessageReceived { peer: String, message_id: i64 },
    /// A 1:1 message from an account awaiting the user's decision was held.
    MessageHeld { from: String, message_id: i64 },
    /// A 1:1 message's disappearing timer ran out: it is gone.
    MessageExpired { peer: String, message_id: i64 },
    /// The other side set the conversation's disappearing timer.
    ConversationTimerChanged { peer: String, secs: u32 },
    /// A post in a channel was stored.
    PostReceived {
        channel_id: String,
        sender: String,
        message_id: i64,
    },
    /// Its author edited a post: read it again.
    PostEdited { channel_id: String, message_id: i64 },
    /// Its author deleted a post, or its timer ran out: it is gone.
    PostRemoved { channel_id: String, message_id: i64 },
    /// A post, edit or delete from someone who may not make it: dropped.
    PostRefused { channel_id: String, sender: String },
    /// A message that could not be read; its sender was asked to send it
    /// again when known.
    Unreadable { from: Option<String> },
    /// An account we had not met opened a session with us.
    ContactAdded { account_id: String },
    /// A contact's identity changed: accept or reject it.
    IdentityChanged {
        contact: String,
        new_account: String,
    },
    /// A key that does not belong to its account was presented: refused.
    IdentityMismatch { account_id: String },
    /// A committee's membership, roles, name or channels changed.
    CommitteeChanged { committee_id: String },
    /// A change to a committee's log was refused.
    CommitteeChangeRefused { committee_id: String },
    /// This account was admitted to a committee.
    AddedToCommittee { committee_id: String },
    /// This (organizer's) phone admitted a newcomer from an invite.
    MemberJoined {
        committee_id: String,
        account_id: String,
    },
    /// A join request this phone received was refused.
    JoinRefused {
        committee_id: String,
        account_id: String,
    },
    /// An alert arrived: show it full screen.
    AlertReceived { alert_id: String, via: String },
    /// A reminder of an alert not yet answered.
    AlertRenotified { alert_id: String },
    /// An alert waits for this organizer's approval.
    AlertHeld {
        alert_id: String,
        committee_id: String,
    },
    /// Someone answered an alert this phone delivered to them.
    AlertAnswered {
        alert_id: String,
        from: String,
        answer: AlertAnswer,
    },
    /// Counts of answers came back from further along: re-read the status.
    AlertCountsChanged { alert_id: String },
    /// An organizer of another committee proposes a link with ours.
    LinkProposed {
        proposal_id: String,
        from: String,
        committee_id: String,
    },
    /// The connection changed.
    Connection { state: ConnectionState },
    /// An outgoing message moved on.
    Delivery {
        recipient: String,
        state: DeliveryState,
    },
    /// Everything that waited at the relay has been received and stored.
    CaughtUp,
    /// The app fell this many events behind and they were dropped: re-read
    /// what it shows.
    Missed { count: u64 },
    /// A change this version of the bindings does not describe: re-read.
    Other,
}

impl From<Core> for ClientEvent {
    fn from(e: Core) -> Self {
        use ClientEvent as E;
        let a = |id: rankfile_core::AccountId| id.to_string();
        match e {
            Core::MessageStored { peer, message_id } => E::MessageReceived {
                peer: a(peer),
                message_id,
            },
            Core::MessageHeld { from, message_id } => E::MessageHeld {
                from: a(from),
                message_id,
            },
            Core::MessageExpired { peer, message_id } => E::MessageExpired {
                peer: a(peer),
                message_id,
            },
            Core::ConversationTimerChanged { peer, secs } => E::ConversationTimerChanged {
                peer: a(peer),
                secs,
            },
            Core::ChannelMessageStored {
                channel_id,
                sender,
                message_id,
            } => E::PostReceived {
                channel_id: ids::hex(channel_id),
                sender: a(sender),
                message_id,
            },
            Core::ChannelMessageEdited {
                channel_id,
                message_id,
            } => E::PostEdited {
                channel_id: ids::hex(channel_id),
                message_id,
            },
            Core::ChannelMessageDeleted {
                channel_id,
                message_id,
            }
            | Core::ChannelMessageExpired {
                channel_id,
                message_id,
            } => E::PostRemoved {
                channel_id: ids::hex(channel_id),
                message_id,
            },
            Core::ChannelChangeRejected { channel_id, sender }
            | Core::ChannelMessageRejected { channel_id, sender } => E::PostRefused {
                channel_id: ids::hex(channel_id),
                sender: a(sender),
            },
            Core::MessageUnreadable { from } => E::Unreadable {
                from: Some(a(from)),
            },
            Core::ContactAdded { account } => E::ContactAdded {
                account_id: a(account),
            },
            Core::IdentityChanged {
                contact,
                new_account,
            } => E::IdentityChanged {
                contact: a(contact),
                new_account: a(new_account),
            },
            Core::IdentityMismatch { account } => E::IdentityMismatch {
                account_id: a(account),
            },
            Core::CommitteeChanged { committee_id } => E::CommitteeChanged {
                committee_id: ids::hex(committee_id.0),
            },
            Core::CommitteeChangeRejected { committee_id, .. } => E::CommitteeChangeRefused {
                committee_id: ids::hex(committee_id.0),
            },
            Core::AddedToCommittee { committee_id } => E::AddedToCommittee {
                committee_id: ids::hex(committee_id.0),
            },
            Core::MemberAdmitted {
                committee_id,
                account,
            } => E::MemberJoined {
                committee_id: ids::hex(committee_id.0),
                account_id: a(account),
            },
            Core::JoinRefused {
                committee_id,
                account,
                ..
            } => E::JoinRefused {
                committee_id: ids::hex(committee_id.0),
                account_id: a(account),
            },
            Core::AlertReceived { alert_id, via } => E::AlertReceived {
                alert_id: ids::hex(alert_id.0),
                via: ids::hex(via.0),
            },
            Core::AlertRenotified { alert_id } => E::AlertRenotified {
                alert_id: ids::hex(alert_id.0),
            },
            Core::AlertHeld {
                alert_id,
                committee_id,
            } => E::AlertHeld {
                alert_id: ids::hex(alert_id.0),
                committee_id: ids::hex(committee_id.0),
            },
            Core::AlertAnswered {
                alert_id,
                from,
                answer,
            } => E::AlertAnswered {
                alert_id: ids::hex(alert_id.0),
                from: a(from),
                answer: answer.into(),
            },
            Core::AlertCountsChanged { alert_id } => E::AlertCountsChanged {
                alert_id: ids::hex(alert_id.0),
            },
            Core::LinkProposed {
                proposal_id,
                from,
                target,
            } => E::LinkProposed {
                proposal_id: ids::hex(proposal_id),
                from: a(from),
                committee_id: ids::hex(target.0),
            },
            _ => E::Other,
        }
    }
}

impl From<CoreClientEvent> for ClientEvent {
    fn from(e: CoreClientEvent) -> Self {
        match e {
            CoreClientEvent::Core(e) => e.into(),
            CoreClientEvent::Connection(state) => ClientEvent::Connection {
                state: state.into(),
            },
            CoreClientEvent::Delivery {
                recipient, state, ..
            } => ClientEvent::Delivery {
                recipient: recipient.to_string(),
                state: match state {
                    CoreDelivery::Queued => DeliveryState::Queued,
                    CoreDelivery::Sent => DeliveryState::Sent,
                    _ => DeliveryState::Failed,
                },
            },
            // The reason may name the sender: logged, not shown.
            CoreClientEvent::Undecryptable { reason } => {
                tracing::debug!("undecryptable delivery: {reason}");
                ClientEvent::Unreadable { from: None }
            }
            CoreClientEvent::CaughtUp => ClientEvent::CaughtUp,
            _ => ClientEvent::Other,
        }
    }
}

/// Carries a client's events to `listener` on a thread of its own, so a
/// slow listener never stalls the runtime. The thread ends when the client
/// is gone (the broadcast closes).
pub(crate) fn forward(
    mut events: broadcast::Receiver<CoreClientEvent>,
    listener: Arc<dyn ClientListener>,
) {
    let spawned = std::thread::Builder::new()
        .name("rankfile-events".into())
        .spawn(move || loop {
            let event = match events.blocking_recv() {
                Ok(e) => ClientEvent::from(e),
                Err(RecvError::Lagged(count)) => ClientEvent::Missed { count },
                Err(RecvError::Closed) => return,
            };
            listener.on_event(event);
        });
    if let Err(e) = spawned {
        // The client still works; the app then reads state without events.
        tracing::warn!("the event thread did not start: {e}");
    }
}
