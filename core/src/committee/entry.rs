//! Log entries: the typed [`Op`] and [`Entry`], and [`SignedEntry`], the bytes
//! exactly as signed plus the author's signature, with their checked parsing.

use libsignal_protocol::{IdentityKey, IdentityKeyPair};
use prost::Message;
use rankfile_proto::v1 as pb;
use sha2::{Digest, Sha256};

use super::types::{
    ChannelId, ChannelKind, CommitteeId, CommitteeMeta, CommitteeSettings, EntryHash, InviteId,
    LinkPolicy, Role, ENTRY_HASH_LEN, MAX_DISAPPEARING_SECS,
};
use crate::account_id::AccountId;
use crate::error::{Error, Result};

/// Domain separation for the signature over an entry.
const SIGN_DOMAIN: &[u8] = b"rankfile committee entry signature v1";
/// Domain separation for the hash that names an entry.
const HASH_DOMAIN: &[u8] = b"rankfile committee entry hash v1";
/// Largest signed entry accepted, in bytes: the biggest op (a genesis or a
/// rename with four full text fields) plus [`MAX_PARENTS`] parents fits well.
pub const MAX_ENTRY_LEN: usize = 8 * 1024;
/// Most parents an entry may name. An author with more heads than this names
/// the first ones (by hash); the rest are merged by a later entry.
pub const MAX_PARENTS: usize = 64;
/// Largest `max_uses` on an invite: a whole workplace, not the world.
pub const MAX_INVITE_USES: u32 = 10_000;
/// Most delegates one committee names to a link.
pub const MAX_LINK_DELEGATES: usize = 16;

/// One change to a committee.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum Op {
    /// The first entry: the committee's description and its founder, who becomes
    /// its first organizer.
    Genesis {
        meta: CommitteeMeta,
        founder_key: IdentityKey,
    },
    /// A new member; `invite` is set when they were admitted on an invite.
    Add {
        account: AccountId,
        identity_key: IdentityKey,
        role: Role,
        invite: Option<InviteId>,
    },
    /// A member removed by an organizer.
    Remove { account: AccountId },
    /// A member's role changed.
    ChangeRole { account: AccountId, role: Role },
    /// The committee's description changed.
    Rename(CommitteeMeta),
    /// The settings replaced.
    Settings(CommitteeSettings),
    /// An invite made; the log holds only a hash of its secret.
    CreateInvite {
        invite_id: InviteId,
        expires_at_ms: u64,
        max_uses: u32,
        secret_hash: [u8; 32],
    },
    /// An invite withdrawn: no more admissions on it.
    RevokeInvite { invite_id: InviteId },
    /// The author leaves the committee.
    Leave,
    /// A channel of the committee.
    CreateChannel {
        channel_id: ChannelId,
        kind: ChannelKind,
    },
    /// A channel's disappearing-message timer (seconds, 0 off), replacing the
    /// committee's default for that channel.
    SetChannelTimer { channel_id: ChannelId, secs: u32 },
    /// In a council's log: a committee (or council) linked in, the members of
    /// this council who are its delegates, and how alerts from this council
    /// enter it. Replaces an earlier link of the same committee.
    Link {
        committee_id: CommitteeId,
        delegates: Vec<AccountId>,
        policy: LinkPolicy,
    },
    /// A link ended.
    Unlink { committee_id: CommitteeId },
}

impl Op {
    /// Ops that take authority or access away. Among entries that are ready at
    /// the same point of the fold these go first, so a removal, demotion or
    /// revocation wins over an ordinary change made at the same moment.
    pub(crate) fn restricts(&self) -> bool {
        matches!(
            self,
            Op::Remove { .. }
                | Op::ChangeRole { .. }
                | Op::Leave
                | Op::RevokeInvite { .. }
                | Op::Unlink { .. }
        )
    }
}

/// A parsed, structurally valid entry (not yet checked against any state).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Entry {
    /// The committee it belongs to.
    pub committee_id: CommitteeId,
    /// The author's heads when they made it; empty only for the genesis.
    pub parents: Vec<EntryHash>,
    /// Who signed it.
    pub author: AccountId,
    /// The author's clock, milliseconds since the epoch.
    pub created_at_ms: u64,
    /// The change.
    pub op: Op,
}

