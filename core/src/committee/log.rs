//! [`CommitteeLog`]: the entries one client holds, those waiting for their
//! parents, and the state folded from them in the deterministic order.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use libsignal_protocol::{IdentityKey, IdentityKeyPair};

use super::entry::{Entry, Op, SignedEntry, MAX_PARENTS};
use super::fold;
use super::state::{CommitteeState, RejectReason};
use super::types::{CommitteeId, CommitteeMeta, EntryHash};
use crate::account_id::AccountId;
use crate::clock::now_ms;
use crate::error::{Error, Result};

/// Most entries held while they wait for parents or for their author's key:
/// enough for a long offline spell, bounded against a flood.
pub const MAX_PENDING: usize = 1_024;
/// Most of those claiming one author: one member (or one forger using a
/// member's ID) cannot fill the queue that every member's entries share.
/// An organizer admitting a whole shift while we missed an entry stays well
/// under it; what is turned away is asked for again once its children name it.
pub const MAX_PENDING_PER_AUTHOR: usize = 256;

/// What [`CommitteeLog::insert`] did with an entry.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum InsertOutcome {
    /// Stored and applied. `released` pending entries that waited for it were
    /// stored too.
    Applied { released: usize },
    /// Stored, but the fold skipped it: the change was not allowed at its
    /// place in the order. It is also in [`CommitteeLog::rejected`].
    Rejected {
        reason: RejectReason,
        released: usize,
    },
    /// Held until `missing` parents (or its author's key) arrive; nothing applied.
    Pending { missing: usize },
    /// Already held: a no-op.
    Duplicate,
}

/// An entry the fold skipped, and why.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Rejection {
    /// The entry.
    pub entry_hash: EntryHash,
    /// Who signed it.
    pub author: AccountId,
    /// Why it was not applied.
    pub reason: RejectReason,
}

#[derive(Clone)]
struct Held {
    signed: SignedEntry,
    entry: Entry,
}

/// One client's copy of a committee's membership log.
#[derive(Clone)]
pub struct CommitteeLog {
    id: CommitteeId,
    genesis: EntryHash,
    /// Every verified entry, applied or rejected by the fold.
    entries: BTreeMap<EntryHash, Held>,
    /// Every identity key the log has carried, by account: keys are bound to
    /// IDs by hash, so a key from any entry, even a rejected one, is the key.
    keys: HashMap<AccountId, IdentityKey>,
    /// Entries waiting for parents or for their author's key.
    pending: BTreeMap<EntryHash, Held>,
    /// Entries no held entry names as a parent.
    heads: BTreeSet<EntryHash>,
    /// Stored entries in fold order.
    order: Vec<EntryHash>,
    state: CommitteeState,
    rejected: Vec<Rejection>,
}

impl CommitteeLog {
    /// Founds a committee: a fresh ID, `founder` its only member and organizer.
    /// Returns the log and the genesis entry to hand to the members to come.
    pub fn genesis(founder: &IdentityKeyPair, meta: CommitteeMeta) -> Result<(Self, SignedEntry)> {
        meta.check()?;
        let entry = Entry {
            committee_id: CommitteeId::random(),
            parents: Vec::new(),
            author: AccountId::from_identity_key(founder.identity_key()),
            created_at_ms: clock_ms(),
            op: Op::Genesis {
                meta,
                founder_key: *founder.identity_key(),
            },
        };
        let signed = SignedEntry::sign(founder, &entry)?;
        Ok((Self::from_genesis(&signed)?, signed))
    }

    /// A log holding only `genesis`, checked and verified.
    pub fn from_genesis(genesis: &SignedEntry) -> Result<Self> {
        let entry = genesis.parse()?;
        let Op::Genesis { founder_key, .. } = &entry.op else {
            return Err(Error::InvalidCommitteeEntry(
                "the first entry is not a genesis",
            ));
        };
        let hash = genesis.hash();
        if !genesis.verify(founder_key) {
            return Err(Error::CommitteeSignatureInvalid(hash));
        }
        let state = CommitteeState::from_genesis(&entry)?;
        let mut keys = HashMap::new();
        keys.insert(entry.author, *founder_key);
        let mut entries = BTreeMap::new();
        entries.insert(
            hash,
            Held {
                signed: genesis.clone(),
                entry,
            },
        );
        Ok(CommitteeLog {
            id: state.id,
            genesis: hash,
            entries,
            keys,
            pending: BTreeMap::new(),
            heads: BTreeSet::from([hash]),
            order: vec![hash],
            state,
            rejected: Vec::new(),
        })
    }

    /// A log from stored or received entries in any order: the genesis among
    /// them, the rest inserted. Entries still missing parents stay pending.
    pub fn from_entries(entries: impl IntoIterator<Item = SignedEntry>) -> Result<Self> {
        let mut genesis = None;
        let mut rest = Vec::new();
        for e in entries {
            if genesis.is_none() && matches!(e.parse()?.op, Op::Genesis { .. }) {
                genesis = Some(e);
            } else {
                rest.push(e);
            }
        }
        let genesis = genesis.ok_or(Error::InvalidCommitteeEntry("no genesis entry"))?;
        let mut log = Self::from_genesis(&genesis)?;
        for e in rest {
            log.insert_signed(e)?;
        }
        Ok(log)
    }

