//! Rankfile's relay: a store-and-forward server for end-to-end encrypted messages.
//!
//! It authenticates devices by a signature from their identity key, keeps one
//! mailbox per device, publishes prekeys, issues sealed-sender certificates,
//! fans out multi-recipient sealed messages, stores encrypted attachments and
//! posts content-free push wake-ups for alerts — all over WebSocket on TLS, with the protocol in `proto/schemas/rankfile/relay.proto`.
//! It never sees plaintext, and for sealed messages never learns the sender.
//!
//! Start one in-process with [`start`] (bind `127.0.0.1:0` via [`Config::local`]),
//! read its address and certificate fingerprint from the [`RelayHandle`], and stop
//! it with [`RelayHandle::shutdown`].

#![deny(unsafe_code)]
#![warn(clippy::unwrap_used)]

mod attachment;
mod auth;
mod clock;
mod config;
mod connection;
mod deletion;
mod directory;
mod disk;
mod error;
mod frame;
#[doc(hidden)]
pub mod fuzzing;
mod guard;
mod hub;
mod limits;
mod mailbox;
mod push;
mod relay;
mod run;
mod sealed;
mod server;
mod shutdown;
mod storage;
mod tls;
mod traffic;
mod upload_token;

pub use auth::{account_id_for, auth_message, AuthError};
pub use clock::Clock;
pub use config::{Args, Config, DatabaseUrl};
pub use connection::websocket_config;
pub use error::{Error, Result};
pub use frame::{now_ms, PROTOCOL_VERSION};
pub use limits::{MAX_ATTACHMENT_CHUNK, MAX_FRAME_BYTES};
pub use push::{PushStats, MAX_URL_LEN as MAX_PUSH_URL_LEN};
pub use run::{init_logging, serve_until_signal};
pub use sealed::{aci_string, SENDER_CERTIFICATE_LIFETIME_MS};
pub use server::{start, start_with_store, RelayHandle};
pub use storage::{
    AccessKey, AccountId, AciAccount, Address, AttachmentMeta, Cursor, DeviceRecord, MailboxId,
    NewMessage, OnCommit, PostgresStore, PreKeyUpload, Priority, PublicPreKey, RelayStore,
    RemoteMail, SqliteStore, StoredMessage, SweepOutcome, TakenBundle,
};
pub use tls::fingerprint_of;
pub use traffic::TrafficStats;