/// An entry as it travels and is stored: the entry's bytes as signed and the
/// author's signature over them.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SignedEntry {
    /// The protobuf `CommitteeLogEntry`, exactly as signed.
    pub entry: Vec<u8>,
    /// XEdDSA signature by the author's identity key over the domain label and `entry`.
    pub signature: Vec<u8>,
}

impl SignedEntry {
    /// Signs `entry` with `author` (whose account ID must be the entry's author).
    pub(crate) fn sign(author: &IdentityKeyPair, entry: &Entry) -> Result<Self> {
        let bytes = entry.to_wire().encode_to_vec();
        let signature = author
            .private_key()
            .calculate_signature(&signing_message(&bytes), &mut rand::rng())
            .map_err(libsignal_protocol::SignalProtocolError::from)?;
        Ok(SignedEntry {
            entry: bytes,
            signature: signature.to_vec(),
        })
    }

    /// The wire form (`SignedCommitteeEntry`).
    pub fn encode(&self) -> Vec<u8> {
        pb::SignedCommitteeEntry {
            entry: self.entry.clone(),
            signature: self.signature.clone(),
        }
        .encode_to_vec()
    }

    /// Reads the wire form.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > MAX_ENTRY_LEN {
            return Err(Error::InvalidCommitteeEntry("entry too large"));
        }
        let s = pb::SignedCommitteeEntry::decode(bytes)
            .map_err(|_| Error::InvalidCommitteeEntry("signed entry does not parse"))?;
        Ok(SignedEntry {
            entry: s.entry,
            signature: s.signature,
        })
    }

    /// The entry's name: SHA-256 over a domain label and the entry bytes. The
    /// signature is left out, so the same entry signed twice is one entry.
    pub fn hash(&self) -> EntryHash {
        let mut h = Sha256::new();
        h.update(HASH_DOMAIN);
        h.update(&self.entry);
        let mut out = [0u8; ENTRY_HASH_LEN];
        out.copy_from_slice(&h.finalize());
        EntryHash(out)
    }

    /// Parses the entry and checks its shape: lengths, known roles, limits,
    /// keys that hash to the IDs they claim. Says nothing about permissions.
    pub fn parse(&self) -> Result<Entry> {
        if self.entry.len() > MAX_ENTRY_LEN {
            return Err(Error::InvalidCommitteeEntry("entry too large"));
        }
        let e = pb::CommitteeLogEntry::decode(self.entry.as_slice())
            .map_err(|_| Error::InvalidCommitteeEntry("entry does not parse"))?;
        Entry::from_wire(e)
    }

    /// Whether the signature verifies under `key`.
    pub(crate) fn verify(&self, key: &IdentityKey) -> bool {
        key.public_key()
            .verify_signature(&signing_message(&self.entry), &self.signature)
    }
}

fn signing_message(entry: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(SIGN_DOMAIN.len() + entry.len());
    m.extend_from_slice(SIGN_DOMAIN);
    m.extend_from_slice(entry);
    m
}

fn identity_key(bytes: &[u8]) -> Result<IdentityKey> {
    IdentityKey::decode(bytes).map_err(|_| Error::InvalidCommitteeEntry("bad identity key"))
}

/// Checks that `key` is the key behind `account`.
fn bound(account: AccountId, key: &IdentityKey) -> Result<()> {
    if account.matches(key) {
        Ok(())
    } else {
        Err(Error::IdentityMismatch(account))
    }
}

fn meta(name: String, workplace: String, industry: String, region: String) -> CommitteeMeta {
    CommitteeMeta {
        name,
        workplace,
        industry,
        region,
    }
}

