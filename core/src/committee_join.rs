//! Joining a committee from an invite, end to end.
//!
//! 1. An organizer makes an invite ([`Account::create_invite`]): a
//!    CreateInvite entry goes to the members, and the token becomes a link
//!    that also names the organizer and carries its access key.
//! 2. The newcomer's device opens a session with that organizer from the
//!    relay's directory and sends a join request, sealed
//!    ([`Account::request_join`]); it remembers the join as pending.
//! 3. The organizer's device records the request in the same transaction that
//!    receives it, and once that has committed admits the newcomer
//!    ([`Account::admit_waiting`]): the Add entry goes to the members and the
//!    whole log to the newcomer. A device that stops in between admits on its
//!    next start. A request the log refuses (wrong secret; invite expired,
//!    used up or revoked) is dropped with an event.
//! 4. The newcomer's device takes in the whole log and the join is done.

use rusqlite::{params, Connection};

use crate::account::Account;
use crate::account_id::AccountId;
use crate::clock::now_ms;
use crate::committee::{
    CommitteeId, InviteId, InviteToken, JoinRequest, Role, MAX_OTHER_ORGANIZERS,
};
use crate::committee_ops::CommitteeChange;
use crate::contact;
use crate::error::{Error, Result};
use crate::event::Event;
use crate::message::Body;
use crate::send::OutgoingEnvelope;

/// A join this account asked for and is waiting on.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PendingJoin {
    /// The committee.
    pub committee_id: CommitteeId,
    /// The organizer the request went to.
    pub organizer: AccountId,
    /// When it was sent, ms since the epoch.
    pub requested_at_ms: i64,
}

impl Account {
    /// Makes an invite to a committee admitting up to `max_uses` people until
    /// `expires_at_ms`: the entry goes to the members, the token is returned
    /// (show it with [`InviteToken::to_link`] or as a QR code). Besides this
    /// organizer, the token names up to [`MAX_OTHER_ORGANIZERS`] others whose
    /// access keys this device holds, so any of them online can admit the
    /// newcomer.
    pub fn create_invite(
        &mut self,
        committee: &CommitteeId,
        expires_at_ms: u64,
        max_uses: u32,
    ) -> Result<(InviteToken, CommitteeChange)> {
        let access_key = self.settings.access_key;
        let me = self.id();
        let organizers = self
            .logs
            .get(self.store.conn(), committee)?
            .state()
            .organizers()
            .copied()
            .collect::<Vec<_>>();
        let mut others = Vec::new();
        for o in organizers.into_iter().filter(|o| *o != me) {
            if others.len() == MAX_OTHER_ORGANIZERS {
                break;
            }
            if let Some(key) = crate::committee_sessions::known_access_key(self.store.conn(), &o)? {
                others.push((o, key));
            }
        }
        let (mut token, change) = self.change_with(committee, |log, key| {
            log.create_invite(key, access_key, expires_at_ms, max_uses)
        })?;
        token.other_organizers = others;
        Ok((token, change))
    }

    /// Withdraws an invite: no organizer admits anyone on it from now on.
    pub fn revoke_invite(
        &mut self,
        committee: &CommitteeId,
        invite: InviteId,
    ) -> Result<CommitteeChange> {
        let ((), change) = self.change_with(committee, |log, key| {
            Ok((log.revoke_invite(key, invite)?, ()))
        })?;
        Ok(change)
    }

