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
use crate::committee::{ChannelId, CommitteeId, CommitteeLog, EntryHash, SignedEntry};
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

/// The members our current sender key for a channel was sent to: those it
/// is known to have reached the relay for, and those whose envelope is still
/// on its way (not to be sent it twice).
pub(crate) fn holders(conn: &Connection, channel: &ChannelId) -> Result<BTreeSet<AccountId>> {
    let mut stmt =
        conn.prepare_cached("SELECT member FROM channel_key_holders WHERE channel_id = ?1")?;
    let rows = stmt.query_map([&channel[..]], |r| r.get::<_, Vec<u8>>(0))?;
    rows.map(|r| AccountId::from_bytes(&r?)).collect()
}

/// Records that our current sender key for a channel is on its way to
/// `member` in the outbox envelope `envelope_id`.
pub(crate) fn add_holder(
    conn: &Connection,
    channel: &ChannelId,
    member: &AccountId,
    envelope_id: &[u8],
) -> Result<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO channel_key_holders (channel_id, member, envelope_id)
         VALUES (?1, ?2, ?3)",
    )?
    .execute(params![&channel[..], &member.as_bytes()[..], envelope_id])?;
    Ok(())
}

/// The relay holds these envelopes (`reached`), or refused them for good:
/// the sender keys they carried are held by their members, or not at all (and
/// go again before our next post).
pub(crate) fn settle_holders(
    conn: &Connection,
    envelope_ids: &[&[u8]],
    reached: bool,
) -> Result<()> {
    let unconfirmed: bool = conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM channel_key_holders WHERE envelope_id IS NOT NULL)",
        )?
        .query_row([], |r| r.get(0))?;
    if !unconfirmed {
        return Ok(());
    }
    let sql = match reached {
        true => "UPDATE channel_key_holders SET envelope_id = NULL WHERE envelope_id = ?1",
        false => "DELETE FROM channel_key_holders WHERE envelope_id = ?1",
    };
    let mut stmt = conn.prepare_cached(sql)?;
    for id in envelope_ids {
        stmt.execute([id])?;
    }
    Ok(())
}

/// Committee entries owed to a member this device had no session with when
/// it sent them: `whole` for the whole log (a member just added), else the
/// entries `hashes`.
pub(crate) struct Owed {
    pub committee_id: CommitteeId,
    pub account: AccountId,
    pub whole: bool,
    pub hashes: BTreeSet<EntryHash>,
}

/// Records that the entries `hashes` of a committee — all of it, when empty —
/// are owed to `account`. Runs in the transaction that made them.
pub(crate) fn owe(
    conn: &Connection,
    committee: &CommitteeId,
    account: &AccountId,
    hashes: &[EntryHash],
) -> Result<()> {
    let mut insert = conn.prepare_cached(
        "INSERT OR IGNORE INTO committee_owed (committee_id, account, entry_hash) VALUES (?1, ?2, ?3)",
    )?;
    let whole: [&[u8]; 1] = [&[]];
    let keys: Vec<&[u8]> = match hashes.is_empty() {
        true => whole.to_vec(),
        false => hashes.iter().map(|h| &h.0[..]).collect(),
    };
    for key in keys {
        insert.execute(params![&committee.0[..], &account.as_bytes()[..], key])?;
    }
    Ok(())
}

/// Everything owed, by committee and member.
pub(crate) fn owed(conn: &Connection) -> Result<Vec<Owed>> {
    let mut stmt = conn.prepare_cached(
        "SELECT committee_id, account, entry_hash FROM committee_owed ORDER BY committee_id, account",
    )?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, Vec<u8>>(2)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut out: Vec<Owed> = Vec::new();
    for (committee, account, hash) in rows {
        let committee_id = CommitteeId::from_bytes(&committee)?;
        let account = AccountId::from_bytes(&account)?;
        let same = out
            .last()
            .is_some_and(|o| o.committee_id == committee_id && o.account == account);
        if !same {
            out.push(Owed {
                committee_id,
                account,
                whole: false,
                hashes: BTreeSet::new(),
            });
        }
        let Some(last) = out.last_mut() else {
            continue;
        };
        match hash.is_empty() {
            true => last.whole = true,
            false => {
                last.hashes.insert(EntryHash::from_bytes(&hash)?);
            }
        }
    }
    Ok(out)
}

/// Nothing of a committee is owed to `account` any more.
pub(crate) fn settle_owed(
    conn: &Connection,
    committee: &CommitteeId,
    account: &AccountId,
) -> Result<()> {
    conn.prepare_cached("DELETE FROM committee_owed WHERE committee_id = ?1 AND account = ?2")?
        .execute(params![&committee.0[..], &account.as_bytes()[..]])?;
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
    /// Requests for committee entries to answer, and members to ask for
    /// entries this batch left waiting for parents.
    pub(crate) sync: crate::committee_sync::SyncWork,
    /// Receipts to send, resends owed, messages to read again.
    pub(crate) repair: crate::repair::RepairWork,
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
            sync: Default::default(),
            repair: Default::default(),
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
