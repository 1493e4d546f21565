//! Raising, forwarding, answering and re-notifying alerts on an [`Account`].
//!
//! Raising signs the alert with this device's identity key; every delivery
//! after that, on every path, carries those signed bytes unchanged. A delivery
//! into a committee (or council) is one content per member over the 1:1
//! sessions, all committed in one transaction and marked high priority.
//! The cascade from a device: starting at the committee an alert came through,
//! it walks every link of the councils this device holds, and along each link
//! where it is a delegate the alert goes on into the other side — up into the council, or down into the
//! committee (or, on a hold-for-approval link, only to that committee's
//! organizers, held). Every phone keeps each alert once, so the paths that
//! reach it twice cost a duplicate envelope, never a second alert.

use std::collections::{BTreeMap, BTreeSet};

use super::pending;
use super::rollcall::{self, ROLLCALL_DEBOUNCE_MS};
use super::signed::SignedAlert;
use super::store::{self, Alert, AlertStatus};
use super::types::{AlertAnswer, AlertDraft, AlertId, AlertMessage, AlertScope};
use crate::account::Account;
use crate::account_id::AccountId;
use crate::committee::{CommitteeId, LinkPolicy, Role};
use crate::error::{Error, Result};
use crate::message::Body;
use crate::send::OutgoingEnvelope;

/// What raising or forwarding an alert sent.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct AlertSent {
    /// The envelopes, already in the outbox.
    pub sent: Vec<OutgoingEnvelope>,
    /// Members it could not go to yet (no session).
    pub unreachable: Vec<AccountId>,
}

/// Records alert deliveries in the send log, to go again to a member who
/// cannot read theirs.
fn log_deliveries(
    tx: &crate::store::WriteTransaction<'_>,
    sent: &[OutgoingEnvelope],
    alert_id: AlertId,
    now: i64,
) -> Result<()> {
    sent.iter().try_for_each(|e| {
        let what = crate::repair::Logged::Alert(alert_id);
        crate::repair::log_sent(tx, e.handle, e.recipient.as_bytes(), what, now)
    })
}

/// The members a delivery's envelopes went to.
fn recipients(sent: &[OutgoingEnvelope]) -> Vec<AccountId> {
    sent.iter().map(|e| e.recipient).collect()
}

impl AlertSent {
    fn absorb(&mut self, (sent, unreachable): (Vec<OutgoingEnvelope>, Vec<AccountId>)) {
        self.sent.extend(sent);
        self.unreachable.extend(unreachable);
    }
}

impl Account {
    /// Raises an alert in a committee or council where this account is an
    /// organizer or delegate, signed with this device's identity key: to every
    /// other member at once, and with [`AlertScope::Network`] on along the
    /// links this device is a delegate of.
    pub fn send_alert(
        &mut self,
        target: &CommitteeId,
        draft: AlertDraft,
    ) -> Result<(AlertId, AlertSent)> {
        draft.check()?;
        let me = self.id();
        let role = self
            .logs
            .get(self.store.conn(), target)?
            .state()
            .role(&me)
            .ok_or(Error::NotACommitteeMember(*target))?;
        if role < Role::Delegate {
            return Err(Error::MayNotAlert(*target));
        }
        let signed = SignedAlert::raise(&self.me.key_pair, *target, draft, self.clock.now_u64())?;
        let message = AlertMessage {
            alert: signed,
            via: *target,
            held: false,
            renotify: false,
        };
        let id = message.alert_id();
        store::insert(
            self.store.conn(),
            &message,
            None,
            self.clock.now_ms(),
            false,
        )?;
        let mut sent = AlertSent::default();
        sent.absorb(self.deliver_into(&message, target, false)?);
        if message.draft().scope == AlertScope::Network {
            let more = self.cascade(&id)?;
            sent.sent.extend(more.sent);
            sent.unreachable.extend(more.unreachable);
        } else {
            store::mark_forwarded(self.store.conn(), &id)?;
        }
        Ok((id, sent))
    }

