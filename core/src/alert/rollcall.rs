//! The roll-call across the network: answers to an alert counted per
//! committee and sent back along the path the alert came, so that whoever
//! raised a network alert sees the answers from every committee it reached.
//!
//! Each member answers the device that delivered the alert to it first. A
//! device that delivered it into committees counts its recipients' answers
//! per committee, and sends those counts, with every count it has gathered
//! from further down, to the device it got the alert from ([`AlertCounts`]).
//! A count is named by the committee and a random name its counting device
//! chose for the alert, and carries a version that goes up with each one the
//! device sends: a receiver keeps the highest version of each, so a count that
//! arrives late or twice changes nothing and nothing is counted twice.
//!
//! A member reached by a second device too (a delegate, in its committee and
//! its council) tells that device so ([`RollCall::ReachedBefore`]): it is
//! counted by the first only, and so counts once across the network.
//!
//! What is owed (counts, notes) is recorded in the transaction that makes it
//! owed, and sent by the client's upkeep at most once per
//! [`ROLLCALL_DEBOUNCE_MS`]: a wave of answers is one message.

use std::collections::BTreeMap;

use rankfile_proto::v1 as pb;
use rusqlite::{params, Connection, OptionalExtension};

use super::store::stored;
use super::types::{AlertAnswer, AlertId};
use crate::committee::{CommitteeId, MAX_MEMBERS};
use crate::error::{Error, Result};

/// How long owed counts wait before they go: answers come in waves (an alert
/// lands on a committee's phones at once), and a second is still live on an
/// organizer's screen, so one message carries the wave instead of one per
/// answer.
pub const ROLLCALL_DEBOUNCE_MS: i64 = 1_000;
/// Most counts one message carries (and one device keeps per alert): a
/// network of a thousand committees and councils, in well under the largest
/// envelope.
pub const MAX_COUNT_ENTRIES: usize = 1_024;
/// Bytes of a counter's random name.
pub(crate) const COUNTER_LEN: usize = 16;

/// The answers from one committee or council, as the raiser's status shows them.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CommitteeAnswers {
    pub committee: CommitteeId,
    /// How many gave each answer (their latest).
    pub counts: BTreeMap<AlertAnswer, usize>,
    /// Reached, not yet answered.
    pub not_answered: usize,
}

/// One device's count of the answers from one committee it delivered an
/// alert into (the wire's `CommitteeCount`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Count {
    pub committee: CommitteeId,
    pub counter: [u8; COUNTER_LEN],
    pub version: u64,
    /// Members it counts: those it delivered the alert to first.
    pub reached: u32,
    /// Answers of each kind, in [`AlertAnswer::ALL`]'s order.
    pub answers: [u32; 4],
}

/// Counts of answers to one alert, sent back to the device it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertCounts {
    pub(crate) alert_id: AlertId,
    pub(crate) counts: Vec<Count>,
}

/// What travels back along the cascade.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RollCall {
    /// Counts of answers, per committee.
    Counts(AlertCounts),
    /// The alert reached the sender first by another path: it is counted
    /// there, not by the receiver.
    ReachedBefore(AlertId),
}

impl RollCall {
    /// The alert it is about.
    pub fn alert_id(&self) -> AlertId {
        match self {
            RollCall::Counts(c) => c.alert_id,
            RollCall::ReachedBefore(id) => *id,
        }
    }
}

impl Count {
    fn to_wire(self) -> pb::CommitteeCount {
        let [received, coming, cannot_come, safe] = self.answers;
        pb::CommitteeCount {
            committee_id: self.committee.0.to_vec(),
            counter: self.counter.to_vec(),
            version: self.version,
            reached: self.reached,
            received,
            coming,
            cannot_come,
            safe,
        }
    }

