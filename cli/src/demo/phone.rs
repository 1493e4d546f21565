//! A simulated phone for the demo: its own account in its own encrypted store,
//! driven by a `transport::Client` over real TLS, and a listener that records
//! the moment each message (1:1 or channel) is stored, for the latency figures.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rankfile_core::transport::{Client, ClientEvent, RelayAddress};
use rankfile_core::{AccountId, DatabaseKey, Event};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

use crate::error::{CliError, Result};
use crate::net;

/// A message stored on a phone, seen on its event stream.
#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    pub at: Instant,
    pub peer: AccountId,
    pub message_id: i64,
}

/// Every phone's arrivals, and their running total to wait on.
pub struct Tracker {
    arrivals: Mutex<Vec<Vec<Arrival>>>,
    total: watch::Sender<usize>,
    /// Channel messages stored on each phone: (message ID, when).
    channel: Mutex<Vec<Vec<(i64, Instant)>>>,
}

impl Tracker {
    /// A tracker for `phones` phones.
    pub fn new(phones: usize) -> Arc<Tracker> {
        Arc::new(Tracker {
            arrivals: Mutex::new(vec![Vec::new(); phones]),
            total: watch::Sender::new(0),
            channel: Mutex::new(vec![Vec::new(); phones]),
        })
    }

    fn record(&self, phone: usize, arrival: Arrival) {
        if let Ok(mut all) = self.arrivals.lock() {
            if let Some(list) = all.get_mut(phone) {
                list.push(arrival);
            }
        }
        self.total.send_modify(|n| *n += 1);
    }

    fn record_channel(&self, phone: usize, message_id: i64) {
        if let Ok(mut all) = self.channel.lock() {
            if let Some(list) = all.get_mut(phone) {
                list.push((message_id, Instant::now()));
            }
        }
    }

    /// The channel messages stored on one phone, with when.
    pub fn channel_arrivals(&self, phone: usize) -> Vec<(i64, Instant)> {
        self.channel
            .lock()
            .map(|all| all.get(phone).cloned().unwrap_or_default())
            .unwrap_or_default()
    }

    /// Waits until at least `target` arrivals were seen; false on timeout.
    pub async fn wait_for(&self, target: usize, timeout: Duration) -> bool {
        let mut rx = self.total.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|n| *n >= target))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// The arrivals on one phone.
    pub fn arrivals(&self, phone: usize) -> Vec<Arrival> {
        self.arrivals
            .lock()
            .map(|all| all.get(phone).cloned().unwrap_or_default())
            .unwrap_or_default()
    }
}

/// One simulated phone.
pub struct Phone {
    pub index: usize,
    pub name: String,
    pub id: AccountId,
    /// The phone's client directory, and its store in it.
    home: PathBuf,
    path: PathBuf,
    key: DatabaseKey,
    client: Option<Client>,
    listener: Option<JoinHandle<()>>,
}

impl Phone {
    /// Creates the account and its encrypted store, each phone in a
    /// directory of its own (blocking: key generation and the first prekeys;
    /// run it on a blocking thread of the runtime).
    pub fn create(dir: &Path, index: usize, name: String) -> Result<Phone> {
        let home = dir.join(format!("phone-{index:03}"));
        let key = DatabaseKey::generate();
        let client = Client::open_offline(&home, &key)?;
        let runtime = tokio::runtime::Handle::current();
        let id = runtime.block_on(client.id())?;
        runtime.block_on(client.close())?;
        Ok(Phone {
            index,
            name,
            id,
            path: Client::database_path(&home),
            home,
            key,
            client: None,
            listener: None,
        })
    }

    /// Opens the store and connects to the relay (not waiting for login).
    pub fn go_online(&mut self, relay: &RelayAddress, tracker: &Arc<Tracker>) -> Result<()> {
        let client = Client::open(&self.home, &self.key, Some(relay.clone()))?;
        // Subscribed before the client has a connection: no arrival is missed.
        let events = client.subscribe();
        self.listener = Some(tokio::spawn(listen(
            self.index,
            events,
            Arc::clone(tracker),
        )));
        self.client = Some(client);
        Ok(())
    }

    /// Waits until logged in and set up with the relay.
    pub async fn wait_connected(&self, timeout: Duration) -> Result<()> {
        net::wait_connected(self.client()?, timeout)
            .await
            .map(drop)
            .map_err(|reason| CliError::RelayUnreachable {
                addr: "the demo relay".into(),
                reason: format!("{} could not connect: {reason}", self.name),
            })
    }

    /// Disconnects and closes the store, as when the app is killed.
    pub async fn go_offline(&mut self) -> Result<()> {
        if let Some(client) = self.client.take() {
            client.close().await?;
        }
        if let Some(listener) = self.listener.take() {
            // The stream closed with the client; the listener ends by itself.
            let _ = listener.await;
        }
        Ok(())
    }

    /// The running client.
    pub fn client(&self) -> Result<&Client> {
        self.client
            .as_ref()
            .ok_or_else(|| CliError::Other(format!("{} is offline", self.name)))
    }

    /// The database file (for the summary).
    pub fn path(&self) -> &Path {
        &self.path
    }
}

async fn listen(index: usize, mut events: broadcast::Receiver<ClientEvent>, tracker: Arc<Tracker>) {
    loop {
        match events.recv().await {
            Ok(ClientEvent::Core(Event::MessageStored { peer, message_id })) => tracker.record(
                index,
                Arrival {
                    at: Instant::now(),
                    peer,
                    message_id,
                },
            ),
            Ok(ClientEvent::Core(Event::ChannelMessageStored { message_id, .. })) => {
                tracker.record_channel(index, message_id)
            }
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}
