//! The login signature's message: part of the wire contract, so the device
//! that signs it and the relay that checks it build the same bytes.

/// Domain separation for the login signature.
pub const AUTH_DOMAIN: &[u8] = b"rankfile relay auth v1";

/// The bytes a device signs with its identity key to log in:
/// `AUTH_DOMAIN || challenge || account_id || device_id (u32 big-endian)`.
pub fn auth_message(challenge: &[u8], account_id: &[u8], device_id: u32) -> Vec<u8> {
    let mut m = Vec::with_capacity(AUTH_DOMAIN.len() + challenge.len() + account_id.len() + 4);
    m.extend_from_slice(AUTH_DOMAIN);
    m.extend_from_slice(challenge);
    m.extend_from_slice(account_id);
    m.extend_from_slice(&device_id.to_be_bytes());
    m
}
