//! [`Client`]: the account plus its connection manager.

use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use rankfile_proto::v1 as pb;
use std::sync::Arc;

use tokio::sync::{broadcast, mpsc, oneshot, watch, Notify};
use tokio::task::JoinHandle;

use super::actor::{AccountHandle, AccountThread};
use super::backoff::Backoff;
use super::bundles::{fetch_bundle, greet_members, reopen_sessions};
use super::link::{self, Incoming, Link, RelayAddress};
use super::outbox_flush::{flush_outbox, next_wake, Links, NO_RETRY};
use super::sealed_link::SealedLink;
use super::sending::Sending;
use crate::account::Account;
use crate::account_id::AccountId;
use crate::error::{Error, Result};
use crate::event::Event;
use crate::message::ENVELOPE_ID_LEN;
use crate::prekeys::ONE_TIME_LOW_WATER;
use crate::receive::Inbound;
use crate::send::OutgoingEnvelope;

/// Events buffered for slow subscribers; one that falls further behind gets
/// `Lagged` and should re-read state from the account.
const EVENT_BUFFER: usize = 4096;
/// Deliveries decrypted and committed together (one transaction, one fsync,
/// which overlaps the next batch: see `Acks`).
const RECEIVE_BATCH: usize = 256;
/// Deliveries already waiting that are handed to the account at once, as a
/// backlog of batches: its decryption runs on through each batch's commit
/// (see `Account::receive_backlog`).
const RECEIVE_BACKLOG: usize = 4 * RECEIVE_BATCH;
/// A ping when the link has been quiet this long.
const KEEPALIVE: Duration = Duration::from_secs(25);
/// Commands queued for the connection manager.
const COMMAND_QUEUE: usize = 64;

/// Something for the app to show.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// From the account: a message stored, a contact added, an identity change…
    Core(Event),
    /// The connection to the relay changed.
    Connection(ConnectionState),
    /// An outgoing message moved on.
    Delivery {
        envelope_id: [u8; ENVELOPE_ID_LEN],
        recipient: AccountId,
        state: DeliveryState,
    },
    /// A delivery that can never be read (corrupt, or from an account with no
    /// session): acknowledged so the relay drops it.
    Undecryptable { reason: String },
    /// Everything that waited at the relay when this connection logged in has
    /// been received and committed (and what it set off sent).
    CaughtUp,
}

/// The connection to the relay.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionState {
    Connecting,
    /// Logged in; `queued` messages waited in the mailbox.
    Connected {
        queued: u64,
    },
    /// Lost or refused; the next attempt comes after `retry_in_ms`.
    Disconnected {
        reason: String,
        retry_in_ms: u64,
    },
    /// No relay known yet (a fresh phone before it joins from an invite
    /// link, or a client opened offline): nothing is tried.
    NoRelay,
    Stopped,
}

/// Where an outgoing message is.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeliveryState {
    /// Encrypted and committed on this phone; waiting for the relay.
    Queued,
    /// The relay has it durably; it is the relay's to deliver.
    Sent,
    /// The relay refused it for good (unknown recipient, wrong access key…).
    Failed { reason: String },
}

/// The manager's outlets: the event stream and the current connection state.
struct Events {
    stream: broadcast::Sender<ClientEvent>,
    state: watch::Sender<ConnectionState>,
    /// Wakes the expiry purger: something with a timer may have been stored.
    expiry: Arc<Notify>,
}

impl Events {
    fn send(&self, e: ClientEvent) {
        if let ClientEvent::Connection(s) = &e {
            let _ = self.state.send(s.clone());
        }
        let _ = self.stream.send(e);
    }
}

pub(super) enum Command {
    FlushOutbox,
    /// Send the outbox now and say when it is done (or failed: offline).
    Flush {
        reply: oneshot::Sender<Result<()>>,
    },
    FetchBundle {
        account: AccountId,
        reply: oneshot::Sender<Result<Vec<u8>>>,
    },
    /// Open sessions with the committee members we lack one with: all of
    /// them, not only those the smaller-ID rule gives us (before a post).
    GreetMembers {
        reply: oneshot::Sender<Result<()>>,
    },
    /// Tell the relay the push endpoint the account remembers (`push.rs`).
    SyncPushEndpoint {
        reply: oneshot::Sender<Result<()>>,
    },
    /// One request on the logged-in connection (an upload token, deleting
    /// the account), answered with the relay's reply.
    Request {
        body: pb::client_frame::Body,
        reply: oneshot::Sender<Result<pb::server_frame::Body>>,
    },
}

