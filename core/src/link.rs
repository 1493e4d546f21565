//! Links between committees. Two organizers agree: one proposes (naming its
//! committee's delegates and how alerts from the council enter it), the
//! other accepts (naming its own). The delegates of both then meet in a
//! council — itself a committee, whose log records each linked committee,
//! its delegates and its policy ([`crate::committee::Op::Link`]). When the
//! accepting side is already a council, the proposer's committee is linked
//! into it; so councils link to councils and a network forms.
//!
//! Who is linked is known only to the council's members (the delegates and
//! the organizers who made the link): the committees' other members never
//! see the council's log, and the relay sees only 1:1 ciphertext.

use libsignal_protocol::IdentityKey;
use prost::Message as _;
use rankfile_proto::v1 as pb;
use rusqlite::{params, Connection};

use crate::account::Account;
use crate::account_id::AccountId;
use crate::clock::now_ms;
use crate::committee::{
    CommitteeId, CommitteeState, LinkPolicy, Op, RejectReason, Role, MAX_LINK_DELEGATES,
};
use crate::committee_ops::CommitteeChange;
use crate::committee_store::BatchLogs;
use crate::contact;
use crate::error::{Error, Result};
use crate::event::Event;
use crate::message::Body;
use crate::send::OutgoingEnvelope;
use crate::settings::ACCESS_KEY_LEN;

/// Bytes of a link proposal's ID.
pub const PROPOSAL_ID_LEN: usize = 16;

/// A proposal to link two committees, as it travels and as it is kept by the
/// organizer it was sent to until accepted.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct LinkProposal {
    /// Names the proposal.
    pub proposal_id: [u8; PROPOSAL_ID_LEN],
    /// The proposer's committee or council.
    pub committee_id: CommitteeId,
    /// The committee or council proposed to.
    pub target: CommitteeId,
    /// The proposer's delegates to the link, with their identity keys.
    pub delegates: Vec<(AccountId, IdentityKey)>,
    /// How alerts from the council enter the proposer's committee.
    pub policy: LinkPolicy,
    /// A name for the council, when a new one is formed.
    pub council_name: String,
    /// The delegates' access keys the proposer knows, so the organizer who
    /// accepts reaches them sealed from its first message (learnt only on
    /// accepting: a declined proposal leaves none behind).
    pub access_keys: Vec<(AccountId, [u8; ACCESS_KEY_LEN])>,
}

impl LinkProposal {
    pub(crate) fn to_wire(&self) -> pb::LinkProposal {
        pb::LinkProposal {
            proposal_id: self.proposal_id.to_vec(),
            committee_id: self.committee_id.0.to_vec(),
            target_committee_id: self.target.0.to_vec(),
            delegates: self
                .delegates
                .iter()
                .map(|(a, k)| pb::LinkDelegate {
                    account: a.as_bytes().to_vec(),
                    identity_key: k.serialize().to_vec(),
                })
                .collect(),
            policy: self.policy.to_wire(),
            council_name: self.council_name.clone(),
            delegate_access_keys: self
                .delegates
                .iter()
                .map(|(a, _)| {
                    self.access_keys
                        .iter()
                        .find(|(k, _)| k == a)
                        .map(|(_, key)| key.to_vec())
                        .unwrap_or_default()
                })
                .collect(),
        }
    }

