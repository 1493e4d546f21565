//! One live, authenticated connection to the relay: WebSocket over pinned TLS,
//! with requests and replies matched by request ID while the relay pushes
//! deliveries on the same socket.
//!
//! A reader task routes replies to their waiting requests and deliveries to a
//! bounded channel; a writer task owns the socket's sending half. When either
//! ends, the link is dead and every waiting request fails.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use prost::Message as _;
use rankfile_proto::v1 as pb;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use super::tls::{client_config, FINGERPRINT_LEN};
use crate::error::{Error, Result};

/// Largest frame accepted from the relay (the protocol's limit).
pub use rankfile_proto::wire::MAX_FRAME_BYTES as MAX_FRAME_LEN;
/// The WebSocket read buffer's reserve per read.
const READ_BUFFER_LEN: usize = 8 * 1024;
/// How long connecting (TCP, TLS, WebSocket, hello) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request waits for its reply.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Deliveries buffered between the socket and the receive loop; past this the
/// reader stops reading, and TCP pushes back on the relay.
const DELIVERY_QUEUE: usize = 1024;
/// Frames queued for the writer.
const SEND_QUEUE: usize = 256;

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<pb::ServerFrame>>>>;

/// Where the relay is and which certificate it must present.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayAddress {
    pub addr: SocketAddr,
    pub fingerprint: [u8; FINGERPRINT_LEN],
}

/// Bytes of [`RelayAddress::to_bytes`] for an IPv6 address, the longest.
pub(crate) const MAX_RELAY_ADDRESS_LEN: usize = 1 + 16 + 2 + FINGERPRINT_LEN;

impl RelayAddress {
    /// The binary form kept in the settings and carried by invite links:
    /// 4 or 6, the IP address, the port (big-endian), the fingerprint.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(MAX_RELAY_ADDRESS_LEN);
        match self.addr.ip() {
            std::net::IpAddr::V4(ip) => {
                out.push(4);
                out.extend_from_slice(&ip.octets());
            }
            std::net::IpAddr::V6(ip) => {
                out.push(6);
                out.extend_from_slice(&ip.octets());
            }
        }
        out.extend_from_slice(&self.addr.port().to_be_bytes());
        out.extend_from_slice(&self.fingerprint);
        out
    }

    /// Reads [`RelayAddress::to_bytes`] from the front of `bytes`; returns
    /// the address and the bytes after it, `None` when malformed.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Option<(RelayAddress, &[u8])> {
        let (&family, rest) = bytes.split_first()?;
        let (ip, rest) = match family {
            4 => {
                let (ip, rest) = rest.split_at_checked(4)?;
                let ip: [u8; 4] = ip.try_into().ok()?;
                (std::net::IpAddr::from(ip), rest)
            }
            6 => {
                let (ip, rest) = rest.split_at_checked(16)?;
                let ip: [u8; 16] = ip.try_into().ok()?;
                (std::net::IpAddr::from(ip), rest)
            }
            _ => return None,
        };
        let (port, rest) = rest.split_at_checked(2)?;
        let (fingerprint, rest) = rest.split_at_checked(FINGERPRINT_LEN)?;
        let relay = RelayAddress {
            addr: SocketAddr::new(ip, u16::from_be_bytes(port.try_into().ok()?)),
            fingerprint: fingerprint.try_into().ok()?,
        };
        Some((relay, rest))
    }
}

/// A connected, authenticated link.
pub(crate) struct Link {
    out: mpsc::Sender<pb::ClientFrame>,
    pending: Pending,
    next_id: AtomicU64,
    /// Cleared when the reader ends (the relay closed or died). The writer
    /// learns it only at its next failed write, and a write to a socket the
    /// peer has closed can still succeed: without this, a request on a link
    /// with no deliveries to notice the loss by (the anonymous one) waited
    /// [`REQUEST_TIMEOUT`] for an answer that could not come.
    alive: Arc<AtomicBool>,
}

/// What the relay said on connecting.
pub(crate) struct Hello {
    pub challenge: Vec<u8>,
    pub trust_root: Vec<u8>,
}

fn frame(request_id: u64, body: pb::client_frame::Body) -> pb::ClientFrame {
    pb::ClientFrame {
        version: pb::ProtocolVersion::ProtocolVersion1 as u32,
        request_id,
        body: Some(body),
    }
}