/// An account connected to its relay.
pub struct Client {
    pub(super) account: AccountHandle,
    events: broadcast::Sender<ClientEvent>,
    pub(super) state: watch::Receiver<ConnectionState>,
    pub(super) commands: mpsc::Sender<Command>,
    /// Tells the manager and the purger to stop when the client goes.
    shutdown: StopOnDrop,
    manager: JoinHandle<()>,
    done: oneshot::Receiver<Account>,
    /// Dropped after `shutdown`: stops and joins the account thread, so a
    /// client dropped without [`Client::shutdown`] still closes its database
    /// before the owner goes on.
    thread: AccountThread,
    /// Where the relay is (`None` until one is known): attachments travel on
    /// connections of their own, and the manager waits for one.
    pub(super) relay: watch::Sender<Option<RelayAddress>>,
    /// Wakes the expiry purger after this device stores a channel message.
    pub(super) expiry: Arc<Notify>,
}

impl Client {
    /// Takes the account and starts connecting to `relay`. Call inside a tokio
    /// runtime. [`Client::open`] opens the store and starts in one call.
    pub fn start(account: Account, relay: RelayAddress) -> Result<Client> {
        Self::start_with(account, Some(relay))
    }

    /// Takes the account and starts; with no relay, the client waits until
    /// one is given ([`Client::join`] with a link that names its relay).
    pub(super) fn start_with(account: Account, relay: Option<RelayAddress>) -> Result<Client> {
        // Logging in would register the deleted account again (a client
        // with no relay only reads and changes the store).
        if relay.is_some() && account.relay_account_deleted()? {
            return Err(Error::AccountDeletedAtRelay);
        }
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let (handle, thread, done) = AccountHandle::spawn(account, events.clone())?;
        let (commands, command_rx) = mpsc::channel(COMMAND_QUEUE);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let first = if relay.is_some() {
            ConnectionState::Connecting
        } else {
            ConnectionState::NoRelay
        };
        let (state_tx, state) = watch::channel(first);
        let (relay, relay_rx) = watch::channel(relay);
        let expiry = Arc::new(Notify::new());
        tokio::spawn(super::channel::purge_expired_messages(
            handle.clone(),
            commands.clone(),
            shutdown.subscribe(),
            expiry.clone(),
        ));
        let manager = tokio::spawn(manage(
            handle.clone(),
            relay_rx,
            Events {
                stream: events.clone(),
                state: state_tx,
                expiry: expiry.clone(),
            },
            command_rx,
            shutdown_rx,
        ));
        Ok(Client {
            account: handle,
            events,
            state,
            commands,
            shutdown: StopOnDrop(shutdown),
            manager,
            done,
            thread,
            relay,
            expiry,
        })
    }

    /// A new subscription to the event stream.
    pub fn subscribe(&self) -> broadcast::Receiver<ClientEvent> {
        self.events.subscribe()
    }

    /// The connection's state now. `Connected` means logged in and set up
    /// (access key, sender certificate and prekeys in place at the relay).
    pub fn connection_state(&self) -> ConnectionState {
        self.state.borrow().clone()
    }

    /// Encrypts and commits a message, then sends it when connected. The
    /// message survives an app restart in the outbox until the relay has it.
    pub async fn send_text(&self, to: AccountId, body: String) -> Result<OutgoingEnvelope> {
        let sent = self
            .account
            .call(move |a| a.send_text(&to, &body))
            .await??;
        let _ = self.events.send(ClientEvent::Delivery {
            envelope_id: sent.envelope_id,
            recipient: to,
            state: DeliveryState::Queued,
        });
        // A full queue already holds a flush that will take this one too.
        let _ = self.commands.try_send(Command::FlushOutbox);
        // Our copy may carry the conversation's disappearing timer.
        self.expiry.notify_one();
        Ok(sent)
    }

    /// Sends this account's sender key for a channel to each member (1:1), then
    /// lets the outbox carry them. A bare channel with no committee, for the
    /// scenario tests and benchmarks (`testing`); apps post with [`Client::post`].
    #[cfg(any(test, feature = "testing"))]
    pub async fn distribute_sender_key(
        &self,
        members: Vec<AccountId>,
        channel_id: [u8; crate::message::CHANNEL_ID_LEN],
        distribution_id: uuid::Uuid,
    ) -> Result<()> {
        self.account
            .call(move |a| {
                members.iter().try_for_each(|m| {
                    a.send_sender_key(m, channel_id, distribution_id)
                        .map(|_| ())
                })
            })
            .await??;
        let _ = self.commands.try_send(Command::FlushOutbox);
        Ok(())
    }