    /// The committee's ID.
    pub fn id(&self) -> CommitteeId {
        self.id
    }

    /// The genesis entry's hash.
    pub fn genesis_hash(&self) -> EntryHash {
        self.genesis
    }

    /// The committee as the fold of every held entry leaves it.
    pub fn state(&self) -> &CommitteeState {
        &self.state
    }

    /// Entries the fold skipped, in fold order.
    pub fn rejected(&self) -> &[Rejection] {
        &self.rejected
    }

    /// The entries no other entry names as a parent: what a new entry is made against.
    pub fn heads(&self) -> Vec<EntryHash> {
        self.heads.iter().copied().collect()
    }

    /// Every stored entry (applied or rejected) in fold order: what to persist
    /// and what to hand to a member catching up.
    pub fn entries(&self) -> impl Iterator<Item = &SignedEntry> {
        self.order
            .iter()
            .filter_map(|h| self.entries.get(h).map(|e| &e.signed))
    }

    /// Entries waiting for parents or for their author's key.
    pub fn pending(&self) -> impl Iterator<Item = &SignedEntry> {
        self.pending.values().map(|e| &e.signed)
    }

    /// Hashes that pending entries name as parents and this log does not hold:
    /// what to ask other members for.
    pub fn missing_parents(&self) -> BTreeSet<EntryHash> {
        self.pending
            .values()
            .flat_map(|p| p.entry.parents.iter())
            .filter(|h| !self.entries.contains_key(h) && !self.pending.contains_key(h))
            .copied()
            .collect()
    }

    /// Whether some stored entry names `account` with its key: a member now,
    /// once, or at least proposed as one. Only such an account's word about
    /// the committee is taken.
    pub fn knows(&self, account: &AccountId) -> bool {
        self.keys.contains_key(account)
    }

    /// The stored entries that are neither among `heads` nor ancestors of
    /// them, in fold order: what a member whose heads these are lacks.
    /// Hashes this log does not hold are passed over.
    pub fn entries_beyond(&self, heads: &[EntryHash]) -> Vec<&SignedEntry> {
        let mut known: BTreeSet<EntryHash> = BTreeSet::new();
        let mut stack: Vec<EntryHash> = heads.to_vec();
        while let Some(h) = stack.pop() {
            let Some(held) = self.entries.get(&h) else {
                continue;
            };
            if known.insert(h) {
                stack.extend(held.entry.parents.iter().copied());
            }
        }
        self.order
            .iter()
            .filter(|h| !known.contains(h))
            .filter_map(|h| self.entries.get(h).map(|e| &e.signed))
            .collect()
    }

    /// The authors of the entries waiting for parents.
    pub fn pending_authors(&self) -> BTreeSet<AccountId> {
        self.pending.values().map(|p| p.entry.author).collect()
    }

    /// Whether the log holds (stored or pending) the entry `hash`.
    pub fn contains(&self, hash: &EntryHash) -> bool {
        self.entries.contains_key(hash) || self.pending.contains_key(hash)
    }

    /// Takes in an entry in its wire form (`SignedCommitteeEntry`).
    pub fn insert(&mut self, bytes: &[u8]) -> Result<InsertOutcome> {
        self.insert_signed(SignedEntry::decode(bytes)?)
    }

    /// Takes in an entry. Malformed entries, entries of another committee, a
    /// second genesis and bad signatures are errors and leave the log as it
    /// was. An entry whose parents or author's key are not all here yet is
    /// held. Otherwise it is stored and the state refolded; whether the fold
    /// applied it is the outcome.
    pub fn insert_signed(&mut self, signed: SignedEntry) -> Result<InsertOutcome> {
        let hash = signed.hash();
        if self.contains(&hash) {
            return Ok(InsertOutcome::Duplicate);
        }
        let entry = signed.parse()?;
        if entry.committee_id != self.id {
            return Err(Error::WrongCommittee {
                expected: self.id,
                found: entry.committee_id,
            });
        }
        if matches!(entry.op, Op::Genesis { .. }) {
            return Err(Error::InvalidCommitteeEntry("a second genesis"));
        }
        // Verify now whenever the key is known, so a forgery is never held.
        if let Some(key) = self.keys.get(&entry.author) {
            if !signed.verify(key) {
                return Err(Error::CommitteeSignatureInvalid(hash));
            }
        }
        let held = Held { signed, entry };
        let missing = self.missing(&held.entry);
        if missing == 0 && !self.keys.contains_key(&held.entry.author) {
            // Everything it builds on is here, and nothing names its author
            // as a member: someone outside the committee. Never stored.
            return Err(Error::CommitteeEntryFromNonMember(hash));
        }
        if missing > 0 {
            let by_author = self
                .pending
                .values()
                .filter(|p| p.entry.author == held.entry.author)
                .count();
            if self.pending.len() >= MAX_PENDING || by_author >= MAX_PENDING_PER_AUTHOR {
                return Err(Error::CommitteePendingFull {
                    held: self.pending.len(),
                    max: MAX_PENDING,
                });
            }
            self.pending.insert(hash, held);
            return Ok(InsertOutcome::Pending { missing });
        }
        let extends_all = held.entry.parents.iter().eq(self.heads.iter());
        self.store(hash, held);
        let released = self.release_pending();
        if extends_all && released == 0 {
            // Every held entry is an ancestor of this one, so it comes last in
            // any topological order: applying it to the current state is the
            // same as refolding.
            self.apply_last(hash);
        } else {
            self.refold();
        }
        let reason = self
            .rejected
            .iter()
            .find(|r| r.entry_hash == hash)
            .map(|r| r.reason.clone());
        Ok(match reason {
            None => InsertOutcome::Applied { released },
            Some(reason) => InsertOutcome::Rejected { reason, released },
        })
    }

