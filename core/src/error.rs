//! The core's error type. Messages name ids, counts and lengths, never keys,
//! plaintext or database contents.

use crate::account_id::AccountId;

/// Everything that can go wrong in the core.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database key does not open this database (or the file is not a database).
    #[error("the database key does not open this database")]
    WrongDatabaseKey,
    /// A store was to be created where one already exists.
    #[error("a store already exists at this path")]
    StoreExists,
    /// A store was to be opened where there is none.
    #[error("no store exists at this path")]
    StoreMissing,
    /// The store was written by a newer version of Rankfile.
    #[error(
        "the store's schema version {found} is newer than this build understands ({supported})"
    )]
    SchemaTooNew { found: u32, supported: u32 },
    /// The store exists but holds no account (it was never initialised).
    #[error("the store holds no account")]
    NoAccount,
    /// A database key of the wrong length.
    #[error("a database key must be 32 bytes, got {0}")]
    DatabaseKeyLength(usize),

    /// An account ID's text form did not parse or its checksum failed.
    #[error("not a valid account ID: {0}")]
    InvalidAccountId(&'static str),
    /// A prekey bundle that is malformed or whose signatures do not verify.
    #[error("invalid prekey bundle: {0}")]
    InvalidBundle(&'static str),
    /// An envelope that does not parse or is missing a field.
    #[error("invalid envelope: {0}")]
    InvalidEnvelope(&'static str),
    /// Decrypted content that does not parse.
    #[error("invalid message content: {0}")]
    InvalidContent(&'static str),
    /// The ciphertext failed to decrypt or authenticate.
    #[error("the message could not be decrypted ({0})")]
    DecryptionFailed(&'static str),
    /// An identity key that does not hash to the account ID it claims: a swapped key.
    /// It can never be accepted.
    #[error("the identity key presented for account {0} does not belong to it")]
    IdentityMismatch(AccountId),
    /// The peer's identity changed and the user has not accepted the change yet.
    #[error("the identity of {0} changed; it must be accepted before messages flow")]
    IdentityChangePending(AccountId),
    /// No session exists with this peer: import its bundle first.
    #[error("no session with {0}")]
    NoSession(AccountId),
    /// The session does not use the post-quantum ratchet (SPQR): refused as a downgrade.
    #[error("the session with {0} lacks the post-quantum ratchet; refused as a downgrade")]
    PostQuantumRequired(AccountId),
    /// A message from our own account (a reflection): refused.
    #[error("a message addressed from our own account was refused")]
    FromSelf,
    /// No contact by this account ID.
    #[error("no contact {0}")]
    UnknownContact(AccountId),
    /// A safety-number comparison that did not match.
    #[error("the safety numbers do not match")]
    SafetyNumberMismatch,
    /// The relay presented a sealed-sender trust root other than the one
    /// recorded at first contact.
    #[error("the relay's sealed-sender trust root changed")]
    RelayTrustRootChanged,
    /// A disappearing timer longer than the core accepts.
    #[error("disappearing timer too long: {secs} s, at most {max} s")]
    TimerTooLong { secs: u32, max: u32 },
    /// A message larger than the core accepts.
    #[error("message too large: {len} bytes, at most {max}")]
    MessageTooLarge { len: usize, max: usize },
    /// An attachment that is malformed, too large, or does not match its
    /// pointer (address, key, size or digest).
    #[error("invalid attachment: {0}")]
    InvalidAttachment(&'static str),
    /// No channel message by this local ID (never here, deleted or expired).
    #[error("no channel message {0}")]
    UnknownChannelMessage(i64),
    /// A message has no attachment at this position.
    #[error("channel message {message_id} has no attachment {position}")]
    UnknownAttachment { message_id: i64, position: u32 },
    /// Only a message's author may edit or delete it: this one is not ours.
    #[error("channel message {0} was written by someone else")]
    NotOwnMessage(i64),
    /// An edit or delete of a channel message sent by someone other than its
    /// author: refused.
    #[error("{0} tried to change a channel message it did not write")]
    NotMessageAuthor(AccountId),

    /// Sealed and channel sends need the recipient's access key, which arrives
    /// inside its messages: none has come from this account yet.
    #[error("no access key from {0} yet; it arrives with their first message")]
    NoAccessKey(AccountId),
    /// Sealed and channel sends need a sender certificate from the relay.
    #[error("no valid sender certificate; connect to the relay first")]
    NoSenderCertificate,
    /// Not connected to the relay just now; the operation needs it.
    #[error("not connected to the relay")]
    Offline,
    /// This account was deleted at its relay (`Client::delete_account`); the
    /// local store stays readable, but it no longer connects.
    #[error("this account was deleted at the relay")]
    AccountDeletedAtRelay,
    /// An invite link names a relay other than the one this device uses: one
    /// device talks to one relay.
    #[error("the invite is for another relay than this device's")]
    OtherRelay,
    /// The relay refused a request.
    #[error("the relay refused: {code}: {message}")]
    Relay { code: String, message: String },
    /// The connection to the relay failed.
    #[error("connection to the relay failed: {0}")]
    Transport(String),
    /// libsignal reported an error not covered by a variant above.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The database reported an error.
    #[error("storage error: {0}")]
    Storage(String),
    /// A file-system error (panic wipe, opening).
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),

    /// A committee log entry that does not parse or breaks the log's shape
    /// (a second genesis, a missing parent list, a field of the wrong length).
    #[error("invalid committee entry: {0}")]
    InvalidCommitteeEntry(&'static str),
    /// A committee log entry whose signature does not verify under its author's key.
    #[error("the signature on committee entry {0} does not verify")]
    CommitteeSignatureInvalid(crate::committee::EntryHash),
    /// A committee log entry that belongs to another committee.
    #[error("the entry belongs to committee {found}, not {expected}")]
    WrongCommittee {
        expected: crate::committee::CommitteeId,
        found: crate::committee::CommitteeId,
    },
    /// A committee change the current membership does not allow.
    #[error("committee change refused: {0}")]
    CommitteeChangeRefused(crate::committee::RejectReason),
    /// Too many committee entries are waiting for their parents.
    #[error("{held} committee entries already wait for their parents (at most {max})")]
    CommitteePendingFull { held: usize, max: usize },
    /// A committee entry by someone the log never names as a member.
    #[error("committee entry {0} is by someone who never was a member")]
    CommitteeEntryFromNonMember(crate::committee::EntryHash),
    /// An invite link or QR payload that does not parse.
    #[error("invalid invite: {0}")]
    InvalidInvite(crate::committee::InviteTokenError),
    /// No such committee on this device.
    #[error("unknown committee {0}")]
    UnknownCommittee(crate::committee::CommitteeId),
    /// This account is not (or no longer) a member of the committee.
    #[error("not a member of committee {0}")]
    NotACommitteeMember(crate::committee::CommitteeId),
    /// The committee has no such channel.
    #[error("committee {0} has no such channel")]
    UnknownChannel(crate::committee::CommitteeId),
    /// Our role may not post in this channel.
    #[error("not allowed to post in this channel of committee {0}")]
    MayNotPost(crate::committee::CommitteeId),
    /// A channel message from an account that may not post there.
    #[error("channel message from {0}, who may not post there")]
    ChannelSenderRefused(AccountId),
    /// A post with nobody to receive it (we are the only member).
    #[error("committee {0} has no other member to post to")]
    NoOtherMembers(crate::committee::CommitteeId),
    /// A join from an invite to a committee this account is already in.
    #[error("already a member of committee {0}")]
    AlreadyInCommittee(crate::committee::CommitteeId),
    /// A co-member's bundle from the relay carries another identity key than
    /// the committee's log records for them: refused.
    #[error("the relay's key for {0} is not the one the committee log records")]
    MemberKeyMismatch(AccountId),
    /// Only organizers and delegates raise alerts (and only organizers
    /// approve a held one).
    #[error("not allowed to send alerts in committee {0}")]
    MayNotAlert(crate::committee::CommitteeId),
    /// An alert from a member who may not raise or forward one there.
    #[error("alert from {0}, who may not send alerts there")]
    AlertSenderRefused(AccountId),
    /// No such alert on this device.
    #[error("unknown alert {0}")]
    UnknownAlert(crate::alert::AlertId),
    /// The alert has expired and takes no more answers.
    #[error("alert {0} has expired")]
    AlertExpired(crate::alert::AlertId),
    /// An alert that is not what its raiser signed (bad signature, or other
    /// bytes than the alert stored under its ID), or whose raiser may not
    /// alert in the committee it names: refused, nothing stored.
    #[error("alert refused: {0}")]
    InvalidAlert(&'static str),
    /// No such link proposal here.
    #[error("unknown link proposal")]
    UnknownLinkProposal,
}

/// The core's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        // rusqlite's messages carry SQLite's text, which names tables and
        // constraints but never row values.
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::NotADatabase) => Error::WrongDatabaseKey,
            _ => Error::Storage(e.to_string()),
        }
    }
}

impl From<libsignal_protocol::SignalProtocolError> for Error {
    fn from(e: libsignal_protocol::SignalProtocolError) -> Self {
        use libsignal_protocol::SignalProtocolError as E;
        match e {
            E::InvalidMessage(..)
            | E::CiphertextMessageTooShort(_)
            | E::InvalidProtobufEncoding
            | E::NoKeyTypeIdentifier
            | E::InvalidSessionStructure(_) => Error::DecryptionFailed("bad message"),
            E::DuplicatedMessage(..) => Error::DecryptionFailed("message key already used"),
            E::LegacyCiphertextVersion(_) | E::UnrecognizedCiphertextVersion(_) => {
                Error::DecryptionFailed("unsupported message version")
            }
            E::InvalidPreKeyId | E::InvalidSignedPreKeyId | E::InvalidKyberPreKeyId => {
                Error::DecryptionFailed("unknown prekey")
            }
            E::NoSenderKeyState { .. } | E::InvalidSenderKeySession { .. } => {
                Error::DecryptionFailed("no sender key from this member")
            }
            E::SignatureValidationFailed => Error::InvalidBundle("signature does not verify"),
            E::BadKeyType(_)
            | E::BadKeyLength(..)
            | E::BadKEMKeyType(_)
            | E::WrongKEMKeyType(..)
            | E::BadKEMKeyLength(..)
            | E::BadKEMCiphertextLength(..) => Error::DecryptionFailed("malformed key"),
            // Our own store callbacks box a core error; give it back unchanged.
            E::ApplicationCallbackError(_, inner) => {
                let inner: &(dyn std::error::Error + 'static) = &*inner;
                match inner.downcast_ref::<CallbackError>() {
                    Some(CallbackError::IdentityMismatch(id)) => Error::IdentityMismatch(*id),
                    Some(CallbackError::Storage(s)) => Error::Storage(s.clone()),
                    None => Error::Protocol(inner.to_string()),
                }
            }
            // Other variants carry libsignal's own text: addresses (account IDs
            // here) and counters, never key material.
            other => Error::Protocol(other.to_string()),
        }
    }
}

/// What our libsignal store callbacks report through libsignal, which wants
/// errors that are `UnwindSafe` (so not [`Error`] itself, which can hold an
/// `io::Error`). [`Error::from`] turns it back.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CallbackError {
    #[error("the identity key presented for account {0} does not belong to it")]
    IdentityMismatch(AccountId),
    #[error("storage error: {0}")]
    Storage(String),
}

impl From<Error> for CallbackError {
    fn from(e: Error) -> Self {
        match e {
            Error::IdentityMismatch(id) => CallbackError::IdentityMismatch(id),
            other => CallbackError::Storage(other.to_string()),
        }
    }
}
