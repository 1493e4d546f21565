//! When a message cannot be read: the receiver keeps it and tells its sender,
//! and the sender repairs and sends it again. Nothing is lost silently.
//!
//! A sealed message whose sender is known (its certificate checks out) but
//! whose inner ciphertext this device cannot decrypt for want of something
//! the sender can give — the sender key of a channel it never got, a session
//! the two no longer share — is a failure the sender can repair
//! ([`repairable`]). The receiver then, in the envelope's own transaction,
//! keeps the message (`unreadable`, so the relay may forget it: it is
//! committed here) and raises [`Event::MessageUnreadable`]; after the commit
//! it sends the sender a decryption-error receipt: libsignal's
//! `DecryptionErrorMessage` in a `PlaintextContent` (readable without a
//! session), sealed when it can be. The receipt's timestamp field carries not
//! a time but the message's *handle* ([`handle_of`]): 63 bits of a hash of
//! the inner ciphertext, which both sides hold, so it names the message to
//! its sender without saying anything about it to anyone else.
//!
//! The sender keeps a send log: for each 1:1 text, channel post, alert and
//! alert answer it sent, its handle and where the content lives (references
//! only: the content stays under its own timers). A receipt from a recipient
//! of what the log names records a resend owed (`resend_owed`) in the
//! receipt's transaction; for a 1:1 message whose ratchet key is our current
//! session's, and a sealed (so authenticated) receipt, the session is archived
//! too, and the transport opens a new one from the relay's bundle
//! ([`Account::sessions_to_reopen`]). The resend goes once it can: a channel
//! post after our sender key is sent to the member again, only to them; a
//! text, an alert or an answer over the 1:1 session. The content carries the
//! handle it resends (`Content.resends`), so the receiver drops its
//! unreadable entry for it, and a channel post it already has is a duplicate.
//!
//! A channel message kept unreadable is tried again as soon as the sender's
//! sender key arrives (it may only have been late): then it is read, and its
//! resend, if one comes, is a duplicate.

use std::collections::BTreeSet;

use libsignal_protocol::{
    extract_decryption_error_message_from_serialized_content, CiphertextMessage,
    CiphertextMessageType, DecryptionErrorMessage, DeviceId, PlaintextContent, Timestamp,
};
use prost::Message as _;
use rand::RngCore;
use rankfile_proto::v1 as pb;
use rusqlite::{params, Connection, OptionalExtension};
use sha2::{Digest, Sha256};

use crate::account::Account;
use crate::account_id::AccountId;
use crate::alert::{AlertId, AlertMessage};
use crate::committee_store::{self, BatchLogs};
use crate::contact;
use crate::error::{Error, Result};
use crate::event::Event;
use crate::message::{self, Body, ENVELOPE_ID_LEN};
use crate::receive::{sealed_dedup_id, Inbound, Received};
use crate::sealed;
use crate::store::signal::{address, Pending, SignalStores};
use crate::store::WriteTransaction;

/// How long this device remembers what it sent, and keeps what it could not
/// read: the relay keeps an undelivered message 30 days, and a recipient
/// reports a failure only once it is back.
pub const RESEND_WINDOW_MS: i64 = 31 * 24 * 3600 * 1000;
/// Least time between two prunes of the send log and the kept messages.
const PRUNE_PAUSE_MS: i64 = 24 * 3600 * 1000;
/// Domain label of [`handle_of`].
const HANDLE_DOMAIN: &[u8] = b"rankfile resend handle v1";

/// The handle naming a sent message to its sender and to a recipient that
/// cannot read it: the first 63 bits of a hash of its inner ciphertext (a
/// 1:1 `CiphertextMessage` or a channel's `SenderKeyMessage`, as sealed).
pub(crate) fn handle_of(inner: &[u8]) -> u64 {
    let digest = Sha256::new()
        .chain_update(HANDLE_DOMAIN)
        .chain_update(inner)
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first) >> 1
}

/// What a send-log entry refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Logged {
    /// A 1:1 text: its row in `messages`.
    Text(i64),
    /// A channel post: its row in `channel_messages`.
    Post(i64),
    /// An alert delivery.
    Alert(AlertId),
    /// This device's answer to an alert.
    Answer(AlertId),
}

