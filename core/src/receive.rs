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

use std::collections::HashSet;

use libsignal_protocol::{
    message_decrypt_prekey, message_decrypt_signal, DeviceId, IdentityKey, PreKeySignalMessage,
    SignalMessage, SignalProtocolError,
};
use prost::Message as _;
use rankfile_proto::v1 as pb;
use rusqlite::{params, Transaction};

use crate::account::Account;
use crate::account_id::AccountId;
use crate::clock::now_ms;
use crate::contact;
use crate::error::{Error, Result};
use crate::event::Event;
use crate::message::{self, NewMessage, ENVELOPE_ID_LEN};
use crate::session;
use crate::store::signal::{address, Pending, SignalCache, SignalStores};

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
    /// Seen before (redelivered or replayed): nothing changed.
    Duplicate,
}

/// A parsed envelope, before decryption.
struct Parsed {
    id: [u8; ENVELOPE_ID_LEN],
    sender: AccountId,
    device: DeviceId,
    ciphertext: Ciphertext,
}

enum Ciphertext {
    PreKey(PreKeySignalMessage),
    Signal(SignalMessage),
}

fn parse(bytes: &[u8]) -> Result<Parsed> {
    if bytes.len() > MAX_ENVELOPE_LEN {
        return Err(Error::InvalidEnvelope("too large"));
    }
    let e = pb::Envelope::decode(bytes).map_err(|_| Error::InvalidEnvelope("not an envelope"))?;
    let id: [u8; ENVELOPE_ID_LEN] = e
        .id
        .as_slice()
        .try_into()
        .map_err(|_| Error::InvalidEnvelope("bad envelope id"))?;
    let sender = AccountId::from_bytes(&e.sender_account_id)
        .map_err(|_| Error::InvalidEnvelope("bad sender"))?;
    let device =
        DeviceId::try_from(e.sender_device_id).map_err(|_| Error::InvalidEnvelope("bad device"))?;
    let ciphertext = match pb::envelope::Kind::try_from(e.kind) {
        Ok(pb::envelope::Kind::PrekeyMessage) => Ciphertext::PreKey(
            PreKeySignalMessage::try_from(e.ciphertext.as_slice())
                .map_err(|_| Error::DecryptionFailed("malformed prekey message"))?,
        ),
        Ok(pb::envelope::Kind::SignalMessage) => Ciphertext::Signal(
            SignalMessage::try_from(e.ciphertext.as_slice())
                .map_err(|_| Error::DecryptionFailed("malformed message"))?,
        ),
        _ => return Err(Error::InvalidEnvelope("unknown kind")),
    };
    Ok(Parsed {
        id,
        sender,
        device,
        ciphertext,
    })
}

impl Account {
    /// Receives one envelope in its own transaction.
    pub fn receive(&mut self, envelope: &[u8]) -> Result<Received> {
        let mut results = self.receive_batch(&[envelope])?;
        results.pop().unwrap_or(Err(Error::InvalidEnvelope("empty batch")))
    }

    /// Receives many envelopes in one transaction (one fsync). The outer error
    /// is a storage failure: nothing was committed. Otherwise each envelope has
    /// its own outcome; a failed one left no trace.
    pub fn receive_batch(&mut self, envelopes: &[&[u8]]) -> Result<Vec<Result<Received>>> {
        let me = self.id();
        let tx = self.store.write()?;
        let mut pending = Pending::default();
        let mut seen = HashSet::new();
        let mut events = Vec::new();
        let mut results = Vec::with_capacity(envelopes.len());
        for bytes in envelopes {
            let outcome = receive_one(
                &tx,
                &self.cache,
                &mut pending,
                &me,
                bytes,
                &mut seen,
                &mut events,
            );
            match outcome {
                // Storage trouble may have left part of this envelope in the
                // transaction: give up the whole batch (dropping `tx` rolls back).
                Err(e @ (Error::Storage(_) | Error::Io(_))) => return Err(e),
                other => results.push(other),
            }
        }
        pending.flush(&tx)?;
        tx.commit()?;
        self.cache.absorb(pending);
        self.events.extend(events);
        Ok(results)
    }
}

fn receive_one(
    tx: &Transaction<'_>,
    cache: &SignalCache,
    pending: &mut Pending,
    me: &AccountId,
    bytes: &[u8],
    seen: &mut HashSet<[u8; ENVELOPE_ID_LEN]>,
    events: &mut Vec<Event>,
) -> Result<Received> {
    let env = parse(bytes)?;
    if env.sender == *me {
        return Err(Error::FromSelf);
    }
    if seen.contains(&env.id) || already_received(tx, &env.id)? {
        return Ok(Received::Duplicate);
    }

    let addr = address(&env.sender, env.device);
    let stores = SignalStores::new(tx, cache, pending);
    let decrypted = futures::executor::block_on(async {
        match &env.ciphertext {
            Ciphertext::PreKey(m) => {
                message_decrypt_prekey(
                    m,
                    &addr,
                    &mut stores.view(),
                    &mut stores.view(),
                    &mut stores.view(),
                    &stores.view(),
                    &mut stores.view(),
                    &mut rand::rng(),
                )
                .await
            }
            Ciphertext::Signal(m) => {
                message_decrypt_signal(
                    m,
                    &addr,
                    &mut stores.view(),
                    &mut stores.view(),
                    &mut rand::rng(),
                )
                .await
            }
        }
    });
    let plaintext = match decrypted {
        Ok(p) => zeroize::Zeroizing::new(p),
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
    let record = stores
        .session(&addr.to_string())?
        .ok_or(Error::NoSession(env.sender))?;
    if !session::has_post_quantum_ratchet(&record) {
        return Err(Error::PostQuantumRequired(env.sender));
    }
    let identity_bytes = record
        .remote_identity_key_bytes()?
        .ok_or(Error::NoSession(env.sender))?;
    let identity = IdentityKey::decode(&identity_bytes)?;
    let content = message::decode_content(&plaintext)?;

    // Everything checked: from here on the envelope's effects are written.
    stores.commit_op()?;
    tx.prepare_cached("INSERT INTO received_envelopes (envelope_id, received_at) VALUES (?1, ?2)")?
        .execute(params![&env.id[..], now_ms()])?;
    seen.insert(env.id);

    let held = decide_contact(tx, &env.sender, u32::from(env.device), &identity, content.replaces, events)?;
    let message_id = message::insert(
        tx,
        &NewMessage {
            envelope_id: &env.id,
            peer: &env.sender,
            outgoing: false,
            body: &content.body,
            sent_at_ms: content.sent_at_ms,
            stored_at_ms: now_ms(),
            held,
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

fn already_received(tx: &Transaction<'_>, id: &[u8; ENVELOPE_ID_LEN]) -> Result<bool> {
    Ok(tx
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM received_envelopes WHERE envelope_id = ?1)")?
        .query_row([&id[..]], |r| r.get(0))?)
}

/// Files the sender among the contacts and says whether its message is held.
fn decide_contact(
    tx: &Transaction<'_>,
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
