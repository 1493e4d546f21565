//! [`Client`]: the object the apps hold, one per account. Opening it, the
//! account's identity, contacts and 1:1 conversations; committees, alerts
//! and messages have their own files, each an `impl Client` of the same
//! object.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use rankfile_core::transport::{parse_fingerprint, Client as CoreClient, RelayAddress};
use rankfile_core::DatabaseKey;
use zeroize::Zeroizing;

use crate::error::ClientError;
use crate::events::{self, ClientListener, ConnectionState};
use crate::ids;
use crate::messages::Message;
use crate::runtime::run;

/// Where the account's relay is: `host:port` and the SHA-256 fingerprint of
/// its certificate in hex (both from the relay's startup line or an invite).
#[derive(uniffi::Record)]
pub struct RelayConfig {
    pub address: String,
    pub fingerprint: String,
}

impl TryFrom<RelayConfig> for RelayAddress {
    type Error = ClientError;

    fn try_from(r: RelayConfig) -> Result<Self, ClientError> {
        let addr: SocketAddr = r.address.parse().map_err(|_| ClientError::InvalidRelay)?;
        let fingerprint = parse_fingerprint(&r.fingerprint).ok_or(ClientError::InvalidRelay)?;
        Ok(RelayAddress { addr, fingerprint })
    }
}

/// The safety number with a contact: 60 digits both phones show alike, and
/// the QR payload this phone shows for the other to scan.
#[derive(uniffi::Record)]
pub struct SafetyNumber {
    pub digits: String,
    pub scannable: Vec<u8>,
}

/// An account on this phone, connected to its relay while it lives.
#[derive(uniffi::Object)]
pub struct Client {
    /// `None` once shut down. Each call takes its own `Arc`, so a call in
    /// flight finishes even while another shuts the client down.
    core: Mutex<Option<Arc<CoreClient>>>,
}

impl Client {
    pub(crate) fn core(&self) -> Result<Arc<CoreClient>, ClientError> {
        self.core
            .lock()
            .map_err(|_| ClientError::Internal)?
            .clone()
            .ok_or(ClientError::Closed)
    }
}

#[uniffi::export]
impl Client {
    /// Opens the account stored in `dir` (creating it on first use) with the
    /// 32-byte `database_key` from the OS keystore, and starts connecting to
    /// `relay`. Every event from then on goes to `listener`.
    #[uniffi::constructor]
    pub async fn open(
        dir: String,
        database_key: Vec<u8>,
        relay: RelayConfig,
        listener: Arc<dyn ClientListener>,
    ) -> Result<Arc<Self>, ClientError> {
        let key = Zeroizing::new(database_key);
        let relay = RelayAddress::try_from(relay)?;
        let core = run(async move {
            let key = DatabaseKey::from_slice(&key)?;
            Ok(CoreClient::open(dir.as_ref(), &key, Some(relay))?)
        })
        .await?;
        // Subscribed before the first connection attempt can finish.
        events::forward(core.subscribe(), listener);
        Ok(Arc::new(Client {
            core: Mutex::new(Some(Arc::new(core))),
        }))
    }

    /// This account's ID (`rf1-…`): what others add to reach it.
    pub async fn account_id(&self) -> Result<String, ClientError> {
        let core = self.core()?;
        run(async move { Ok(core.id().await?.to_string()) }).await
    }

    /// The connection to the relay now.
    pub fn connection_state(&self) -> Result<ConnectionState, ClientError> {
        Ok(self.core()?.connection_state().into())
    }

    /// Fetches `account`'s keys from the relay and opens a session with it,
    /// named `name` on this phone.
    pub async fn add_contact(&self, name: String, account: String) -> Result<(), ClientError> {
        let (core, account) = (self.core()?, ids::account(&account)?);
        run(async move {
            core.add_contact_from_relay(name, account).await?;
            Ok(())
        })
        .await
    }

