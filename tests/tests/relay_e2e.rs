//! Phones talking through a real relay over TLS on loopback: three accounts,
//! an offline recipient, a relay restarted mid-conversation, a phone killed
//! between decrypt and commit, and what the relay's database holds.

use std::path::Path;
use std::time::Duration;

use rankfile_core::transport::{Client, ClientEvent, DeliveryState};
use rankfile_core::{Account, AccountId, DatabaseKey};
use rankfile_tests::{contains, eventually, outbox_drained, relay, wait_connected};

struct Device {
    client: Client,
    id: AccountId,
    path: std::path::PathBuf,
    key: DatabaseKey,
}

fn new_account(dir: &Path, name: &str) -> (Account, std::path::PathBuf, DatabaseKey) {
    let path = dir.join(format!("{name}.db"));
    let key = DatabaseKey::generate();
    (Account::create(&path, &key).expect("account"), path, key)
}

async fn online(dir: &Path, name: &str, relay: &rankfile_relay::RelayHandle) -> Device {
    let (account, path, key) = new_account(dir, name);
    let id = account.id();
    let client = Client::start(account, relay::address(relay)).expect("client");
    // Logged in and prekeys published once the relay can hand out a bundle.
    wait_connected(&client).await;
    Device {
        client,
        id,
        path,
        key,
    }
}

/// Alice and Bob online, and Bob among Alice's contacts.
async fn alice_knows_bob(dir: &Path, relay: &rankfile_relay::RelayHandle) -> (Device, Device) {
    let alice = online(dir, "alice", relay).await;
    let bob = online(dir, "bob", relay).await;
    alice
        .client
        .add_contact_from_relay("bob".into(), bob.id)
        .await
        .expect("bundle");
    (alice, bob)
}

async fn incoming(client: &Client, from: AccountId) -> Vec<String> {
    client
        .with_account(move |a| {
            let mut h: Vec<String> = a
                .history(&from, None, 10_000)
                .expect("history")
                .into_iter()
                .filter(|m| !m.outgoing)
                .map(|m| m.body)
                .collect();
            h.sort();
            h
        })
        .await
        .expect("account")
}

/// Alice writes `n` messages to Bob while his phone is off; then it comes
/// back. Returns Bob's client, subscribed from its start, and Alice's ID.
async fn back_online_after(
    dir: &Path,
    relay: &rankfile_relay::RelayHandle,
    n: usize,
) -> (
    Client,
    tokio::sync::broadcast::Receiver<ClientEvent>,
    AccountId,
) {
    let (alice, bob) = alice_knows_bob(dir, relay).await;
    // Bob has written back, so Alice holds his access key: her backlog goes
    // sealed, as a contact's does (a stranger's identified mail stops at the
    // relay's smaller quota for senders not accepted).
    alice
        .client
        .send_text(bob.id, "hello".into())
        .await
        .expect("send");
    eventually(20, "bob has alice's hello", || async {
        incoming(&bob.client, alice.id).await.len() == 1
    })
    .await;
    bob.client
        .send_text(alice.id, "hello back".into())
        .await
        .expect("reply");
    eventually(20, "alice has bob's reply", || async {
        incoming(&alice.client, bob.id).await.len() == 1
    })
    .await;
    let Device {
        client, path, key, ..
    } = bob;
    drop(client.shutdown().await.expect("bob stops"));
    for i in 0..n {
        alice
            .client
            .send_text(bob.id, format!("while away {i}"))
            .await
            .expect("send");
    }
    outbox_drained(&alice.client, 60, "alice's messages are with the relay").await;
    let client = Client::start(
        Account::open(&path, &key).expect("reopen"),
        relay::address(relay),
    )
    .expect("client");
    let events = client.subscribe();
    (client, events, alice.id)
}