impl Logged {
    fn to_row(self) -> (i64, Vec<u8>) {
        match self {
            Logged::Text(id) => (1, id.to_be_bytes().to_vec()),
            Logged::Post(id) => (2, id.to_be_bytes().to_vec()),
            Logged::Alert(a) => (3, a.0.to_vec()),
            Logged::Answer(a) => (4, a.0.to_vec()),
        }
    }

    fn from_row(kind: i64, reference: &[u8]) -> Option<Self> {
        let row = || <[u8; 8]>::try_from(reference).ok().map(i64::from_be_bytes);
        let alert = || AlertId::from_bytes(reference).ok();
        match kind {
            1 => row().map(Logged::Text),
            2 => row().map(Logged::Post),
            3 => alert().map(Logged::Alert),
            4 => alert().map(Logged::Answer),
            _ => None,
        }
    }
}

/// Records in the send log that `handle`, sent to `recipient` (an account,
/// or a channel ID), was `what`. Runs in the transaction of the send.
pub(crate) fn log_sent(
    conn: &Connection,
    handle: u64,
    recipient: &[u8],
    what: Logged,
    now_ms: i64,
) -> Result<()> {
    let (kind, reference) = what.to_row();
    conn.prepare_cached(
        "INSERT INTO send_log (handle, recipient, kind, reference, sent_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![handle as i64, recipient, kind, reference, now_ms])?;
    Ok(())
}

/// Whether a failure to read a message its (authenticated) sender can
/// repair: its sender key or our session with it is missing or broken, or
/// the prekey it used is gone. Everything else (forgeries, refusals, our own
/// storage) is not: it is reported, or aborts the batch, as before.
pub(crate) fn repairable(e: &Error) -> bool {
    matches!(
        e,
        Error::NoSession(_)
            | Error::DecryptionFailed(
                "bad message" | "no sender key from this member" | "unknown prekey"
            )
    )
}

/// A message this device could not read, shown to the user until it, or its
/// resend, is read.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct UnreadableMessage {
    /// Who sent it.
    pub from: AccountId,
    /// When the relay stored it (the relay's clock).
    pub stored_at_ms: u64,
}

