//! The wire: decoding `ClientFrame`s, encoding `ServerFrame`s, and the typed
//! refusals every request can end in.

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prost::Message as _;
use rankfile_proto::v1::{self as pb, error::Code, server_frame::Body as Out};

use crate::error::Error;

/// The protocol version this relay speaks.
pub const PROTOCOL_VERSION: u32 = pb::ProtocolVersion::ProtocolVersion1 as u32;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A request refused with a typed error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The error code the client sees.
    pub code: Code,
    /// Plain words: never content, keys or account IDs.
    pub message: Cow<'static, str>,
    /// For RATE_LIMITED.
    pub retry_after_ms: u64,
}

impl Refusal {
    /// A refusal with a code and a message.
    pub fn new(code: Code, message: impl Into<Cow<'static, str>>) -> Self {
        Refusal {
            code,
            message: message.into(),
            retry_after_ms: 0,
        }
    }

    /// MALFORMED.
    pub fn malformed(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(Code::Malformed, message)
    }

    /// NOT_FOUND.
    pub fn not_found(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(Code::NotFound, message)
    }

    /// UNAUTHORIZED.
    pub fn unauthorized(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(Code::Unauthorized, message)
    }

    /// TOO_LARGE.
    pub fn too_large(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(Code::TooLarge, message)
    }

    /// RATE_LIMITED, try again after `wait`.
    pub fn rate_limited(wait: Duration) -> Self {
        Refusal {
            code: Code::RateLimited,
            message: "too many requests".into(),
            retry_after_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1),
        }
    }

    /// The error frame answering `request_id`.
    pub fn into_frame(self, request_id: u64) -> pb::ServerFrame {
        reply(
            request_id,
            Out::Error(pb::Error {
                code: self.code as i32,
                message: self.message.into_owned(),
                retry_after_ms: self.retry_after_ms,
            }),
        )
    }
}

impl From<Error> for Refusal {
    fn from(e: Error) -> Self {
        match e {
            Error::QuotaExceeded => Refusal::new(Code::QuotaExceeded, "mailbox full"),
            other => {
                // Logged once here, at the boundary; the client gets no details.
                tracing::warn!(error = %other, "request failed inside the relay");
                Refusal::new(Code::Internal, "internal error")
            }
        }
    }
}

/// A request's outcome: a reply body or a refusal.
pub type Reply = Result<Out, Refusal>;

/// A frame answering `request_id` (0 for pushes).
pub fn reply(request_id: u64, body: Out) -> pb::ServerFrame {
    pb::ServerFrame {
        request_id,
        body: Some(body),
    }
}

/// The frame for a request's outcome.
pub fn outcome(request_id: u64, r: Reply) -> pb::ServerFrame {
    match r {
        Ok(body) => reply(request_id, body),
        Err(refusal) => refusal.into_frame(request_id),
    }
}

/// Encodes a server frame for the wire.
pub fn encode(frame: &pb::ServerFrame) -> Vec<u8> {
    frame.encode_to_vec()
}

/// Decodes a client frame: MALFORMED if it does not parse or has no body,
/// UNSUPPORTED_VERSION if its version is not ours. Either way the connection ends.
pub fn decode(bytes: &[u8]) -> Result<(u64, pb::client_frame::Body), (u64, Refusal)> {
    let frame = pb::ClientFrame::decode(bytes)
        .map_err(|_| (0, Refusal::malformed("frame did not parse")))?;
    if frame.version != PROTOCOL_VERSION {
        return Err((
            frame.request_id,
            Refusal::new(Code::UnsupportedVersion, "unsupported protocol version"),
        ));
    }
    let body = frame
        .body
        .ok_or((frame.request_id, Refusal::malformed("frame has no body")))?;
    Ok((frame.request_id, body))
}

/// Reads a fixed-length byte field.
pub fn fixed<const N: usize>(bytes: &[u8], what: &'static str) -> Result<[u8; N], Refusal> {
    bytes.try_into().map_err(|_| Refusal::malformed(what))
}

/// The wire priority as the store's.
pub fn priority_from_wire(p: i32) -> Result<crate::storage::Priority, Refusal> {
    match pb::Priority::try_from(p) {
        Ok(pb::Priority::Normal) => Ok(crate::storage::Priority::Normal),
        Ok(pb::Priority::High) => Ok(crate::storage::Priority::High),
        Err(_) => Err(Refusal::malformed("unknown priority")),
    }
}

/// The store's priority on the wire.
pub fn priority_to_wire(p: crate::storage::Priority) -> i32 {
    match p {
        crate::storage::Priority::Normal => pb::Priority::Normal as i32,
        crate::storage::Priority::High => pb::Priority::High as i32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_refusals() {
        assert_eq!(
            decode(&[0xff, 0xff, 0xff]).err().map(|e| e.1.code),
            Some(Code::Malformed)
        );
        let no_body = pb::ClientFrame {
            version: 1,
            request_id: 4,
            body: None,
        }
        .encode_to_vec();
        assert_eq!(
            decode(&no_body).err().map(|e| (e.0, e.1.code)),
            Some((4, Code::Malformed))
        );
        let v2 = pb::ClientFrame {
            version: 2,
            request_id: 5,
            body: Some(pb::client_frame::Body::Ping(pb::Ping {})),
        }
        .encode_to_vec();
        assert_eq!(
            decode(&v2).err().map(|e| e.1.code),
            Some(Code::UnsupportedVersion)
        );
        let ok = pb::ClientFrame {
            version: 1,
            request_id: 6,
            body: Some(pb::client_frame::Body::Ping(pb::Ping {})),
        }
        .encode_to_vec();
        assert_eq!(decode(&ok).map(|(id, _)| id), Ok(6));
    }

    #[test]
    fn internal_errors_say_nothing() {
        let r = Refusal::from(Error::Store("secret detail".into()));
        assert_eq!(r.code, Code::Internal);
        assert!(!r.message.contains("secret"));
        assert_eq!(
            Refusal::from(Error::QuotaExceeded).code,
            Code::QuotaExceeded
        );
    }

    #[test]
    fn priorities_round_trip() {
        for p in [
            crate::storage::Priority::Normal,
            crate::storage::Priority::High,
        ] {
            assert_eq!(priority_from_wire(priority_to_wire(p)), Ok(p));
        }
        assert!(priority_from_wire(7).is_err());
    }
}
