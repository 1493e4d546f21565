//! Test support: an in-process relay in a temporary directory, and a small
//! client speaking the relay protocol over real TLS (pinned by fingerprint) and
//! WebSocket on loopback; a recording push service (`push_server`).
#![allow(dead_code)]

pub mod load;
pub mod postgres;
pub mod push_server;
pub mod watch;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use libsignal_protocol::{kem, IdentityKeyPair, KeyPair};
use prost::Message as _;
use rankfile_proto::v1::{
    self as pb, client_frame::Body as In, error::Code, server_frame::Body as Out,
};
use rankfile_relay::{Config, RelayHandle};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// How long a test waits for any one frame before failing.
pub const WAIT: Duration = Duration::from_secs(20);

/// A relay running in this process over a temporary data directory.
pub struct TestRelay {
    pub handle: Option<RelayHandle>,
    pub dir: tempfile::TempDir,
    pub config: Config,
}

impl TestRelay {
    /// Starts a relay with default settings.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts a relay after `tweak` has adjusted its configuration.
    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = Config::local(dir.path());
        tweak(&mut config);
        let handle = rankfile_relay::start(config.clone())
            .await
            .expect("relay starts");
        TestRelay {
            handle: Some(handle),
            dir,
            config,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.handle.as_ref().expect("running").local_addr()
    }

    pub fn fingerprint(&self) -> String {
        self.handle
            .as_ref()
            .expect("running")
            .fingerprint()
            .to_owned()
    }

    /// Shuts the relay down and starts it again on the same data directory.
    pub async fn restart(&mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown().await;
        }
        self.handle = Some(
            rankfile_relay::start(self.config.clone())
                .await
                .expect("relay restarts"),
        );
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("relay.db")
    }

    /// Opens the database read-only for checks.
    pub fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open_with_flags(
            self.db_path(),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .expect("open db")
    }

    pub fn count(&self, table: &str) -> i64 {
        self.db()
            .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .expect("count")
    }

    /// Every byte the relay's database files hold (main file and WAL).
    pub fn db_bytes(&self) -> Vec<u8> {
        let mut all = Vec::new();
        for suffix in ["", "-wal"] {
            let mut p = self.db_path().into_os_string();
            p.push(suffix);
            if let Ok(b) = std::fs::read(&p) {
                all.extend(b);
            }
        }
        all
    }

    pub async fn client(&self) -> Client {
        Client::connect(self.addr(), &self.fingerprint()).await
    }

    /// A connected, authenticated client.
    pub async fn device(&self, id: &Identity) -> Client {
        let mut c = self.client().await;
        c.auth(id).await;
        c
    }
}

/// Whether `haystack` contains `needle`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Accepts exactly the certificate whose SHA-256 is pinned.
#[derive(Debug)]
struct Pinned {
    fingerprint: String,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if rankfile_relay::fingerprint_of(end_entity.as_ref()) == self.fingerprint {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "certificate does not match the pinned fingerprint".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A TLS client configuration pinned to `fingerprint`.
pub fn tls_config(fingerprint: &str) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(Pinned {
        fingerprint: fingerprint.to_owned(),
        provider: provider.clone(),
    });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("tls13")
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Arc::new(config)
}

/// A device identity for tests.
pub struct Identity {
    pub pair: IdentityKeyPair,
    pub account: [u8; 20],
    pub device: u32,
}

impl Identity {
    pub fn new(device: u32) -> Self {
        let pair = IdentityKeyPair::generate(&mut rand::rng());
        let account = rankfile_relay::account_id_for(pair.identity_key());
        Identity {
            pair,
            account,
            device,
        }
    }

    /// Another device of the same account.
    pub fn other_device(&self, device: u32) -> Self {
        Identity {
            pair: self.pair,
            account: self.account,
            device,
        }
    }

    pub fn auth(&self, challenge: &[u8]) -> pb::Auth {
        let msg = rankfile_relay::auth_message(challenge, &self.account, self.device);
        let signature = self
            .pair
            .private_key()
            .calculate_signature(&msg, &mut rand::rng())
            .expect("sign")
            .to_vec();
        pb::Auth {
            account_id: self.account.to_vec(),
            device_id: self.device,
            identity_key: self.pair.identity_key().serialize().to_vec(),
            signature,
        }
    }