    pub(crate) fn from_wire(p: pb::LinkProposal) -> Result<Self> {
        let bad = Error::InvalidContent;
        if p.delegates.is_empty() || p.delegates.len() > MAX_LINK_DELEGATES {
            return Err(bad("link delegates out of range"));
        }
        if p.council_name.len() > crate::committee::MAX_META_LEN {
            return Err(bad("council name too long"));
        }
        let delegates = p
            .delegates
            .iter()
            .map(|d| {
                let account =
                    AccountId::from_bytes(&d.account).map_err(|_| bad("bad delegate id"))?;
                let key =
                    IdentityKey::decode(&d.identity_key).map_err(|_| bad("bad delegate key"))?;
                if !account.matches(&key) {
                    return Err(Error::IdentityMismatch(account));
                }
                Ok((account, key))
            })
            .collect::<Result<Vec<_>>>()?;
        // One per delegate, or none at all (an older proposer).
        if !p.delegate_access_keys.is_empty() && p.delegate_access_keys.len() != delegates.len() {
            return Err(bad("link access keys do not match the delegates"));
        }
        let mut access_keys = Vec::new();
        for ((account, _), key) in delegates.iter().zip(&p.delegate_access_keys) {
            match key.len() {
                0 => {}
                ACCESS_KEY_LEN => access_keys.push((
                    *account,
                    key.as_slice()
                        .try_into()
                        .map_err(|_| bad("bad delegate access key"))?,
                )),
                _ => return Err(bad("bad delegate access key")),
            }
        }
        Ok(LinkProposal {
            proposal_id: p
                .proposal_id
                .as_slice()
                .try_into()
                .map_err(|_| bad("bad proposal id"))?,
            committee_id: CommitteeId::from_bytes(&p.committee_id)
                .map_err(|_| bad("bad committee id"))?,
            target: CommitteeId::from_bytes(&p.target_committee_id)
                .map_err(|_| bad("bad committee id"))?,
            delegates,
            policy: LinkPolicy::from_wire(p.policy).map_err(|_| bad("unknown link policy"))?,
            council_name: p.council_name,
            access_keys,
        })
    }
}

/// A link as a council's log records it, seen from this device.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LinkInfo {
    /// The council.
    pub council: CommitteeId,
    /// The committee (or council) linked into it.
    pub committee: CommitteeId,
    /// Its delegates, members of the council.
    pub delegates: Vec<AccountId>,
    /// How alerts from the council enter it.
    pub policy: LinkPolicy,
}

