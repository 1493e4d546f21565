//! Contact cards: an account ID with its access key, as a
//! `rankfile://contact/…` link (the same text as a QR payload), so a first
//! message to someone met out of band — a link proposal to another
//! committee's organizer — goes by sealed sender.
//!
//! Without it, that first message would go identified: the relay would see
//! who proposes a link to whom. The card is what an organizer hands to the
//! organizer of another committee along with its committee's ID.
//!
//! The key in a card is the one held when the card was made. The holder is
//! like a 1:1 contact that was never a co-member (`crate::access_key`): told
//! of a new key once it is a contact, and a stale card's message is refused
//! by the relay and sent again identified.

use crate::account::Account;
use crate::account_id::{AccountId, ACCOUNT_ID_LEN};
use crate::error::{Error, Result};
use crate::settings::ACCESS_KEY_LEN;

/// The link form's prefix; the QR payload is the same text.
pub const CONTACT_CARD_PREFIX: &str = "rankfile://contact/";
/// Version byte of the card's binary form.
const CARD_VERSION: u8 = 1;
/// Version, account ID, access key.
const CARD_LEN: usize = 1 + ACCOUNT_ID_LEN + ACCESS_KEY_LEN;
/// Longest text [`ContactCard::parse`] looks at (a card is 79 characters).
const MAX_CARD_TEXT: usize = 128;

/// An account and its access key.
#[derive(Clone, PartialEq, Eq)]
pub struct ContactCard {
    /// Whose card.
    pub account: AccountId,
    /// Their access key when the card was made.
    pub access_key: [u8; ACCESS_KEY_LEN],
}

/// Shows the account only: the key is what lets anyone write to it sealed.
impl std::fmt::Debug for ContactCard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContactCard")
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

impl ContactCard {
    /// The link: `rankfile://contact/` and the card in base32.
    pub fn to_link(&self) -> String {
        let mut bytes = Vec::with_capacity(CARD_LEN);
        bytes.push(CARD_VERSION);
        bytes.extend_from_slice(self.account.as_bytes());
        bytes.extend_from_slice(&self.access_key);
        format!("{CONTACT_CARD_PREFIX}{}", crate::base32::encode(&bytes))
    }

    /// Reads a link or QR payload, ignoring surrounding space and case.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = Error::InvalidAccountId;
        let text = text.trim();
        if text.len() > MAX_CARD_TEXT {
            return Err(bad("a contact card is too long"));
        }
        let lower = text.to_ascii_lowercase();
        let body = lower
            .strip_prefix(CONTACT_CARD_PREFIX)
            .ok_or(bad("not a rankfile://contact/ link"))?;
        let bytes = crate::base32::decode(body).ok_or(bad("a contact card is not base32"))?;
        if bytes.len() != CARD_LEN {
            return Err(bad("a contact card has the wrong length"));
        }
        if bytes[0] != CARD_VERSION {
            return Err(bad("unknown contact card version"));
        }
        let (account, key) = bytes[1..].split_at(ACCOUNT_ID_LEN);
        Ok(ContactCard {
            account: AccountId::from_bytes(account)?,
            access_key: key
                .try_into()
                .map_err(|_| bad("a contact card has the wrong length"))?,
        })
    }
}

impl Account {
    /// This account's card, with its access key now.
    pub fn contact_card(&self) -> ContactCard {
        ContactCard {
            account: self.id(),
            access_key: self.settings.access_key,
        }
    }

    /// Keeps the access key of a card: given to the contact when it is one,
    /// else kept until a session with it opens. A key already learnt from
    /// the account's own messages is not replaced. Returns the account.
    pub fn learn_contact_card(&mut self, card: &ContactCard) -> Result<AccountId> {
        if card.account == self.id() {
            return Err(Error::FromSelf);
        }
        let tx = self.store.write()?;
        crate::committee_sessions::learn_access_key(&tx, &card.account, &card.access_key)?;
        tx.commit()?;
        Ok(card.account)
    }

    /// Keeps the access keys an invite link carries for its organizers
    /// (as [`Account::learn_contact_card`] does for one), so their bundles
    /// are fetched anonymously and the join requests go sealed.
    pub(crate) fn learn_access_keys(
        &mut self,
        keys: &[(AccountId, [u8; crate::settings::ACCESS_KEY_LEN])],
    ) -> Result<()> {
        let me = self.id();
        let tx = self.store.write()?;
        for (account, key) in keys.iter().filter(|(a, _)| *a != me) {
            crate::committee_sessions::learn_access_key(&tx, account, key)?;
        }
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::DatabaseKey;

    fn account(dir: &std::path::Path, name: &str) -> Account {
        Account::create(&dir.join(name), &DatabaseKey::generate()).expect("account")
    }

    #[test]
    fn a_card_goes_to_text_and_back_and_stays_short() {
        let dir = tempfile::tempdir().expect("dir");
        let a = account(dir.path(), "a.db");
        let card = a.contact_card();
        let link = card.to_link();
        assert!(link.starts_with(CONTACT_CARD_PREFIX), "{link}");
        assert_eq!(link.len(), 79);
        assert_eq!(ContactCard::parse(&link).expect("parse"), card);
        let shouted = format!("  {}\n", link.to_ascii_uppercase());
        assert_eq!(ContactCard::parse(&shouted).expect("upper"), card);
        assert!(!format!("{card:?}").contains(&hex(&card.access_key)));
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn malformed_cards_are_typed_errors() {
        let dir = tempfile::tempdir().expect("dir");
        let link = account(dir.path(), "a.db").contact_card().to_link();
        let cut = &link[..link.len() - 2];
        let long = format!("{link}{}", "a".repeat(100));
        let other = link.replace("contact", "join");
        let not_base32 = format!("{CONTACT_CARD_PREFIX}!!!!");
        let mut wrong_version =
            crate::base32::decode(&link[CONTACT_CARD_PREFIX.len()..]).expect("decode");
        wrong_version[0] = 9;
        let wrong_version = format!(
            "{CONTACT_CARD_PREFIX}{}",
            crate::base32::encode(&wrong_version)
        );
        for text in [cut, &long, &other, &not_base32, &wrong_version, ""] {
            assert!(
                matches!(ContactCard::parse(text), Err(Error::InvalidAccountId(_))),
                "{text}"
            );
        }
    }

    /// A card's key waits until the account is a contact, and then is the
    /// key our first message to it is sealed with.
    #[test]
    fn a_cards_key_is_taken_when_the_contact_is_added() {
        let dir = tempfile::tempdir().expect("dir");
        let mut a = account(dir.path(), "a.db");
        let mut b = account(dir.path(), "b.db");
        let card = b.contact_card();
        assert_eq!(a.learn_contact_card(&card).expect("learn"), b.id());
        assert!(matches!(
            a.learn_contact_card(&a.contact_card()),
            Err(Error::FromSelf)
        ));
        let bundle = b.prekey_bundle().expect("bundle");
        a.add_contact("b", &bundle).expect("contact");
        assert_eq!(
            a.contact_access_key(&b.id()).expect("key"),
            Some(card.access_key)
        );
    }
}