fn transport(e: impl std::fmt::Display) -> Error {
    Error::Transport(e.to_string())
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<TcpStream>>;

/// Opens TLS and WebSocket to the relay and reads its Hello.
pub(crate) async fn open(relay: &RelayAddress) -> Result<(Ws, Hello)> {
    tokio::time::timeout(CONNECT_TIMEOUT, async {
        let tcp = TcpStream::connect(relay.addr).await.map_err(transport)?;
        tcp.set_nodelay(true).map_err(transport)?;
        let config = client_config(relay.fingerprint).map_err(transport)?;
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let name =
            rustls::pki_types::ServerName::try_from("relay.rankfile.invalid").map_err(transport)?;
        let tls = connector.connect(name, tcp).await.map_err(transport)?;
        let mut ws_config = WebSocketConfig::default();
        ws_config.max_message_size = Some(MAX_FRAME_LEN);
        ws_config.max_frame_size = Some(MAX_FRAME_LEN);
        // Reserved (and zeroed) on every read: the default 128 KiB cost more
        // than decrypting a message. Large frames grow the buffer as needed.
        ws_config.read_buffer_size = READ_BUFFER_LEN;
        let (mut ws, _) = tokio_tungstenite::client_async_with_config(
            "wss://relay.rankfile.invalid/v1",
            tls,
            Some(ws_config),
        )
        .await
        .map_err(transport)?;
        let hello = match read_frame(&mut ws).await?.body {
            Some(pb::server_frame::Body::Hello(h)) => h,
            Some(pb::server_frame::Body::Error(e)) => return Err(relay_error(&e)),
            _ => return Err(Error::Transport("the relay did not say hello".into())),
        };
        if hello.version != pb::ProtocolVersion::ProtocolVersion1 as u32 {
            return Err(Error::Transport(format!(
                "relay speaks protocol {}",
                hello.version
            )));
        }
        Ok((
            ws,
            Hello {
                challenge: hello.challenge,
                trust_root: hello.trust_root,
            },
        ))
    })
    .await
    .map_err(|_| Error::Transport("connecting to the relay timed out".into()))?
}

/// What the relay pushes, in the order it sent it.
pub(crate) enum Incoming {
    /// A message from the mailbox.
    Deliver(pb::Deliver),
    /// Everything that waited in the mailbox at login has been delivered.
    CaughtUp,
}

/// Sends `Auth` (or `Anonymous` when `auth` is `None`) and waits for the answer,
/// then starts the reader and writer. Returns the link, the deliveries, and how
/// many messages wait in the mailbox.
pub(crate) async fn start(
    mut ws: Ws,
    auth: Option<pb::Auth>,
) -> Result<(Link, mpsc::Receiver<Incoming>, u64)> {
    let first = match auth {
        Some(a) => pb::client_frame::Body::Auth(a),
        None => pb::client_frame::Body::Anonymous(pb::Anonymous {}),
    };
    let authenticated = matches!(first, pb::client_frame::Body::Auth(_));
    ws.send(WsMessage::binary(frame(1, first).encode_to_vec()))
        .await
        .map_err(transport)?;
    let mut queued = 0;
    if authenticated {
        let reply = tokio::time::timeout(CONNECT_TIMEOUT, read_frame(&mut ws))
            .await
            .map_err(|_| Error::Transport("login timed out".into()))??;
        match reply.body {
            Some(pb::server_frame::Body::AuthOk(ok)) => queued = ok.queued,
            Some(pb::server_frame::Body::Error(e)) => return Err(relay_error(&e)),
            _ => return Err(Error::Transport("unexpected answer to login".into())),
        }
    }
    let (mut sink, mut stream) = ws.split();
    let pending: Pending = Arc::new(Mutex::new(HashMap::new()));
    let (out, mut out_rx) = mpsc::channel::<pb::ClientFrame>(SEND_QUEUE);
    let (deliver_tx, deliver_rx) = mpsc::channel(DELIVERY_QUEUE);

    tokio::spawn(async move {
        while let Some(f) = out_rx.recv().await {
            if sink
                .send(WsMessage::binary(f.encode_to_vec()))
                .await
                .is_err()
            {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let reader_pending = pending.clone();
    let alive = Arc::new(AtomicBool::new(true));
    let reader_alive = alive.clone();
    tokio::spawn(async move {
        while let Some(msg) = stream.next().await {
            let Ok(msg) = msg else { break };
            let bytes = match msg {
                WsMessage::Binary(b) => b,
                WsMessage::Close(_) => break,
                _ => continue,
            };
            let Ok(f) = pb::ServerFrame::decode(bytes.as_ref()) else {
                break;
            };
            match f.body {
                Some(pb::server_frame::Body::Deliver(d)) => {
                    // Waits while the receive loop is behind: backpressure.
                    let queued = deliver_tx.send(Incoming::Deliver(d)).await;
                    if queued.is_err() {
                        break;
                    }
                }
                // In order behind the backlog's deliveries.
                Some(pb::server_frame::Body::QueueEmpty(_))
                    if f.request_id == 0 && deliver_tx.send(Incoming::CaughtUp).await.is_err() =>
                {
                    break;
                }
                _ if f.request_id != 0 => {
                    let waiter = reader_pending
                        .lock()
                        .ok()
                        .and_then(|mut p| p.remove(&f.request_id));
                    if let Some(w) = waiter {
                        let _ = w.send(f);
                    }
                }
                Some(pb::server_frame::Body::Error(_)) => break,
                _ => {}
            }
        }
        // Dead link: no request waits from now on, and every waiting one
        // fails at once (its sender dropped).
        reader_alive.store(false, Ordering::SeqCst);
        if let Ok(mut p) = reader_pending.lock() {
            p.clear();
        }
    });
    Ok((
        Link {
            out,
            pending,
            next_id: AtomicU64::new(2),
            alive,
        },
        deliver_rx,
        queued,
    ))
}

async fn read_frame(ws: &mut Ws) -> Result<pb::ServerFrame> {
    loop {
        match ws.next().await {
            Some(Ok(WsMessage::Binary(b))) => {
                return pb::ServerFrame::decode(b.as_ref())
                    .map_err(|_| Error::Transport("the relay sent a malformed frame".into()))
            }
            Some(Ok(WsMessage::Close(_))) | None => {
                return Err(Error::Transport("the relay closed the connection".into()))
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(transport(e)),
        }
    }
}

pub(crate) fn relay_error(e: &pb::Error) -> Error {
    let code = pb::error::Code::try_from(e.code).unwrap_or(pb::error::Code::Unspecified);
    Error::Relay {
        code: code.as_str_name().to_string(),
        message: e.message.chars().take(200).collect(),
    }
}

impl Link {
    /// Sends a request and waits for its reply; a relay `Error` becomes
    /// [`Error::Relay`].
    pub(crate) async fn request(
        &self,
        body: pb::client_frame::Body,
    ) -> Result<pb::server_frame::Body> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .map_err(|_| Error::Transport("link state poisoned".into()))?
            .insert(id, tx);
        // Checked after the waiter is in place: a reader that ended before
        // this saw it cleared nothing of ours, so fail here, not in 30 s.
        if !self.alive.load(Ordering::SeqCst) {
            if let Ok(mut p) = self.pending.lock() {
                p.remove(&id);
            }
            return Err(Error::Transport("the connection is closed".into()));
        }
        if self.out.send(frame(id, body)).await.is_err() {
            return Err(Error::Transport("the connection is closed".into()));
        }
        let reply = tokio::time::timeout(REQUEST_TIMEOUT, rx)
            .await
            .map_err(|_| Error::Transport("the relay did not answer in time".into()))?
            .map_err(|_| Error::Transport("the connection closed".into()))?;
        match reply.body {
            Some(pb::server_frame::Body::Error(e)) => Err(relay_error(&e)),
            Some(b) => Ok(b),
            None => Err(Error::Transport("empty reply".into())),
        }
    }

    /// Sends a frame that takes no reply (an Ack).
    pub(crate) async fn notify(&self, body: pb::client_frame::Body) -> Result<()> {
        self.out
            .send(frame(0, body))
            .await
            .map_err(|_| Error::Transport("the connection is closed".into()))
    }

    /// Whether the link still works: the relay has not closed it and the
    /// writer still runs.
    pub(crate) fn is_open(&self) -> bool {
        self.alive.load(Ordering::SeqCst) && !self.out.is_closed()
    }

    /// A handle that sends notifications from outside the runtime.
    pub(crate) fn notifier(&self) -> Notifier {
        Notifier {
            out: self.out.clone(),
        }
    }
}

/// Sends notifications (acknowledgements) from a thread that is not running
/// async code: a blocking task that has just flushed a receive batch.
#[derive(Clone)]
pub(crate) struct Notifier {
    out: mpsc::Sender<pb::ClientFrame>,
}

impl Notifier {
    /// Queues a notification for the writer, waiting for room. Never call it
    /// from async code: it blocks the thread.
    pub(crate) fn notify_blocking(&self, body: pb::client_frame::Body) -> Result<()> {
        self.out
            .blocking_send(frame(0, body))
            .map_err(|_| Error::Transport("the connection is closed".into()))
    }
}
