//! Contacts: the accounts this one talks to, whether the user has verified
//! them, and identity changes awaiting the user's decision.
//!
//! An account's identity key never changes (its ID is the key's hash), so a
//! contact's "identity change" is a new account — after a reinstall, or a
//! phone seized and replaced — that claims to replace a contact. The claim is
//! never acted on silently: the new account's messages are held, sending to the
//! contact fails with [`Error::IdentityChangePending`], and an
//! [`Event::IdentityChanged`](crate::Event::IdentityChanged) is raised until the
//! user accepts (the contact moves to the new account, unverified) or rejects.

use libsignal_protocol::IdentityKey;
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::account_id::AccountId;
use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::settings::ACCESS_KEY_LEN;

/// Longest contact name kept, in bytes.
pub const MAX_CONTACT_NAME: usize = 256;

/// A contact as the app shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Contact {
    pub account_id: AccountId,
    pub device_id: u32,
    pub name: String,
    /// The user compared safety numbers with this contact and they matched.
    pub verified: bool,
    /// A new account claiming to replace this contact, awaiting a decision.
    pub pending_successor: Option<AccountId>,
}

const COLUMNS: &str = "account_id, device_id, name, verified, successor_account_id";

/// A contact row as read: account ID, device, name, verified, successor.
type ContactRow = (Vec<u8>, u32, String, bool, Option<Vec<u8>>);

fn from_row(r: &Row<'_>) -> rusqlite::Result<ContactRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

fn decode(row: ContactRow) -> Result<Contact> {
    let (id, device_id, name, verified, successor) = row;
    Ok(Contact {
        account_id: AccountId::from_bytes(&id)?,
        device_id,
        name,
        verified,
        pending_successor: successor.map(|s| AccountId::from_bytes(&s)).transpose()?,
    })
}

pub(crate) fn get(conn: &Connection, id: &AccountId) -> Result<Option<Contact>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM contacts WHERE account_id = ?1"
    ))?
    .query_row([&id.as_bytes()[..]], from_row)
    .optional()?
    .map(decode)
    .transpose()
}

pub(crate) fn list(conn: &Connection) -> Result<Vec<Contact>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM contacts ORDER BY name, account_id"
    ))?;
    let rows = stmt.query_map([], from_row)?;
    rows.map(|r| decode(r?)).collect()
}

/// The contact whose pending successor is `successor`, if any.
pub(crate) fn by_successor_sql() -> String {
    format!("SELECT {COLUMNS} FROM contacts WHERE successor_account_id = ?1")
}

pub(crate) fn replaced_by(conn: &Connection, successor: &AccountId) -> Result<Option<Contact>> {
    conn.prepare_cached(&by_successor_sql())?
        .query_row([&successor.as_bytes()[..]], from_row)
        .optional()?
        .map(decode)
        .transpose()
}

pub(crate) fn identity_key(conn: &Connection, id: &AccountId) -> Result<Option<IdentityKey>> {
    let bytes: Option<Vec<u8>> = conn
        .prepare_cached("SELECT identity_key FROM contacts WHERE account_id = ?1")?
        .query_row([&id.as_bytes()[..]], |r| r.get(0))
        .optional()?;
    bytes
        .map(|b| {
            IdentityKey::decode(&b)
                .map_err(|_| Error::Storage("stored identity key is malformed".into()))
        })
        .transpose()
}

pub(crate) fn clean_name(name: &str) -> String {
    let trimmed: String = name.trim().chars().filter(|c| !c.is_control()).collect();
    let mut end = trimmed.len().min(MAX_CONTACT_NAME);
    while !trimmed.is_char_boundary(end) {
        end -= 1;
    }
    trimmed[..end].to_string()
}

/// Adds or updates a contact. The identity key is the one bound to the ID.
pub(crate) fn upsert(
    conn: &Connection,
    id: &AccountId,
    device_id: u32,
    name: &str,
    identity: &IdentityKey,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO contacts (account_id, device_id, name, identity_key, added_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (account_id) DO UPDATE SET device_id = excluded.device_id, name = excluded.name",
    )?
    .execute(params![
        &id.as_bytes()[..],
        device_id,
        clean_name(name),
        &identity.serialize()[..],
        now_ms()
    ])?;
    Ok(())
}

