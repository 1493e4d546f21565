//! Alerts in the encrypted store: each alert once (with the bytes its raiser
//! signed), whom this device delivered it to, through which committee, and
//! their latest answers, and alerts held for approval.

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::rollcall::CommitteeAnswers;
use super::signed::SignedAlert;
use super::types::{AlertAnswer, AlertId, AlertKind, AlertMessage, AlertScope};
use crate::account_id::AccountId;
use crate::committee::CommitteeId;
use crate::error::{Error, Result};

/// An alert as the app shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Alert {
    pub alert_id: AlertId,
    /// The committee or council it came through (or was raised in).
    pub via: CommitteeId,
    /// Who delivered it first; `None` when raised on this device.
    pub from: Option<AccountId>,
    /// The committee or council it was raised in.
    pub origin: CommitteeId,
    /// Who raised it (their signature checked on this phone).
    pub raiser: AccountId,
    /// The raiser's clock when raising it, ms since the epoch.
    pub raised_at_ms: u64,
    pub kind: AlertKind,
    pub scope: AlertScope,
    pub title: String,
    pub text: String,
    pub place: String,
    pub starts_at_ms: u64,
    pub expires_at_ms: u64,
    pub answers_wanted: bool,
    pub received_at_ms: i64,
    /// This device's own answer, once given.
    pub my_answer: Option<AlertAnswer>,
}

impl Alert {
    /// Whether it has expired at `now_ms` (and stopped asking for answers).
    pub fn is_expired(&self, now_ms: i64) -> bool {
        u64::try_from(now_ms).unwrap_or(0) >= self.expires_at_ms
    }
}

/// Who answered an alert this device delivered, and how; and the answers
/// from every committee it reached further on, gathered back along the links.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AlertStatus {
    pub alert_id: AlertId,
    /// How many of this device's recipients gave each answer (their latest).
    pub counts: BTreeMap<AlertAnswer, usize>,
    /// This device's recipients who have not answered yet.
    pub waiting: Vec<AccountId>,
    /// Everyone this device delivered it to and counts: not those it reached
    /// second, who said it reached them by another path first (they are
    /// counted there).
    pub recipients: usize,
    /// Members it could not reach yet (no session with them); it goes to them
    /// once one is opened.
    pub not_reached: Vec<AccountId>,
    /// Answers per committee or council: this device's own recipients and the
    /// counts sent back by the devices that passed the alert on from here.
    /// Numbers only; each member counts once, in the committee it was first
    /// reached through.
    pub committees: Vec<CommitteeAnswers>,
}

const COLUMNS: &str = "alert_id, via, sender, kind, scope, title, body, place, starts_at, \
                       expires_at, answers_wanted, received_at, my_answer, origin, raiser, \
                       raised_at";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Raw> {
    Ok(Raw {
        alert_id: r.get(0)?,
        via: r.get(1)?,
        sender: r.get(2)?,
        kind: r.get(3)?,
        scope: r.get(4)?,
        title: r.get(5)?,
        text: r.get(6)?,
        place: r.get(7)?,
        starts_at: r.get(8)?,
        expires_at: r.get(9)?,
        answers_wanted: r.get(10)?,
        received_at: r.get(11)?,
        my_answer: r.get(12)?,
        origin: r.get(13)?,
        raiser: r.get(14)?,
        raised_at: r.get(15)?,
    })
}

struct Raw {
    alert_id: Vec<u8>,
    via: Vec<u8>,
    sender: Option<Vec<u8>>,
    kind: i32,
    scope: i32,
    title: String,
    text: String,
    place: String,
    starts_at: i64,
    expires_at: i64,
    answers_wanted: bool,
    received_at: i64,
    my_answer: Option<i32>,
    origin: Vec<u8>,
    raiser: Vec<u8>,
    raised_at: i64,
}

pub(crate) fn stored(e: Error) -> Error {
    match e {
        Error::Storage(_) | Error::Io(_) => e,
        _ => Error::Storage("a stored alert is malformed".into()),
    }
}

impl Raw {
    fn decode(self) -> Result<Alert> {
        Ok(Alert {
            alert_id: AlertId::from_bytes(&self.alert_id).map_err(stored)?,
            via: CommitteeId::from_bytes(&self.via).map_err(stored)?,
            from: self
                .sender
                .map(|s| AccountId::from_bytes(&s))
                .transpose()
                .map_err(stored)?,
            origin: CommitteeId::from_bytes(&self.origin).map_err(stored)?,
            raiser: AccountId::from_bytes(&self.raiser).map_err(stored)?,
            raised_at_ms: u64::try_from(self.raised_at).unwrap_or(0),
            kind: AlertKind::from_wire(self.kind).map_err(stored)?,
            scope: AlertScope::from_wire(self.scope).map_err(stored)?,
            title: self.title,
            text: self.text,
            place: self.place,
            starts_at_ms: u64::try_from(self.starts_at).unwrap_or(0),
            expires_at_ms: u64::try_from(self.expires_at).unwrap_or(0),
            answers_wanted: self.answers_wanted,
            received_at_ms: self.received_at,
            my_answer: self
                .my_answer
                .map(AlertAnswer::from_wire)
                .transpose()
                .map_err(stored)?,
        })
    }
}

