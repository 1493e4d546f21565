//! Emergency alerts through a real relay on loopback: committees linked into
//! councils, councils into a regional council; an organizer's network alert
//! cascades through three levels and every phone shows it once, however many
//! paths reach it; a hold-for-approval link holds it until an organizer of
//! the committee approves; answers come back to the sender.

mod alert_net;

use std::time::Duration;

use alert_net::{arrivals, has_alert, network};
use rankfile_core::alert::{AlertAnswer, AlertDraft, AlertKind, AlertScope};
use rankfile_core::committee::LinkPolicy;
use rankfile_tests::{eventually, in_an_hour, relay};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_alert_cascades_through_three_levels_once_per_phone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay::start(&dir.path().join("relay")).await;
    // B1 holds alerts from its council for its organizer's approval.
    let (mut phones, committees, r1) = network(dir.path(), &relay, LinkPolicy::Hold).await;
    let p = |n: &str| &phones[n];
    // Who is linked is known to council members only: a plain member holds no
    // council.
    assert!(p("a1-member")
        .client
        .links()
        .await
        .expect("links")
        .is_empty());

    let alert = p("a1-organizer")
        .client
        .send_alert(
            committees["a1"],
            AlertDraft {
                kind: AlertKind::EmergencyMeeting,
                scope: AlertScope::Network,
                title: "Emergency meeting".into(),
                text: "Management announced layoffs. Meet now.".into(),
                place: "Union hall".into(),
                starts_at_ms: 0,
                expires_at_ms: in_an_hour(),
                answers_wanted: true,
            },
        )
        .await
        .expect("alert");

    let held_back = "b1-member";
    for (name, phone) in &phones {
        if name == held_back || name == "a1-organizer" {
            continue;
        }
        eventually(30, &format!("{name} shows the alert"), || {
            has_alert(phone, alert)
        })
        .await;
    }
    // The B1 link holds: its organizer has the alert waiting, its plain
    // member has nothing yet.
    let b1 = committees["b1"];
    eventually(20, "the alert is held for B1's organizer", || async {
        p("b1-organizer")
            .client
            .held_alerts()
            .await
            .is_ok_and(|h| h.contains(&(alert, b1)))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!has_alert(p(held_back), alert).await, "held until approved");
    p("b1-organizer")
        .client
        .approve_alert(alert, b1)
        .await
        .expect("approve");
    eventually(20, "approved, the alert reaches B1", || {
        has_alert(p(held_back), alert)
    })
    .await;

    // Every phone shows it exactly once, though several got it by more
    // than one path.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (name, phone) in phones.iter_mut() {
        if name == "a1-organizer" {
            continue;
        }
        assert_eq!(arrivals(phone, alert), 1, "{name} shows it once");
        let stored = phone.client.alerts().await.expect("alerts");
        assert_eq!(stored.len(), 1, "{name} keeps one alert");
    }

    // Answers come back to whoever delivered the alert.
    let p = |n: &str| &phones[n];
    for name in ["a1-delegate", "a1-member"] {
        p(name)
            .client
            .answer_alert(alert, AlertAnswer::Coming)
            .await
            .expect("answer");
    }
    eventually(20, "the organizer sees the answers", || async {
        p("a1-organizer")
            .client
            .alert_status(alert)
            .await
            .is_ok_and(|s| s.counts[&AlertAnswer::Coming] == 2 && s.waiting.is_empty())
    })
    .await;

    // A delegate removed from their committee is removed from the council
    // too, and reads nothing posted there afterwards.
    let removed = p("a1-delegate").id;
    p("a1-organizer")
        .client
        .remove_member(committees["a1"], removed)
        .await
        .expect("remove");
    for name in ["a1-organizer", "a2-organizer", "a2-delegate"] {
        eventually(20, "the council drops the removed delegate", || async {
            p(name).client.committee(r1).await.is_ok_and(|s| {
                !s.members.contains_key(&removed) && s.links[&committees["a1"]].delegates.is_empty()
            })
        })
        .await;
    }
    let state = p("a2-delegate")
        .client
        .committee(r1)
        .await
        .expect("council");
    let channel = *state.channels.keys().next().expect("the council's channel");
    let mut tries = 0;
    while let Err(e) = p("a2-delegate")
        .client
        .post(r1, channel, "after the removal".into())
        .await
    {
        tries += 1;
        assert!(tries < 100, "post: {e}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let read = |name: &'static str| {
        let client = &p(name).client;
        async move {
            client
                .with_account(move |a| {
                    a.channel_history(&channel, None, 10)
                        .map(|h| h.iter().any(|m| m.body == "after the removal"))
                        .unwrap_or(false)
                })
                .await
                .unwrap_or(false)
        }
    };
    eventually(20, "the council reads the post", || read("a1-organizer")).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !read("a1-delegate").await,
        "the removed delegate reads nothing new"
    );
}
