//! Committees in the encrypted store: each log's signed entries, its channels,
//! and which members hold our current sender key for each channel; plus the
//! in-memory cache of folded logs, so a channel message is checked against
//! the membership without re-verifying the whole log.
//!
//! The state of a committee is never stored: it is the fold of its entries
//! ([`CommitteeLog::from_entries`]) and is recomputed on load.

use std::collections::{BTreeSet, HashMap};

use rusqlite::{params, Connection, OptionalExtension};
use uuid::Uuid;

use crate::account_id::AccountId;
use crate::clock::now_ms;
use crate::committee::{ChannelId, CommitteeId, CommitteeLog, SignedEntry};
use crate::error::{Error, Result};

pub(crate) const ENTRIES_SQL: &str =
    "SELECT entry, signature FROM committee_entries WHERE committee_id = ?1";

/// Reads a committee's log from the store; `None` when it is not here.
pub(crate) fn load(conn: &Connection, id: &CommitteeId) -> Result<Option<CommitteeLog>> {
    let mut stmt = conn.prepare_cached(ENTRIES_SQL)?;
    let entries = stmt
        .query_map([&id.0[..]], |r| {
            Ok(SignedEntry {
                entry: r.get(0)?,
                signature: r.get(1)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    if entries.is_empty() {
        return Ok(None);
    }
    CommitteeLog::from_entries(entries).map(Some)
}

/// Records `entries` of `log` (new ones; repeats are ignored) and the
/// channels its state now has. Runs inside the caller's transaction.
pub(crate) fn save<'a>(
    conn: &Connection,
    log: &CommitteeLog,
    entries: impl IntoIterator<Item = &'a SignedEntry>,
) -> Result<()> {
    let id = log.id();
    conn.prepare_cached("INSERT OR IGNORE INTO committees (id, joined_at) VALUES (?1, ?2)")?
        .execute(params![&id.0[..], now_ms()])?;
    let mut insert = conn.prepare_cached(
        "INSERT OR IGNORE INTO committee_entries (committee_id, hash, entry, signature, stored_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for e in entries {
        insert.execute(params![
            &id.0[..],
            &e.hash().0[..],
            &e.entry,
            &e.signature,
            now_ms()
        ])?;
    }
    let mut channel = conn.prepare_cached(
        "INSERT OR IGNORE INTO committee_channels (channel_id, committee_id, kind) VALUES (?1, ?2, ?3)",
    )?;
    for (channel_id, kind) in &log.state().channels {
        channel.execute(params![&channel_id[..], &id.0[..], kind.to_wire()])?;
    }
    Ok(())
}

/// Every committee this device holds a log for.
pub(crate) fn list(conn: &Connection) -> Result<Vec<CommitteeId>> {
    let mut stmt = conn.prepare_cached("SELECT id FROM committees ORDER BY joined_at, id")?;
    let rows = stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))?;
    rows.map(|r| {
        CommitteeId::from_bytes(&r?)
            .map_err(|_| Error::Storage("stored committee id is malformed".into()))
    })
    .collect()
}

/// The committee a channel belongs to, if it is a committee channel we know.
pub(crate) fn channel_committee(
    conn: &Connection,
    channel: &ChannelId,
) -> Result<Option<CommitteeId>> {
    let found: Option<Vec<u8>> = conn
        .prepare_cached("SELECT committee_id FROM committee_channels WHERE channel_id = ?1")?
        .query_row([&channel[..]], |r| r.get(0))
        .optional()?;
    found
        .map(|b| {
            CommitteeId::from_bytes(&b)
                .map_err(|_| Error::Storage("stored committee id is malformed".into()))
        })
        .transpose()
}

/// Our current sender key generation for a channel, if we have started one.
pub(crate) fn current_distribution(conn: &Connection, channel: &ChannelId) -> Result<Option<Uuid>> {
    let found: Option<Vec<u8>> = conn
        .prepare_cached("SELECT distribution_id FROM channel_sender_keys WHERE channel_id = ?1")?
        .query_row([&channel[..]], |r| r.get(0))
        .optional()?;
    found
        .map(|b| {
            Uuid::from_slice(&b)
                .map_err(|_| Error::Storage("stored distribution id is malformed".into()))
        })
        .transpose()
}

/// Starts a new sender key generation for a channel: nobody holds it yet.
pub(crate) fn start_distribution(conn: &Connection, channel: &ChannelId, id: Uuid) -> Result<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO channel_sender_keys (channel_id, distribution_id) VALUES (?1, ?2)",
    )?
    .execute(params![&channel[..], &id.as_bytes()[..]])?;
    conn.prepare_cached("DELETE FROM channel_key_holders WHERE channel_id = ?1")?
        .execute([&channel[..]])?;
    Ok(())
}

