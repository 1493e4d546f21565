//! Decrypting ahead: while the account thread checks and writes one envelope
//! of a large batch, a helper thread opens and decrypts the ones after it.
//!
//! A phone catching up spends about half its time in libsignal and half in
//! SQLCipher, one after the other, on one core. Opening a sealed envelope and
//! decrypting a 1:1 message need no database, only the session record they
//! start from, so they can run on a second core, a little ahead.
//!
//! What keeps this exact:
//! - The helper has no database. It asks the account thread for a sender's
//!   session the first time it meets that sender in the batch, and the account
//!   thread answers only when it has finished every envelope before that one:
//!   the copy is the session exactly as that envelope would find it.
//! - From then on the helper decrypts that sender's messages in order on its
//!   copy, and each result names its place in that chain. The account thread
//!   takes a result only when its own session has moved along the same chain
//!   and nothing else (a failed envelope, a first message that set up a new
//!   session, a result it refused) changed it in between; otherwise it
//!   decrypts the envelope itself, as it would with no helper.
//! - Every check and every write stays on the account thread, in the order of
//!   the batch: the identity check libsignal makes after decrypting, the sender
//!   certificate, the content, and the staging of the new session record.
//! - The record after a message is copied for the account thread only where it
//!   must have it: after a sender's last message in each chunk of results, a
//!   chunk ending at every batch's end and before any envelope the helper did
//!   not decrypt. Between those, the account thread's record of that session
//!   lags behind the messages it took; should it need that record there (an
//!   envelope that fails after its message was taken, a message of that
//!   sender it decrypts itself), it drops the batch's transaction and receives
//!   the batch again without the helper. Copying a record for every message
//!   was a tenth of the helper's work.
//!
//! What the helper made, the helper frees: the account thread reads the parsed
//! envelopes, plaintexts and records in place and hands them back when it is
//! done (see `Leftovers`). Freed on the account thread, each would take the
//! lock of the helper's malloc arena, which the helper takes all the time.
//!
//! Only identified and sealed 1:1 messages on an existing session are
//! decrypted ahead; first messages (which use up prekeys) and channel messages
//! are left to the account thread, the sealed ones already opened.

use std::collections::HashMap;
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::Arc;
use std::thread::Scope;

use async_trait::async_trait;
use libsignal_protocol::{
    message_decrypt_signal, CiphertextMessageType, DeviceId, Direction, IdentityChange,
    IdentityKey, IdentityKeyPair, IdentityKeyStore, ProtocolAddress, SessionRecord, SessionStore,
    SignalMessage, SignalProtocolError, UnidentifiedSenderMessageContent,
};
use zeroize::Zeroizing;

use crate::account_id::AccountId;
use crate::error::Result;
use crate::message::ENVELOPE_ID_LEN;
use crate::receive::{parse_envelope, Inbound, Parsed, MAX_ENVELOPE_LEN};
use crate::sealed;
use crate::sealed::Inner;
use crate::store::signal::address;

/// Batches smaller than this are received on the account thread alone: the
/// helper thread costs more to start than it saves.
pub(crate) const MIN_BATCH: usize = 16;
/// Results handed to the account thread at a time: one wake-up each, not one
/// per envelope (a wake-up costs about as much as a decrypt).
const CHUNK: usize = 16;
/// Most chunks the helper may have handed over before the account thread
/// takes them: enough (384 envelopes) to keep it decrypting through a batch's
/// commit in a backlog, which in the catch-up bench took as long as about 200
/// decrypts.
const CHUNKS_IN_FLIGHT: usize = 24;

/// What the helper made of one envelope.
#[derive(Default)]
pub(crate) struct Opened {
    /// An identified envelope, parsed.
    pub identified: Option<Result<([u8; ENVELOPE_ID_LEN], Parsed)>>,
    /// A sealed envelope's outer layer, taken off; its certificate is not
    /// checked yet.
    pub usmc: Option<UnidentifiedSenderMessageContent>,
    /// The inner 1:1 message, decrypted on the helper's copy of the session.
    pub decrypted: Option<Decrypted>,
}

