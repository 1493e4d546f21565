//! Storage behind one trait, `RelayStore`, so the relay can run on SQLite (one
//! machine, the default) or PostgreSQL (several relay nodes on one database).
//!
//! The trait speaks only the relay's own types: no SQL, no connection handles.
//! Every write method returns only once its change is durable; a send is
//! acknowledged to its sender only after `enqueue` returns.

mod migrations;
mod postgres;
mod sqlite;
mod writer;

use std::fmt;

use async_trait::async_trait;

use crate::error::Result;
use crate::limits::{ACCESS_KEY_LEN, ACCOUNT_ID_LEN};

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// An account ID: 20 bytes.
pub type AccountId = [u8; ACCOUNT_ID_LEN];
/// An unidentified-access key.
pub type AccessKey = [u8; ACCESS_KEY_LEN];
/// An attachment's address: SHA-256 of its encrypted bytes.
pub type Address = [u8; 32];

/// One device's mailbox (and directory entry): account plus device.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct MailboxId {
    /// The account.
    pub account: AccountId,
    /// The device, 1..=127.
    pub device: u32,
}

impl fmt::Debug for MailboxId {
    // Account IDs stay out of logs: show only a short prefix.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "MailboxId({}…:{})",
            hex::encode(&self.account[..2]),
            self.device
        )
    }
}

/// What the directory knows of a device.
#[derive(Clone, Debug)]
pub struct DeviceRecord {
    /// libsignal `IdentityKey` serialization.
    pub identity_key: Vec<u8>,
    /// Registration ID from the last prekey upload (0 before).
    pub registration_id: u32,
    /// The device's unidentified-access key, once set.
    pub access_key: Option<AccessKey>,
}

/// A public prekey with its ID and (for signed kinds) signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicPreKey {
    /// The device's ID for this key.
    pub id: u32,
    /// libsignal serialization of the public key.
    pub public_key: Vec<u8>,
    /// Identity-key signature over `public_key`; empty for one-time EC keys.
    pub signature: Vec<u8>,
}

/// A checked prekey upload.
#[derive(Clone, Debug, Default)]
pub struct PreKeyUpload {
    /// The device's registration ID.
    pub registration_id: u32,
    /// Replaces the signed EC prekey when present.
    pub signed_prekey: Option<PublicPreKey>,
    /// Replaces the last-resort Kyber key when present.
    pub kyber_last_resort: Option<PublicPreKey>,
    /// Added to the one-time EC keys.
    pub one_time: Vec<PublicPreKey>,
    /// Added to the one-time Kyber keys.
    pub one_time_kyber: Vec<PublicPreKey>,
}

/// What a bundle fetch takes from the directory.
#[derive(Clone, Debug)]
pub struct TakenBundle {
    /// The device's identity key.
    pub identity_key: Vec<u8>,
    /// Its registration ID.
    pub registration_id: u32,
    /// Its signed EC prekey.
    pub signed_prekey: PublicPreKey,
    /// A one-time Kyber key (now consumed), else the last-resort one.
    pub kyber: PublicPreKey,
    /// A one-time EC key (now consumed), if any were left.
    pub one_time: Option<PublicPreKey>,
}

/// Priority of a stored message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Priority {
    /// Chat.
    Normal,
    /// Alerts: delivered first.
    High,
}

/// A message to store.
#[derive(Clone, Debug)]
pub struct NewMessage {
    /// Whose mailbox.
    pub mailbox: MailboxId,
    /// Priority.
    pub priority: Priority,
    /// Whether the envelope is sealed-sender.
    pub sealed: bool,
    /// Opaque ciphertext.
    pub envelope: Vec<u8>,
    /// When stored.
    pub stored_at_ms: u64,
    /// When it may be dropped if not acknowledged.
    pub expires_at_ms: u64,
}

/// A message read from a mailbox.
#[derive(Clone, Debug)]
pub struct StoredMessage {
    /// Mailbox ID (never reused).
    pub id: u64,
    /// Priority.
    pub priority: Priority,
    /// Sealed-sender or not.
    pub sealed: bool,
    /// When stored.
    pub stored_at_ms: u64,
    /// Opaque ciphertext.
    pub envelope: Vec<u8>,
}

/// Called with the messages of one `enqueue`, now carrying their IDs, once they
/// are durable and before `enqueue` returns. Calls follow commit order, so the
/// IDs one mailbox sees through them only grow: a connected device can be handed
/// its new mail from memory without reading it back.
pub type OnCommit = Box<dyn FnOnce(Vec<(MailboxId, StoredMessage)>) + Send>;

/// Where a connection's delivery has got to: the last ID pushed per priority.
/// IDs only grow, so "after the cursor" is exactly "not yet pushed".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cursor {
    /// Last high-priority ID pushed.
    pub high: u64,
    /// Last normal-priority ID pushed.
    pub normal: u64,
}

/// An account found by its ACI (the first 16 bytes of its ID).
#[derive(Clone, Debug)]
pub struct AciAccount {
    /// Its full ID.
    pub account: AccountId,
    /// Its devices with their access keys.
    pub devices: Vec<(u32, Option<AccessKey>)>,
}

/// An attachment's metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttachmentMeta {
    /// Content address.
    pub address: Address,
    /// Size in bytes.
    pub size: u64,
    /// When it may be deleted.
    pub expires_at_ms: u64,
    /// SHA-256 of the key its uploader may delete it with, if it gave one.
    pub delete_hash: Option<[u8; 32]>,
}

/// What a sweep removed.
#[derive(Clone, Debug, Default)]
pub struct SweepOutcome {
    /// Expired messages deleted.
    pub messages: u64,
    /// Expired attachments whose metadata was deleted; their files go next.
    pub attachments: Vec<Address>,
}