    /// A valid upload: signed EC key, last-resort Kyber, `n` one-time keys of each kind.
    pub fn prekeys(&self, first_id: u32, n: u32) -> pb::UploadPreKeys {
        let mut rng = rand::rng();
        let sign = |bytes: &[u8]| {
            self.pair
                .private_key()
                .calculate_signature(bytes, &mut rand::rng())
                .expect("sign")
                .to_vec()
        };
        let ec = KeyPair::generate(&mut rng).public_key.serialize().to_vec();
        let kyber = kem::KeyPair::generate(kem::KeyType::Kyber1024, &mut rng)
            .public_key
            .serialize()
            .to_vec();
        pb::UploadPreKeys {
            registration_id: 77,
            signed_prekey: Some(pb::SignedPreKey {
                id: 1,
                signature: sign(&ec),
                public_key: ec,
            }),
            kyber_last_resort: Some(pb::SignedPreKey {
                id: 9999,
                signature: sign(&kyber),
                public_key: kyber,
            }),
            one_time_prekeys: (first_id..first_id + n)
                .map(|id| pb::OneTimePreKey {
                    id,
                    public_key: KeyPair::generate(&mut rand::rng())
                        .public_key
                        .serialize()
                        .to_vec(),
                })
                .collect(),
            one_time_kyber_prekeys: (first_id..first_id + n)
                .map(|id| {
                    let k = kem::KeyPair::generate(kem::KeyType::Kyber1024, &mut rand::rng())
                        .public_key
                        .serialize()
                        .to_vec();
                    pb::SignedPreKey {
                        id,
                        signature: sign(&k),
                        public_key: k,
                    }
                })
                .collect(),
        }
    }
}

/// A protocol client.
pub struct Client {
    pub ws: WebSocketStream<TlsStream<TcpStream>>,
    pub hello: pb::Hello,
    next_id: u64,
    /// Frames read while waiting for something else (pushes, other replies).
    pub backlog: VecDeque<pb::ServerFrame>,
}

impl Client {
    /// Connects, checks the pinned certificate, reads Hello.
    pub async fn connect(addr: SocketAddr, fingerprint: &str) -> Client {
        let tcp = TcpStream::connect(addr).await.expect("tcp connect");
        let connector = tokio_rustls::TlsConnector::from(tls_config(fingerprint));
        let tls = connector
            .connect(ServerName::try_from("localhost").expect("name"), tcp)
            .await
            .expect("tls");
        let (ws, _) = tokio_tungstenite::client_async_with_config(
            "ws://localhost/",
            tls,
            Some(rankfile_relay::websocket_config()),
        )
        .await
        .expect("websocket");
        let mut c = Client {
            ws,
            hello: pb::Hello::default(),
            next_id: 0,
            backlog: VecDeque::new(),
        };
        match c.recv().await.and_then(|f| f.body) {
            Some(Out::Hello(h)) => c.hello = h,
            other => panic!("expected Hello, got {other:?}"),
        }
        c
    }

    /// Sends a raw WebSocket message.
    pub async fn send_message(&mut self, m: Message) {
        self.ws.send(m).await.expect("send");
    }

    /// Sends a frame with a fresh request ID and returns that ID.
    pub async fn send(&mut self, body: In) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        let f = pb::ClientFrame {
            version: 1,
            request_id: id,
            body: Some(body),
        };
        self.send_message(Message::binary(f.encode_to_vec())).await;
        id
    }

    /// The next frame from the socket (not the backlog); `None` once closed.
    pub async fn recv(&mut self) -> Option<pb::ServerFrame> {
        loop {
            let m = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("frame in time");
            match m {
                None | Some(Err(_)) => return None,
                Some(Ok(Message::Binary(b))) => {
                    return Some(pb::ServerFrame::decode(&b[..]).expect("server frame"))
                }
                Some(Ok(Message::Close(_))) => return None,
                Some(Ok(_)) => continue,
            }
        }
    }

    /// Sends a request and waits for its reply, keeping other frames in the backlog.
    pub async fn request(&mut self, body: In) -> Out {
        let id = self.send(body).await;
        self.reply_to(id).await
    }

    /// Waits for the reply to request `id`.
    pub async fn reply_to(&mut self, id: u64) -> Out {
        if let Some(pos) = self
            .backlog
            .iter()
            .position(|f| f.request_id == id && !is_push(f))
        {
            let f = self.backlog.remove(pos).expect("present");
            return f.body.expect("body");
        }
        loop {
            let f = self
                .recv()
                .await
                .expect("connection open while waiting for a reply");
            if f.request_id == id && !is_push(&f) {
                return f.body.expect("body");
            }
            self.backlog.push_back(f);
        }
    }

    /// The next pushed frame (Deliver or QueueEmpty).
    pub async fn push(&mut self) -> Out {
        if let Some(pos) = self.backlog.iter().position(is_push) {
            return self
                .backlog
                .remove(pos)
                .expect("present")
                .body
                .expect("body");
        }
        loop {
            let f = self
                .recv()
                .await
                .expect("connection open while waiting for a push");
            if is_push(&f) {
                return f.body.expect("body");
            }
            self.backlog.push_back(f);
        }
    }

    /// Deliveries up to the next QueueEmpty.
    pub async fn backlog_deliveries(&mut self) -> Vec<pb::Deliver> {
        let mut out = Vec::new();
        loop {
            match self.push().await {
                Out::Deliver(d) => out.push(d),
                Out::QueueEmpty(_) => return out,
                other => panic!("unexpected push {other:?}"),
            }
        }
    }

