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
//! from the order they arrived in (`fold.rs`):
//!
//! 1. **Order.** A topological sort by Kahn's algorithm: an entry comes after
//!    all its parents; among the entries ready at the same point, the one with
//!    the least key goes first, where the key is (0 for an op that restricts —
//!    Remove, ChangeRole, Leave, RevokeInvite, Unlink — else 1; for a
//!    restricting op, its author's seniority: the place in the fold where they
//!    last became an organizer, the founder first; then the entry hash). So a
//!    removal, demotion or revocation made at the same moment as another change
//!    is folded before it, and of two organizers removing each other at once
//!    the one who has been an organizer longer goes first — whatever either
//!    does to its entry's hash by choosing its time.
//! 2. **Fold.** Starting from the genesis, each entry in that order is checked
//!    twice. Its author must hold the role it needs (an organizer; a Leave
//!    needs only membership) in the state of the entry's own past: the role
//!    their last applied role change *among the entry's ancestors* gave them,
//!    so a promotion made concurrently counts for nothing. And the change must
//!    be allowed by the state the entries before it produced: the author still
//!    holds the role there (else the role went by a concurrent change:
//!    [`RejectReason::RevokedConcurrently`]), and the op makes sense then (no
//!    adding a member twice, no removing a non-member, no removing, demoting or
//!    letting leave the last organizer, invites must be open when cited, and so
//!    on: [`RejectReason`]). An entry that fails is skipped and reported in
//!    [`CommitteeLog::rejected`]; the fold goes on.
//! 3. **Strong removal.** An applied removal (or leave) of an author voids
//!    every entry by that author that is concurrent with it — neither is an
//!    ancestor of the other — and an applied demotion from organizer voids
//!    their concurrent entries that needed the role (all but a Leave). Entries
//!    before the removal (its ancestors) stand; entries after it fail step 2.
//!    Void entries are skipped, reported as `RevokedConcurrently`, and the fold
//!    runs again without them, until nothing more is voided. Each round voids
//!    every entry struck by a removal whose own author has nothing being
//!    voided; when every striking removal's author has entries being voided
//!    too (removals racing in a chain), only the first struck entry in fold
//!    order goes that round, so what the next round keeps is decided by the
//!    order of step 1 and nothing else.
//!
//! Two clients holding the same entries therefore compute the same order, the
//! same state and the same rejections. An entry can only be applied when it
//! leaves at least one organizer, so every state has one.
//!
//! Examples: an organizer removed by another signs, against heads from before
//! its removal (say against the genesis, with a time chosen so the entry
//! sorts first), an Add making an accomplice an organizer — the Add is
//! concurrent with the removal, so it is void on every client, and so is all
//! the accomplice then signs. A removes B while B removes A — A, the founder,
//! is senior, so A's removal is folded first and B's is void (B is no longer
//! a member there); one organizer stays. Both add C — the first Add applies,
//! the second is rejected as `AlreadyAMember`. A demotes B while B adds C —
//! B's Add is void.
//!
//! # Arrival
//!
//! A duplicate or replayed entry (same hash) is a no-op. An entry whose
//! parents are not all held yet waits, neither applied nor rejected, until
//! they arrive: at most [`MAX_PENDING`] entries, and at most
//! [`MAX_PENDING_PER_AUTHOR`] claiming one author, so nobody can fill the
//! queue for everyone. An entry whose parents are all here but whose author no
//! entry names as a member (by an Add or the genesis) is by someone who never
//! was a member: an error, never stored. An entry of another committee, a
//! second genesis, a malformed entry or a bad signature is an error and never
//! stored. An entry the fold rejects is still stored: later entries may name
//! it as a parent, and every client must hold the same set. The device's
//! receive path takes committee updates only from someone the log names
//! ([`CommitteeLog::knows`]), and a member holding entries that wait for
//! parents asks other members for what it lacks (`committee_sync`).

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
//!   Ask peers for what lies beyond [`CommitteeLog::heads`] when
//!   [`CommitteeLog::missing_parents`] is not empty; answer with
//!   [`CommitteeLog::entries_beyond`].
//! - Read: [`CommitteeLog::state`] (name, members and roles, invites,
//!   settings, version) and [`CommitteeLog::rejected`] to show the user.
//! - Persist [`CommitteeLog::entries`] (and [`CommitteeLog::pending`]): the
//!   state is always recomputed from them, never stored on its own.
//!
//! # Limits
//!
//! The rule is deterministic, not clairvoyant: a change made by an organizer
//! who is then removed concurrently is applied until the removal arrives, and
//! void from then on — a phone that has not yet heard of the removal shows it.
//! A member can still sign entries that every client stores (rejected), as
//! anyone can name a stranger in a (rejected) Add; their number is bounded
//! only by what the member's device sends.

mod entry;
mod fold;
mod invite;
mod log;
mod state;
mod types;

#[cfg(test)]
mod convergence_tests;
#[cfg(test)]
mod invite_tests;
#[cfg(test)]
mod removal_tests;
#[cfg(test)]
mod tests;

pub use entry::{
    Entry, Op, SignedEntry, MAX_ENTRY_LEN, MAX_INVITE_USES, MAX_LINK_DELEGATES, MAX_PARENTS,
};
pub use invite::{
    InviteSecret, InviteToken, InviteTokenError, JoinRequest, INVITE_LINK_PREFIX,
    INVITE_SECRET_LEN, MAX_OTHER_ORGANIZERS,
};
pub use log::{CommitteeLog, InsertOutcome, Rejection, MAX_PENDING, MAX_PENDING_PER_AUTHOR};
pub use state::{
    CommitteeState, Invite, Link, Member, RejectReason, MAX_CHANNELS, MAX_LINKS, MAX_MEMBERS,
    MAX_OPEN_INVITES,
};
pub use types::{
    AnnouncementPosters, ChannelId, ChannelKind, CommitteeId, CommitteeMeta, CommitteeSettings,
    EntryHash, InviteId, LinkPolicy, Role, CHANNEL_ID_LEN, COMMITTEE_ID_LEN, ENTRY_HASH_LEN,
    INVITE_ID_LEN, MAX_DISAPPEARING_SECS, MAX_META_LEN,
};
