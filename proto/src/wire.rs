//! Constants of the wire protocol that the core and the relay must agree on.
//! Each side keeps its own tunable limits; these are fixed by the protocol.

/// Bytes in an account ID: 160 bits of SHA-256 over the identity key, so
/// finding a second key for an existing ID costs 2^160 work.
pub const ACCOUNT_ID_LEN: usize = 20;

/// Bytes of an unidentified-access key.
pub const ACCESS_KEY_LEN: usize = 16;

/// Largest WebSocket message or frame either side accepts or sends: one
/// protobuf `ClientFrame`/`ServerFrame`. Bigger data (attachments) travels in
/// chunks.
pub const MAX_FRAME_BYTES: usize = 256 * 1024;

/// Largest attachment chunk in one frame, leaving room for the frame's other
/// fields inside [`MAX_FRAME_BYTES`].
pub const MAX_ATTACHMENT_CHUNK: usize = 192 * 1024;

/// Bytes of the relay's per-connection authentication challenge.
pub const CHALLENGE_LEN: usize = 32;

/// libsignal's device IDs are 1..=127.
pub const MAX_DEVICE_ID: u32 = 127;