fn ms(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Records an alert the first time it arrives (or is raised); says whether it
/// was new. `forwarded` marks one this device has no cascade to send for: such
/// a row never enters the index of alerts waiting for their cascade, so storing
/// it writes that index's page neither in nor out.
pub(crate) const INSERT_SQL: &str =
    "INSERT OR IGNORE INTO alerts (alert_id, via, sender, kind, scope, title, body, place,
         starts_at, expires_at, answers_wanted, received_at, forwarded, origin, raiser,
         raised_at, raised, signature)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)";

pub(crate) fn insert(
    conn: &Connection,
    m: &AlertMessage,
    sender: Option<&AccountId>,
    now_ms: i64,
    forwarded: bool,
) -> Result<bool> {
    let a = &m.alert;
    let d = &a.raised.draft;
    let n = conn.prepare_cached(INSERT_SQL)?.execute(params![
        &a.id.0[..],
        &m.via.0[..],
        sender.map(|s| s.as_bytes().to_vec()),
        d.kind.to_wire(),
        d.scope.to_wire(),
        d.title,
        d.text,
        d.place,
        ms(d.starts_at_ms),
        ms(d.expires_at_ms),
        d.answers_wanted,
        now_ms,
        forwarded,
        &a.raised.origin.0[..],
        &a.raised.raiser.as_bytes()[..],
        ms(a.raised.raised_at_ms),
        a.bytes,
        a.signature,
    ])?;
    Ok(n > 0)
}

/// The signed bytes of an alert, if this device has it: a repeat delivery
/// with the same bytes is the same alert, checked before.
pub(crate) const RAISED_SQL: &str = "SELECT raised FROM alerts WHERE alert_id = ?1";

pub(crate) fn raised(conn: &Connection, id: &AlertId) -> Result<Option<Vec<u8>>> {
    Ok(conn
        .prepare_cached(RAISED_SQL)?
        .query_row([&id.0[..]], |r| r.get(0))
        .optional()?)
}

/// The alert as its raiser signed it, to pass on unchanged.
pub(crate) fn signed(conn: &Connection, id: &AlertId) -> Result<SignedAlert> {
    let (bytes, signature): (Vec<u8>, Vec<u8>) = conn
        .prepare_cached("SELECT raised, signature FROM alerts WHERE alert_id = ?1")?
        .query_row([&id.0[..]], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .ok_or(Error::UnknownAlert(*id))?;
    SignedAlert::parse(bytes, signature).map_err(stored)
}

pub(crate) fn get_sql() -> String {
    format!("SELECT {COLUMNS} FROM alerts WHERE alert_id = ?1")
}

/// One alert, if this device has it.
pub(crate) fn get(conn: &Connection, id: &AlertId) -> Result<Option<Alert>> {
    conn.prepare_cached(&get_sql())?
        .query_row([&id.0[..]], from_row)
        .optional()?
        .map(Raw::decode)
        .transpose()
}

/// Every alert, newest first.
pub(crate) fn list(conn: &Connection) -> Result<Vec<Alert>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM alerts ORDER BY received_at DESC, alert_id"
    ))?;
    let rows = stmt.query_map([], from_row)?;
    rows.map(|r| r?.decode()).collect()
}

/// Records this device's own answer.
pub(crate) fn set_my_answer(
    conn: &Connection,
    id: &AlertId,
    answer: AlertAnswer,
    at_ms: i64,
) -> Result<()> {
    conn.prepare_cached(
        "UPDATE alerts SET my_answer = ?2, my_answered_at = ?3 WHERE alert_id = ?1",
    )?
    .execute(params![&id.0[..], answer.to_wire(), at_ms])?;
    Ok(())
}

/// Notes the recipients of a delivery into `committee` (repeats are ignored:
/// a recipient counts in the committee it was first delivered through).
pub(crate) fn add_recipients(
    conn: &Connection,
    id: &AlertId,
    committee: &CommitteeId,
    to: &[AccountId],
) -> Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT OR IGNORE INTO alert_recipients (alert_id, account, committee_id)
         VALUES (?1, ?2, ?3)",
    )?;
    for a in to {
        stmt.execute(params![&id.0[..], &a.as_bytes()[..], &committee.0[..]])?;
    }
    Ok(())
}

/// Whether this device delivered the alert to `account`.
pub(crate) fn is_recipient(conn: &Connection, id: &AlertId, account: &AccountId) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM alert_recipients WHERE alert_id = ?1 AND account = ?2)",
        )?
        .query_row(params![&id.0[..], &account.as_bytes()[..]], |r| r.get(0))?)
}

