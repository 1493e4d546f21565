//! One client connection: TLS and WebSocket handshakes, Hello, Auth or
//! Anonymous, then requests and pushed deliveries until either side goes.
//!
//! Each connection is one task with one loop. Requests that wait on the store
//! (sends wait for the group commit) run as futures in a bounded queue, so a
//! client can pipeline sends without the relay buffering without limit; past
//! the bound the relay simply stops reading that client. Deliveries come from
//! the hub (handed over right after their commit) while the connection keeps up,
//! else from the store, up to the window of unacknowledged messages.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::FuturesOrdered;
use futures_util::{FutureExt, SinkExt, StreamExt};
use rankfile_proto::v1::{
    self as pb, client_frame::Body as In, error::Code, server_frame::Body as Out,
};
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};
use tokio_rustls::server::TlsStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

use crate::attachment::{self, Upload};
use crate::auth::{self, Challenge};
use crate::directory::{self, Identity};
use crate::error::{Error, Result};
use crate::frame::{self, outcome, reply, Refusal};
use crate::guard::OpenToken;
use crate::hub::Slot;
use crate::limits::{
    MAX_FRAME_BYTES, MAX_PENDING_REQUESTS, MAX_UNAUTHENTICATED_REFUSALS, WS_READ_BUFFER,
};
use crate::mailbox::{self, Delivery};
use crate::push;
use crate::relay::Relay;
use crate::shutdown::Shutdown;
use crate::storage::MailboxId;

type Ws = WebSocketStream<TlsStream<TcpStream>>;
type Pending = Pin<Box<dyn Future<Output = Option<pb::ServerFrame>> + Send>>;

/// A request's frame bytes counted against its connection's in-flight bound
/// until the request is answered (or dropped with the connection).
struct InFlight(Arc<AtomicUsize>, usize);

impl InFlight {
    fn charge(counter: &Arc<AtomicUsize>, bytes: usize) -> Self {
        counter.fetch_add(bytes, Ordering::Relaxed);
        InFlight(counter.clone(), bytes)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(self.1, Ordering::Relaxed);
    }
}

/// Acknowledged IDs accepted in one Ack frame.
const MAX_ACK_IDS: usize = 4096;

/// The WebSocket settings: small buffers (most connections idle) and the frame limit.
pub fn websocket_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(WS_READ_BUFFER)
        .write_buffer_size(0)
        .max_write_buffer_size(4 * MAX_FRAME_BYTES)
        .max_message_size(Some(MAX_FRAME_BYTES))
        .max_frame_size(Some(MAX_FRAME_BYTES))
}

/// Who is on the other end.
enum Role {
    /// Hello sent, waiting for Auth or Anonymous; counts refused frames.
    Pending { refusals: u32 },
    /// Sealed sends and attachments only.
    Anonymous,
    /// An authenticated device.
    Device(Box<Session>),
}

struct Session {
    mailbox: MailboxId,
    identity: Identity,
    slot: Arc<Slot>,
    delivery: Delivery,
}

/// Why the loop ended (for the debug log only).
enum End {
    Closed,
    Refused,
    Displaced,
    Shutdown,
    Idle,
}

struct Connection {
    relay: Arc<Relay>,
    ws: Ws,
    challenge: Challenge,
    role: Role,
    pending: FuturesOrdered<Pending>,
    /// Bytes of the request frames in `pending` (see `Config::max_in_flight_bytes`).
    in_flight: Arc<AtomicUsize>,
    /// Size of the frame being handled, charged to `in_flight` if it waits.
    frame_bytes: usize,
    upload: Option<Box<Upload>>,
    out: Vec<pb::ServerFrame>,
    last_heard: Instant,
    /// A ping is out: when it went, and by when the connection must say
    /// something.
    ping: Option<(Instant, Instant)>,
    started: Instant,
    /// The source address, for the per-address limits only: never logged or stored.
    peer: IpAddr,
    /// Counts this connection open while it lives.
    _open: OpenToken,
}