impl Account {
    /// Proposes to link `committee` (where this account is an organizer) with
    /// `target`, to `to`, an organizer of the target. `delegates` are members
    /// of `committee` with a delegate's or organizer's role; `policy` says how
    /// alerts from the council will enter `committee`.
    pub fn propose_link(
        &mut self,
        committee: &CommitteeId,
        to: &AccountId,
        target: CommitteeId,
        delegates: &[AccountId],
        policy: LinkPolicy,
        council_name: &str,
    ) -> Result<([u8; PROPOSAL_ID_LEN], OutgoingEnvelope)> {
        let state = self.logs.get(self.store.conn(), committee)?.state().clone();
        if state.role(&self.id()) != Some(Role::Organizer) {
            return Err(Error::CommitteeChangeRefused(RejectReason::NotAnOrganizer(
                self.id(),
            )));
        }
        let delegates = delegate_keys(&state, delegates)?;
        let mut access_keys = Vec::new();
        for (d, _) in &delegates {
            let key = if *d == self.id() {
                Some(self.settings.access_key)
            } else {
                crate::committee_sessions::known_access_key(self.store.conn(), d)?
            };
            access_keys.extend(key.map(|k| (*d, k)));
        }
        let mut proposal_id = [0u8; PROPOSAL_ID_LEN];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut proposal_id);
        let proposal = LinkProposal {
            proposal_id,
            committee_id: *committee,
            target,
            delegates,
            policy,
            council_name: council_name.to_string(),
            access_keys,
        };
        let sent = self.send_body(to, &Body::LinkProposal(proposal))?;
        Ok((proposal_id, sent))
    }

    /// Link proposals waiting for this organizer's answer, with who sent each.
    pub fn link_proposals(&self) -> Result<Vec<(AccountId, LinkProposal)>> {
        let mut stmt = self.store.conn().prepare_cached(
            "SELECT from_account, proposal FROM link_proposals ORDER BY received_at",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?))
        })?;
        rows.map(|row| {
            let (from, bytes) = row?;
            let proposal = pb::LinkProposal::decode(bytes.as_slice())
                .map_err(|_| Error::Storage("a stored link proposal is malformed".into()))
                .and_then(LinkProposal::from_wire)?;
            Ok((AccountId::from_bytes(&from)?, proposal))
        })
        .collect()
    }

    /// Declines a link proposal: it is forgotten.
    pub fn decline_link(&mut self, proposal_id: &[u8; PROPOSAL_ID_LEN]) -> Result<()> {
        let n = self
            .store
            .conn()
            .prepare_cached("DELETE FROM link_proposals WHERE proposal_id = ?1")?
            .execute([&proposal_id[..]])?;
        if n == 0 {
            return Err(Error::UnknownLinkProposal);
        }
        Ok(())
    }

    /// Accepts a link proposal. When the target is already a council and the
    /// proposal names no new council, the proposer's committee is linked into
    /// it; otherwise a new council is
    /// founded (this account its founder) with `my_delegates` and `my_policy`
    /// for the target's side. The proposer's delegates and the proposing
    /// organizer become council members. Returns the council and the changes
    /// sent (members not reachable yet are listed in them).
    pub fn accept_link(
        &mut self,
        proposal_id: &[u8; PROPOSAL_ID_LEN],
        my_delegates: &[AccountId],
        my_policy: LinkPolicy,
    ) -> Result<(CommitteeId, Vec<CommitteeChange>)> {
        let (from, proposal) = self
            .link_proposals()?
            .into_iter()
            .find(|(_, p)| p.proposal_id == *proposal_id)
            .ok_or(Error::UnknownLinkProposal)?;
        let me = self.id();
        let target = self
            .logs
            .get(self.store.conn(), &proposal.target)?
            .state()
            .clone();
        if target.role(&me) != Some(Role::Organizer) {
            return Err(Error::CommitteeChangeRefused(RejectReason::NotAnOrganizer(
                me,
            )));
        }
        let proposer_key =
            contact::identity_key(self.store.conn(), &from)?.ok_or(Error::UnknownContact(from))?;
        // The proposer's delegates' access keys: the council's log and
        // everything after reach them sealed (their sessions open later,
        // `committee_sessions::greet_member` takes the keys then).
        {
            let tx = self.store.write()?;
            for (account, key) in &proposal.access_keys {
                if *account != me {
                    crate::committee_sessions::learn_access_key(&tx, account, key)?;
                }
            }
            tx.commit()?;
        }
        let mut changes = Vec::new();
        let mut links = Vec::new();
        // Into the target when it is a council and no new council is asked
        // for by name; otherwise a new council over both.
        let join_existing = !target.links.is_empty() && proposal.council_name.trim().is_empty();
        let council = if !join_existing {
            let mine = delegate_keys(&target, my_delegates)?;
            let name = if proposal.council_name.trim().is_empty() {
                format!("{} council", target.meta.name)
            } else {
                proposal.council_name.clone()
            };
            let mut meta = target.meta.clone();
            meta.name = name;
            meta.check()?;
            let council = self.create_committee(meta)?;
            // The delegates' shared channel.
            let (_, change) =
                self.create_channel(&council, crate::committee::ChannelKind::Discussion)?;
            changes.push(change);
            for (account, key) in &mine {
                self.admit_to_council(&council, account, key, Role::Delegate, &mut changes)?;
            }
            links.push(Op::Link {
                committee_id: proposal.target,
                delegates: mine.iter().map(|(a, _)| *a).collect(),
                policy: my_policy,
            });
            council
        } else {
            proposal.target
        };
        for (account, key) in &proposal.delegates {
            self.admit_to_council(&council, account, key, Role::Delegate, &mut changes)?;
        }
        self.admit_to_council(
            &council,
            &from,
            &proposer_key,
            Role::Organizer,
            &mut changes,
        )?;
        links.push(Op::Link {
            committee_id: proposal.committee_id,
            delegates: proposal.delegates.iter().map(|(a, _)| *a).collect(),
            policy: proposal.policy,
        });
        for op in links {
            let ((), change) =
                self.change_with(&council, |log, key| Ok((log.propose(key, op)?, ())))?;
            changes.push(change);
        }
        self.decline_link(proposal_id)?;
        Ok((council, changes))
    }

    /// Adds `account` to a council unless it is a member already.
    fn admit_to_council(
        &mut self,
        council: &CommitteeId,
        account: &AccountId,
        key: &IdentityKey,
        role: Role,
        changes: &mut Vec<CommitteeChange>,
    ) -> Result<()> {
        let held = self
            .logs
            .get(self.store.conn(), council)?
            .state()
            .role(account);
        if held.is_some() {
            return Ok(());
        }
        let op = Op::Add {
            account: *account,
            identity_key: *key,
            role,
            invite: None,
        };
        let ((), change) = self.change_with(council, |log, k| Ok((log.propose(k, op)?, ())))?;
        changes.push(change);
        Ok(())
    }

    /// Sends a committee's whole log again to members a change could not reach
    /// (now that there are sessions with them).
    #[cfg_attr(feature = "testing", rankfile_testing_pub::public)]
    pub(crate) fn resend_log(
        &mut self,
        committee: &CommitteeId,
        to: &[AccountId],
    ) -> Result<CommitteeChange> {
        let log = self.logs.get(self.store.conn(), committee)?.clone();
        let each = to
            .iter()
            .map(|a| (*a, crate::committee_ops::Delivery::Whole))
            .collect();
        self.deliver_entries(&log, each, |_| Ok(()))
    }

    /// Every link of every council this device holds.
    pub fn links(&mut self) -> Result<Vec<LinkInfo>> {
        let mut out = Vec::new();
        for council in self.committees()? {
            let state = self.logs.get(self.store.conn(), &council)?.state().clone();
            for (committee, link) in state.links {
                out.push(LinkInfo {
                    council,
                    committee,
                    delegates: link.delegates.into_iter().collect(),
                    policy: link.policy,
                });
            }
        }
        Ok(out)
    }
}

