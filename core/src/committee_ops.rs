//! Committees on an [`Account`]: founding one, changing its membership, making
//! channels and posting in them. Each change is a signed entry of the
//! committee's log ([`crate::committee`]), committed to the store and then
//! sent over the 1:1 sessions to the members — the new entries to those who
//! have the log, the whole log to a member just added. The relay sees only
//! 1:1 ciphertext: never a committee's name, members or roles.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use uuid::Uuid;

use crate::account::Account;
use crate::account_id::AccountId;
use crate::committee::{
    ChannelId, ChannelKind, CommitteeId, CommitteeLog, CommitteeMeta, CommitteeState, EntryHash,
    Op, Role, SignedEntry,
};
use crate::committee_store;
use crate::contact;
use crate::error::{Error, Result};
use crate::message::Body;
use crate::send::OutgoingEnvelope;
use crate::store::WriteTransaction;

/// What one committee change sent, and to whom it could not be sent.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct CommitteeChange {
    /// The committee.
    pub committee_id: CommitteeId,
    /// The 1:1 envelopes carrying the entries, already in the outbox.
    pub sent: Vec<OutgoingEnvelope>,
    /// Members we could not send to (no session with them yet); the entry is
    /// committed here and reaches them when another member forwards it.
    pub unreachable: Vec<AccountId>,
}

impl CommitteeChange {
    pub(crate) fn new(committee_id: CommitteeId) -> Self {
        CommitteeChange {
            committee_id,
            sent: Vec::new(),
            unreachable: Vec::new(),
        }
    }
}

/// What a post sent: the sender keys first, then the channel message.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Post {
    /// Our sender key, to the members who lacked the current one.
    pub sender_keys: Vec<OutgoingEnvelope>,
    /// The channel message: one multi-recipient upload.
    pub message: OutgoingEnvelope,
}

impl Account {
    /// Founds a committee with this account its only member and organizer.
    pub fn create_committee(&mut self, meta: CommitteeMeta) -> Result<CommitteeId> {
        let (log, genesis) = CommitteeLog::genesis(&self.me.key_pair, meta)?;
        let tx = self.store.write()?;
        committee_store::save(&tx, &log, [&genesis])?;
        tx.commit()?;
        let id = log.id();
        self.logs.put(log);
        Ok(id)
    }

    /// The committees this device holds.
    pub fn committees(&self) -> Result<Vec<CommitteeId>> {
        committee_store::list(self.store.conn())
    }

    /// A committee as its log's fold leaves it.
    pub fn committee(&mut self, id: &CommitteeId) -> Result<CommitteeState> {
        Ok(self.logs.get(self.store.conn(), id)?.state().clone())
    }

    /// The entries of a committee's log the fold rejected, and why.
    pub fn committee_rejections(
        &mut self,
        id: &CommitteeId,
    ) -> Result<Vec<crate::committee::Rejection>> {
        Ok(self.logs.get(self.store.conn(), id)?.rejected().to_vec())
    }

    /// Every entry of a committee's log held here (applied, rejected or waiting).
    pub fn committee_entries(&mut self, id: &CommitteeId) -> Result<Vec<SignedEntry>> {
        let log = self.logs.get(self.store.conn(), id)?;
        Ok(log.entries().chain(log.pending()).cloned().collect())
    }

    /// Adds `account` (a contact with a session) with `role`; sends the entry
    /// to the members and the whole log to the new member.
    pub fn add_member(
        &mut self,
        committee: &CommitteeId,
        account: &AccountId,
        role: Role,
    ) -> Result<CommitteeChange> {
        let identity_key = contact::identity_key(self.store.conn(), account)?
            .ok_or(Error::UnknownContact(*account))?;
        self.change(
            committee,
            Op::Add {
                account: *account,
                identity_key,
                role,
                invite: None,
            },
        )
    }

    /// Removes a member. Every remaining member starts a new sender key for
    /// each channel before its next post, so the removed member reads nothing new.
    pub fn remove_member(
        &mut self,
        committee: &CommitteeId,
        account: &AccountId,
    ) -> Result<CommitteeChange> {
        let change = self.change(committee, Op::Remove { account: *account })?;
        self.remove_from_councils(committee, account)?;
        Ok(change)
    }

    /// A member removed from a committee stops speaking for it: removed too
    /// from every council (held here, where we are an organizer) it was the
    /// committee's delegate in, so the council's keys rotate as well.
    fn remove_from_councils(
        &mut self,
        committee: &CommitteeId,
        account: &AccountId,
    ) -> Result<Vec<CommitteeChange>> {
        let me = self.id();
        let mut changes = Vec::new();
        for council in self.committees()? {
            let state = self.logs.get(self.store.conn(), &council)?.state();
            let delegate = state
                .links
                .get(committee)
                .is_some_and(|l| l.delegates.contains(account));
            if delegate && state.role(&me) == Some(Role::Organizer) {
                changes.push(self.change(&council, Op::Remove { account: *account })?);
            }
        }
        Ok(changes)
    }

