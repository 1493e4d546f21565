//! [`Client`] methods for who this device is and whom it knows: its account
//! ID, identity key and prekey bundle; contacts (added from the relay's
//! directory or from a bundle handed over directly, listed, renamed); safety
//! numbers and verification; identity changes awaiting the user. Each runs
//! on the account's thread and returns plain data.

use super::client::Client;
use crate::account_id::AccountId;
use crate::contact::Contact;
use crate::error::Result;
use crate::safety::SafetyNumber;

impl Client {
    /// This account's ID.
    pub async fn id(&self) -> Result<AccountId> {
        self.account.call(|a| a.id()).await
    }

    /// This device's ID within the account.
    pub async fn device_id(&self) -> Result<u32> {
        self.account.call(|a| a.device_id()).await
    }

    /// The public identity key, serialized.
    pub async fn identity_key(&self) -> Result<Vec<u8>> {
        self.account.call(|a| a.identity_key()).await
    }

    /// This device's prekey bundle (protobuf bytes) to hand to another device
    /// directly, e.g. by QR code; each call hands out a fresh one-time prekey.
    pub async fn prekey_bundle(&self) -> Result<Vec<u8>> {
        self.account.call(|a| a.prekey_bundle()).await?
    }

    /// Adds a contact from a bundle handed over directly and opens a session
    /// with it; the bundle's key must hash to its account ID.
    pub async fn add_contact(&self, name: String, bundle: Vec<u8>) -> Result<AccountId> {
        self.account
            .call(move |a| a.add_contact(&name, &bundle))
            .await?
    }

    /// Every contact.
    pub async fn contacts(&self) -> Result<Vec<Contact>> {
        self.account.call(|a| a.contacts()).await?
    }

    /// One contact ([`crate::Error::UnknownContact`] if none).
    pub async fn contact(&self, id: AccountId) -> Result<Contact> {
        self.account.call(move |a| a.contact(&id)).await?
    }

    /// Renames a contact.
    pub async fn rename_contact(&self, id: AccountId, name: String) -> Result<()> {
        self.account
            .call(move |a| a.rename_contact(&id, &name))
            .await?
    }

    /// The safety number between this account and a contact: digits to
    /// compare by eye, a QR payload to scan.
    pub async fn safety_number(&self, id: AccountId) -> Result<SafetyNumber> {
        self.account.call(move |a| a.safety_number(&id)).await?
    }

    /// Checks the other phone's scanned safety-number QR payload and, when it
    /// matches, marks the contact verified
    /// ([`crate::Error::SafetyNumberMismatch`] otherwise).
    pub async fn verify_contact(&self, id: AccountId, scanned: Vec<u8>) -> Result<()> {
        self.account
            .call(move |a| a.verify_contact(&id, &scanned))
            .await?
    }

    /// Marks a contact verified after the user compared the digits by eye.
    pub async fn mark_verified(&self, id: AccountId) -> Result<()> {
        self.account.call(move |a| a.mark_verified(&id)).await?
    }

    /// Accepts that `contact`'s pending successor replaces it; returns the
    /// new account ID.
    pub async fn accept_identity_change(&self, contact: AccountId) -> Result<AccountId> {
        self.account
            .call(move |a| a.accept_identity_change(&contact))
            .await?
    }

    /// Rejects `contact`'s pending successor; its held messages are deleted.
    pub async fn reject_identity_change(&self, contact: AccountId) -> Result<()> {
        self.account
            .call(move |a| a.reject_identity_change(&contact))
            .await?
    }
}
