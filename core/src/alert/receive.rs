//! Alerts, answers and roll-call messages inside the receive transaction:
//! checked before anything of the envelope is written, written with it. The
//! cascade onwards is sent after the commit ([`crate::Account::forward_alerts`]),
//! counts and notes by the upkeep ([`crate::Account::alert_upkeep`]).
//!
//! An alert is checked twice over. The hop: we and the sender are members of
//! the committee the delivery names and the sender may carry alerts there, and
//! where this phone sees the links into it, the sender is a delegate of one of
//! them and kept its policy. The alert: the raiser's signature over the bytes,
//! and, when this phone holds the log of the committee it was raised in, that
//! the raiser is an organizer or delegate there. The second check runs once
//! per phone: a repeat delivery must carry the very bytes already stored.

use rusqlite::Connection;

use super::rollcall::{self, RollCall, ROLLCALL_DEBOUNCE_MS};
use super::store;
use super::types::{AlertAnswer, AlertId, AlertMessage, AlertScope};
use super::upkeep::ALERT_RETENTION_MS;
use crate::account_id::AccountId;
use crate::committee::{LinkPolicy, Role};
use crate::committee_store::{self, BatchLogs};
use crate::error::{Error, Result};
use crate::event::Event;

/// Checks an alert delivery; see the module's documentation.
pub(crate) fn check(
    conn: &Connection,
    logs: &mut BatchLogs<'_>,
    me: &AccountId,
    sender: &AccountId,
    alert: &AlertMessage,
) -> Result<()> {
    check_hop(conn, logs, me, sender, alert)?;
    let signed = &alert.alert;
    match store::raised(conn, &signed.id)? {
        Some(bytes) if bytes == signed.bytes => return Ok(()),
        Some(_) => return Err(Error::InvalidAlert("not the alert stored under its ID")),
        None => {}
    }
    let draft = &signed.raised.draft;
    // Refused once it could have been purged here: a purged alert never comes back.
    let expires = i64::try_from(draft.expires_at_ms).unwrap_or(i64::MAX);
    if expires.saturating_add(ALERT_RETENTION_MS) <= logs.now_ms {
        return Err(Error::AlertExpired(signed.id));
    }
    if !signed.verify() {
        return Err(Error::InvalidAlert("not signed by its raiser"));
    }
    let raised = &signed.raised;
    if let Some(origin) = logs.get(conn, &raised.origin)? {
        let state = origin.state();
        // Only a log we are in is one we keep up with.
        let may_alert = state
            .role(&raised.raiser)
            .is_some_and(|r| r >= Role::Delegate);
        if state.role(me).is_some() && !may_alert {
            return Err(Error::InvalidAlert(
                "its raiser may not raise alerts in the committee it names",
            ));
        }
    }
    Ok(())
}

/// The delivering hop: see the module's documentation.
fn check_hop(
    conn: &Connection,
    logs: &mut BatchLogs<'_>,
    me: &AccountId,
    sender: &AccountId,
    alert: &AlertMessage,
) -> Result<()> {
    let via = alert.via;
    let log = logs.get(conn, &via)?.ok_or(Error::UnknownCommittee(via))?;
    let state = log.state();
    if state.role(me).is_none() {
        return Err(Error::NotACommitteeMember(via));
    }
    let role = match state.role(sender) {
        Some(role) if role >= Role::Delegate => role,
        _ => return Err(Error::AlertSenderRefused(*sender)),
    };
    let raised = &alert.alert.raised;
    // The raiser's own delivery, and an organizer's (who approves a held
    // alert), need no link.
    if (raised.raiser == *sender && raised.origin == via) || role == Role::Organizer {
        return Ok(());
    }
    // Up into a council: from a delegate of one of its links.
    let links_of_via = !state.links.is_empty();
    if state.links.values().any(|l| l.delegates.contains(sender)) {
        return Ok(());
    }
    // Down into a committee, as the councils this phone holds link it: from
    // a delegate of such a link, held for approval if the link says so.
    let mut seen = links_of_via;
    for council in committee_store::list(conn)? {
        if council == via {
            continue;
        }
        let Some(log) = logs.get(conn, &council)? else {
            continue;
        };
        let Some(link) = log.state().links.get(&via) else {
            continue;
        };
        seen = true;
        if link.delegates.contains(sender) && (link.policy == LinkPolicy::Forward || alert.held) {
            return Ok(());
        }
    }
    if seen {
        Err(Error::AlertSenderRefused(*sender))
    } else {
        // No link into it is visible here: its delegates carry alerts.
        Ok(())
    }
}

