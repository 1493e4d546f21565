//! The roll-call over real stores, envelopes handed over by hand: answers
//! counted per committee back at the raiser, one message per wave of answers,
//! counts that arrive late or twice changing nothing, each member counted
//! once however many paths reached it; and alerts purged a day after they
//! expire, never to come back.

use super::rollcall::{AlertCounts, RollCall};
use super::test_net::{network_draft, Net};
use super::*;
use crate::committee::CommitteeId;
use crate::error::Error;
use crate::event::Event;
use crate::message::Body;
use crate::send::OutgoingEnvelope;

/// The raiser's counts for `committee`: answers by kind (in
/// [`AlertAnswer::ALL`]'s order) and not yet answered.
fn counts(net: &mut Net, alert: &AlertId, committee: CommitteeId) -> ([usize; 4], usize) {
    let status = net.phone("oa").alert_status(alert).expect("status");
    let Some(c) = status.committees.iter().find(|c| c.committee == committee) else {
        return ([0; 4], 0);
    };
    (AlertAnswer::ALL.map(|a| c.counts[&a]), c.not_answered)
}

/// Lets the debounce run out and runs every phone's upkeep, and delivers
/// what it sent, until nothing more is owed.
fn roll_call(net: &mut Net) -> usize {
    let mut rounds = 0;
    loop {
        net.pass_ms(ROLLCALL_DEBOUNCE_MS + 1);
        if net.upkeep() == 0 {
            return rounds;
        }
        net.settle();
        rounds += 1;
        assert!(rounds < 10, "the roll-call settles");
    }
}

/// Answers and delivers the answer.
fn answer(net: &mut Net, name: &str, alert: &AlertId, a: AlertAnswer) {
    net.phone(name).answer_alert(alert, a).expect("answer");
    net.settle();
}

#[test]
fn answers_come_back_per_committee_once_per_wave_each_member_once() {
    let mut net = Net::new();
    let (a, b, k) = (net.a, net.b, net.k);
    let id = net.raise(a);
    net.settle();
    // B's members got it from both of B's delegates; each delegate got it
    // from the council and from the other.
    answer(&mut net, "ma", &id, AlertAnswer::Coming);
    answer(&mut net, "mb", &id, AlertAnswer::Coming);
    answer(&mut net, "ob", &id, AlertAnswer::Safe);
    answer(&mut net, "d2", &id, AlertAnswer::Received);
    // Debounced: nothing goes back before its time (looked at with the
    // clocks set back, so however long the answers took to hand over).
    net.pass_ms(-60_000);
    assert_eq!(net.upkeep(), 0);
    net.pass_ms(60_000);
    assert_eq!(
        counts(&mut net, &id, b),
        ([0; 4], 0),
        "B's counts not back yet"
    );
    net.pass_ms(ROLLCALL_DEBOUNCE_MS + 1);
    net.upkeep();
    // One message back to the raiser from each of B's delegates for the
    // whole wave (d2 had an answer and a second delivery to report).
    let oa = net.id("oa");
    let mut to_oa = 0;
    for name in ["d2", "ma", "mb", "ob"] {
        let out = net.take(name);
        to_oa += out.iter().filter(|e| e.recipient == oa).count();
        net.deliver(&out);
    }
    assert_eq!(to_oa, 2);
    net.settle();
    roll_call(&mut net);

    assert_eq!(counts(&mut net, &id, a), ([0, 1, 0, 0], 0), "A: ma coming");
    assert_eq!(
        counts(&mut net, &id, k),
        ([1, 0, 0, 1], 0),
        "K: d2 received, ob safe"
    );
    assert_eq!(counts(&mut net, &id, b), ([0, 1, 0, 0], 0), "B: mb coming");
    let status = net.phone("oa").alert_status(&id).expect("status");
    let people: usize = status
        .committees
        .iter()
        .map(|c| c.counts.values().sum::<usize>() + c.not_answered)
        .sum();
    assert_eq!(people, 4, "every phone but the raiser's, once: {status:?}");
    assert!(net
        .phone("oa")
        .drain_events()
        .contains(&Event::AlertCountsChanged { alert_id: id }));

    // mb changes its answer: the new count replaces the old.
    answer(&mut net, "mb", &id, AlertAnswer::CannotCome);
    roll_call(&mut net);
    assert_eq!(counts(&mut net, &id, b), ([0, 0, 1, 0], 0));
}

/// Takes the counts `from` queued for `to` out of its outbox.
fn counts_to(net: &mut Net, from: &str, to: &str) -> Vec<OutgoingEnvelope> {
    let to = net.id(to);
    let (mine, rest): (Vec<_>, Vec<_>) = net
        .take(from)
        .into_iter()
        .partition(|e| e.recipient == to && !e.high_priority);
    net.deliver(&rest);
    mine
}

