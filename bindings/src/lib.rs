//! Rankfile's uniffi bindings: the API the phone apps call, generated as
//! Kotlin, Swift and Python by `cargo xtask bindings`.
//!
//! A thin translation of [`rankfile_core::transport::Client`] and nothing
//! more: one [`Client`] object whose async methods call the facade's, records
//! and enums for its data (IDs as text), one flat error enum with messages a
//! person can read ([`ClientError`]), and one listener trait through which
//! events arrive ([`ClientListener`]). No logic lives here: every decision is
//! the core's, so the apps and the CLI behave alike.

// uniffi's scaffolding (the `extern "C"` functions the foreign code calls)
// is generated `unsafe` code; this crate writes none of its own.
#![allow(unsafe_code)]

mod alerts;
mod client;
mod committees;
mod error;
mod events;
mod ids;
mod messages;
mod runtime;

pub use alerts::{
    Alert, AlertAnswer, AlertDraft, AlertKind, AlertScope, AlertStatus, AnswerCount, HeldAlert,
};
pub use client::{Client, RelayConfig, SafetyNumber};
pub use committees::{
    Channel, ChannelKind, Committee, CommitteeDescription, Invite, Member, PendingJoin, Role,
};
pub use error::ClientError;
pub use events::{ClientEvent, ClientListener, ConnectionState, DeliveryState};
pub use messages::{ChannelPost, Message};

uniffi::setup_scaffolding!();
