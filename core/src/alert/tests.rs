//! Alerts over real stores with the envelopes handed over by hand: answers
//! counted right however they arrive (late, twice, out of order), expiry,
//! reminders, and who may raise an alert.

use std::time::Duration;

use super::*;
use crate::account::Account;
use crate::clock::now_ms;
use crate::committee::{CommitteeId, CommitteeMeta, Role};
use crate::error::Error;
use crate::event::Event;
use crate::receive::Received;
use crate::send::OutgoingEnvelope;
use crate::store::DatabaseKey;

fn account(dir: &tempfile::TempDir, name: &str) -> Account {
    Account::create(
        &dir.path().join(format!("{name}.db")),
        &DatabaseKey::generate(),
    )
    .expect("account")
}

pub(crate) fn deliver(to: &mut Account, sent: &[OutgoingEnvelope]) -> Vec<Received> {
    let me = to.id();
    sent.iter()
        .filter(|e| e.recipient == me)
        .map(|e| to.receive(&e.bytes).expect("received"))
        .collect()
}

/// An organizer and two members of one committee, with sessions both ways.
pub(crate) fn committee(dir: &tempfile::TempDir) -> (Account, Account, Account, CommitteeId) {
    let mut organizer = account(dir, "o");
    let mut m1 = account(dir, "m1");
    let mut m2 = account(dir, "m2");
    for m in [&mut m1, &mut m2] {
        let bundle = m.prekey_bundle().expect("bundle");
        organizer.add_contact("", &bundle).expect("contact");
    }
    let id = organizer
        .create_committee(CommitteeMeta {
            name: "Bakery".into(),
            ..CommitteeMeta::default()
        })
        .expect("found");
    let mut sent = Vec::new();
    for m in [m1.id(), m2.id()] {
        sent.extend(
            organizer
                .add_member(&id, &m, Role::Member)
                .expect("add")
                .sent,
        );
    }
    deliver(&mut m1, &sent);
    deliver(&mut m2, &sent);
    (organizer, m1, m2, id)
}

fn draft(expires_at_ms: u64) -> AlertDraft {
    AlertDraft {
        kind: AlertKind::RapidResponse,
        scope: AlertScope::Local,
        title: "Raid at the gate".into(),
        text: "Come to the north gate.".into(),
        place: "North gate".into(),
        starts_at_ms: 0,
        expires_at_ms,
        answers_wanted: true,
    }
}

fn in_an_hour() -> u64 {
    u64::try_from(now_ms()).expect("clock") + 3_600_000
}

#[test]
fn answers_count_the_latest_whatever_the_order_of_arrival() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut organizer, mut m1, mut m2, committee) = committee(&dir);
    let (alert, sent) = organizer
        .send_alert(&committee, draft(in_an_hour()))
        .expect("alert");
    assert!(sent.unreachable.is_empty());
    assert!(sent.sent.iter().all(|e| e.high_priority));
    let status = organizer.alert_status(&alert).expect("status");
    assert_eq!((status.recipients, status.waiting.len()), (2, 2));

    deliver(&mut m1, &sent.sent);
    deliver(&mut m2, &sent.sent);
    // Delivered twice (a second path, or the relay again): shown once.
    assert_eq!(deliver(&mut m1, &sent.sent), vec![Received::Duplicate]);
    let shown = m1
        .drain_events()
        .into_iter()
        .filter(|e| matches!(e, Event::AlertReceived { alert_id, .. } if *alert_id == alert))
        .count();
    assert_eq!(shown, 1);
    assert_eq!(m1.alerts().expect("alerts").len(), 1);

    let first = m1
        .answer_alert(&alert, AlertAnswer::Coming)
        .expect("answer");
    std::thread::sleep(Duration::from_millis(3));
    let second = m1
        .answer_alert(&alert, AlertAnswer::CannotCome)
        .expect("answer");
    let third = m2.answer_alert(&alert, AlertAnswer::Safe).expect("answer");
    let [first, second, third] = [first, second, third].map(|e| e.expect("an envelope"));
    // Late, reordered and repeated: the latest answer of each counts.
    for e in [&second, &third, &first, &second, &first] {
        organizer.receive(&e.bytes).expect("answer arrives");
    }
    let status = organizer.alert_status(&alert).expect("status");
    assert_eq!(status.counts[&AlertAnswer::CannotCome], 1);
    assert_eq!(status.counts[&AlertAnswer::Safe], 1);
    assert_eq!(status.counts[&AlertAnswer::Coming], 0);
    assert!(status.waiting.is_empty());
    assert_eq!(
        m1.alert(&alert).expect("alert").my_answer,
        Some(AlertAnswer::CannotCome)
    );
}