    /// Sends a channel message to `members` in one multi-recipient upload
    /// (a bare channel, as [`Client::distribute_sender_key`]).
    #[cfg(any(test, feature = "testing"))]
    pub async fn send_channel_text(
        &self,
        channel_id: [u8; crate::message::CHANNEL_ID_LEN],
        distribution_id: uuid::Uuid,
        members: Vec<AccountId>,
        body: String,
    ) -> Result<OutgoingEnvelope> {
        let sent = self
            .account
            .call(move |a| a.send_channel_text(channel_id, distribution_id, &members, &body))
            .await??;
        let _ = self.commands.try_send(Command::FlushOutbox);
        Ok(sent)
    }

    /// Fetches `account`'s bundle from the relay's directory and adds it as a
    /// contact, opening a session. Needs a connection.
    pub async fn add_contact_from_relay(
        &self,
        name: String,
        account: AccountId,
    ) -> Result<AccountId> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::FetchBundle { account, reply })
            .await
            .map_err(|_| Error::Offline)?;
        let bundle = rx.await.map_err(|_| Error::Offline)??;
        self.account
            .call(move |a| a.add_contact(&name, &bundle))
            .await?
    }

    /// Runs `f` with the account on its thread: for the core's own tests and
    /// the simulated phones of the benchmarks (`testing` feature); apps and
    /// the CLI use the methods of [`Client`].
    #[cfg(any(test, feature = "testing"))]
    pub async fn with_account<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Account) -> R + Send + 'static,
    {
        self.account.call(f).await
    }

    /// Disconnects, stops the manager and closes the store: what an app
    /// calls when it goes.
    pub async fn close(self) -> Result<()> {
        self.shutdown().await.map(drop)
    }

    /// Disconnects, stops the manager and gives the account back (tests and
    /// benchmarks reopen it as another client).
    #[cfg_attr(feature = "testing", rankfile_testing_pub::public)]
    pub(crate) async fn shutdown(self) -> Result<Account> {
        let Client {
            account,
            shutdown,
            manager,
            done,
            thread,
            commands,
            ..
        } = self;
        drop(shutdown);
        let _ = manager.await;
        drop(commands);
        drop(account);
        thread.stop();
        let account = done
            .await
            .map_err(|_| Error::Transport("the account thread has stopped".into()));
        drop(thread);
        account
    }
}

/// Signals shutdown to the client's tasks when dropped.
struct StopOnDrop(watch::Sender<bool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let _ = self.0.send(true);
    }
}

async fn manage(
    account: AccountHandle,
    mut relay: watch::Receiver<Option<RelayAddress>>,
    events: Events,
    mut commands: mpsc::Receiver<Command>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Backoff::default();
    // A fresh phone learns its relay from the invite link it joins by.
    let Some(relay) = wait_for_relay(&mut relay, &events, &mut commands, &mut shutdown).await
    else {
        events.send(ClientEvent::Connection(ConnectionState::Stopped));
        return;
    };
    // Lives across reconnects of the logged-in connection: not tied to them.
    let sealed = SealedLink::new(relay.clone());
    loop {
        if *shutdown.borrow() {
            break;
        }
        events.send(ClientEvent::Connection(ConnectionState::Connecting));
        let outcome = connected(
            &account,
            &relay,
            &events,
            &mut commands,
            &mut shutdown,
            (&mut backoff, &sealed),
        )
        .await;
        let reason = match outcome {
            Ok(()) => break,
            Err(e) => e.to_string(),
        };
        let delay = backoff.next_delay();
        events.send(ClientEvent::Connection(ConnectionState::Disconnected {
            reason,
            retry_in_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
        }));
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => break,
                _ = shutdown.changed() => break,
                cmd = commands.recv() => match cmd {
                    Some(cmd) => cmd.offline(),
                    None => break,
                },
            }
        }
    }
    events.send(ClientEvent::Connection(ConnectionState::Stopped));
}