    fn from_wire(c: &pb::CommitteeCount) -> Result<Self> {
        let bad = Error::InvalidContent;
        let answers = [c.received, c.coming, c.cannot_come, c.safe];
        let answered = answers.iter().map(|a| u64::from(*a)).sum::<u64>();
        if c.version == 0 || c.reached as usize > MAX_MEMBERS || answered > u64::from(c.reached) {
            return Err(bad("alert count out of range"));
        }
        Ok(Count {
            committee: CommitteeId::from_bytes(&c.committee_id)
                .map_err(|_| bad("bad committee id"))?,
            counter: c
                .counter
                .as_slice()
                .try_into()
                .map_err(|_| bad("bad alert counter"))?,
            version: c.version,
            reached: c.reached,
            answers,
        })
    }
}

impl AlertCounts {
    pub(crate) fn to_wire(&self) -> pb::AlertCounts {
        pb::AlertCounts {
            alert_id: self.alert_id.0.to_vec(),
            counts: self.counts.iter().map(|c| c.to_wire()).collect(),
        }
    }

    pub(crate) fn from_wire(a: &pb::AlertCounts) -> Result<Self> {
        if a.counts.len() > MAX_COUNT_ENTRIES {
            return Err(Error::InvalidContent("too many alert counts"));
        }
        Ok(AlertCounts {
            alert_id: AlertId::from_bytes(&a.alert_id)?,
            counts: a
                .counts
                .iter()
                .map(Count::from_wire)
                .collect::<Result<_>>()?,
        })
    }
}

fn ms(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Marks roll-call work due for an alert that wants answers, at `at_ms`
/// unless already due: counts (only a device with somewhere to send them, one
/// the alert came from) or notes (any device). Says whether it was not due
/// before, so the upkeep is woken once per wave.
pub(crate) fn due(conn: &Connection, id: &AlertId, at_ms: i64, counts: bool) -> Result<bool> {
    let n = conn
        .prepare_cached(
            "UPDATE alerts SET rollcall_due_at = ?2
             WHERE alert_id = ?1 AND answers_wanted = 1 AND rollcall_due_at IS NULL
               AND (?3 = 0 OR sender IS NOT NULL)",
        )?
        .execute(params![&id.0[..], at_ms, counts])?;
    Ok(n > 0)
}

/// When roll-call work is next due, if any is.
pub(crate) fn next_due(conn: &Connection) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached(
            "SELECT min(rollcall_due_at) FROM alerts WHERE rollcall_due_at IS NOT NULL",
        )?
        .query_row([], |r| r.get::<_, Option<i64>>(0))?)
}

/// Alerts with roll-call work due at `now_ms`.
pub(crate) fn due_alerts(conn: &Connection, now_ms: i64) -> Result<Vec<AlertId>> {
    let mut stmt = conn.prepare_cached(
        "SELECT alert_id FROM alerts WHERE rollcall_due_at <= ?1 ORDER BY rollcall_due_at",
    )?;
    let rows = stmt.query_map([now_ms], |r| r.get::<_, Vec<u8>>(0))?;
    rows.map(|r| AlertId::from_bytes(&r?).map_err(stored))
        .collect()
}

/// Marks an alert's roll-call work done; `sent` records the counter name and
/// version of counts just sent.
pub(crate) fn done(
    conn: &Connection,
    id: &AlertId,
    sent: Option<([u8; COUNTER_LEN], u64)>,
) -> Result<()> {
    match sent {
        Some((counter, version)) => conn
            .prepare_cached(
                "UPDATE alerts SET rollcall_due_at = NULL, counter = ?2, counts_version = ?3
                 WHERE alert_id = ?1",
            )?
            .execute(params![&id.0[..], &counter[..], ms(version)])?,
        None => conn
            .prepare_cached("UPDATE alerts SET rollcall_due_at = NULL WHERE alert_id = ?1")?
            .execute([&id.0[..]])?,
    };
    Ok(())
}

