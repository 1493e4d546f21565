//! Emergency alerts through a real relay on loopback: committees linked into
//! councils, councils into a regional council; an organizer's network alert
//! cascades through three levels and every phone shows it once, however many
//! paths reach it; a hold-for-approval link holds it until an organizer of
//! the committee approves; answers come back to the sender, and the counts
//! from every committee back to the raiser, each phone once, whatever the
//! delays and repeats.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use rankfile_core::alert::{AlertAnswer, AlertDraft, AlertId, AlertKind, AlertScope};
use rankfile_core::committee::{CommitteeId, CommitteeMeta, LinkPolicy, Role};
use rankfile_core::transport::{Client, ClientEvent};
use rankfile_core::{AccountId, Event};
use rankfile_tests::{connected_client, eventually, in_an_hour, relay};
use tokio::sync::broadcast;

struct Phone {
    client: Client,
    id: AccountId,
    events: broadcast::Receiver<ClientEvent>,
}

async fn phone(dir: &Path, name: &str, relay: &rankfile_relay::RelayHandle) -> Phone {
    let (client, id) = connected_client(dir, name, relay).await;
    let events = client.subscribe();
    Phone { client, id, events }
}

async fn members(p: &Phone, committee: CommitteeId) -> usize {
    p.client
        .committee(committee)
        .await
        .map(|s| s.members.len())
        .unwrap_or(0)
}

/// A committee of three from an invite: the organizer, a delegate, a member.
async fn committee(name: &str, phones: &[&Phone; 3]) -> CommitteeId {
    let [organizer, delegate, member] = phones;
    let id = organizer
        .client
        .create_committee(CommitteeMeta {
            name: name.into(),
            ..CommitteeMeta::default()
        })
        .await
        .expect("found");
    let link = organizer
        .client
        .create_invite(id, in_an_hour(), 2)
        .await
        .expect("invite")
        .to_link();
    for p in [delegate, member] {
        p.client.join(&link).await.expect("join");
    }
    for p in phones {
        eventually(30, "everyone holds the whole committee", || async {
            members(p, id).await == 3
        })
        .await;
    }
    organizer
        .client
        .change_role(id, delegate.id, Role::Delegate)
        .await
        .expect("delegate");
    eventually(20, "the delegate's role arrives", || async {
        delegate
            .client
            .committee(id)
            .await
            .is_ok_and(|s| s.role(&delegate.id) == Some(Role::Delegate))
    })
    .await;
    id
}

/// `from` (organizer of `committee`) proposes a link to `to` (organizer of
/// `target`), who accepts; returns the council the link lives in.
#[allow(clippy::too_many_arguments)]
async fn link(
    from: &Phone,
    committee: CommitteeId,
    delegates: &[&Phone],
    policy: LinkPolicy,
    to: &Phone,
    target: CommitteeId,
    target_delegates: &[&Phone],
    council_name: &str,
) -> CommitteeId {
    let proposal = from
        .client
        .propose_link(
            committee,
            to.id,
            target,
            delegates.iter().map(|d| d.id).collect(),
            policy,
            council_name.into(),
        )
        .await
        .expect("propose");
    eventually(20, "the proposal arrives", || async {
        to.client
            .link_proposals()
            .await
            .is_ok_and(|p| p.iter().any(|(_, p)| p.proposal_id == proposal))
    })
    .await;
    let council = to
        .client
        .accept_link(
            proposal,
            target_delegates.iter().map(|d| d.id).collect(),
            LinkPolicy::Forward,
        )
        .await
        .expect("accept");
    let everyone: Vec<&Phone> = delegates
        .iter()
        .chain(target_delegates.iter())
        .copied()
        .chain([from, to])
        .collect();
    for p in everyone {
        eventually(
            30,
            "every council member holds the council's links",
            || async {
                p.client
                    .committee(council)
                    .await
                    .is_ok_and(|s| s.links.contains_key(&committee))
            },
        )
        .await;
    }
    council
}

/// How many times a phone's stream said the alert arrived.
fn arrivals(p: &mut Phone, alert: AlertId) -> usize {
    let mut n = 0;
    loop {
        match p.events.try_recv() {
            Ok(ClientEvent::Core(Event::AlertReceived { alert_id, .. })) if alert_id == alert => {
                n += 1
            }
            Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_)) => {}
            Err(_) => return n,
        }
    }
}

async fn has_alert(p: &Phone, alert: AlertId) -> bool {
    p.client
        .alerts()
        .await
        .is_ok_and(|a| a.iter().any(|a| a.alert_id == alert))
}

/// The network of these scenarios: committees A1, A2, B1, B2 of three
/// (organizer, delegate, member); councils R1 (A1 + A2) and R2 (B1 + B2, B1
/// taking alerts from it by `b1_policy`); and the regional council over R1
/// and R2. Returns the phones by name, the committees by name, and R1.
async fn network(
    dir: &Path,
    relay: &rankfile_relay::RelayHandle,
    b1_policy: LinkPolicy,
) -> (
    HashMap<String, Phone>,
    HashMap<&'static str, CommitteeId>,
    CommitteeId,
) {
    let mut phones = HashMap::new();
    for c in ["a1", "a2", "b1", "b2"] {
        for role in ["organizer", "delegate", "member"] {
            let name = format!("{c}-{role}");
            phones.insert(name.clone(), phone(dir, &name, relay).await);
        }
    }
    let p = |n: &str| &phones[n];
    let mut committees = HashMap::new();
    for c in ["a1", "a2", "b1", "b2"] {
        let trio = [
            p(&format!("{c}-organizer")),
            p(&format!("{c}-delegate")),
            p(&format!("{c}-member")),
        ];
        committees.insert(c, committee(c, &trio).await);
    }
    // Level 1: A1 + A2 form council R1; B1 + B2 form R2.
    let r1 = link(
        p("a1-organizer"),
        committees["a1"],
        &[p("a1-delegate")],
        LinkPolicy::Forward,
        p("a2-organizer"),
        committees["a2"],
        &[p("a2-delegate")],
        "",
    )
    .await;
    let r2 = link(
        p("b1-organizer"),
        committees["b1"],
        &[p("b1-delegate")],
        b1_policy,
        p("b2-organizer"),
        committees["b2"],
        &[p("b2-delegate")],
        "",
    )
    .await;
    // Level 2: R1 + R2 form the regional council.
    let region = link(
        p("a2-organizer"),
        r1,
        &[p("a2-delegate")],
        LinkPolicy::Forward,
        p("b2-organizer"),
        r2,
        &[p("b2-delegate")],
        "Region",
    )
    .await;
    assert!(region != r1 && region != r2);
    (phones, committees, r1)
}

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
