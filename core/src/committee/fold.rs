//! The fold: the order a committee's entries are applied in, the rule that
//! voids what a removed or demoted author did concurrently with losing their
//! role ("strong removal"), and the state the applied entries make.
//!
//! Everything here depends on the set of entries only, never on the order they
//! arrived in, so every client holding the same entries computes the same
//! order, the same state and the same rejections. See the module docs of
//! [`super`] for the rule in words.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::entry::{Entry, Op};
use super::log::Rejection;
use super::state::{CommitteeState, RejectReason};
use super::types::{EntryHash, Role};
use crate::account_id::AccountId;

/// What the fold made of a log's entries.
pub(super) struct Folded {
    /// Every entry, in the order it was folded.
    pub order: Vec<EntryHash>,
    /// The state the applied entries make.
    pub state: CommitteeState,
    /// The entries not applied, and why, in fold order.
    pub rejected: Vec<Rejection>,
}

/// Folds `entries`, which hold `genesis` and, for each entry, its parents.
/// `None` when the genesis is missing or malformed (a log never holds such).
pub(super) fn fold(genesis: &EntryHash, entries: &BTreeMap<EntryHash, &Entry>) -> Option<Folded> {
    let graph = Graph::new(entries);
    let root = graph.index.get(genesis).copied()?;
    let mut void = BTreeSet::new();
    loop {
        let (pass, state) = graph.pass(root, &void)?;
        let struck = pass.struck(&graph);
        if struck.is_empty() {
            return Some(pass.into_folded(&graph, state));
        }
        void.extend(struck);
    }
}

/// The entries as a graph: by index (in hash order), with their parents,
/// children and ancestors.
struct Graph<'a> {
    hashes: Vec<EntryHash>,
    entries: Vec<&'a Entry>,
    index: HashMap<EntryHash, usize>,
    children: Vec<Vec<usize>>,
    parent_count: Vec<usize>,
    /// For each entry, a bitset of its ancestors (not itself).
    ancestors: Vec<Vec<u64>>,
}

impl<'a> Graph<'a> {
    fn new(entries: &BTreeMap<EntryHash, &'a Entry>) -> Self {
        let hashes: Vec<EntryHash> = entries.keys().copied().collect();
        let index: HashMap<EntryHash, usize> =
            hashes.iter().enumerate().map(|(i, h)| (*h, i)).collect();
        let list: Vec<&Entry> = entries.values().copied().collect();
        let n = list.len();
        let mut children = vec![Vec::new(); n];
        let mut parents = vec![Vec::new(); n];
        for (i, e) in list.iter().enumerate() {
            for p in &e.parents {
                if let Some(&pi) = index.get(p) {
                    children[pi].push(i);
                    parents[i].push(pi);
                }
            }
        }
        let parent_count: Vec<usize> = parents.iter().map(Vec::len).collect();
        // Ancestor sets in any topological order: each entry's is the union
        // of its parents' and the parents themselves.
        let words = n.div_ceil(64);
        let mut ancestors = vec![vec![0u64; words]; n];
        let mut waiting = parent_count.clone();
        let mut ready: Vec<usize> = (0..n).filter(|i| waiting[*i] == 0).collect();
        while let Some(i) = ready.pop() {
            let mut set = std::mem::take(&mut ancestors[i]);
            for &p in &parents[i] {
                set[p / 64] |= 1 << (p % 64);
                for (w, a) in set.iter_mut().zip(&ancestors[p]) {
                    *w |= a;
                }
            }
            ancestors[i] = set;
            for &c in &children[i] {
                waiting[c] -= 1;
                if waiting[c] == 0 {
                    ready.push(c);
                }
            }
        }
        Graph {
            hashes,
            entries: list,
            index,
            children,
            parent_count,
            ancestors,
        }
    }

    /// Whether `a` is an ancestor of `b`.
    fn is_ancestor(&self, a: usize, b: usize) -> bool {
        self.ancestors[b][a / 64] & (1 << (a % 64)) != 0
    }

    /// Neither is an ancestor of the other: made without knowing of each other.
    fn concurrent(&self, a: usize, b: usize) -> bool {
        a != b && !self.is_ancestor(a, b) && !self.is_ancestor(b, a)
    }

