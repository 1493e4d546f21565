//! [`Account`]: one device's account over its encrypted store — the handle
//! the rest of Rankfile (the transport, the bindings, the CLI) drives.
//!
//! An `Account` owns its database connection and is used from one thread at a
//! time: libsignal's futures are not `Send`, and SQLite has one writer. The
//! transport runs it on a dedicated thread and talks to it by messages.

use std::path::Path;

use prost::Message as _;

use crate::account_id::AccountId;
use crate::clock::Clock;
use crate::contact::{self, Contact};
use crate::error::{Error, Result};
use crate::event::Event;
use crate::identity::LocalIdentity;
use crate::message::{self, StoredMessage};
use crate::prekeys;
use crate::safety::SafetyNumber;
use crate::session;
use crate::settings;
use crate::store::signal::{Pending, SignalCache};
use crate::store::{DatabaseKey, Store};

/// One device's account.
pub struct Account {
    pub(crate) store: Store,
    pub(crate) cache: SignalCache,
    pub(crate) me: LocalIdentity,
    pub(crate) settings: settings::Cached,
    pub(crate) events: Vec<Event>,
    pub(crate) logs: crate::committee_store::LogCache,
    /// A received batch changed a committee's log since the transport last
    /// asked (it then opens sessions with new members).
    pub(crate) committees_changed: bool,
    /// A received batch stored channel text with a deletion time since the
    /// transport last asked (it then wakes the expiry purger).
    pub(crate) expiry_changed: bool,
    /// When the purge next has something to delete, once asked of the
    /// database (`Some(None)`: nothing); `None` after anything that may have
    /// stored something with a deletion time. Saves a query per batch.
    pub(crate) next_due: Option<Option<i64>>,
    /// When, by the account's clock, the alert upkeep last looked for alerts
    /// to purge (`alert/upkeep.rs`); `None` until the first look.
    pub(crate) alerts_checked_at: Option<i64>,
    /// When the search backlog last went into the index.
    pub(crate) search_indexed_at: Option<std::time::Instant>,
    /// Whether the search backlog may hold messages: from the open, and after
    /// a batch that stored or edited channel text, until it is indexed. Saves
    /// a query per batch (a search indexes whatever waits first anyway).
    pub(crate) search_backlog: bool,
    /// Whether the outbox may hold envelopes: from the open and after every
    /// commit that queued one, until a look finds it empty (a receive batch
    /// that queued nothing then costs no outbox read).
    pub(crate) outbox_may_hold: bool,
    /// One-time prekeys of each kind made per batch ([`AccountOptions`]).
    pub(crate) one_time_batch: u32,
    /// The time this account goes by ([`AccountOptions::clock`]).
    pub(crate) clock: Clock,
    /// Resends may be owed to members with whom a session is to be opened
    /// first (`repair`): from the open, and after a batch took a receipt in.
    pub(crate) resends_waiting: bool,
    /// Reading again the messages that waited for a committee (`repair`):
    /// the receive that does it does not start it again.
    pub(crate) reading_waiting: bool,
    /// When the repair state was last pruned (`repair`), by the clock.
    pub(crate) repair_pruned_at: Option<i64>,
    /// A committee changed since our access key was last checked against
    /// who holds it (`access_key`); true from the open.
    pub(crate) access_check_due: bool,
    /// Accounts may be owed our new access key (`access_key`); true from
    /// the open.
    pub(crate) access_owed_may_hold: bool,
    /// When we last asked a member for a committee's missing entries
    /// (`committee_sync`).
    pub(crate) asked: std::collections::HashMap<(crate::committee::CommitteeId, AccountId), i64>,
    /// Where the prune of old received envelope IDs stands.
    pub(crate) received_prune: crate::received::PruneState,
}

