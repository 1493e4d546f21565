//! A committee's state at one point of the fold, and the rules every entry is
//! checked against: who may make it, and whether the change makes sense then.

use std::collections::{BTreeMap, BTreeSet};

use libsignal_protocol::IdentityKey;

use super::entry::{Entry, Op};
use super::types::{
    ChannelId, ChannelKind, CommitteeId, CommitteeMeta, CommitteeSettings, InviteId, LinkPolicy,
    Role,
};
use crate::account_id::AccountId;
use crate::error::{Error, Result};

/// Most members a committee holds: a large workplace. Bigger bodies are
/// committees linked in councils, not one committee.
pub const MAX_MEMBERS: usize = 5_000;
/// Most invites open at once (not revoked, not used up, not expired at the
/// time of the entry): bounds the state a hostile organizer can grow.
pub const MAX_OPEN_INVITES: usize = 64;
/// Most channels a committee has: each costs every member a sender key.
pub const MAX_CHANNELS: usize = 256;
/// Most committees linked into one council.
pub const MAX_LINKS: usize = 256;

/// One member of a committee.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Member {
    /// Their role.
    pub role: Role,
    /// Their public identity key (hashes to their account ID).
    pub identity_key: IdentityKey,
}

/// An invite as the log records it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Invite {
    /// The organizer who made it.
    pub created_by: AccountId,
    /// When it stops admitting anyone, milliseconds since the epoch.
    pub expires_at_ms: u64,
    /// How many admissions it allows.
    pub max_uses: u32,
    /// Admissions made on it so far (applied Add entries citing it).
    pub uses: u32,
    /// Whether an organizer revoked it.
    pub revoked: bool,
    /// Hash of the token's secret (see [`super::InviteToken::secret_hash`]).
    pub secret_hash: [u8; 32],
}

impl Invite {
    /// Whether it still admits someone at `now_ms`; if not, why.
    pub fn check_open(&self, invite_id: InviteId, now_ms: u64) -> Result<(), RejectReason> {
        if self.revoked {
            Err(RejectReason::InviteRevoked(invite_id))
        } else if now_ms >= self.expires_at_ms {
            Err(RejectReason::InviteExpired(invite_id))
        } else if self.uses >= self.max_uses {
            Err(RejectReason::InviteUsedUp {
                invite: invite_id,
                max_uses: self.max_uses,
            })
        } else {
            Ok(())
        }
    }
}

/// Why an entry was not applied. The same on every client, since it depends
/// only on the entries folded before it.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RejectReason {
    /// The author is not a member (never was, or was removed or left).
    #[error("{0} is not a member")]
    NotAMember(AccountId),
    /// The author is a member but not an organizer.
    #[error("{0} is not an organizer")]
    NotAnOrganizer(AccountId),
    /// An Add for someone already a member.
    #[error("{0} is already a member")]
    AlreadyAMember(AccountId),
    /// A Remove or ChangeRole for someone not a member.
    #[error("{0} is not a member of the committee")]
    NoSuchMember(AccountId),
    /// The change would leave the committee without an organizer.
    #[error("{0} is the last organizer")]
    LastOrganizer(AccountId),
    /// A ChangeRole to the role the member already has, or a Rename or Settings
    /// that changes nothing.
    #[error("the change changes nothing")]
    NoChange,
    /// The committee is full.
    #[error("the committee already has {max} members")]
    TooManyMembers { max: usize },
    /// An invite ID used twice.
    #[error("invite {0} already exists")]
    InviteExists(InviteId),
    /// Too many open invites.
    #[error("{max} invites are already open")]
    TooManyInvites { max: usize },
    /// An Add or RevokeInvite citing an invite the log does not hold.
    #[error("no invite {0}")]
    UnknownInvite(InviteId),
    /// The invite was revoked.
    #[error("invite {0} was revoked")]
    InviteRevoked(InviteId),
    /// The invite expired before the admission.
    #[error("invite {0} has expired")]
    InviteExpired(InviteId),
    /// The invite has admitted as many as it allows.
    #[error("invite {invite} is used up ({max_uses} uses)")]
    InviteUsedUp { invite: InviteId, max_uses: u32 },
    /// The secret presented does not match the invite.
    #[error("the secret does not match invite {0}")]
    InviteSecretMismatch(InviteId),
    /// A channel ID used twice.
    #[error("the channel already exists")]
    ChannelExists,
    /// Too many channels.
    #[error("the committee already has {max} channels")]
    TooManyChannels { max: usize },
    /// A change to a channel the committee does not have.
    #[error("the committee has no such channel")]
    NoSuchChannel,
    /// A genesis where the log already has one, or a change proposed as a genesis.
    #[error("a committee has exactly one genesis")]
    NotTheGenesis,
    /// A council linking itself.
    #[error("a committee cannot link to itself")]
    LinkToItself,
    /// Too many committees linked into one council.
    #[error("the council already has {max} links")]
    TooManyLinks { max: usize },
    /// An Unlink of a committee that is not linked.
    #[error("committee {0} is not linked here")]
    NoSuchLink(CommitteeId),
    /// Void: the author was removed or demoted by a change made concurrently
    /// with this one (neither knew of the other), so it lacked the role.
    #[error("{0} lost the role this needs by a change made at the same time")]
    RevokedConcurrently(AccountId),
}