/// Adds a contact only if it is not there (a first message from a stranger).
pub(crate) const INSERT_IF_NEW_SQL: &str =
    "INSERT OR IGNORE INTO contacts (account_id, device_id, name, identity_key, added_at)
     VALUES (?1, ?2, '', ?3, ?4)";

pub(crate) fn insert_if_new(
    conn: &Connection,
    id: &AccountId,
    device_id: u32,
    identity: &IdentityKey,
) -> Result<bool> {
    let n = conn.prepare_cached(INSERT_IF_NEW_SQL)?.execute(params![
        &id.as_bytes()[..],
        device_id,
        &identity.serialize()[..],
        now_ms()
    ])?;
    Ok(n > 0)
}

pub(crate) const SET_ACCESS_KEY_SQL: &str =
    "UPDATE contacts SET access_key = ?2 WHERE account_id = ?1 AND access_key IS NOT ?2";

pub(crate) fn set_access_key(
    conn: &Connection,
    id: &AccountId,
    key: &[u8; ACCESS_KEY_LEN],
) -> Result<()> {
    // Only when it changed: an unchanged row stays a clean page.
    conn.prepare_cached(SET_ACCESS_KEY_SQL)?
        .execute(params![&id.as_bytes()[..], &key[..]])?;
    Ok(())
}

/// Takes the access key a message from the contact carried, sent at
/// `sent_at_ms` by its clock, unless the key held came from a later message
/// (a message written before its sender replaced the key can arrive after
/// the one announcing the new key). Returns whether it was taken.
pub(crate) fn learn_carried_access_key(
    conn: &Connection,
    id: &AccountId,
    key: &[u8; ACCESS_KEY_LEN],
    sent_at_ms: i64,
) -> Result<bool> {
    // Written only when the key changes (an unchanged row stays a clean
    // page): the time kept is that of the first message with this key.
    let changed = conn
        .prepare_cached(
            "UPDATE contacts SET access_key = ?2, access_key_sent_at = ?3
             WHERE account_id = ?1 AND access_key IS NOT ?2 AND access_key_sent_at <= ?3",
        )?
        .execute(params![&id.as_bytes()[..], &key[..], sent_at_ms])?;
    if changed == 1 {
        return Ok(true);
    }
    // Unchanged: either the same key (taken) or an older message's (not).
    Ok(access_key(conn, id)? == Some(*key))
}

/// Forgets the contact's access key if it is still `stale` (the relay refused
/// it): until its next message brings the new one, we send identified.
pub(crate) fn forget_access_key(conn: &Connection, id: &AccountId, stale: &[u8]) -> Result<()> {
    conn.prepare_cached(
        "UPDATE contacts SET access_key = NULL WHERE account_id = ?1 AND access_key = ?2",
    )?
    .execute(params![&id.as_bytes()[..], stale])?;
    Ok(())
}

/// The contact's access key, once learnt from one of its messages.
pub(crate) fn access_key(
    conn: &Connection,
    id: &AccountId,
) -> Result<Option<[u8; ACCESS_KEY_LEN]>> {
    let v: Option<Option<Vec<u8>>> = conn
        .prepare_cached("SELECT access_key FROM contacts WHERE account_id = ?1")?
        .query_row([&id.as_bytes()[..]], |r| r.get(0))
        .optional()?;
    Ok(v.flatten().and_then(|k| k.try_into().ok()))
}

pub(crate) fn set_verified(conn: &Connection, id: &AccountId, verified: bool) -> Result<()> {
    conn.execute(
        "UPDATE contacts SET verified = ?2 WHERE account_id = ?1",
        params![&id.as_bytes()[..], verified],
    )?;
    Ok(())
}

pub(crate) fn set_successor(
    conn: &Connection,
    id: &AccountId,
    successor: &AccountId,
    successor_key: &IdentityKey,
) -> Result<()> {
    conn.execute(
        "UPDATE contacts SET successor_account_id = ?2, successor_identity_key = ?3, verified = 0
         WHERE account_id = ?1",
        params![
            &id.as_bytes()[..],
            &successor.as_bytes()[..],
            &successor_key.serialize()[..]
        ],
    )?;
    Ok(())
}