/// A 1:1 message decrypted ahead, and the session record after it.
pub(crate) struct Decrypted {
    /// The session's address, as the stores key it.
    pub address: Arc<str>,
    /// How many of this sender's messages the helper had decrypted on its copy
    /// before this one.
    place: u32,
    pub plaintext: Zeroizing<Vec<u8>>,
    /// The session record after this message, when it is the sender's last
    /// in its chunk (see the module's notes); taken by the account thread
    /// when it keeps the result.
    pub record: Option<SessionRecord>,
    /// Whether the session after this message still runs the post-quantum
    /// ratchet.
    pub post_quantum: bool,
    /// The sender's identity key as the session names it: the account thread
    /// checks it exactly as libsignal would after decrypting.
    pub identity: IdentityKey,
}

enum FromHelper {
    /// Envelopes from the given index on, in order.
    Opened(usize, Vec<Opened>),
    /// The helper meets this sender for the first time in the batch.
    WantSession(String),
}

/// What the account thread is done with, sent back to the helper to be freed
/// where it was allocated.
#[derive(Default)]
struct Leftovers {
    /// Session records the helper made, replaced since.
    records: Vec<SessionRecord>,
    /// Envelopes' results, once received.
    opened: Vec<Opened>,
    /// Chunks of results, emptied.
    chunks: Vec<Vec<Opened>>,
}

/// Envelopes received before their leftovers are sent back: one send per
/// this many.
const LEFTOVERS_PER_SEND: usize = 4 * CHUNK;

/// The account thread's end.
pub(crate) struct Ahead {
    from_helper: Receiver<FromHelper>,
    /// Results received and not taken yet, and the index of the first.
    ready: std::collections::VecDeque<Opened>,
    next: usize,
    sessions: Sender<Option<SessionRecord>>,
    /// For each session handed to the helper: how many of its results the
    /// account thread has taken since, with nothing else changing it. A sender
    /// missing here is off the helper's chain for the rest of the batch.
    chains: HashMap<String, u32>,
    out_of_step: bool,
    /// What the helper made and this thread is done with, gathered and sent
    /// back to be freed there (see [`Ahead::discard`]).
    leftovers: Leftovers,
    discarded: Sender<Leftovers>,
}