/// Inside the receive transaction, for a sealed message whose reading failed
/// in a way its sender can repair: keeps it, and books a receipt. Returns the
/// outcome to report in place of the failure; `None` when it is not such a
/// message after all (its sealed layer no longer opens).
pub(crate) fn keep_unreadable(
    tx: &WriteTransaction<'_>,
    (stores, me): (&SignalStores<'_, '_>, &AccountId),
    (sealed_bytes, stored_at_ms): (&[u8], u64),
    dedup_id: &[u8; ENVELOPE_ID_LEN],
    (events, logs): (&mut Vec<Event>, &mut BatchLogs<'_>),
) -> Result<Option<Received>> {
    let Ok(usmc) = sealed::open(&stores.view(), sealed_bytes) else {
        return Ok(None);
    };
    let Ok(cert) = usmc.sender() else {
        return Ok(None);
    };
    let (Ok(key), Ok(device), Ok(kind), Ok(inner)) = (
        cert.key(),
        cert.sender_device_id(),
        usmc.msg_type(),
        usmc.contents(),
    ) else {
        return Ok(None);
    };
    let from = AccountId::from_identity_key(&libsignal_protocol::IdentityKey::new(key));
    // A channel message only in a channel of a committee we are in: what a
    // removed member can no longer read is not ours to ask for.
    if kind == CiphertextMessageType::SenderKey {
        let channel = usmc
            .group_id()
            .ok()
            .flatten()
            .and_then(|g| <[u8; crate::committee::CHANNEL_ID_LEN]>::try_from(g).ok());
        let Some(committee) = channel
            .map(|c| committee_store::channel_committee(tx, &c))
            .transpose()?
            .flatten()
        else {
            return Ok(None);
        };
        let member = logs
            .get(tx, &committee)?
            .is_some_and(|log| log.state().members.contains_key(me));
        if !member {
            return Ok(None);
        }
    }
    let new =
        tx.prepare_cached(
            "INSERT OR IGNORE INTO unreadable (dedup_id, sender, device, handle, inner,
                 inner_kind, envelope, stored_at, received_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?
        .execute(params![
            &dedup_id[..],
            &from.as_bytes()[..],
            u32::from(device),
            handle_of(inner) as i64,
            inner,
            kind as u8,
            sealed_bytes,
            stored_at_ms as i64,
            logs.now_ms
        ])? == 1;
    if new {
        events.push(Event::MessageUnreadable { from });
        logs.repair.receipts = true;
    }
    Ok(Some(Received::Unreadable { from }))
}

/// Most messages kept waiting for a committee: beyond it, one naming a
/// committee we do not hold is refused, as before.
pub const MAX_WAITING: i64 = 1_000;

/// Inside the receive transaction, for a message that names a committee this
/// device does not hold: keeps it, to read again when a committee arrives.
/// `None` when too many wait already.
pub(crate) fn keep_waiting(
    tx: &WriteTransaction<'_>,
    inbound: Inbound<'_>,
    dedup_id: &[u8; ENVELOPE_ID_LEN],
    now_ms: i64,
) -> Result<Option<Received>> {
    let waiting: i64 = tx
        .prepare_cached("SELECT count(*) FROM waiting_envelopes")?
        .query_row([], |r| r.get(0))?;
    if waiting >= MAX_WAITING {
        return Ok(None);
    }
    let stored_at = match inbound {
        Inbound::Delivered { stored_at_ms, .. } => stored_at_ms as i64,
        _ => now_ms,
    };
    tx.prepare_cached(
        "INSERT OR IGNORE INTO waiting_envelopes (dedup_id, envelope, sealed, stored_at, received_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        &dedup_id[..],
        inbound.bytes(),
        inbound.sealed().is_some(),
        stored_at,
        now_ms
    ])?;
    Ok(Some(Received::Waiting))
}

/// Inside the receive transaction: a message sent again for a handle we
/// reported arrived; the unreadable entry goes.
pub(crate) fn forget_unreadable(conn: &Connection, from: &AccountId, handle: u64) -> Result<()> {
    conn.prepare_cached("DELETE FROM unreadable WHERE sender = ?1 AND handle = ?2")?
        .execute(params![&from.as_bytes()[..], handle as i64])?;
    Ok(())
}

/// Inside the receive transaction: a decryption-error receipt from `from`.
/// What it names in our send log, sent to them (or to a channel they are in),
/// is owed again; a 1:1 session whose current ratchet key the receipt names
/// is archived when the receipt came sealed (its sender is authenticated).
pub(crate) fn take_receipt(
    tx: &WriteTransaction<'_>,
    stores: &SignalStores<'_, '_>,
    (from, device): (&AccountId, DeviceId),
    plaintext: &[u8],
    authenticated: bool,
    logs: &mut BatchLogs<'_>,
) -> Result<()> {
    let content = PlaintextContent::try_from(plaintext)
        .map_err(|_| Error::InvalidContent("not a plaintext content"))?;
    let receipt = extract_decryption_error_message_from_serialized_content(content.body())
        .map_err(|_| Error::InvalidContent("not a decryption-error receipt"))?;
    let handle = receipt.timestamp().epoch_millis() as i64;
    let logged: Vec<(Vec<u8>, i64)> = tx
        .prepare_cached("SELECT recipient, kind FROM send_log WHERE handle = ?1")?
        .query_map([handle], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut owed = false;
    for (recipient, kind) in logged {
        let ours = if recipient == from.as_bytes() {
            true
        } else if let Ok(channel) =
            <[u8; crate::committee::CHANNEL_ID_LEN]>::try_from(&recipient[..])
        {
            // A channel post: only a member of its committee may ask.
            match committee_store::channel_committee(tx, &channel)? {
                Some(c) => logs
                    .get(tx, &c)?
                    .is_some_and(|log| log.state().members.contains_key(from)),
                None => false,
            }
        } else {
            false
        };
        if !ours {
            continue;
        }
        tx.prepare_cached(
            "INSERT OR IGNORE INTO resend_owed (handle, recipient, member) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![handle, &recipient, &from.as_bytes()[..]])?;
        owed = true;
        if kind == 1 || kind == 3 || kind == 4 {
            if let (true, Some(ratchet)) = (authenticated, receipt.ratchet_key()) {
                archive_if_current(stores, &address(from, device), ratchet)?;
            }
        }
    }
    if !owed {
        // Nothing of ours (or too old): a receipt costs us nothing more.
        tracing::debug!("a decryption-error receipt named nothing this device sent");
    }
    logs.repair.resends |= owed;
    Ok(())
}

/// Archives our session at `addr` when its current ratchet key is the one
/// the receipt names: the recipient cannot read what it carries, so the next
/// message opens a new session.
fn archive_if_current(
    stores: &SignalStores<'_, '_>,
    addr: &libsignal_protocol::ProtocolAddress,
    ratchet: &libsignal_protocol::PublicKey,
) -> Result<()> {
    let key = addr.to_string();
    let Some(mut record) = stores.session(&key)? else {
        return Ok(());
    };
    if record.current_ratchet_key_matches(ratchet).unwrap_or(false) {
        record.archive_current_state()?;
        stores.stage_session(key, record);
    }
    Ok(())
}

/// What a receive batch left for repair after its commit.
#[derive(Default)]
pub(crate) struct RepairWork {
    /// It kept unreadable messages: receipts to send.
    pub receipts: bool,
    /// It took in receipts: resends owed.
    pub resends: bool,
    /// Members whose sender key it took in: their unreadable channel
    /// messages may now be read.
    pub retry: BTreeSet<AccountId>,
    /// It added us to a committee: messages waiting for one may be read.
    pub retry_waiting: bool,
}

impl RepairWork {
    /// Whether any of it sends something.
    pub fn is_empty(&self) -> bool {
        !self.receipts && !self.resends && self.retry.is_empty() && !self.retry_waiting
    }
}

/// A resend owed: handle, recipient, member, and the send log's kind and
/// reference (gone when the log forgot it).
type OwedRow = (i64, Vec<u8>, Vec<u8>, Option<i64>, Option<Vec<u8>>);

/// An unreadable message whose receipt is still to go.
struct Receipt {
    dedup_id: Vec<u8>,
    to: AccountId,
    device: u32,
    handle: u64,
    inner: Vec<u8>,
    inner_kind: u8,
}

impl Account {
    /// After a receive batch commits: tries again what waited for a sender
    /// key that came, sends receipts and resends. Never fails the batch.
    pub(crate) fn repair_after_receive(&mut self, work: RepairWork) {
        if work.retry_waiting {
            if let Err(e) = self.read_waiting() {
                tracing::warn!("could not read waiting messages again: {e}");
            }
        }
        for from in &work.retry {
            if let Err(e) = self.retry_unreadable(from) {
                tracing::warn!("could not read kept messages again: {e}");
            }
        }
        if work.receipts {
            if let Err(e) = self.send_receipts() {
                tracing::warn!("could not send decryption-error receipts: {e}");
            }
        }
        if work.resends {
            self.resends_waiting = true;
            if let Err(e) = self.resend_owed() {
                tracing::warn!("could not send messages again: {e}");
            }
        }
    }

    /// Forgets what is older than [`RESEND_WINDOW_MS`]: send-log entries
    /// (no receipt can name them any more: the relay no longer holds what
    /// they were), and unreadable messages no resend came for.
    #[cfg_attr(feature = "testing", rankfile_testing_pub::public)]
    pub(crate) fn prune_repair_state(&mut self) -> Result<()> {
        let now = self.clock.now_ms();
        // The send log is read whole to prune it: once a day is enough.
        if self
            .repair_pruned_at
            .is_some_and(|at| now.saturating_sub(at) < PRUNE_PAUSE_MS)
        {
            return Ok(());
        }
        self.repair_pruned_at = Some(now);
        let before = now.saturating_sub(RESEND_WINDOW_MS);
        let conn = self.store.conn();
        conn.prepare_cached("DELETE FROM send_log WHERE sent_at < ?1")?
            .execute([before])?;
        conn.prepare_cached("DELETE FROM unreadable WHERE received_at < ?1")?
            .execute([before])?;
        conn.prepare_cached("DELETE FROM waiting_envelopes WHERE received_at < ?1")?
            .execute([before])?;
        Ok(())
    }

    /// Messages this device could not read, oldest first.
    pub fn unreadable_messages(&self) -> Result<Vec<UnreadableMessage>> {
        let mut stmt = self
            .store
            .conn()
            .prepare_cached("SELECT sender, stored_at FROM unreadable ORDER BY stored_at")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?)))?;
        rows.map(|r| {
            let (from, at) = r?;
            Ok(UnreadableMessage {
                from: AccountId::from_bytes(&from)?,
                stored_at_ms: u64::try_from(at).unwrap_or(0),
            })
        })
        .collect()
    }

    /// Sends the receipts still owed for unreadable messages, each in the
    /// transaction that marks it sent. Returns how many went.
    #[cfg_attr(feature = "testing", rankfile_testing_pub::public)]
    pub(crate) fn send_receipts(&mut self) -> Result<usize> {
        let owed: Vec<Receipt> = self
            .store
            .conn()
            .prepare_cached(
                "SELECT dedup_id, sender, device, handle, inner, inner_kind FROM unreadable
                 WHERE receipt_sent = 0",
            )?
            .query_map([], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, u32>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, Vec<u8>>(4)?,
                    r.get::<_, u8>(5)?,
                ))
            })?
            .map(|r| {
                let (dedup_id, to, device, handle, inner, inner_kind) = r?;
                Ok(Receipt {
                    dedup_id,
                    to: AccountId::from_bytes(&to)?,
                    device,
                    handle: u64::try_from(handle).unwrap_or(0),
                    inner,
                    inner_kind,
                })
            })
            .collect::<Result<_>>()?;
        let mut sent = 0;
        for receipt in owed {
            self.send_receipt(&receipt)?;
            sent += 1;
        }
        Ok(sent)
    }

    /// One receipt: sealed when we know the sender's access key and hold a
    /// certificate, else as an identified plaintext envelope.
    fn send_receipt(&mut self, r: &Receipt) -> Result<()> {
        let kind = CiphertextMessageType::try_from(r.inner_kind)
            .map_err(|_| Error::Storage("stored ciphertext kind is unknown".into()))?;
        let device = DeviceId::try_from(r.device)
            .map_err(|_| Error::Storage("stored device id is out of range".into()))?;
        // The original's ratchet key goes along (libsignal reads it from the
        // ciphertext); the timestamp field carries the handle.
        let receipt = DecryptionErrorMessage::for_original(
            &r.inner,
            kind,
            Timestamp::from_epoch_millis(r.handle),
            r.device,
        )
        .or_else(|_| {
            DecryptionErrorMessage::for_original(
                &[],
                CiphertextMessageType::SenderKey,
                Timestamp::from_epoch_millis(r.handle),
                r.device,
            )
        })?;
        let content = PlaintextContent::from(receipt);
        let me = self.id();
        let my_device = self.device_id();
        let certificate = self.settings.sender_certificate.clone();
        let now = self.clock.now_ms();
        let tx = self.store.write()?;
        let access_key = contact::access_key(&tx, &r.to)?;
        let mut pending = Pending::default();
        let (bytes, access_key, envelope_id) = match (access_key, certificate) {
            (Some(key), Some((cert, _))) => {
                let stores = SignalStores::new(&tx, &self.cache, &mut pending);
                let bytes = sealed::seal(
                    stores.view(),
                    &address(&r.to, device),
                    &cert,
                    &CiphertextMessage::PlaintextContent(content),
                )?;
                let id = sealed_dedup_id(&bytes);
                (bytes, Some(key), id)
            }
            _ => {
                let mut id = [0u8; ENVELOPE_ID_LEN];
                rand::rng().fill_bytes(&mut id);
                let bytes = pb::Envelope {
                    id: id.to_vec(),
                    sender_account_id: me.as_bytes().to_vec(),
                    sender_device_id: my_device,
                    kind: pb::envelope::Kind::Plaintext as i32,
                    ciphertext: content.serialized().to_vec(),
                    group_id: Vec::new(),
                }
                .encode_to_vec();
                (bytes, None, id)
            }
        };
        crate::send::queue(
            &tx,
            &crate::send::Queued {
                envelope_id: &envelope_id,
                recipient: &r.to,
                recipient_device: r.device,
                bytes: &bytes,
                created_at_ms: now,
                access_key: access_key.as_ref(),
                high_priority: false,
                reseal: None,
            },
        )?;
        tx.prepare_cached("UPDATE unreadable SET receipt_sent = 1 WHERE dedup_id = ?1")?
            .execute([&r.dedup_id])?;
        tx.commit()?;
        self.outbox_may_hold = true;
        Ok(())
    }

    /// Reads again the channel messages from `from` kept unreadable (its
    /// sender key has come). Those now read leave the unreadable list.
    fn retry_unreadable(&mut self, from: &AccountId) -> Result<usize> {
        let kept: Vec<(Vec<u8>, Vec<u8>, i64)> = self
            .store
            .conn()
            .prepare_cached(
                "SELECT dedup_id, envelope, stored_at FROM unreadable
                 WHERE sender = ?1 AND inner_kind = ?2",
            )?
            .query_map(
                params![&from.as_bytes()[..], CiphertextMessageType::SenderKey as u8],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?
            .collect::<rusqlite::Result<_>>()?;
        if kept.is_empty() {
            return Ok(0);
        }
        // Their claims go first, so they are not taken for copies.
        let tx = self.store.write()?;
        for (dedup_id, _, _) in &kept {
            tx.prepare_cached("DELETE FROM received_envelopes WHERE envelope_id = ?1")?
                .execute([dedup_id])?;
        }
        tx.commit()?;
        let inbound: Vec<Inbound<'_>> = kept
            .iter()
            .map(|(_, envelope, stored_at)| Inbound::Delivered {
                sealed: envelope,
                stored_at_ms: u64::try_from(*stored_at).unwrap_or(0),
            })
            .collect();
        let results = self.receive_all(&inbound)?;
        let tx = self.store.write()?;
        let mut read = 0;
        for ((dedup_id, _, _), result) in kept.iter().zip(&results) {
            let done = match result {
                Ok(Received::Channel { .. } | Received::Control { .. }) => true,
                // Still not readable (a key from after it came): its resend
                // settles it.
                Ok(_) => false,
                // Refused for good now that it can be read (its resend came
                // first, say): not shown as waiting any more either.
                Err(e) => !repairable(e),
            };
            if done {
                tx.prepare_cached("DELETE FROM unreadable WHERE dedup_id = ?1")?
                    .execute([dedup_id])?;
                read += 1;
            }
        }
        tx.commit()?;
        Ok(read)
    }

    /// Reads again the messages kept waiting for a committee we did not hold
    /// (after one arrived, and on each connection). Those read, or refused
    /// for another reason now, leave the list; the rest wait on.
    #[cfg_attr(feature = "testing", rankfile_testing_pub::public)]
    pub(crate) fn read_waiting(&mut self) -> Result<usize> {
        if self.reading_waiting {
            return Ok(0);
        }
        let kept: Vec<(Vec<u8>, Vec<u8>, bool, i64)> = self
            .store
            .conn()
            .prepare_cached(
                "SELECT dedup_id, envelope, sealed, stored_at FROM waiting_envelopes
                 ORDER BY received_at",
            )?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<rusqlite::Result<_>>()?;
        if kept.is_empty() {
            return Ok(0);
        }
        // Their claims go first, so they are not taken for copies; the rows
        // stay until what became of each is committed.
        let tx = self.store.write()?;
        for (dedup_id, _, _, _) in &kept {
            tx.prepare_cached("DELETE FROM received_envelopes WHERE envelope_id = ?1")?
                .execute([dedup_id])?;
        }
        tx.commit()?;
        let inbound: Vec<Inbound<'_>> = kept
            .iter()
            .map(|(_, envelope, sealed, stored_at)| match sealed {
                true => Inbound::Delivered {
                    sealed: envelope,
                    stored_at_ms: u64::try_from(*stored_at).unwrap_or(0),
                },
                false => Inbound::Envelope(envelope),
            })
            .collect();
        self.reading_waiting = true;
        let results = self.receive_all(&inbound);
        self.reading_waiting = false;
        let results = results?;
        let tx = self.store.write()?;
        let mut read = 0;
        for ((dedup_id, _, _, _), result) in kept.iter().zip(&results) {
            if !matches!(result, Ok(Received::Waiting)) {
                tx.prepare_cached("DELETE FROM waiting_envelopes WHERE dedup_id = ?1")?
                    .execute([dedup_id])?;
                read += 1;
            }
        }
        tx.commit()?;
        Ok(read)
    }

    /// Contacts owed a resend of a 1:1 message with whom we have no usable
    /// session (it was archived on their receipt): the transport fetches
    /// their bundles and opens new ones ([`Account::reopen_session`]).
    #[cfg_attr(feature = "testing", rankfile_testing_pub::public)]
    pub(crate) fn sessions_to_reopen(&mut self) -> Result<Vec<AccountId>> {
        if !self.resends_waiting {
            return Ok(Vec::new());
        }
        let members: Vec<Vec<u8>> = self
            .store
            .conn()
            .prepare_cached(
                "SELECT DISTINCT o.member FROM resend_owed o
                 CROSS JOIN send_log l ON l.handle = o.handle AND l.recipient = o.recipient
                 WHERE l.kind != 2",
            )?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let members = members
            .iter()
            .map(|m| AccountId::from_bytes(m))
            .collect::<Result<Vec<_>>>()?;
        if members.is_empty() {
            self.resends_waiting = false;
            return Ok(members);
        }
        let usable = self.usable_sessions(members.iter())?;
        Ok(members
            .into_iter()
            .filter(|m| !usable.contains(m))
            .collect())
    }

    /// Opens a new session with a contact from its bundle (fetched from the
    /// relay), keeping the contact's name, then sends what is owed to it.
    #[cfg_attr(feature = "testing", rankfile_testing_pub::public)]
    pub(crate) fn reopen_session(&mut self, bundle: &[u8]) -> Result<usize> {
        let imported = crate::prekeys::import_bundle(bundle)?;
        let name = contact::get(self.store.conn(), &imported.account_id)?
            .ok_or(Error::UnknownContact(imported.account_id))?
            .name;
        self.add_contact(&name, bundle)?;
        self.resend_owed()
    }

    /// Sends again what recipients reported they could not read, each in the
    /// transaction that settles it; what cannot go yet (no session) waits.
    /// Returns how many went.
    #[cfg_attr(feature = "testing", rankfile_testing_pub::public)]
    pub(crate) fn resend_owed(&mut self) -> Result<usize> {
        let owed: Vec<OwedRow> = self
            .store
            .conn()
            .prepare_cached(
                "SELECT o.handle, o.recipient, o.member, l.kind, l.reference
                 FROM resend_owed o
                 LEFT JOIN send_log l ON l.handle = o.handle AND l.recipient = o.recipient",
            )?
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        let mut sent = 0;
        for (handle, recipient, member, kind, reference) in owed {
            let settle = |conn: &Connection| {
                conn.prepare_cached(
                    "DELETE FROM resend_owed WHERE handle = ?1 AND recipient = ?2 AND member = ?3",
                )?
                .execute(params![handle, &recipient, &member])
                .map(drop)
                .map_err(Error::from)
            };
            let what = kind
                .zip(reference)
                .and_then(|(k, r)| Logged::from_row(k, &r));
            let member_id = AccountId::from_bytes(&member)?;
            let handle = u64::try_from(handle).unwrap_or(0);
            let went = match what {
                None => None,
                Some(Logged::Post(row)) => {
                    self.resend_post(&recipient, &member_id, row, handle, settle)?
                }
                Some(what) => match self.resend_body(&member_id, what)? {
                    None => None,
                    Some(body) => Some(self.resend_one(&member_id, &body, handle, settle)?),
                },
            };
            match went {
                Some(true) => sent += 1,
                Some(false) => {}
                // Gone (its timer ran out, it was deleted, the member left):
                // nothing to send.
                None => settle(self.store.conn())?,
            }
        }
        Ok(sent)
    }

    /// The 1:1 content a send-log entry names, as it is now; `None` when it
    /// is gone.
    fn resend_body(&mut self, to: &AccountId, what: Logged) -> Result<Option<Body>> {
        let conn = self.store.conn();
        Ok(match what {
            Logged::Text(row) => conn
                .prepare_cached(
                    "SELECT body FROM messages WHERE id = ?1 AND outgoing = 1 AND peer = ?2",
                )?
                .query_row(params![row, &to.as_bytes()[..]], |r| r.get::<_, String>(0))
                .optional()?
                .map(|body| {
                    // Under the conversation's timer, as a text sent now is.
                    crate::conversation_timer::get(conn, to).map(|timer| Body::Text { body, timer })
                })
                .transpose()?,
            Logged::Alert(id) => {
                let now = self.clock.now_ms();
                if crate::alert::store::get(conn, &id)?
                    .filter(|a| !a.is_expired(now))
                    .is_none()
                {
                    return Ok(None);
                }
                // Through the committee it went to them through first, as
                // the raiser signed it.
                let via: Option<Vec<u8>> = conn
                    .prepare_cached(
                        "SELECT committee_id FROM alert_recipients
                         WHERE alert_id = ?1 AND account = ?2",
                    )?
                    .query_row(params![&id.0[..], &to.as_bytes()[..]], |r| r.get(0))
                    .optional()?;
                let Some(via) =
                    via.and_then(|v| crate::committee::CommitteeId::from_bytes(&v).ok())
                else {
                    return Ok(None);
                };
                Some(Body::Alert(AlertMessage {
                    alert: crate::alert::store::signed(conn, &id)?,
                    via,
                    held: false,
                    renotify: false,
                }))
            }
            Logged::Answer(id) => {
                let now = self.clock.now_u64();
                crate::alert::store::get(conn, &id)?.and_then(|alert| {
                    let answer = alert.my_answer?;
                    (alert.from == Some(*to)).then_some(Body::AlertAnswer {
                        alert_id: id,
                        answer,
                        answered_at_ms: now,
                    })
                })
            }
            Logged::Post(_) => None,
        })
    }

    /// Sends `body` again to `to` over the 1:1 session, marked as the resend
    /// of `handle`; `settle` runs in its transaction. `false`: no session yet.
    fn resend_one(
        &mut self,
        to: &AccountId,
        body: &Body,
        handle: u64,
        settle: impl FnOnce(&Connection) -> Result<()>,
    ) -> Result<bool> {
        let now = self.clock.now_ms();
        let plaintext = message::encode_resent(body, now, &self.settings.access_key, handle)?;
        let high = matches!(body, Body::Alert(_));
        let (sent, _) = self.seal_each(
            &[(*to, &plaintext[..])],
            None,
            (now, high),
            |tx, sent, _| match sent.is_empty() {
                true => Ok(()),
                false => settle(tx),
            },
        )?;
        Ok(!sent.is_empty())
    }

    /// Sends a channel post again to one member who could not read it: our
    /// current sender key first (they may never have had it), then the post
    /// under it, to them alone. `None` when the post, the channel or their
    /// membership is gone; `false` when there is no session with them yet.
    fn resend_post(
        &mut self,
        channel: &[u8],
        member: &AccountId,
        row: i64,
        handle: u64,
        settle: impl FnOnce(&Connection) -> Result<()>,
    ) -> Result<Option<bool>> {
        let Ok(channel) = <[u8; crate::committee::CHANNEL_ID_LEN]>::try_from(channel) else {
            return Ok(None);
        };
        let conn = self.store.conn();
        let Some(committee) = committee_store::channel_committee(conn, &channel)? else {
            return Ok(None);
        };
        if !self
            .logs
            .get(conn, &committee)?
            .state()
            .members
            .contains_key(member)
        {
            return Ok(None);
        }
        let Some(distribution) = committee_store::current_distribution(conn, &channel)? else {
            return Ok(None);
        };
        let Some(content) = crate::channel::own_post(conn, row, self.clock.now_ms())? else {
            return Ok(None);
        };
        match self.send_sender_key(member, channel, distribution) {
            Ok(_) => {}
            Err(Error::NoSession(_) | Error::UnknownContact(_)) => return Ok(Some(false)),
            Err(e) => return Err(e),
        }
        self.send_channel_resend(channel, distribution, member, content, handle, settle)?;
        Ok(Some(true))
    }
}