/// The members our current sender key for a channel was sent to.
pub(crate) fn holders(conn: &Connection, channel: &ChannelId) -> Result<BTreeSet<AccountId>> {
    let mut stmt =
        conn.prepare_cached("SELECT member FROM channel_key_holders WHERE channel_id = ?1")?;
    let rows = stmt.query_map([&channel[..]], |r| r.get::<_, Vec<u8>>(0))?;
    rows.map(|r| AccountId::from_bytes(&r?)).collect()
}

/// Records that `member` now holds our current sender key for a channel.
pub(crate) fn add_holder(conn: &Connection, channel: &ChannelId, member: &AccountId) -> Result<()> {
    conn.prepare_cached(
        "INSERT OR IGNORE INTO channel_key_holders (channel_id, member) VALUES (?1, ?2)",
    )?
    .execute(params![&channel[..], &member.as_bytes()[..]])?;
    Ok(())
}

/// Folded logs, loaded on first use and kept in step with the store: updated
/// only after the transaction that changed the entries has committed.
#[derive(Default)]
pub(crate) struct LogCache {
    logs: HashMap<CommitteeId, CommitteeLog>,
}

impl LogCache {
    /// The log of `id`, from the cache or the store.
    pub(crate) fn get(&mut self, conn: &Connection, id: &CommitteeId) -> Result<&CommitteeLog> {
        if !self.logs.contains_key(id) {
            let log = load(conn, id)?.ok_or(Error::UnknownCommittee(*id))?;
            self.logs.insert(*id, log);
        }
        self.logs.get(id).ok_or(Error::UnknownCommittee(*id))
    }

    /// Replaces the cached log with one whose entries are committed.
    pub(crate) fn put(&mut self, log: CommitteeLog) {
        self.logs.insert(log.id(), log);
    }

    /// Takes the logs a committed batch changed.
    pub(crate) fn absorb(&mut self, changed: HashMap<CommitteeId, CommitteeLog>) {
        self.logs.extend(changed);
    }
}

/// The logs one receive batch works on: what the batch changed over the
/// committed cache. Dropped with the batch if it does not commit.
pub(crate) struct BatchLogs<'a> {
    base: &'a LogCache,
    pub(crate) changed: HashMap<CommitteeId, CommitteeLog>,
    /// Committees where this batch merged concurrent changes.
    pub(crate) merged: Vec<CommitteeId>,
    /// The batch recorded join requests: decide them once it commits.
    pub(crate) join_requests: bool,
    /// Members who opened a session with us and asked for a hello back.
    pub(crate) hello_replies: Vec<(CommitteeId, AccountId)>,
    /// The batch took in network alerts: send their cascades once it commits.
    pub(crate) alerts_to_forward: bool,
    /// The batch stored something due at a set time: channel text to purge,
    /// or alert counts and notes to send back (the client's upkeep wakes).
    pub(crate) stores_expiring: bool,
    /// The batch's time: the account's clock when it began.
    pub(crate) now_ms: i64,
}

impl<'a> BatchLogs<'a> {
    pub(crate) fn new(base: &'a LogCache, now_ms: i64) -> Self {
        BatchLogs {
            base,
            changed: HashMap::new(),
            merged: Vec::new(),
            join_requests: false,
            hello_replies: Vec::new(),
            alerts_to_forward: false,
            stores_expiring: false,
            now_ms,
        }
    }

    /// The log of `id` as this batch sees it; `None` when no log is held.
    pub(crate) fn get(
        &mut self,
        conn: &Connection,
        id: &CommitteeId,
    ) -> Result<Option<&CommitteeLog>> {
        if self.changed.contains_key(id) {
            return Ok(self.changed.get(id));
        }
        if let Some(log) = self.base.logs.get(id) {
            return Ok(Some(log));
        }
        match load(conn, id)? {
            // Loaded, not changed: kept with the batch so it is verified once.
            Some(log) => {
                self.changed.insert(*id, log);
                Ok(self.changed.get(id))
            }
            None => Ok(None),
        }
    }

    /// Puts a log this batch changed (after its envelope's writes are made).
    pub(crate) fn put(&mut self, log: CommitteeLog) {
        self.changed.insert(log.id(), log);
    }
}