impl Ahead {
    /// Starts the helper on `envelopes`; `None` if the system will not give
    /// a thread (the batch then goes on without one).
    /// Its chunks of results end at every multiple of `batch_len` envelopes.
    pub(crate) fn start<'scope, 'env>(
        scope: &'scope Scope<'scope, 'env>,
        envelopes: &'env [Inbound<'env>],
        (identity, registration_id): (IdentityKeyPair, u32),
        batch_len: usize,
    ) -> Option<Self> {
        let (to_main, from_helper) = mpsc::sync_channel(CHUNKS_IN_FLIGHT);
        let (sessions, from_main) = mpsc::channel();
        let (discarded, to_free) = mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("rankfile-decrypt-ahead".into())
            .spawn_scoped(scope, move || {
                let helper = Helper {
                    identity,
                    registration_id,
                    to_main,
                    from_main,
                    to_free,
                    chunk: Vec::with_capacity(CHUNK),
                    spare_chunks: Vec::new(),
                    batch_len: batch_len.max(1),
                    unrecorded: Vec::new(),
                    handed: 0,
                    chains: HashMap::new(),
                    addresses: HashMap::new(),
                };
                helper.run(envelopes);
            });
        if let Err(e) = spawned {
            tracing::warn!("no thread to decrypt ahead: {e}");
            return None;
        }
        Some(Ahead {
            from_helper,
            ready: std::collections::VecDeque::new(),
            next: 0,
            sessions,
            chains: HashMap::new(),
            out_of_step: false,
            leftovers: Leftovers::default(),
            discarded,
        })
    }

    /// Drops what the helper made on the helper thread: session records and
    /// what an envelope's results still hold once it is received. Freeing one
    /// thread's allocations on another makes both wait on glibc's arena
    /// lock; measured, catch-up took about 10% longer when the records were
    /// freed here.
    pub(crate) fn discard(&mut self, records: Vec<SessionRecord>, opened: Opened) {
        self.leftovers.records.extend(records);
        self.leftovers.opened.push(opened);
        if self.leftovers.opened.len() >= LEFTOVERS_PER_SEND {
            self.send_leftovers();
        }
    }

    fn send_leftovers(&mut self) {
        let leftovers = std::mem::take(&mut self.leftovers);
        // A helper that has stopped leaves them to be dropped here.
        let _ = self.discarded.send(leftovers);
    }

    /// What the helper made of envelope `index`, taken in batch order. While
    /// waiting, answers the helper's requests for sessions with `session`:
    /// the record as envelope `index` finds it.
    pub(crate) fn take(
        &mut self,
        index: usize,
        session: &mut dyn FnMut(&str) -> Result<Option<SessionRecord>>,
    ) -> Result<Opened> {
        if self.out_of_step {
            return Ok(Opened::default());
        }
        loop {
            if index == self.next {
                if let Some(mut opened) = self.ready.pop_front() {
                    self.next += 1;
                    let current = opened
                        .decrypted
                        .as_ref()
                        .is_some_and(|d| self.chains.get(&*d.address) == Some(&d.place));
                    if !current {
                        opened.decrypted = None;
                    }
                    return Ok(opened);
                }
            }
            match self.from_helper.recv() {
                Ok(FromHelper::Opened(first, mut opened))
                    if index == self.next && first == self.next + self.ready.len() =>
                {
                    self.ready.extend(opened.drain(..));
                    self.leftovers.chunks.push(opened);
                }
                Ok(FromHelper::WantSession(key)) => {
                    let record = session(&key)?;
                    self.chains.insert(key, 0);
                    // A helper that has stopped needs no answer.
                    let _ = self.sessions.send(record);
                }
                // The helper sends every index in order, so this does not
                // happen; if it ever did, the rest of the batch goes without.
                Ok(FromHelper::Opened(..)) | Err(_) => {
                    self.out_of_step = true;
                    return Ok(Opened::default());
                }
            }
        }
    }

    /// After an envelope: `adopted` is the session whose result from the helper
    /// the envelope took, and whether the envelope was kept; `written` every
    /// session its committed writes changed. A result taken and kept moves
    /// that chain on; any other change, or a result taken by an envelope that
    /// failed, takes the session off the helper's chain.
    pub(crate) fn settle(&mut self, adopted: Option<(&str, bool)>, written: &[String]) {
        for key in written {
            if adopted.is_none_or(|(a, _)| a != key) {
                self.chains.remove(key);
            }
        }
        match adopted {
            Some((key, true)) => {
                if let Some(place) = self.chains.get_mut(key) {
                    *place += 1;
                }
            }
            Some((key, false)) => {
                self.chains.remove(key);
            }
            None => {}
        }
    }
}

impl Drop for Ahead {
    fn drop(&mut self) {
        self.send_leftovers();
    }
}

/// The helper thread's state.
struct Helper {
    identity: IdentityKeyPair,
    registration_id: u32,
    to_main: SyncSender<FromHelper>,
    from_main: Receiver<Option<SessionRecord>>,
    to_free: Receiver<Leftovers>,
    /// Results not handed over yet, and the index of the first of them.
    chunk: Vec<Opened>,
    /// Chunks the account thread emptied and sent back, to be filled again.
    spare_chunks: Vec<Vec<Opened>>,
    /// Chunks end at every multiple of this many envelopes.
    batch_len: usize,
    /// Sessions whose last result in the chunk has no record yet, and where
    /// that result is in the chunk.
    unrecorded: Vec<(Arc<str>, usize)>,
    handed: usize,
    /// Its copy of each sender's session (`None`: the account thread has
    /// none, or it is with libsignal), and how many messages it has
    /// decrypted on it.
    chains: HashMap<Arc<str>, Option<(SessionRecord, u32)>>,
    /// Each sender device's libsignal address and the text the stores key it
    /// by, made once.
    addresses: HashMap<(AccountId, DeviceId), (ProtocolAddress, Arc<str>)>,
}

