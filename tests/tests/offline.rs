//! A phone that is off for two days reads everything sent meanwhile, through
//! a real relay on loopback, with the relay's and every phone's clock moved
//! forward together: sender certificates live a day, so the phone checks each
//! against the time the relay stored the message, not against its own clock
//! when it comes back; the senders refresh theirs on their long-lived
//! connections, and seal again what waited in their outboxes.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use rankfile_core::alert::{AlertDraft, AlertKind, AlertScope};
use rankfile_core::committee::{ChannelKind, CommitteeMeta, Role};
use rankfile_core::transport::Client;
use rankfile_core::{AccountId, Clock};
use rankfile_relay::Config;
use rankfile_tests::{connected_client_at, eventually, outbox_drained, relay};

const HOUR_MS: i64 = 3_600_000;

async fn texts_from(client: &Client, from: AccountId) -> Vec<String> {
    client
        .with_account(move |a| {
            a.history(&from, None, 1_000)
                .expect("history")
                .into_iter()
                .filter(|m| !m.outgoing)
                .map(|m| m.body)
                .collect()
        })
        .await
        .expect("account")
}

/// A sealed exchange both ways, so each holds the other's access key.
async fn meet(a: (&Client, AccountId), b: (&Client, AccountId)) {
    a.0.add_contact_from_relay("peer".into(), b.1)
        .await
        .expect("bundle");
    a.0.send_text(b.1, "hi".into()).await.expect("send");
    eventually(20, "the greeting arrives", || async {
        !texts_from(b.0, a.1).await.is_empty()
    })
    .await;
    b.0.send_text(a.1, "hi".into()).await.expect("reply");
    eventually(20, "the reply arrives", || async {
        !texts_from(a.0, b.1).await.is_empty()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_off_for_48_hours_reads_every_text_post_and_alert_sent_meanwhile() {
    let dir = tempfile::tempdir().expect("tempdir");
    let offset = Arc::new(AtomicI64::new(0));
    let mut config = Config::local(dir.path().join("relay"));
    config.clock = rankfile_relay::Clock::shifted(offset.clone());
    let relay = rankfile_relay::start(config).await.expect("relay");
    let clock = || Clock::shifted(offset.clone());
    let (organizer, o) = connected_client_at(dir.path(), "organizer", &relay, clock()).await;
    let (away, a) = connected_client_at(dir.path(), "away", &relay, clock()).await;
    meet((&organizer, o), (&away, a)).await;

    let committee = organizer
        .create_committee(CommitteeMeta {
            name: "Depot".into(),
            ..CommitteeMeta::default()
        })
        .await
        .expect("found");
    organizer
        .add_member(committee, a, Role::Member)
        .await
        .expect("add");
    let channel = organizer
        .create_channel(committee, ChannelKind::Discussion)
        .await
        .expect("channel");
    eventually(30, "the member holds the channel", || async {
        away.committee(committee)
            .await
            .is_ok_and(|s| s.channels.contains_key(&channel))
    })
    .await;

    // The phone goes off; for two days the organizer writes every 12 hours.
    let away_account = away.shutdown().await.expect("stops");
    const ROUNDS: usize = 4;
    for round in 0..ROUNDS {
        offset.fetch_add(12 * HOUR_MS, Ordering::SeqCst);
        organizer
            .send_text(a, format!("text {round}"))
            .await
            .expect("text");
        organizer
            .post(committee, channel, format!("post {round}"))
            .await
            .expect("post");
        let now = u64::try_from(clock().now_ms()).expect("ms");
        organizer
            .send_alert(
                committee,
                AlertDraft {
                    kind: AlertKind::EmergencyMeeting,
                    scope: AlertScope::Local,
                    title: format!("meeting {round}"),
                    text: String::new(),
                    place: "Union hall".into(),
                    starts_at_ms: 0,
                    expires_at_ms: now + 96 * 3_600_000,
                    answers_wanted: true,
                },
            )
            .await
            .expect("alert");
        outbox_drained(&organizer, 30, "the relay holds the round").await;
    }

    // 48 hours on, it comes back.
    let away = Client::start(away_account, relay::address(&relay)).expect("restarts");
    let want_texts: Vec<String> = std::iter::once("hi".to_string())
        .chain((0..ROUNDS).map(|r| format!("text {r}")))
        .collect();
    eventually(60, "every text, post and alert arrives", || async {
        let texts = texts_from(&away, o).await;
        let posts = away
            .with_account(move |acc| acc.channel_history(&channel, None, 100).expect("h").len())
            .await
            .expect("account");
        let alerts = away.alerts().await.expect("alerts").len();
        texts.len() == want_texts.len() && posts == ROUNDS && alerts == ROUNDS
    })
    .await;
    // Each once, nothing unreadable left behind.
    let mut texts = texts_from(&away, o).await;
    texts.sort();
    let mut want = want_texts.clone();
    want.sort();
    assert_eq!(texts, want);
    let (posts, unreadable) = away
        .with_account(move |acc| {
            let mut posts: Vec<String> = acc
                .channel_history(&channel, None, 100)
                .expect("history")
                .into_iter()
                .map(|m| m.body)
                .collect();
            posts.sort();
            (posts, acc.unreadable_messages().expect("list").len())
        })
        .await
        .expect("account");
    assert_eq!(
        posts,
        (0..ROUNDS).map(|r| format!("post {r}")).collect::<Vec<_>>()
    );
    assert_eq!(unreadable, 0);
    let mut titles: Vec<String> = away
        .alerts()
        .await
        .expect("alerts")
        .into_iter()
        .map(|al| al.title)
        .collect();
    titles.sort();
    assert_eq!(
        titles,
        (0..ROUNDS)
            .map(|r| format!("meeting {r}"))
            .collect::<Vec<_>>()
    );
    relay.shutdown().await;
}
