//! The send path: encrypt one message to a contact, and commit the advanced
//! ratchet, the message and the outgoing envelope before the ciphertext may
//! leave the device. A crash at any point therefore never makes the core use a
//! message key twice: either the commit happened and the envelope waits in the
//! outbox, or it did not and the ratchet never moved.

use std::collections::HashSet;
use std::time::SystemTime;

use libsignal_protocol::{message_encrypt, CiphertextMessageType, DeviceId};
use prost::Message as _;
use rand::RngCore;
use rankfile_proto::v1 as pb;
use rusqlite::params;
use rusqlite::types::ValueRef;

use crate::account::Account;
use crate::account_id::AccountId;
use crate::contact;
use crate::conversation_timer;
use crate::error::{Error, Result};
use crate::message::{self, Body, NewMessage, ENVELOPE_ID_LEN};
use crate::receive::sealed_dedup_id;
use crate::sealed;
use crate::session;
use crate::settings::ACCESS_KEY_LEN;
use crate::store::signal::{address, Pending, SignalCache, SignalStores};
use crate::store::WriteTransaction;

/// An envelope committed to the outbox, ready for the relay. Two are equal
/// when what goes to the relay is (the send log's handle is this device's
/// bookkeeping, not part of the envelope).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct OutgoingEnvelope {
    pub envelope_id: [u8; ENVELOPE_ID_LEN],
    pub recipient: AccountId,
    pub recipient_device: u32,
    /// What goes to the relay: a sealed-sender message when `sealed`, else an
    /// encoded identified `Envelope`.
    pub bytes: Vec<u8>,
    /// Sealed sender: the relay does not learn who sent it.
    pub sealed: bool,
    /// The recipient's access key, which the relay checks for sealed messages
    /// (for a multi-recipient message, the XOR of all recipients' keys).
    pub access_key: Option<[u8; ACCESS_KEY_LEN]>,
    /// A multi-recipient sealed message (a channel message): `bytes` is the one
    /// upload the relay fans out; `recipient` is the sender itself.
    pub multi: bool,
    /// An alert: the relay delivers it ahead of other traffic and wakes the
    /// recipient's phone. The only thing about the content the relay sees.
    pub high_priority: bool,
    /// What a recipient that cannot read it names it by (`crate::repair`).
    pub(crate) handle: u64,
}

impl PartialEq for OutgoingEnvelope {
    fn eq(&self, other: &Self) -> bool {
        self.envelope_id == other.envelope_id
            && self.recipient == other.recipient
            && self.recipient_device == other.recipient_device
            && self.bytes == other.bytes
            && self.sealed == other.sealed
            && self.access_key == other.access_key
            && self.multi == other.multi
            && self.high_priority == other.high_priority
    }
}

impl Eq for OutgoingEnvelope {}

pub(crate) const OUTBOX_WAITING_SQL: &str = "SELECT EXISTS (SELECT 1 FROM outbox)";

impl Account {
    /// Encrypts `body` to contact `to` and commits it. The returned envelope is
    /// also in the outbox until [`Account::confirm_sent`].
    /// The text carries the conversation's disappearing timer, and both
    /// phones delete it when that runs out.
    pub fn send_text(&mut self, to: &AccountId, body: &str) -> Result<OutgoingEnvelope> {
        let text = self.text_to(to, body)?;
        self.send_content(to, &text, None)
    }

    /// A text to `to`, under the conversation's timer.
    fn text_to(&self, to: &AccountId, body: &str) -> Result<Body> {
        Ok(Body::Text {
            body: body.to_string(),
            timer: conversation_timer::get(self.store.conn(), to)?,
        })
    }

    /// Sends any 1:1 content (a text, a sender key…).
    pub(crate) fn send_body(&mut self, to: &AccountId, body: &Body) -> Result<OutgoingEnvelope> {
        self.send_content(to, body, None)
    }