/// A committee as of some point of its log.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CommitteeState {
    /// The committee's ID.
    pub id: CommitteeId,
    /// Its name, workplace, industry and region.
    pub meta: CommitteeMeta,
    /// Its members by account ID.
    pub members: BTreeMap<AccountId, Member>,
    /// Every invite ever made, open or not.
    pub invites: BTreeMap<InviteId, Invite>,
    /// Its settings.
    pub settings: CommitteeSettings,
    /// Its channels by ID.
    pub channels: BTreeMap<ChannelId, ChannelKind>,
    /// Channels whose disappearing timer an organizer set (seconds, 0 off);
    /// the others follow the settings' timer. See [`CommitteeState::channel_timer`].
    pub channel_timers: BTreeMap<ChannelId, u32>,
    /// In a council: the committees (or councils) linked into it, by ID.
    pub links: BTreeMap<CommitteeId, Link>,
    /// Entries applied so far, the genesis included.
    pub version: u64,
}

/// A committee linked into a council, as the council's log records it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Link {
    /// Members of the council who are the committee's delegates; a removed or
    /// departed member stops being one.
    pub delegates: BTreeSet<AccountId>,
    /// How alerts from the council enter the committee.
    pub policy: LinkPolicy,
}

impl CommitteeState {
    /// The state the genesis entry makes: its founder the only member, an organizer.
    pub(crate) fn from_genesis(entry: &Entry) -> Result<Self> {
        let Op::Genesis { meta, founder_key } = &entry.op else {
            return Err(Error::InvalidCommitteeEntry(
                "the first entry is not a genesis",
            ));
        };
        let mut members = BTreeMap::new();
        members.insert(
            entry.author,
            Member {
                role: Role::Organizer,
                identity_key: *founder_key,
            },
        );
        Ok(CommitteeState {
            id: entry.committee_id,
            meta: meta.clone(),
            members,
            invites: BTreeMap::new(),
            settings: CommitteeSettings::default(),
            channels: BTreeMap::new(),
            channel_timers: BTreeMap::new(),
            links: BTreeMap::new(),
            version: 1,
        })
    }

    /// The members who are organizers.
    pub fn organizers(&self) -> impl Iterator<Item = &AccountId> {
        self.members
            .iter()
            .filter(|(_, m)| m.role == Role::Organizer)
            .map(|(id, _)| id)
    }

    /// The disappearing-message timer in force in a channel, in seconds (0
    /// off): the channel's own when an organizer set one, else the settings'.
    pub fn channel_timer(&self, channel: &ChannelId) -> u32 {
        self.channel_timers
            .get(channel)
            .copied()
            .unwrap_or(self.settings.disappearing_timer_secs)
    }

    /// A member's role, if they are a member.
    pub fn role(&self, account: &AccountId) -> Option<Role> {
        self.members.get(account).map(|m| m.role)
    }

    /// Applies `entry` if it is allowed now; otherwise changes nothing and says why.
    pub(crate) fn apply(&mut self, entry: &Entry) -> Result<(), RejectReason> {
        self.check(entry)?;
        let author = entry.author;
        match &entry.op {
            Op::Genesis { .. } => return Err(RejectReason::NotTheGenesis),
            Op::Add {
                account,
                identity_key,
                role,
                invite,
            } => {
                if let Some(i) = invite.and_then(|i| self.invites.get_mut(&i)) {
                    i.uses += 1;
                }
                self.members.insert(
                    *account,
                    Member {
                        role: *role,
                        identity_key: *identity_key,
                    },
                );
            }
            Op::Remove { account } => {
                self.members.remove(account);
                self.drop_delegate(account);
            }
            Op::Leave => {
                self.members.remove(&author);
                self.drop_delegate(&author);
            }
            Op::ChangeRole { account, role } => {
                if let Some(m) = self.members.get_mut(account) {
                    m.role = *role;
                }
            }
            Op::Rename(meta) => self.meta = meta.clone(),
            Op::Settings(s) => self.settings = *s,
            Op::CreateInvite {
                invite_id,
                expires_at_ms,
                max_uses,
                secret_hash,
            } => {
                self.invites.insert(
                    *invite_id,
                    Invite {
                        created_by: author,
                        expires_at_ms: *expires_at_ms,
                        max_uses: *max_uses,
                        uses: 0,
                        revoked: false,
                        secret_hash: *secret_hash,
                    },
                );
            }
            Op::RevokeInvite { invite_id } => {
                if let Some(i) = self.invites.get_mut(invite_id) {
                    i.revoked = true;
                }
            }
            Op::CreateChannel { channel_id, kind } => {
                self.channels.insert(*channel_id, *kind);
            }
            Op::SetChannelTimer { channel_id, secs } => {
                self.channel_timers.insert(*channel_id, *secs);
            }
            Op::Link {
                committee_id,
                delegates,
                policy,
            } => {
                self.links.insert(
                    *committee_id,
                    Link {
                        delegates: delegates.iter().copied().collect(),
                        policy: *policy,
                    },
                );
            }
            Op::Unlink { committee_id } => {
                self.links.remove(committee_id);
            }
        }
        self.version += 1;
        Ok(())
    }