/// The user accepted: the contact becomes the successor account, unverified;
/// the conversation and held messages move with it.
pub(crate) fn accept_successor(conn: &Connection, old: &AccountId) -> Result<AccountId> {
    type SuccessorRow = (Option<Vec<u8>>, Option<Vec<u8>>, String);
    let row: Option<SuccessorRow> = conn
        .query_row(
            "SELECT successor_account_id, successor_identity_key, name FROM contacts WHERE account_id = ?1",
            [&old.as_bytes()[..]],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let Some((Some(new), Some(key), name)) = row else {
        return Err(Error::UnknownContact(*old));
    };
    let new_id = AccountId::from_bytes(&new)?;
    let device: u32 = conn
        .query_row(
            "SELECT device_id FROM contacts WHERE account_id = ?1",
            [&new[..]],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(1);
    conn.execute("DELETE FROM contacts WHERE account_id = ?1", [&new[..]])?;
    conn.execute(
        "UPDATE contacts SET account_id = ?2, identity_key = ?3, device_id = ?4, name = ?5,
                verified = 0, successor_account_id = NULL, successor_identity_key = NULL
         WHERE account_id = ?1",
        params![&old.as_bytes()[..], &new[..], &key[..], device, name],
    )?;
    conn.execute(
        "UPDATE messages SET peer = ?2 WHERE peer = ?1",
        params![&old.as_bytes()[..], &new[..]],
    )?;
    conn.execute(
        "UPDATE messages SET state = 0 WHERE peer = ?1 AND state = 1",
        [&new[..]],
    )?;
    Ok(new_id)
}

/// The user rejected: the claim is dropped and the held messages deleted.
pub(crate) fn reject_successor(conn: &Connection, old: &AccountId) -> Result<Option<AccountId>> {
    let successor: Option<Option<Vec<u8>>> = conn
        .query_row(
            "SELECT successor_account_id FROM contacts WHERE account_id = ?1",
            [&old.as_bytes()[..]],
            |r| r.get(0),
        )
        .optional()?;
    let Some(successor) = successor else {
        return Err(Error::UnknownContact(*old));
    };
    conn.execute(
        "UPDATE contacts SET successor_account_id = NULL, successor_identity_key = NULL WHERE account_id = ?1",
        [&old.as_bytes()[..]],
    )?;
    if let Some(s) = &successor {
        conn.execute(
            "DELETE FROM messages WHERE peer = ?1 AND state = 1",
            [&s[..]],
        )?;
    }
    successor.map(|s| AccountId::from_bytes(&s)).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(clean_name("  Maria \n"), "Maria");
        assert_eq!(clean_name("a\u{7}b"), "ab");
        let long = "é".repeat(400);
        let cleaned = clean_name(&long);
        assert!(cleaned.len() <= MAX_CONTACT_NAME);
        assert!(cleaned.chars().all(|c| c == 'é'));
    }

    /// A message written before its sender replaced its access key, arriving
    /// after the one that carried the new key, does not put the old key
    /// back (it did: every sealed send to that contact was then refused).
    #[test]
    fn a_key_from_an_older_message_does_not_replace_a_newer_one() {
        use crate::store::DatabaseKey;
        let dir = tempfile::tempdir().expect("dir");
        let open = |name: &str| {
            crate::Account::create(&dir.path().join(name), &DatabaseKey::generate())
                .expect("account")
        };
        let (mut a, mut b) = (open("a.db"), open("b.db"));
        let bundle = b.prekey_bundle().expect("bundle");
        a.add_contact("b", &bundle).expect("contact");
        let hello = a.send_text(&b.id(), "hello").expect("hello");
        b.receive(&hello.bytes).expect("hello arrives");
        let old = a.access_key().expect("key");
        // Written while offline, under the old key; held in the outbox.
        let written_offline = a.send_text(&b.id(), "written offline").expect("send");
        // The key is replaced; the next message says so (a later
        // millisecond: a tie keeps the key last taken).
        std::thread::sleep(std::time::Duration::from_millis(3));
        let new = [9u8; ACCESS_KEY_LEN];
        crate::settings::set_access_key(a.store.conn(), &new).expect("replace");
        a.settings.access_key = new;
        let announce = a.send_text(&b.id(), "new key").expect("send");
        b.receive(&announce.bytes).expect("announcement arrives");
        assert_eq!(access_key(b.store.conn(), &a.id()).expect("key"), Some(new));
        b.receive(&written_offline.bytes)
            .expect("the older one arrives");
        assert_eq!(
            access_key(b.store.conn(), &a.id()).expect("key"),
            Some(new),
            "not the old {old:?}"
        );
    }
}