#[test]
fn reminders_reach_only_those_who_have_not_answered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut organizer, mut m1, mut m2, committee) = committee(&dir);
    let (alert, sent) = organizer
        .send_alert(&committee, draft(in_an_hour()))
        .expect("alert");
    deliver(&mut m1, &sent.sent);
    deliver(&mut m2, &sent.sent);
    let answer = m1
        .answer_alert(&alert, AlertAnswer::Received)
        .expect("answer");
    organizer
        .receive(&answer.expect("envelope").bytes)
        .expect("answer arrives");
    let again = organizer.renotify_alert(&alert).expect("renotify");
    assert_eq!(again.sent.len(), 1);
    assert_eq!(again.sent[0].recipient, m2.id());
    m2.drain_events();
    deliver(&mut m2, &again.sent);
    assert!(m2
        .drain_events()
        .contains(&Event::AlertRenotified { alert_id: alert }));
    assert_eq!(m2.alerts().expect("alerts").len(), 1, "still one alert");
}

#[test]
fn an_expired_alert_takes_no_answers_and_members_may_not_raise_alerts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut organizer, mut m1, _m2, committee) = committee(&dir);
    let soon = u64::try_from(now_ms()).expect("clock") + 50;
    let (alert, sent) = organizer
        .send_alert(&committee, draft(soon))
        .expect("alert");
    deliver(&mut m1, &sent.sent);
    std::thread::sleep(Duration::from_millis(80));
    assert!(matches!(
        m1.answer_alert(&alert, AlertAnswer::Coming),
        Err(Error::AlertExpired(id)) if id == alert
    ));
    assert!(matches!(
        organizer.renotify_alert(&alert),
        Err(Error::AlertExpired(_))
    ));
    assert!(matches!(
        m1.send_alert(&committee, draft(in_an_hour())),
        Err(Error::MayNotAlert(c)) if c == committee
    ));
    let mut empty = draft(in_an_hour());
    empty.title = "  ".into();
    assert!(matches!(
        organizer.send_alert(&committee, empty),
        Err(Error::InvalidContent(_))
    ));
}

/// The committee of [`committee`], where m1, made an organizer, adds m3: the
/// first organizer learns of m3 from the log but has no session with them.
fn committee_with_a_stranger(dir: &tempfile::TempDir) -> (Account, Account, Account, CommitteeId) {
    let (mut organizer, mut m1, mut m2, id) = committee(dir);
    let promoted = organizer
        .change_role(&id, &m1.id(), Role::Organizer)
        .expect("promote");
    deliver(&mut m1, &promoted.sent);
    deliver(&mut m2, &promoted.sent);
    let mut m3 = account(dir, "m3");
    let bundle = m3.prekey_bundle().expect("bundle");
    m1.add_contact("", &bundle).expect("contact");
    let added = m1.add_member(&id, &m3.id(), Role::Member).expect("add");
    deliver(&mut organizer, &added.sent);
    deliver(&mut m3, &added.sent);
    let state = organizer.committee(&id).expect("committee");
    assert!(state.members.contains_key(&m3.id()));
    assert!(organizer.contact(&m3.id()).is_err(), "no session with m3");
    (organizer, m1, m3, id)
}