/// Serves one accepted TCP connection to its end.
pub async fn serve(
    relay: Arc<Relay>,
    acceptor: tokio_rustls::TlsAcceptor,
    tcp: TcpStream,
    mut shutdown: Shutdown,
) {
    let started = Instant::now();
    let Ok(peer) = tcp.peer_addr().map(|a| a.ip()) else {
        return;
    };
    let open = relay.guard.opened();
    let handshake = async {
        let tls = acceptor.accept(tcp).await?;
        let ws = tokio_tungstenite::accept_async_with_config(tls, Some(websocket_config())).await?;
        Ok::<_, Error>(ws)
    };
    let ws = tokio::select! {
        // Boxed: the handshake's large state is freed once it is done, instead of
        // sizing the connection's long-lived future.
        r = timeout(relay.config.handshake_timeout(), Box::pin(handshake)) => match r {
            Ok(Ok(ws)) => ws,
            Ok(Err(e)) => { tracing::debug!(error = %e, "handshake failed"); return; }
            Err(_) => { tracing::debug!("handshake timed out"); return; }
        },
        _ = shutdown.recv() => return,
    };
    let mut conn = Box::new(Connection {
        relay,
        ws,
        challenge: auth::new_challenge(),
        role: Role::Pending { refusals: 0 },
        pending: FuturesOrdered::new(),
        in_flight: Arc::new(AtomicUsize::new(0)),
        frame_bytes: 0,
        upload: None,
        out: Vec::new(),
        last_heard: Instant::now(),
        ping: None,
        started,
        peer,
        _open: open,
    });
    let end = conn.run(&mut shutdown).await;
    conn.finish(end).await;
}

async fn mail(role: &Role) {
    match role {
        Role::Device(s) => s.slot.notify.notified().await,
        _ => std::future::pending().await,
    }
}

impl Connection {
    async fn run(&mut self, shutdown: &mut Shutdown) -> Result<End> {
        let hello = pb::Hello {
            version: frame::PROTOCOL_VERSION,
            challenge: self.challenge.to_vec(),
            server_time_ms: self.relay.now_ms(),
            trust_root: self.relay.trust_root.clone(),
        };
        self.out.push(reply(0, Out::Hello(hello)));
        loop {
            self.deliver().await?;
            self.flush().await?;
            let deadline = self.deadline();
            tokio::select! {
                biased;
                _ = shutdown.recv() => return Ok(End::Shutdown),
                Some(done) = self.pending.next(), if !self.pending.is_empty() => {
                    if let Some(f) = done { self.out.push(f); }
                    // Collect every other finished request too (a group commit
                    // finishes many at once): one flush for all their replies.
                    while let Some(Some(done)) = self.pending.next().now_or_never() {
                        if let Some(f) = done { self.out.push(f); }
                    }
                }
                _ = mail(&self.role) => {
                    if let Role::Device(s) = &mut self.role {
                        if s.slot.is_displaced() { return Ok(End::Displaced); }
                        s.delivery.woken();
                    }
                }
                msg = self.ws.next(), if self.may_read() => {
                    if let Some(end) = Box::pin(self.on_read(msg)).await? { return Ok(end); }
                    // Take whatever else has already arrived before flushing, so
                    // replies to a burst of requests share TLS records.
                    while self.may_read() && self.out.len() < 64 {
                        let Some(msg) = self.ws.next().now_or_never() else { break };
                        if let Some(end) = Box::pin(self.on_read(msg)).await? { return Ok(end); }
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {
                    if matches!(self.role, Role::Pending { .. } | Role::Anonymous) || self.ping.is_some() {
                        return Ok(End::Idle);
                    }
                    // Silence, or an alert waiting with nothing heard since it
                    // went: ask, and wait as long again for any answer.
                    let config = &self.relay.config;
                    let wait = if self.alert_probe_due().is_some() { config.alert_ack() } else { config.keepalive() };
                    let now = Instant::now();
                    self.ping = Some((now, now + wait));
                    self.ws.feed(Message::Ping(Vec::new().into())).await?;
                }
            }
        }
    }

    /// When the connection next needs attention if nothing arrives.
    fn deadline(&self) -> Instant {
        let config = &self.relay.config;
        match self.role {
            Role::Pending { .. } => return self.started + config.handshake_timeout(),
            // Sealed sends and attachment transfers are short: a silent
            // anonymous connection only holds a slot.
            Role::Anonymous => return self.last_heard + config.anonymous_idle(),
            Role::Device(_) => {}
        }
        let quiet = match self.ping {
            Some((_, answer_by)) => answer_by,
            None => self.last_heard + config.keepalive(),
        };
        match self.alert_probe_due() {
            Some(due) => quiet.min(due),
            None => quiet,
        }
    }

    /// When an alert pushed here, unacknowledged, with nothing heard from the
    /// connection since and no ping sent after it, is due to be probed.
    fn alert_probe_due(&self) -> Option<Instant> {
        let Role::Device(s) = &self.role else {
            return None;
        };
        let pushed = s.delivery.high_waiting_since()?;
        let pinged_after = self.ping.is_some_and(|(sent, _)| sent >= pushed);
        (pushed >= self.last_heard && !pinged_after).then(|| pushed + self.relay.config.alert_ack())
    }

    async fn flush(&mut self) -> Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let write = async {
            for f in self.out.drain(..) {
                self.ws.feed(Message::binary(frame::encode(&f))).await?;
            }
            self.ws.flush().await?;
            Ok::<_, Error>(())
        };
        let limit = Duration::from_secs(self.relay.config.write_timeout_secs.max(1));
        timeout(limit, write)
            .await
            .map_err(|_| Error::WebSocket("write timed out".into()))?
    }

    /// Pushes mail handed over from the last commits, then stored mail while
    /// the window has room.
    async fn deliver(&mut self) -> Result<()> {
        let Role::Device(s) = &mut self.role else {
            return Ok(());
        };
        let window = self.relay.config.delivery_window;
        if !s.delivery.push_fresh(s.slot.take(), window, &mut self.out) {
            s.slot.accept(false);
        }
        let limit = s.delivery.room(window);
        if !s.delivery.wanted || limit == 0 {
            return Ok(());
        }
        // Accept hand-overs before reading: whatever commits after the read
        // then reaches this connection from memory.
        s.slot.accept(true);
        let messages = self
            .relay
            .store
            .fetch(s.mailbox, s.delivery.cursor, self.relay.now_ms(), limit)
            .await?;
        s.delivery.push(messages, limit, &mut self.out);
        if !s.delivery.live {
            s.slot.accept(false);
        }
        Ok(())
    }

    /// Handles one read from the socket; `Some` ends the connection.
    async fn on_read(
        &mut self,
        msg: Option<Result<Message, tungstenite::Error>>,
    ) -> Result<Option<End>> {
        let msg = match msg {
            None => return Ok(Some(End::Closed)),
            Some(Ok(m)) => m,
            Some(Err(tungstenite::Error::Capacity(_))) => {
                return self
                    .refuse_and_close(0, Refusal::too_large("frame too large"))
                    .await;
            }
            Some(Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed)) => {
                return Ok(Some(End::Closed));
            }
            Some(Err(e)) => return Err(e.into()),
        };
        self.last_heard = Instant::now();
        self.ping = None;
        match msg {
            Message::Binary(bytes) => match frame::decode(&bytes) {
                Ok((request_id, body)) => {
                    self.frame_bytes = bytes.len();
                    drop(bytes);
                    self.on_request(request_id, body).await
                }
                Err((request_id, refusal)) => self.refuse_and_close(request_id, refusal).await,
            },
            Message::Text(_) => {
                self.refuse_and_close(0, Refusal::malformed("text frames are not spoken"))
                    .await
            }
            Message::Close(_) => Ok(Some(End::Closed)),
            // Pings are answered by tungstenite itself; pongs only prove liveness.
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => Ok(None),
        }
    }

