//! Sessions between the members of a committee. Posting needs a 1:1 session
//! with every member (sender keys travel over them) and their access keys (the
//! post is sealed), but members who joined from an invite have met only the
//! organizer who admitted them. So a device opens the sessions it lacks itself:
//!
//! - For each pair of members without a session, the one with the smaller
//!   account ID opens it (so two devices do not both start one), from the
//!   bundle the relay's directory serves — accepted only if its identity key
//!   is the one the committee's log records for that member, so the relay
//!   cannot put its own key in.
//! - The opener sends a hello asking for a reply; every content message
//!   carries the sender's access key, so after the reply each side holds the
//!   other's. A device answers a hello only for a committee it is a member of.
//! - Before a post, a device opens a session with any member it still lacks,
//!   whichever side the rule names.

use std::collections::BTreeMap;
use std::time::SystemTime;

use libsignal_protocol::{DeviceId, IdentityKey};

use crate::account::Account;
use crate::account_id::AccountId;
use crate::committee::CommitteeId;
use crate::contact;
use crate::error::{Error, Result};
use crate::message::Body;
use crate::prekeys;
use crate::send::OutgoingEnvelope;
use crate::session;
use crate::store::signal::{address, Pending, SignalStores};

/// A member of one of our committees this device has no session with.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemberToGreet {
    /// A committee we share.
    pub committee_id: CommitteeId,
    /// The member.
    pub account: AccountId,
    /// The identity key the committee's log records for them.
    pub identity_key: IdentityKey,
}

impl Account {
    /// Members of this account's committees it shares no usable session with.
    /// With `all` false, only those this device is to open a session with by
    /// the smaller-ID rule; with `all` true, every one (before a post).
    pub fn members_to_greet(&mut self, all: bool) -> Result<Vec<MemberToGreet>> {
        let me = self.id();
        let mut wanted: BTreeMap<AccountId, MemberToGreet> = BTreeMap::new();
        for committee in self.committees()? {
            let log = self.logs.get(self.store.conn(), &committee)?;
            let state = log.state();
            if state.role(&me).is_none() {
                continue;
            }
            for (account, member) in &state.members {
                if *account == me || !(all || me < *account) {
                    continue;
                }
                wanted.entry(*account).or_insert(MemberToGreet {
                    committee_id: committee,
                    account: *account,
                    identity_key: member.identity_key,
                });
            }
        }
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let sessions = self.usable_sessions(wanted.keys())?;
        Ok(wanted
            .into_values()
            .filter(|m| !sessions.contains(&m.account))
            .collect())
    }