#[test]
fn an_alert_owed_to_a_member_without_a_session_goes_once_one_is_opened() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut organizer, _m1, mut m3, committee) = committee_with_a_stranger(&dir);
    let (alert, sent) = organizer
        .send_alert(&committee, draft(in_an_hour()))
        .expect("alert");
    assert_eq!(sent.unreachable, vec![m3.id()]);
    let status = organizer.alert_status(&alert).expect("status");
    assert_eq!(status.not_reached, vec![m3.id()]);
    assert_eq!(status.recipients, 2);
    // Nothing changes while there is still no session.
    assert!(organizer.send_owed_alerts().expect("owed").sent.is_empty());

    // m3 writes first: the session comes with their message, and the owed
    // alert is queued as soon as that batch is committed.
    let bundle = organizer.prekey_bundle().expect("bundle");
    m3.add_contact("", &bundle).expect("contact");
    let hello = m3.send_text(&organizer.id(), "here").expect("send");
    organizer.receive(&hello.bytes).expect("hello arrives");
    let queued: Vec<OutgoingEnvelope> = organizer
        .outbox()
        .expect("outbox")
        .into_iter()
        .filter(|e| e.recipient == m3.id() && e.high_priority)
        .collect();
    assert_eq!(queued.len(), 1);
    deliver(&mut m3, &queued);
    assert_eq!(m3.alerts().expect("alerts").len(), 1);
    assert_eq!(m3.alert(&alert).expect("alert").alert_id, alert);

    let status = organizer.alert_status(&alert).expect("status");
    assert!(status.not_reached.is_empty());
    assert_eq!(status.recipients, 3);
    assert!(status.waiting.contains(&m3.id()));
    // Owed once: nothing more goes.
    assert!(organizer.send_owed_alerts().expect("owed").sent.is_empty());
}

#[test]
fn an_owed_alert_is_dropped_when_it_expires_or_the_member_leaves() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut organizer, _m1, mut m3, committee) = committee_with_a_stranger(&dir);
    let soon = u64::try_from(now_ms()).expect("clock") + 30;
    let (expiring, _) = organizer
        .send_alert(&committee, draft(soon))
        .expect("alert");
    let (lasting, _) = organizer
        .send_alert(&committee, draft(in_an_hour()))
        .expect("alert");
    std::thread::sleep(Duration::from_millis(40));
    organizer
        .remove_member(&committee, &m3.id())
        .expect("remove");
    let bundle = m3.prekey_bundle().expect("bundle");
    organizer.add_contact("", &bundle).expect("contact");
    let sent = organizer.send_owed_alerts().expect("owed");
    assert!(sent.sent.is_empty(), "expired, and m3 left: nothing goes");
    for alert in [expiring, lasting] {
        let status = organizer.alert_status(&alert).expect("status");
        assert!(status.not_reached.is_empty());
    }
}

/// A member who is no link's delegate has nowhere to carry a network alert:
/// the receive transaction that stores it also marks it forwarded, and tells
/// the receive that no cascade (and no transaction of its own) follows.
#[test]
fn a_member_who_is_no_delegate_marks_a_network_alert_forwarded_as_it_stores_it() {
    let dir = tempfile::tempdir().expect("dir");
    let (organizer, mut m1, _m2, id) = committee(&dir);
    let draft = AlertDraft {
        scope: AlertScope::Network,
        ..draft(in_an_hour())
    };
    let message = AlertMessage {
        alert: SignedAlert::raise(&organizer.me.key_pair, id, draft, 1).expect("signed"),
        via: id,
        held: false,
        renotify: false,
    };
    let me = m1.id();
    let tx = m1.store.write().expect("transaction");
    let mut logs = crate::committee_store::BatchLogs::new(&m1.logs, now_ms());
    let mut events = Vec::new();
    let onward = receive::apply(
        &tx,
        &mut logs,
        (&me, &organizer.id()),
        &message,
        &mut events,
    )
    .expect("stored");
    assert!(!onward, "a member who is no delegate has no cascade to run");
    assert!(store::get(&tx, &message.alert_id())
        .expect("read")
        .is_some());
    assert!(store::unforwarded(&tx).expect("read").is_empty());
    assert!(matches!(
        events.as_slice(),
        [Event::AlertReceived { alert_id, .. }] if *alert_id == message.alert_id()
    ));
}
