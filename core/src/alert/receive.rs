//! Alerts and answers inside the receive transaction: checked before anything
//! of the envelope is written, written with it. The cascade onwards is sent
//! after the commit ([`crate::Account::forward_alerts`]).

use rusqlite::Connection;

use super::store;
use super::types::{AlertAnswer, AlertId, AlertMessage, AlertScope};
use crate::account_id::AccountId;
use crate::committee::Role;
use crate::committee_store::{self, BatchLogs};
use crate::error::{Error, Result};
use crate::event::Event;

/// Checks an alert delivery: we and the sender are members of the committee
/// it came through, and the sender may alert there (an organizer or delegate).
pub(crate) fn check(
    conn: &Connection,
    logs: &mut BatchLogs<'_>,
    me: &AccountId,
    sender: &AccountId,
    alert: &AlertMessage,
) -> Result<()> {
    let log = logs
        .get(conn, &alert.via)?
        .ok_or(Error::UnknownCommittee(alert.via))?;
    let state = log.state();
    if state.role(me).is_none() {
        return Err(Error::NotACommitteeMember(alert.via));
    }
    match state.role(sender) {
        Some(role) if role >= Role::Delegate => Ok(()),
        _ => Err(Error::AlertSenderRefused(*sender)),
    }
}

/// Writes a checked alert delivery: a new alert is stored (and held, or
/// queued for the cascade); a known one only raises a reminder when it is one
/// and we have not answered. Says whether the cascade has work: a network
/// alert taken in whole by a device that is a delegate of some link. On any
/// other device it is stored as forwarded, so the commit after it has nothing
/// to do.
pub(crate) fn apply(
    conn: &Connection,
    logs: &mut BatchLogs<'_>,
    (me, sender): (&AccountId, &AccountId),
    alert: &AlertMessage,
    events: &mut Vec<Event>,
) -> Result<bool> {
    let now_ms = logs.now_ms;
    // Only an alert that comes in whole goes on (a held one goes on from the
    // organizer who approves it), and only from a link's delegate. Decided
    // before the row is written, so a row with no cascade to wait for is
    // stored as forwarded.
    let onward =
        !alert.held && alert.draft.scope == AlertScope::Network && is_delegate(conn, logs, me)?;
    let new = store::insert(conn, alert, Some(sender), now_ms, !onward)?;
    // A held delivery waits for us (an organizer of `via`) even when the
    // alert reached us another way first: the committee still lacks it.
    if alert.held && store::hold(conn, &alert.alert_id, &alert.via, now_ms)? {
        events.push(Event::AlertHeld {
            alert_id: alert.alert_id,
            committee_id: alert.via,
        });
    }
    if !new {
        let known = store::get(conn, &alert.alert_id)?;
        if alert.renotify && known.is_some_and(|a| a.my_answer.is_none()) {
            events.push(Event::AlertRenotified {
                alert_id: alert.alert_id,
            });
        }
        return Ok(false);
    }
    events.push(Event::AlertReceived {
        alert_id: alert.alert_id,
        via: alert.via,
    });
    Ok(onward)
}

/// Whether this device is a delegate of any link of a council it belongs to:
/// only such a device carries a network alert on.
fn is_delegate(conn: &Connection, logs: &mut BatchLogs<'_>, me: &AccountId) -> Result<bool> {
    for id in committee_store::list(conn)? {
        if let Some(log) = logs.get(conn, &id)? {
            if log.state().links.values().any(|l| l.delegates.contains(me)) {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// Checks an answer comes from someone this device delivered the alert to.
pub(crate) fn check_answer(
    conn: &Connection,
    sender: &AccountId,
    alert_id: &AlertId,
) -> Result<()> {
    if store::is_recipient(conn, alert_id, sender)? {
        Ok(())
    } else {
        Err(Error::InvalidContent(
            "an answer to an alert we did not send them",
        ))
    }
}

/// Takes in a checked answer.
pub(crate) fn answer(
    conn: &Connection,
    sender: &AccountId,
    alert_id: &AlertId,
    answer: AlertAnswer,
    answered_at_ms: u64,
    events: &mut Vec<Event>,
) -> Result<()> {
    if store::record_answer(conn, alert_id, sender, answer, answered_at_ms)? {
        events.push(Event::AlertAnswered {
            alert_id: *alert_id,
            from: *sender,
            answer,
        });
    }
    Ok(())
}
