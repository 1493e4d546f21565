//! libsignal's stores on top of one SQLite transaction.
//!
//! libsignal drives its stores through async traits whose futures are not
//! `Send` and which know nothing of transactions. Here every store reads and
//! writes inside the caller's [`rusqlite::Transaction`], synchronously, so the
//! futures finish on their first poll and everything one operation changes
//! commits or rolls back together.
//!
//! Three layers stand in front of the database, read in this order:
//! - `staged`: writes of the operation under way (one envelope, one send). On
//!   failure they are dropped and nothing of the operation remains.
//! - `pending`: session and identity records written by earlier operations of
//!   the same transaction (a batch of envelopes); written to the database once,
//!   just before the commit, however many envelopes touched them.
//! - [`SignalCache`]: committed session and identity records, so the hot path
//!   does not deserialize them from SQLCipher pages on every message.
//!
//! Everything else (prekey removal, last-resort replay records, sender keys)
//! goes to the database when the operation succeeds, inside the transaction.

use std::cell::RefCell;
use std::collections::HashMap;

use async_trait::async_trait;
use libsignal_protocol::{
    Direction, GenericSignedPreKey, IdentityChange, IdentityKey, IdentityKeyPair, IdentityKeyStore,
    KyberPreKeyId, KyberPreKeyRecord, KyberPreKeyStore, PreKeyId, PreKeyRecord, PreKeyStore,
    ProtocolAddress, PublicKey, SenderKeyRecord, SenderKeyStore, SessionRecord, SessionStore,
    SignalProtocolError, SignedPreKeyId, SignedPreKeyRecord, SignedPreKeyStore,
};
use rusqlite::{params, OptionalExtension};
use uuid::Uuid;

use super::WriteTransaction;
use crate::account_id::AccountId;
use crate::error::{CallbackError, Error};

type SignalResult<T> = Result<T, SignalProtocolError>;

/// Most session records kept decoded in memory; past this the cache starts over.
const SESSION_CACHE_LIMIT: usize = 4096;
/// Most sender certificates remembered as checked; past this the set starts over.
const CERTIFICATE_CACHE_LIMIT: usize = 1024;

/// A sender certificate's fingerprint, with the trust root it was checked
/// against: SHA-256 over both.
pub(crate) type CertificateDigest = [u8; 32];

const SESSION_SQL: &str = "SELECT record FROM sessions WHERE address = ?1";
const IDENTITY_SQL: &str = "SELECT identity_key FROM identities WHERE address = ?1";
/// Rewrites a record in place (the row keeps its rowid, so the address index
/// is written only for a new address).
pub(crate) const PUT_SESSION_SQL: &str = "INSERT INTO sessions (address, record) VALUES (?1, ?2)
     ON CONFLICT (address) DO UPDATE SET record = excluded.record";
const PUT_IDENTITY_SQL: &str =
    "INSERT OR REPLACE INTO identities (address, identity_key) VALUES (?1, ?2)";
/// The statements every received 1:1 message may run here.
pub(crate) const HOT_SQL: [&str; 4] =
    [SESSION_SQL, IDENTITY_SQL, PUT_SESSION_SQL, PUT_IDENTITY_SQL];

/// Committed hot state, kept across transactions by the account.
///
/// Records read from the database are cached too: sessions and identities are
/// written only by [`Pending::flush`] just before a commit, so whatever a read
/// finds in the database is committed state.
pub(crate) struct SignalCache {
    identity: IdentityKeyPair,
    registration_id: u32,
    sessions: RefCell<HashMap<String, SessionRecord>>,
    identities: RefCell<HashMap<String, IdentityKey>>,
    /// Sender certificates whose signatures already checked out, with when
    /// each expires (ms since the epoch). A certificate is the same bytes on
    /// every message until its sender renews it, so the two signature checks
    /// are done once per certificate, not once per message.
    certificates: RefCell<HashMap<CertificateDigest, u64>>,
}

impl SignalCache {
    pub(crate) fn new(identity: IdentityKeyPair, registration_id: u32) -> Self {
        SignalCache {
            identity,
            registration_id,
            sessions: RefCell::new(HashMap::new()),
            identities: RefCell::new(HashMap::new()),
            certificates: RefCell::new(HashMap::new()),
        }
    }