impl Helper {
    fn run(mut self, envelopes: &[Inbound<'_>]) {
        for inbound in envelopes {
            while let Ok(leftovers) = self.to_free.try_recv() {
                self.take_back(leftovers);
            }
            let Some(opened) = self.open(*inbound) else {
                return;
            };
            // The account thread may need a session's record for an envelope
            // not decrypted here: the chunk ends before it, with the records.
            if opened.decrypted.is_none() && !self.unrecorded.is_empty() && !self.send_chunk() {
                return;
            }
            self.chunk.push(opened);
            let received = self.handed + self.chunk.len();
            if (self.chunk.len() == CHUNK || received % self.batch_len == 0) && !self.send_chunk() {
                return;
            }
        }
        if !self.send_chunk() {
            return;
        }
        // Nothing more to send: let go of the account thread (so it can never
        // wait on this one), then free what it sends back until it is done.
        drop(self.to_main);
        for leftovers in self.to_free.iter() {
            drop(leftovers);
        }
    }

    /// Frees what the account thread is done with, keeping the emptied chunks
    /// (a chunk of results is 16 KiB) to fill again.
    fn take_back(&mut self, leftovers: Leftovers) {
        let Leftovers {
            records,
            opened,
            chunks,
        } = leftovers;
        drop(records);
        drop(opened);
        for chunk in chunks {
            if chunk.is_empty() && self.spare_chunks.len() < CHUNKS_IN_FLIGHT {
                self.spare_chunks.push(chunk);
            }
        }
    }

    /// Hands the results gathered so far to the account thread; `false` when
    /// it has gone.
    fn send_chunk(&mut self) -> bool {
        if self.chunk.is_empty() {
            return true;
        }
        // Each session's last result in the chunk carries the record after it.
        for (key, index) in self.unrecorded.drain(..) {
            let record = match self.chains.get(&key) {
                Some(Some((record, _))) => record,
                _ => continue,
            };
            if let Some(decrypted) = self.chunk.get_mut(index).and_then(|o| o.decrypted.as_mut()) {
                decrypted.record = Some(record.clone());
            }
        }
        let next = self
            .spare_chunks
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(CHUNK));
        let results = std::mem::replace(&mut self.chunk, next);
        let first = self.handed;
        self.handed += results.len();
        self.to_main
            .send(FromHelper::Opened(first, results))
            .is_ok()
    }

    /// What can be done ahead for one envelope; `None` when the account
    /// thread has gone.
    fn open(&mut self, inbound: Inbound<'_>) -> Option<Opened> {
        let mut opened = Opened::default();
        match inbound {
            Inbound::Envelope(b) if b.len() <= MAX_ENVELOPE_LEN => {
                let parsed = parse_envelope(b);
                if let Ok((_, p)) = &parsed {
                    if let Inner::Signal(message) = &p.ciphertext {
                        opened.decrypted = self.decrypt(&p.sender, p.device, message)?;
                    }
                }
                opened.identified = Some(parsed);
            }
            Inbound::Sealed(b) | Inbound::Delivered { sealed: b, .. }
                if b.len() <= MAX_ENVELOPE_LEN =>
            {
                let Ok(usmc) = sealed::open(&self.scratch(None), b) else {
                    return Some(opened);
                };
                if let Some((sender, device, message)) = sealed_inner(&usmc) {
                    opened.decrypted = self.decrypt(&sender, device, &message)?;
                }
                opened.usmc = Some(usmc);
            }
            _ => {}
        }
        Some(opened)
    }