    /// Sends a 1:1 content that must not name its sender to the relay (a
    /// first contact, such as a join request): sealed when the recipient's
    /// access key is known, even without a sender certificate yet — it then
    /// waits in the outbox until the transport has fetched one and
    /// `crate::reseal` has sealed it, never going identified.
    pub(crate) fn send_body_sealed(
        &mut self,
        to: &AccountId,
        body: &Body,
    ) -> Result<OutgoingEnvelope> {
        self.send_content_with(to, body, None, true)
    }

    /// Like [`Account::send_text`], and asks the recipient to recognise this
    /// account as the successor of `previous` (this person's earlier account).
    /// The recipient's core holds the message until its user accepts.
    pub fn send_text_as_successor(
        &mut self,
        to: &AccountId,
        body: &str,
        previous: &AccountId,
    ) -> Result<OutgoingEnvelope> {
        let text = self.text_to(to, body)?;
        self.send_content(to, &text, Some(previous))
    }

    fn send_content(
        &mut self,
        to: &AccountId,
        body: &Body,
        replaces: Option<&AccountId>,
    ) -> Result<OutgoingEnvelope> {
        self.send_content_with(to, body, replaces, false)
    }

    fn send_content_with(
        &mut self,
        to: &AccountId,
        body: &Body,
        replaces: Option<&AccountId>,
        wait_for_certificate: bool,
    ) -> Result<OutgoingEnvelope> {
        let sent_at_ms = self.clock.now_ms();
        let plaintext =
            message::encode_content(body, sent_at_ms, replaces, &self.settings.access_key)?;
        let mut sealer = Sealer::new(self);
        sealer.wait_for_certificate = wait_for_certificate;
        let tx = self.store.write()?;
        let mut pending = Pending::default();
        let sent = sealer.seal(
            &tx,
            &self.cache,
            &mut pending,
            to,
            &plaintext,
            sent_at_ms,
            false,
        )?;
        // A text goes into the conversation; a control message (a sender key)
        // only travels. A timer change is ours as soon as it is sent.
        let mut expiring = false;
        match body {
            Body::Text { body: text, timer } => {
                let expires = crate::channel::expires_at(sent_at_ms, sent_at_ms, timer.secs);
                expiring = expires.is_some();
                keep_outgoing(&tx, &sent, text, sent_at_ms, expires)?;
            }
            Body::ConversationTimer(timer) => conversation_timer::put(&tx, to, *timer)?,
            _ => {}
        }
        pending.flush(&tx)?;
        tx.commit()?;
        if expiring {
            self.next_due = None;
        }
        self.outbox_may_hold = true;
        self.cache.absorb(pending);
        Ok(sent)
    }

    /// The naive fan-out: one text sealed to each of `to` separately over the
    /// 1:1 sessions — one encryption, one envelope and one upload per
    /// recipient — all committed in one transaction (one fsync) before any
    /// leaves, each kept in its conversation like [`Account::send_text`], and
    /// marked high priority when `high_priority`. An alert in a committee does
    /// better (it cascades along the links, each delegate's device sending to
    /// its own committee); this is the baseline it is measured against.
    /// Recipients that cannot be sent to now (no session, an identity change
    /// pending) are returned apart. The one plaintext carries no
    /// conversation timer: each recipient applies its own (a timer of
    /// version 0 never overrides one), and our copy in each conversation
    /// expires by that conversation's.
    pub fn send_text_to_many(
        &mut self,
        to: &[AccountId],
        body: &str,
        high_priority: bool,
    ) -> Result<(Vec<OutgoingEnvelope>, Vec<AccountId>)> {
        self.send_to_many(
            to,
            &Body::Text {
                body: body.to_string(),
                timer: conversation_timer::Timer::default(),
            },
            high_priority,
            |_, _, _| Ok(()),
        )
    }