    /// Which of `accounts` are contacts with a usable session (and no
    /// identity change pending).
    fn usable_sessions<'a>(
        &mut self,
        accounts: impl Iterator<Item = &'a AccountId>,
    ) -> Result<Vec<AccountId>> {
        // Read only: the transaction is dropped (rolled back) unchanged.
        let tx = self.store.write()?;
        let mut pending = Pending::default();
        let stores = SignalStores::new(&tx, &self.cache, &mut pending);
        let now = SystemTime::now();
        let mut usable = Vec::new();
        for account in accounts {
            let Some(c) = contact::get(&tx, account)? else {
                continue;
            };
            if c.pending_successor.is_some() {
                continue;
            }
            let Ok(device) = DeviceId::try_from(c.device_id) else {
                continue;
            };
            let ok = stores.with_session(&address(account, device).to_string(), |record| {
                session::usable_for_sending(record, now)
            })?;
            if ok == Some(true) {
                usable.push(*account);
            }
        }
        Ok(usable)
    }

    /// Takes a co-member's bundle fetched from the relay: checks that its key
    /// is the one the committee's log records, opens the session (the member
    /// becomes a contact), and sends a hello asking for one back.
    pub fn greet_member(
        &mut self,
        member: &MemberToGreet,
        bundle: &[u8],
    ) -> Result<OutgoingEnvelope> {
        let imported = prekeys::import_bundle(bundle)?;
        if imported.account_id != member.account
            || *imported.bundle.identity_key()? != member.identity_key
        {
            return Err(Error::MemberKeyMismatch(member.account));
        }
        let recorded = self
            .logs
            .get(self.store.conn(), &member.committee_id)?
            .state()
            .members
            .get(&member.account)
            .map(|m| m.identity_key);
        if recorded != Some(member.identity_key) {
            return Err(Error::MemberKeyMismatch(member.account));
        }
        // Keeps the name the user gave a contact it already had.
        let name = contact::get(self.store.conn(), &member.account)?
            .map(|c| c.name)
            .unwrap_or_default();
        self.add_contact(&name, bundle)?;
        self.send_hello(&member.committee_id, &member.account, true)
    }

    /// Sends a committee hello to a member over our session with them.
    pub(crate) fn send_hello(
        &mut self,
        committee: &CommitteeId,
        to: &AccountId,
        reply_wanted: bool,
    ) -> Result<OutgoingEnvelope> {
        self.send_body(
            to,
            &Body::CommitteeHello {
                committee_id: *committee,
                reply_wanted,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::committee::{CommitteeMeta, Role};
    use crate::store::DatabaseKey;

    fn account(dir: &tempfile::TempDir, name: &str) -> Account {
        Account::create(
            &dir.path().join(format!("{name}.db")),
            &DatabaseKey::generate(),
        )
        .expect("account")
    }

    /// Hands every envelope of `sent` addressed to `to` over, as the relay would.
    fn deliver(to: &mut Account, sent: &[OutgoingEnvelope]) {
        let me = to.id();
        for e in sent.iter().filter(|e| e.recipient == me) {
            to.receive(&e.bytes).expect("received");
        }
    }

    #[test]
    fn members_open_sessions_only_with_the_key_the_log_records() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut organizer = account(&dir, "o");
        let mut a = account(&dir, "a");
        let mut b = account(&dir, "b");
        let mut stranger = account(&dir, "s");
        for m in [&mut a, &mut b] {
            let bundle = m.prekey_bundle().expect("bundle");
            organizer.add_contact("", &bundle).expect("contact");
        }
        let committee = organizer
            .create_committee(CommitteeMeta {
                name: "Yard".into(),
                ..CommitteeMeta::default()
            })
            .expect("found");
        let mut sent = Vec::new();
        for id in [a.id(), b.id()] {
            sent.extend(
                organizer
                    .add_member(&committee, &id, Role::Member)
                    .expect("add")
                    .sent,
            );
        }
        deliver(&mut a, &sent);
        deliver(&mut b, &sent);
        assert_eq!(b.committee(&committee).expect("log").members.len(), 3);

        // Only the smaller ID of the pair opens the session.
        let (low, high) = if a.id() < b.id() {
            (&mut a, &mut b)
        } else {
            (&mut b, &mut a)
        };
        assert!(high.members_to_greet(false).expect("greet").is_empty());
        let wanted = low.members_to_greet(false).expect("greet");
        assert_eq!(wanted.len(), 1);
        assert_eq!(wanted[0].account, high.id());
        assert_eq!(high.members_to_greet(true).expect("greet").len(), 1);

        // A bundle with another key (a relay putting its own in) is refused,
        // and leaves no contact behind.
        let forged = stranger.prekey_bundle().expect("bundle");
        assert!(matches!(
            low.greet_member(&wanted[0], &forged),
            Err(Error::MemberKeyMismatch(who)) if who == high.id()
        ));
        assert!(low.contact(&stranger.id()).is_err());

        // The real bundle opens the session; the hello and its answer carry
        // each side's access key.
        let bundle = high.prekey_bundle().expect("bundle");
        let hello = low.greet_member(&wanted[0], &bundle).expect("greet");
        high.receive(&hello.bytes).expect("hello");
        assert!(high.members_to_greet(true).expect("greet").is_empty());
        let answer = high.outbox().expect("outbox");
        let answer: Vec<_> = answer
            .into_iter()
            .filter(|e| e.recipient == low.id())
            .collect();
        assert_eq!(answer.len(), 1, "one hello back");
        low.receive(&answer[0].bytes).expect("answer");
        let conn = low.store.conn();
        assert!(contact::access_key(conn, &high.id())
            .expect("key")
            .is_some());
        let conn = high.store.conn();
        assert!(contact::access_key(conn, &low.id()).expect("key").is_some());
        assert!(low.members_to_greet(true).expect("greet").is_empty());
    }
}