    async fn refuse_and_close(&mut self, request_id: u64, refusal: Refusal) -> Result<Option<End>> {
        tracing::debug!(code = ?refusal.code, "refusing and closing");
        self.out.push(refusal.into_frame(request_id));
        // Best effort: the peer may already be gone.
        let _ = self.flush().await;
        Ok(Some(End::Refused))
    }

    /// Whether another frame may be read: the requests waiting for their
    /// commit are within both the count and the byte bound.
    fn may_read(&self) -> bool {
        self.pending.len() < MAX_PENDING_REQUESTS
            && self.in_flight.load(Ordering::Relaxed) < self.relay.config.max_in_flight_bytes
    }

    fn later<F>(&mut self, request_id: u64, f: F)
    where
        F: Future<Output = frame::Reply> + Send + 'static,
    {
        let charge = InFlight::charge(&self.in_flight, self.frame_bytes);
        self.pending.push_back(Box::pin(f.map(move |r| {
            drop(charge);
            Some(outcome(request_id, r))
        })));
    }

    async fn on_request(&mut self, request_id: u64, body: In) -> Result<Option<End>> {
        let relay = self.relay.clone();
        if adds_data(&body) {
            if let Err(refusal) = relay.disk.check() {
                self.out.push(refusal.into_frame(request_id));
                return Ok(None);
            }
        }
        match (&mut self.role, body) {
            (Role::Pending { .. }, In::Auth(a)) => return self.login(request_id, a).await,
            (Role::Pending { .. }, In::Anonymous(_)) => {
                if let Err(refusal) = relay.guard.anonymous_opened(self.peer) {
                    return self.refuse_and_close(request_id, refusal).await;
                }
                self.role = Role::Anonymous;
                self.out.push(reply(request_id, Out::Ok(pb::Ok {})));
            }
            (_, In::Auth(_) | In::Anonymous(_)) => {
                self.out.push(
                    Refusal::new(Code::AlreadyAuthenticated, "already authenticated")
                        .into_frame(request_id),
                );
            }
            (Role::Pending { refusals }, _) => {
                *refusals += 1;
                if *refusals >= MAX_UNAUTHENTICATED_REFUSALS {
                    return self
                        .refuse_and_close(
                            request_id,
                            Refusal::new(Code::NotAuthenticated, "authenticate first"),
                        )
                        .await;
                }
                self.out.push(
                    Refusal::new(Code::NotAuthenticated, "authenticate first")
                        .into_frame(request_id),
                );
            }
            // Replies leave in request order, so a Pong also tells the client
            // that everything it sent before the Ping (an Ack, say) is done.
            (_, In::Ping(_)) => self.later(request_id, async move {
                Ok(Out::Pong(pb::Pong {
                    server_time_ms: relay.now_ms(),
                }))
            }),
            (role, In::SendSealed(req)) => {
                relay.traffic.sealed(!matches!(role, Role::Device(_)));
                self.later(request_id, async move {
                    mailbox::send_sealed(&relay, req).await
                })
            }
            (role, In::SendMultiSealed(req)) => {
                relay.traffic.sealed(!matches!(role, Role::Device(_)));
                self.later(
                    request_id,
                    async move { mailbox::send_multi(&relay, req).await },
                )
            }
            (_, In::PutAttachment(req)) => {
                let r = attachment::put(&relay, &mut self.upload, req).await;
                self.out.push(outcome(request_id, r));
            }
            (_, In::GetAttachment(req)) => {
                self.later(
                    request_id,
                    async move { attachment::get(&relay, req).await },
                )
            }
            // Authorised by the target's access key, asker unknown.
            (Role::Anonymous, In::FetchBundle(req)) => {
                relay.traffic.fetch(true);
                self.later(request_id, async move {
                    directory::fetch(&relay, directory::Fetcher::Anonymous, req).await
                })
            }
            (Role::Anonymous, _) => {
                self.out.push(
                    Refusal::new(Code::NotAuthenticated, "not allowed anonymously")
                        .into_frame(request_id),
                );
            }
            (Role::Device(s), body) => {
                let me = s.mailbox;
                let identity = s.identity.clone();
                match body {
                    In::Ack(ack) => {
                        if ack.ids.len() > MAX_ACK_IDS {
                            self.out.push(
                                Refusal::too_large("too many ids in one ack")
                                    .into_frame(request_id),
                            );
                            return Ok(None);
                        }
                        s.delivery.acked(&ack.ids);
                        self.pending.push_back(Box::pin(async move {
                            if let Err(e) = relay.store.ack(me, ack.ids).await {
                                tracing::warn!(error = %e, "ack failed");
                            }
                            None
                        }));
                    }
                    In::Send(req) => match relay.guard.identified_sends.check(me) {
                        Ok(()) => {
                            self.later(request_id, async move { mailbox::send(&relay, req).await })
                        }
                        Err(refusal) => self.out.push(refusal.into_frame(request_id)),
                    },
                    In::UploadPrekeys(req) => self.later(request_id, async move {
                        directory::upload(&relay, me, &identity, req).await
                    }),
                    In::PrekeyCount(_) => {
                        self.later(
                            request_id,
                            async move { directory::count(&relay, me).await },
                        )
                    }
                    In::FetchBundle(req) => {
                        relay.traffic.fetch(false);
                        self.later(request_id, async move {
                            directory::fetch(&relay, directory::Fetcher::Device(me), req).await
                        })
                    }
                    In::SetAccessKey(req) => self.later(request_id, async move {
                        directory::set_access_key(&relay, me, req).await
                    }),
                    In::SetPushEndpoint(req) => self.later(request_id, async move {
                        push::set_endpoint(&relay, me, req).await
                    }),
                    In::DeleteAccount(req) => {
                        let r = crate::deletion::delete_account(&relay, me.account, req).await;
                        let done = r.is_ok();
                        self.out.push(outcome(request_id, r));
                        if done {
                            // Best effort: the answer is sent before hanging up.
                            let _ = self.flush().await;
                            return Ok(Some(End::Closed));
                        }
                    }
                    In::UploadToken(req) => {
                        let r = relay.uploads.issue(me.account, &req, relay.now_ms());
                        self.out.push(outcome(request_id, r));
                    }
                    In::SenderCertificate(_) => {
                        let r = directory::sender_certificate(&relay, me, &identity);
                        self.out.push(outcome(request_id, r));
                    }
                    // Handled above for every role.
                    In::Auth(_)
                    | In::Anonymous(_)
                    | In::Ping(_)
                    | In::SendSealed(_)
                    | In::SendMultiSealed(_)
                    | In::PutAttachment(_)
                    | In::GetAttachment(_) => {}
                }
            }
        }
        Ok(None)
    }