    /// Decrypts a 1:1 message on the helper's copy of its session; `None` when
    /// the account thread has gone.
    fn decrypt(
        &mut self,
        sender: &AccountId,
        device: DeviceId,
        message: &SignalMessage,
    ) -> Option<Option<Decrypted>> {
        let key = Arc::clone(
            &self
                .addresses
                .entry((*sender, device))
                .or_insert_with(|| {
                    let addr = address(sender, device);
                    let key = Arc::from(addr.to_string());
                    (addr, key)
                })
                .1,
        );
        if !self.chains.contains_key(&key) {
            // The account thread answers once it has taken every result before
            // this envelope: hand them over first.
            if !self.send_chunk()
                || self
                    .to_main
                    .send(FromHelper::WantSession(key.to_string()))
                    .is_err()
            {
                return None;
            }
            let record = self.from_main.recv().ok()?;
            self.chains.insert(Arc::clone(&key), record.map(|r| (r, 0)));
        }
        // Taken out for libsignal: put back only if the message decrypts.
        let Some((record, place)) = self.chains.get_mut(&key).and_then(Option::take) else {
            // The account thread has no session with this sender.
            return Some(None);
        };
        let addr = &self.addresses.get(&(*sender, device))?.0;
        let mut sessions = self.scratch(Some(record));
        let mut identities = self.scratch(None);
        let decrypted = futures::executor::block_on(message_decrypt_signal(
            message,
            addr,
            &mut sessions,
            &mut identities,
            &mut rand::rng(),
        ));
        // A message that does not decrypt leaves the session as it was on the
        // account thread, which will meet the same error itself. Here the copy
        // went to libsignal, so the next message from this sender asks for the
        // session afresh, as that message will find it.
        let (Ok(plaintext), Some(after), Some(identity)) =
            (decrypted, sessions.stored, identities.their_identity)
        else {
            // The record after this sender's last result in the chunk went
            // with the copy: that result goes without it.
            self.chains.remove(&key);
            self.unrecorded.retain(|(k, _)| *k != key);
            return Some(None);
        };
        // The result's place in the chunk: it is pushed next.
        let index = self.chunk.len();
        match self.unrecorded.iter_mut().find(|(k, _)| *k == key) {
            Some((_, last)) => *last = index,
            None => self.unrecorded.push((Arc::clone(&key), index)),
        }
        let decrypted = Decrypted {
            address: Arc::clone(&key),
            place,
            plaintext: Zeroizing::new(plaintext),
            record: None,
            post_quantum: crate::session::has_post_quantum_ratchet(&after),
            identity,
        };
        if let Some(slot) = self.chains.get_mut(&key) {
            *slot = Some((after, place + 1));
        }
        Some(Some(decrypted))
    }

    fn scratch(&self, record: Option<SessionRecord>) -> Scratch {
        Scratch::new(self.identity, self.registration_id, record)
    }
}

/// A sealed envelope's inner 1:1 message on an existing session, with the
/// sender its certificate names (checked later, on the account thread).
fn sealed_inner(
    usmc: &UnidentifiedSenderMessageContent,
) -> Option<(AccountId, DeviceId, SignalMessage)> {
    if usmc.msg_type().ok()? != CiphertextMessageType::Whisper {
        return None;
    }
    let cert = usmc.sender().ok()?;
    let sender = AccountId::from_identity_key(&IdentityKey::new(cert.key().ok()?));
    let device = cert.sender_device_id().ok()?;
    let message = SignalMessage::try_from(usmc.contents().ok()?).ok()?;
    Some((sender, device, message))
}

/// The stores libsignal decrypts with on the helper: one session record, and
/// an identity store that records the sender's key instead of judging it (the
/// account thread judges it before it keeps anything).
struct Scratch {
    identity: IdentityKeyPair,
    registration_id: u32,
    record: std::cell::Cell<Option<SessionRecord>>,
    /// What libsignal stored: the session after a message that decrypted.
    stored: Option<SessionRecord>,
    their_identity: Option<IdentityKey>,
}