/// Waits until the client knows its relay, answering commands meanwhile as
/// offline; `None` when the client stops first.
async fn wait_for_relay(
    relay: &mut watch::Receiver<Option<RelayAddress>>,
    events: &Events,
    commands: &mut mpsc::Receiver<Command>,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<RelayAddress> {
    loop {
        if *shutdown.borrow() {
            return None;
        }
        if let Some(r) = relay.borrow_and_update().clone() {
            return Some(r);
        }
        events.send(ClientEvent::Connection(ConnectionState::NoRelay));
        tokio::select! {
            changed = relay.changed() => changed.ok()?,
            _ = shutdown.changed() => return None,
            cmd = commands.recv() => cmd?.offline(),
        }
    }
}

impl Command {
    /// Answers a command that needs the relay while there is no connection.
    fn offline(self) {
        match self {
            Command::FetchBundle { reply, .. } => {
                let _ = reply.send(Err(Error::Offline));
            }
            Command::FlushOutbox => {}
            Command::Flush { reply }
            | Command::GreetMembers { reply }
            | Command::SyncPushEndpoint { reply } => {
                let _ = reply.send(Err(Error::Offline));
            }
            Command::Request { reply, .. } => {
                let _ = reply.send(Err(Error::Offline));
            }
        }
    }
}

/// One connection's life: log in, set up, then serve until it breaks (`Err`)
/// or the client shuts down (`Ok`).
async fn connected(
    account: &AccountHandle,
    relay: &RelayAddress,
    events: &Events,
    commands: &mut mpsc::Receiver<Command>,
    shutdown: &mut watch::Receiver<bool>,
    (backoff, sealed): (&mut Backoff, &SealedLink),
) -> Result<()> {
    let (ws, hello) = link::open(relay).await?;
    let root = hello.trust_root;
    account
        .call(move |a| a.set_relay_trust_root(&root))
        .await??;
    let challenge = hello.challenge;
    let auth = account
        .call(move |a| a.sign_relay_challenge(&challenge))
        .await??;
    let (link, mut deliveries, queued) = link::start(ws, Some(auth)).await?;
    backoff.reset();
    sealed.logged_in().await;
    let links = Links {
        logged_in: &link,
        sealed,
    };
    set_up(account, &link).await?;
    events.send(ClientEvent::Connection(ConnectionState::Connected {
        queued,
    }));
    // Ordinary sealed envelopes wait a moment after the login: the loop
    // sends them when due.
    flush_outbox(account, links, &events.stream).await?;
    // Work a committee change left undone when we were last online: join
    // requests to decide, members to open sessions with.
    account.call(|a| a.admit_waiting()).await??;
    account.call(|a| a.forward_alerts()).await??;
    greet_members(account, links, false).await?;
    // Committee entries still waiting for their parents: ask for them.
    account.call(|a| a.ask_for_missing_entries()).await??;
    // Receipts not sent before we stopped, and resends owed.
    account
        .call(|a| {
            a.prune_repair_state()?;
            a.read_waiting()?;
            a.send_receipts()?;
            a.resend_owed()
        })
        .await??;
    reopen_sessions(account, links).await?;

    let mut keepalive = tokio::time::interval(KEEPALIVE);
    keepalive.tick().await;
    let mut acks = Acks::default();
    // The outbox goes beside the receiving, never in its way (`sending`).
    let flush = || -> futures::future::BoxFuture<'_, Result<bool>> {
        Box::pin(flush_outbox(account, links, &events.stream))
    };
    let mut sending = Sending::default();
    sending.want();
    // When a parked envelope (a full mailbox) is next due: only a flush parks
    // one, so this is read again after each.
    let mut retry = next_wake(account, sealed).await?;
    loop {
        sending.start(flush);
        tokio::select! {
            _ = shutdown.changed() => return acks.all().await,
            sent = sending.next() => {
                sent?;
                retry = next_wake(account, sealed).await?;
            }
            _ = tokio::time::sleep_until(retry) => {
                sending.want();
                retry = tokio::time::Instant::now() + NO_RETRY;
            }
            flushed = acks.next(), if !acks.flushing.is_empty() => flushed?,
            first = deliveries.recv() => {
                let Some(first) = first else {
                    return Err(Error::Transport("the relay closed the connection".into()));
                };
                let mut batch = Vec::new();
                let mut caught_up = false;
                let mut next = Some(first);
                while let Some(incoming) = next.take() {
                    match incoming {
                        Incoming::Deliver(d) => batch.push(d),
                        // Ends the batch: what came before it is the backlog.
                        Incoming::CaughtUp => {
                            caught_up = true;
                            break;
                        }
                    }
                    if batch.len() < RECEIVE_BACKLOG {
                        next = deliveries.try_recv().ok();
                    }
                }
                if !batch.is_empty() {
                    let overlap = batch.len() >= RECEIVE_BATCH || !deliveries.is_empty();
                    let after =
                        receive(account, &link, &events.stream, &mut acks, (batch, overlap)).await?;
                    if after.expiry_changed {
                        events.expiry.notify_one();
                    }
                    if after.committees_changed {
                        greet_members(account, links, false).await?;
                    }
                    if after.reopen {
                        reopen_sessions(account, links).await?;
                    }
                    // A batch may have queued replies (committee entries forwarded
                    // after concurrent changes, admissions, hellos).
                    if after.outbox_waiting || after.committees_changed || after.reopen {
                        sending.want();
                    }
                }
                if caught_up {
                    // Caught up means on disk and forgotten by the relay, and
                    // what it set off sent.
                    acks.all().await?;
                    sending.settle(flush).await?;
                    retry = next_wake(account, sealed).await?;
                    events.send(ClientEvent::CaughtUp);
                }
            }
            cmd = commands.recv() => match cmd {
                None => return Ok(()),
                Some(Command::FlushOutbox) => sending.want(),
                Some(Command::Flush { reply }) => sending.want_and_tell(reply),
                Some(Command::FetchBundle { account: who, reply }) => {
                    let r = fetch_bundle(account, links, who).await;
                    let _ = reply.send(r);
                }
                Some(Command::SyncPushEndpoint { reply }) => {
                    let _ = reply.send(super::push::sync(account, &link).await);
                }
                Some(Command::Request { body, reply }) => {
                    let _ = reply.send(link.request(body).await);
                }
                Some(Command::GreetMembers { reply }) => {
                    match greet_members(account, links, true).await {
                        Ok(()) => sending.want_and_tell(reply),
                        Err(e) => {
                            let _ = reply.send(Err(Error::Transport(e.to_string())));
                            return Err(Error::Transport("opening member sessions failed".into()));
                        }
                    }
                }
            },
            _ = keepalive.tick() => {
                if !link.is_open() {
                    return Err(Error::Transport("the connection closed".into()));
                }
                link.request(pb::client_frame::Body::Ping(pb::Ping {})).await?;
                // A connection can outlive the certificate it began with.
                if account.call(|a| a.needs_sender_certificate()).await?? {
                    refresh_certificate(account, &link).await?;
                }
            }
        }
    }
}

