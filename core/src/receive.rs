//! The atomic receive: decrypting an envelope, advancing the ratchet, using up a
//! one-time prekey and storing the message happen in one transaction, keyed by
//! the envelope's ID.
//!
//! A batch of envelopes (a phone catching up) shares one transaction and so one
//! fsync, but each envelope's outcome is all-or-nothing: its libsignal writes
//! are staged (see [`crate::store::signal`]) and dropped if any step for it
//! fails, leaving the database as if it had never arrived. Only a storage
//! failure aborts the whole batch, and then nothing of it is committed. The
//! caller acknowledges envelopes to the relay after this returns, when the
//! commit is on disk.

use std::borrow::Cow;
use std::collections::HashSet;
use std::ops::Range;

use libsignal_protocol::{
    message_decrypt_prekey, message_decrypt_signal, process_sender_key_distribution_message,
    DeviceId, IdentityKey, PreKeySignalMessage, ProtocolAddress, SenderKeyDistributionMessage,
    SignalMessage, SignalProtocolError, UnidentifiedSenderMessageContent,
};
use prost::Message as _;
use rankfile_proto::v1 as pb;
use rusqlite::params;
use sha2::{Digest, Sha256};

use crate::account::Account;
use crate::account_id::AccountId;
use crate::channel;
use crate::committee_join;
use crate::committee_receive;
use crate::committee_store::BatchLogs;
use crate::contact;
use crate::error::{Error, Result};
use crate::event::Event;
use crate::failpoint::failpoint;
use crate::message::{self, Body, NewMessage, CHANNEL_ID_LEN, ENVELOPE_ID_LEN};
use crate::receive_ahead::{self, Ahead, Decrypted, Opened};
use crate::sealed::{self, Inner};
use crate::session;
use crate::store::signal::{address, storage_err, Pending, SignalCache, SignalStores};
use crate::store::{Unsynced, WriteTransaction};

/// Largest envelope accepted, in bytes (a text at its limit, padded, with a
/// Kyber ciphertext on a first message, fits well inside).
pub const MAX_ENVELOPE_LEN: usize = 128 * 1024;

/// What became of one envelope.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Received {
    /// Stored and visible.
    Stored { message_id: i64, from: AccountId },
    /// Stored but held back: the sender claims to replace a contact and the
    /// user has not decided yet.
    Held { message_id: i64, from: AccountId },
    /// A channel message, stored in its channel.
    Channel {
        message_id: i64,
        from: AccountId,
        channel_id: [u8; CHANNEL_ID_LEN],
    },
    /// A control message (a sender key for a channel): recorded, nothing to show.
    Control { from: AccountId },
    /// Seen before (redelivered or replayed): nothing changed.
    Duplicate,
    /// Could not be read for want of something its sender can give (its
    /// sender key, a working session): kept, shown as unreadable, and its
    /// sender asked to repair (see `repair`).
    Unreadable { from: AccountId },
    /// Names a committee this device does not hold yet (an alert delivered
    /// ahead of the update that adds us): kept, and read when it arrives.
    Waiting,
}

/// One message as it arrives from the relay.
#[derive(Clone, Copy, Debug)]
pub enum Inbound<'a> {
    /// An identified `Envelope` (sender named in clear to the relay).
    Envelope(&'a [u8]),
    /// A sealed-sender message: the sender is inside, under encryption. Its
    /// sender certificate is checked against this account's clock.
    Sealed(&'a [u8]),
    /// A sealed-sender message as the relay delivers it, with the time the
    /// relay stored it (the relay's clock, as in `Deliver.stored_at_ms`): its
    /// sender certificate is checked against that time, less
    /// [`CERTIFICATE_SKEW_MS`], so a phone that was off for days still reads
    /// what was sent while its certificates were valid.
    Delivered { sealed: &'a [u8], stored_at_ms: u64 },
}

impl<'a> Inbound<'a> {
    /// The bytes as they came.
    pub fn bytes(&self) -> &'a [u8] {
        match self {
            Inbound::Envelope(b) | Inbound::Sealed(b) => b,
            Inbound::Delivered { sealed, .. } => sealed,
        }
    }

    /// The sealed-sender bytes, if that is what this is.
    pub(crate) fn sealed(&self) -> Option<&'a [u8]> {
        match self {
            Inbound::Envelope(_) => None,
            Inbound::Sealed(b) => Some(b),
            Inbound::Delivered { sealed, .. } => Some(sealed),
        }
    }

    /// The time a sealed message's sender certificate must be valid at:
    /// when the relay stored it (less the skew allowed between that and the
    /// sender's sealing), or `now_ms` for one taken in by hand.
    fn certificate_time(&self, now_ms: i64) -> u64 {
        match self {
            // A relay that names no time (0) gets no benefit of the doubt.
            Inbound::Delivered { stored_at_ms, .. } if *stored_at_ms > 0 => {
                stored_at_ms.saturating_sub(CERTIFICATE_SKEW_MS)
            }
            _ => u64::try_from(now_ms).unwrap_or(0),
        }
    }
}

/// How far before the relay's storing of a sealed message its sender
/// certificate may have expired: the sender seals with at least an hour left
/// on its certificate (re-sealing what waited longer in its outbox), so this
/// only absorbs the time between sealing and storing and the clocks'
/// difference. Signal checks against the server's timestamp the same way.
pub const CERTIFICATE_SKEW_MS: u64 = 15 * 60 * 1000;

/// A parsed envelope, before decryption.
pub(crate) struct Parsed {
    pub sender: AccountId,
    pub device: DeviceId,
    pub ciphertext: Inner,
}

/// The key under which a redelivered sealed message is recognised: a hash of
/// its bytes (a resend from the sender's outbox carries the same bytes).
pub(crate) fn sealed_dedup_id(bytes: &[u8]) -> [u8; ENVELOPE_ID_LEN] {
    let digest = Sha256::digest(bytes);
    let mut id = [0u8; ENVELOPE_ID_LEN];
    id.copy_from_slice(&digest[..ENVELOPE_ID_LEN]);
    id
}