    /// The account's identity key pair and registration ID.
    pub(crate) fn local_identity(&self) -> (IdentityKeyPair, u32) {
        (self.identity, self.registration_id)
    }

    /// When the certificate with this digest expires, if its signatures were
    /// checked before.
    pub(crate) fn checked_certificate(&self, digest: &CertificateDigest) -> Option<u64> {
        self.certificates.borrow().get(digest).copied()
    }

    #[cfg(test)]
    pub(crate) fn certificates_remembered(&self) -> usize {
        self.certificates.borrow().len()
    }

    /// Remembers a certificate whose signatures checked out.
    pub(crate) fn remember_certificate(&self, digest: CertificateDigest, expires_ms: u64) {
        let mut certificates = self.certificates.borrow_mut();
        if certificates.len() >= CERTIFICATE_CACHE_LIMIT {
            certificates.clear();
        }
        certificates.insert(digest, expires_ms);
    }

    /// Takes in what a committed transaction wrote.
    pub(crate) fn absorb(&mut self, pending: Pending) {
        let sessions = self.sessions.get_mut();
        if sessions.len() + pending.sessions.len() > SESSION_CACHE_LIMIT {
            sessions.clear();
        }
        sessions.extend(pending.sessions);
        let identities = self.identities.get_mut();
        if identities.len() + pending.identities.len() > SESSION_CACHE_LIMIT {
            identities.clear();
        }
        identities.extend(pending.identities);
    }
}

/// Session and identity records written by the operations of one transaction
/// that have succeeded so far.
#[derive(Default)]
pub(crate) struct Pending {
    sessions: HashMap<String, SessionRecord>,
    identities: HashMap<String, IdentityKey>,
    /// Sessions the operations since the last [`Pending::take_written`] wrote.
    written: Vec<String>,
    /// Records those writes replaced, for the caller to drop where it likes.
    replaced: Vec<SessionRecord>,
}

impl Pending {
    /// The sessions written since the last call, in no particular order, and
    /// the records they replaced.
    pub(crate) fn take_written(&mut self) -> (Vec<String>, Vec<SessionRecord>) {
        (
            std::mem::take(&mut self.written),
            std::mem::take(&mut self.replaced),
        )
    }

    /// Writes the records to the database. Call once, just before the commit.
    pub(crate) fn flush(&self, tx: &WriteTransaction<'_>) -> Result<(), Error> {
        let mut put_session = tx.prepare_cached(PUT_SESSION_SQL)?;
        for (address, record) in &self.sessions {
            put_session.execute(params![address, record.serialize()?])?;
        }
        let mut put_identity = tx.prepare_cached(PUT_IDENTITY_SQL)?;
        for (address, key) in &self.identities {
            put_identity.execute(params![address, &key.serialize()[..]])?;
        }
        Ok(())
    }
}

/// Writes of one operation, not yet part of the transaction.
#[derive(Default)]
struct Staged {
    sessions: HashMap<String, SessionRecord>,
    identities: HashMap<String, IdentityKey>,
    removed_prekeys: Vec<u32>,
    removed_kyber: Vec<u32>,
    last_resort_uses: Vec<(u32, u32, Vec<u8>)>,
    prekeys: Vec<(u32, PreKeyRecord)>,
    signed_prekeys: Vec<(u32, SignedPreKeyRecord)>,
    kyber_prekeys: Vec<(u32, KyberPreKeyRecord)>,
    sender_keys: HashMap<(String, Uuid), SenderKeyRecord>,
}

/// The libsignal stores for one operation inside a transaction.
///
/// libsignal takes its stores as several `&mut dyn` at once; they all share
/// this one state through [`View`]s, which is why the writes sit in `RefCell`s.
/// No borrow is held across an await point: every method is synchronous.
pub(crate) struct SignalStores<'t, 'c> {
    tx: &'t WriteTransaction<'c>,
    cache: &'t SignalCache,
    pending: &'t mut Pending,
    staged: RefCell<Staged>,
}

/// A handle on [`SignalStores`] that implements libsignal's store traits.
#[derive(Clone, Copy)]
pub(crate) struct View<'s, 't, 'c>(&'s SignalStores<'t, 'c>);

impl<'t> View<'_, 't, '_> {
    /// The account's committed hot state.
    pub(crate) fn cache(&self) -> &'t SignalCache {
        self.0.cache
    }
}