    /// The next delivery (skipping QueueEmpty).
    pub async fn delivery(&mut self) -> pb::Deliver {
        loop {
            match self.push().await {
                Out::Deliver(d) => return d,
                Out::QueueEmpty(_) => continue,
                other => panic!("unexpected push {other:?}"),
            }
        }
    }

    /// Logs in; panics unless AuthOk.
    pub async fn auth(&mut self, id: &Identity) -> pb::AuthOk {
        let a = id.auth(&self.hello.challenge);
        match self.request(In::Auth(a)).await {
            Out::AuthOk(ok) => ok,
            other => panic!("expected AuthOk, got {other:?}"),
        }
    }

    pub async fn ack(&mut self, ids: Vec<u64>) {
        let f = pb::ClientFrame {
            version: 1,
            request_id: 0,
            body: Some(In::Ack(pb::Ack { ids })),
        };
        self.send_message(Message::binary(f.encode_to_vec())).await;
    }

    /// A Ping round trip: proves the relay is still serving this connection
    /// (and, after Acks, that they were processed before it).
    pub async fn ping(&mut self) {
        match self.request(In::Ping(pb::Ping {})).await {
            Out::Pong(_) => {}
            other => panic!("expected Pong, got {other:?}"),
        }
    }

    /// Closes the connection and waits for the relay's side of the close: by
    /// then the relay no longer counts this device as connected.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
        while self.recv().await.is_some() {}
    }

    /// Registers (or, with `""`, clears) this device's push endpoint.
    pub async fn set_push_endpoint(&mut self, url: &str) -> Out {
        self.request(In::SetPushEndpoint(pb::SetPushEndpoint {
            url: url.to_owned(),
        }))
        .await
    }

    /// Waits until the relay closes the connection, collecting what it sent.
    pub async fn until_closed(&mut self) -> Vec<pb::ServerFrame> {
        let mut frames: Vec<pb::ServerFrame> = self.backlog.drain(..).collect();
        while let Some(f) = self.recv().await {
            frames.push(f);
        }
        frames
    }
}

fn is_push(f: &pb::ServerFrame) -> bool {
    matches!(
        f.body,
        Some(Out::Deliver(_)) | Some(Out::QueueEmpty(_)) | Some(Out::Hello(_))
    )
}

/// The error code of a reply; panics if it is not an error.
pub fn error_code(out: &Out) -> Code {
    match out {
        Out::Error(e) => Code::try_from(e.code).expect("known code"),
        other => panic!("expected an error, got {other:?}"),
    }
}

/// The error codes among frames.
pub fn error_codes(frames: &[pb::ServerFrame]) -> Vec<Code> {
    frames
        .iter()
        .filter_map(|f| match &f.body {
            Some(Out::Error(e)) => Code::try_from(e.code).ok(),
            _ => None,
        })
        .collect()
}

pub fn send_to(to: &Identity, envelope: &[u8]) -> In {
    In::Send(pb::SendMessage {
        recipient_account_id: to.account.to_vec(),
        recipient_device_id: to.device,
        envelope: envelope.to_vec(),
        priority: pb::Priority::Normal as i32,
    })
}

pub fn sealed_to(to: &Identity, access_key: &[u8], envelope: &[u8]) -> In {
    In::SendSealed(pb::SendSealed {
        recipient_account_id: to.account.to_vec(),
        recipient_device_id: to.device,
        access_key: access_key.to_vec(),
        envelope: envelope.to_vec(),
        priority: pb::Priority::Normal as i32,
    })
}

/// An identified send at high priority (an alert).
pub fn high_to(to: &Identity, envelope: &[u8]) -> In {
    let mut send = send_to(to, envelope);
    if let In::Send(s) = &mut send {
        s.priority = pb::Priority::High as i32;
    }
    send
}

/// Asks for an upload token (on a logged-in connection) for `size` bytes.
pub async fn upload_token(c: &mut Client, size: u64) -> Vec<u8> {
    match c
        .request(In::UploadToken(pb::UploadTokenRequest { size }))
        .await
    {
        Out::UploadToken(t) => t.token,
        other => panic!("expected an upload token, got {other:?}"),
    }
}

/// The first chunk of an upload, presenting `token`.
pub fn first_chunk(token: &[u8], address: &[u8], total: u64, data: &[u8]) -> In {
    In::PutAttachment(pb::PutAttachment {
        address: address.to_vec(),
        total_size: total,
        offset: 0,
        data: data.to_vec(),
        upload_token: token.to_vec(),
        delete_key_hash: Vec::new(),
    })
}

/// Expects a SendResult.
pub fn assert_sent(out: Out) -> pb::SendResult {
    match out {
        Out::SendResult(r) => r,
        other => panic!("expected SendResult, got {other:?}"),
    }
}
