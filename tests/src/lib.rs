//! Shared support for the end-to-end scenarios in `tests/tests/`: simulated
//! phones, each an [`Account`] over its own encrypted store in a temporary
//! directory.

use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};

use rankfile_core::{Account, AccountId, DatabaseKey};

pub mod chaos;
pub mod online;

/// A simulated phone: an account, its database path and its key. Derefs to
/// its [`Account`].
pub struct Phone {
    pub name: String,
    account: Option<Account>,
    pub path: PathBuf,
    pub key: DatabaseKey,
}

impl Deref for Phone {
    type Target = Account;
    fn deref(&self) -> &Account {
        self.account.as_ref().expect("the phone's account is open")
    }
}

impl DerefMut for Phone {
    fn deref_mut(&mut self) -> &mut Account {
        self.account.as_mut().expect("the phone's account is open")
    }
}

impl Phone {
    /// Creates a new account in `dir`.
    pub fn new(dir: &Path, name: &str) -> Phone {
        let path = dir.join(format!("{name}.db"));
        let key = DatabaseKey::generate();
        let account = Account::create(&path, &key).expect("create account");
        Phone {
            name: name.to_string(),
            account: Some(account),
            path,
            key,
        }
    }

    /// This phone's account ID.
    pub fn id(&self) -> AccountId {
        Deref::deref(self).id()
    }

    /// Closes and reopens the store, as after an app restart.
    pub fn reopen(&mut self) {
        drop(self.account.take());
        self.account = Some(Account::open(&self.path, &self.key).expect("reopen"));
    }

    /// An exact copy of this phone's store, opened as a second phone named
    /// `name`: both then start from the same state.
    pub fn twin(&mut self, name: &str) -> Phone {
        drop(self.account.take());
        let path = self.path.with_file_name(format!("{name}.db"));
        for suffix in ["", "-wal"] {
            let mut from = self.path.clone().into_os_string();
            from.push(suffix);
            let mut to = path.clone().into_os_string();
            to.push(suffix);
            if Path::new(&from).exists() {
                std::fs::copy(&from, &to).expect("copy store file");
            }
        }
        self.account = Some(Account::open(&self.path, &self.key).expect("reopen"));
        Phone {
            name: name.to_string(),
            account: Some(Account::open(&path, &self.key).expect("open the copy")),
            path,
            // A test stands in for the keystore, which hands out the same key again.
            key: DatabaseKey::from_slice(self.key.expose_for_keystore()).expect("32 bytes"),
        }
    }

    /// Takes the account out, closing nothing (for a wipe).
    pub fn into_account(mut self) -> Account {
        self.account.take().expect("the phone's account is open")
    }

    /// Every file of this phone's store: database, WAL and shared memory.
    pub fn files(&self) -> Vec<PathBuf> {
        ["", "-wal", "-shm"]
            .iter()
            .map(|s| {
                let mut p = self.path.clone().into_os_string();
                p.push(s);
                PathBuf::from(p)
            })
            .filter(|p| p.exists())
            .collect()
    }

    /// The raw bytes of every file of the store, concatenated.
    pub fn raw_bytes(&self) -> Vec<u8> {
        self.files()
            .iter()
            .flat_map(|p| std::fs::read(p).expect("read store file"))
            .collect()
    }
}

/// `a` adds `b` as a contact from `b`'s bundle, opening a session.
pub fn introduce(a: &mut Phone, b: &mut Phone) {
    let bundle = b.prekey_bundle().expect("bundle");
    let name = b.name.clone();
    a.add_contact(&name, &bundle).expect("add contact");
}

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// An in-process relay on loopback for scenario tests.
pub mod relay {
    use std::path::Path;
    use std::time::Duration;

    use rankfile_core::transport::{parse_fingerprint, RelayAddress};
    use rankfile_relay::{Config, RelayHandle};

    /// Starts a relay with its data in `dir` on a fresh loopback port.
    pub async fn start(dir: &Path) -> RelayHandle {
        rankfile_relay::start(Config::local(dir))
            .await
            .expect("relay starts")
    }

    /// Starts a relay on a given address (to restart one where it was).
    pub async fn start_at(dir: &Path, addr: std::net::SocketAddr) -> RelayHandle {
        let mut config = Config::local(dir);
        config.bind = addr;
        for _ in 0..50 {
            match rankfile_relay::start(config.clone()).await {
                Ok(h) => return h,
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        panic!("the relay did not restart on {addr}");
    }

    /// What a client needs to reach `relay`.
    pub fn address(relay: &RelayHandle) -> RelayAddress {
        RelayAddress {
            addr: relay.local_addr(),
            fingerprint: parse_fingerprint(relay.fingerprint()).expect("fingerprint"),
        }
    }
}

/// Polls `check` every 20 ms until it holds, for at most `secs` seconds.
pub async fn eventually<F, Fut>(secs: u64, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// Waits until `client` has handed everything in its outbox to the relay
/// (each envelope confirmed durable there), for at most `secs` seconds.
pub async fn outbox_drained(client: &rankfile_core::transport::Client, secs: u64, what: &str) {
    eventually(secs, what, || async {
        client
            .with_account(|a| a.outbox().map(|o| o.is_empty()).unwrap_or(false))
            .await
            .unwrap_or(false)
    })
    .await;
}

/// Waits until `client` is logged in and set up with the relay (access key,
/// sender certificate and prekeys in place), for at most 20 seconds.
pub async fn wait_connected(client: &rankfile_core::transport::Client) {
    eventually(20, "the client is set up with the relay", || async {
        matches!(
            client.connection_state(),
            rankfile_core::transport::ConnectionState::Connected { .. }
        )
    })
    .await;
}

/// A new account in `dir`, connected to `relay`: its client once set up, and
/// its ID.
pub async fn connected_client(
    dir: &Path,
    name: &str,
    relay: &rankfile_relay::RelayHandle,
) -> (rankfile_core::transport::Client, AccountId) {
    let account = Account::create(&dir.join(format!("{name}.db")), &DatabaseKey::generate())
        .expect("account");
    let id = account.id();
    let client =
        rankfile_core::transport::Client::start(account, relay::address(relay)).expect("client");
    wait_connected(&client).await;
    (client, id)
}

/// [`connected_client`] for an account that goes by `clock` (a test's
/// shifted clock, shared with the relay's).
pub async fn connected_client_at(
    dir: &Path,
    name: &str,
    relay: &rankfile_relay::RelayHandle,
    clock: rankfile_core::Clock,
) -> (rankfile_core::transport::Client, AccountId) {
    let options = rankfile_core::AccountOptions::default().with_clock(clock);
    let account = Account::create_with(
        &dir.join(format!("{name}.db")),
        &DatabaseKey::generate(),
        &options,
    )
    .expect("account");
    let id = account.id();
    let client =
        rankfile_core::transport::Client::start(account, relay::address(relay)).expect("client");
    wait_connected(&client).await;
    (client, id)
}

/// An hour from now, ms since the epoch: an expiry for invites and alerts.
pub fn in_an_hour() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis();
    u64::try_from(now).expect("ms") + 3_600_000
}

/// The lines of this process's stdin, read on a thread of their own (stdin
/// blocks): the commands a test's child process (a chaos relay or phone)
/// takes from the test driving it. Ends with stdin.
pub fn stdin_lines() -> tokio::sync::mpsc::UnboundedReceiver<String> {
    use std::io::BufRead;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}