    /// Sends one delivery of `alert` into `committee`: to every member but
    /// us, or to its organizers only when `held`. When the alert wants
    /// answers and came from another device, the counts this device sends
    /// back become due.
    fn deliver_into(
        &mut self,
        alert: &AlertMessage,
        committee: &CommitteeId,
        held: bool,
    ) -> Result<(Vec<OutgoingEnvelope>, Vec<AccountId>)> {
        let me = self.id();
        let state = self.logs.get(self.store.conn(), committee)?.state().clone();
        let to: Vec<AccountId> = state
            .members
            .iter()
            .filter(|(id, m)| **id != me && (!held || m.role == Role::Organizer))
            .map(|(id, _)| *id)
            .collect();
        if to.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let message = AlertMessage {
            via: *committee,
            held,
            renotify: false,
            ..alert.clone()
        };
        let id = alert.alert_id();
        let counts_due = alert
            .draft()
            .answers_wanted
            .then(|| self.clock.now_ms() + ROLLCALL_DEBOUNCE_MS);
        let mut due = false;
        // Whom it went to, and whom it is owed to, commit with the envelopes.
        let now = self.clock.now_ms();
        let sent =
            self.send_to_many(&to, &Body::Alert(message), true, |tx, sent, unreachable| {
                store::add_recipients(tx, &id, committee, &recipients(sent))?;
                log_deliveries(tx, sent, id, now)?;
                pending::owe(tx, &id, committee, held, unreachable)?;
                if let (Some(at), false) = (counts_due, sent.is_empty()) {
                    due = rollcall::due(tx, &id, at, true)?;
                }
                Ok(())
            })?;
        // The client's upkeep sends the counts once due.
        self.expiry_changed |= due;
        Ok(sent)
    }

    /// Sends the alerts this device owes members it had no session with when
    /// it delivered them (see [`AlertStatus::not_reached`]), to those it now
    /// has a session with. Drops what has expired, and members who have left
    /// the committee (or, for a held delivery, are no longer organizers).
    /// Called after sessions are opened.
    #[cfg_attr(feature = "testing", rankfile_testing_pub::public)]
    pub(crate) fn send_owed_alerts(&mut self) -> Result<AlertSent> {
        let mut sent = AlertSent::default();
        if !pending::any_owed(self.store.conn())? {
            return Ok(sent);
        }
        let now = self.clock.now_ms();
        let mut deliveries: BTreeMap<(AlertId, CommitteeId, bool), Vec<AccountId>> =
            BTreeMap::new();
        for owed in pending::owed(self.store.conn())? {
            deliveries
                .entry((owed.alert_id, owed.committee, owed.held))
                .or_default()
                .push(owed.account);
        }
        // Deliveries no longer wanted go in one transaction.
        let mut dropped = Vec::new();
        let mut wanted = Vec::new();
        for ((alert_id, committee, held), accounts) in deliveries {
            let alert = store::get(self.store.conn(), &alert_id)?.filter(|a| !a.is_expired(now));
            let state = match self.logs.get(self.store.conn(), &committee) {
                Ok(log) => Some(log.state().clone()),
                Err(Error::UnknownCommittee(_)) => None,
                Err(e) => return Err(e),
            };
            let mut to = Vec::new();
            for account in accounts {
                let still = alert.is_some()
                    && state.as_ref().is_some_and(|s| {
                        s.members
                            .get(&account)
                            .is_some_and(|m| !held || m.role == Role::Organizer)
                    });
                if still {
                    to.push(account);
                } else {
                    dropped.push((alert_id, account));
                }
            }
            if let (Some(alert), false) = (alert, to.is_empty()) {
                wanted.push((alert, committee, held, to));
            }
        }
        if !dropped.is_empty() {
            let tx = self.store.write()?;
            for (alert_id, account) in &dropped {
                pending::settle(&tx, alert_id, account)?;
            }
            tx.commit()?;
        }
        for (alert, committee, held, to) in wanted {
            let message = AlertMessage {
                alert: store::signed(self.store.conn(), &alert.alert_id)?,
                via: committee,
                held,
                renotify: false,
            };
            // Sent, recorded and no longer owed in one transaction.
            sent.absorb(self.send_to_many(
                &to,
                &Body::Alert(message),
                true,
                |tx, envelopes, _| {
                    let delivered = recipients(envelopes);
                    store::add_recipients(tx, &alert.alert_id, &committee, &delivered)?;
                    log_deliveries(tx, envelopes, alert.alert_id, now)?;
                    delivered
                        .iter()
                        .try_for_each(|a| pending::settle(tx, &alert.alert_id, a))
                },
            )?);
        }
        Ok(sent)
    }