    /// Changes a member's role.
    pub fn change_role(
        &mut self,
        committee: &CommitteeId,
        account: &AccountId,
        role: Role,
    ) -> Result<CommitteeChange> {
        let change = self.change(
            committee,
            Op::ChangeRole {
                account: *account,
                role,
            },
        )?;
        // A member no longer a delegate stops speaking for the committee.
        if role == Role::Member {
            self.remove_from_councils(committee, account)?;
        }
        Ok(change)
    }

    /// Leaves the committee.
    pub fn leave(&mut self, committee: &CommitteeId) -> Result<CommitteeChange> {
        self.change(committee, Op::Leave)
    }

    /// Renames the committee (its name, workplace, industry and region).
    pub fn rename(
        &mut self,
        committee: &CommitteeId,
        meta: CommitteeMeta,
    ) -> Result<CommitteeChange> {
        self.change(committee, Op::Rename(meta))
    }

    /// Makes a channel of the committee (an organizer's change to the log).
    pub fn create_channel(
        &mut self,
        committee: &CommitteeId,
        kind: ChannelKind,
    ) -> Result<(ChannelId, CommitteeChange)> {
        let mut channel_id = [0u8; crate::committee::CHANNEL_ID_LEN];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut channel_id);
        let change = self.change(committee, Op::CreateChannel { channel_id, kind })?;
        Ok((channel_id, change))
    }

    /// Proposes `op`, commits the entry, and sends it to every other member
    /// before or after the change (the whole log to one just added).
    pub(crate) fn change(&mut self, committee: &CommitteeId, op: Op) -> Result<CommitteeChange> {
        let ((), change) =
            self.change_with(committee, |log, key| Ok((log.propose(key, op)?, ())))?;
        Ok(change)
    }

    /// Makes one entry with `make` on a copy of the committee's log, and in
    /// one transaction commits it and sends it to every member before or
    /// after the change — the whole log to a member it adds — recording it as
    /// owed to members we have no session with yet. So a crash never leaves
    /// a change made here and unsent. The log in memory changes only once
    /// that transaction has committed.
    pub(crate) fn change_with<T>(
        &mut self,
        committee: &CommitteeId,
        make: impl FnOnce(
            &mut CommitteeLog,
            &libsignal_protocol::IdentityKeyPair,
        ) -> Result<(SignedEntry, T)>,
    ) -> Result<(T, CommitteeChange)> {
        let me = self.id();
        let mut log = self.logs.get(self.store.conn(), committee)?.clone();
        if log.state().role(&me).is_none() {
            return Err(Error::NotACommitteeMember(*committee));
        }
        let before: BTreeSet<AccountId> = log.state().members.keys().copied().collect();
        let (entry, made) = make(&mut log, &self.me.key_pair)?;
        let added = match entry.parse()?.op {
            Op::Add { account, .. } => Some(account),
            _ => None,
        };
        let mut recipients = before;
        recipients.extend(log.state().members.keys().copied());
        recipients.remove(&me);
        let each = recipients
            .into_iter()
            .map(|r| match Some(r) == added {
                true => (r, Delivery::Whole),
                false => (r, Delivery::Entries(vec![entry.clone()])),
            })
            .collect();
        let change =
            self.deliver_entries(&log, each, |tx| committee_store::save(tx, &log, [&entry]))?;
        crate::failpoint::failpoint("committee_change_committed");
        self.logs.put(log);
        self.access_check_due = true;
        Ok((made, change))
    }

    /// Sends members what they are to have of a committee's log over the 1:1
    /// sessions, all in one transaction with `also` (the change that calls
    /// for it, if any). What cannot go now — to a member we have no session
    /// with — is recorded as owed in that transaction and goes once a session
    /// opens ([`Account::send_owed_entries`]).
    pub(crate) fn deliver_entries(
        &mut self,
        log: &CommitteeLog,
        each: Vec<(AccountId, Delivery)>,
        also: impl FnOnce(&WriteTransaction<'_>) -> Result<()>,
    ) -> Result<CommitteeChange> {
        let committee = log.id();
        let whole: Vec<SignedEntry> = match each.iter().any(|(_, d)| matches!(d, Delivery::Whole)) {
            true => log.entries().cloned().collect(),
            false => Vec::new(),
        };
        let mut bodies = Vec::with_capacity(each.len());
        let mut owed: HashMap<AccountId, Vec<EntryHash>> = HashMap::new();
        for (to, delivery) in each {
            let entries = match delivery {
                Delivery::Whole => {
                    owed.insert(to, Vec::new());
                    whole.clone()
                }
                Delivery::Entries(entries) => {
                    owed.insert(to, entries.iter().map(SignedEntry::hash).collect());
                    entries
                }
            };
            let access_keys = self.access_keys_for(log, &entries)?;
            bodies.push((
                to,
                Body::CommitteeUpdate {
                    committee_id: committee,
                    entries,
                    access_keys,
                },
            ));
        }
        let (sent, unreachable) = self.send_each(&bodies, |tx, _, unreachable| {
            also(tx)?;
            for account in unreachable {
                let hashes = owed.get(account).map(Vec::as_slice).unwrap_or_default();
                committee_store::owe(tx, &committee, account, hashes)?;
            }
            Ok(())
        })?;
        Ok(CommitteeChange {
            committee_id: committee,
            sent,
            unreachable,
        })
    }

    /// Sends the committee entries owed to members we had no session with
    /// when they were made (see [`Account::deliver_entries`]) to those we now
    /// have one with. A member no longer in the committee is sent only the
    /// entries that concern them (their removal), and nothing made after.
    #[cfg_attr(feature = "testing", rankfile_testing_pub::public)]
    pub(crate) fn send_owed_entries(&mut self) -> Result<Vec<CommitteeChange>> {
        let mut changes = Vec::new();
        let owed = committee_store::owed(self.store.conn())?;
        if owed.is_empty() {
            return Ok(changes);
        }
        let reachable: BTreeSet<AccountId> = self
            .usable_sessions(owed.iter().map(|o| &o.account))?
            .into_iter()
            .collect();
        let mut by_committee: BTreeMap<CommitteeId, Vec<(AccountId, Delivery)>> = BTreeMap::new();
        let mut dropped = Vec::new();
        for o in owed.into_iter().filter(|o| reachable.contains(&o.account)) {
            let log = match self.logs.get(self.store.conn(), &o.committee_id) {
                Ok(log) => log,
                Err(Error::UnknownCommittee(_)) => {
                    dropped.push(o);
                    continue;
                }
                Err(e) => return Err(e),
            };
            let member = log.state().members.contains_key(&o.account);
            let delivery = match (o.whole, member) {
                (true, true) => Delivery::Whole,
                _ => {
                    let entries: Vec<SignedEntry> = log
                        .entries()
                        .filter(|e| o.hashes.contains(&e.hash()))
                        .filter(|e| member || concerns(e, &o.account))
                        .cloned()
                        .collect();
                    if entries.is_empty() {
                        dropped.push(o);
                        continue;
                    }
                    Delivery::Entries(entries)
                }
            };
            by_committee
                .entry(o.committee_id)
                .or_default()
                .push((o.account, delivery));
        }
        if !dropped.is_empty() {
            let tx = self.store.write()?;
            for o in &dropped {
                committee_store::settle_owed(&tx, &o.committee_id, &o.account)?;
            }
            tx.commit()?;
        }
        for (committee, each) in by_committee {
            let log = self.logs.get(self.store.conn(), &committee)?.clone();
            let accounts: Vec<AccountId> = each.iter().map(|(a, _)| *a).collect();
            // Sent and no longer owed in one transaction.
            changes.push(self.deliver_entries(&log, each, |tx| {
                accounts
                    .iter()
                    .try_for_each(|a| committee_store::settle_owed(tx, &committee, a))
            })?);
        }
        Ok(changes)
    }

    /// The members' access keys to send with `entries`: every member's we
    /// know (from its messages, or learnt before any session: a log, a link
    /// proposal, a contact card) with a whole log (it holds the genesis), the
    /// new member's and ours with an Add, none otherwise.
    fn access_keys_for(
        &mut self,
        log: &CommitteeLog,
        entries: &[SignedEntry],
    ) -> Result<Vec<(AccountId, [u8; crate::settings::ACCESS_KEY_LEN])>> {
        let mut accounts = Vec::new();
        for e in entries {
            match e.parse()?.op {
                Op::Genesis { .. } => {
                    accounts = log.state().members.keys().copied().collect();
                    break;
                }
                Op::Add { account, .. } => accounts.push(account),
                _ => {}
            }
        }
        if accounts.is_empty() {
            return Ok(Vec::new());
        }
        let me = self.id();
        let mut keys = vec![(me, self.settings.access_key)];
        for a in accounts.into_iter().filter(|a| *a != me) {
            if let Some(k) = crate::committee_sessions::known_access_key(self.store.conn(), &a)? {
                keys.push((a, k));
            }
        }
        Ok(keys)
    }

    /// After a batch merged concurrent changes (the log has several heads),
    /// sends the heads this account authored to every other member: members
    /// the other author added may not have them yet.
    pub(crate) fn forward_own_heads(&mut self, committee: &CommitteeId) -> Result<CommitteeChange> {
        let me = self.id();
        let log = self.logs.get(self.store.conn(), committee)?;
        let change = CommitteeChange::new(*committee);
        let heads = log.heads();
        if heads.len() < 2 || log.state().role(&me).is_none() {
            return Ok(change);
        }
        let mine: Vec<SignedEntry> = log
            .entries()
            .filter(|e| heads.contains(&e.hash()))
            .filter(|e| e.parse().is_ok_and(|p| p.author == me))
            .cloned()
            .collect();
        if mine.is_empty() {
            return Ok(change);
        }
        let each = log
            .state()
            .members
            .keys()
            .filter(|m| **m != me)
            .map(|m| (*m, Delivery::Entries(mine.clone())))
            .collect();
        let log = log.clone();
        self.deliver_entries(&log, each, |_| Ok(()))
    }

    /// Posts `text` in a committee channel: checks we may post there, makes
    /// sure every other member holds our current sender key (starting a new
    /// one when someone who held it is no longer a member, and sending it
    /// first to those who lack it), then sends the message once to all.
    pub fn post(
        &mut self,
        committee: &CommitteeId,
        channel: &ChannelId,
        text: &str,
    ) -> Result<Post> {
        // Refused before the sender keys are made and sent.
        crate::channel::check_outgoing(text, 0)?;
        let (distribution, recipients, sender_keys) = self.prepare_post(committee, channel)?;
        let message = self.send_channel_text(*channel, distribution, &recipients, text)?;
        Ok(Post {
            sender_keys,
            message,
        })
    }

    /// The first half of [`Account::post`]: the checks and the sender keys.
    /// Returns the distribution ID to send under, the recipients, and the
    /// sender-key envelopes sent (already in the outbox).
    #[cfg_attr(feature = "testing", rankfile_testing_pub::public)]
    pub(crate) fn prepare_post(
        &mut self,
        committee: &CommitteeId,
        channel: &ChannelId,
    ) -> Result<(Uuid, Vec<AccountId>, Vec<OutgoingEnvelope>)> {
        let me = self.id();
        let state = self.logs.get(self.store.conn(), committee)?.state().clone();
        let role = state
            .role(&me)
            .ok_or(Error::NotACommitteeMember(*committee))?;
        let kind = state
            .channels
            .get(channel)
            .ok_or(Error::UnknownChannel(*committee))?;
        if !kind.may_post(role, &state.settings) {
            return Err(Error::MayNotPost(*committee));
        }
        let recipients: Vec<AccountId> = state
            .members
            .keys()
            .filter(|m| **m != me)
            .copied()
            .collect();
        if recipients.is_empty() {
            return Err(Error::NoOtherMembers(*committee));
        }
        let conn = self.store.conn();
        let mut holders = committee_store::holders(conn, channel)?;
        let current = committee_store::current_distribution(conn, channel)?;
        // A holder who is no longer a member could read what we send under
        // this key: start a new one, held by nobody yet.
        let distribution = match current {
            Some(d) if holders.iter().all(|h| state.members.contains_key(h)) => d,
            _ => {
                let fresh = random_distribution_id();
                let tx = self.store.write()?;
                committee_store::start_distribution(&tx, channel, fresh)?;
                tx.commit()?;
                holders.clear();
                fresh
            }
        };
        let mut sender_keys = Vec::new();
        for r in recipients.iter().filter(|r| !holders.contains(r)) {
            sender_keys.push(self.send_sender_key(r, *channel, distribution)?);
        }
        Ok((distribution, recipients, sender_keys))
    }
}

/// What of a committee's log one member is to be sent.
pub(crate) enum Delivery {
    /// All of it: a member just added, or one who may lack anything.
    Whole,
    /// These entries.
    Entries(Vec<SignedEntry>),
}

/// Whether an entry is about `account`'s own membership: what a member
/// removed (or who left) is still told, and nothing else.
fn concerns(entry: &SignedEntry, account: &AccountId) -> bool {
    entry.parse().is_ok_and(|e| match e.op {
        Op::Remove { account: a } | Op::ChangeRole { account: a, .. } => a == *account,
        Op::Leave => e.author == *account,
        _ => false,
    })
}

/// A fresh random distribution ID (a version-4 UUID).
fn random_distribution_id() -> Uuid {
    let mut bytes = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}