/// An identified envelope parsed: its ID, and what it carries.
pub(crate) fn parse_envelope(bytes: &[u8]) -> Result<([u8; ENVELOPE_ID_LEN], Parsed)> {
    let e = pb::Envelope::decode(bytes).map_err(|_| Error::InvalidEnvelope("not an envelope"))?;
    let id =
        e.id.as_slice()
            .try_into()
            .map_err(|_| Error::InvalidEnvelope("bad envelope id"))?;
    Ok((id, parse_identified(e)?))
}

fn parse_identified(e: pb::Envelope) -> Result<Parsed> {
    let sender = AccountId::from_bytes(&e.sender_account_id)
        .map_err(|_| Error::InvalidEnvelope("bad sender"))?;
    let device =
        DeviceId::try_from(e.sender_device_id).map_err(|_| Error::InvalidEnvelope("bad device"))?;
    let ciphertext = match pb::envelope::Kind::try_from(e.kind) {
        Ok(pb::envelope::Kind::PrekeyMessage) => Inner::PreKey(
            PreKeySignalMessage::try_from(e.ciphertext.as_slice())
                .map_err(|_| Error::DecryptionFailed("malformed prekey message"))?,
        ),
        Ok(pb::envelope::Kind::SignalMessage) => Inner::Signal(
            SignalMessage::try_from(e.ciphertext.as_slice())
                .map_err(|_| Error::DecryptionFailed("malformed message"))?,
        ),
        Ok(pb::envelope::Kind::Plaintext) => Inner::Plaintext(e.ciphertext),
        Ok(pb::envelope::Kind::SenderKey) => Inner::SenderKey {
            message: e.ciphertext,
            group_id: Some(e.group_id).filter(|g| !g.is_empty()),
        },
        _ => return Err(Error::InvalidEnvelope("unknown kind")),
    };
    Ok(Parsed {
        sender,
        device,
        ciphertext,
    })
}

impl Account {
    /// Receives one identified envelope in its own transaction.
    #[cfg(any(test, feature = "testing"))]
    pub fn receive(&mut self, envelope: &[u8]) -> Result<Received> {
        self.receive_one(Inbound::Envelope(envelope))
    }

    /// Receives one sealed-sender message in its own transaction.
    #[cfg(any(test, feature = "testing"))]
    pub fn receive_sealed(&mut self, message: &[u8]) -> Result<Received> {
        self.receive_one(Inbound::Sealed(message))
    }

    #[cfg(any(test, feature = "testing"))]
    fn receive_one(&mut self, inbound: Inbound<'_>) -> Result<Received> {
        let mut results = self.receive_all(&[inbound])?;
        results
            .pop()
            .unwrap_or(Err(Error::InvalidEnvelope("empty batch")))
    }

    /// Receives many identified envelopes in one transaction; see
    /// [`Account::receive_all`].
    #[cfg(any(test, feature = "testing"))]
    pub fn receive_batch(&mut self, envelopes: &[&[u8]]) -> Result<Vec<Result<Received>>> {
        let inbound: Vec<Inbound<'_>> = envelopes.iter().map(|e| Inbound::Envelope(e)).collect();
        self.receive_all(&inbound)
    }