impl Entry {
    pub(crate) fn to_wire(&self) -> pb::CommitteeLogEntry {
        use pb::committee_log_entry::Op as W;
        let op = match &self.op {
            Op::Genesis { meta, founder_key } => W::Genesis(pb::CommitteeGenesis {
                name: meta.name.clone(),
                workplace: meta.workplace.clone(),
                industry: meta.industry.clone(),
                region: meta.region.clone(),
                founder_identity_key: founder_key.serialize().to_vec(),
            }),
            Op::Add {
                account,
                identity_key,
                role,
                invite,
            } => W::Add(pb::CommitteeAdd {
                account: account.as_bytes().to_vec(),
                identity_key: identity_key.serialize().to_vec(),
                role: role.to_wire(),
                invite_id: invite.map(|i| i.0.to_vec()).unwrap_or_default(),
            }),
            Op::Remove { account } => W::Remove(pb::CommitteeRemove {
                account: account.as_bytes().to_vec(),
            }),
            Op::ChangeRole { account, role } => W::ChangeRole(pb::CommitteeChangeRole {
                account: account.as_bytes().to_vec(),
                role: role.to_wire(),
            }),
            Op::Rename(m) => W::Rename(pb::CommitteeRename {
                name: m.name.clone(),
                workplace: m.workplace.clone(),
                industry: m.industry.clone(),
                region: m.region.clone(),
            }),
            Op::Settings(s) => W::Settings(s.to_wire()),
            Op::CreateInvite {
                invite_id,
                expires_at_ms,
                max_uses,
                secret_hash,
            } => W::CreateInvite(pb::CommitteeCreateInvite {
                invite_id: invite_id.0.to_vec(),
                expires_at_ms: *expires_at_ms,
                max_uses: *max_uses,
                secret_hash: secret_hash.to_vec(),
            }),
            Op::RevokeInvite { invite_id } => W::RevokeInvite(pb::CommitteeRevokeInvite {
                invite_id: invite_id.0.to_vec(),
            }),
            Op::Leave => W::Leave(pb::CommitteeLeave {}),
            Op::CreateChannel { channel_id, kind } => {
                W::CreateChannel(pb::CommitteeCreateChannel {
                    channel_id: channel_id.to_vec(),
                    kind: kind.to_wire(),
                })
            }
            Op::SetChannelTimer { channel_id, secs } => {
                W::ChannelTimer(pb::CommitteeChannelTimer {
                    channel_id: channel_id.to_vec(),
                    disappearing_timer_secs: *secs,
                })
            }
            Op::Link {
                committee_id,
                delegates,
                policy,
            } => W::Link(pb::CommitteeLink {
                committee_id: committee_id.0.to_vec(),
                delegates: delegates.iter().map(|d| d.as_bytes().to_vec()).collect(),
                policy: policy.to_wire(),
            }),
            Op::Unlink { committee_id } => W::Unlink(pb::CommitteeUnlink {
                committee_id: committee_id.0.to_vec(),
            }),
        };
        pb::CommitteeLogEntry {
            committee_id: self.committee_id.0.to_vec(),
            parents: self.parents.iter().map(|p| p.0.to_vec()).collect(),
            author: self.author.as_bytes().to_vec(),
            created_at_ms: self.created_at_ms,
            op: Some(op),
        }
    }