    /// On the newcomer's device, once organizers the token names are
    /// contacts with a session (see `Client::join`): sends the join request
    /// to each of them, sealed with the token's access keys (waiting in the
    /// outbox for a sender certificate when none is held yet, never
    /// identified), and remembers the join as pending. Whichever organizer's
    /// device is online first admits; a second admission made concurrently
    /// is rejected by the fold on every phone (the newcomer is already a
    /// member), so one admission stands. Returns the envelope to the
    /// organizer who made the link, or to the first one reached.
    #[cfg_attr(feature = "testing", rankfile_testing_pub::public)]
    pub(crate) fn request_join(&mut self, token: &InviteToken) -> Result<OutgoingEnvelope> {
        let now = self.clock.now_u64();
        if token.is_expired(now) {
            return Err(Error::CommitteeChangeRefused(
                crate::committee::RejectReason::InviteExpired(token.invite_id),
            ));
        }
        let me = self.id();
        if let Ok(log) = self.logs.get(self.store.conn(), &token.committee_id) {
            if log.state().role(&me).is_some() {
                return Err(Error::AlreadyInCommittee(token.committee_id));
            }
        }
        let mut reached = Vec::new();
        {
            let tx = self.store.write()?;
            for (organizer, key) in token.organizers() {
                if organizer == me || contact::get(&tx, &organizer)?.is_none() {
                    continue;
                }
                if contact::access_key(&tx, &organizer)?.is_none() {
                    contact::set_access_key(&tx, &organizer, &key)?;
                }
                reached.push(organizer);
            }
            if reached.is_empty() {
                return Err(Error::UnknownContact(token.organizer));
            }
            tx.prepare_cached(
                "INSERT OR REPLACE INTO pending_joins (committee_id, organizer, requested_at)
                 VALUES (?1, ?2, ?3)",
            )?
            .execute(params![
                &token.committee_id.0[..],
                &token.organizer.as_bytes()[..],
                self.clock.now_ms()
            ])?;
            tx.commit()?;
        }
        let request = JoinRequest::new(token, *self.me.key_pair.identity_key());
        // Sealed always: the relay must not learn who asks to join whom. A
        // fresh account has no sender certificate before its first login, so
        // the request then waits in the outbox for one (`crate::reseal`).
        // It carries our access key, as every content does, so the answer
        // comes sealed too.
        let body = Body::JoinRequest(request);
        let mut first = None;
        for organizer in reached {
            let sent = self.send_body_sealed(&organizer, &body)?;
            first.get_or_insert(sent);
        }
        first.ok_or(Error::UnknownContact(token.organizer))
    }

    /// The joins this account asked for that no organizer has admitted yet.
    pub fn pending_joins(&self) -> Result<Vec<PendingJoin>> {
        let mut stmt = self.store.conn().prepare_cached(
            "SELECT committee_id, organizer, requested_at FROM pending_joins ORDER BY requested_at",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
        rows.map(|row| {
            let (committee, organizer, requested_at_ms) = row?;
            Ok(PendingJoin {
                committee_id: CommitteeId::from_bytes(&committee)
                    .map_err(|_| Error::Storage("stored committee id is malformed".into()))?,
                organizer: AccountId::from_bytes(&organizer)?,
                requested_at_ms,
            })
        })
        .collect()
    }

    /// Decides every join request waiting on this device: admits those the log
    /// allows (each Add committed, then sent), drops the others with an event.
    /// Called after a receive batch commits and when the client connects.
    #[cfg_attr(feature = "testing", rankfile_testing_pub::public)]
    pub(crate) fn admit_waiting(&mut self) -> Result<Vec<CommitteeChange>> {
        let waiting = waiting_requests(self.store.conn())?;
        let mut changes = Vec::new();
        for (committee, account, bytes) in waiting {
            let request = JoinRequest::decode(&bytes)
                .ok()
                .filter(|r| r.committee_id == committee && r.account() == account);
            let held = self
                .logs
                .get(self.store.conn(), &committee)
                .map(|log| log.state().clone());
            let (Some(request), Ok(state)) = (request, held) else {
                forget_request(self.store.conn(), &committee, &account)?;
                continue;
            };
            if state.members.contains_key(&account) {
                // Admitted before (by us or another organizer): the newcomer
                // may have missed the log, so send it again.
                forget_request(self.store.conn(), &committee, &account)?;
                let log = self.logs.get(self.store.conn(), &committee)?.clone();
                let each = vec![(account, crate::committee_ops::Delivery::Whole)];
                changes.push(self.deliver_entries(&log, each, |_| Ok(()))?);
                continue;
            }
            if state.role(&self.id()) != Some(Role::Organizer) {
                forget_request(self.store.conn(), &committee, &account)?;
                self.events.push(Event::JoinRefused {
                    committee_id: committee,
                    account,
                    reason: crate::committee::RejectReason::NotAnOrganizer(self.id()),
                });
                continue;
            }
            match self.change_with(&committee, |log, key| Ok((log.admit(key, &request)?, ()))) {
                Ok(((), change)) => {
                    forget_request(self.store.conn(), &committee, &account)?;
                    self.events.push(Event::MemberAdmitted {
                        committee_id: committee,
                        account,
                    });
                    changes.push(change);
                }
                Err(Error::CommitteeChangeRefused(reason)) => {
                    forget_request(self.store.conn(), &committee, &account)?;
                    self.events.push(Event::JoinRefused {
                        committee_id: committee,
                        account,
                        reason,
                    });
                }
                Err(e) => return Err(e),
            }
        }
        Ok(changes)
    }
}

/// Inside the receive transaction, before anything is written: a join
/// request must come from the key it names, for a committee this device holds.
pub(crate) fn check_request(
    sender_identity: &libsignal_protocol::IdentityKey,
    request: &JoinRequest,
    committee_held: bool,
) -> Result<()> {
    if request.identity_key != *sender_identity {
        return Err(Error::InvalidContent("join request for another key"));
    }
    if !committee_held {
        return Err(Error::UnknownCommittee(request.committee_id));
    }
    Ok(())
}

/// Inside the receive transaction: keeps a checked join request for
/// [`Account::admit_waiting`].
pub(crate) fn record_request(conn: &Connection, request: &JoinRequest) -> Result<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO join_requests (committee_id, account, request, received_at)
         VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        &request.committee_id.0[..],
        &request.account().as_bytes()[..],
        request.encode(),
        now_ms()
    ])?;
    Ok(())
}