    /// This account's contact card (`rankfile://contact/…`), for an organizer
    /// who will propose a link to one of our committees.
    pub async fn contact_card(&self) -> Result<String, ClientError> {
        let core = self.core()?;
        run(async move { Ok(core.contact_card().await?.to_link()) }).await
    }

    /// Keeps what another organizer's contact card carries; returns their
    /// account ID.
    pub async fn learn_contact_card(&self, card: String) -> Result<String, ClientError> {
        let core = self.core()?;
        run(async move {
            match core.learn_contact_card(&card).await {
                Ok(id) => Ok(id.to_string()),
                Err(rankfile_core::Error::InvalidContent(_)) => {
                    Err(ClientError::InvalidContactCard)
                }
                Err(e) => Err(e.into()),
            }
        })
        .await
    }

    /// The safety number with a contact, to compare in person.
    pub async fn safety_number(&self, contact: String) -> Result<SafetyNumber, ClientError> {
        let (core, contact) = (self.core()?, ids::account(&contact)?);
        run(async move {
            let n = core.safety_number(contact).await?;
            Ok(SafetyNumber {
                digits: n.digits,
                scannable: n.scannable,
            })
        })
        .await
    }

    /// Checks the QR payload scanned from the contact's phone and marks the
    /// contact verified when it matches (`SafetyNumberMismatch` otherwise).
    pub async fn verify_contact(
        &self,
        contact: String,
        scanned: Vec<u8>,
    ) -> Result<(), ClientError> {
        let (core, contact) = (self.core()?, ids::account(&contact)?);
        run(async move { Ok(core.verify_contact(contact, scanned).await?) }).await
    }

    /// Sends a 1:1 message; it waits in the outbox until the relay has it.
    pub async fn send_text(&self, to: String, body: String) -> Result<(), ClientError> {
        let (core, to) = (self.core()?, ids::account(&to)?);
        run(async move {
            core.send_text(to, body).await?;
            Ok(())
        })
        .await
    }

    /// A page of the conversation with `peer`, newest first, older than
    /// `before_id` when given.
    pub async fn history(
        &self,
        peer: String,
        before_id: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Message>, ClientError> {
        let (core, peer) = (self.core()?, ids::account(&peer)?);
        run(async move {
            let page = core.history(peer, before_id, limit).await?;
            Ok(page.into_iter().map(Message::from).collect())
        })
        .await
    }

    /// Sets the disappearing timer of the conversation with `peer` (seconds,
    /// 0 off), for both phones.
    pub async fn set_conversation_timer(&self, peer: String, secs: u32) -> Result<(), ClientError> {
        let (core, peer) = (self.core()?, ids::account(&peer)?);
        run(async move {
            core.set_conversation_timer(peer, secs).await?;
            Ok(())
        })
        .await
    }

    /// The conversation's disappearing timer (seconds, 0 off).
    pub async fn conversation_timer(&self, peer: String) -> Result<u32, ClientError> {
        let (core, peer) = (self.core()?, ids::account(&peer)?);
        run(async move { Ok(core.conversation_timer(peer).await?) }).await
    }

    /// Where the relay sends push wake-ups (no content in them), or `None`.
    pub async fn set_push_endpoint(&self, url: Option<String>) -> Result<(), ClientError> {
        let core = self.core()?;
        run(async move { Ok(core.set_push_endpoint(url).await?) }).await
    }

    /// Sends everything queued now and waits until the relay has it.
    pub async fn flush(&self) -> Result<(), ClientError> {
        let core = self.core()?;
        run(async move { Ok(core.flush().await?) }).await
    }

    /// Disconnects and closes the store. Later calls fail with `Closed`.
    pub async fn shutdown(&self) -> Result<(), ClientError> {
        let taken = self.core.lock().map_err(|_| ClientError::Internal)?.take();
        let Some(core) = taken else {
            return Ok(());
        };
        run(async move {
            // A call still in flight holds the other reference; the client
            // then closes when that call ends.
            if let Ok(core) = Arc::try_unwrap(core) {
                core.close().await?;
            }
            Ok(())
        })
        .await
    }
}