/// After login: the access key, the push endpoint, a sender certificate, and
/// the prekey stock.
async fn set_up(account: &AccountHandle, link: &Link) -> Result<()> {
    let key = account.call(|a| a.access_key()).await??;
    link.request(pb::client_frame::Body::SetAccessKey(pb::SetAccessKey {
        access_key: key.to_vec(),
    }))
    .await?;
    account.call(move |a| a.access_key_at_relay(&key)).await??;
    super::push::sync_at_login(account, link).await?;
    if account.call(|a| a.needs_sender_certificate()).await?? {
        refresh_certificate(account, link).await?;
    }
    let count = match link
        .request(pb::client_frame::Body::PrekeyCount(
            pb::PreKeyCountRequest {},
        ))
        .await?
    {
        pb::server_frame::Body::PrekeyCount(c) => c,
        _ => {
            return Err(Error::Transport(
                "unexpected answer to a prekey count".into(),
            ))
        }
    };
    if count.one_time_prekeys < ONE_TIME_LOW_WATER
        || count.one_time_kyber_prekeys < ONE_TIME_LOW_WATER
    {
        let first_upload = count.one_time_prekeys == 0 && count.one_time_kyber_prekeys == 0;
        let upload = account
            .call(move |a| {
                if first_upload {
                    a.prekeys_for_upload()
                } else {
                    a.replenish_prekeys()
                }
            })
            .await??;
        link.request(pb::client_frame::Body::UploadPrekeys(upload))
            .await?;
    }
    Ok(())
}

/// Fetches a new sender certificate from the relay for the account.
pub(super) async fn refresh_certificate(account: &AccountHandle, link: &Link) -> Result<()> {
    match link
        .request(pb::client_frame::Body::SenderCertificate(
            pb::SenderCertificateRequest {},
        ))
        .await?
    {
        pb::server_frame::Body::SenderCertificate(c) => {
            account
                .call(move |a| a.set_sender_certificate(&c.certificate))
                .await?
        }
        _ => Err(Error::Transport(
            "unexpected answer to a certificate request".into(),
        )),
    }
}