/// Counts the messages stored until the client says it has caught up.
async fn stored_until_caught_up(
    events: &mut tokio::sync::broadcast::Receiver<ClientEvent>,
    secs: u64,
) -> usize {
    let mut stored = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Ok(ClientEvent::Core(rankfile_core::Event::MessageStored { .. }))) => stored += 1,
            Ok(Ok(ClientEvent::CaughtUp)) => return stored,
            Ok(Ok(_)) => {}
            other => panic!("no CaughtUp after {stored} messages: {other:?}"),
        }
    }
}

async fn wait_for_messages(client: &Client, from: AccountId, n: usize) -> Vec<String> {
    eventually(30, &format!("{n} messages arrive"), || async {
        incoming(client, from).await.len() >= n
    })
    .await;
    incoming(client, from).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_accounts_exchange_messages_through_the_relay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay_dir = dir.path().join("relay");
    let relay = relay::start(&relay_dir).await;
    let alice = online(dir.path(), "alice", &relay).await;
    let bob = online(dir.path(), "bob", &relay).await;
    let carol = online(dir.path(), "carol", &relay).await;

    alice
        .client
        .add_contact_from_relay("bob".into(), bob.id)
        .await
        .expect("bob's bundle");
    alice
        .client
        .add_contact_from_relay("carol".into(), carol.id)
        .await
        .expect("carol's bundle");
    bob.client
        .add_contact_from_relay("carol".into(), carol.id)
        .await
        .expect("carol's bundle");

    let mut events = alice.client.subscribe();
    for i in 0..5 {
        alice
            .client
            .send_text(bob.id, format!("to bob {i}"))
            .await
            .expect("send");
        alice
            .client
            .send_text(carol.id, format!("to carol {i}"))
            .await
            .expect("send");
        bob.client
            .send_text(carol.id, format!("bob to carol {i}"))
            .await
            .expect("send");
    }
    let got = wait_for_messages(&bob.client, alice.id, 5).await;
    assert_eq!(
        got,
        (0..5).map(|i| format!("to bob {i}")).collect::<Vec<_>>()
    );
    wait_for_messages(&carol.client, alice.id, 5).await;
    wait_for_messages(&carol.client, bob.id, 5).await;

    // Replies go back sealed: Bob learnt Alice's access key from her messages.
    let reply = bob
        .client
        .send_text(alice.id, "got them".into())
        .await
        .expect("reply");
    assert!(reply.sealed, "a reply to a known contact is sealed");
    wait_for_messages(&alice.client, bob.id, 1).await;
    let reply = carol
        .client
        .send_text(alice.id, "me too".into())
        .await
        .expect("reply");
    assert!(reply.sealed);
    wait_for_messages(&alice.client, carol.id, 1).await;
    // And Alice's later messages to Bob are sealed too.
    let later = alice
        .client
        .send_text(bob.id, "sealed now".into())
        .await
        .expect("send");
    assert!(later.sealed);
    wait_for_messages(&bob.client, alice.id, 6).await;

    // Alice saw her messages reach the relay.
    let mut sent = 0;
    while let Ok(e) = events.try_recv() {
        if matches!(
            e,
            ClientEvent::Delivery {
                state: DeliveryState::Sent,
                ..
            }
        ) {
            sent += 1;
        }
    }
    assert!(sent >= 10, "delivery events: {sent}");
    for d in [&alice, &bob, &carol] {
        let outbox = d
            .client
            .with_account(|a| a.outbox().expect("outbox"))
            .await
            .expect("a");
        assert!(outbox.is_empty(), "everything was confirmed by the relay");
    }
    relay.shutdown().await;
}