    /// Sends a network alert on from this device along every link it is a
    /// delegate of, starting where the alert came in; then marks it forwarded.
    pub(crate) fn cascade(&mut self, alert_id: &AlertId) -> Result<AlertSent> {
        let me = self.id();
        let alert =
            store::get(self.store.conn(), alert_id)?.ok_or(Error::UnknownAlert(*alert_id))?;
        let message = AlertMessage {
            alert: store::signed(self.store.conn(), alert_id)?,
            via: alert.via,
            held: false,
            renotify: false,
        };
        // Every link of every council this device is in: (council,
        // committee, policy, whether we are one of its delegates). We carry
        // the alert only along our own links; the others only say where it
        // goes without us: an alert that reached us through a committee whose
        // delegate is someone else still reaches the council by them, and
        // from there we carry it down our own links (the first delivery
        // decides `via`, and the council's may come second).
        let mut edges = Vec::new();
        for council in self.committees()? {
            let state = self.logs.get(self.store.conn(), &council)?.state().clone();
            if state.role(&me).is_none() {
                continue;
            }
            for (committee, link) in &state.links {
                let ours = link.delegates.contains(&me);
                edges.push((council, *committee, link.policy, ours));
            }
        }
        let mut reached = BTreeSet::from([alert.via]);
        let mut queue = vec![alert.via];
        let mut sent = AlertSent::default();
        while let Some(node) = queue.pop() {
            for (council, committee, policy, ours) in &edges {
                // Up: from the committee into its council (by us, or by its
                // own delegates).
                if node == *committee && reached.insert(*council) {
                    if *ours {
                        sent.absorb(self.deliver_into(&message, council, false)?);
                    }
                    queue.push(*council);
                }
                // Down: from the council into the committee, if we are its
                // delegate and in it.
                if *ours && node == *council && !reached.contains(committee) {
                    let Ok(log) = self.logs.get(self.store.conn(), committee) else {
                        continue;
                    };
                    let Some(role) = log.state().role(&me) else {
                        continue;
                    };
                    reached.insert(*committee);
                    if *policy == LinkPolicy::Hold && role != Role::Organizer {
                        sent.absorb(self.deliver_into(&message, committee, true)?);
                    } else if *policy == LinkPolicy::Hold {
                        // We are the organizer whose approval it waits for.
                        if pending::hold(
                            self.store.conn(),
                            alert_id,
                            committee,
                            self.clock.now_ms(),
                        )? {
                            self.events.push(crate::event::Event::AlertHeld {
                                alert_id: *alert_id,
                                committee_id: *committee,
                            });
                        }
                    } else {
                        sent.absorb(self.deliver_into(&message, committee, false)?);
                        queue.push(*committee);
                    }
                }
            }
        }
        store::mark_forwarded(self.store.conn(), alert_id)?;
        Ok(sent)
    }

    /// Sends the cascades this device owes (alerts taken in before it
    /// stopped, not yet forwarded). Called after receive batches and on connect.
    #[cfg_attr(feature = "testing", rankfile_testing_pub::public)]
    pub(crate) fn forward_alerts(&mut self) -> Result<AlertSent> {
        let mut sent = AlertSent::default();
        for id in store::unforwarded(self.store.conn())? {
            let more = self.cascade(&id)?;
            sent.sent.extend(more.sent);
            sent.unreachable.extend(more.unreachable);
        }
        Ok(sent)
    }

