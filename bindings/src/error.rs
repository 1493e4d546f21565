//! [`ClientError`]: the one error the bindings raise. Flat, with the cases an
//! app acts on, and messages a person can read. The core's errors name
//! accounts, committees and addresses; none of that crosses here (the core's
//! own message is logged at debug level only, as the project's logging rule
//! allows).

use rankfile_core::Error as Core;

/// What went wrong, in words an app can show.
#[derive(Debug, thiserror::Error, uniffi::Error)]
#[uniffi(flat_error)]
#[non_exhaustive]
pub enum ClientError {
    #[error("the database key does not open this store")]
    WrongDatabaseKey,
    #[error("a database key must be 32 bytes")]
    InvalidDatabaseKey,
    #[error("the store holds no account")]
    NoAccount,
    #[error("this store was written by a newer version of Rankfile")]
    StoreTooNew,
    #[error("that is not a valid account ID")]
    InvalidAccountId,
    #[error("that is not a valid ID")]
    InvalidId,
    #[error("that is not a valid invite link")]
    InvalidInvite,
    #[error("that is not a valid contact card")]
    InvalidContactCard,
    #[error("that is not a valid relay address or fingerprint")]
    InvalidRelay,
    #[error("the text is too long, empty, or not allowed there")]
    InvalidInput,
    #[error("not connected to the relay")]
    Offline,
    #[error("the relay refused the request")]
    RelayRefused,
    #[error("the relay's keys changed since this phone first met it")]
    RelayChanged,
    #[error("this account was deleted at the relay")]
    AccountDeleted,
    #[error("no such contact")]
    UnknownContact,
    #[error("no such committee on this phone")]
    UnknownCommittee,
    #[error("the committee has no such channel")]
    UnknownChannel,
    #[error("no such message")]
    UnknownMessage,
    #[error("no such alert on this phone")]
    UnknownAlert,
    #[error("the alert has expired")]
    AlertExpired,
    #[error("no such link proposal")]
    UnknownLinkProposal,
    #[error("this account is not a member of that committee")]
    NotAMember,
    #[error("already a member of that committee")]
    AlreadyAMember,
    #[error("this account's role does not allow that")]
    NotAllowed,
    #[error("nobody else is in the committee yet")]
    NoOtherMembers,
    #[error("no secure session with that contact yet")]
    NoSession,
    #[error("the contact's identity changed: accept or reject the change first")]
    IdentityChanged,
    #[error("a key was presented that does not belong to its account")]
    IdentityMismatch,
    #[error("the safety numbers do not match")]
    SafetyNumberMismatch,
    #[error("the client was shut down")]
    Closed,
    #[error("the store on this phone could not be read or written")]
    Storage,
    #[error("something went wrong inside Rankfile")]
    Internal,
}

impl From<Core> for ClientError {
    fn from(e: Core) -> Self {
        tracing::debug!("core error: {e}");
        match e {
            Core::WrongDatabaseKey => ClientError::WrongDatabaseKey,
            Core::DatabaseKeyLength(_) => ClientError::InvalidDatabaseKey,
            Core::NoAccount | Core::StoreMissing => ClientError::NoAccount,
            Core::SchemaTooNew { .. } => ClientError::StoreTooNew,
            Core::InvalidAccountId(_) => ClientError::InvalidAccountId,
            Core::InvalidInvite(_) => ClientError::InvalidInvite,
            Core::MessageTooLarge { .. }
            | Core::TimerTooLong { .. }
            | Core::InvalidCommitteeEntry(_)
            | Core::InvalidAttachment(_)
            | Core::InvalidAlert(_) => ClientError::InvalidInput,
            Core::Offline | Core::Transport(_) | Core::NoSenderCertificate => ClientError::Offline,
            Core::Relay { .. } => ClientError::RelayRefused,
            Core::RelayTrustRootChanged => ClientError::RelayChanged,
            Core::AccountDeletedAtRelay => ClientError::AccountDeleted,
            Core::UnknownContact(_) => ClientError::UnknownContact,
            Core::UnknownCommittee(_) => ClientError::UnknownCommittee,
            Core::UnknownChannel(_) => ClientError::UnknownChannel,
            Core::UnknownChannelMessage(_) | Core::UnknownAttachment { .. } => {
                ClientError::UnknownMessage
            }
            Core::UnknownAlert(_) => ClientError::UnknownAlert,
            Core::AlertExpired(_) => ClientError::AlertExpired,
            Core::UnknownLinkProposal => ClientError::UnknownLinkProposal,
            Core::NotACommitteeMember(_) => ClientError::NotAMember,
            Core::AlreadyInCommittee(_) => ClientError::AlreadyAMember,
            Core::MayNotPost(_)
            | Core::MayNotAlert(_)
            | Core::CommitteeChangeRefused(_)
            | Core::NotOwnMessage(_)
            | Core::FromSelf => ClientError::NotAllowed,
            Core::NoOtherMembers(_) => ClientError::NoOtherMembers,
            Core::NoSession(_) | Core::NoAccessKey(_) | Core::PostQuantumRequired(_) => {
                ClientError::NoSession
            }
            Core::IdentityChangePending(_) => ClientError::IdentityChanged,
            Core::IdentityMismatch(_) | Core::MemberKeyMismatch(_) => ClientError::IdentityMismatch,
            Core::SafetyNumberMismatch => ClientError::SafetyNumberMismatch,
            Core::Storage(_) | Core::Io(_) | Core::StoreExists => ClientError::Storage,
            _ => ClientError::Internal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The messages that cross the FFI carry none of what the core's name:
    /// no account ID, committee ID or address.
    #[test]
    fn messages_name_no_ids() {
        let id =
            rankfile_core::AccountId::from_bytes(&[7; rankfile_core::ACCOUNT_ID_LEN]).expect("id");
        let committee = rankfile_core::committee::CommitteeId([9; 16]);
        for core in [
            Core::UnknownContact(id),
            Core::NoSession(id),
            Core::IdentityChangePending(id),
            Core::NotACommitteeMember(committee),
            Core::MayNotPost(committee),
            Core::Transport("tcp connect to 10.1.2.3:4433 failed".into()),
        ] {
            let core_text = core.to_string();
            let text = ClientError::from(core).to_string();
            assert!(!text.contains(&id.to_string()), "{text}");
            assert!(!text.contains(&committee.to_string()), "{text}");
            assert!(!text.contains("10.1.2.3"), "{text}");
            assert_ne!(text, core_text);
        }
    }

    #[test]
    fn the_cases_an_app_acts_on_keep_their_own_variant() {
        assert!(matches!(
            ClientError::from(Core::WrongDatabaseKey),
            ClientError::WrongDatabaseKey
        ));
        assert!(matches!(
            ClientError::from(Core::InvalidInvite(
                rankfile_core::committee::InviteTokenError::NotBase32
            )),
            ClientError::InvalidInvite
        ));
        assert!(matches!(
            ClientError::from(Core::Offline),
            ClientError::Offline
        ));
    }
}