    /// One pass of the fold, with the entries in `void` skipped.
    fn pass(&self, root: usize, void: &BTreeSet<usize>) -> Option<(Pass, CommitteeState)> {
        let mut state = CommitteeState::from_genesis(self.entries[root]).ok()?;
        let mut pass = Pass {
            order: Vec::with_capacity(self.entries.len()),
            rejected: Vec::new(),
            applied_by: HashMap::new(),
            role_events: HashMap::new(),
            revocations: Vec::new(),
            seniority: HashMap::new(),
        };
        let founder = self.entries[root].author;
        pass.role_events
            .entry(founder)
            .or_default()
            .push((root, Some(Role::Organizer)));
        pass.seniority.insert(founder, 0);
        pass.order.push(root);
        let mut waiting = self.parent_count.clone();
        let mut ready: Vec<usize> = self.children[root]
            .iter()
            .copied()
            .filter(|c| {
                waiting[*c] -= 1;
                waiting[*c] == 0
            })
            .collect();
        while let Some(pick) = self.next(&ready, &pass.seniority) {
            let i = ready.swap_remove(pick);
            let position = pass.order.len();
            pass.order.push(i);
            let entry = self.entries[i];
            let outcome = if void.contains(&i) {
                Err(RejectReason::RevokedConcurrently(entry.author))
            } else {
                self.allowed_by_its_past(i, &pass).and_then(|()| {
                    pass.apply(&mut state, entry)
                        .map_err(|reason| match reason {
                            // Allowed by its past, not by the state it meets:
                            // the role went by a change made concurrently.
                            RejectReason::NotAMember(a) | RejectReason::NotAnOrganizer(a)
                                if a == entry.author =>
                            {
                                RejectReason::RevokedConcurrently(a)
                            }
                            other => other,
                        })
                })
            };
            match outcome {
                Ok(before) => pass.record(i, entry, before, &state, position),
                Err(reason) => pass.rejected.push((i, reason)),
            }
            for &c in &self.children[i] {
                waiting[c] -= 1;
                if waiting[c] == 0 {
                    ready.push(c);
                }
            }
        }
        Some((pass, state))
    }

    /// The entry to fold next among those whose parents are all folded: an
    /// entry that takes authority or access away before any other change;
    /// among those, the one whose author has been an organizer longest (so
    /// when two organizers remove each other at once, the senior's removal
    /// stands, whatever either does to their entry's hash); then the lowest
    /// hash.
    fn next(&self, ready: &[usize], seniority: &HashMap<AccountId, usize>) -> Option<usize> {
        ready
            .iter()
            .enumerate()
            .min_by_key(|(_, i)| {
                let e = self.entries[**i];
                let restricts = e.op.restricts();
                let standing = match restricts {
                    true => seniority.get(&e.author).copied().unwrap_or(usize::MAX),
                    false => 0,
                };
                (!restricts, standing, self.hashes[**i])
            })
            .map(|(pick, _)| pick)
    }

    /// The author must hold the role the entry needs in the state of the
    /// entry's own past: its last applied role change among the entry's
    /// ancestors decides, not changes made concurrently.
    fn allowed_by_its_past(&self, i: usize, pass: &Pass) -> Result<(), RejectReason> {
        let entry = self.entries[i];
        let role = pass
            .role_events
            .get(&entry.author)
            .and_then(|events| events.iter().rev().find(|(at, _)| self.is_ancestor(*at, i)))
            .and_then(|(_, role)| *role);
        match (role, &entry.op) {
            (None, _) => Err(RejectReason::NotAMember(entry.author)),
            (Some(_), Op::Leave) | (Some(Role::Organizer), _) => Ok(()),
            (Some(_), _) => Err(RejectReason::NotAnOrganizer(entry.author)),
        }
    }
}

/// A removal (or leave), or a demotion from organizer, applied in a pass.
struct Revocation {
    at: usize,
    account: AccountId,
    /// `true`: out of the committee; `false`: only no longer an organizer.
    removed: bool,
}