/// The address libsignal uses for an account's device.
pub(crate) fn address(
    account: &AccountId,
    device: libsignal_protocol::DeviceId,
) -> ProtocolAddress {
    ProtocolAddress::new(account.to_hex(), device)
}

pub(crate) fn storage_err(e: impl Into<Error>) -> SignalProtocolError {
    SignalProtocolError::ApplicationCallbackError("store", Box::new(CallbackError::from(e.into())))
}

impl<'t, 'c> SignalStores<'t, 'c> {
    pub(crate) fn new(
        tx: &'t WriteTransaction<'c>,
        cache: &'t SignalCache,
        pending: &'t mut Pending,
    ) -> Self {
        SignalStores {
            tx,
            cache,
            pending,
            staged: RefCell::new(Staged::default()),
        }
    }

    /// A handle to pass to libsignal as any of its stores.
    pub(crate) fn view(&self) -> View<'_, 't, 'c> {
        View(self)
    }

    /// The operation succeeded: make its writes part of the transaction.
    pub(crate) fn commit_op(self) -> Result<(), Error> {
        let SignalStores {
            tx,
            pending,
            staged,
            ..
        } = self;
        let staged = staged.into_inner();
        for (address, record) in staged.sessions {
            pending.written.push(address.clone());
            if let Some(old) = pending.sessions.insert(address, record) {
                pending.replaced.push(old);
            }
        }
        pending.identities.extend(staged.identities);
        for id in staged.removed_prekeys {
            tx.prepare_cached("DELETE FROM prekeys WHERE id = ?1")?
                .execute([id])?;
        }
        for id in staged.removed_kyber {
            tx.prepare_cached("DELETE FROM kyber_prekeys WHERE id = ?1 AND last_resort = 0")?
                .execute([id])?;
        }
        for (kyber, signed, base) in staged.last_resort_uses {
            tx.prepare_cached(
                "INSERT INTO kyber_last_resort_uses (kyber_id, signed_id, base_key) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![kyber, signed, base])?;
        }
        for (id, record) in staged.prekeys {
            tx.prepare_cached("INSERT OR REPLACE INTO prekeys (id, record) VALUES (?1, ?2)")?
                .execute(params![id, record.serialize()?])?;
        }
        for (id, record) in staged.signed_prekeys {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO signed_prekeys (id, record, created_at) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![id, record.serialize()?, crate::clock::now_ms()])?;
        }
        for (id, record) in staged.kyber_prekeys {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO kyber_prekeys (id, record, last_resort, created_at) VALUES (?1, ?2, 0, ?3)",
            )?
            .execute(params![id, record.serialize()?, crate::clock::now_ms()])?;
        }
        for ((address, distribution), record) in staged.sender_keys {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO sender_keys (address, distribution_id, record) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![address, &distribution.as_bytes()[..], record.serialize()?])?;
        }
        Ok(())
    }

    /// Stages `record` as the session for `address` (its key), as libsignal's
    /// `store_session` would, without copying it.
    pub(crate) fn stage_session(&self, address: String, record: SessionRecord) {
        self.staged.borrow_mut().sessions.insert(address, record);
    }

    /// The session record for `address` as this operation sees it.
    pub(crate) fn session(&self, address: &str) -> Result<Option<SessionRecord>, Error> {
        if let Some(r) = self.staged.borrow().sessions.get(address) {
            return Ok(Some(r.clone()));
        }
        if let Some(r) = self.pending.sessions.get(address) {
            return Ok(Some(r.clone()));
        }
        if let Some(r) = self.cache.sessions.borrow().get(address) {
            return Ok(Some(r.clone()));
        }
        let bytes: Option<Vec<u8>> = self
            .tx
            .prepare_cached(SESSION_SQL)?
            .query_row([address], |r| r.get(0))
            .optional()?;
        match bytes {
            Some(b) => {
                let record = SessionRecord::deserialize(&b)?;
                self.cache
                    .sessions
                    .borrow_mut()
                    .insert(address.to_string(), record.clone());
                Ok(Some(record))
            }
            None => Ok(None),
        }
    }

    /// Runs `f` on the session record for `address` as this operation sees it,
    /// without copying it.
    pub(crate) fn with_session<R>(
        &self,
        address: &str,
        f: impl FnOnce(&SessionRecord) -> R,
    ) -> Result<Option<R>, Error> {
        if let Some(r) = self.staged.borrow().sessions.get(address) {
            return Ok(Some(f(r)));
        }
        if let Some(r) = self.pending.sessions.get(address) {
            return Ok(Some(f(r)));
        }
        if let Some(r) = self.cache.sessions.borrow().get(address) {
            return Ok(Some(f(r)));
        }
        Ok(self.session(address)?.as_ref().map(f))
    }

    fn identity(&self, address: &str) -> Result<Option<IdentityKey>, Error> {
        if let Some(k) = self.staged.borrow().identities.get(address) {
            return Ok(Some(*k));
        }
        if let Some(k) = self.pending.identities.get(address) {
            return Ok(Some(*k));
        }
        if let Some(k) = self.cache.identities.borrow().get(address) {
            return Ok(Some(*k));
        }
        let bytes: Option<Vec<u8>> = self
            .tx
            .prepare_cached(IDENTITY_SQL)?
            .query_row([address], |r| r.get(0))
            .optional()?;
        match bytes {
            Some(b) => {
                let key = IdentityKey::decode(&b)?;
                self.cache
                    .identities
                    .borrow_mut()
                    .insert(address.to_string(), key);
                Ok(Some(key))
            }
            None => Ok(None),
        }
    }

    /// The identity check libsignal asks for: `identity` is the one recorded
    /// for the session keyed `key` (at `address`) or, with none recorded yet,
    /// the one its account ID was derived from. `true` when it is the one
    /// already recorded.
    fn check_identity(
        &self,
        key: &str,
        address: &ProtocolAddress,
        identity: &IdentityKey,
    ) -> Result<bool, Error> {
        // A key already recorded for this address passed the check below when
        // it was recorded: no need to hash it again on every message.
        let known = self.identity(key)?;
        if known.as_ref() == Some(identity) {
            return Ok(true);
        }
        let account = account_of(address)?;
        // The binding that stops a relay from swapping keys: the key must hash
        // to the account ID it is used for, whatever else we know.
        if !account.matches(identity) || known.is_some() {
            return Err(Error::IdentityMismatch(account));
        }
        Ok(false)
    }

    /// Records `identity` for the session keyed `key`.
    fn save_identity_key(
        &self,
        key: String,
        identity: &IdentityKey,
    ) -> Result<IdentityChange, Error> {
        match self.identity(&key)? {
            Some(k) if k == *identity => Ok(IdentityChange::NewOrUnchanged),
            other => {
                self.staged.borrow_mut().identities.insert(key, *identity);
                Ok(IdentityChange::from_changed(other.is_some()))
            }
        }
    }

    /// What libsignal does with the sender's identity key after decrypting a
    /// message, for the session keyed `key`: checks it, then records it.
    pub(crate) fn accept_identity(
        &self,
        key: &str,
        address: &ProtocolAddress,
        identity: &IdentityKey,
    ) -> Result<(), Error> {
        if !self.check_identity(key, address, identity)? {
            self.save_identity_key(key.to_string(), identity)?;
        }
        Ok(())
    }

    fn record_blob(&self, sql: &str, id: u32) -> Result<Option<Vec<u8>>, Error> {
        Ok(self
            .tx
            .prepare_cached(sql)?
            .query_row([id], |r| r.get(0))
            .optional()?)
    }
}

