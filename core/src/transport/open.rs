//! Opening a [`Client`] in one call: the store in its directory (created on
//! first use), the account in it, and the relay it talks to — given, or the
//! one remembered from before, or none yet (a fresh phone learns it from the
//! invite link it joins by, [`Client::join`]).

use std::path::{Path, PathBuf};

use super::client::{Client, ConnectionState};
use super::link::RelayAddress;
use crate::account::{Account, AccountOptions};
use crate::error::{Error, Result};
use crate::settings;
use crate::store::DatabaseKey;

/// The store's file name inside a client's directory.
pub const DATABASE_FILE: &str = "account.db";
/// The setting that remembers the relay (`RelayAddress::to_bytes`).
const RELAY_SETTING: &str = "relay";

impl Client {
    /// Opens the account in `dir` (creating the directory and a new account
    /// when there is no store there yet) with the store's `key`, and starts
    /// the client: connecting to `relay`, which is remembered for next time;
    /// with `None`, to the relay remembered, else to none until
    /// [`Client::join`] learns one from an invite link. A wrong key is
    /// [`Error::WrongDatabaseKey`], with nothing changed. Call inside a tokio
    /// runtime.
    pub fn open(dir: &Path, key: &DatabaseKey, relay: Option<RelayAddress>) -> Result<Client> {
        Self::open_with(dir, key, relay, &AccountOptions::default())
    }

    /// [`Client::open`] with other provisioning options (simulated phones,
    /// a test's clock; give the same ones at every open).
    pub fn open_with(
        dir: &Path,
        key: &DatabaseKey,
        relay: Option<RelayAddress>,
        options: &AccountOptions,
    ) -> Result<Client> {
        let account = open_account(dir, key, options)?;
        let relay = match relay {
            Some(r) => {
                remember(&account, &r)?;
                Some(r)
            }
            None => remembered(&account)?,
        };
        Self::start_with(account, relay)
    }

    /// Opens the account in `dir` like [`Client::open`] but connects to no
    /// relay (the CLI's commands that only read or change the store): every
    /// method that needs the relay answers [`Error::Offline`].
    pub fn open_offline(dir: &Path, key: &DatabaseKey) -> Result<Client> {
        let account = open_account(dir, key, &AccountOptions::default())?;
        Self::start_with(account, None)
    }

    /// The store's path for a client directory.
    pub fn database_path(dir: &Path) -> PathBuf {
        dir.join(DATABASE_FILE)
    }

    /// The relay this client talks to, if it knows one.
    pub fn relay(&self) -> Option<RelayAddress> {
        self.relay.borrow().clone()
    }

    /// The relay, or [`Error::Offline`] while none is known.
    pub(super) fn current_relay(&self) -> Result<RelayAddress> {
        self.relay().ok_or(Error::Offline)
    }

    /// Waits until the client is connected and set up; [`Error::Offline`]
    /// when an attempt fails first (or the client stops).
    pub(super) async fn wait_connected(&self) -> Result<()> {
        let mut state = self.state.clone();
        loop {
            match &*state.borrow_and_update() {
                ConnectionState::Connected { .. } => return Ok(()),
                ConnectionState::Disconnected { .. } | ConnectionState::Stopped => {
                    return Err(Error::Offline)
                }
                _ => {}
            }
            state.changed().await.map_err(|_| Error::Offline)?;
        }
    }

    /// Takes `relay` as this client's relay when it has none (remembered,
    /// and the client starts connecting): `Ok(true)`. The same relay again
    /// is `Ok(false)`; another one is [`Error::OtherRelay`].
    pub(super) async fn learn_relay(&self, relay: RelayAddress) -> Result<bool> {
        if let Some(current) = self.relay() {
            return if current == relay {
                Ok(false)
            } else {
                Err(Error::OtherRelay)
            };
        }
        let kept = relay.clone();
        self.account
            .call(move |a| {
                // Logging in would register a deleted account again.
                if a.relay_account_deleted()? {
                    return Err(Error::AccountDeletedAtRelay);
                }
                remember(a, &kept)
            })
            .await??;
        self.relay.send_replace(Some(relay));
        Ok(true)
    }
}

/// Opens the store in `dir`, or creates the directory (owner only) and a new
/// account when it holds none.
fn open_account(dir: &Path, key: &DatabaseKey, options: &AccountOptions) -> Result<Account> {
    let path = Client::database_path(dir);
    if path.exists() {
        return Account::open_with(&path, key, options);
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    Account::create_with(&path, key, options)
}

fn remember(account: &Account, relay: &RelayAddress) -> Result<()> {
    let bytes = relay.to_bytes();
    let conn = account.store.conn();
    if settings::get(conn, RELAY_SETTING)?.as_deref() != Some(&bytes[..]) {
        settings::put(conn, RELAY_SETTING, &bytes)?;
    }
    Ok(())
}

fn remembered(account: &Account) -> Result<Option<RelayAddress>> {
    match settings::get(account.store.conn(), RELAY_SETTING)? {
        None => Ok(None),
        Some(bytes) => match RelayAddress::from_bytes(&bytes) {
            Some((relay, [])) => Ok(Some(relay)),
            _ => Err(Error::Storage("the remembered relay is malformed".into())),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relay(port: u16) -> RelayAddress {
        RelayAddress {
            addr: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            fingerprint: [7; 32],
        }
    }

    #[tokio::test]
    async fn a_client_opens_creates_and_remembers_its_relay() {
        let dir = tempfile::tempdir().expect("dir");
        let home = dir.path().join("phone");
        let key = DatabaseKey::generate();
        // A fresh phone: no store, no relay.
        let fresh = Client::open(&home, &key, None).expect("created");
        assert_eq!(fresh.relay(), None);
        let me = fresh.id().await.expect("id");
        fresh.close().await.expect("closed");

        // Opened again: the same account; a relay given is remembered.
        let given = Client::open(&home, &key, Some(relay(9))).expect("opened");
        assert_eq!(given.id().await.expect("id"), me);
        given.close().await.expect("closed");
        let again = Client::open(&home, &key, None).expect("opened");
        assert_eq!(again.relay(), Some(relay(9)));
        assert!(matches!(
            again.learn_relay(relay(10)).await,
            Err(Error::OtherRelay)
        ));
        assert!(!again.learn_relay(relay(9)).await.expect("same"));
        again.close().await.expect("closed");

        // Offline: no relay, whatever is remembered; a wrong key changes nothing.
        let offline = Client::open_offline(&home, &key).expect("offline");
        assert_eq!(offline.relay(), None);
        offline.close().await.expect("closed");
        assert!(matches!(
            Client::open(&home, &DatabaseKey::generate(), None),
            Err(Error::WrongDatabaseKey)
        ));
    }

    #[test]
    fn a_relay_address_goes_to_bytes_and_back() {
        let v6 = RelayAddress {
            addr: "[2001:db8::1]:443".parse().expect("addr"),
            fingerprint: [9; 32],
        };
        for r in [relay(7443), v6] {
            let bytes = r.to_bytes();
            assert_eq!(RelayAddress::from_bytes(&bytes), Some((r, &[][..])));
            for cut in 0..bytes.len() {
                assert_eq!(RelayAddress::from_bytes(&bytes[..cut]), None);
            }
        }
        assert_eq!(RelayAddress::from_bytes(&[5; 40]), None);
    }
}
