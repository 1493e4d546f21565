//! The client transport: one account's connection to its relay.
//!
//! [`Client`] owns the account (on its own thread, see `actor`) and a
//! connection manager task that connects over pinned TLS, logs in with the
//! identity key, keeps the relay's prekeys, access key and sender certificate
//! current, sends the outbox, receives deliveries through the atomic receive and
//! acknowledges each batch only after its commit, and reconnects with jittered
//! exponential backoff. Everything the app needs to show arrives on one event
//! stream ([`ClientEvent`]).

mod actor;
mod alert;
mod attachment;
mod backoff;
mod bundles;
mod channel;
mod client;
mod committee;
mod conversation;
mod history;
mod identity;
mod link;
mod open;
mod outbox_flush;
mod push;
mod relay_account;
mod sealed_link;
mod sending;
mod tls;

pub use client::{Client, ClientEvent, ConnectionState, DeliveryState};
pub(crate) use link::MAX_RELAY_ADDRESS_LEN;
pub use link::{RelayAddress, MAX_FRAME_LEN};
pub use open::DATABASE_FILE;
pub use tls::{parse_fingerprint, FINGERPRINT_LEN};