/// The account ID an address names, or a typed error for a malformed one.
fn account_of(address: &ProtocolAddress) -> Result<AccountId, Error> {
    AccountId::from_hex(address.name())
}

// libsignal's traits are `async_trait(?Send)`; ours complete synchronously.
#[async_trait(?Send)]
impl IdentityKeyStore for View<'_, '_, '_> {
    async fn get_identity_key_pair(&self) -> SignalResult<IdentityKeyPair> {
        Ok(self.0.cache.identity)
    }

    async fn get_local_registration_id(&self) -> SignalResult<u32> {
        Ok(self.0.cache.registration_id)
    }

    async fn save_identity(
        &mut self,
        address: &ProtocolAddress,
        identity: &IdentityKey,
    ) -> SignalResult<IdentityChange> {
        self.0
            .save_identity_key(address.to_string(), identity)
            .map_err(storage_err)
    }

    async fn is_trusted_identity(
        &self,
        address: &ProtocolAddress,
        identity: &IdentityKey,
        _direction: Direction,
    ) -> SignalResult<bool> {
        self.0
            .check_identity(&address.to_string(), address, identity)
            .map_err(storage_err)?;
        Ok(true)
    }

    async fn get_identity(&self, address: &ProtocolAddress) -> SignalResult<Option<IdentityKey>> {
        self.0.identity(&address.to_string()).map_err(storage_err)
    }
}

