//! The receive side of committees, inside the receive transaction: taking in
//! a committee update (entries of a log, checked and folded before anything
//! of the envelope is written), and checking that a channel message's sender
//! may post in that channel as our folded log has it now.
//!
//! An update is checked first ([`check_update`], no writes) and written only
//! once the whole envelope has been accepted ([`apply_update`]), so a failing
//! envelope leaves no trace in the store or in the batch's logs.

use rusqlite::Connection;

use crate::account_id::AccountId;
use crate::committee::{ChannelId, CommitteeId, CommitteeLog, InsertOutcome, Op, SignedEntry};
use crate::committee_store::{self, BatchLogs};
use crate::error::{Error, Result};
use crate::event::Event;
use crate::settings::ACCESS_KEY_LEN;

/// A committee update that passed every check, waiting to be written.
pub(crate) struct Update {
    log: CommitteeLog,
    /// Entries new to this device (applied, rejected or waiting).
    new: Vec<SignedEntry>,
    events: Vec<Event>,
    /// The log changed and now has several heads: concurrent changes merged.
    merged: bool,
    /// Members' access keys the sender sent along.
    access_keys: Vec<(AccountId, [u8; ACCESS_KEY_LEN])>,
    /// Who sent it: holds the parents of what it sent.
    sender: AccountId,
}

/// Folds `entries` into a copy of the committee's log. A committee new to
/// this device must come whole, with this account among its members; a
/// forged, malformed or foreign entry fails the whole update, and so does an
/// update from someone the log never names (`sender`): a stranger cannot
/// make every member store, or hold waiting, entries of its making.
///
/// An update without a genesis for a committee not held yet is a later
/// change that overtook the log welcoming us (the relay keeps no order
/// between envelopes sent together): [`Error::UnknownCommittee`], so the
/// envelope waits, bounded, and is read again once a committee arrives.
pub(crate) fn check_update(
    conn: &Connection,
    logs: &mut BatchLogs<'_>,
    (me, sender): (&AccountId, &AccountId),
    committee_id: CommitteeId,
    entries: Vec<SignedEntry>,
    access_keys: Vec<(AccountId, [u8; ACCESS_KEY_LEN])>,
) -> Result<Update> {
    let Some(held) = logs.get(conn, &committee_id)? else {
        let mut whole = false;
        for e in &entries {
            whole |= matches!(e.parse()?.op, Op::Genesis { .. });
        }
        if !whole {
            return Err(Error::UnknownCommittee(committee_id));
        }
        let log = CommitteeLog::from_entries(entries.iter().cloned())?;
        if log.id() != committee_id {
            return Err(Error::InvalidContent(
                "committee update for another committee",
            ));
        }
        if log.state().role(me).is_none() || !log.knows(sender) {
            return Err(Error::NotACommitteeMember(committee_id));
        }
        return Ok(Update {
            log,
            new: entries,
            events: vec![
                Event::AddedToCommittee { committee_id },
                Event::CommitteeChanged { committee_id },
            ],
            merged: false,
            access_keys,
            sender: *sender,
        });
    };
    let mut log = held.clone();
    let mut new = Vec::new();
    let mut events = Vec::new();
    let mut changed = false;
    for entry in entries {
        match log.insert_signed(entry.clone())? {
            InsertOutcome::Duplicate => continue,
            InsertOutcome::Pending { .. } => {}
            InsertOutcome::Applied { .. } => changed = true,
            InsertOutcome::Rejected { reason, .. } => {
                changed = true;
                events.push(Event::CommitteeChangeRejected {
                    committee_id,
                    reason,
                });
            }
        }
        new.push(entry);
    }
    if !log.knows(sender) {
        return Err(Error::NotACommitteeMember(committee_id));
    }
    if changed {
        events.push(Event::CommitteeChanged { committee_id });
    }
    let merged = changed && log.heads().len() > 1;
    Ok(Update {
        log,
        new,
        events,
        merged,
        access_keys,
        sender: *sender,
    })
}

/// Writes a checked update in the receive transaction and hands its log to the batch.
pub(crate) fn apply_update(
    conn: &Connection,
    logs: &mut BatchLogs<'_>,
    update: Update,
    events: &mut Vec<Event>,
) -> Result<()> {
    committee_store::save(conn, &update.log, &update.new)?;
    for (account, key) in &update.access_keys {
        if update.log.state().members.contains_key(account) {
            crate::committee_sessions::learn_access_key(conn, account, key)?;
        }
    }
    if update
        .events
        .iter()
        .any(|e| matches!(e, Event::AddedToCommittee { .. }))
    {
        crate::committee_join::joined(conn, &update.log.id())?;
        // Messages that came ahead of this committee can be read now.
        logs.repair.retry_waiting = true;
    }
    events.extend(update.events);
    // Entries wait for parents we lack: ask the member who sent them.
    if !update.log.missing_parents().is_empty() {
        logs.sync.asks.push((update.log.id(), update.sender));
    }
    if update.merged && !logs.merged.contains(&update.log.id()) {
        logs.merged.push(update.log.id());
    }
    logs.put(update.log);
    Ok(())
}

/// Refuses a message in a committee channel from anyone our folded log does
/// not allow to post there now: a non-member (never one, removed, or left),
/// or a member without the role an announcement channel needs. Channels of no
/// committee we hold (the bare channel API) are not checked here.
pub(crate) fn check_channel_sender(
    conn: &Connection,
    logs: &mut BatchLogs<'_>,
    channel: &ChannelId,
    sender: &AccountId,
    events: &mut Vec<Event>,
) -> Result<()> {
    let Some(committee) = committee_store::channel_committee(conn, channel)? else {
        return Ok(());
    };
    let log = logs
        .get(conn, &committee)?
        .ok_or(Error::UnknownCommittee(committee))?;
    let state = log.state();
    let allowed = match (state.role(sender), state.channels.get(channel)) {
        (Some(role), Some(kind)) => kind.may_post(role, &state.settings),
        _ => false,
    };
    if allowed {
        return Ok(());
    }
    events.push(Event::ChannelMessageRejected {
        channel_id: *channel,
        sender: *sender,
    });
    Err(Error::ChannelSenderRefused(*sender))
}