/// How an account's device is provisioned. The defaults are what a phone
/// uses; simulated phones sharing one machine by the thousand (benchmarks)
/// make fewer one-time prekeys and keep a smaller page cache.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AccountOptions {
    /// One-time EC and one-time Kyber prekeys made per batch (at creation and
    /// whenever the stock runs low). With 0, sessions are opened with the
    /// signed and last-resort Kyber prekeys only.
    pub one_time_prekeys: u32,
    /// The database connection's page cache, in KiB.
    pub page_cache_kib: u32,
    /// Checkpoint the WAL when it reaches this many KiB, and truncate it back
    /// to that size; 0 leaves SQLite's default (1,000 pages, never shrunk).
    pub wal_limit_kib: u32,
    /// The time the account goes by: the system's, or one a test moves.
    pub clock: Clock,
}

impl Default for AccountOptions {
    fn default() -> Self {
        AccountOptions {
            one_time_prekeys: prekeys::ONE_TIME_BATCH,
            page_cache_kib: crate::store::PAGE_CACHE_KIB,
            wal_limit_kib: 0,
            clock: Clock::system(),
        }
    }
}

impl AccountOptions {
    /// Options for a simulated phone: `one_time_prekeys` per batch, a page
    /// cache of `page_cache_kib` KiB and a WAL kept to `wal_limit_kib` KiB.
    pub fn simulated(one_time_prekeys: u32, page_cache_kib: u32, wal_limit_kib: u32) -> Self {
        AccountOptions {
            one_time_prekeys,
            page_cache_kib,
            wal_limit_kib,
            clock: Clock::system(),
        }
    }

    /// These options with `clock` as the account's time.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    fn tuning(&self) -> crate::store::Tuning {
        crate::store::Tuning {
            cache_kib: self.page_cache_kib,
            wal_kib: self.wal_limit_kib,
        }
    }
}

impl Account {
    /// Creates a new account in a new store at `path`: an identity key, a
    /// registration ID, and the first prekeys.
    pub fn create(path: &Path, key: &DatabaseKey) -> Result<Self> {
        Self::create_with(path, key, &AccountOptions::default())
    }

    /// [`Account::create`] with other provisioning options.
    pub fn create_with(path: &Path, key: &DatabaseKey, options: &AccountOptions) -> Result<Self> {
        let mut store = Store::create_tuned(path, key, options.tuning())?;
        let me = LocalIdentity::generate()?;
        {
            let tx = store.write()?;
            me.save(&tx)?;
            prekeys::initial(&tx, &me, options.one_time_prekeys)?;
            tx.commit()?;
        }
        Self::with(store, me, options)
    }

    /// Opens the account in the store at `path`.
    pub fn open(path: &Path, key: &DatabaseKey) -> Result<Self> {
        Self::open_with(path, key, &AccountOptions::default())
    }

    /// [`Account::open`] with other provisioning options (they are not
    /// stored: give the same ones at every open).
    pub fn open_with(path: &Path, key: &DatabaseKey, options: &AccountOptions) -> Result<Self> {
        let store = Store::open_tuned(path, key, options.tuning())?;
        let me = LocalIdentity::load(store.conn())?;
        let mut account = Self::with(store, me, options)?;
        // Channel messages whose timer ran out while the app was closed, and
        // alerts whose time is up.
        account.channel_upkeep(false);
        // A first step of the prune of old envelope IDs; the client's purger
        // does the rest of the pass.
        if let Err(e) = account.prune_received_envelopes() {
            tracing::warn!("pruning received envelope IDs failed: {e}");
        }
        Ok(account)
    }

    fn with(store: Store, me: LocalIdentity, options: &AccountOptions) -> Result<Self> {
        // Ready for the first message, which may be an alert.
        crate::receive::prepare_statements(store.conn())?;
        Ok(Account {
            cache: SignalCache::new(me.key_pair, me.registration_id),
            settings: settings::Cached::load(store.conn())?,
            store,
            me,
            events: Vec::new(),
            logs: crate::committee_store::LogCache::default(),
            committees_changed: false,
            expiry_changed: false,
            next_due: None,
            alerts_checked_at: None,
            search_indexed_at: None,
            search_backlog: true,
            outbox_may_hold: true,
            one_time_batch: options.one_time_prekeys,
            clock: options.clock.clone(),
            asked: std::collections::HashMap::new(),
            resends_waiting: true,
            reading_waiting: false,
            repair_pruned_at: None,
            access_check_due: true,
            access_owed_may_hold: true,
            received_prune: Default::default(),
        })
    }