/// Writes a checked alert delivery: a new alert is stored (and held, or
/// queued for the cascade); a known one only raises a reminder when it is one
/// and we have not answered, and tells a second device that delivered it that
/// we are counted elsewhere. Says whether the cascade has work: a network
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
    let id = alert.alert_id();
    let draft = alert.draft();
    // Only an alert that comes in whole goes on (a held one goes on from the
    // organizer who approves it), and only from a link's delegate. Decided
    // before the row is written, so a row with no cascade to wait for is
    // stored as forwarded.
    let onward = !alert.held && draft.scope == AlertScope::Network && is_delegate(conn, logs, me)?;
    let new = store::insert(conn, alert, Some(sender), now_ms, !onward)?;
    // A held delivery waits for us (an organizer of `via`) even when the
    // alert reached us another way first: the committee still lacks it.
    if alert.held && super::pending::hold(conn, &id, &alert.via, now_ms)? {
        events.push(Event::AlertHeld {
            alert_id: id,
            committee_id: alert.via,
        });
    }
    if !new {
        let Some(known) = store::get(conn, &id)? else {
            return Ok(false);
        };
        if alert.renotify && known.my_answer.is_none() {
            events.push(Event::AlertRenotified { alert_id: id });
        }
        // Another device's delivery, after the first: we answer and count
        // there, not here.
        if known.answers_wanted && known.from != Some(*sender) {
            rollcall::owe_note(conn, &id, sender)?;
            logs.stores_expiring |= rollcall::due(conn, &id, now_ms + ROLLCALL_DEBOUNCE_MS, false)?;
        }
        return Ok(false);
    }
    events.push(Event::AlertReceived {
        alert_id: id,
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

/// Checks an answer, or a roll-call message, comes from someone this device
/// delivered the alert to.
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

/// Takes in a checked answer; the counts sent back become due.
pub(crate) fn answer(
    conn: &Connection,
    logs: &mut BatchLogs<'_>,
    sender: &AccountId,
    (alert_id, answer, answered_at_ms): (&AlertId, AlertAnswer, u64),
    events: &mut Vec<Event>,
) -> Result<()> {
    if store::record_answer(conn, alert_id, sender, answer, answered_at_ms)? {
        events.push(Event::AlertAnswered {
            alert_id: *alert_id,
            from: *sender,
            answer,
        });
        logs.stores_expiring |=
            rollcall::due(conn, alert_id, logs.now_ms + ROLLCALL_DEBOUNCE_MS, true)?;
    }
    Ok(())
}

/// Takes in a checked roll-call message: counts from further down (the
/// newest of each kept), or a note that the sender is counted elsewhere.
/// Either may change what this device sends back in turn.
pub(crate) fn roll_call(
    conn: &Connection,
    logs: &mut BatchLogs<'_>,
    sender: &AccountId,
    message: &RollCall,
    events: &mut Vec<Event>,
) -> Result<()> {
    let id = message.alert_id();
    let changed = match message {
        RollCall::Counts(c) => rollcall::merge(conn, &id, &c.counts)?,
        RollCall::ReachedBefore(_) => rollcall::reached_before(conn, &id, sender)?,
    };
    if changed {
        events.push(Event::AlertCountsChanged { alert_id: id });
        logs.stores_expiring |= rollcall::due(conn, &id, logs.now_ms + ROLLCALL_DEBOUNCE_MS, true)?;
    }
    Ok(())
}