/// The identity keys of `delegates`, each a member of `state` with at least a
/// delegate's role (only they may carry alerts into it).
fn delegate_keys(
    state: &CommitteeState,
    delegates: &[AccountId],
) -> Result<Vec<(AccountId, IdentityKey)>> {
    if delegates.is_empty() || delegates.len() > MAX_LINK_DELEGATES {
        return Err(Error::InvalidContent("link delegates out of range"));
    }
    delegates
        .iter()
        .map(|d| match state.members.get(d) {
            Some(m) if m.role >= Role::Delegate => Ok((*d, m.identity_key)),
            Some(_) => Err(Error::CommitteeChangeRefused(RejectReason::NotAnOrganizer(
                *d,
            ))),
            None => Err(Error::CommitteeChangeRefused(RejectReason::NoSuchMember(
                *d,
            ))),
        })
        .collect()
}

/// Inside the receive transaction, before anything is written: a proposal
/// must be for a committee this device holds as an organizer.
pub(crate) fn check_proposal(
    conn: &Connection,
    logs: &mut BatchLogs<'_>,
    me: &AccountId,
    proposal: &LinkProposal,
) -> Result<()> {
    let log = logs
        .get(conn, &proposal.target)?
        .ok_or(Error::UnknownCommittee(proposal.target))?;
    if log.state().role(me) != Some(Role::Organizer) {
        return Err(Error::CommitteeChangeRefused(RejectReason::NotAnOrganizer(
            *me,
        )));
    }
    Ok(())
}

/// Keeps a checked proposal for the organizer to answer.
pub(crate) fn record_proposal(
    conn: &Connection,
    from: &AccountId,
    proposal: &LinkProposal,
    events: &mut Vec<Event>,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT OR IGNORE INTO link_proposals (proposal_id, from_account, proposal, received_at)
         VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        &proposal.proposal_id[..],
        &from.as_bytes()[..],
        proposal.to_wire().encode_to_vec(),
        now_ms()
    ])?;
    events.push(Event::LinkProposed {
        proposal_id: proposal.proposal_id,
        from: *from,
        target: proposal.target,
    });
    Ok(())
}
