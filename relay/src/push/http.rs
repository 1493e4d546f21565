//! One wake-up POST: resolve, connect (TLS for https, checked against the
//! public web PKI roots), send the request over HTTP/1.1, read the status line
//! and hang up. One connection per wake-up, so nothing of one endpoint's
//! connection state can touch another's; the caller bounds the whole exchange
//! in time.

use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::Empty;
use hyper::body::Bytes;
use hyper::header::{CONTENT_LENGTH, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::endpoint::{is_public, Endpoint};
use crate::error::{Error, Result};

/// Seconds the push service may hold the wake-up for an unreachable device
/// (RFC 8030 `TTL`): a wake-up a day late still makes the device fetch.
pub const WAKE_TTL_SECS: u32 = 24 * 3600;

/// The `Topic` of every wake-up (RFC 8030 §5.4): a push service that still
/// holds an undelivered wake-up replaces it instead of queueing another.
pub const WAKE_TOPIC: &str = "wake";

/// What an endpoint made of a wake-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx: the push service took it.
    Delivered,
    /// 404 or 410: the subscription is gone; forget the endpoint.
    Gone,
    /// A redirect or another 4xx (bar 408 and 429): retrying will not help,
    /// and redirects are not followed.
    Refused(u16),
    /// 5xx, 408, 429, or no answer (connect, TLS or I/O failure): worth another try.
    Transient(String),
}

/// The TLS client for https endpoints: the Mozilla root set, TLS 1.2 and 1.3,
/// HTTP/1.1 by ALPN.
pub fn tls_connector() -> Result<TlsConnector> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsConnector::from(Arc::new(config)))
}

/// The wake-up request: an empty body and the RFC 8030 headers, nothing that
/// says what, who or which message.
pub fn wake_request(endpoint: &Endpoint) -> Result<Request<Empty<Bytes>>> {
    Request::builder()
        .method(Method::POST)
        .uri(endpoint.target())
        .header(HOST, endpoint.authority())
        .header("TTL", WAKE_TTL_SECS)
        .header("Urgency", "high")
        .header("Topic", WAKE_TOPIC)
        .header(CONTENT_LENGTH, 0)
        .body(Empty::new())
        .map_err(|e| Error::Config(format!("push request: {e}")))
}

/// Posts one wake-up to `endpoint`. Unbounded in time: the caller times it out.
pub async fn post(endpoint: &Endpoint, tls: &TlsConnector, allow_local: bool) -> Outcome {
    match exchange(endpoint, tls, allow_local).await {
        Ok(status) => classify(status),
        Err(e) => Outcome::Transient(e),
    }
}

/// The outcome a status code means.
pub fn classify(status: StatusCode) -> Outcome {
    match status.as_u16() {
        200..=299 => Outcome::Delivered,
        404 | 410 => Outcome::Gone,
        408 | 429 => Outcome::Transient(format!("status {}", status.as_u16())),
        s @ 300..=499 => Outcome::Refused(s),
        s => Outcome::Transient(format!("status {s}")),
    }
}

async fn exchange(
    endpoint: &Endpoint,
    tls: &TlsConnector,
    allow_local: bool,
) -> std::result::Result<StatusCode, String> {
    let addr = resolve(endpoint, allow_local).await?;
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {}", e.kind()))?;
    let _ = tcp.set_nodelay(true);
    let request = wake_request(endpoint).map_err(|e| e.to_string())?;
    if !endpoint.tls {
        return send(tcp, request).await;
    }
    let name = ServerName::try_from(endpoint.host.clone())
        .map_err(|_| "host is not a TLS server name".to_owned())?;
    let stream = tls
        .connect(name, tcp)
        .await
        .map_err(|e| format!("tls: {e}"))?;
    send(stream, request).await
}

/// The first usable address of the endpoint's host; only public ones unless
/// local endpoints are allowed (a public name may resolve to a private address).
async fn resolve(
    endpoint: &Endpoint,
    allow_local: bool,
) -> std::result::Result<SocketAddr, String> {
    let addrs = tokio::net::lookup_host((endpoint.host.as_str(), endpoint.port))
        .await
        .map_err(|e| format!("resolve: {}", e.kind()))?;
    let mut seen = false;
    for addr in addrs {
        seen = true;
        if allow_local || is_public(addr.ip()) {
            return Ok(addr);
        }
    }
    Err(if seen {
        "host resolves only to non-public addresses".to_owned()
    } else {
        "host has no address".to_owned()
    })
}

async fn send<S>(io: S, request: Request<Empty<Bytes>>) -> std::result::Result<StatusCode, String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| format!("http: {e}"))?;
    tokio::pin!(conn);
    // The connection future drives the socket; the response arrives through
    // the sender. Only the status line matters: the body is never read, and
    // dropping both ends closes the connection.
    tokio::select! {
        r = sender.send_request(request) => r.map(|resp| resp.status()).map_err(|e| format!("http: {e}")),
        r = &mut conn => Err(match r {
            Ok(()) => "connection closed before an answer".to_owned(),
            Err(e) => format!("http: {e}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt as _;

    #[test]
    fn statuses() {
        let c = |s: u16| classify(StatusCode::from_u16(s).expect("status"));
        assert_eq!(c(201), Outcome::Delivered);
        assert_eq!(c(204), Outcome::Delivered);
        assert_eq!(c(404), Outcome::Gone);
        assert_eq!(c(410), Outcome::Gone);
        assert_eq!(c(400), Outcome::Refused(400));
        assert_eq!(c(413), Outcome::Refused(413));
        assert!(matches!(c(429), Outcome::Transient(_)));
        assert!(matches!(c(408), Outcome::Transient(_)));
        assert!(matches!(c(500), Outcome::Transient(_)));
        assert!(matches!(c(503), Outcome::Transient(_)));
        assert_eq!(c(302), Outcome::Refused(302));
    }

    #[tokio::test]
    async fn the_request_says_nothing_but_wake() {
        let e = super::super::endpoint::parse("https://push.example.org:8443/up/XyZ?v=2", false)
            .expect("endpoint");
        let r = wake_request(&e).expect("request");
        assert_eq!(r.method(), Method::POST);
        assert_eq!(r.uri(), "/up/XyZ?v=2");
        let headers: Vec<(String, String)> = r
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().expect("ascii").to_owned()))
            .collect();
        assert_eq!(
            headers,
            [
                ("host", "push.example.org:8443"),
                ("ttl", "86400"),
                ("urgency", "high"),
                ("topic", "wake"),
                ("content-length", "0"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        let body = r.into_body().collect().await.expect("body").to_bytes();
        assert!(body.is_empty());
    }
}