#[async_trait(?Send)]
impl SessionStore for View<'_, '_, '_> {
    async fn load_session(&self, address: &ProtocolAddress) -> SignalResult<Option<SessionRecord>> {
        self.0.session(&address.to_string()).map_err(storage_err)
    }

    async fn store_session(
        &mut self,
        address: &ProtocolAddress,
        record: &SessionRecord,
    ) -> SignalResult<()> {
        self.0
            .staged
            .borrow_mut()
            .sessions
            .insert(address.to_string(), record.clone());
        Ok(())
    }
}

#[async_trait(?Send)]
impl PreKeyStore for View<'_, '_, '_> {
    async fn get_pre_key(&self, prekey_id: PreKeyId) -> SignalResult<PreKeyRecord> {
        let id = u32::from(prekey_id);
        if self.0.staged.borrow().removed_prekeys.contains(&id) {
            return Err(SignalProtocolError::InvalidPreKeyId);
        }
        match self
            .0
            .record_blob("SELECT record FROM prekeys WHERE id = ?1", id)
            .map_err(storage_err)?
        {
            Some(b) => PreKeyRecord::deserialize(&b),
            None => Err(SignalProtocolError::InvalidPreKeyId),
        }
    }

    async fn save_pre_key(
        &mut self,
        prekey_id: PreKeyId,
        record: &PreKeyRecord,
    ) -> SignalResult<()> {
        self.0
            .staged
            .borrow_mut()
            .prekeys
            .push((prekey_id.into(), record.clone()));
        Ok(())
    }

    async fn remove_pre_key(&mut self, prekey_id: PreKeyId) -> SignalResult<()> {
        self.0
            .staged
            .borrow_mut()
            .removed_prekeys
            .push(prekey_id.into());
        Ok(())
    }
}

#[async_trait(?Send)]
impl SignedPreKeyStore for View<'_, '_, '_> {
    async fn get_signed_pre_key(&self, id: SignedPreKeyId) -> SignalResult<SignedPreKeyRecord> {
        match self
            .0
            .record_blob("SELECT record FROM signed_prekeys WHERE id = ?1", id.into())
            .map_err(storage_err)?
        {
            Some(b) => SignedPreKeyRecord::deserialize(&b),
            None => Err(SignalProtocolError::InvalidSignedPreKeyId),
        }
    }

    async fn save_signed_pre_key(
        &mut self,
        id: SignedPreKeyId,
        record: &SignedPreKeyRecord,
    ) -> SignalResult<()> {
        self.0
            .staged
            .borrow_mut()
            .signed_prekeys
            .push((id.into(), record.clone()));
        Ok(())
    }
}