    /// The rules, without changing anything.
    pub(crate) fn check(&self, entry: &Entry) -> Result<(), RejectReason> {
        let author = entry.author;
        let author_role = self.role(&author).ok_or(RejectReason::NotAMember(author))?;
        // Leave is the one change a member makes about themself alone.
        if matches!(entry.op, Op::Leave) {
            return self.keeps_an_organizer(author);
        }
        if author_role != Role::Organizer {
            return Err(RejectReason::NotAnOrganizer(author));
        }
        match &entry.op {
            Op::Genesis { .. } => Err(RejectReason::NotTheGenesis),
            Op::Leave => Ok(()),
            Op::Add {
                account, invite, ..
            } => {
                if self.members.contains_key(account) {
                    return Err(RejectReason::AlreadyAMember(*account));
                }
                if self.members.len() >= MAX_MEMBERS {
                    return Err(RejectReason::TooManyMembers { max: MAX_MEMBERS });
                }
                match invite {
                    None => Ok(()),
                    Some(id) => self
                        .invites
                        .get(id)
                        .ok_or(RejectReason::UnknownInvite(*id))?
                        .check_open(*id, entry.created_at_ms),
                }
            }
            Op::Remove { account } => {
                self.members
                    .get(account)
                    .ok_or(RejectReason::NoSuchMember(*account))?;
                self.keeps_an_organizer(*account)
            }
            Op::ChangeRole { account, role } => {
                let member = self
                    .members
                    .get(account)
                    .ok_or(RejectReason::NoSuchMember(*account))?;
                if member.role == *role {
                    return Err(RejectReason::NoChange);
                }
                if *role != Role::Organizer {
                    self.keeps_an_organizer(*account)?;
                }
                Ok(())
            }
            Op::Rename(meta) if *meta == self.meta => Err(RejectReason::NoChange),
            Op::Settings(s) if *s == self.settings => Err(RejectReason::NoChange),
            Op::Rename(_) | Op::Settings(_) => Ok(()),
            Op::CreateInvite { invite_id, .. } => {
                if self.invites.contains_key(invite_id) {
                    return Err(RejectReason::InviteExists(*invite_id));
                }
                let open = self
                    .invites
                    .iter()
                    .filter(|(id, i)| i.check_open(**id, entry.created_at_ms).is_ok())
                    .count();
                if open >= MAX_OPEN_INVITES {
                    return Err(RejectReason::TooManyInvites {
                        max: MAX_OPEN_INVITES,
                    });
                }
                Ok(())
            }
            Op::RevokeInvite { invite_id } => match self.invites.get(invite_id) {
                None => Err(RejectReason::UnknownInvite(*invite_id)),
                Some(i) if i.revoked => Err(RejectReason::InviteRevoked(*invite_id)),
                Some(_) => Ok(()),
            },
            Op::CreateChannel { channel_id, .. } => {
                if self.channels.contains_key(channel_id) {
                    Err(RejectReason::ChannelExists)
                } else if self.channels.len() >= MAX_CHANNELS {
                    Err(RejectReason::TooManyChannels { max: MAX_CHANNELS })
                } else {
                    Ok(())
                }
            }
            Op::SetChannelTimer { channel_id, secs } => {
                if !self.channels.contains_key(channel_id) {
                    Err(RejectReason::NoSuchChannel)
                } else if self.channel_timers.get(channel_id) == Some(secs) {
                    Err(RejectReason::NoChange)
                } else {
                    Ok(())
                }
            }
            Op::Link {
                committee_id,
                delegates,
                policy,
            } => {
                if *committee_id == self.id {
                    return Err(RejectReason::LinkToItself);
                }
                if let Some(d) = delegates.iter().find(|d| !self.members.contains_key(d)) {
                    return Err(RejectReason::NoSuchMember(*d));
                }
                let same = self.links.get(committee_id).is_some_and(|l| {
                    l.policy == *policy && l.delegates.iter().eq(delegates.iter())
                });
                if same {
                    Err(RejectReason::NoChange)
                } else if !self.links.contains_key(committee_id) && self.links.len() >= MAX_LINKS {
                    Err(RejectReason::TooManyLinks { max: MAX_LINKS })
                } else {
                    Ok(())
                }
            }
            Op::Unlink { committee_id } => {
                if self.links.contains_key(committee_id) {
                    Ok(())
                } else {
                    Err(RejectReason::NoSuchLink(*committee_id))
                }
            }
        }
    }

