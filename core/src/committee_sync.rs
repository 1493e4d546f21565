//! Catching up on a committee's log: a member holding entries whose parents
//! it lacks (it missed a change — its phone was off, or the author's device
//! was lost before it could send it) asks another member for what it is
//! missing, and members answer such requests.
//!
//! Until it catches up, a member's folded log is behind: it would go on
//! sending posts and sender keys to someone already removed. So it asks as
//! soon as a receive batch leaves entries waiting (the member who sent them
//! holds their parents), and again on each connection (the waiting entries'
//! authors and a few organizers), at most once per [`ASK_PAUSE_MS`] per
//! member. The request names the asker's heads; the answer is every entry the
//! answerer holds beyond them, in fold order, in updates of at most
//! [`ANSWER_CHUNK`] entries. Only a current member is answered: a removed
//! one learns nothing made after its removal.

use std::collections::BTreeSet;

use rusqlite::Connection;

use crate::account::Account;
use crate::account_id::AccountId;
use crate::committee::{CommitteeId, EntryHash, Role, MAX_PARENTS};
use crate::committee_ops::{CommitteeChange, Delivery};
use crate::committee_store::BatchLogs;
use crate::error::{Error, Result};
use crate::message::Body;

/// Shortest time between two requests to the same member about the same
/// committee: an answer takes a round trip, and a member that lacks the
/// entries too must not be asked in a loop.
pub const ASK_PAUSE_MS: i64 = 30_000;
/// Members asked on a connection, besides the waiting entries' authors.
const ORGANIZERS_ASKED: usize = 2;
/// Entries per answering update: well inside the envelope limit.
pub const ANSWER_CHUNK: usize = 128;
/// Heads a request names at most (more are rare: the answer is then larger,
/// never wrong).
const MAX_REQUEST_HEADS: usize = MAX_PARENTS * 4;

/// Inside the receive transaction: a request for entries is taken only from
/// a current member of a committee we hold, and answered after the commit.
pub(crate) fn check_request(
    conn: &Connection,
    logs: &mut BatchLogs<'_>,
    committee_id: &CommitteeId,
    asker: &AccountId,
) -> Result<()> {
    let log = logs
        .get(conn, committee_id)?
        .ok_or(Error::UnknownCommittee(*committee_id))?;
    match log.state().role(asker) {
        Some(_) => Ok(()),
        None => Err(Error::NotACommitteeMember(*committee_id)),
    }
}

impl Account {
    /// Asks `members` (those we have a session with, not asked lately) for
    /// the entries of `committee` we lack, if any entry waits for parents.
    pub(crate) fn ask_for_missing(
        &mut self,
        committee: &CommitteeId,
        members: &[AccountId],
    ) -> Result<usize> {
        let me = self.id();
        let log = self.logs.get(self.store.conn(), committee)?;
        let missing: Vec<EntryHash> = log.missing_parents().into_iter().collect();
        if missing.is_empty() {
            return Ok(0);
        }
        let heads: Vec<EntryHash> = log.heads().into_iter().take(MAX_REQUEST_HEADS).collect();
        let missing: Vec<EntryHash> = missing.into_iter().take(MAX_REQUEST_HEADS).collect();
        let now = self.clock.now_ms();
        let wanted: Vec<AccountId> = members
            .iter()
            .filter(|m| **m != me)
            .filter(|m| {
                self.asked
                    .get(&(*committee, **m))
                    .is_none_or(|at| now - at >= ASK_PAUSE_MS)
            })
            .copied()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if wanted.is_empty() {
            return Ok(0);
        }
        let body = Body::CommitteeEntriesRequest {
            committee_id: *committee,
            heads,
            missing,
        };
        let (sent, _) = self.send_to_many(&wanted, &body, false, |_, _, _| Ok(()))?;
        for e in &sent {
            self.asked.insert((*committee, e.recipient), now);
        }
        Ok(sent.len())
    }

    /// On each connection: for every committee with entries waiting for
    /// parents, asks their authors and a few organizers.
    #[cfg_attr(feature = "testing", rankfile_testing_pub::public)]
    pub(crate) fn ask_for_missing_entries(&mut self) -> Result<usize> {
        let mut asked = 0;
        for committee in self.committees()? {
            let log = self.logs.get(self.store.conn(), &committee)?;
            if log.missing_parents().is_empty() {
                continue;
            }
            let state = log.state();
            let mut members: Vec<AccountId> = log
                .pending_authors()
                .into_iter()
                .filter(|a| state.members.contains_key(a))
                .collect();
            members.extend(
                state
                    .members
                    .iter()
                    .filter(|(_, m)| m.role == Role::Organizer)
                    .map(|(a, _)| *a)
                    .take(ORGANIZERS_ASKED),
            );
            asked += self.ask_for_missing(&committee, &members)?;
        }
        Ok(asked)
    }

    /// Answers a member's request: every entry we hold beyond its heads.
    pub(crate) fn answer_entries_request(
        &mut self,
        committee: &CommitteeId,
        asker: &AccountId,
        heads: &[EntryHash],
    ) -> Result<CommitteeChange> {
        let log = self.logs.get(self.store.conn(), committee)?.clone();
        if log.state().role(asker).is_none() {
            return Err(Error::NotACommitteeMember(*committee));
        }
        let beyond: Vec<_> = log.entries_beyond(heads).into_iter().cloned().collect();
        if beyond.is_empty() {
            return Ok(CommitteeChange::new(*committee));
        }
        let each = beyond
            .chunks(ANSWER_CHUNK)
            .map(|chunk| (*asker, Delivery::Entries(chunk.to_vec())))
            .collect();
        self.deliver_entries(&log, each, |_| Ok(()))
    }
}

/// What a receive batch left to do about missing entries, for
/// [`BatchLogs`]: requests to answer, and members to ask.
#[derive(Default)]
pub(crate) struct SyncWork {
    /// (committee, asker, asker's heads) to answer after the commit.
    pub answers: Vec<(CommitteeId, AccountId, Vec<EntryHash>)>,
    /// (committee, member who sent entries that now wait for parents).
    pub asks: Vec<(CommitteeId, AccountId)>,
}

impl SyncWork {
    /// Whether any of it sends something.
    pub fn is_empty(&self) -> bool {
        self.answers.is_empty() && self.asks.is_empty()
    }
}

impl Account {
    /// After a receive batch commits: answers the requests it carried and
    /// asks for what its updates left missing. Never fails the batch.
    pub(crate) fn sync_after_receive(&mut self, work: SyncWork) {
        for (committee, asker, heads) in work.answers {
            if let Err(e) = self.answer_entries_request(&committee, &asker, &heads) {
                tracing::warn!("could not answer a request for committee entries: {e}");
            }
        }
        for (committee, from) in work.asks {
            if let Err(e) = self.ask_for_missing(&committee, &[from]) {
                tracing::warn!("could not ask for missing committee entries: {e}");
            }
        }
    }
}