#[async_trait(?Send)]
impl KyberPreKeyStore for View<'_, '_, '_> {
    async fn get_kyber_pre_key(&self, id: KyberPreKeyId) -> SignalResult<KyberPreKeyRecord> {
        let raw = u32::from(id);
        if self.0.staged.borrow().removed_kyber.contains(&raw) {
            return Err(SignalProtocolError::InvalidKyberPreKeyId);
        }
        match self
            .0
            .record_blob("SELECT record FROM kyber_prekeys WHERE id = ?1", raw)
            .map_err(storage_err)?
        {
            Some(b) => KyberPreKeyRecord::deserialize(&b),
            None => Err(SignalProtocolError::InvalidKyberPreKeyId),
        }
    }

    async fn save_kyber_pre_key(
        &mut self,
        id: KyberPreKeyId,
        record: &KyberPreKeyRecord,
    ) -> SignalResult<()> {
        self.0
            .staged
            .borrow_mut()
            .kyber_prekeys
            .push((id.into(), record.clone()));
        Ok(())
    }

    async fn mark_kyber_pre_key_used(
        &mut self,
        id: KyberPreKeyId,
        ec_prekey_id: SignedPreKeyId,
        base_key: &PublicKey,
    ) -> SignalResult<()> {
        let raw = u32::from(id);
        let last_resort: Option<bool> = self
            .0
            .tx
            .prepare_cached("SELECT last_resort FROM kyber_prekeys WHERE id = ?1")
            .and_then(|mut s| s.query_row([raw], |r| r.get(0)).optional())
            .map_err(storage_err)?;
        match last_resort {
            None => Err(SignalProtocolError::InvalidKyberPreKeyId),
            Some(false) => {
                self.0.staged.borrow_mut().removed_kyber.push(raw);
                Ok(())
            }
            Some(true) => {
                // A last-resort key may serve many sessions, but the same
                // (kyber, signed, base key) twice is a replayed first message.
                let signed = u32::from(ec_prekey_id);
                let base = base_key.serialize().to_vec();
                let seen_before: bool = self
                    .0
                    .tx
                    .prepare_cached(
                        "SELECT EXISTS (SELECT 1 FROM kyber_last_resort_uses
                         WHERE kyber_id = ?1 AND signed_id = ?2 AND base_key = ?3)",
                    )
                    .and_then(|mut s| s.query_row(params![raw, signed, base], |r| r.get(0)))
                    .map_err(storage_err)?;
                let staged_twice = self
                    .0
                    .staged
                    .borrow()
                    .last_resort_uses
                    .iter()
                    .any(|(k, s, b)| *k == raw && *s == signed && *b == base);
                if seen_before || staged_twice {
                    return Err(SignalProtocolError::InvalidMessage(
                        libsignal_protocol::CiphertextMessageType::PreKey,
                        "reused base key",
                    ));
                }
                self.0
                    .staged
                    .borrow_mut()
                    .last_resort_uses
                    .push((raw, signed, base));
                Ok(())
            }
        }
    }
}

#[async_trait(?Send)]
impl SenderKeyStore for View<'_, '_, '_> {
    async fn store_sender_key(
        &mut self,
        sender: &ProtocolAddress,
        distribution_id: Uuid,
        record: &SenderKeyRecord,
    ) -> SignalResult<()> {
        self.0
            .staged
            .borrow_mut()
            .sender_keys
            .insert((sender.to_string(), distribution_id), record.clone());
        Ok(())
    }

    async fn load_sender_key(
        &mut self,
        sender: &ProtocolAddress,
        distribution_id: Uuid,
    ) -> SignalResult<Option<SenderKeyRecord>> {
        let key = (sender.to_string(), distribution_id);
        if let Some(r) = self.0.staged.borrow().sender_keys.get(&key) {
            return Ok(Some(r.clone()));
        }
        let bytes: Option<Vec<u8>> = self
            .0
            .tx
            .prepare_cached(
                "SELECT record FROM sender_keys WHERE address = ?1 AND distribution_id = ?2",
            )
            .and_then(|mut s| {
                s.query_row(params![key.0, &distribution_id.as_bytes()[..]], |r| {
                    r.get(0)
                })
                .optional()
            })
            .map_err(storage_err)?;
        bytes.map(|b| SenderKeyRecord::deserialize(&b)).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{DatabaseKey, Store};

    /// Frames in a WAL file of 4 KiB pages (after its 32-byte header).
    fn wal_frames(wal: &std::path::Path) -> u64 {
        let len = std::fs::metadata(wal).map(|m| m.len()).unwrap_or(0);
        len.saturating_sub(32) / (4096 + 24)
    }

    /// A session record under SPQR is often 4.5 to 8.5 KB while a new key's
    /// chunks are in flight. Rewritten in place in a rowid table it takes two
    /// pages; kept in its primary key's b-tree alone (schema 12) it took three.
    #[test]
    fn a_six_kilobyte_session_record_is_rewritten_in_two_pages() {
        let dir = tempfile::tempdir().expect("dir");
        let mut store =
            Store::create(&dir.path().join("s.db"), &DatabaseKey::generate()).expect("store");
        let mut put = |seed: u32| {
            let record: Vec<u8> = (0..5_773u32).map(|i| (i * seed) as u8).collect();
            let tx = store.write().expect("tx");
            tx.execute(PUT_SESSION_SQL, rusqlite::params!["peer.1", record])
                .expect("put");
            tx.commit().expect("commit");
        };
        put(3);
        let wal = dir.path().join("s.db-wal");
        let before = wal_frames(&wal);
        put(5);
        assert_eq!(wal_frames(&wal) - before, 2);
    }
}