    /// Whether a received batch changed a committee's log since the last
    /// call; resets the flag.
    #[cfg_attr(feature = "testing", rankfile_testing_pub::public)]
    pub(crate) fn take_committees_changed(&mut self) -> bool {
        std::mem::take(&mut self.committees_changed)
    }

    /// Whether something due at a set time (channel text to delete, alert
    /// counts to send back) was stored since the last call; resets the flag.
    #[cfg_attr(feature = "testing", rankfile_testing_pub::public)]
    pub(crate) fn take_expiry_changed(&mut self) -> bool {
        std::mem::take(&mut self.expiry_changed)
    }

    /// This account's ID.
    pub fn id(&self) -> AccountId {
        self.me.account_id()
    }

    /// This device's ID within the account.
    pub fn device_id(&self) -> u32 {
        u32::from(self.me.device_id)
    }

    /// The public identity key, serialized.
    pub fn identity_key(&self) -> Vec<u8> {
        self.me.key_pair.identity_key().serialize().to_vec()
    }

    /// Events raised since the last call, oldest first.
    #[cfg_attr(feature = "testing", rankfile_testing_pub::public)]
    pub(crate) fn drain_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// This device's prekey bundle, as protobuf bytes to hand to another
    /// device (directly, by QR code, or through the relay's directory). Each
    /// call hands out a fresh one-time prekey and applies the prekey policy.
    pub fn prekey_bundle(&mut self) -> Result<Vec<u8>> {
        let tx = self.store.write()?;
        prekeys::maintain(&tx, &self.me, self.clock.now_ms(), self.one_time_batch)?;
        let bundle = prekeys::export_bundle(&tx, &self.me)?;
        tx.commit()?;
        Ok(bundle.encode_to_vec())
    }

    /// Applies the prekey policy (rotation, retirement, replenishment) as of
    /// `now_ms`. Returns whether anything changed.
    #[cfg(any(test, feature = "testing"))]
    pub fn maintain_prekeys_at(&mut self, now_ms: i64) -> Result<bool> {
        let tx = self.store.write()?;
        let changed = prekeys::maintain(&tx, &self.me, now_ms, self.one_time_batch)?;
        tx.commit()?;
        Ok(changed)
    }

    /// Adds a contact from its bundle and opens a session with it (PQXDH).
    /// The bundle's identity key must hash to its account ID.
    pub fn add_contact(&mut self, name: &str, bundle: &[u8]) -> Result<AccountId> {
        let imported = prekeys::import_bundle(bundle)?;
        let them = imported.account_id;
        if them == self.id() {
            return Err(Error::FromSelf);
        }
        let device = u32::from(imported.device_id()?);
        let tx = self.store.write()?;
        if let Some(c) = contact::get(&tx, &them)? {
            if c.pending_successor.is_some() {
                return Err(Error::IdentityChangePending(them));
            }
        }
        if contact::replaced_by(&tx, &them)?.is_some() {
            return Err(Error::IdentityChangePending(them));
        }
        let mut pending = Pending::default();
        session::start(&tx, &self.cache, &mut pending, &imported)?;
        let identity = *imported.bundle.identity_key()?;
        contact::upsert(&tx, &them, device, name, &identity)?;
        // A key learnt before the session (from a committee's log, a link
        // proposal or a contact card): our first message goes sealed.
        if contact::access_key(&tx, &them)?.is_none() {
            if let Some(key) = crate::committee_sessions::take_learnt_key(&tx, &them)? {
                contact::set_access_key(&tx, &them, &key)?;
            }
        }
        pending.flush(&tx)?;
        tx.commit()?;
        self.cache.absorb(pending);
        Ok(them)
    }

    /// All contacts.
    pub fn contacts(&self) -> Result<Vec<Contact>> {
        contact::list(self.store.conn())
    }

    /// One contact.
    pub fn contact(&self, id: &AccountId) -> Result<Contact> {
        contact::get(self.store.conn(), id)?.ok_or(Error::UnknownContact(*id))
    }