    /// Sends one content (an alert, an answer, a text…) to each of `to` over
    /// the 1:1 sessions, all committed in one transaction (one fsync) before
    /// any leaves; a text is also kept in each conversation. Recipients that
    /// cannot be sent to now (no session, an identity change pending) are
    /// returned apart; the others' envelopes are in the outbox, marked high
    /// priority when `high_priority`. `record` writes the caller's own
    /// bookkeeping of who got it, in the same transaction.
    pub(crate) fn send_to_many(
        &mut self,
        to: &[AccountId],
        body: &Body,
        high_priority: bool,
        record: impl FnOnce(&WriteTransaction<'_>, &[OutgoingEnvelope], &[AccountId]) -> Result<()>,
    ) -> Result<(Vec<OutgoingEnvelope>, Vec<AccountId>)> {
        let sent_at_ms = self.clock.now_ms();
        let plaintext = message::encode_content(body, sent_at_ms, None, &self.settings.access_key)?;
        let each: Vec<(AccountId, &[u8])> = to.iter().map(|r| (*r, &plaintext[..])).collect();
        let text = match body {
            Body::Text { body: text, .. } => Some(text.as_str()),
            _ => None,
        };
        self.seal_each(&each, text, (sent_at_ms, high_priority), record)
    }

    /// Sends each recipient its own content over the 1:1 sessions, all
    /// committed in one transaction with what `record` writes, as
    /// [`Account::send_to_many`] does for one content.
    pub(crate) fn send_each(
        &mut self,
        each: &[(AccountId, Body)],
        record: impl FnOnce(&WriteTransaction<'_>, &[OutgoingEnvelope], &[AccountId]) -> Result<()>,
    ) -> Result<(Vec<OutgoingEnvelope>, Vec<AccountId>)> {
        let sent_at_ms = self.clock.now_ms();
        let plaintexts = each
            .iter()
            .map(|(_, body)| {
                message::encode_content(body, sent_at_ms, None, &self.settings.access_key)
            })
            .collect::<Result<Vec<_>>>()?;
        let each: Vec<(AccountId, &[u8])> = each
            .iter()
            .zip(&plaintexts)
            .map(|((r, _), p)| (*r, &p[..]))
            .collect();
        self.seal_each(&each, None, (sent_at_ms, false), record)
    }

    /// Seals each plaintext to its recipient in one transaction (one fsync)
    /// and keeps `text` in each conversation; see [`Account::send_to_many`].
    pub(crate) fn seal_each(
        &mut self,
        each: &[(AccountId, &[u8])],
        text: Option<&str>,
        (sent_at_ms, high_priority): (i64, bool),
        record: impl FnOnce(&WriteTransaction<'_>, &[OutgoingEnvelope], &[AccountId]) -> Result<()>,
    ) -> Result<(Vec<OutgoingEnvelope>, Vec<AccountId>)> {
        let sealer = Sealer::new(self);
        let tx = self.store.write()?;
        let mut pending = Pending::default();
        let mut sent = Vec::with_capacity(each.len());
        let mut unreachable = Vec::new();
        let mut expiring = false;
        for (r, plaintext) in each {
            let sealed = sealer.seal(
                &tx,
                &self.cache,
                &mut pending,
                r,
                plaintext,
                sent_at_ms,
                high_priority,
            );
            match sealed {
                Ok(e) => {
                    if let Some(text) = text {
                        let secs = conversation_timer::get(&tx, r)?.secs;
                        let expires = crate::channel::expires_at(sent_at_ms, sent_at_ms, secs);
                        expiring |= expires.is_some();
                        keep_outgoing(&tx, &e, text, sent_at_ms, expires)?;
                    }
                    sent.push(e);
                }
                Err(
                    Error::UnknownContact(_)
                    | Error::NoSession(_)
                    | Error::IdentityChangePending(_)
                    | Error::PostQuantumRequired(_),
                ) => unreachable.push(*r),
                Err(e) => return Err(e),
            }
        }
        record(&tx, &sent, &unreachable)?;
        pending.flush(&tx)?;
        tx.commit()?;
        if expiring {
            self.next_due = None;
        }
        self.outbox_may_hold |= !sent.is_empty();
        self.cache.absorb(pending);
        Ok((sent, unreachable))
    }

    /// Whether anything waits in the outbox: a cheap check, so a receive batch
    /// that queued nothing costs the transport no outbox read. Asks the
    /// database only when a commit may have queued something since it was
    /// last found empty.
    #[cfg_attr(feature = "testing", rankfile_testing_pub::public)]
    pub(crate) fn outbox_waiting(&mut self) -> Result<bool> {
        if !self.outbox_may_hold {
            return Ok(false);
        }
        let waiting = self
            .store
            .conn()
            .prepare_cached(OUTBOX_WAITING_SQL)?
            .query_row([], |r| r.get(0))?;
        self.outbox_may_hold = waiting;
        Ok(waiting)
    }

    /// Envelopes committed but not yet confirmed by the relay, oldest first.
    /// After a restart, the transport sends these again; the recipient stores
    /// each once, whatever the number of copies.
    #[cfg_attr(feature = "testing", rankfile_testing_pub::public)]
    pub(crate) fn outbox(&self) -> Result<Vec<OutgoingEnvelope>> {
        let mut stmt = self.store.conn().prepare_cached(
            "SELECT envelope_id, recipient, recipient_device, envelope, sealed, access_key, multi, priority
             FROM outbox ORDER BY seq",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, u32>(2)?,
                r.get::<_, Vec<u8>>(3)?,
                r.get::<_, bool>(4)?,
                r.get::<_, Option<Vec<u8>>>(5)?,
                r.get::<_, bool>(6)?,
                r.get::<_, bool>(7)?,
            ))
        })?;
        rows.map(|row| {
            let (id, recipient, recipient_device, bytes, sealed, access_key, multi, high_priority) =
                row?;
            // For a multi-recipient row `recipient` holds the channel ID; the
            // envelope's recipient is then reported as ourselves.
            let recipient = if multi {
                self.id()
            } else {
                AccountId::from_bytes(&recipient)?
            };
            Ok(OutgoingEnvelope {
                handle: 0,
                multi,
                high_priority,
                sealed,
                access_key: access_key.and_then(|k| k.try_into().ok()),
                envelope_id: id
                    .try_into()
                    .map_err(|_| Error::Storage("stored envelope id is malformed".into()))?,
                recipient,
                recipient_device,
                bytes,
            })
        })
        .collect()
    }

