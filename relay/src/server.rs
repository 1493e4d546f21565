//! The listener: a connection-limit permit before each accept, accept errors
//! retried with backoff, one task per connection, and graceful shutdown that
//! waits for every task.
//!
//! `start` is the library entry point: the binary, the tests and the end-to-end
//! suites all start relays through it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio_rustls::TlsAcceptor;

use crate::config::Config;
use crate::connection;
use crate::error::Result;
use crate::push::{self, Push, PushStats};
use crate::relay::{run_sweeper, Relay};
use crate::sealed::ServerKeys;
use crate::shutdown::{Shutdown, ShutdownController, ShutdownSource};
use crate::storage::{PostgresStore, RelayStore, RemoteMail, SqliteStore};
use crate::tls;
use crate::traffic::{Traffic, TrafficStats};

/// Longest pause between accept retries.
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// A running relay.
#[derive(Debug)]
pub struct RelayHandle {
    addr: SocketAddr,
    fingerprint: String,
    trust_root: Vec<u8>,
    push: Arc<Push>,
    traffic: Arc<Traffic>,
    controller: ShutdownController,
}

impl RelayHandle {
    /// The address it listens on (the real port when configured with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Lower-case hex SHA-256 of its TLS certificate's DER: what clients pin.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The sealed-sender trust root (libsignal public key, 33 bytes).
    pub fn trust_root(&self) -> &[u8] {
        &self.trust_root
    }

    /// Push wake-up counters since the start.
    pub fn push_stats(&self) -> PushStats {
        self.push.stats()
    }

    /// Sealed sends and bundle fetches counted by the kind of connection
    /// they came on, since the start.
    pub fn traffic(&self) -> TrafficStats {
        self.traffic.stats()
    }

    /// The machine-readable startup line.
    pub fn startup_line(&self) -> String {
        format!(
            "rankfile-relay listening on {} fingerprint {}",
            self.addr, self.fingerprint
        )
    }

    /// Stops accepting, tells every connection to close, and waits until all
    /// tasks have finished (every acknowledged message is already on disk).
    pub async fn shutdown(self) {
        self.controller.shutdown().await;
    }
}

/// Starts a relay on the current tokio runtime with the store its
/// configuration names: PostgreSQL at `config.database`, else SQLite in
/// `config.data_dir`.
pub async fn start(config: Config) -> Result<RelayHandle> {
    config.validate()?;
    std::fs::create_dir_all(&config.data_dir)?;
    let store: Arc<dyn RelayStore> = match &config.database {
        Some(url) => Arc::new(PostgresStore::connect(&url.0, config.group_commit_max).await?),
        None => Arc::new(SqliteStore::open(
            &config.data_dir,
            config.group_commit_max,
        )?),
    };
    start_with_store(config, store).await
}

/// Starts a relay over any store.
pub async fn start_with_store(config: Config, store: Arc<dyn RelayStore>) -> Result<RelayHandle> {
    config.validate()?;
    std::fs::create_dir_all(&config.data_dir)?;
    let tls = tls::load_or_create(&config)?;
    let keys = ServerKeys::load_or_create(&config.data_dir)?;
    let listener = TcpListener::bind(config.bind).await?;
    let addr = listener.local_addr()?;
    let max_connections = config.max_connections;
    let relay = Arc::new(Relay::new(config, store, keys)?);
    let trust_root = relay.trust_root.clone();
    let traffic = relay.traffic.clone();

    let controller = ShutdownController::new();
    let source = controller
        .source()
        .ok_or_else(|| crate::error::Error::Config("shutdown already begun".into()))?;
    tokio::spawn(run_sweeper(relay.clone(), source.listener()));
    if let Some(remote) = relay.store.remote_mail() {
        relay.hub.set_shared();
        tokio::spawn(follow_other_nodes(relay.clone(), remote, source.listener()));
    }
    let push = relay.push.clone();
    tokio::spawn(push::run(
        push.clone(),
        relay.store.clone(),
        source.listener(),
    ));
    tokio::spawn(push::run_decoys(relay.clone(), source.listener()));
    let acceptor = TlsAcceptor::from(tls.server_config);
    let limit = Arc::new(Semaphore::new(max_connections));
    let accept_shutdown = source.listener();
    tokio::spawn(accept_loop(
        relay,
        listener,
        acceptor,
        limit,
        source,
        accept_shutdown,
    ));

    Ok(RelayHandle {
        addr,
        fingerprint: tls.fingerprint,
        trust_root,
        push,
        traffic,
        controller,
    })
}

/// Follows what other nodes on the same database commit: wakes this node's
/// connections for their mail, forgets device records they changed.
async fn follow_other_nodes(
    relay: Arc<Relay>,
    mut remote: mpsc::UnboundedReceiver<RemoteMail>,
    mut shutdown: Shutdown,
) {
    loop {
        let change = tokio::select! {
            m = remote.recv() => m,
            _ = shutdown.recv() => return,
        };
        match change {
            Some(RemoteMail::Mailboxes(m)) => relay.hub.stale(&m),
            Some(RemoteMail::DevicesChanged(account)) => relay.devices.forget_account(&account),
            Some(RemoteMail::All) => {
                relay.devices.forget_all();
                relay.hub.stale_all();
            }
            None => return,
        }
    }
}

async fn accept_loop(
    relay: Arc<Relay>,
    listener: TcpListener,
    acceptor: TlsAcceptor,
    limit: Arc<Semaphore>,
    source: ShutdownSource,
    mut shutdown: Shutdown,
) {
    loop {
        // The permit comes first: at the limit the relay stops accepting and new
        // clients wait in the kernel's backlog instead of eating memory here.
        let permit = tokio::select! {
            p = limit.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
            _ = shutdown.recv() => return,
        };
        let tcp = tokio::select! {
            s = accept(&listener) => s,
            _ = shutdown.recv() => return,
        };
        let _ = tcp.set_nodelay(true);
        let relay = relay.clone();
        let acceptor = acceptor.clone();
        let conn_shutdown = source.listener();
        tokio::spawn(async move {
            connection::serve(relay, acceptor, tcp, conn_shutdown).await;
            drop(permit);
        });
    }
}

/// Accepts one connection, retrying errors (out of file descriptors, a client
/// that reset before accept) with doubling pauses.
async fn accept(listener: &TcpListener) -> TcpStream {
    let mut backoff = Duration::from_millis(1);
    loop {
        match listener.accept().await {
            // The peer address is deliberately not kept or logged.
            Ok((stream, _)) => return stream,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_ACCEPT_BACKOFF);
            }
        }
    }
}