#[test]
fn counts_that_arrive_late_or_twice_change_nothing() {
    let mut net = Net::new();
    let (a, b) = (net.a, net.b);
    let id = net.raise(a);
    net.settle();
    let first_to_mb = net.phone("mb").alert(&id).expect("mb has it").from;
    let counter = if first_to_mb == Some(net.id("d2")) {
        "d2"
    } else {
        "ob"
    };
    // mb answers twice alike (counted once), then changes its mind; each
    // wave's counts from its delegate are held back.
    answer(&mut net, "mb", &id, AlertAnswer::Coming);
    answer(&mut net, "mb", &id, AlertAnswer::Coming);
    net.pass_ms(ROLLCALL_DEBOUNCE_MS + 1);
    net.upkeep();
    let early = counts_to(&mut net, counter, "oa");
    assert_eq!(early.len(), 1);
    net.settle();
    answer(&mut net, "mb", &id, AlertAnswer::CannotCome);
    net.pass_ms(ROLLCALL_DEBOUNCE_MS + 1);
    net.upkeep();
    let later = counts_to(&mut net, counter, "oa");
    assert_eq!(later.len(), 1);

    // The newer arrives first, the older late, the newer again. (Who has not
    // answered settles once the other delegate's counts are in too.)
    net.deliver(&later);
    assert_eq!(counts(&mut net, &id, b).0, [0, 0, 1, 0]);
    let stale = net.deliver(&early);
    assert!(stale[0].1.is_ok(), "{stale:?}");
    assert_eq!(
        counts(&mut net, &id, b).0,
        [0, 0, 1, 0],
        "the late count lost"
    );
    net.deliver(&later);
    // The same counts again in a new message (a device sending twice).
    let gathered = rollcall::gathered(net.phone("oa").store.conn(), &id).expect("gathered");
    let again = Body::AlertRollCall(RollCall::Counts(AlertCounts {
        alert_id: id,
        counts: gathered,
    }));
    let oa = net.id("oa");
    let (twice, _) = net
        .phone(counter)
        .send_to_many(&[oa], &again, false, |_, _, _| Ok(()))
        .expect("send");
    net.take(counter);
    let r = net.deliver(&twice);
    assert!(r[0].1.is_ok(), "{r:?}");
    assert_eq!(counts(&mut net, &id, b).0, [0, 0, 1, 0], "counted once");
    net.settle();
    roll_call(&mut net);
    assert_eq!(counts(&mut net, &id, b), ([0, 0, 1, 0], 0));

    // A roll-call message from someone it was never delivered to: refused.
    let ma = net.id("ma");
    let stranger = Body::AlertRollCall(RollCall::ReachedBefore(id));
    let (to_ma, _) = net
        .phone("oa")
        .send_to_many(&[ma], &stranger, false, |_, _, _| Ok(()))
        .expect("send");
    net.take("oa");
    let r = net.deliver(&to_ma);
    assert!(matches!(r[0].1, Err(Error::InvalidContent(_))), "{r:?}");
}

#[test]
fn alerts_go_a_day_after_they_expire_and_never_come_back() {
    let mut net = Net::new();
    let a = net.a;
    let mut draft = network_draft(&net);
    draft.expires_at_ms = u64::try_from(net.now_ms() + 60_000).expect("clock");
    let (id, _) = net.phone("oa").send_alert(&a, draft).expect("raise");
    let first = net.take("oa");
    net.deliver(&first);
    // One of the forwards is held back, to arrive after the purge.
    let mb = net.id("mb");
    let (late, now): (Vec<_>, Vec<_>) = net.take("d2").into_iter().partition(|e| e.recipient == mb);
    net.deliver(&now);
    net.settle();
    answer(&mut net, "mb", &id, AlertAnswer::Coming);
    roll_call(&mut net);
    assert!(!net
        .phone("oa")
        .alert_status(&id)
        .expect("status")
        .committees
        .is_empty());

    // A day after it expired (a little less): still there.
    net.pass_ms(60_000 + ALERT_RETENTION_MS - 60_000);
    net.upkeep();
    assert!(net.phone("oa").alert(&id).is_ok(), "not yet");
    // Past it (and past the pause between two looks).
    net.pass_ms(11 * 60_000);
    // ob's upkeep runs after a receive batch; the others' on their timer.
    let ob = net.id("ob");
    net.phone("mb")
        .send_text(&ob, "still there?")
        .expect("text");
    net.settle();
    assert!(
        net.phone("ob").alerts().expect("alerts").is_empty(),
        "gone after a batch"
    );
    net.upkeep();
    for name in ["oa", "ma", "ob", "d2", "mb"] {
        let phone = net.phone(name);
        assert!(phone.alerts().expect("alerts").is_empty(), "{name}");
        for table in [
            "alerts",
            "alert_recipients",
            "alert_holds",
            "alert_owed",
            "alert_counts",
            "alert_notes_owed",
        ] {
            let n: i64 = phone
                .store
                .conn()
                .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
                .expect("count");
            assert_eq!(n, 0, "{name}: {table}");
        }
    }
    // The held-back copy arrives: refused, not shown again.
    let r = net.deliver(&late);
    assert!(
        matches!(r[0].1, Err(Error::AlertExpired(x)) if x == id),
        "{r:?}"
    );
    assert!(net.phone("mb").alerts().expect("alerts").is_empty());
}