impl Scratch {
    fn new(identity: IdentityKeyPair, registration_id: u32, record: Option<SessionRecord>) -> Self {
        Scratch {
            identity,
            registration_id,
            record: std::cell::Cell::new(record),
            stored: None,
            their_identity: None,
        }
    }
}

#[async_trait(?Send)]
impl SessionStore for Scratch {
    async fn load_session(
        &self,
        _address: &ProtocolAddress,
    ) -> std::result::Result<Option<SessionRecord>, SignalProtocolError> {
        // Loaded once per decrypt: handed over, not copied.
        Ok(self.record.take())
    }

    async fn store_session(
        &mut self,
        _address: &ProtocolAddress,
        record: &SessionRecord,
    ) -> std::result::Result<(), SignalProtocolError> {
        self.stored = Some(record.clone());
        Ok(())
    }
}

#[async_trait(?Send)]
impl IdentityKeyStore for Scratch {
    async fn get_identity_key_pair(
        &self,
    ) -> std::result::Result<IdentityKeyPair, SignalProtocolError> {
        Ok(self.identity)
    }

    async fn get_local_registration_id(&self) -> std::result::Result<u32, SignalProtocolError> {
        Ok(self.registration_id)
    }

    async fn save_identity(
        &mut self,
        _address: &ProtocolAddress,
        identity: &IdentityKey,
    ) -> std::result::Result<IdentityChange, SignalProtocolError> {
        self.their_identity = Some(*identity);
        Ok(IdentityChange::NewOrUnchanged)
    }

    async fn is_trusted_identity(
        &self,
        _address: &ProtocolAddress,
        _identity: &IdentityKey,
        _direction: Direction,
    ) -> std::result::Result<bool, SignalProtocolError> {
        Ok(true)
    }

    async fn get_identity(
        &self,
        _address: &ProtocolAddress,
    ) -> std::result::Result<Option<IdentityKey>, SignalProtocolError> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_ahead(f: impl FnOnce(&mut Ahead)) {
        let identity = IdentityKeyPair::generate(&mut rand::rng());
        let envelopes: Vec<Inbound<'_>> = Vec::new();
        std::thread::scope(|scope| {
            let mut ahead = Ahead::start(scope, &envelopes, (identity, 1), 16).expect("a thread");
            f(&mut ahead);
        });
    }

    #[test]
    fn a_chain_moves_on_only_with_the_results_taken_from_it() {
        with_ahead(|ahead| {
            let (a, b, c) = ("a".to_string(), "b".to_string(), "c".to_string());
            for key in [&a, &b, &c] {
                ahead.chains.insert(key.clone(), 0);
            }
            // Results adopted and kept, with the record or without: their
            // chains move on.
            ahead.settle(Some(("a", true)), std::slice::from_ref(&a));
            ahead.settle(Some(("a", true)), &[]);
            assert_eq!(ahead.chains.get("a"), Some(&2));
            // Written by something else (a first message, a decrypt of its
            // own): off the chain.
            ahead.settle(None, std::slice::from_ref(&b));
            assert_eq!(ahead.chains.get("b"), None);
            // Adopted, but the envelope failed later and its writes were
            // dropped: off the chain.
            ahead.settle(Some(("c", false)), &[]);
            assert_eq!(ahead.chains.get("c"), None);
            // An envelope that wrote nothing leaves the chains alone.
            ahead.settle(None, &[]);
            assert_eq!(ahead.chains.get("a"), Some(&2));
        });
    }

    #[test]
    fn asking_past_the_helpers_last_result_does_not_wait() {
        with_ahead(|ahead| {
            // Nothing was sent: the helper has finished, and asking for a
            // result it never made gives nothing rather than waiting.
            let mut no_session = |_: &str| -> Result<Option<SessionRecord>> { Ok(None) };
            let opened = ahead.take(0, &mut no_session).expect("take");
            assert!(opened.decrypted.is_none() && opened.usmc.is_none());
            assert!(opened.identified.is_none());
        });
    }
}