    /// Receives many messages in one transaction (one fsync). The outer error
    /// is a storage failure: nothing was committed. Otherwise each message has
    /// its own outcome; a failed one left no trace.
    #[cfg_attr(feature = "testing", rankfile_testing_pub::public)]
    pub(crate) fn receive_all(
        &mut self,
        envelopes: &[Inbound<'_>],
    ) -> Result<Vec<Result<Received>>> {
        let mut received = Vec::new();
        self.receive_batches(envelopes, envelopes.len(), true, &mut |_, _, results| {
            received = results;
            Ok(())
        })?;
        Ok(received)
    }

    /// [`Account::receive_all`] without waiting for the disk: the batch is
    /// committed, but durable (and so to be acknowledged to the relay) only
    /// once the returned [`Unsynced`] is synced, which may happen on another
    /// thread while this account goes on with the next batch. See
    /// [`crate::store::Unsynced`].
    #[cfg(any(test, feature = "testing"))]
    pub fn receive_all_unsynced(
        &mut self,
        envelopes: &[Inbound<'_>],
    ) -> Result<(Vec<Result<Received>>, Unsynced)> {
        let mut received = None;
        self.receive_backlog(envelopes, envelopes.len(), &mut |_, results, unsynced| {
            received = Some((results, unsynced));
        })?;
        received.ok_or(Error::InvalidEnvelope("empty batch"))
    }

    /// A backlog (a phone catching up) received in batches of `batch_len`,
    /// each in its own transaction, committed without waiting for the disk
    /// as in [`Account::receive_all_unsynced`]. After each commit,
    /// `committed` gets the batch's place in `envelopes`, its outcomes and
    /// the [`Unsynced`] to flush before acknowledging it.
    ///
    /// Unlike one call per batch, the helper that decrypts ahead (see
    /// `receive_ahead`) runs on through the commits: while this thread
    /// writes one batch's pages, the next batch is being decrypted. An error
    /// is a storage failure: the batches already handed to `committed` stay
    /// committed, nothing of the failed one or those after it is.
    #[cfg_attr(feature = "testing", rankfile_testing_pub::public)]
    pub(crate) fn receive_backlog(
        &mut self,
        envelopes: &[Inbound<'_>],
        batch_len: usize,
        committed: &mut dyn FnMut(Range<usize>, Vec<Result<Received>>, Unsynced),
    ) -> Result<()> {
        self.receive_batches(
            envelopes,
            batch_len,
            false,
            &mut |account, range, results| {
                let unsynced = account.store.unsynced(range.len())?;
                committed(range, results, unsynced);
                Ok(())
            },
        )
    }

    /// Receives `envelopes` in transactions of `batch_len` (at least one,
    /// even for no envelopes), calling `after` once each has committed;
    /// `flush` says whether the commits wait for the disk.
    fn receive_batches(
        &mut self,
        envelopes: &[Inbound<'_>],
        batch_len: usize,
        flush: bool,
        after: &mut AfterBatch<'_>,
    ) -> Result<()> {
        let batch_len = batch_len.max(1);
        let (identity, registration_id) = self.cache.local_identity();
        std::thread::scope(|scope| {
            // A large backlog has its 1:1 messages decrypted a little ahead,
            // on a second core (see `receive_ahead`). `ahead` started at
            // envelope `base`.
            let start_ahead = |from: usize| {
                let rest = &envelopes[from..];
                (rest.len() >= receive_ahead::MIN_BATCH)
                    .then(|| Ahead::start(scope, rest, (identity, registration_id), batch_len))
                    .flatten()
            };
            let mut ahead = start_ahead(0);
            let mut base = 0;
            let mut first = 0;
            loop {
                let end = (first + batch_len).min(envelopes.len());
                let mut redone = false;
                let (results, sessions_touched) = loop {
                    let batch = Batch {
                        envelopes: &envelopes[first..end],
                        ahead: ahead.as_mut().map(|a| (a, first - base)),
                    };
                    match self.receive_one_batch(batch, flush)? {
                        Some(done) => break done,
                        // This thread needed a session's record while it was
                        // still with the helper: the batch again, without it
                        // (which cannot happen twice).
                        None => {
                            ahead = None;
                            redone = true;
                        }
                    }
                };
                after(self, first..end, results)?;
                if end == envelopes.len() {
                    return Ok(());
                }
                // Sends after the commit moved sessions on behind the
                // helper's back (or there is no helper after a batch
                // received again): a new helper starts from the sessions as
                // they are now.
                if sessions_touched || redone {
                    ahead = start_ahead(end);
                    base = end;
                }
                first = end;
            }
        })
    }

    /// One batch in one transaction, then what its commit sets off. Says
    /// whether that (forwarding, admissions, replies) sent anything, and so
    /// changed sessions after the commit. `None`: nothing was committed,
    /// because a session's record this thread needed was still with the
    /// helper (see `receive_ahead`); the batch is to be received again
    /// without it.
    fn receive_one_batch(
        &mut self,
        batch: Batch<'_, '_>,
        flush: bool,
    ) -> Result<Option<(Vec<Result<Received>>, bool)>> {
        let Batch {
            envelopes,
            mut ahead,
        } = batch;
        if !flush {
            self.store.set_flush(false)?;
        }
        let me = self.id();
        let trust_root = self.settings.trust_root.clone();
        let mut pending = Pending::default();
        let mut known = KnownSenders::default();
        let mut events = Vec::new();
        let mut logs = BatchLogs::new(&self.logs, self.clock.now_ms());
        let cache = &self.cache;
        // Sessions whose messages this batch took from the helper without
        // the record after the last of them (see `receive_ahead`): the
        // record staged for each lags behind.
        let mut lagging: HashSet<String> = HashSet::new();
        let committed = (|| {
            let tx = self.store.write()?;
            let mut results = Vec::with_capacity(envelopes.len());
            for (index, inbound) in envelopes.iter().enumerate() {
                let mut wanted_lagging = false;
                let mut opened = match ahead.as_mut() {
                    Some((ahead, offset)) => ahead.take(*offset + index, &mut |key| {
                        if lagging.contains(key) {
                            wanted_lagging = true;
                            return Ok(None);
                        }
                        SignalStores::new(&tx, cache, &mut pending).session(key)
                    })?,
                    None => Opened::default(),
                };
                if wanted_lagging {
                    return Ok(None);
                }
                let mut adoption = Adoption::new(&lagging);
                let outcome = receive_one(
                    &tx,
                    cache,
                    &mut pending,
                    (&me, trust_root.as_deref()),
                    (*inbound, &mut opened, &mut adoption),
                    &mut known,
                    (&mut events, &mut logs),
                );
                let kept = outcome.is_ok();
                let Adoption {
                    taken,
                    needed_lagging,
                    ..
                } = adoption;
                if needed_lagging {
                    return Ok(None);
                }
                if let Some((key, recorded)) = &taken {
                    match (kept, recorded) {
                        // Undoing this envelope needs the record before it.
                        (false, _) if lagging.contains(key) => return Ok(None),
                        (false, _) => {}
                        (true, true) => {
                            lagging.remove(key);
                        }
                        (true, false) => {
                            lagging.insert(key.clone());
                        }
                    }
                }
                let (written, replaced) = pending.take_written();
                if let Some((ahead, _)) = ahead.as_mut() {
                    let taken = taken.as_ref().map(|(key, _)| (key.as_str(), kept));
                    ahead.settle(taken, &written);
                    ahead.discard(replaced, opened);
                }
                match outcome {
                    // Storage trouble may have left part of this envelope in
                    // the transaction: give up the whole batch (dropping `tx`
                    // rolls back).
                    Err(e @ (Error::Storage(_) | Error::Io(_))) => return Err(e),
                    other => results.push(other),
                }
            }
            // The helper ends its chunks at the batch's end with the
            // records: none should lag here.
            if !lagging.is_empty() {
                return Ok(None);
            }
            pending.flush(&tx)?;
            failpoint("receive_before_commit");
            tx.commit()?;
            Ok(Some(results))
        })();
        if !flush {
            // Everything after the commit (or instead of it) waits for the
            // disk again.
            self.store.set_flush(true)?;
        }
        let Some(results) = committed? else {
            return Ok(None);
        };
        let BatchLogs {
            changed,
            merged,
            join_requests,
            hello_replies,
            alerts_to_forward,
            stores_expiring,
            sync,
            repair,
            ..
        } = logs;
        if stores_expiring {
            self.expiry_changed = true;
            self.next_due = None;
        }
        self.cache.absorb(pending);
        // Whoever a changed committee lost may hold our access key.
        self.access_check_due |= !changed.is_empty();
        self.logs.absorb(changed);
        self.committees_changed |= events
            .iter()
            .any(|e| matches!(e, Event::CommitteeChanged { .. }));
        let scrub = channel::wants_scrub(&events);
        self.search_backlog |= channel::fills_search_backlog(&events);
        // A member who opened a session with us may be owed an alert.
        let new_sessions = events
            .iter()
            .any(|e| matches!(e, Event::ContactAdded { .. }));
        self.events.extend(events);
        // Expired channel messages go; edited or deleted text leaves the WAL.
        self.channel_upkeep(scrub);
        let sends = !merged.is_empty()
            || !sync.is_empty()
            || !repair.is_empty()
            || join_requests
            || alerts_to_forward
            || new_sessions
            || !hello_replies.is_empty();
        // Concurrent changes met here: members the other author added may
        // lack ours. Sent after the commit, each in its own transaction.
        for committee in merged {
            if let Err(e) = self.forward_own_heads(&committee) {
                tracing::warn!("could not forward committee entries: {e}");
            }
        }
        if join_requests {
            if let Err(e) = self.admit_waiting() {
                tracing::warn!("could not decide join requests: {e}");
            }
        }
        if alerts_to_forward {
            if let Err(e) = self.forward_alerts() {
                tracing::warn!("could not forward alerts: {e}");
            }
        }
        if new_sessions {
            if let Err(e) = self.send_owed_alerts() {
                tracing::warn!("could not send owed alerts: {e}");
            }
            if let Err(e) = self.send_owed_entries() {
                tracing::warn!("could not send owed committee entries: {e}");
            }
        }
        for (committee, member) in hello_replies {
            if let Err(e) = self.send_hello(&committee, &member, false) {
                tracing::warn!("could not answer a committee hello: {e}");
            }
        }
        self.sync_after_receive(sync);
        self.repair_after_receive(repair);
        Ok(Some((results, sends)))
    }
}

/// What receiving one envelope did with the helper's results.
struct Adoption<'l> {
    /// Sessions whose staged record lags behind the messages taken from
    /// the helper (see [`Account::receive_one_batch`]).
    lagging: &'l HashSet<String>,
    /// The session whose result from the helper it took, and whether the
    /// result carried the record after it.
    taken: Option<(String, bool)>,
    /// It needed the record of a session whose record lags.
    needed_lagging: bool,
}

impl<'l> Adoption<'l> {
    fn new(lagging: &'l HashSet<String>) -> Self {
        Adoption {
            lagging,
            taken: None,
            needed_lagging: false,
        }
    }
}

/// What [`Account::receive_batches`] calls after each commit, with the batch's
/// place among the envelopes and their outcomes.
type AfterBatch<'a> =
    dyn FnMut(&mut Account, Range<usize>, Vec<Result<Received>>) -> Result<()> + 'a;

/// One receive transaction's envelopes, and the helper decrypting ahead
/// with the place of the first of them among its own.
struct Batch<'a, 'h> {
    envelopes: &'a [Inbound<'a>],
    ahead: Option<(&'h mut Ahead, usize)>,
}

fn receive_one(
    tx: &WriteTransaction<'_>,
    cache: &SignalCache,
    pending: &mut Pending,
    (me, trust_root): (&AccountId, Option<&[u8]>),
    (inbound, opened, adoption): (Inbound<'_>, &mut Opened, &mut Adoption<'_>),
    known: &mut KnownSenders,
    (events, logs): (&mut Vec<Event>, &mut BatchLogs<'_>),
) -> Result<Received> {
    let bytes = inbound.bytes();
    if bytes.len() > MAX_ENVELOPE_LEN {
        return Err(Error::InvalidEnvelope("too large"));
    }
    // Identified envelopes carry the sender's ID for them; parsed once (by
    // the helper, when it ran ahead), and read where they are (see
    // `receive_ahead` on who frees what).
    let Opened {
        identified,
        usmc,
        decrypted,
    } = opened;
    let (dedup_id, identified) = match inbound {
        Inbound::Envelope(b) => {
            // Parsed here when the helper did not; a parse error is this
            // envelope's outcome.
            if !matches!(identified, Some(Ok(_))) {
                let parsed = identified.take().unwrap_or_else(|| parse_envelope(b))?;
                *identified = Some(Ok(parsed));
            }
            match identified {
                Some(Ok((id, parsed))) => (*id, Some(&*parsed)),
                _ => return Err(Error::InvalidEnvelope("not an envelope")),
            }
        }
        Inbound::Sealed(b) | Inbound::Delivered { sealed: b, .. } => (sealed_dedup_id(b), None),
    };
    // Claimed first, with one write: a copy already received (in an earlier
    // batch or earlier in this one) claims nothing. A failure gives it back.
    if !claim_envelope(tx, &dedup_id, logs.now_ms)? {
        return Ok(Received::Duplicate);
    }
    let outcome = receive_claimed(
        tx,
        cache,
        pending,
        (me, trust_root),
        (inbound, usmc.as_ref(), decrypted, adoption),
        identified,
        dedup_id,
        known,
        (events, logs),
    );
    // A sealed message whose sender can repair what kept it from being read
    // is kept, and counts as taken in.
    let outcome = match (outcome, inbound.sealed()) {
        (Err(e), Some(sealed)) if crate::repair::repairable(&e) => {
            let stored_at = match inbound {
                Inbound::Delivered { stored_at_ms, .. } => stored_at_ms,
                _ => u64::try_from(logs.now_ms).unwrap_or(0),
            };
            let stores = SignalStores::new(tx, cache, pending);
            crate::repair::keep_unreadable(
                tx,
                (&stores, me),
                (sealed, stored_at),
                &dedup_id,
                (events, logs),
            )?
            .ok_or(e)
        }
        (Err(Error::UnknownCommittee(c)), _) => {
            crate::repair::keep_waiting(tx, inbound, &dedup_id, logs.now_ms)?
                .ok_or(Error::UnknownCommittee(c))
        }
        (outcome, _) => outcome,
    };
    // Nothing of a failed envelope remains, nor of a replay of a message
    // already read under a new envelope ID.
    let release = match &outcome {
        Err(e) => !matches!(e, Error::Storage(_) | Error::Io(_)),
        Ok(r) => *r == Received::Duplicate,
    };
    if release {
        release_envelope(tx, &dedup_id)?;
    }
    outcome
}

/// Everything after the envelope's ID is claimed: decrypt, check, write.
#[allow(clippy::too_many_arguments)]
fn receive_claimed(
    tx: &WriteTransaction<'_>,
    cache: &SignalCache,
    pending: &mut Pending,
    (me, trust_root): (&AccountId, Option<&[u8]>),
    (inbound, usmc, ahead, adoption): (
        Inbound<'_>,
        Option<&UnidentifiedSenderMessageContent>,
        &mut Option<Decrypted>,
        &mut Adoption<'_>,
    ),
    identified: Option<&Parsed>,
    dedup_id: [u8; ENVELOPE_ID_LEN],
    known: &mut KnownSenders,
    (events, logs): (&mut Vec<Event>, &mut BatchLogs<'_>),
) -> Result<Received> {
    let stores = SignalStores::new(tx, cache, pending);
    let unsealed;
    let env = match (identified, inbound.sealed()) {
        (Some(parsed), _) => parsed,
        (None, None) => return Err(Error::InvalidEnvelope("not an envelope")),
        (None, Some(b)) => {
            let root = trust_root.ok_or(Error::DecryptionFailed(
                "no trust root for sealed sender yet",
            ))?;
            let at = inbound.certificate_time(logs.now_ms);
            let u = match usmc {
                Some(usmc) => sealed::check_opened(stores.view(), usmc, root, at)?,
                None => sealed::unseal(stores.view(), b, root, at)?,
            };
            unsealed = Parsed {
                sender: u.sender,
                device: u.device,
                ciphertext: u.message,
            };
            &unsealed
        }
    };
    if env.sender == *me {
        return Err(Error::FromSelf);
    }
    // A decryption-error receipt: what it names of ours is owed again.
    if let Inner::Plaintext(bytes) = &env.ciphertext {
        let authenticated = identified.is_none();
        crate::repair::take_receipt(
            tx,
            &stores,
            (&env.sender, env.device),
            bytes,
            authenticated,
            logs,
        )?;
        stores.commit_op()?;
        return Ok(Received::Control { from: env.sender });
    }

    let (addr, addr_key) = known.address(&env.sender, env.device);
    if let Inner::SenderKey { message, group_id } = &env.ciphertext {
        let (message, group_id) = (message.clone(), group_id.clone());
        return channel::receive_channel(
            tx,
            stores,
            (&env.sender, &addr),
            &message,
            group_id.as_deref(),
            dedup_id,
            (events, logs),
        );
    }
    let mut own = zeroize::Zeroizing::new(Vec::new());
    // For a result taken from the helper, what it saw of the session after
    // the message: the post-quantum ratchet, and the sender's identity key.
    let mut seen = None;
    let decrypted = match (ahead.as_mut(), &env.ciphertext) {
        (Some(ahead), Inner::Signal(_)) if *ahead.address == *addr_key => {
            adoption.taken = Some((addr_key.clone(), ahead.record.is_some()));
            seen = Some((ahead.post_quantum, ahead.identity));
            adopt(&stores, &addr, ahead)
        }
        _ if adoption.lagging.contains(&addr_key) => {
            adoption.needed_lagging = true;
            return Err(Error::DecryptionFailed(
                "session record still decrypting ahead",
            ));
        }
        _ => decrypt(&stores, &addr, &env.ciphertext).map(|p| {
            *own = p;
            own.as_slice()
        }),
    };
    let plaintext = match decrypted {
        Ok(p) => p,
        // A replay of a message whose key is spent: the same message again.
        Err(SignalProtocolError::DuplicatedMessage(..)) => return Ok(Received::Duplicate),
        Err(SignalProtocolError::SessionNotFound(_)) => return Err(Error::NoSession(env.sender)),
        Err(e) => {
            let e = Error::from(e);
            if let Error::IdentityMismatch(account) = e {
                events.push(Event::IdentityMismatch { account });
            }
            return Err(e);
        }
    };
    // The session after this message must still run the post-quantum ratchet,
    // and tells us the sender's identity key.
    let (post_quantum, identity) = match seen {
        Some(seen) => seen,
        None => {
            let checked = stores.with_session(&addr_key, |record| {
                (
                    session::has_post_quantum_ratchet(record),
                    record.remote_identity_key_bytes(),
                )
            })?;
            let Some((post_quantum, identity_bytes)) = checked else {
                return Err(Error::NoSession(env.sender));
            };
            let identity_bytes = identity_bytes?.ok_or(Error::NoSession(env.sender))?;
            (post_quantum, IdentityKey::decode(&identity_bytes)?)
        }
    };
    if !post_quantum {
        return Err(Error::PostQuantumRequired(env.sender));
    }
    let content = message::decode_content(plaintext)?;
    let mut update = None;
    let mut join = None;
    let mut hello_reply = None;
    let mut alert_in = None;
    let mut answer_in = None;
    let mut rollcall_in = None;
    let mut proposal_in = None;
    let mut entries_request = None;
    let mut timer_in = None;
    let text = match content.body {
        Body::Text { body, timer } => {
            timer_in = Some(timer);
            Some(body)
        }
        Body::ConversationTimer(timer) => {
            timer_in = Some(timer);
            None
        }
        Body::CommitteeUpdate {
            committee_id,
            entries,
            access_keys,
        } => {
            // Checked and folded now, written below with the envelope.
            update = Some(committee_receive::check_update(
                tx,
                logs,
                (me, &env.sender),
                committee_id,
                entries,
                access_keys,
            )?);
            None
        }
        Body::SenderKeyDistribution {
            distribution_id,
            message,
            ..
        } => {
            // A member's sender key for a channel: recorded with the other
            // writes of this envelope, so it is there exactly when the
            // envelope counts as received.
            let skdm = SenderKeyDistributionMessage::try_from(message.as_slice())
                .map_err(|_| Error::InvalidContent("bad sender key distribution"))?;
            if skdm.distribution_id()? != distribution_id {
                return Err(Error::InvalidContent("distribution id does not match"));
            }
            futures::executor::block_on(process_sender_key_distribution_message(
                &addr,
                &skdm,
                &mut stores.view(),
            ))?;
            // What of theirs could not be read for want of it may be now.
            logs.repair.retry.insert(env.sender);
            None
        }
        Body::ChannelText { .. } => {
            return Err(Error::InvalidContent("channel text outside its channel"))
        }
        Body::JoinRequest(request) => {
            let held = logs.get(tx, &request.committee_id)?.is_some();
            committee_join::check_request(&identity, &request, held)?;
            join = Some(request);
            None
        }
        Body::Alert(alert) => {
            crate::alert::receive::check(tx, logs, me, &env.sender, &alert)?;
            alert_in = Some(alert);
            None
        }
        Body::AlertAnswer {
            alert_id,
            answer,
            answered_at_ms,
        } => {
            crate::alert::receive::check_answer(tx, &env.sender, &alert_id)?;
            answer_in = Some((alert_id, answer, answered_at_ms));
            None
        }
        Body::AlertRollCall(message) => {
            crate::alert::receive::check_answer(tx, &env.sender, &message.alert_id())?;
            rollcall_in = Some(message);
            None
        }
        Body::LinkProposal(proposal) => {
            crate::link::check_proposal(tx, logs, me, &proposal)?;
            proposal_in = Some(proposal);
            None
        }
        Body::CommitteeEntriesRequest {
            committee_id,
            heads,
            ..
        } => {
            // Answered after the commit, and only to a current member.
            crate::committee_sync::check_request(tx, logs, &committee_id, &env.sender)?;
            entries_request = Some((committee_id, heads));
            None
        }
        // Says only what every content says: the sender's access key.
        Body::AccessKeyChanged => None,
        Body::CommitteeHello {
            committee_id,
            reply_wanted,
        } => {
            // Answered after the commit, and only by a member of the committee.
            if reply_wanted {
                let member = logs
                    .get(tx, &committee_id)?
                    .is_some_and(|log| log.state().role(me).is_some());
                if member {
                    hello_reply = Some(committee_id);
                }
            }
            None
        }
    };

    // Everything checked: from here on the envelope's effects are written.
    stores.commit_op()?;
    if let Some(handle) = content.resends {
        crate::repair::forget_unreadable(tx, &env.sender, handle)?;
    }

    let held = if content.replaces.is_none() && known.plain.contains(&env.sender) {
        false
    } else {
        let device = u32::from(env.device);
        let held = decide_contact(tx, &env.sender, device, &identity, content.replaces, events)?;
        if !held && content.replaces.is_none() {
            known.plain.insert(env.sender);
        }
        held
    };
    if let Some(key) = content.sender_access_key {
        if known.access_keys.get(&env.sender) != Some(&key)
            && contact::learn_carried_access_key(tx, &env.sender, &key, content.sent_at_ms)?
        {
            known.access_keys.insert(env.sender, key);
        }
    }
    if let Some(update) = update {
        committee_receive::apply_update(tx, logs, update, events)?;
    }
    if let Some(request) = join {
        committee_join::record_request(tx, &request)?;
        logs.join_requests = true;
    }
    if let Some(committee) = hello_reply {
        logs.hello_replies.push((committee, env.sender));
    }
    if let Some((committee, heads)) = entries_request {
        logs.sync.answers.push((committee, env.sender, heads));
    }
    if let Some(alert) = alert_in {
        logs.alerts_to_forward |=
            crate::alert::receive::apply(tx, logs, (me, &env.sender), &alert, events)?;
    }
    if let Some((alert_id, answer, answered_at_ms)) = answer_in {
        let answered = (&alert_id, answer, answered_at_ms);
        crate::alert::receive::answer(tx, logs, &env.sender, answered, events)?;
    }
    if let Some(message) = rollcall_in {
        crate::alert::receive::roll_call(tx, logs, &env.sender, &message, events)?;
    }
    if let Some(proposal) = proposal_in {
        crate::link::record_proposal(tx, &env.sender, &proposal, events)?;
    }
    // The conversation's disappearing timer, adopted from a change or a text.
    let expires_at = match (timer_in, &text) {
        (Some(timer), Some(_)) => crate::conversation_timer::receive_text(
            tx,
            &env.sender,
            timer,
            content.sent_at_ms,
            logs,
            events,
        )?,
        (Some(timer), None) => {
            crate::conversation_timer::receive(tx, &env.sender, timer, events)?;
            None
        }
        (None, _) => None,
    };
    let Some(text) = text else {
        return Ok(Received::Control { from: env.sender });
    };
    let message_id = message::insert(
        tx,
        &NewMessage {
            envelope_id: &dedup_id,
            peer: &env.sender,
            outgoing: false,
            body: &text,
            sent_at_ms: content.sent_at_ms,
            stored_at_ms: logs.now_ms,
            held,
            expires_at,
        },
    )?;
    if held {
        events.push(Event::MessageHeld {
            from: env.sender,
            message_id,
        });
        Ok(Received::Held {
            message_id,
            from: env.sender,
        })
    } else {
        events.push(Event::MessageStored {
            peer: env.sender,
            message_id,
        });
        Ok(Received::Stored {
            message_id,
            from: env.sender,
        })
    }
}

/// Decrypts a 1:1 message on this account's session with its sender.
fn decrypt(
    stores: &SignalStores<'_, '_>,
    addr: &ProtocolAddress,
    ciphertext: &Inner,
) -> std::result::Result<Vec<u8>, SignalProtocolError> {
    futures::executor::block_on(async {
        match ciphertext {
            Inner::SenderKey { .. } | Inner::Plaintext(_) => Err(
                SignalProtocolError::InvalidArgument("not a 1:1 message".into()),
            ),
            Inner::PreKey(m) => {
                message_decrypt_prekey(
                    m,
                    addr,
                    &mut stores.view(),
                    &mut stores.view(),
                    &mut stores.view(),
                    &stores.view(),
                    &mut stores.view(),
                    &mut rand::rng(),
                )
                .await
            }
            Inner::Signal(m) => {
                message_decrypt_signal(
                    m,
                    addr,
                    &mut stores.view(),
                    &mut stores.view(),
                    &mut rand::rng(),
                )
                .await
            }
        }
    })
}

/// Takes a message the helper decrypted ahead on a copy of this very session:
/// what libsignal does after decrypting, done here — the sender's identity
/// key judged and recorded, then the new session record staged.
fn adopt<'d>(
    stores: &SignalStores<'_, '_>,
    addr: &ProtocolAddress,
    ahead: &'d mut Decrypted,
) -> std::result::Result<&'d [u8], SignalProtocolError> {
    stores
        .accept_identity(&ahead.address, addr, &ahead.identity)
        .map_err(storage_err)?;
    // Without the record, the staged one lags until a later result brings
    // it (see `receive_ahead`).
    if let Some(record) = ahead.record.take() {
        stores.stage_session(ahead.address.to_string(), record);
    }
    Ok(ahead.plaintext.as_slice())
}

/// What a batch has already learnt about its senders, so a phone catching up
/// on thousands of messages from one contact does not ask the database the
/// same questions thousands of times.
#[derive(Default)]
struct KnownSenders {
    /// Contacts with no identity change pending.
    plain: HashSet<AccountId>,
    /// Access keys already recorded.
    access_keys: std::collections::HashMap<AccountId, [u8; crate::settings::ACCESS_KEY_LEN]>,
    /// Each sender device's libsignal address and the text the stores key it
    /// by: made once, copied after (writing the account ID out in hex, twice,
    /// was 4% of a catch-up).
    addresses: std::collections::HashMap<(AccountId, DeviceId), (ProtocolAddress, String)>,
}

impl KnownSenders {
    fn address(&mut self, sender: &AccountId, device: DeviceId) -> (ProtocolAddress, String) {
        self.addresses
            .entry((*sender, device))
            .or_insert_with(|| {
                let addr = address(sender, device);
                let key = addr.to_string();
                (addr, key)
            })
            .clone()
    }
}

const CLAIM_SQL: &str =
    "INSERT OR IGNORE INTO received_envelopes (envelope_id, received_day) VALUES (?1, ?2)";

/// Prepares the statements that receiving a 1:1 message or an alert runs, so
/// the first one after the account opens does not parse them: on a phone
/// woken by an alert that was a fifth of the CPU the alert cost it.
pub(crate) fn prepare_statements(conn: &rusqlite::Connection) -> Result<()> {
    for sql in hot_statements() {
        conn.prepare_cached(&sql)?;
    }
    Ok(())
}

/// The statements a received 1:1 message or alert runs.
fn hot_statements() -> impl Iterator<Item = Cow<'static, str>> {
    let fixed = [
        crate::store::BEGIN_SQL,
        crate::store::COMMIT_SQL,
        crate::store::ROLLBACK_SQL,
        CLAIM_SQL,
        message::INSERT_SQL,
        crate::send::OUTBOX_WAITING_SQL,
        crate::committee_store::ENTRIES_SQL,
        crate::alert::store::INSERT_SQL,
        crate::alert::store::RAISED_SQL,
        crate::alert::store::MARK_FORWARDED_SQL,
        crate::conversation_timer::GET_SQL,
        crate::alert::store::UNFORWARDED_SQL,
        contact::INSERT_IF_NEW_SQL,
        contact::SET_ACCESS_KEY_SQL,
    ];
    let formatted = [contact::by_successor_sql(), crate::alert::store::get_sql()];
    fixed
        .into_iter()
        .chain(crate::store::signal::HOT_SQL)
        .map(Cow::Borrowed)
        .chain(formatted.into_iter().map(Cow::Owned))
}

/// Records the envelope's ID as received, dated by the day only; `false`
/// when it already was.
pub(crate) fn claim_envelope(
    tx: &WriteTransaction<'_>,
    id: &[u8; ENVELOPE_ID_LEN],
    now_ms: i64,
) -> Result<bool> {
    let claimed = tx
        .prepare_cached(CLAIM_SQL)?
        .execute(params![&id[..], crate::received::day(now_ms)])?;
    Ok(claimed == 1)
}

/// Gives back the claim of an envelope that failed, so nothing of it remains.
fn release_envelope(tx: &WriteTransaction<'_>, id: &[u8; ENVELOPE_ID_LEN]) -> Result<()> {
    tx.prepare_cached(crate::received::FORGET_SQL)?
        .execute([&id[..]])?;
    Ok(())
}

/// Files the sender among the contacts and says whether its message is held.
fn decide_contact(
    tx: &WriteTransaction<'_>,
    sender: &AccountId,
    device: u32,
    identity: &IdentityKey,
    replaces: Option<AccountId>,
    events: &mut Vec<Event>,
) -> Result<bool> {
    // Already awaiting a decision as some contact's successor.
    if contact::replaced_by(tx, sender)?.is_some() {
        return Ok(true);
    }
    if let Some(previous) = replaces {
        if previous != *sender && contact::get(tx, sender)?.is_none() {
            if let Some(c) = contact::get(tx, &previous)? {
                contact::set_successor(tx, &c.account_id, sender, identity)?;
                events.push(Event::IdentityChanged {
                    contact: c.account_id,
                    new_account: *sender,
                });
                return Ok(true);
            }
        }
    }
    if contact::insert_if_new(tx, sender, device, identity)? {
        events.push(Event::ContactAdded { account: *sender });
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{DatabaseKey, Store};

    fn inbound(sent: &[crate::send::OutgoingEnvelope]) -> Vec<Inbound<'_>> {
        sent.iter()
            .map(|e| match e.sealed {
                true => Inbound::Sealed(&e.bytes),
                false => Inbound::Envelope(&e.bytes),
            })
            .collect()
    }

    /// An organizer and a member of one committee, the organizer having
    /// heard from the member: what it sends next are plain messages (not
    /// first messages), the kind the helper decrypts ahead.
    fn organizer_and_member(
        dir: &tempfile::TempDir,
    ) -> (Account, Account, crate::committee::CommitteeId) {
        let (mut organizer, mut member, _, committee) = crate::alert::tests::committee(dir);
        let hello = member.send_text(&organizer.id(), "hello").expect("send");
        organizer.receive(&hello.bytes).expect("receive");
        (organizer, member, committee)
    }

    /// Texts `label 0`, `label 1`… for the numbers in `numbers`.
    fn texts(
        from: &mut Account,
        to: &AccountId,
        label: &str,
        numbers: Range<usize>,
    ) -> Vec<crate::send::OutgoingEnvelope> {
        numbers
            .map(|i| from.send_text(to, &format!("{label} {i}")).expect("send"))
            .collect()
    }

    /// A backlog is received in batches, each committed and handed over in
    /// turn, with one helper decrypting ahead on copies of the sessions. A
    /// reply sent after a batch's commit moves a session on (its sending
    /// chain) behind the helper's back: the batches after it must start from
    /// the session as the reply left it, or the next message sent would reuse
    /// the reply's message key (and be dropped as a copy of it).
    #[test]
    fn a_backlog_goes_on_from_the_sessions_a_reply_after_a_commit_moved_on() {
        let dir = tempfile::tempdir().expect("dir");
        let (mut organizer, mut member, committee) = organizer_and_member(&dir);
        let (to, from) = (member.id(), organizer.id());
        let stored_before = member.message_count().expect("count");
        let unconfirmed: Vec<_> = member
            .outbox()
            .expect("outbox")
            .into_iter()
            .map(|e| e.envelope_id)
            .collect();
        let mut backlog = texts(&mut organizer, &to, "before", 0..40);
        // Answered once its batch (32..48) has committed.
        backlog.push(organizer.send_hello(&committee, &to, true).expect("hello"));
        backlog.extend(texts(&mut organizer, &to, "after", 0..40));
        let mut batches = Vec::new();
        member
            .receive_backlog(&inbound(&backlog), 16, &mut |range, results, unsynced| {
                assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
                assert_eq!(results.len(), range.len());
                unsynced.sync().expect("sync");
                batches.push(range);
            })
            .expect("backlog");
        let expected: Vec<Range<usize>> =
            (0..81).step_by(16).map(|s| s..(s + 16).min(81)).collect();
        assert_eq!(batches, expected);
        assert_eq!(member.message_count().expect("count"), stored_before + 80);

        // The member's reply, then a text of its own: the organizer reads
        // both, the text as new.
        let mut sent: Vec<_> = member
            .outbox()
            .expect("outbox")
            .into_iter()
            .filter(|e| e.recipient == from && !unconfirmed.contains(&e.envelope_id))
            .collect();
        assert_eq!(sent.len(), 1, "one hello answered");
        sent.push(member.send_text(&from, "after the backlog").expect("send"));
        let received = organizer.receive_all(&inbound(&sent)).expect("receive");
        assert!(received.iter().all(|r| r.is_ok()), "{received:?}");
        assert!(
            matches!(received.last(), Some(Ok(Received::Stored { .. }))),
            "{received:?}"
        );
    }

    /// In a backlog, the helper hands over the session record only after a
    /// sender's last message in each chunk of results. A message taken from
    /// the helper that then fails (here its content is refused) must leave
    /// the session as the message before it left it. That record was still
    /// with the helper, so the batch is received again without it. Going on
    /// from the last record handed over instead would keep the keys of the
    /// messages read since then, and a copy of one of them under a new
    /// envelope ID would be read a second time.
    #[test]
    fn a_message_refused_after_it_was_decrypted_ahead_leaves_the_session_as_before_it() {
        use prost::Message as _;

        let dir = tempfile::tempdir().expect("dir");
        let (mut organizer, mut member, _) = organizer_and_member(&dir);
        let (to, from) = (member.id(), organizer.id());
        let stored_before = member.message_count().expect("count");
        // Decrypts, then is refused: channel text has no place in a 1:1
        // session. Mid-chunk, so the helper kept the record.
        let refused = Body::ChannelText {
            channel_id: [7; CHANNEL_ID_LEN],
            content: crate::channel::ChannelContent::Post {
                id: [1; crate::channel::MESSAGE_REF_LEN],
                body: "out of place".into(),
                reply_to: None,
                attachments: Vec::new(),
                expire_timer_secs: 0,
            },
        };
        let mut backlog = texts(&mut organizer, &to, "text", 0..20);
        backlog.push(organizer.send_body(&to, &refused).expect("send"));
        backlog.extend(texts(&mut organizer, &to, "text", 20..40));
        let mut outcomes = Vec::new();
        member
            .receive_backlog(&inbound(&backlog), 64, &mut |_, results, unsynced| {
                unsynced.sync().expect("sync");
                outcomes.extend(results);
            })
            .expect("backlog");
        assert_eq!(outcomes.len(), 41);
        for (i, outcome) in outcomes.iter().enumerate() {
            match i {
                20 => assert!(outcome.is_err(), "{outcome:?}"),
                _ => assert!(
                    matches!(outcome, Ok(Received::Stored { .. })),
                    "{i}: {outcome:?}"
                ),
            }
        }
        assert_eq!(member.message_count().expect("count"), stored_before + 40);

        // A text read just before the refused one, again under a new
        // envelope ID: its key is spent.
        let mut copy = pb::Envelope::decode(backlog[18].bytes.as_slice()).expect("decode");
        copy.id[0] ^= 1;
        assert_eq!(
            member.receive(&copy.encode_to_vec()).expect("receive"),
            Received::Duplicate
        );
        // The conversation goes on both ways.
        let next = organizer.send_text(&to, "after the backlog").expect("send");
        assert!(matches!(
            member.receive(&next.bytes),
            Ok(Received::Stored { .. })
        ));
        let reply = member.send_text(&from, "read").expect("send");
        assert!(matches!(
            organizer.receive(&reply.bytes),
            Ok(Received::Stored { .. })
        ));
    }

    /// Every statement a received message or alert runs finds its rows
    /// through an index. A table scan reads (and decrypts) every page of the
    /// table on each message: with a contact scan, a phone with thousands of
    /// contacts read all of them for every message it received. A scan of a
    /// partial index reads only the rows the index keeps (alerts not yet
    /// forwarded, say), so it passes.
    #[test]
    fn the_receive_path_scans_no_table() {
        let dir = tempfile::tempdir().expect("dir");
        let store =
            Store::create(&dir.path().join("s.db"), &DatabaseKey::generate()).expect("store");
        let partial: Vec<String> = store
            .conn()
            .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND sql LIKE '% WHERE %'")
            .expect("indexes")
            .query_map([], |r| r.get(0))
            .expect("indexes")
            .collect::<std::result::Result<_, _>>()
            .expect("indexes");
        let of_partial = |step: &str| {
            partial.iter().any(|p| {
                step.ends_with(&format!(" USING INDEX {p}"))
                    || step.ends_with(&format!(" USING COVERING INDEX {p}"))
            })
        };
        let mut scans = Vec::new();
        for sql in hot_statements() {
            let mut plan = store
                .conn()
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .expect("plan");
            let unbound = std::iter::repeat_n(rusqlite::types::Null, plan.parameter_count());
            let steps: Vec<String> = plan
                .query_map(rusqlite::params_from_iter(unbound), |r| {
                    r.get::<_, String>(3)
                })
                .expect("steps")
                .collect::<std::result::Result<_, _>>()
                .expect("steps");
            // `EXISTS` stops at the first row it finds.
            let bounded = sql.starts_with("SELECT EXISTS");
            let scans_table = steps
                .iter()
                .any(|s| s.starts_with("SCAN ") && s != "SCAN CONSTANT ROW" && !of_partial(s));
            if scans_table && !bounded {
                scans.push(format!("{sql}: {steps:?}"));
            }
        }
        assert!(scans.is_empty(), "{scans:#?}");
    }
}