    /// A member who is gone stops being a delegate of any link.
    fn drop_delegate(&mut self, account: &AccountId) {
        for link in self.links.values_mut() {
            link.delegates.remove(account);
        }
    }

    /// Refuses a change that takes `account`'s organizer role away when they
    /// are the last organizer.
    fn keeps_an_organizer(&self, account: AccountId) -> Result<(), RejectReason> {
        let is_organizer = self.role(&account) == Some(Role::Organizer);
        if is_organizer && self.organizers().count() == 1 {
            Err(RejectReason::LastOrganizer(account))
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod channel_timer_tests {
    use super::super::entry::Op;
    use super::super::entry::SignedEntry;
    use super::super::tests::{add, forge, founded, person};
    use super::super::{CommitteeLog, InsertOutcome, MAX_DISAPPEARING_SECS};
    use super::*;

    fn refused(result: Result<SignedEntry>) -> RejectReason {
        match result {
            Err(Error::CommitteeChangeRefused(r)) => r,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    fn channel(log: &mut CommitteeLog, founder: &libsignal_protocol::IdentityKeyPair) -> ChannelId {
        let channel_id = [9u8; 16];
        log.propose(
            founder,
            Op::CreateChannel {
                channel_id,
                kind: ChannelKind::Discussion,
            },
        )
        .expect("channel");
        channel_id
    }

    #[test]
    fn an_organizer_sets_a_channel_timer_and_others_follow_the_settings() {
        let (mut log, _, founder) = founded();
        let channel_id = channel(&mut log, &founder.key);
        assert_eq!(log.state().channel_timer(&channel_id), 0);
        log.propose(
            &founder.key,
            Op::SetChannelTimer {
                channel_id,
                secs: 60,
            },
        )
        .expect("timer");
        assert_eq!(log.state().channel_timer(&channel_id), 60);
        // A channel without its own timer follows the committee's settings.
        let mut settings = log.state().settings;
        settings.disappearing_timer_secs = 3600;
        log.propose(&founder.key, Op::Settings(settings))
            .expect("settings");
        assert_eq!(log.state().channel_timer(&[1u8; 16]), 3600);
        assert_eq!(log.state().channel_timer(&channel_id), 60);
        // Setting the same timer again changes nothing; an unknown channel is refused.
        assert_eq!(
            refused(log.propose(
                &founder.key,
                Op::SetChannelTimer {
                    channel_id,
                    secs: 60
                }
            )),
            RejectReason::NoChange
        );
        assert_eq!(
            refused(log.propose(
                &founder.key,
                Op::SetChannelTimer {
                    channel_id: [2u8; 16],
                    secs: 5
                }
            )),
            RejectReason::NoSuchChannel
        );
    }

    #[test]
    fn a_member_s_timer_is_rejected_and_a_timer_over_the_limit_does_not_parse() {
        let (mut log, _, founder) = founded();
        let channel_id = channel(&mut log, &founder.key);
        let m = person();
        log.propose(&founder.key, add(&m, Role::Member))
            .expect("adds");
        let forged = forge(
            &log,
            &m,
            Op::SetChannelTimer {
                channel_id,
                secs: 1,
            },
        );
        assert_eq!(
            log.insert(&forged.encode()).expect("stored"),
            InsertOutcome::Rejected {
                reason: RejectReason::NotAnOrganizer(m.id),
                released: 0
            }
        );
        assert_eq!(log.state().channel_timer(&channel_id), 0);

        let too_long = forge(
            &log,
            &founder,
            Op::SetChannelTimer {
                channel_id,
                secs: MAX_DISAPPEARING_SECS + 1,
            },
        );
        assert!(matches!(
            too_long.parse(),
            Err(Error::InvalidCommitteeEntry(_))
        ));
    }
}
