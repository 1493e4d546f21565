//! The relay's one error type and its `Result` alias.
//!
//! Messages name kinds, IDs of rows and lengths, never keys, envelopes or account IDs:
//! they end up in logs.

use std::io;

/// Everything that can go wrong inside the relay.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing a file or a socket failed.
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    /// The configuration is invalid (file, environment or flags).
    #[error("configuration: {0}")]
    Config(String),
    /// TLS setup failed (certificate or key unreadable or invalid).
    #[error("tls: {0}")]
    Tls(String),
    /// The WebSocket layer failed.
    #[error("websocket: {0}")]
    WebSocket(String),
    /// The database failed.
    #[error("store: {0}")]
    Store(String),
    /// A stored record did not parse (corruption or a bug).
    #[error("corrupt record: {0}")]
    Corrupt(&'static str),
    /// libsignal refused an operation on the relay's own keys.
    #[error("signal: {0}")]
    Signal(String),
    /// The recipient's mailbox is full.
    #[error("mailbox full")]
    QuotaExceeded,
    /// The storage writer has stopped (shutdown or a fatal database error).
    #[error("store closed")]
    StoreClosed,
}

/// The relay's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Store(e.to_string())
    }
}

impl From<tokio_tungstenite::tungstenite::Error> for Error {
    fn from(e: tokio_tungstenite::tungstenite::Error) -> Self {
        Error::WebSocket(e.to_string())
    }
}

impl From<rustls::Error> for Error {
    fn from(e: rustls::Error) -> Self {
        Error::Tls(e.to_string())
    }
}

impl From<libsignal_protocol::SignalProtocolError> for Error {
    fn from(e: libsignal_protocol::SignalProtocolError) -> Self {
        Error::Signal(e.to_string())
    }
}