    async fn login(&mut self, request_id: u64, a: pb::Auth) -> Result<Option<End>> {
        let (mailbox, key) = match auth::verify(
            &self.challenge,
            &a.account_id,
            a.device_id,
            &a.identity_key,
            &a.signature,
        ) {
            Ok(v) => v,
            Err(e) => {
                return self
                    .refuse_and_close(request_id, Refusal::new(Code::AuthFailed, e.to_string()))
                    .await
            }
        };
        let now = self.relay.now_ms();
        // Only a first login registers a device: that is what is limited per
        // address, so minting throwaway accounts is slow.
        let known = self
            .relay
            .devices
            .get(self.relay.store.as_ref(), mailbox)
            .await?
            .is_some();
        if !known {
            let allowed = self
                .relay
                .disk
                .check()
                .and_then(|()| self.relay.guard.registrations.check(self.peer));
            if let Err(refusal) = allowed {
                return self.refuse_and_close(request_id, refusal).await;
            }
        }
        if self
            .relay
            .store
            .register_device(mailbox, key.serialize().to_vec(), now)
            .await?
        {
            tracing::debug!(?mailbox, "device registered");
        }
        let queued = self.relay.store.queued(mailbox, now).await?;
        let slot = self.relay.hub.register(mailbox);
        self.relay.push.connected(&mailbox);
        self.role = Role::Device(Box::new(Session {
            mailbox,
            identity: Arc::new(key),
            slot,
            delivery: Delivery::new(),
        }));
        self.out
            .push(reply(request_id, Out::AuthOk(pb::AuthOk { queued })));
        Ok(None)
    }