/// This device's counter name for an alert (once it has sent counts) and the
/// version it last sent.
pub(crate) fn counter(conn: &Connection, id: &AlertId) -> Result<(Option<[u8; COUNTER_LEN]>, u64)> {
    let (counter, version): (Option<Vec<u8>>, i64) = conn
        .prepare_cached("SELECT counter, counts_version FROM alerts WHERE alert_id = ?1")?
        .query_row([&id.0[..]], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .ok_or(Error::UnknownAlert(*id))?;
    let counter = counter
        .map(|c| c.as_slice().try_into())
        .transpose()
        .map_err(|_| Error::Storage("a stored alert counter is malformed".into()))?;
    Ok((counter, u64::try_from(version).unwrap_or(0)))
}

/// This device's own counts, per committee it delivered the alert into
/// (counter name and version left for the caller). A committee whose every
/// recipient was reached first by another path still has its count, of none,
/// so that the count sent before it is replaced.
pub(crate) fn own(conn: &Connection, id: &AlertId) -> Result<Vec<(CommitteeId, u32, [u32; 4])>> {
    let mut stmt = conn.prepare_cached(
        "SELECT committee_id, answer, reached_before FROM alert_recipients
         WHERE alert_id = ?1 ORDER BY committee_id",
    )?;
    let rows = stmt.query_map([&id.0[..]], |r| {
        Ok((
            r.get::<_, Vec<u8>>(0)?,
            r.get::<_, Option<i32>>(1)?,
            r.get::<_, bool>(2)?,
        ))
    })?;
    let mut out: BTreeMap<CommitteeId, (u32, [u32; 4])> = BTreeMap::new();
    for row in rows {
        let (committee, answer, before) = row?;
        let entry = out
            .entry(CommitteeId::from_bytes(&committee).map_err(stored)?)
            .or_default();
        if before {
            continue;
        }
        entry.0 += 1;
        if let Some(a) = answer {
            let a = AlertAnswer::from_wire(a).map_err(stored)?;
            if let Some(i) = AlertAnswer::ALL.iter().position(|x| *x == a) {
                entry.1[i] += 1;
            }
        }
    }
    Ok(out.into_iter().map(|(c, (n, a))| (c, n, a)).collect())
}

/// Every count gathered from further down, as last sent by its counter.
pub(crate) fn gathered(conn: &Connection, id: &AlertId) -> Result<Vec<Count>> {
    let mut stmt = conn.prepare_cached(
        "SELECT committee_id, counter, version, reached, received, coming, cannot_come, safe
         FROM alert_counts WHERE alert_id = ?1 ORDER BY committee_id, counter",
    )?;
    let rows = stmt.query_map([&id.0[..]], |r| {
        Ok((
            r.get::<_, Vec<u8>>(0)?,
            r.get::<_, Vec<u8>>(1)?,
            r.get::<_, i64>(2)?,
            [
                r.get::<_, u32>(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
            ],
        ))
    })?;
    rows.map(|row| {
        let (committee, counter, version, [reached, a, b, c, d]) = row?;
        Ok(Count {
            committee: CommitteeId::from_bytes(&committee).map_err(stored)?,
            counter: counter
                .as_slice()
                .try_into()
                .map_err(|_| Error::Storage("a stored alert count is malformed".into()))?,
            version: u64::try_from(version).unwrap_or(0),
            reached,
            answers: [a, b, c, d],
        })
    })
    .collect()
}

/// Takes in counts sent back from further down: each kept if newer than the
/// one held from the same counter for the same committee. Says whether any
/// changed.
pub(crate) fn merge(conn: &Connection, id: &AlertId, counts: &[Count]) -> Result<bool> {
    let mut held: i64 = conn
        .prepare_cached("SELECT count(*) FROM alert_counts WHERE alert_id = ?1")?
        .query_row([&id.0[..]], |r| r.get(0))?;
    let mut changed = false;
    for c in counts {
        let known: Option<i64> = conn
            .prepare_cached(
                "SELECT version FROM alert_counts
                 WHERE alert_id = ?1 AND committee_id = ?2 AND counter = ?3",
            )?
            .query_row(
                params![&id.0[..], &c.committee.0[..], &c.counter[..]],
                |r| r.get(0),
            )
            .optional()?;
        match known {
            Some(v) if v >= ms(c.version) => continue,
            // Bounded: a device keeps at most this many counts per alert.
            None if held >= MAX_COUNT_ENTRIES as i64 => continue,
            None => held += 1,
            Some(_) => {}
        }
        let [received, coming, cannot_come, safe] = c.answers;
        conn.prepare_cached(
            "INSERT OR REPLACE INTO alert_counts (alert_id, committee_id, counter, version,
                 reached, received, coming, cannot_come, safe)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?
        .execute(params![
            &id.0[..],
            &c.committee.0[..],
            &c.counter[..],
            ms(c.version),
            c.reached,
            received,
            coming,
            cannot_come,
            safe
        ])?;
        changed = true;
    }
    Ok(changed)
}

/// The answers per committee: this device's own counts and those gathered,
/// added up (each member is counted by one device only).
pub(crate) fn committees(conn: &Connection, id: &AlertId) -> Result<Vec<CommitteeAnswers>> {
    let mut sums: BTreeMap<CommitteeId, (u64, [u64; 4])> = BTreeMap::new();
    let own = own(conn, id)?;
    let all = own.iter().map(|(c, n, a)| (*c, *n, *a)).chain(
        gathered(conn, id)?
            .into_iter()
            .map(|c| (c.committee, c.reached, c.answers)),
    );
    for (committee, reached, answers) in all {
        let sum = sums.entry(committee).or_default();
        sum.0 += u64::from(reached);
        for (s, a) in sum.1.iter_mut().zip(answers) {
            *s += u64::from(a);
        }
    }
    let size = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
    Ok(sums
        .into_iter()
        // A committee whose members all count elsewhere has nothing to show.
        .filter(|(_, (reached, _))| *reached > 0)
        .map(|(committee, (reached, answers))| {
            let answered: u64 = answers.iter().sum();
            CommitteeAnswers {
                committee,
                counts: AlertAnswer::ALL
                    .iter()
                    .zip(answers)
                    .map(|(a, n)| (*a, size(n)))
                    .collect(),
                not_answered: size(reached.saturating_sub(answered)),
            }
        })
        .collect())
}

/// Owes `account` (who delivered the alert after another device did) the
/// note that this phone is counted elsewhere.
pub(crate) fn owe_note(conn: &Connection, id: &AlertId, account: &crate::AccountId) -> Result<()> {
    conn.prepare_cached(
        "INSERT OR IGNORE INTO alert_notes_owed (alert_id, account) VALUES (?1, ?2)",
    )?
    .execute(params![&id.0[..], &account.as_bytes()[..]])?;
    Ok(())
}

/// The notes owed for an alert.
pub(crate) fn notes_owed(conn: &Connection, id: &AlertId) -> Result<Vec<crate::AccountId>> {
    let mut stmt = conn.prepare_cached(
        "SELECT account FROM alert_notes_owed WHERE alert_id = ?1 ORDER BY account",
    )?;
    let rows = stmt.query_map([&id.0[..]], |r| r.get::<_, Vec<u8>>(0))?;
    rows.map(|r| crate::AccountId::from_bytes(&r?).map_err(stored))
        .collect()
}

/// Drops the notes owed for an alert: sent.
pub(crate) fn notes_sent(conn: &Connection, id: &AlertId) -> Result<()> {
    conn.prepare_cached("DELETE FROM alert_notes_owed WHERE alert_id = ?1")?
        .execute([&id.0[..]])?;
    Ok(())
}

/// A recipient says the alert reached it first by another path: it no longer
/// counts here. Says whether that changed anything.
pub(crate) fn reached_before(
    conn: &Connection,
    id: &AlertId,
    account: &crate::AccountId,
) -> Result<bool> {
    let n = conn
        .prepare_cached(
            "UPDATE alert_recipients SET reached_before = 1
             WHERE alert_id = ?1 AND account = ?2 AND reached_before = 0",
        )?
        .execute(params![&id.0[..], &account.as_bytes()[..]])?;
    Ok(n > 0)
}
