//! IDs across the FFI: account IDs in their `rf1-…` text form, the others
//! (committees, channels, alerts, link proposals) as lower-case hex. Text
//! from the app is untrusted: each parser gives a typed error, never a panic.

use rankfile_core::alert::AlertId;
use rankfile_core::committee::{ChannelId, CommitteeId, InviteId};
use rankfile_core::AccountId;

use crate::error::ClientError;

pub(crate) fn account(text: &str) -> Result<AccountId, ClientError> {
    AccountId::parse(text).map_err(|_| ClientError::InvalidAccountId)
}

pub(crate) fn accounts(ids: &[AccountId]) -> Vec<String> {
    ids.iter().map(ToString::to_string).collect()
}

/// Exactly `N` bytes of hex.
fn bytes<const N: usize>(text: &str) -> Result<[u8; N], ClientError> {
    // Bounded before decoding: an app may hand over anything.
    if text.len() != 2 * N {
        return Err(ClientError::InvalidId);
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(text, &mut out).map_err(|_| ClientError::InvalidId)?;
    Ok(out)
}

pub(crate) fn committee(text: &str) -> Result<CommitteeId, ClientError> {
    bytes(text).map(CommitteeId)
}

pub(crate) fn channel(text: &str) -> Result<ChannelId, ClientError> {
    bytes(text)
}

pub(crate) fn alert(text: &str) -> Result<AlertId, ClientError> {
    bytes(text).map(AlertId)
}

pub(crate) fn invite(text: &str) -> Result<InviteId, ClientError> {
    bytes(text).map(InviteId)
}

/// Hex of an ID's bytes (committee, channel, alert, proposal, invite).
pub(crate) fn hex(bytes: impl AsRef<[u8]>) -> String {
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_their_text() {
        let c = CommitteeId([0xab; 16]);
        assert_eq!(committee(&hex(c.0)).expect("parses"), c);
        let a = AlertId([3; 16]);
        assert_eq!(alert(&hex(a.0)).expect("parses"), a);
    }

    #[test]
    fn malformed_ids_are_typed_errors() {
        for bad in [
            "",
            "zz",
            &"ab".repeat(15),
            &"ab".repeat(17),
            &"gg".repeat(16),
            "é",
        ] {
            assert!(
                matches!(committee(bad), Err(ClientError::InvalidId)),
                "{bad}"
            );
            assert!(matches!(channel(bad), Err(ClientError::InvalidId)), "{bad}");
        }
        assert!(matches!(
            account("rf1-not-an-account"),
            Err(ClientError::InvalidAccountId)
        ));
    }
}