    async fn finish(mut self: Box<Self>, end: Result<End>) {
        match &end {
            Ok(End::Closed) | Ok(End::Idle) | Ok(End::Displaced) | Ok(End::Refused) => {}
            Ok(End::Shutdown) => {
                let _ = timeout(Duration::from_secs(1), self.ws.close(None)).await;
            }
            Err(e) => tracing::debug!(error = %e, "connection ended with an error"),
        }
        // A newer connection of the device delivers its mail; a relay
        // shutting down keeps it for the device's return.
        let gone = !matches!(end, Ok(End::Displaced) | Ok(End::Shutdown));
        if let Role::Device(s) = &self.role {
            self.relay.hub.unregister(&s.mailbox, &s.slot);
            if gone {
                let (mailbox, unacknowledged) = (s.mailbox, s.delivery.high_unacknowledged());
                let pushed_up_to = s.delivery.cursor.high;
                wake_if_alert_left(&self.relay, mailbox, unacknowledged, pushed_up_to).await;
            }
        }
        if let Role::Anonymous = self.role {
            self.relay.guard.anonymous_closed(self.peer);
        }
        if let Some(up) = self.upload.take() {
            up.discard().await;
        }
        if !matches!(end, Ok(End::Shutdown)) {
            let _ = timeout(Duration::from_secs(1), self.ws.close(None)).await;
        }
    }
}

/// Whether a request adds data to the relay's disk (refused while the disk
/// reserve is reached); acknowledgements and reads, which do not, always go.
fn adds_data(body: &In) -> bool {
    match body {
        In::Send(_) | In::SendSealed(_) | In::SendMultiSealed(_) | In::UploadToken(_) => true,
        In::PutAttachment(p) => p.offset == 0,
        _ => false,
    }
}

/// A device whose connection ended is offline. High-priority mail committed
/// while it was connected woke no one: it was handed to the connection, which
/// may have pushed it into a socket already dead (a phone that lost its
/// network is noticed only at the keepalive) or ended before pushing it. If
/// any of it was not acknowledged, the device is woken as if that mail had
/// come after it left. What was pushed is known here (`unacknowledged`);
/// what never was lies above `pushed_up_to`, in the store.
async fn wake_if_alert_left(
    relay: &Relay,
    mailbox: MailboxId,
    unacknowledged: bool,
    pushed_up_to: u64,
) {
    let left = unacknowledged
        || match relay
            .store
            .high_after(mailbox, pushed_up_to, relay.now_ms())
            .await
        {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(error = %e, "could not look for alerts left undelivered");
                false
            }
        };
    if left {
        relay.push.wake(vec![mailbox]);
    }
}
