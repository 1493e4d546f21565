//! Our access key changes when someone who held it leaves.
//!
//! The relay admits a sealed message to us only with our access key, and sees
//! nothing of who sent it. Every member of a committee learns every other
//! member's key (with the log, and inside each message), so a member removed
//! — an infiltrator found out — would keep it, and with it a way to fill our
//! mailbox that the relay's per-sender limits never see. So:
//!
//! - the accounts our key was given to as co-members are kept
//!   (`access_key_peers`); after any change to a committee we hold, if one of
//!   them is no longer a member of any committee we share, the key is
//!   replaced, in one transaction with the list of everyone to tell
//!   (`access_key_owed`): the co-members who remain and our 1:1 contacts who
//!   were never co-members. The one who left is not told, nor later;
//! - the relay hears the new key before the outbox next goes (the transport
//!   asks [`Account::access_key_for_relay`]);
//! - each one owed hears it in an [`Body::AccessKeyChanged`] (every content
//!   carries the sender's key; this one carries nothing else);
//! - one whose sealed send to us is refused for a stale key sends it again
//!   identified, and learns the new key from our next message
//!   ([`Account::access_refused`]).
//!
//! Our key also goes out before anyone is a co-member, so that first
//! contact goes sealed: in every invite link we make (to whoever holds the
//! link), in a contact card, and in a link proposal naming us a delegate
//! (given by our organizer to the other committee's). An invite we made is
//! kept among the holders (`access_key_peers`, by its 16-byte invite ID)
//! while it is not revoked; revoking it — what an organizer does with a link
//! that leaked — replaces the key like a member leaving. A link holder who
//! joins is a co-member from then on.
//!
//! What remains: the one removed can still write to us identified (the relay
//! sees it, and limits it), and a contact that kept the old key sends
//! identified until our new key reaches it. Holders of an invite that
//! expired or was used up unrevoked, of a contact card, or of a declined
//! link proposal keep the key until it is next replaced.

use std::collections::BTreeSet;

use prost::Message as _;
use rand::RngCore;
use rusqlite::{params, OptionalExtension};

use crate::account::Account;
use crate::account_id::{AccountId, ACCOUNT_ID_LEN};
use crate::error::{Error, Result};
use crate::message::Body;
use crate::settings::{self, ACCESS_KEY_LEN};
use rankfile_proto::v1 as pb;

impl Account {
    /// After a change to a committee we hold: replaces our access key if an
    /// account it was given to as a co-member is no longer one anywhere, and
    /// records who is to be told. Returns whether it was replaced. Cheap when
    /// no committee changed since the last call.
    #[cfg_attr(feature = "testing", rankfile_testing_pub::public)]
    pub(crate) fn check_access_key(&mut self) -> Result<bool> {
        if !self.access_check_due {
            return Ok(false);
        }
        let mut current = self.co_members()?;
        let (open_invites, revoked_invites) = self.own_invites()?;
        current.extend(open_invites);
        let peers: Vec<(Vec<u8>, bool)> = self
            .store
            .conn()
            .prepare_cached("SELECT account, withheld FROM access_key_peers")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let holders: BTreeSet<Vec<u8>> = peers
            .iter()
            .filter(|(_, withheld)| !withheld)
            .map(|(a, _)| a.clone())
            .collect();
        let withheld: BTreeSet<&Vec<u8>> = peers
            .iter()
            .filter(|(_, withheld)| *withheld)
            .map(|(a, _)| a)
            .collect();
        // A revoked invite is gone even when it was revoked before any check
        // recorded it as a holder.
        let mut gone: Vec<&Vec<u8>> = holders.difference(&current).collect();
        gone.extend(
            revoked_invites
                .iter()
                .filter(|i| !holders.contains(*i) && !withheld.contains(i)),
        );
        let new: Vec<&Vec<u8>> = current.difference(&holders).collect();
        let rotated = !gone.is_empty();
        // Nobody left and nobody new (most checks): nothing to write.
        if !rotated && new.is_empty() {
            self.access_check_due = false;
            return Ok(false);
        }
        let tx = self.store.write()?;
        if rotated {
            for account in &gone {
                tx.prepare_cached(
                    "INSERT INTO access_key_peers (account, withheld) VALUES (?1, 1)
                     ON CONFLICT (account) DO UPDATE SET withheld = 1",
                )?
                .execute([account])?;
            }
            let mut key = [0u8; ACCESS_KEY_LEN];
            rand::rng().fill_bytes(&mut key);
            settings::set_access_key(&tx, &key)?;
            // Told: every co-member, and every contact never one (an
            // invite is a holder, not someone to tell).
            let mut owed: BTreeSet<Vec<u8>> = current
                .iter()
                .filter(|a| a.len() == ACCOUNT_ID_LEN)
                .cloned()
                .collect();
            let known: BTreeSet<Vec<u8>> = peers.into_iter().map(|(a, _)| a).collect();
            for c in crate::contact::list(&tx)? {
                let a = c.account_id.as_bytes().to_vec();
                if !known.contains(&a) {
                    owed.insert(a);
                }
            }
            for account in &owed {
                tx.prepare_cached("INSERT OR IGNORE INTO access_key_owed (account) VALUES (?1)")?
                    .execute([account])?;
            }
        }
        for account in &new {
            tx.prepare_cached(
                "INSERT INTO access_key_peers (account, withheld) VALUES (?1, 0)
                 ON CONFLICT (account) DO UPDATE SET withheld = 0 WHERE withheld = 1",
            )?
            .execute([account])?;
        }
        tx.commit()?;
        if rotated {
            self.access_owed_may_hold = true;
            self.settings.access_key = settings::access_key(self.store.conn())?;
            tracing::debug!("access key replaced after a member left");
        }
        self.access_check_due = false;
        Ok(rotated)
    }