/// A backlog longer than the relay's delivery window (512 deliveries) comes
/// in several windows. The client receives what is waiting as a backlog of
/// batches and acknowledges each batch as soon as it is flushed, while it
/// goes on with the next: the relay refills the window, every message is
/// stored once, and the relay forgets them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_longer_than_the_delivery_window_is_stored_once_and_forgotten_by_the_relay() {
    const BACKLOG: usize = 1_100;
    let dir = tempfile::tempdir().expect("tempdir");
    let relay_dir = dir.path().join("relay");
    let relay = relay::start(&relay_dir).await;
    let queued = |dir: &Path| -> i64 {
        rusqlite::Connection::open(dir.join("relay.db"))
            .and_then(|c| c.query_row("SELECT count(*) FROM messages", [], |r| r.get(0)))
            .expect("count the relay's messages")
    };
    let (client, mut events, alice) = back_online_after(dir.path(), &relay, BACKLOG).await;
    assert_eq!(
        stored_until_caught_up(&mut events, 60).await,
        BACKLOG,
        "the whole backlog is stored before CaughtUp"
    );
    assert_eq!(incoming(&client, alice).await.len(), BACKLOG + 1);
    eventually(
        20,
        "the relay has forgotten every delivered message",
        || {
            let dir = relay_dir.clone();
            async move { queued(&dir) == 0 }
        },
    )
    .await;
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_recipient_gets_everything_and_a_relay_restart_loses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay_dir = dir.path().join("relay");
    let relay = relay::start(&relay_dir).await;
    let addr = relay.local_addr();
    let (alice, bob) = alice_knows_bob(dir.path(), &relay).await;

    // Bob goes offline (app closed).
    let Device {
        client,
        id: bob_id,
        path: bob_path,
        key: bob_key,
    } = bob;
    drop(client.shutdown().await.expect("bob stops"));

    let secret = "strike vote on thursday, keep it off the company chat";
    for i in 0..10 {
        alice
            .client
            .send_text(bob_id, format!("{secret} #{i}"))
            .await
            .expect("send");
    }
    outbox_drained(&alice.client, 20, "the relay has Alice's messages").await;

    // The relay's database holds the messages, but no plaintext.
    let raw = std::fs::read(relay_dir.join("relay.db")).unwrap_or_default();
    let wal = std::fs::read(relay_dir.join("relay.db-wal")).unwrap_or_default();
    assert!(!contains(&raw, b"strike vote") && !contains(&wal, b"strike vote"));

    // The relay goes down in the middle; Alice keeps writing into her outbox.
    relay.shutdown().await;
    for i in 10..15 {
        alice
            .client
            .send_text(bob_id, format!("{secret} #{i}"))
            .await
            .expect("send while relay is down");
    }
    let relay = relay::start_at(&relay_dir, addr).await;
    outbox_drained(&alice.client, 30, "Alice's outbox drains after the restart").await;

    // Bob comes back and receives everything, once.
    let account = Account::open(&bob_path, &bob_key).expect("reopen");
    let bob = Client::start(account, relay::address(&relay)).expect("client");
    wait_connected(&bob).await;
    let got = wait_for_messages(&bob, alice.id, 15).await;
    let mut expected: Vec<String> = (0..15).map(|i| format!("{secret} #{i}")).collect();
    expected.sort();
    assert_eq!(got, expected);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        incoming(&bob, alice.id).await.len(),
        15,
        "nothing stored twice"
    );
    let account = bob.shutdown().await.expect("stop");
    let raw = std::fs::read(&bob_path).expect("bob's db");
    assert!(!contains(&raw, b"strike vote"));
    drop(account);
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_messages_on_the_relay_carry_no_sender() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay_dir = dir.path().join("relay");
    let relay = relay::start(&relay_dir).await;
    let (alice, bob) = alice_knows_bob(dir.path(), &relay).await;
    alice
        .client
        .send_text(bob.id, "hello".into())
        .await
        .expect("send");
    wait_for_messages(&bob.client, alice.id, 1).await;
    // Bob replies until he is offline; his replies to Alice are sealed.
    let Device {
        client: alice_client,
        id: alice_id,
        ..
    } = alice;
    drop(alice_client.shutdown().await.expect("alice stops"));
    for i in 0..5 {
        let e = bob
            .client
            .send_text(alice_id, format!("reply {i}"))
            .await
            .expect("send");
        assert!(e.sealed);
    }
    outbox_drained(&bob.client, 20, "the relay has Bob's replies").await;
    let conn = rusqlite::Connection::open(relay_dir.join("relay.db")).expect("open relay db");
    let rows: Vec<(bool, Vec<u8>)> = conn
        .prepare("SELECT sealed, envelope FROM messages")
        .expect("prepare")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(rows.len(), 5);
    for (sealed, envelope) in rows {
        assert!(sealed);
        assert!(
            !contains(&envelope, bob.id.as_bytes()),
            "the sender's account ID is hidden"
        );
        assert!(!contains(&envelope, &bob.id.as_bytes()[..16]));
        assert!(!contains(&envelope, b"reply"));
    }
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_killed_between_decrypt_and_commit_stores_the_message_once() {
    // Nothing was committed, so nothing was acknowledged.
    killed_at("receive_before_commit", 0..=0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_killed_between_commit_and_acknowledgement_stores_the_message_once() {
    // Committed (the batch's flush runs beside the next batch), never
    // acknowledged: the relay delivers it again, and it is a duplicate. (The
    // relay may push the three in more than one batch: the first dies.)
    killed_at("receive_before_ack", 1..=3).await;
}

/// Bob's phone receives three messages and dies at `failpoint`, leaving
/// `committed` of them in its store; run again, it holds each exactly once.
async fn killed_at(failpoint: &str, committed: std::ops::RangeInclusive<u64>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay::start(&dir.path().join("relay")).await;
    let (alice, bob) = alice_knows_bob(dir.path(), &relay).await;
    let Device {
        client,
        id: bob_id,
        path: bob_path,
        key: bob_key,
    } = bob;
    drop(client.shutdown().await.expect("bob stops"));
    for i in 0..3 {
        alice
            .client
            .send_text(bob_id, format!("m{i}"))
            .await
            .expect("send");
    }
    outbox_drained(&alice.client, 20, "sent").await;

    let phone = env!("CARGO_BIN_EXE_rankfile-test-phone");
    let run = |failpoint: Option<&str>| {
        let mut cmd = std::process::Command::new(phone);
        cmd.arg(&bob_path)
            .arg(relay.local_addr().to_string())
            .arg(relay.fingerprint())
            .arg("3")
            .env("RANKFILE_TEST_DB_KEY", hex::encode(bob_key_bytes(&bob_key)));
        if let Some(f) = failpoint {
            cmd.env("RANKFILE_FAILPOINT", f);
        }
        cmd.output().expect("run the phone")
    };
    let crashed = run(Some(failpoint));
    // Killed by SIGABRT at the failpoint: no exit code.
    assert_eq!(
        crashed.status.code(),
        None,
        "the phone was meant to die at the failpoint"
    );
    let account = Account::open(&bob_path, &bob_key).expect("open after the crash");
    let stored = account.message_count().expect("count");
    assert!(
        committed.contains(&stored),
        "{stored} messages committed before the phone died, expected {committed:?}"
    );
    drop(account);
    // Second run: the relay delivers again (nothing was acknowledged).
    let ok = run(None);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let account = Account::open(&bob_path, &bob_key).expect("open");
    let mut bodies: Vec<String> = account
        .history(&alice.id, None, 100)
        .expect("history")
        .into_iter()
        .map(|m| m.body)
        .collect();
    bodies.sort();
    assert_eq!(bodies, vec!["m0", "m1", "m2"]);
    relay.shutdown().await;
}

fn bob_key_bytes(key: &DatabaseKey) -> Vec<u8> {
    key.expose_for_keystore().to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_back_online_hears_when_its_backlog_is_in() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay::start(&dir.path().join("relay")).await;
    let (client, mut events, alice) = back_online_after(dir.path(), &relay, 5).await;
    assert_eq!(
        stored_until_caught_up(&mut events, 20).await,
        5,
        "the whole backlog is stored before CaughtUp"
    );
    assert_eq!(incoming(&client, alice).await.len(), 5 + 1);
}