    /// An organizer lets a held alert into its committee: to every member, and
    /// on along this device's links when it is a network alert.
    pub fn approve_alert(
        &mut self,
        alert_id: &AlertId,
        committee: &CommitteeId,
    ) -> Result<AlertSent> {
        let me = self.id();
        let role = self
            .logs
            .get(self.store.conn(), committee)?
            .state()
            .role(&me);
        if role != Some(Role::Organizer) {
            return Err(Error::MayNotAlert(*committee));
        }
        let signed = store::signed(self.store.conn(), alert_id)?;
        if !pending::release(self.store.conn(), alert_id, committee)? {
            return Err(Error::UnknownAlert(*alert_id));
        }
        let message = AlertMessage {
            alert: signed,
            via: *committee,
            held: false,
            renotify: false,
        };
        let mut sent = AlertSent::default();
        sent.absorb(self.deliver_into(&message, committee, false)?);
        Ok(sent)
    }

    /// Answers an alert: recorded here and sent to the member who delivered it.
    pub fn answer_alert(
        &mut self,
        alert_id: &AlertId,
        answer: AlertAnswer,
    ) -> Result<Option<OutgoingEnvelope>> {
        let alert =
            store::get(self.store.conn(), alert_id)?.ok_or(Error::UnknownAlert(*alert_id))?;
        let now = self.clock.now_ms();
        if alert.is_expired(now) {
            return Err(Error::AlertExpired(*alert_id));
        }
        if !alert.answers_wanted {
            return Err(Error::InvalidContent("this alert asks for no answers"));
        }
        store::set_my_answer(self.store.conn(), alert_id, answer, now)?;
        let Some(to) = alert.from else {
            return Ok(None);
        };
        let body = Body::AlertAnswer {
            alert_id: *alert_id,
            answer,
            answered_at_ms: u64::try_from(now).unwrap_or(0),
        };
        // Logged with the send, to go again if the answer cannot be read.
        let (mut sent, _) = self.send_to_many(&[to], &body, false, |tx, sent, _| {
            sent.iter().try_for_each(|e| {
                let what = crate::repair::Logged::Answer(*alert_id);
                crate::repair::log_sent(tx, e.handle, e.recipient.as_bytes(), what, now)
            })
        })?;
        sent.pop().map(Some).ok_or(Error::NoSession(to))
    }

    /// Sends the alert again, high priority, to those it went to from this
    /// device who have not answered (each through the committee it first went
    /// to them through); refused once it has expired.
    pub fn renotify_alert(&mut self, alert_id: &AlertId) -> Result<AlertSent> {
        let alert =
            store::get(self.store.conn(), alert_id)?.ok_or(Error::UnknownAlert(*alert_id))?;
        if alert.is_expired(self.clock.now_ms()) {
            return Err(Error::AlertExpired(*alert_id));
        }
        let waiting = store::waiting_by_committee(self.store.conn(), alert_id)?;
        let mut sent = AlertSent::default();
        if waiting.is_empty() {
            return Ok(sent);
        }
        let signed = store::signed(self.store.conn(), alert_id)?;
        for (committee, to) in waiting {
            let message = AlertMessage {
                alert: signed.clone(),
                via: committee,
                held: false,
                renotify: true,
            };
            sent.absorb(self.send_to_many(&to, &Body::Alert(message), true, |_, _, _| Ok(()))?);
        }
        Ok(sent)
    }

    /// Every alert on this device, newest first.
    pub fn alerts(&self) -> Result<Vec<Alert>> {
        store::list(self.store.conn())
    }

    /// One alert.
    pub fn alert(&self, alert_id: &AlertId) -> Result<Alert> {
        store::get(self.store.conn(), alert_id)?.ok_or(Error::UnknownAlert(*alert_id))
    }

    /// The answers to an alert this device raised or forwarded: its own
    /// recipients', and per committee those from every committee it reached,
    /// counted back along the cascade.
    pub fn alert_status(&self, alert_id: &AlertId) -> Result<AlertStatus> {
        store::status(self.store.conn(), alert_id)
    }

    /// Alerts held here for this organizer's approval, with their committee.
    pub fn held_alerts(&self) -> Result<Vec<(AlertId, CommitteeId)>> {
        pending::holds(self.store.conn())
    }

    /// When roll-call work (counts or notes sent back along the cascade) is
    /// next due, ms since the epoch by the account's clock.
    #[cfg(any(test, feature = "testing"))]
    pub fn next_alert_rollcall(&self) -> Result<Option<i64>> {
        rollcall::next_due(self.store.conn())
    }
}