    /// The access key we hold for a contact (what our sealed messages to it
    /// carry to the relay), if we learnt one.
    #[cfg(any(test, feature = "testing"))]
    pub fn contact_access_key(
        &self,
        id: &AccountId,
    ) -> Result<Option<[u8; crate::settings::ACCESS_KEY_LEN]>> {
        contact::access_key(self.store.conn(), id)
    }

    /// The access key this account holds for `id`: the contact's, or the one
    /// an organizer sent for a fellow member it has no session with yet.
    /// What authorises a bundle fetch on the anonymous connection.
    #[cfg_attr(feature = "testing", rankfile_testing_pub::public)]
    pub(crate) fn known_access_key(
        &self,
        id: &AccountId,
    ) -> Result<Option<[u8; crate::settings::ACCESS_KEY_LEN]>> {
        crate::committee_sessions::known_access_key(self.store.conn(), id)
    }

    /// Renames a contact.
    pub fn rename_contact(&mut self, id: &AccountId, name: &str) -> Result<()> {
        let c = self.contact(id)?;
        let key =
            contact::identity_key(self.store.conn(), id)?.ok_or(Error::UnknownContact(*id))?;
        contact::upsert(self.store.conn(), id, c.device_id, name, &key)
    }

    /// The safety number between this account and a contact.
    pub fn safety_number(&self, id: &AccountId) -> Result<SafetyNumber> {
        let key =
            contact::identity_key(self.store.conn(), id)?.ok_or(Error::UnknownContact(*id))?;
        SafetyNumber::compute(&self.id(), self.me.key_pair.identity_key(), id, &key)
    }

    /// Checks the other phone's scanned safety-number QR payload and, when it
    /// matches, marks the contact verified.
    pub fn verify_contact(&mut self, id: &AccountId, scanned: &[u8]) -> Result<()> {
        if !self.safety_number(id)?.matches_scanned(scanned)? {
            return Err(Error::SafetyNumberMismatch);
        }
        contact::set_verified(self.store.conn(), id, true)
    }

    /// Marks a contact verified after the user compared the digits by eye.
    pub fn mark_verified(&mut self, id: &AccountId) -> Result<()> {
        self.contact(id)?;
        contact::set_verified(self.store.conn(), id, true)
    }

    /// Accepts that `contact`'s pending successor replaces it: the contact moves
    /// to the new account, unverified, and its held messages become visible.
    /// Returns the new account ID.
    pub fn accept_identity_change(&mut self, contact: &AccountId) -> Result<AccountId> {
        let tx = self.store.write()?;
        let new = contact::accept_successor(&tx, contact)?;
        tx.commit()?;
        Ok(new)
    }

    /// Rejects `contact`'s pending successor; its held messages are deleted.
    pub fn reject_identity_change(&mut self, contact: &AccountId) -> Result<()> {
        let tx = self.store.write()?;
        contact::reject_successor(&tx, contact)?;
        tx.commit()?;
        Ok(())
    }

    /// A page of the conversation with `peer`, newest first.
    pub fn history(
        &self,
        peer: &AccountId,
        before_id: Option<i64>,
        limit: u32,
    ) -> Result<Vec<StoredMessage>> {
        message::history(self.store.conn(), peer, before_id, limit)
    }

    /// Number of stored messages.
    pub fn message_count(&self) -> Result<u64> {
        message::count(self.store.conn())
    }

    /// Every row of the store, for tests and diagnostics that must show that
    /// nothing changed (see [`Store::dump`]). Holds plaintext; never log it,
    /// and never export it: only tests reach it (`testing` feature).
    #[cfg(any(test, feature = "testing"))]
    pub fn dump_database(&self) -> Result<String> {
        self.store.dump()
    }

    /// The database file's path.
    pub fn database_path(&self) -> &Path {
        self.store.path()
    }

    /// Panic wipe: destroys the store's files so nothing can be recovered from
    /// them. The app must also delete the database key from the OS keystore.
    pub fn wipe(self) -> Result<()> {
        let Account { store, .. } = self;
        store.wipe()
    }
}