/// Inside the receive transaction: the whole log of a committee we asked to
/// join has arrived, so the join is no longer pending.
pub(crate) fn joined(conn: &Connection, committee: &CommitteeId) -> Result<()> {
    conn.prepare_cached("DELETE FROM pending_joins WHERE committee_id = ?1")?
        .execute([&committee.0[..]])?;
    Ok(())
}

type Waiting = (CommitteeId, AccountId, Vec<u8>);

fn waiting_requests(conn: &Connection) -> Result<Vec<Waiting>> {
    let mut stmt = conn.prepare_cached(
        "SELECT committee_id, account, request FROM join_requests ORDER BY received_at",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, Vec<u8>>(0)?,
            r.get::<_, Vec<u8>>(1)?,
            r.get::<_, Vec<u8>>(2)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (committee, account, request) = row?;
        // A malformed row cannot be admitted; dropped with the others below.
        match (
            CommitteeId::from_bytes(&committee),
            AccountId::from_bytes(&account),
        ) {
            (Ok(c), Ok(a)) => out.push((c, a, request)),
            _ => {
                conn.prepare_cached(
                    "DELETE FROM join_requests WHERE committee_id = ?1 AND account = ?2",
                )?
                .execute(params![committee, account])?;
            }
        }
    }
    Ok(out)
}

fn forget_request(conn: &Connection, committee: &CommitteeId, account: &AccountId) -> Result<()> {
    conn.prepare_cached("DELETE FROM join_requests WHERE committee_id = ?1 AND account = ?2")?
        .execute(params![&committee.0[..], &account.as_bytes()[..]])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::committee::{CommitteeMeta, InviteToken};
    use crate::store::DatabaseKey;
    use crate::Account;

    /// A fresh account holds no sender certificate until its first login:
    /// its join request waits in the outbox, sealed with the invite's key,
    /// for the certificate the transport fetches — it never goes identified.
    #[test]
    fn a_join_request_without_a_certificate_waits_sealed() {
        let dir = tempfile::tempdir().expect("dir");
        let create = |name: &str| {
            Account::create(&dir.path().join(name), &DatabaseKey::generate()).expect("account")
        };
        let mut organizer = create("organizer.db");
        let mut newcomer = create("newcomer.db");
        let committee = organizer
            .create_committee(CommitteeMeta {
                name: "Depot".into(),
                ..CommitteeMeta::default()
            })
            .expect("found");
        let expires = u64::try_from(organizer.clock.now_ms()).expect("clock") + 3_600_000;
        let (token, _) = organizer
            .create_invite(&committee, expires, 1)
            .expect("invite");
        // Short enough for a QR code, the organizer's access key included.
        assert_eq!(token.to_link().len(), 152);
        let token = InviteToken::parse(&token.to_link()).expect("link");
        assert_eq!(token.organizer_access_key, organizer.settings.access_key);
        let bundle = organizer.prekey_bundle().expect("bundle");
        newcomer.add_contact("", &bundle).expect("contact");
        assert!(newcomer.needs_sender_certificate().expect("needs"));

        let sent = newcomer.request_join(&token).expect("request");
        assert!(sent.sealed, "never identified");
        assert_eq!(sent.access_key, Some(token.organizer_access_key));
        assert!(
            sent.bytes.is_empty(),
            "nothing to send before a certificate"
        );
        let outbox = newcomer.outbox().expect("outbox");
        assert_eq!(outbox.len(), 1);
        assert!(outbox.iter().all(|e| e.sealed));
        // The transport asks for a certificate before anything of it leaves.
        assert!(newcomer.outbox_needs_certificate().expect("needs"));
        assert_eq!(newcomer.reseal_stale_outbox().expect("reseal"), 0);
        assert_eq!(newcomer.pending_joins().expect("pending").len(), 1);
    }
}