    /// Every account that is a member, beside us, of a committee we are a
    /// member of.
    fn co_members(&mut self) -> Result<BTreeSet<Vec<u8>>> {
        let me = self.id();
        let mut all = BTreeSet::new();
        for committee in self.committees()? {
            let log = self.logs.get(self.store.conn(), &committee)?;
            let state = log.state();
            if !state.members.contains_key(&me) {
                continue;
            }
            all.extend(
                state
                    .members
                    .keys()
                    .filter(|a| **a != me)
                    .map(|a| a.as_bytes().to_vec()),
            );
        }
        Ok(all)
    }

    /// The invites this account made that carry our key, by invite ID: those
    /// not revoked, and those revoked.
    fn own_invites(&mut self) -> Result<(Holders, Holders)> {
        let me = self.id();
        let (mut open, mut revoked) = (BTreeSet::new(), BTreeSet::new());
        for committee in self.committees()? {
            let log = self.logs.get(self.store.conn(), &committee)?;
            for (id, invite) in &log.state().invites {
                if invite.created_by != me {
                    continue;
                }
                match invite.revoked {
                    false => open.insert(id.0.to_vec()),
                    true => revoked.insert(id.0.to_vec()),
                };
            }
        }
        Ok((open, revoked))
    }

    /// Tells each account owed our new access key: one message each, in the
    /// outbox. One we cannot write to (no session yet) is dropped from the
    /// list: it learns the key with our first message. Returns how many went.
    #[cfg_attr(feature = "testing", rankfile_testing_pub::public)]
    pub(crate) fn send_owed_access_keys(&mut self) -> Result<usize> {
        if !self.access_owed_may_hold {
            return Ok(0);
        }
        let owed: Vec<Vec<u8>> = self
            .store
            .conn()
            .prepare_cached("SELECT account FROM access_key_owed")?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut sent = 0;
        for raw in owed {
            let to = AccountId::from_bytes(&raw)?;
            match self.send_body(&to, &Body::AccessKeyChanged) {
                Ok(_) => sent += 1,
                Err(e @ (Error::Storage(_) | Error::Io(_))) => return Err(e),
                Err(e) => tracing::debug!("a new access key could not be told: {e}"),
            }
            self.store
                .conn()
                .prepare_cached("DELETE FROM access_key_owed WHERE account = ?1")?
                .execute([&raw])?;
        }
        self.access_owed_may_hold = false;
        Ok(sent)
    }

    /// Our access key, if the relay has not confirmed it yet.
    #[cfg_attr(feature = "testing", rankfile_testing_pub::public)]
    pub(crate) fn access_key_for_relay(&self) -> Option<[u8; ACCESS_KEY_LEN]> {
        (self.settings.access_key_at_relay != Some(self.settings.access_key))
            .then_some(self.settings.access_key)
    }

