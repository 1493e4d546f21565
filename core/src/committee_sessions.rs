//! Sessions between the members of a committee. Posting needs a 1:1 session
//! with every member (sender keys travel over them) and their access keys (the
//! post is sealed), but members who joined from an invite have met only the
//! organizer who admitted them. So a device opens the sessions it lacks itself,
//! from the bundle the relay's directory serves — accepted only if its
//! identity key is the one the committee's log records for that member, so
//! the relay cannot put its own key in:
//!
//! - Lazily, before a post, with every member it lacks (whoever they are): a
//!   committee of hundreds does not open every pair of sessions up front.
//! - At once, after a committee change, for the committees where it is an
//!   organizer or delegate: they carry alerts to every member without delay.
//!
//! Access keys travel with the log: an organizer sends the keys it knows with
//! a whole log and the new member's with an Add, so most first messages are
//! already sealed. When a member's key is still unknown the device sends a
//! hello asking for a reply; every content carries its sender's access key,
//! and a device answers a hello only for a committee it is a member of.

use std::collections::BTreeMap;
use std::time::SystemTime;

use libsignal_protocol::{DeviceId, IdentityKey};

use crate::account::Account;
use crate::account_id::AccountId;
use crate::committee::{CommitteeId, Role};
use crate::contact;
use crate::error::{Error, Result};
use crate::message::Body;
use crate::prekeys;
use crate::send::OutgoingEnvelope;
use crate::session;
use crate::settings::ACCESS_KEY_LEN;
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
    /// Members of this account's committees it shares no usable session with:
    /// with `all` false, only in committees where this account is an
    /// organizer or delegate (greeted at once); with `all` true, in every one
    /// (before a post).
    #[cfg_attr(feature = "testing", rankfile_testing_pub::public)]
    pub(crate) fn members_to_greet(&mut self, all: bool) -> Result<Vec<MemberToGreet>> {
        let me = self.id();
        let mut wanted: BTreeMap<AccountId, MemberToGreet> = BTreeMap::new();
        for committee in self.committees()? {
            let log = self.logs.get(self.store.conn(), &committee)?;
            let state = log.state();
            match state.role(&me) {
                None => continue,
                Some(role) if !all && role < Role::Delegate => continue,
                Some(_) => {}
            }
            for (account, member) in &state.members {
                if *account == me {
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
    pub(crate) fn usable_sessions<'a>(
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
    /// becomes a contact, with the access key the log's organizer sent), and
    /// when their access key is still unknown sends a hello asking for it.
    #[cfg_attr(feature = "testing", rankfile_testing_pub::public)]
    pub(crate) fn greet_member(
        &mut self,
        member: &MemberToGreet,
        bundle: &[u8],
    ) -> Result<Option<OutgoingEnvelope>> {
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
        let conn = self.store.conn();
        if contact::access_key(conn, &member.account)?.is_none() {
            if let Some(key) = take_learnt_key(conn, &member.account)? {
                contact::set_access_key(conn, &member.account, &key)?;
            }
        }
        if contact::access_key(conn, &member.account)?.is_some() {
            return Ok(None);
        }
        self.send_hello(&member.committee_id, &member.account, true)
            .map(Some)
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

/// Inside the receive transaction: a member's access key as an organizer sent
/// it. Given to the contact if it has none (a key learnt from the member's
/// own messages is not replaced), else kept until a session is opened.
pub(crate) fn learn_access_key(
    conn: &rusqlite::Connection,
    account: &AccountId,
    key: &[u8; ACCESS_KEY_LEN],
) -> Result<()> {
    if contact::get(conn, account)?.is_some() {
        if contact::access_key(conn, account)?.is_none() {
            contact::set_access_key(conn, account, key)?;
        }
        return Ok(());
    }
    conn.prepare_cached(
        "INSERT OR REPLACE INTO member_access_keys (account, access_key) VALUES (?1, ?2)",
    )?
    .execute(rusqlite::params![&account.as_bytes()[..], &key[..]])?;
    Ok(())
}

/// The access key we hold for `account`: its contact's, else one learnt
/// before any session with it (left in place).
pub(crate) fn known_access_key(
    conn: &rusqlite::Connection,
    account: &AccountId,
) -> Result<Option<[u8; ACCESS_KEY_LEN]>> {
    use rusqlite::OptionalExtension;
    if let Some(key) = contact::access_key(conn, account)? {
        return Ok(Some(key));
    }
    let found: Option<Vec<u8>> = conn
        .prepare_cached("SELECT access_key FROM member_access_keys WHERE account = ?1")?
        .query_row([&account.as_bytes()[..]], |r| r.get(0))
        .optional()?;
    Ok(found.and_then(|k| k.try_into().ok()))
}

pub(crate) fn take_learnt_key(
    conn: &rusqlite::Connection,
    account: &AccountId,
) -> Result<Option<[u8; ACCESS_KEY_LEN]>> {
    use rusqlite::OptionalExtension;
    let found: Option<Vec<u8>> = conn
        .prepare_cached("SELECT access_key FROM member_access_keys WHERE account = ?1")?
        .query_row([&account.as_bytes()[..]], |r| r.get(0))
        .optional()?;
    conn.prepare_cached("DELETE FROM member_access_keys WHERE account = ?1")?
        .execute([&account.as_bytes()[..]])?;
    Ok(found.and_then(|k| k.try_into().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::committee::CommitteeMeta;
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

    /// An organizer who knows `members` (sessions both ways when `talked`,
    /// so it holds their access keys) and a committee of them all.
    fn committee(
        organizer: &mut Account,
        members: &mut [&mut Account],
        talked: bool,
    ) -> CommitteeId {
        for m in members.iter_mut() {
            let bundle = m.prekey_bundle().expect("bundle");
            organizer.add_contact("", &bundle).expect("contact");
            if talked {
                let hi = organizer.send_text(&m.id(), "hi").expect("send");
                m.receive(&hi.bytes).expect("hi");
                let back = m.send_text(&organizer.id(), "hi").expect("reply");
                organizer.receive(&back.bytes).expect("reply");
            }
        }
        let committee = organizer
            .create_committee(CommitteeMeta {
                name: "Yard".into(),
                ..CommitteeMeta::default()
            })
            .expect("found");
        let mut sent = Vec::new();
        for m in members.iter() {
            let id = m.id();
            sent.extend(
                organizer
                    .add_member(&committee, &id, Role::Member)
                    .expect("add")
                    .sent,
            );
        }
        for m in members.iter_mut() {
            deliver(m, &sent);
        }
        committee
    }

    #[test]
    fn a_session_opens_only_with_the_key_the_log_records_and_asks_for_a_missing_access_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut organizer = account(&dir, "o");
        let mut a = account(&dir, "a");
        let mut b = account(&dir, "b");
        let stranger = account(&dir, "s");
        let committee = committee(&mut organizer, &mut [&mut a, &mut b], false);
        assert_eq!(b.committee(&committee).expect("log").members.len(), 3);

        // Plain members open sessions lazily (before a post), not at once.
        assert!(a.members_to_greet(false).expect("greet").is_empty());
        let wanted = a.members_to_greet(true).expect("greet");
        assert_eq!(wanted.len(), 1);
        assert_eq!(wanted[0].account, b.id());
        // The organizer, who carries alerts, has every session already.
        assert!(organizer.members_to_greet(false).expect("greet").is_empty());

        // A bundle with another key (a relay putting its own in) is refused,
        // and leaves no contact behind.
        let mut stranger = stranger;
        let forged = stranger.prekey_bundle().expect("bundle");
        assert!(matches!(
            a.greet_member(&wanted[0], &forged),
            Err(Error::MemberKeyMismatch(who)) if who == b.id()
        ));
        assert!(a.contact(&stranger.id()).is_err());

        // The organizer never learnt b's access key: the real bundle opens
        // the session and a hello asks for the key, which the answer brings.
        let bundle = b.prekey_bundle().expect("bundle");
        let hello = a
            .greet_member(&wanted[0], &bundle)
            .expect("greet")
            .expect("a hello, the key being unknown");
        b.receive(&hello.bytes).expect("hello");
        assert!(b.members_to_greet(true).expect("greet").is_empty());
        let answer: Vec<_> = b
            .outbox()
            .expect("outbox")
            .into_iter()
            .filter(|e| e.recipient == a.id())
            .collect();
        assert_eq!(answer.len(), 1, "one hello back");
        a.receive(&answer[0].bytes).expect("answer");
        assert!(contact::access_key(a.store.conn(), &b.id())
            .expect("key")
            .is_some());
        assert!(contact::access_key(b.store.conn(), &a.id())
            .expect("key")
            .is_some());
        assert!(a.members_to_greet(true).expect("greet").is_empty());
    }

    #[test]
    fn access_keys_travel_with_the_log_so_no_hello_is_needed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut organizer = account(&dir, "o");
        let mut a = account(&dir, "a");
        let mut b = account(&dir, "b");
        let committee = committee(&mut organizer, &mut [&mut a, &mut b], true);
        // b got a's key with the whole log; a got b's with b's Add.
        let (a_bundle, b_bundle) = (
            a.prekey_bundle().expect("bundle"),
            b.prekey_bundle().expect("bundle"),
        );
        let (a_id, b_id) = (a.id(), b.id());
        for (me, other, bundle) in [(&mut a, b_id, b_bundle), (&mut b, a_id, a_bundle)] {
            let wanted = me.members_to_greet(true).expect("greet");
            assert_eq!(wanted.len(), 1);
            assert_eq!(wanted[0].committee_id, committee);
            assert!(me
                .greet_member(&wanted[0], &bundle)
                .expect("greet")
                .is_none());
            let key = contact::access_key(me.store.conn(), &other).expect("key");
            assert!(key.is_some(), "the key the organizer sent");
        }
    }
}
