//! Answers to a network alert counted back to its raiser through a real
//! relay on loopback: from every committee of three levels of councils, each
//! phone once with its latest answer, whatever the delays (a phone answering
//! while offline) and repeats.

mod alert_net;

use std::collections::HashMap;
use std::time::Duration;

use alert_net::{has_alert, network, Phone};
use rankfile_core::alert::{AlertAnswer, AlertDraft, AlertId, AlertKind, AlertScope};
use rankfile_core::committee::{CommitteeId, LinkPolicy};
use rankfile_core::transport::Client;
use rankfile_core::AccountId;
use rankfile_tests::{eventually, in_an_hour, relay};

/// The raiser's counts summed over every committee: answers by kind, and
/// reached but not yet answered.
async fn totals(p: &Phone, alert: AlertId) -> (HashMap<AlertAnswer, usize>, usize) {
    let Ok(status) = p.client.alert_status(alert).await else {
        return (HashMap::new(), usize::MAX);
    };
    let mut answers = HashMap::new();
    let mut silent = 0;
    for c in &status.committees {
        for (a, n) in &c.counts {
            *answers.entry(*a).or_default() += n;
        }
        silent += c.not_answered;
    }
    (answers, silent)
}

/// How many answered `answer` in `committee`, by the raiser's counts.
async fn answered_in(
    p: &Phone,
    alert: AlertId,
    committee: CommitteeId,
    answer: AlertAnswer,
) -> usize {
    p.client.alert_status(alert).await.map_or(0, |s| {
        s.committees
            .iter()
            .find(|c| c.committee == committee)
            .map_or(0, |c| c.counts[&answer])
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_from_three_levels_down_are_counted_back_once_each() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay::start(&dir.path().join("relay")).await;
    let (mut phones, committees, _) = network(dir.path(), &relay, LinkPolicy::Forward).await;
    let raiser = "a1-organizer";
    let alert = phones[raiser]
        .client
        .send_alert(
            committees["a1"],
            AlertDraft {
                kind: AlertKind::EmergencyMeeting,
                scope: AlertScope::Network,
                title: "Strike vote tonight".into(),
                text: "All sites. Answer so we know the numbers.".into(),
                place: "Union hall".into(),
                starts_at_ms: 0,
                expires_at_ms: in_an_hour(),
                answers_wanted: true,
            },
        )
        .await
        .expect("alert");
    for (name, phone) in &phones {
        if name != raiser {
            eventually(30, &format!("{name} shows the alert"), || {
                has_alert(phone, alert)
            })
            .await;
        }
    }

    // b2-member, three levels down, goes offline and answers there: its
    // answer leaves only when it is back.
    let offline = phones.remove("b2-member").expect("phone");
    let mut account = offline.client.shutdown().await.expect("stopped");
    account
        .answer_alert(&alert, AlertAnswer::Coming)
        .expect("answered offline");
    // Everyone else answers; a2-member twice alike and then otherwise, and
    // b1-member twice; a2-organizer stays silent.
    let answers = [
        ("a1-delegate", AlertAnswer::Coming),
        ("a1-member", AlertAnswer::Coming),
        ("a2-delegate", AlertAnswer::Coming),
        ("a2-member", AlertAnswer::Coming),
        ("a2-member", AlertAnswer::Coming),
        ("b1-organizer", AlertAnswer::Coming),
        ("b1-delegate", AlertAnswer::Coming),
        ("b1-member", AlertAnswer::Safe),
        ("b1-member", AlertAnswer::Safe),
        ("b2-organizer", AlertAnswer::Coming),
        ("b2-delegate", AlertAnswer::Coming),
        ("a2-member", AlertAnswer::CannotCome),
    ];
    for (name, answer) in answers {
        phones[name]
            .client
            .answer_alert(alert, answer)
            .await
            .expect("answer");
        // Answers a moment apart: the latest of each phone counts.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let client = Client::start(account, relay::address(&relay)).expect("back online");
    let events = client.subscribe();
    phones.insert(
        "b2-member".into(),
        Phone {
            client,
            id: offline.id,
            events,
        },
    );

    // Counted back up three levels: every phone but the raiser's once, in
    // the committee that first reached it, a2-organizer not yet answered.
    let want = |coming, cannot, safe| {
        HashMap::from([
            (AlertAnswer::Received, 0),
            (AlertAnswer::Coming, coming),
            (AlertAnswer::CannotCome, cannot),
            (AlertAnswer::Safe, safe),
        ])
    };
    let top = &phones[raiser];
    eventually(
        60,
        "the raiser counts every committee's answers",
        || async { totals(top, alert).await == (want(8, 1, 1), 1) },
    )
    .await;
    // B1's and B2's members are reached only in their own committees, far
    // down the cascade; a2-member's latest answer is what counts.
    assert_eq!(
        answered_in(top, alert, committees["b1"], AlertAnswer::Safe).await,
        1
    );
    assert!(answered_in(top, alert, committees["b2"], AlertAnswer::Coming).await >= 1);
    assert_eq!(
        answered_in(top, alert, committees["a2"], AlertAnswer::CannotCome).await,
        1
    );
    // Later and repeated counts change nothing.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(totals(top, alert).await, (want(8, 1, 1), 1));
    // The raiser still names only its own committee's members.
    let own = top.client.alert_status(alert).await.expect("status");
    let a1: Vec<AccountId> = ["a1-delegate", "a1-member"]
        .iter()
        .map(|n| phones[*n].id)
        .collect();
    assert!(own.waiting.iter().all(|w| a1.contains(w)), "{own:?}");
    assert_eq!(own.recipients, 2);
}