/// Takes in an answer from `from`: counted if this device delivered the alert
/// to them, and only if newer than their answer so far (answers may arrive
/// late, twice, or out of order). Says whether it changed anything.
pub(crate) fn record_answer(
    conn: &Connection,
    id: &AlertId,
    from: &AccountId,
    answer: AlertAnswer,
    answered_at_ms: u64,
) -> Result<bool> {
    let known: Option<Option<i64>> = conn
        .prepare_cached(
            "SELECT answered_at FROM alert_recipients WHERE alert_id = ?1 AND account = ?2",
        )?
        .query_row(params![&id.0[..], &from.as_bytes()[..]], |r| r.get(0))
        .optional()?;
    let Some(previous) = known else {
        return Err(Error::InvalidContent(
            "an answer to an alert we did not send them",
        ));
    };
    let at = ms(answered_at_ms);
    if previous.is_some_and(|p| p >= at) {
        return Ok(false);
    }
    conn.prepare_cached(
        "UPDATE alert_recipients SET answer = ?3, answered_at = ?4 WHERE alert_id = ?1 AND account = ?2",
    )?
    .execute(params![&id.0[..], &from.as_bytes()[..], answer.to_wire(), at])?;
    Ok(true)
}

/// The answers to an alert this device delivered, with those gathered from
/// further on.
pub(crate) fn status(conn: &Connection, id: &AlertId) -> Result<AlertStatus> {
    let mut stmt = conn.prepare_cached(
        "SELECT account, answer FROM alert_recipients
         WHERE alert_id = ?1 AND reached_before = 0 ORDER BY account",
    )?;
    let rows = stmt.query_map([&id.0[..]], |r| {
        Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Option<i32>>(1)?))
    })?;
    let mut status = AlertStatus {
        alert_id: *id,
        counts: AlertAnswer::ALL.iter().map(|a| (*a, 0)).collect(),
        waiting: Vec::new(),
        recipients: 0,
        not_reached: Vec::new(),
        committees: super::rollcall::committees(conn, id)?,
    };
    for row in rows {
        let (account, answer) = row?;
        let account = AccountId::from_bytes(&account).map_err(stored)?;
        status.recipients += 1;
        match answer {
            None => status.waiting.push(account),
            Some(a) => {
                *status
                    .counts
                    .entry(AlertAnswer::from_wire(a).map_err(stored)?)
                    .or_default() += 1;
            }
        }
    }
    let mut stmt =
        conn.prepare_cached("SELECT account FROM alert_owed WHERE alert_id = ?1 ORDER BY account")?;
    let owed = stmt.query_map([&id.0[..]], |r| r.get::<_, Vec<u8>>(0))?;
    for account in owed {
        status
            .not_reached
            .push(AccountId::from_bytes(&account?).map_err(stored)?);
    }
    Ok(status)
}

/// Recipients who have not answered, with the committee each was delivered
/// the alert through (a reminder goes the same way).
pub(crate) fn waiting_by_committee(
    conn: &Connection,
    id: &AlertId,
) -> Result<BTreeMap<CommitteeId, Vec<AccountId>>> {
    let mut stmt = conn.prepare_cached(
        "SELECT committee_id, account FROM alert_recipients
         WHERE alert_id = ?1 AND answer IS NULL AND reached_before = 0 ORDER BY account",
    )?;
    let rows = stmt.query_map([&id.0[..]], |r| {
        Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?))
    })?;
    let mut out: BTreeMap<CommitteeId, Vec<AccountId>> = BTreeMap::new();
    for row in rows {
        let (committee, account) = row?;
        out.entry(CommitteeId::from_bytes(&committee).map_err(stored)?)
            .or_default()
            .push(AccountId::from_bytes(&account).map_err(stored)?);
    }
    Ok(out)
}

/// Marks the cascade from this device as sent.
pub(crate) const MARK_FORWARDED_SQL: &str = "UPDATE alerts SET forwarded = 1 WHERE alert_id = ?1";

pub(crate) fn mark_forwarded(conn: &Connection, id: &AlertId) -> Result<()> {
    conn.prepare_cached(MARK_FORWARDED_SQL)?
        .execute([&id.0[..]])?;
    Ok(())
}

/// Reads the partial index of alerts not yet forwarded.
pub(crate) const UNFORWARDED_SQL: &str =
    "SELECT alert_id FROM alerts WHERE forwarded = 0 AND scope = ?1 ORDER BY received_at";

/// Network alerts whose cascade from this device has not been sent (the
/// device stopped between taking one in and forwarding it).
pub(crate) fn unforwarded(conn: &Connection) -> Result<Vec<AlertId>> {
    let mut stmt = conn.prepare_cached(UNFORWARDED_SQL)?;
    let rows = stmt.query_map([AlertScope::Network.to_wire()], |r| r.get::<_, Vec<u8>>(0))?;
    rows.map(|r| AlertId::from_bytes(&r?).map_err(stored))
        .collect()
}