/// Mail committed by another relay node on the same database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RemoteMail {
    /// These mailboxes have new mail.
    Mailboxes(Vec<MailboxId>),
    /// The devices of this account changed (access key, deletion): records
    /// cached from before are stale.
    DevicesChanged(AccountId),
    /// Notifications may have been missed (the listening connection was
    /// lost): any mailbox may have new mail, any cached device be stale.
    All,
}

/// The relay's storage.
#[async_trait]
pub trait RelayStore: Send + Sync + 'static {
    /// Registers a device with its identity key if new; true when it was new.
    async fn register_device(
        &self,
        mailbox: MailboxId,
        identity_key: Vec<u8>,
        now_ms: u64,
    ) -> Result<bool>;
    /// A device's directory record.
    async fn device(&self, mailbox: MailboxId) -> Result<Option<DeviceRecord>>;
    /// Accounts (with their devices) whose ACI is one of `acis`.
    async fn accounts_by_aci(&self, acis: Vec<[u8; 16]>) -> Result<Vec<AciAccount>>;
    /// Sets a device's unidentified-access key.
    async fn set_access_key(&self, mailbox: MailboxId, key: AccessKey) -> Result<()>;
    /// Applies a checked prekey upload, keeping at most `max_one_time` of each one-time kind.
    async fn upload_prekeys(
        &self,
        mailbox: MailboxId,
        upload: PreKeyUpload,
        max_one_time: u32,
    ) -> Result<()>;
    /// One-time EC and Kyber prekeys left.
    async fn prekey_counts(&self, mailbox: MailboxId) -> Result<(u32, u32)>;
    /// Takes a bundle, consuming one one-time EC and one one-time Kyber key atomically;
    /// without `one_time`, none (the Kyber key is then the last-resort one).
    async fn take_bundle(&self, mailbox: MailboxId, one_time: bool) -> Result<Option<TakenBundle>>;
    /// Stores messages, all or none; `Error::QuotaExceeded` if a mailbox would pass
    /// `quota`. `on_commit` gets them once durable (see `OnCommit`).
    async fn enqueue(
        &self,
        messages: Vec<NewMessage>,
        quota: u64,
        on_commit: OnCommit,
    ) -> Result<()>;
    /// Stores the messages of every account whose mailboxes have room under
    /// `quota`, and returns the accounts skipped because one was full (a
    /// multi-recipient send: one full phone must not stop a committee).
    async fn enqueue_where_room(
        &self,
        messages: Vec<NewMessage>,
        quota: u64,
        on_commit: OnCommit,
    ) -> Result<Vec<AccountId>>;
    /// Up to `limit` unexpired messages after `cursor`, high priority first.
    async fn fetch(
        &self,
        mailbox: MailboxId,
        cursor: Cursor,
        now_ms: u64,
        limit: usize,
    ) -> Result<Vec<StoredMessage>>;
    /// Deletes these IDs if they are in this mailbox; returns how many went.
    async fn ack(&self, mailbox: MailboxId, ids: Vec<u64>) -> Result<u64>;
    /// Identified (not sealed) messages a mailbox holds, expired or not.
    async fn identified_count(&self, mailbox: MailboxId) -> Result<u64>;
    /// Unexpired messages in a mailbox.
    async fn queued(&self, mailbox: MailboxId, now_ms: u64) -> Result<u64>;
    /// Whether a mailbox holds an unexpired high-priority message with an ID
    /// above `after`.
    async fn high_after(&self, mailbox: MailboxId, after: u64, now_ms: u64) -> Result<bool>;
    /// Records a stored attachment blob.
    async fn put_attachment(&self, meta: AttachmentMeta) -> Result<()>;
    /// An unexpired attachment's metadata.
    async fn attachment(&self, address: Address, now_ms: u64) -> Result<Option<AttachmentMeta>>;
    /// Devices with a push endpoint.
    async fn push_endpoint_count(&self) -> Result<u64>;
    /// The `index`-th device with a push endpoint (in the store's order), if
    /// there are that many: decoy wake-ups pick one at random.
    async fn push_endpoint_at(&self, index: u64) -> Result<Option<MailboxId>>;
    /// Deletes an account: every device's record, prekeys, mailbox and push
    /// endpoint, and those of the `owned` attachments (address, SHA-256 of the
    /// delete key presented) whose delete hash matches. Returns the addresses
    /// of the attachments deleted, whose files go next.
    async fn delete_account(
        &self,
        account: AccountId,
        owned: Vec<(Address, [u8; 32])>,
    ) -> Result<Vec<Address>>;
    /// Deletes expired messages and attachment metadata.
    async fn sweep(&self, now_ms: u64) -> Result<SweepOutcome>;
    /// Sets a device's push endpoint (a checked URL), or clears it with `None`.
    async fn set_push_endpoint(
        &self,
        mailbox: MailboxId,
        url: Option<String>,
        now_ms: u64,
    ) -> Result<()>;
    /// A device's push endpoint, if it registered one.
    async fn push_endpoint(&self, mailbox: MailboxId) -> Result<Option<String>>;
    /// Forgets a device's push endpoint if it is still `url` (the endpoint said
    /// it is gone, and the device has not registered another meanwhile); true
    /// when it was removed.
    async fn remove_push_endpoint(&self, mailbox: MailboxId, url: String) -> Result<bool>;
    /// For a store several relay nodes share: starts listening for mail the
    /// others commit, and returns where it arrives (once; `None` after that,
    /// and always for a store only this process writes).
    fn remote_mail(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<RemoteMail>> {
        None
    }
}
