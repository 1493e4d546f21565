//! Committees: the signed membership log, its convergence rule, and invites.
//!
//! Pure logic: no I/O, no database. The transport carries [`SignedEntry`]s
//! inside end-to-end encrypted content (the relay never sees a committee's
//! name, members or roles) and the store persists [`CommitteeLog::entries`].
//!
//! # The log
//!
//! A committee is a set of signed entries forming a DAG. Each entry names its
//! committee, its author (an account ID), the hashes of the entries its author
//! had as heads (its parents), and one op: Genesis, Add, Remove, ChangeRole,
//! Rename, Settings, CreateInvite, RevokeInvite, Leave, CreateChannel or
//! SetChannelTimer. The genesis is the
//! only entry without parents and carries the founder's identity key; an Add
//! carries the new member's key, so every author's key is in the log, and each
//! key is checked to hash to the account ID it claims. An entry is named by
//! SHA-256 over a domain label and its bytes, and signed with the author's
//! identity key over another domain label and the same bytes.
//!
//! # Convergence rule
//!
//! Every client computes the state from the set of entries it holds, never
//! from the order they arrived in:
//!
//! 1. **Order.** A topological sort by Kahn's algorithm: an entry comes after
//!    all its parents; among the entries ready at the same point, the one with
//!    the least key goes first, where the key is (0 for an op that restricts —
//!    Remove, ChangeRole, Leave, RevokeInvite — else 1, then the entry hash).
//!    So a removal, demotion or revocation made at the same moment as another
//!    change is folded before it.
//! 2. **Fold.** Starting from the genesis, each entry in that order is checked
//!    against the state the entries before it produced: its author must be a
//!    member and an organizer (a Leave needs only membership), and the op must
//!    make sense then (no adding a member twice, no removing a non-member, no
//!    removing, demoting or letting leave the last organizer, invites must be
//!    open when cited, and so on: [`RejectReason`]). An entry that fails is
//!    skipped and reported in [`CommitteeLog::rejected`]; the fold goes on.
//!
//! Two clients holding the same entries therefore compute the same order, the
//! same state and the same rejections. An entry can only be accepted when it
//! leaves at least one organizer, so every state has one.
//!
//! Examples: A removes B while B removes A — whichever sorts first (by hash;
//! both restrict) is applied, and the other's author is then no longer a
//! member, so it is rejected; one of them stays organizer. Both add C — the
//! first Add applies, the second is rejected as `AlreadyAMember`. A demotes B
//! while B adds C — the demotion restricts, so it goes first and B's Add is
//! rejected as `NotAnOrganizer`.
//!
//! # Arrival
//!
//! A duplicate or replayed entry (same hash) is a no-op. An entry whose
//! parents (or whose author's key) are not all held yet waits, neither applied
//! nor rejected, until they arrive. An entry of another committee, a second
//! genesis, a malformed entry or a bad signature is an error and never stored.
//! An entry the fold rejects is still stored: later entries may name it as a
//! parent, and every client must hold the same set.
//!
//! # Invites
//!
//! An organizer's [`CommitteeLog::create_invite`] records a CreateInvite entry
//! (invite ID, expiry, number of uses, and a hash of a random 16-byte secret)
//! and returns an [`InviteToken`]: committee ID, invite ID, secret and expiry,
//! shown as `rankfile://join/<base32>` and as the same text in a QR code. The
//! newcomer sends a [`JoinRequest`] (the token's fields and their identity
//! key) to an organizer's device, whose [`CommitteeLog::admit`] checks the
//! secret against the hash in the log and that the invite is neither revoked,
//! expired nor used up, then proposes an Add citing the invite. The fold
//! counts uses by applied Adds citing the invite and checks expiry against the
//! Add's own time, so two organizers admitting on a last use at the same
//! moment admit one newcomer on every client; the other Add is reported
//! `InviteUsedUp`. [`CommitteeLog::revoke_invite`] closes an invite.
//!
//! # Using it
//!
//! - Found: [`CommitteeLog::genesis`]; load: [`CommitteeLog::from_entries`]
//!   (any order); join: [`CommitteeLog::from_genesis`] then `insert` the rest.
//! - Change: [`CommitteeLog::propose`] checks the author may make the change
//!   now, names the current [`CommitteeLog::heads`] as parents, signs, applies,
//!   and returns the [`SignedEntry`] to send to every member.
//! - Receive: [`CommitteeLog::insert`] with the bytes; the [`InsertOutcome`]
//!   says applied, rejected (with its [`RejectReason`]), pending or duplicate.
//!   Ask peers for [`CommitteeLog::missing_parents`] when entries stay pending.
//! - Read: [`CommitteeLog::state`] (name, members and roles, invites,
//!   settings, version) and [`CommitteeLog::rejected`] to show the user.
//! - Persist [`CommitteeLog::entries`] (and [`CommitteeLog::pending`]): the
//!   state is always recomputed from them, never stored on its own.
//!
//! # Limits
//!
//! The rule is deterministic, not clairvoyant. An organizer who is being
//! removed can still sign entries against heads from before the removal; those
//! are concurrent with it, and are applied when they sort before it. Closing
//! that needs "strong removal" (voiding every entry by the removed member that
//! the removal does not precede), which this log does not do yet.

mod entry;
mod invite;
mod log;
mod state;
mod types;

#[cfg(test)]
mod convergence_tests;
#[cfg(test)]
mod invite_tests;
#[cfg(test)]
mod tests;

pub use entry::{
    Entry, Op, SignedEntry, MAX_ENTRY_LEN, MAX_INVITE_USES, MAX_LINK_DELEGATES, MAX_PARENTS,
};
pub use invite::{
    InviteSecret, InviteToken, InviteTokenError, JoinRequest, INVITE_LINK_PREFIX, INVITE_SECRET_LEN,
};
pub use log::{CommitteeLog, InsertOutcome, Rejection, MAX_PENDING};
pub use state::{
    CommitteeState, Invite, Link, Member, RejectReason, MAX_CHANNELS, MAX_LINKS, MAX_MEMBERS,
    MAX_OPEN_INVITES,
};
pub use types::{
    AnnouncementPosters, ChannelId, ChannelKind, CommitteeId, CommitteeMeta, CommitteeSettings,
    EntryHash, InviteId, LinkPolicy, Role, CHANNEL_ID_LEN, COMMITTEE_ID_LEN, ENTRY_HASH_LEN,
    INVITE_ID_LEN, MAX_DISAPPEARING_SECS, MAX_META_LEN,
};