    fn from_wire(e: pb::CommitteeLogEntry) -> Result<Self> {
        use pb::committee_log_entry::Op as W;
        let committee_id = CommitteeId::from_bytes(&e.committee_id)?;
        if e.parents.len() > MAX_PARENTS {
            return Err(Error::InvalidCommitteeEntry("too many parents"));
        }
        let mut parents = e
            .parents
            .iter()
            .map(|p| EntryHash::from_bytes(p))
            .collect::<Result<Vec<_>>>()?;
        let named = parents.len();
        parents.sort();
        parents.dedup();
        if parents.len() != named {
            return Err(Error::InvalidCommitteeEntry("a parent named twice"));
        }
        let author = AccountId::from_bytes(&e.author)
            .map_err(|_| Error::InvalidCommitteeEntry("bad author ID"))?;
        let account = |b: &[u8]| {
            AccountId::from_bytes(b).map_err(|_| Error::InvalidCommitteeEntry("bad member ID"))
        };
        let op =
            match e.op {
                None => return Err(Error::InvalidCommitteeEntry("no op")),
                Some(W::Genesis(g)) => {
                    let founder_key = identity_key(&g.founder_identity_key)?;
                    bound(author, &founder_key)?;
                    let meta = meta(g.name, g.workplace, g.industry, g.region);
                    meta.check()?;
                    Op::Genesis { meta, founder_key }
                }
                Some(W::Add(a)) => {
                    let account = account(&a.account)?;
                    let identity_key = identity_key(&a.identity_key)?;
                    bound(account, &identity_key)?;
                    let invite = if a.invite_id.is_empty() {
                        None
                    } else {
                        Some(InviteId::from_bytes(&a.invite_id)?)
                    };
                    Op::Add {
                        account,
                        identity_key,
                        role: Role::from_wire(a.role)?,
                        invite,
                    }
                }
                Some(W::Remove(r)) => Op::Remove {
                    account: account(&r.account)?,
                },
                Some(W::ChangeRole(c)) => Op::ChangeRole {
                    account: account(&c.account)?,
                    role: Role::from_wire(c.role)?,
                },
                Some(W::Rename(r)) => {
                    let meta = meta(r.name, r.workplace, r.industry, r.region);
                    meta.check()?;
                    Op::Rename(meta)
                }
                Some(W::Settings(s)) => Op::Settings(CommitteeSettings::from_wire(&s)?),
                Some(W::CreateInvite(c)) => {
                    if c.max_uses == 0 || c.max_uses > MAX_INVITE_USES {
                        return Err(Error::InvalidCommitteeEntry("invite uses out of range"));
                    }
                    Op::CreateInvite {
                        invite_id: InviteId::from_bytes(&c.invite_id)?,
                        expires_at_ms: c.expires_at_ms,
                        max_uses: c.max_uses,
                        secret_hash: c
                            .secret_hash
                            .as_slice()
                            .try_into()
                            .map_err(|_| Error::InvalidCommitteeEntry("bad invite secret hash"))?,
                    }
                }
                Some(W::RevokeInvite(r)) => Op::RevokeInvite {
                    invite_id: InviteId::from_bytes(&r.invite_id)?,
                },
                Some(W::Leave(_)) => Op::Leave,
                Some(W::CreateChannel(c)) => Op::CreateChannel {
                    channel_id: c.channel_id.as_slice().try_into().map_err(|_| {
                        Error::InvalidCommitteeEntry("channel ID of the wrong length")
                    })?,
                    kind: ChannelKind::from_wire(c.kind)?,
                },
                Some(W::ChannelTimer(t)) => {
                    if t.disappearing_timer_secs > MAX_DISAPPEARING_SECS {
                        return Err(Error::InvalidCommitteeEntry("disappearing timer too long"));
                    }
                    Op::SetChannelTimer {
                        channel_id: t.channel_id.as_slice().try_into().map_err(|_| {
                            Error::InvalidCommitteeEntry("channel ID of the wrong length")
                        })?,
                        secs: t.disappearing_timer_secs,
                    }
                }
                Some(W::Link(l)) => {
                    if l.delegates.is_empty() || l.delegates.len() > MAX_LINK_DELEGATES {
                        return Err(Error::InvalidCommitteeEntry("link delegates out of range"));
                    }
                    let mut delegates = l
                        .delegates
                        .iter()
                        .map(|d| account(d))
                        .collect::<Result<Vec<_>>>()?;
                    let named = delegates.len();
                    delegates.sort();
                    delegates.dedup();
                    if delegates.len() != named {
                        return Err(Error::InvalidCommitteeEntry("a delegate named twice"));
                    }
                    Op::Link {
                        committee_id: CommitteeId::from_bytes(&l.committee_id)?,
                        delegates,
                        policy: LinkPolicy::from_wire(l.policy)?,
                    }
                }
                Some(W::Unlink(u)) => Op::Unlink {
                    committee_id: CommitteeId::from_bytes(&u.committee_id)?,
                },
            };
        // Only the genesis is a root, and the genesis is only a root.
        match (&op, parents.is_empty()) {
            (Op::Genesis { .. }, false) => {
                return Err(Error::InvalidCommitteeEntry("a genesis with parents"))
            }
            (Op::Genesis { .. }, true) | (_, false) => {}
            (_, true) => return Err(Error::InvalidCommitteeEntry("an entry without parents")),
        }
        Ok(Entry {
            committee_id,
            parents,
            author,
            created_at_ms: e.created_at_ms,
            op,
        })
    }
}
