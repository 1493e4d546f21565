//! Rankfile's core: an account's identity, 1:1 end-to-end encrypted sessions on
//! libsignal (PQXDH and the SPQR post-quantum ratchet), and the encrypted store
//! on the device (SQLCipher).
//!
//! The entry point is [`transport::Client`]: the one complete, async facade
//! (`Client::open(dir, key, relay)`, then a method for everything an app
//! does), returning plain data, so the uniffi bindings export it 1:1. It
//! runs an [`Account`] — one device's account over its store, no FFI types,
//! no networking — on a thread of its own. `Account`'s plumbing is
//! crate-private, public only under the `testing` feature (scenario tests,
//! fuzz targets, the benchmarks' simulated phones).

#![deny(unsafe_code)]

mod access_key;
#[cfg(test)]
mod access_key_tests;
mod account;
mod account_id;
pub mod alert;
mod attachment;
mod base32;
mod channel;
mod clock;
pub mod committee;
#[cfg(test)]
mod committee_delivery_tests;
mod committee_join;
mod committee_ops;
mod committee_receive;
mod committee_sessions;
mod committee_store;
mod committee_sync;
mod contact;
mod contact_card;
mod conversation_timer;
mod error;
mod event;
mod failpoint;
#[doc(hidden)]
pub mod fuzzing;
mod identity;
pub mod link;
#[cfg(test)]
mod link_tests;
mod message;
mod outbox_park;
mod prekeys;
mod receive;
mod receive_ahead;
mod received;
mod relay_link;
mod repair;
#[cfg(test)]
mod repair_tests;
mod reseal;
mod safety;
mod sealed;
mod send;
mod session;
mod settings;
mod store;
pub mod transport;
mod uploads;

pub use account::{Account, AccountOptions};
pub use account_id::{AccountId, ACCOUNT_ID_LEN};
pub use attachment::{
    AttachmentPointer, MAX_ATTACHMENTS, MAX_ATTACHMENT_LEN, MAX_CONTENT_TYPE_LEN, MAX_FILE_NAME_LEN,
};
pub use channel::{
    ChannelAttachment, ChannelMessage, Draft, MessageRef, Quote, Reply, MAX_PENDING_EDITS,
    MESSAGE_REF_LEN,
};
pub use clock::Clock;
pub use committee_join::PendingJoin;
pub use committee_ops::{CommitteeChange, Post};
pub use committee_sessions::MemberToGreet;
pub use contact::{Contact, MAX_CONTACT_NAME};
pub use contact_card::{ContactCard, CONTACT_CARD_PREFIX};
pub use error::{Error, Result};
pub use event::Event;
pub use identity::PRIMARY_DEVICE_ID;
pub use message::{
    StoredMessage, CHANNEL_ID_LEN, ENVELOPE_ID_LEN, MAX_TEXT_LEN, MAX_UPDATE_ENTRIES,
};
pub use prekeys::{
    import_bundle, ImportedBundle, ONE_TIME_BATCH, ONE_TIME_LOW_WATER, SIGNED_PREKEY_RETENTION_MS,
    SIGNED_PREKEY_ROTATION_MS,
};
pub use rankfile_proto::{auth_message, AUTH_DOMAIN};
pub use receive::{Inbound, Received, CERTIFICATE_SKEW_MS, MAX_ENVELOPE_LEN};
pub use received::RECEIVED_ENVELOPE_RETENTION_DAYS;
pub use repair::{UnreadableMessage, RESEND_WINDOW_MS};
pub use safety::SafetyNumber;
pub use sealed::service_uuid;
pub use send::OutgoingEnvelope;
pub use settings::ACCESS_KEY_LEN;
pub use store::{
    panic_wipe, DatabaseKey, Store, Unsynced, DATABASE_KEY_LEN, PAGE_CACHE_KIB, SCHEMA_VERSION,
};
