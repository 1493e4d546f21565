//! Connecting a home's account to its relay for one command: the tokio
//! runtime, `Client::start`, and waiting (with a spinner) until the client is
//! logged in and set up — or saying plainly that the relay is unreachable.

use std::time::Duration;

use rankfile_core::transport::{Client, ClientEvent, ConnectionState, RelayAddress};
use rankfile_core::Account;
use tokio::sync::broadcast;

use crate::error::{CliError, Result};
use crate::output::Output;

/// How long a command waits for the relay before giving up.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// The runtime every networked command runs on.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::io("starting the async runtime"))
}

/// Starts a client for `account` and waits until it is connected and set up.
/// The receiver was subscribed before the client could receive anything, so
/// it misses no event. On failure the account is shut down cleanly before the
/// error returns.
pub async fn connect(
    account: Account,
    relay: &RelayAddress,
    out: &Output,
) -> Result<(Client, broadcast::Receiver<ClientEvent>)> {
    let client = Client::start(account, relay.clone())?;
    let events = client.subscribe();
    match out
        .wait(
            &format!("connecting to the relay at {}", relay.addr),
            wait_connected(&client, CONNECT_TIMEOUT),
        )
        .await
    {
        Ok(()) => Ok((client, events)),
        Err(reason) => {
            let _ = client.shutdown().await;
            Err(CliError::RelayUnreachable {
                addr: relay.addr.to_string(),
                reason,
            })
        }
    }
}

/// Waits until `client` is connected; the error is the last reason given.
pub async fn wait_connected(client: &Client, timeout: Duration) -> Result<(), String> {
    let mut events = client.subscribe();
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last = "no answer".to_string();
    loop {
        match client.connection_state() {
            ConnectionState::Connected { .. } => return Ok(()),
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