    /// The relay has durably taken the envelope: drop it from the outbox.
    /// Returns whether it was there.
    #[cfg(any(test, feature = "testing"))]
    pub fn confirm_sent(&mut self, envelope_id: &[u8; ENVELOPE_ID_LEN]) -> Result<bool> {
        Ok(self.confirm_sent_all(&[*envelope_id])? > 0)
    }

    /// Drops many confirmed envelopes from the outbox in one transaction (one
    /// fsync for a whole window of replies). Returns how many were there.
    ///
    /// The outbox has no index on envelope IDs (it would cost every send a
    /// page): one pass over it finds the rows, which then go by their keys.
    #[cfg_attr(feature = "testing", rankfile_testing_pub::public)]
    pub(crate) fn confirm_sent_all(
        &mut self,
        envelope_ids: &[[u8; ENVELOPE_ID_LEN]],
    ) -> Result<usize> {
        self.settle_sent(envelope_ids, true)
    }

    /// Drops envelopes the relay refused for good from the outbox; a sender
    /// key one of them carried is not held by its member, and goes again.
    #[cfg_attr(feature = "testing", rankfile_testing_pub::public)]
    pub(crate) fn refused_sent_all(
        &mut self,
        envelope_ids: &[[u8; ENVELOPE_ID_LEN]],
    ) -> Result<usize> {
        self.settle_sent(envelope_ids, false)
    }

