//! Committees on an [`Account`]: founding one, changing its membership, making
//! channels and posting in them. Each change is a signed entry of the
//! committee's log ([`crate::committee`]), committed to the store and then
//! sent over the 1:1 sessions to the members — the new entries to those who
//! have the log, the whole log to a member just added. The relay sees only
//! 1:1 ciphertext: never a committee's name, members or roles.

use std::collections::BTreeSet;

use uuid::Uuid;

use crate::account::Account;
use crate::account_id::AccountId;
use crate::committee::{
    ChannelId, ChannelKind, CommitteeId, CommitteeLog, CommitteeMeta, CommitteeState, Op, Role,
    SignedEntry,
};
use crate::committee_store;
use crate::contact;
use crate::error::{Error, Result};
use crate::message::Body;
use crate::send::OutgoingEnvelope;

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

    /// Makes one entry with `make` on a copy of the committee's log, commits
    /// it, then sends it to every member before or after the change — the
    /// whole log to a member it adds. The log in memory changes only once the
    /// entry is committed.
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
        let tx = self.store.write()?;
        committee_store::save(&tx, &log, [&entry])?;
        tx.commit()?;
        let mut recipients = before;
        recipients.extend(log.state().members.keys().copied());
        recipients.remove(&me);
        let whole: Vec<SignedEntry> = log.entries().cloned().collect();
        self.logs.put(log);

        let mut change = CommitteeChange::new(*committee);
        for r in recipients {
            let entries = if Some(r) == added {
                whole.clone()
            } else {
                vec![entry.clone()]
            };
            self.send_entries(&mut change, &r, entries)?;
        }
        Ok((made, change))
    }

    /// Sends entries of a committee's log to one member over the 1:1 session.
    /// A member we have no session with is reported, not an error.
    pub(crate) fn send_entries(
        &mut self,
        change: &mut CommitteeChange,
        to: &AccountId,
        entries: Vec<SignedEntry>,
    ) -> Result<()> {
        let access_keys = self.access_keys_for(&change.committee_id, &entries)?;
        let body = Body::CommitteeUpdate {
            committee_id: change.committee_id,
            entries,
            access_keys,
        };
        match self.send_body(to, &body) {
            Ok(sent) => change.sent.push(sent),
            Err(
                Error::UnknownContact(_) | Error::NoSession(_) | Error::IdentityChangePending(_),
            ) => change.unreachable.push(*to),
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// The members' access keys to send with `entries`: every member's we
    /// know with a whole log (it holds the genesis), the new member's and ours
    /// with an Add, none otherwise.
    fn access_keys_for(
        &mut self,
        committee: &CommitteeId,
        entries: &[SignedEntry],
    ) -> Result<Vec<(AccountId, [u8; crate::settings::ACCESS_KEY_LEN])>> {
        let mut accounts = Vec::new();
        for e in entries {
            match e.parse()?.op {
                Op::Genesis { .. } => {
                    let log = self.logs.get(self.store.conn(), committee)?;
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
            if let Some(k) = crate::contact::access_key(self.store.conn(), &a)? {
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
        let mut change = CommitteeChange::new(*committee);
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
        let members: Vec<AccountId> = log
            .state()
            .members
            .keys()
            .filter(|m| **m != me)
            .copied()
            .collect();
        for m in members {
            self.send_entries(&mut change, &m, mine.clone())?;
        }
        Ok(change)
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
    pub fn prepare_post(
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
            committee_store::add_holder(self.store.conn(), channel, r)?;
        }
        Ok((distribution, recipients, sender_keys))
    }
}

/// A fresh random distribution ID (a version-4 UUID).
fn random_distribution_id() -> Uuid {
    let mut bytes = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}