    /// Makes, signs and applies a change by `author` against the current heads.
    /// Refused (and nothing changes) unless the change is allowed now.
    pub fn propose(&mut self, author: &IdentityKeyPair, op: Op) -> Result<SignedEntry> {
        self.propose_at(author, op, clock_ms())
    }

    /// [`Self::propose`] with the entry's time given.
    pub(crate) fn propose_at(
        &mut self,
        author: &IdentityKeyPair,
        op: Op,
        created_at_ms: u64,
    ) -> Result<SignedEntry> {
        if matches!(op, Op::Genesis { .. }) {
            return Err(Error::CommitteeChangeRefused(RejectReason::NotTheGenesis));
        }
        let entry = Entry {
            committee_id: self.id,
            parents: self.heads.iter().take(MAX_PARENTS).copied().collect(),
            author: AccountId::from_identity_key(author.identity_key()),
            created_at_ms,
            op,
        };
        if self.heads.len() <= MAX_PARENTS {
            // Naming every head puts the entry last in the fold, so checking
            // it against the current state is exact.
            self.state
                .check(&entry)
                .map_err(Error::CommitteeChangeRefused)?;
            let signed = SignedEntry::sign(author, &entry)?;
            self.insert_signed(signed.clone())?;
            return Ok(signed);
        }
        // More heads than one entry may name: where the entry lands in the
        // fold is known only by folding, so try it on a copy.
        let signed = SignedEntry::sign(author, &entry)?;
        let mut trial = self.clone();
        match trial.insert_signed(signed.clone())? {
            InsertOutcome::Rejected { reason, .. } => Err(Error::CommitteeChangeRefused(reason)),
            _ => {
                *self = trial;
                Ok(signed)
            }
        }
    }

    fn missing(&self, entry: &Entry) -> usize {
        entry
            .parents
            .iter()
            .filter(|p| !self.entries.contains_key(p))
            .count()
    }

    fn store(&mut self, hash: EntryHash, held: Held) {
        for p in &held.entry.parents {
            self.heads.remove(p);
        }
        // No stored entry can name this one yet: stored entries have all
        // their parents stored.
        self.heads.insert(hash);
        if let Op::Add {
            account,
            identity_key,
            ..
        } = &held.entry.op
        {
            self.keys.insert(*account, *identity_key);
        }
        self.entries.insert(hash, held);
    }

    /// Stores pending entries that are now complete, until none is. A pending
    /// entry whose signature turns out bad is dropped.
    fn release_pending(&mut self) -> usize {
        let mut released = 0;
        loop {
            let ready: Vec<EntryHash> = self
                .pending
                .iter()
                .filter(|(_, p)| self.missing(&p.entry) == 0)
                // Adds first: a key they bring verifies the rest of the round.
                .map(|(h, p)| (!matches!(p.entry.op, Op::Add { .. }), *h))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .map(|(_, h)| h)
                .collect();
            if ready.is_empty() {
                return released;
            }
            for hash in ready {
                let Some(held) = self.pending.remove(&hash) else {
                    continue;
                };
                let verified = self
                    .keys
                    .get(&held.entry.author)
                    .is_some_and(|k| held.signed.verify(k));
                if verified {
                    self.store(hash, held);
                    released += 1;
                } else {
                    // A forgery, or by someone the log never names as a member.
                    tracing::debug!("dropped a held committee entry that does not verify");
                }
            }
        }
    }

    fn apply_last(&mut self, hash: EntryHash) {
        self.order.push(hash);
        if let Some(held) = self.entries.get(&hash) {
            if let Err(reason) = self.state.apply(&held.entry) {
                self.rejected.push(Rejection {
                    entry_hash: hash,
                    author: held.entry.author,
                    reason,
                });
            }
        }
    }

    /// Recomputes the order, the state and the rejections from every stored
    /// entry (see [`super::fold`]).
    fn refold(&mut self) {
        let entries: BTreeMap<EntryHash, &Entry> = self
            .entries
            .iter()
            .map(|(h, held)| (*h, &held.entry))
            .collect();
        if let Some(folded) = fold::fold(&self.genesis, &entries) {
            self.order = folded.order;
            self.state = folded.state;
            self.rejected = folded.rejected;
        }
    }
}

fn clock_ms() -> u64 {
    u64::try_from(now_ms()).unwrap_or(0)
}