    fn settle_sent(
        &mut self,
        envelope_ids: &[[u8; ENVELOPE_ID_LEN]],
        reached: bool,
    ) -> Result<usize> {
        let confirmed: HashSet<&[u8]> = envelope_ids.iter().map(|id| &id[..]).collect();
        let tx = self.store.write()?;
        let ids: Vec<&[u8]> = envelope_ids.iter().map(|id| &id[..]).collect();
        crate::committee_store::settle_holders(&tx, &ids, reached)?;
        let mut removed = 0;
        {
            let mut rows = Vec::with_capacity(envelope_ids.len());
            let mut all = tx.prepare_cached("SELECT seq, envelope_id FROM outbox")?;
            let mut cursor = all.query([])?;
            while let Some(row) = cursor.next()? {
                let id = row.get_ref(1)?;
                if matches!(id, ValueRef::Blob(id) if confirmed.contains(id)) {
                    rows.push(row.get::<_, i64>(0)?);
                }
            }
            let mut delete = tx.prepare_cached("DELETE FROM outbox WHERE seq = ?1")?;
            for seq in rows {
                removed += delete.execute([seq])?;
            }
        }
        tx.commit()?;
        Ok(removed)
    }

    /// Whether an envelope is still waiting in the outbox.
    #[cfg(any(test, feature = "testing"))]
    pub fn in_outbox(&self, envelope_id: &[u8; ENVELOPE_ID_LEN]) -> Result<bool> {
        use rusqlite::OptionalExtension as _;
        Ok(self
            .store
            .conn()
            .query_row(
                "SELECT 1 FROM outbox WHERE envelope_id = ?1",
                [&envelope_id[..]],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }
}

/// What sealing needs of the account, taken before its store is borrowed for
/// the transaction: who we are and the sender certificate to use, with its
/// expiry. It is used even when it has run out: an envelope whose certificate
/// is stale when it is to leave is sealed again then (`crate::reseal`).
struct Sealer {
    me: AccountId,
    device_id: u32,
    certificate: Option<(Vec<u8>, i64)>,
    /// With the recipient's access key but no certificate: wait for one
    /// rather than go identified (`Account::send_body_sealed`).
    wait_for_certificate: bool,
}

impl Sealer {
    fn new(account: &Account) -> Self {
        Sealer {
            me: account.id(),
            device_id: account.device_id(),
            certificate: account.settings.sender_certificate.clone(),
            wait_for_certificate: false,
        }
    }

    /// Encrypts `plaintext` to `to` inside `tx` and adds it to the outbox:
    /// sealed when we know the recipient's access key and hold a sender
    /// certificate that is still valid, identified otherwise (the first message
    /// to a new contact, before its access key has reached us). A failure
    /// leaves nothing staged for this recipient.
    #[allow(clippy::too_many_arguments)]
    fn seal(
        &self,
        tx: &WriteTransaction<'_>,
        cache: &SignalCache,
        pending: &mut Pending,
        to: &AccountId,
        plaintext: &[u8],
        sent_at_ms: i64,
        high_priority: bool,
    ) -> Result<OutgoingEnvelope> {
        let (me, device_id) = (self.me, self.device_id);
        let c = contact::get(tx, to)?.ok_or(Error::UnknownContact(*to))?;
        if c.pending_successor.is_some() || contact::replaced_by(tx, to)?.is_some() {
            return Err(Error::IdentityChangePending(*to));
        }
        let device = DeviceId::try_from(c.device_id)
            .map_err(|_| Error::Storage("stored device id is out of range".into()))?;
        let addr = address(to, device);
        let their_access_key = contact::access_key(tx, to)?;
        let certificate = self.certificate.clone();
        let stores = SignalStores::new(tx, cache, pending);
        let (post_quantum, usable) = stores
            .with_session(&addr.to_string(), |record| {
                (
                    session::has_post_quantum_ratchet(record),
                    session::usable_for_sending(record, SystemTime::now()),
                )
            })?
            .ok_or(Error::NoSession(*to))?;
        if !post_quantum {
            return Err(Error::PostQuantumRequired(*to));
        }
        if !usable {
            return Err(Error::NoSession(*to));
        }
        let ciphertext = futures::executor::block_on(message_encrypt(
            plaintext,
            &addr,
            &mut stores.view(),
            &mut stores.view(),
            SystemTime::now(),
            &mut rand::rng(),
        ))?;
        let handle = crate::repair::handle_of(ciphertext.serialize());
        let mut reseal = None;
        let (bytes, access_key, envelope_id) = match (their_access_key, certificate) {
            (Some(key), Some((cert, expires))) => {
                let bytes = sealed::seal(stores.view(), &addr, &cert, &ciphertext)?;
                // The receiver recognises a sealed message by its hash.
                let id = sealed_dedup_id(&bytes);
                reseal = Some((
                    ciphertext.serialize().to_vec(),
                    ciphertext.message_type() as u8,
                    expires,
                ));
                (bytes, Some(key), id)
            }
            (Some(key), None) if self.wait_for_certificate => {
                // No certificate yet (a fresh account before its first
                // login): no bytes to send; the row counts as sealed with a
                // certificate long dead, so the transport fetches one and
                // seals it before anything of the outbox leaves.
                let mut id = [0u8; ENVELOPE_ID_LEN];
                rand::rng().fill_bytes(&mut id);
                reseal = Some((
                    ciphertext.serialize().to_vec(),
                    ciphertext.message_type() as u8,
                    0,
                ));
                (Vec::new(), Some(key), id)
            }
            _ => {
                let kind = match ciphertext.message_type() {
                    CiphertextMessageType::PreKey => pb::envelope::Kind::PrekeyMessage,
                    CiphertextMessageType::Whisper => pb::envelope::Kind::SignalMessage,
                    _ => return Err(Error::Protocol("unexpected ciphertext type".into())),
                };
                let mut envelope_id = [0u8; ENVELOPE_ID_LEN];
                rand::rng().fill_bytes(&mut envelope_id);
                let bytes = pb::Envelope {
                    id: envelope_id.to_vec(),
                    sender_account_id: me.as_bytes().to_vec(),
                    sender_device_id: device_id,
                    kind: kind as i32,
                    ciphertext: ciphertext.serialize().to_vec(),
                    group_id: Vec::new(),
                }
                .encode_to_vec();
                (bytes, None, envelope_id)
            }
        };
        stores.commit_op()?;
        queue(
            tx,
            &Queued {
                envelope_id: &envelope_id,
                recipient: to,
                recipient_device: c.device_id,
                bytes: &bytes,
                created_at_ms: sent_at_ms,
                access_key: access_key.as_ref(),
                high_priority,
                reseal: reseal.as_ref().map(|(i, k, e)| (&i[..], *k, *e)),
            },
        )?;
        Ok(OutgoingEnvelope {
            envelope_id,
            recipient: *to,
            recipient_device: c.device_id,
            bytes,
            sealed: access_key.is_some(),
            access_key,
            multi: false,
            high_priority,
            handle,
        })
    }
}

/// A 1:1 envelope for the outbox.
pub(crate) struct Queued<'a> {
    pub envelope_id: &'a [u8; ENVELOPE_ID_LEN],
    pub recipient: &'a AccountId,
    pub recipient_device: u32,
    /// Sealed when `access_key` is set, else an identified `Envelope`.
    pub bytes: &'a [u8],
    pub created_at_ms: i64,
    pub access_key: Option<&'a [u8; ACCESS_KEY_LEN]>,
    pub high_priority: bool,
    /// For a sealed envelope: the inner ciphertext, its libsignal type, and
    /// when the certificate it was sealed with expires (`crate::reseal`).
    pub reseal: Option<(&'a [u8], u8, i64)>,
}

/// Adds a 1:1 envelope to the outbox, inside the transaction that made it.
pub(crate) fn queue(tx: &WriteTransaction<'_>, q: &Queued<'_>) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO outbox (envelope_id, recipient, recipient_device, envelope, created_at,
             sealed, access_key, priority, inner, inner_kind, certificate_expires)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        &q.envelope_id[..],
        &q.recipient.as_bytes()[..],
        q.recipient_device,
        q.bytes,
        q.created_at_ms,
        q.access_key.is_some(),
        q.access_key.map(|k| &k[..]),
        i64::from(q.high_priority),
        q.reseal.map(|r| r.0),
        q.reseal.map(|r| r.1),
        q.reseal.map(|r| r.2)
    ])?;
    Ok(())
}