/// One pass of the fold.
struct Pass {
    order: Vec<usize>,
    rejected: Vec<(usize, RejectReason)>,
    /// Applied entries by author.
    applied_by: HashMap<AccountId, Vec<usize>>,
    /// Each account's applied role changes in fold order: the entry and the
    /// role after it (`None`: not a member).
    role_events: HashMap<AccountId, Vec<(usize, Option<Role>)>>,
    revocations: Vec<Revocation>,
    /// Organizers by the fold position at which they last became one.
    seniority: HashMap<AccountId, usize>,
}

impl Pass {
    /// Applies `entry` to `state`; returns the affected member's role before it.
    fn apply(
        &self,
        state: &mut CommitteeState,
        entry: &Entry,
    ) -> Result<Option<Role>, RejectReason> {
        let before = affected(entry).and_then(|a| state.role(&a));
        state.apply(entry)?;
        Ok(before)
    }

    /// Books an applied entry: by its author, and the role change it made.
    fn record(
        &mut self,
        i: usize,
        entry: &Entry,
        before: Option<Role>,
        state: &CommitteeState,
        position: usize,
    ) {
        self.applied_by.entry(entry.author).or_default().push(i);
        let Some(account) = affected(entry) else {
            return;
        };
        let after = state.role(&account);
        self.role_events
            .entry(account)
            .or_default()
            .push((i, after));
        match (
            before == Some(Role::Organizer),
            after == Some(Role::Organizer),
        ) {
            (false, true) => {
                self.seniority.insert(account, position);
            }
            (true, false) => {
                self.seniority.remove(&account);
                self.revocations.push(Revocation {
                    at: i,
                    account,
                    removed: after.is_none(),
                });
            }
            _ if before.is_some() && after.is_none() => self.revocations.push(Revocation {
                at: i,
                account,
                removed: true,
            }),
            _ => {}
        }
    }

    /// Applied entries whose author lost, by an applied removal or demotion
    /// made concurrently with them, the role they needed: these are void.
    /// When the removal striking an entry is itself by an author with struck
    /// entries, which stands is not settled yet: then only the first such
    /// entry in fold order is voided this round, and the fold runs again.
    fn struck(&self, graph: &Graph<'_>) -> Vec<usize> {
        let mut hits: Vec<(usize, AccountId)> = Vec::new();
        for r in &self.revocations {
            let Some(by_them) = self.applied_by.get(&r.account) else {
                continue;
            };
            for &e in by_them {
                let needed = r.removed || !matches!(graph.entries[e].op, Op::Leave);
                if needed && graph.concurrent(e, r.at) {
                    hits.push((e, graph.entries[r.at].author));
                }
            }
        }
        if hits.is_empty() {
            return Vec::new();
        }
        let disputed: BTreeSet<AccountId> =
            hits.iter().map(|(e, _)| graph.entries[*e].author).collect();
        let settled: Vec<usize> = hits
            .iter()
            .filter(|(_, striker)| !disputed.contains(striker))
            .map(|(e, _)| *e)
            .collect();
        if !settled.is_empty() {
            return settled;
        }
        let position: HashMap<usize, usize> = self
            .order
            .iter()
            .enumerate()
            .map(|(p, i)| (*i, p))
            .collect();
        hits.into_iter()
            .map(|(e, _)| e)
            .min_by_key(|e| position.get(e).copied().unwrap_or(usize::MAX))
            .into_iter()
            .collect()
    }

    fn into_folded(self, graph: &Graph<'_>, state: CommitteeState) -> Folded {
        Folded {
            order: self.order.iter().map(|i| graph.hashes[*i]).collect(),
            state,
            rejected: self
                .rejected
                .into_iter()
                .map(|(i, reason)| Rejection {
                    entry_hash: graph.hashes[i],
                    author: graph.entries[i].author,
                    reason,
                })
                .collect(),
        }
    }
}

/// The member whose role an entry changes, if it changes one.
fn affected(entry: &Entry) -> Option<AccountId> {
    match &entry.op {
        Op::Add { account, .. } | Op::Remove { account } | Op::ChangeRole { account, .. } => {
            Some(*account)
        }
        Op::Leave => Some(entry.author),
        _ => None,
    }
}
