//! Connecting a home's account to its relay for one command: the tokio
//! runtime, `Client::start`, and waiting (with a spinner) until the client is
//! logged in and set up — or saying plainly that the relay is unreachable.
//! [`online`] also receives what waited in the mailbox before the command
//! acts, and [`Online::close`] sends what the command queued before it exits:
//! each command is one short-lived process.

use std::time::Duration;

use rankfile_core::transport::{Client, ClientEvent, ConnectionState, RelayAddress};
use tokio::sync::broadcast;

use crate::error::{CliError, Result};
use crate::output::Output;

/// How long a command waits for the relay before giving up.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a command spends receiving its mailbox before it acts anyway.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(60);

/// The runtime every networked command runs on.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::io("starting the async runtime"))
}

/// Waits until `client`, just opened on `relay`, is connected and set up.
/// The receiver is subscribed at once, before the client has received
/// anything (it logs in first), so it misses no event. On failure the
/// client is closed cleanly before the error returns.
pub async fn connect(
    client: Client,
    relay: &RelayAddress,
    out: &Output,
) -> Result<(Client, broadcast::Receiver<ClientEvent>)> {
    let (client, events, _) = connect_counting(client, relay, out).await?;
    Ok((client, events))
}

/// [`connect`], also returning how many messages waited in the mailbox.
async fn connect_counting(
    client: Client,
    relay: &RelayAddress,
    out: &Output,
) -> Result<(Client, broadcast::Receiver<ClientEvent>, u64)> {
    let events = client.subscribe();
    match out
        .wait(
            &format!("connecting to the relay at {}", relay.addr),
            wait_connected(&client, CONNECT_TIMEOUT),
        )
        .await
    {
        Ok(queued) => Ok((client, events, queued)),
        Err(reason) => {
            let _ = client.close().await;
            Err(CliError::RelayUnreachable {
                addr: relay.addr.to_string(),
                reason,
            })
        }
    }
}

/// A client for one command, connected and caught up with its mailbox.
pub struct Online {
    pub client: Client,
    /// Messages that waited in the mailbox at login.
    pub queued: u64,
    /// What the account reported while receiving them (`Core` and
    /// `Undecryptable` events).
    pub arrived: Vec<ClientEvent>,
    addr: String,
}

/// Connects, then receives everything that waited in the mailbox (and lets
/// the client answer it) before the command reads or changes anything.
pub async fn online(client: Client, relay: &RelayAddress, out: &Output) -> Result<Online> {
    let (client, mut events, queued) = connect_counting(client, relay, out).await?;
    let arrived = if queued == 0 {
        Vec::new()
    } else {
        let caught_up = out
            .wait(
                &format!("receiving {queued} waiting messages"),
                catch_up(&mut events),
            )
            .await;
        match caught_up {
            Ok(arrived) => arrived,
            Err(e) => {
                let _ = client.close().await;
                return Err(e);
            }
        }
    };
    Ok(Online {
        client,
        queued,
        arrived,
        addr: relay.addr.to_string(),
    })
}

/// Collects events until the client says the backlog of this login is
/// received and committed (`ClientEvent::CaughtUp`: the relay marks the end of
/// what waited, and the client passes it on after committing the batch before
/// it), or [`CATCH_UP_TIMEOUT`] has passed.
async fn catch_up(events: &mut broadcast::Receiver<ClientEvent>) -> Result<Vec<ClientEvent>> {
    let deadline = tokio::time::Instant::now() + CATCH_UP_TIMEOUT;
    let mut arrived = Vec::new();
    loop {
        tokio::select! {
            e = events.recv() => match e {
                // Only what the account reports is kept (the connection is
                // the command's).
                Ok(e @ (ClientEvent::Core(_) | ClientEvent::Undecryptable { .. })) => {
                    arrived.push(e)
                }
                Ok(ClientEvent::CaughtUp) => return Ok(arrived),
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => {
                    return Err(CliError::Other("the client stopped while receiving".into()))
                }
            },
            _ = tokio::time::sleep_until(deadline) => return Ok(arrived),
        }
    }
}

/// Longest wait for the relay to take what a command queued.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(60);

impl Online {
    /// Sends everything the command queued, waits until the relay holds it
    /// durably, and disconnects. What could not be sent stays in the outbox
    /// for the next command. Counts of alert answers owed back along a
    /// cascade go now rather than after their pause: this process will not
    /// be running then.
    pub async fn close(self) -> Result<()> {
        if let Err(e) = self.client.send_alert_rollcall_now().await {
            tracing::debug!("alert counts left for the next command: {e}");
        }
        // Bounded: sealed envelopes wait for the anonymous connection, which
        // may be refused (a busy relay) while the logged-in one is not.
        let flushed = match tokio::time::timeout(FLUSH_TIMEOUT, self.client.flush()).await {
            Ok(r) => r,
            Err(_) => Err(rankfile_core::Error::Transport(
                "the relay did not take the outbox in time".into(),
            )),
        };
        let _ = self.client.close().await;
        flushed.map_err(|e| CliError::RelayUnreachable {
            addr: self.addr,
            reason: format!(
                "{e}; what this command queued stays in the outbox and goes with the next networked command"
            ),
        })
    }
}

/// Waits until `client` is connected; returns how many messages waited in
/// its mailbox, or the last reason given.
pub async fn wait_connected(client: &Client, timeout: Duration) -> Result<u64, String> {
    let mut events = client.subscribe();
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last = "no answer".to_string();
    loop {
        match client.connection_state() {
            ConnectionState::Connected { queued } => return Ok(queued),
            ConnectionState::Disconnected { reason, .. } => last = reason,
            ConnectionState::Stopped => return Err("the client stopped".into()),
            _ => {}
        }
        // Wake on any event (or every 50 ms) to re-read the state.
        let tick = tokio::time::sleep(Duration::from_millis(50));
        tokio::select! {
            _ = events.recv() => {}
            _ = tick => {}
            _ = tokio::time::sleep_until(deadline) => {
                return Err(format!("timed out after {} s ({last})", timeout.as_secs()));
            }
        }
    }
}