/// What a committed receive batch left for the connection manager to do.
struct AfterReceive {
    /// A committee's log changed: open sessions with new members.
    committees_changed: bool,
    /// Channel text with a deletion time was stored: wake the purger.
    expiry_changed: bool,
    /// Replies or forwards wait in the outbox.
    outbox_waiting: bool,
    /// A receipt archived a session: open a new one to send again.
    reopen: bool,
}

/// Decrypts and commits deliveries. With more deliveries behind them
/// (`overlap`), they are received as a backlog of batches that commit without
/// waiting for the disk. Each batch, as soon as it has committed, is flushed
/// and then acknowledged from a blocking thread while the account goes on
/// with the next, so the relay refills its delivery window meanwhile;
/// [`Acks`] keeps track of those flushes. A lone batch (the live case: one
/// message, one alert) has nothing to overlap: it commits flushed and is
/// acknowledged at once. A storage failure stops the deliveries where it
/// happened: the batches committed before it are acknowledged once flushed,
/// the rest the relay delivers again.
async fn receive(
    account: &AccountHandle,
    link: &Link,
    events: &broadcast::Sender<ClientEvent>,
    acks: &mut Acks,
    (batch, overlap): (Vec<pb::Deliver>, bool),
) -> Result<AfterReceive> {
    let ids: Vec<u64> = batch.iter().map(|d| d.id).collect();
    let flush = (
        tokio::runtime::Handle::current(),
        link.notifier(),
        ids.clone(),
    );
    // One trip to the account thread: the deliveries, then what they set off.
    let (results, after, flushing, failed) = account
        .call(move |a| {
            let (runtime, notifier, ids) = flush;
            let inbound: Vec<Inbound<'_>> = batch
                .iter()
                .map(|d| {
                    if d.sealed {
                        Inbound::Delivered {
                            sealed: &d.envelope,
                            stored_at_ms: d.stored_at_ms,
                        }
                    } else {
                        Inbound::Envelope(&d.envelope)
                    }
                })
                .collect();
            let mut results = Vec::with_capacity(inbound.len());
            let mut flushing = Vec::new();
            let failed = if overlap {
                a.receive_backlog(&inbound, RECEIVE_BATCH, &mut |range, r, unsynced| {
                    results.extend(r);
                    let (ids, notifier) = (ids[range].to_vec(), notifier.clone());
                    flushing.push(runtime.spawn_blocking(move || {
                        unsynced.sync()?;
                        crate::failpoint::failpoint("receive_before_ack");
                        notifier.notify_blocking(pb::client_frame::Body::Ack(pb::Ack { ids }))
                    }));
                })
                .err()
            } else {
                results = a.receive_all(&inbound)?;
                None
            };
            let after = AfterReceive {
                committees_changed: a.take_committees_changed(),
                expiry_changed: a.take_expiry_changed(),
                outbox_waiting: a.outbox_waiting()?,
                reopen: !a.sessions_to_reopen()?.is_empty(),
            };
            Ok::<_, Error>((results, after, flushing, failed))
        })
        .await??;
    acks.flushing.extend(flushing);
    for r in &results {
        if let Err(e) = r {
            let _ = events.send(ClientEvent::Undecryptable {
                reason: e.to_string(),
            });
        }
    }
    if let Some(e) = failed {
        return Err(e);
    }
    if !overlap {
        // Committed and flushed.
        acknowledge(link, ids).await?;
    }
    Ok(after)
}

/// Tells the relay it may forget these deliveries: they are on disk.
async fn acknowledge(link: &Link, ids: Vec<u64>) -> Result<()> {
    crate::failpoint::failpoint("receive_before_ack");
    link.notify(pb::client_frame::Body::Ack(pb::Ack { ids }))
        .await
}

/// Receive batches committed but not yet flushed to disk. Each is
/// acknowledged, so the relay forgets it, only once its flush is done (by the
/// blocking task that flushed it): what the relay forgets survives a power
/// loss. Here the connection learns whether those tasks succeeded.
#[derive(Default)]
struct Acks {
    flushing: FuturesUnordered<JoinHandle<Result<()>>>,
}

impl Acks {
    /// Waits for a flush and its acknowledgement; at once when none is under
    /// way (a `select!` branch waits on this only when one is).
    async fn next(&mut self) -> Result<()> {
        let Some(done) = self.flushing.next().await else {
            return Ok(());
        };
        done.map_err(|e| Error::Storage(format!("flushing a batch: {e}")))?
    }

    /// Waits until every batch is flushed and acknowledged.
    async fn all(&mut self) -> Result<()> {
        while !self.flushing.is_empty() {
            self.next().await?;
        }
        Ok(())
    }
}