    /// The relay confirmed `key` as our access key.
    #[cfg_attr(feature = "testing", rankfile_testing_pub::public)]
    pub(crate) fn access_key_at_relay(&mut self, key: &[u8; ACCESS_KEY_LEN]) -> Result<()> {
        settings::set_access_key_at_relay(self.store.conn(), key)?;
        self.settings.access_key_at_relay = Some(*key);
        Ok(())
    }

    /// Outbox envelopes the relay refused because the access key they were
    /// sealed with is not the recipient's (it changed its key): sent again so
    /// they still arrive. A 1:1 envelope goes identified, and the stale key is
    /// forgotten (the recipient's next message brings the new one). A
    /// multi-recipient one (whose stale key among the recipients' the relay
    /// cannot say) is split into one per recipient; one of those refused in
    /// turn goes identified. One that cannot be sent again (kept from before
    /// the outbox held its inner ciphertext) is dropped, as before. Returns
    /// how many are to go again.
    #[cfg_attr(feature = "testing", rankfile_testing_pub::public)]
    pub(crate) fn access_refused(
        &mut self,
        envelope_ids: &[[u8; crate::ENVELOPE_ID_LEN]],
    ) -> Result<usize> {
        let me = self.id();
        let device_id = self.device_id();
        let certificate = self.settings.sender_certificate.clone();
        let own = (self.me.key_pair, self.me.registration_id);
        let tx = self.store.write()?;
        let mut pending = crate::store::signal::Pending::default();
        let stores = crate::store::signal::SignalStores::new(&tx, &self.cache, &mut pending);
        let mut again = 0;
        for id in envelope_ids {
            let row: Option<Refused> = tx
                .prepare_cached(
                    "SELECT seq, recipient, access_key, multi, inner, inner_kind, recipients,
                            created_at, priority
                     FROM outbox WHERE envelope_id = ?1 AND sealed = 1",
                )?
                .query_row([&id[..]], |r| {
                    Ok(Refused {
                        seq: r.get(0)?,
                        recipient: r.get(1)?,
                        access_key: r.get(2)?,
                        multi: r.get(3)?,
                        inner: r.get(4)?,
                        inner_kind: r.get(5)?,
                        recipients: r.get(6)?,
                        created_at: r.get(7)?,
                        priority: r.get(8)?,
                    })
                })
                .optional()?;
            let Some(row) = row else { continue };
            let (Some(inner), Some(kind)) = (row.inner.as_deref(), row.inner_kind) else {
                tx.prepare_cached("DELETE FROM outbox WHERE seq = ?1")?
                    .execute([row.seq])?;
                continue;
            };
            let members: Vec<AccountId> = row
                .recipients
                .as_deref()
                .unwrap_or_default()
                .chunks(ACCOUNT_ID_LEN)
                .map(AccountId::from_bytes)
                .collect::<Result<_>>()?;
            match (row.multi, members.as_slice()) {
                // Many recipients, one of them with a new key: one each.
                (true, several) if several.len() > 1 => {
                    let Some((cert, expires)) = certificate.as_ref() else {
                        continue;
                    };
                    for member in several {
                        let Some(key) = crate::contact::access_key(&tx, member)? else {
                            // Its key already known stale: identified now.
                            let mut envelope_id = [0u8; crate::ENVELOPE_ID_LEN];
                            rand::rng().fill_bytes(&mut envelope_id);
                            let bytes = pb::Envelope {
                                id: envelope_id.to_vec(),
                                sender_account_id: me.as_bytes().to_vec(),
                                sender_device_id: device_id,
                                kind: pb::envelope::Kind::SenderKey as i32,
                                ciphertext: inner.to_vec(),
                                group_id: row.recipient.clone(),
                            }
                            .encode_to_vec();
                            let device =
                                crate::contact::get(&tx, member)?.map_or(0, |c| c.device_id);
                            tx.prepare_cached(
                                "INSERT INTO outbox (envelope_id, recipient, recipient_device,
                                     envelope, created_at, sealed, multi, priority)
                                 VALUES (?1, ?2, ?3, ?4, ?5, 0, 0, ?6)",
                            )?
                            .execute(params![
                                &envelope_id[..],
                                &member.as_bytes()[..],
                                device,
                                &bytes,
                                row.created_at,
                                row.priority,
                            ])?;
                            again += 1;
                            continue;
                        };
                        let sealed = match crate::channel::seal_for_members(
                            &tx,
                            &stores,
                            own,
                            std::slice::from_ref(member),
                            (cert, inner, &row.recipient),
                        ) {
                            Ok(s) => s,
                            Err(e @ (Error::Storage(_) | Error::Io(_))) => return Err(e),
                            Err(e) => {
                                tracing::debug!("a refused post could not be sealed again: {e}");
                                continue;
                            }
                        };
                        let envelope_id = crate::receive::sealed_dedup_id(&sealed.payload);
                        tx.prepare_cached(
                            "INSERT OR IGNORE INTO outbox (envelope_id, recipient, recipient_device,
                                 envelope, created_at, sealed, access_key, multi, inner,
                                 inner_kind, recipients, certificate_expires, priority)
                             VALUES (?1, ?2, 0, ?3, ?4, 1, ?5, 1, ?6, ?7, ?8, ?9, ?10)",
                        )?
                        .execute(params![
                            &envelope_id[..],
                            &row.recipient,
                            &sealed.payload,
                            row.created_at,
                            &key[..],
                            inner,
                            kind,
                            &member.as_bytes()[..],
                            expires,
                            row.priority,
                        ])?;
                        again += 1;
                    }
                    tx.prepare_cached("DELETE FROM outbox WHERE seq = ?1")?
                        .execute([row.seq])?;
                }
                // One recipient, whose key is stale: identified.
                (multi, single) => {
                    let (to, group) = match (multi, single) {
                        (true, [member]) => (*member, Some(row.recipient.clone())),
                        (false, _) => (AccountId::from_bytes(&row.recipient)?, None),
                        _ => {
                            tx.prepare_cached("DELETE FROM outbox WHERE seq = ?1")?
                                .execute([row.seq])?;
                            continue;
                        }
                    };
                    if let Some(stale) = row.access_key.as_deref() {
                        crate::contact::forget_access_key(&tx, &to, stale)?;
                    }
                    let kind = match (kind, group.is_some()) {
                        (_, true) => pb::envelope::Kind::SenderKey,
                        (k, false)
                            if k == libsignal_protocol::CiphertextMessageType::PreKey as u8 =>
                        {
                            pb::envelope::Kind::PrekeyMessage
                        }
                        (k, false)
                            if k == libsignal_protocol::CiphertextMessageType::Whisper as u8 =>
                        {
                            pb::envelope::Kind::SignalMessage
                        }
                        (k, false)
                            if k == libsignal_protocol::CiphertextMessageType::Plaintext as u8 =>
                        {
                            pb::envelope::Kind::Plaintext
                        }
                        _ => {
                            tx.prepare_cached("DELETE FROM outbox WHERE seq = ?1")?
                                .execute([row.seq])?;
                            continue;
                        }
                    };
                    let bytes = pb::Envelope {
                        id: id.to_vec(),
                        sender_account_id: me.as_bytes().to_vec(),
                        sender_device_id: device_id,
                        kind: kind as i32,
                        ciphertext: inner.to_vec(),
                        group_id: group.unwrap_or_default(),
                    }
                    .encode_to_vec();
                    let device = crate::contact::get(&tx, &to)?.map_or(0, |c| c.device_id);
                    tx.prepare_cached(
                        "UPDATE outbox SET envelope = ?1, sealed = 0, access_key = NULL, multi = 0,
                             recipient = ?2, recipient_device = ?3, recipients = NULL,
                             certificate_expires = NULL
                         WHERE seq = ?4",
                    )?
                    .execute(params![
                        &bytes,
                        &to.as_bytes()[..],
                        device,
                        row.seq
                    ])?;
                    again += 1;
                }
            }
        }
        stores.commit_op()?;
        pending.flush(&tx)?;
        tx.commit()?;
        self.cache.absorb(pending);
        self.outbox_may_hold = true;
        Ok(again)
    }
}

/// Holders of our key as `access_key_peers` names them: account IDs (20
/// bytes) and invite IDs (8 bytes).
type Holders = BTreeSet<Vec<u8>>;

/// An outbox row the relay refused for its access key.
struct Refused {
    seq: i64,
    recipient: Vec<u8>,
    access_key: Option<Vec<u8>>,
    multi: bool,
    inner: Option<Vec<u8>>,
    inner_kind: Option<u8>,
    recipients: Option<Vec<u8>>,
    created_at: i64,
    priority: i64,
}