/// Keeps a text this device sent in its conversation with its recipient,
/// and in the send log, to send again if they cannot read it.
fn keep_outgoing(
    tx: &WriteTransaction<'_>,
    sent: &OutgoingEnvelope,
    text: &str,
    sent_at_ms: i64,
    expires_at: Option<i64>,
) -> Result<()> {
    let row = message::insert(
        tx,
        &NewMessage {
            envelope_id: &sent.envelope_id,
            peer: &sent.recipient,
            outgoing: true,
            body: text,
            sent_at_ms,
            stored_at_ms: sent_at_ms,
            held: false,
            expires_at,
        },
    )?;
    crate::repair::log_sent(
        tx,
        sent.handle,
        sent.recipient.as_bytes(),
        crate::repair::Logged::Text(row),
        sent_at_ms,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The relay's replies to a window of sends confirm some envelopes, maybe
    /// one twice, maybe one this device no longer holds: exactly the
    /// confirmed ones leave the outbox.
    #[test]
    fn confirming_a_window_drops_exactly_the_confirmed_envelopes() {
        let dir = tempfile::tempdir().expect("dir");
        let (mut organizer, member, _, _) = crate::alert::tests::committee(&dir);
        let waiting = organizer.outbox().expect("outbox").len();
        let sent: Vec<OutgoingEnvelope> = (0..5)
            .map(|i| {
                organizer
                    .send_text(&member.id(), &format!("text {i}"))
                    .expect("send")
            })
            .collect();
        let unknown = [7u8; ENVELOPE_ID_LEN];
        let confirmed = [
            sent[1].envelope_id,
            sent[3].envelope_id,
            unknown,
            sent[1].envelope_id,
        ];
        assert_eq!(organizer.confirm_sent_all(&confirmed).expect("confirm"), 2);
        let left: Vec<[u8; ENVELOPE_ID_LEN]> = organizer
            .outbox()
            .expect("outbox")
            .iter()
            .map(|e| e.envelope_id)
            .collect();
        assert_eq!(left.len(), waiting + 3);
        for (i, e) in sent.iter().enumerate() {
            assert_eq!(left.contains(&e.envelope_id), i % 2 == 0, "envelope {i}");
        }
        assert_eq!(organizer.confirm_sent_all(&confirmed).expect("again"), 0);
    }

    /// The outbox is read after a batch only when a commit may have queued
    /// something since it was last found empty; a text and an alert make the
    /// next look read it again. (A channel post needs a relay's sender
    /// certificate: the scenario tests send those.)
    #[test]
    fn outbox_waiting_sees_every_send_after_the_outbox_was_found_empty() {
        let dir = tempfile::tempdir().expect("dir");
        let (mut organizer, member, _, committee) = crate::alert::tests::committee(&dir);
        let empty = |a: &mut Account| {
            let ids: Vec<_> = a
                .outbox()
                .expect("outbox")
                .iter()
                .map(|e| e.envelope_id)
                .collect();
            a.confirm_sent_all(&ids).expect("confirm");
            assert!(!a.outbox_waiting().expect("waiting"), "empty");
            assert!(!a.outbox_may_hold);
        };
        empty(&mut organizer);
        organizer.send_text(&member.id(), "one").expect("send");
        assert!(organizer.outbox_waiting().expect("waiting"), "a text");
        empty(&mut organizer);
        let draft = crate::alert::AlertDraft {
            kind: crate::alert::AlertKind::Information,
            scope: crate::alert::AlertScope::Local,
            title: "Meeting moved".into(),
            text: "To the canteen.".into(),
            place: String::new(),
            starts_at_ms: 0,
            expires_at_ms: u64::try_from(crate::clock::now_ms()).expect("clock") + 3_600_000,
            answers_wanted: false,
        };
        organizer.send_alert(&committee, draft).expect("alert");
        assert!(organizer.outbox_waiting().expect("waiting"), "an alert");
        empty(&mut organizer);
    }
}
