//! Deliveries of alerts this device still owes: to members it had no session
//! with when it delivered an alert into their committee (sent once a session
//! opens), and alerts held here for this organizer's approval before they
//! enter a committee.

use rusqlite::{params, Connection};

use super::store::stored;
use super::types::AlertId;
use crate::account_id::AccountId;
use crate::committee::CommitteeId;
use crate::error::Result;

/// A delivery of an alert still owed to one member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Owed {
    pub alert_id: AlertId,
    pub account: AccountId,
    pub committee: CommitteeId,
    /// Owed as a held delivery (to an organizer, for approval).
    pub held: bool,
}

/// Notes members a delivery into `committee` could not reach yet.
pub(crate) fn owe(
    conn: &Connection,
    id: &AlertId,
    committee: &CommitteeId,
    held: bool,
    to: &[AccountId],
) -> Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT OR IGNORE INTO alert_owed (alert_id, account, committee_id, held)
         VALUES (?1, ?2, ?3, ?4)",
    )?;
    for a in to {
        stmt.execute(params![
            &id.0[..],
            &a.as_bytes()[..],
            &committee.0[..],
            held
        ])?;
    }
    Ok(())
}

/// Every delivery still owed, oldest alert first.
pub(crate) fn owed(conn: &Connection) -> Result<Vec<Owed>> {
    let mut stmt = conn.prepare_cached(
        "SELECT o.alert_id, o.account, o.committee_id, o.held FROM alert_owed o
         LEFT JOIN alerts a ON a.alert_id = o.alert_id
         ORDER BY a.received_at, o.alert_id, o.account",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, Vec<u8>>(0)?,
            r.get::<_, Vec<u8>>(1)?,
            r.get::<_, Vec<u8>>(2)?,
            r.get::<_, bool>(3)?,
        ))
    })?;
    rows.map(|r| {
        let (alert, account, committee, held) = r?;
        Ok(Owed {
            alert_id: AlertId::from_bytes(&alert).map_err(stored)?,
            account: AccountId::from_bytes(&account).map_err(stored)?,
            committee: CommitteeId::from_bytes(&committee).map_err(stored)?,
            held,
        })
    })
    .collect()
}

/// Whether any delivery is still owed.
pub(crate) fn any_owed(conn: &Connection) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM alert_owed)")?
        .query_row([], |r| r.get(0))?)
}

/// Drops an owed delivery: sent, or no longer wanted.
pub(crate) fn settle(conn: &Connection, id: &AlertId, account: &AccountId) -> Result<()> {
    conn.prepare_cached("DELETE FROM alert_owed WHERE alert_id = ?1 AND account = ?2")?
        .execute(params![&id.0[..], &account.as_bytes()[..]])?;
    Ok(())
}

/// Holds an alert for an organizer of `committee` to approve; says whether
/// it was not held already.
pub(crate) fn hold(
    conn: &Connection,
    id: &AlertId,
    committee: &CommitteeId,
    now_ms: i64,
) -> Result<bool> {
    let n = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO alert_holds (alert_id, committee_id, held_at) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![&id.0[..], &committee.0[..], now_ms])?;
    Ok(n > 0)
}

/// Releases a hold; says whether there was one.
pub(crate) fn release(conn: &Connection, id: &AlertId, committee: &CommitteeId) -> Result<bool> {
    let n = conn
        .prepare_cached("DELETE FROM alert_holds WHERE alert_id = ?1 AND committee_id = ?2")?
        .execute(params![&id.0[..], &committee.0[..]])?;
    Ok(n > 0)
}

/// Alerts held here for approval, with the committee each waits to enter.
pub(crate) fn holds(conn: &Connection) -> Result<Vec<(AlertId, CommitteeId)>> {
    let mut stmt =
        conn.prepare_cached("SELECT alert_id, committee_id FROM alert_holds ORDER BY held_at")?;
    let rows = stmt.query_map([], |r| {
        Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?))
    })?;
    rows.map(|r| {
        let (a, c) = r?;
        Ok((
            AlertId::from_bytes(&a).map_err(stored)?,
            CommitteeId::from_bytes(&c).map_err(stored)?,
        ))
    })
    .collect()
}
