//! One phone's full mailbox at the relay never stops the others, through a
//! real relay on loopback with a small mailbox quota: a committee of fifty
//! keeps receiving every post while one member's phone is off and its mailbox
//! full, and that phone gets the rest once it has drained; a 1:1 message the
//! relay refuses for a full mailbox waits parked while its sender goes on
//! receiving.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use rankfile_core::committee::{ChannelKind, CommitteeMeta, Role};
use rankfile_core::transport::Client;
use rankfile_core::{AccountId, Clock};
use rankfile_relay::{Config, RelayHandle};
use rankfile_tests::{connected_client_at, eventually, outbox_drained, relay};

/// Members of the committee, the organizer among them.
const MEMBERS: usize = 50;
/// Messages a mailbox may hold at the relay in these tests.
const QUOTA: u64 = 40;
/// Posts made while one member's phone is off: more than its mailbox holds.
const POSTS: usize = 50;
/// Past the longest wait of a parked envelope.
const PAST_THE_BACKOFF_MS: i64 = 11 * 60 * 1000;

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
    eventually(30, "the greeting arrives", || async {
        !texts_from(b.0, a.1).await.is_empty()
    })
    .await;
    b.0.send_text(a.1, "hi".into()).await.expect("reply");
    eventually(30, "the reply arrives", || async {
        !texts_from(a.0, b.1).await.is_empty()
    })
    .await;
}

/// A relay with a small mailbox quota, going by `offset` like the phones.
async fn small_relay(dir: &std::path::Path, offset: &Arc<AtomicI64>) -> RelayHandle {
    let mut config = Config::local(dir.join("relay"));
    config.mailbox_quota = QUOTA;
    config.clock = rankfile_relay::Clock::shifted(offset.clone());
    rankfile_relay::start(config).await.expect("relay")
}

async fn posts(client: &Client, channel: [u8; 16]) -> usize {
    client
        .with_account(move |a| a.channel_history(&channel, None, 1_000).expect("h").len())
        .await
        .expect("account")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_mailbox_never_stops_a_committee_of_fifty() {
    let dir = tempfile::tempdir().expect("tempdir");
    let offset = Arc::new(AtomicI64::new(0));
    let relay = small_relay(dir.path(), &offset).await;
    let clock = || Clock::shifted(offset.clone());
    let (organizer, o) = connected_client_at(dir.path(), "organizer", &relay, clock()).await;
    let mut members = Vec::new();
    for i in 1..MEMBERS {
        let (c, id) = connected_client_at(dir.path(), &format!("m{i}"), &relay, clock()).await;
        meet((&organizer, o), (&c, id)).await;
        members.push((c, id));
    }
    let committee = organizer
        .create_committee(CommitteeMeta {
            name: "Sorting centre".into(),
            ..CommitteeMeta::default()
        })
        .await
        .expect("found");
    for (_, id) in &members {
        organizer
            .add_member(committee, *id, Role::Member)
            .await
            .expect("add");
    }
    let channel = organizer
        .create_channel(committee, ChannelKind::Announcement)
        .await
        .expect("channel");
    for (c, _) in &members {
        eventually(120, "every member holds the channel", || async {
            c.committee(committee)
                .await
                .is_ok_and(|s| s.channels.contains_key(&channel) && s.members.len() == MEMBERS)
        })
        .await;
    }
    outbox_drained(&organizer, 60, "the committee is set up").await;

    // One member's phone goes off; the organizer posts more than its
    // mailbox holds.
    let (full, _) = members.remove(0);
    let full_account = full.shutdown().await.expect("stops");
    for n in 0..POSTS {
        organizer
            .post(committee, channel, format!("post {n}"))
            .await
            .expect("post");
    }
    // Everyone else gets every post, while the organizer still owes the
    // off phone some.
    for (c, _) in &members {
        eventually(120, "every other member has every post", || async {
            posts(c, channel).await == POSTS
        })
        .await;
    }
    let owed = organizer
        .with_account(|a| a.outbox().expect("outbox").len())
        .await
        .expect("account");
    assert!(owed > 0, "the posts the full mailbox refused wait parked");

    // The phone comes back and drains its mailbox; the organizer's retries
    // then land (time passes beyond the longest backoff).
    let full = Client::start(full_account, relay::address(&relay)).expect("restarts");
    eventually(60, "the phone drains what its mailbox held", || async {
        posts(&full, channel).await >= (QUOTA as usize) - 1
    })
    .await;
    offset.fetch_add(PAST_THE_BACKOFF_MS, Ordering::SeqCst);
    organizer.flush().await.expect("flush");
    eventually(60, "the phone gets every post", || async {
        posts(&full, channel).await == POSTS
    })
    .await;
    outbox_drained(&organizer, 30, "nothing is owed any more").await;
    // No one got a post twice.
    for (c, _) in members.iter().take(3) {
        assert_eq!(posts(c, channel).await, POSTS);
        let unreadable = c
            .with_account(|a| a.unreadable_messages().expect("list").len())
            .await
            .expect("account");
        assert_eq!(unreadable, 0);
    }
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_message_does_not_stop_its_sender_receiving() {
    let dir = tempfile::tempdir().expect("tempdir");
    let offset = Arc::new(AtomicI64::new(0));
    let relay = small_relay(dir.path(), &offset).await;
    let clock = || Clock::shifted(offset.clone());
    let (alice, a) = connected_client_at(dir.path(), "alice", &relay, clock()).await;
    let (bob, b) = connected_client_at(dir.path(), "bob", &relay, clock()).await;
    let (carol, c) = connected_client_at(dir.path(), "carol", &relay, clock()).await;
    meet((&alice, a), (&bob, b)).await;
    meet((&carol, c), (&alice, a)).await;

    // Bob's phone is off and his mailbox fills up.
    let bob_account = bob.shutdown().await.expect("stops");
    let extra = 3;
    for n in 0..QUOTA as usize + extra {
        alice
            .send_text(b, format!("to bob {n}"))
            .await
            .expect("send");
    }
    eventually(30, "the relay took what fits", || async {
        alice
            .with_account(|x| x.outbox().expect("outbox").len())
            .await
            .expect("account")
            == extra
    })
    .await;

    // Alice still hears from Carol.
    carol
        .send_text(a, "still there?".into())
        .await
        .expect("send");
    eventually(30, "alice receives while her message waits", || async {
        texts_from(&alice, c)
            .await
            .iter()
            .any(|t| t == "still there?")
    })
    .await;

    // Bob comes back and drains; Alice's parked messages follow.
    let bob = Client::start(bob_account, relay::address(&relay)).expect("restarts");
    eventually(60, "bob drains his mailbox", || async {
        texts_from(&bob, a).await.len() > QUOTA as usize - 1
    })
    .await;
    offset.fetch_add(PAST_THE_BACKOFF_MS, Ordering::SeqCst);
    alice.flush().await.expect("flush");
    eventually(60, "bob gets every message", || async {
        texts_from(&bob, a).await.len() == 1 + QUOTA as usize + extra
    })
    .await;
    relay.shutdown().await;
}
