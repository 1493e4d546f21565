//! Mailboxes: identified and sealed sends, delivery on connect, deletion only on
//! Ack, redelivery, isolation between devices, priority, quota, expiry, restarts,
//! and what the database holds afterwards.

mod support;

use rankfile_proto::v1::{
    self as pb, client_frame::Body as In, error::Code, server_frame::Body as Out,
};
use support::*;

#[tokio::test]
async fn offline_send_is_delivered_on_connect_and_deleted_only_on_ack() {
    let relay = TestRelay::start().await;
    let alice = Identity::new(1);
    let bob = Identity::new(1);
    relay.device(&bob).await.ping().await; // registers bob, then goes offline
    let mut a = relay.device(&alice).await;
    for i in 0..3u8 {
        assert_sent(a.request(send_to(&bob, &[b'm', i])).await);
    }
    assert_eq!(relay.count("messages"), 3);

    // Bob connects, gets the backlog then QueueEmpty, acks nothing: all redelivered.
    let mut b = relay.client().await;
    assert_eq!(b.auth(&bob).await.queued, 3);
    let first = b.backlog_deliveries().await;
    assert_eq!(
        first.iter().map(|d| d.envelope.clone()).collect::<Vec<_>>(),
        vec![b"m\0".to_vec(), b"m\x01".to_vec(), b"m\x02".to_vec()]
    );
    assert!(first.iter().all(|d| !d.sealed && d.stored_at_ms > 0));
    drop(b);

    let mut b = relay.device(&bob).await;
    let again = b.backlog_deliveries().await;
    assert_eq!(
        again.iter().map(|d| d.id).collect::<Vec<_>>(),
        first.iter().map(|d| d.id).collect::<Vec<_>>()
    );
    // Ack two of three: one stays.
    b.ack(vec![again[0].id, again[2].id]).await;
    b.ping().await;
    drop(b);
    let mut b = relay.device(&bob).await;
    let rest = b.backlog_deliveries().await;
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].id, again[1].id);
    b.ack(vec![rest[0].id]).await;
    b.ping().await;
    assert_eq!(relay.count("messages"), 0);
}

#[tokio::test]
async fn online_device_gets_live_pushes() {
    let relay = TestRelay::start().await;
    let alice = Identity::new(1);
    let bob = Identity::new(1);
    let mut b = relay.device(&bob).await;
    assert!(b.backlog_deliveries().await.is_empty());
    let mut a = relay.device(&alice).await;
    assert_sent(a.request(send_to(&bob, b"live")).await);
    let d = b.delivery().await;
    assert_eq!(d.envelope, b"live");
    b.ack(vec![d.id]).await;
    b.ping().await;
    assert_eq!(relay.count("messages"), 0);
}

#[tokio::test]
async fn high_priority_is_delivered_first() {
    let relay = TestRelay::start().await;
    let alice = Identity::new(1);
    let bob = Identity::new(1);
    relay.device(&bob).await.ping().await;
    let mut a = relay.device(&alice).await;
    assert_sent(a.request(send_to(&bob, b"chat")).await);
    let mut alert = send_to(&bob, b"alert");
    if let In::Send(s) = &mut alert {
        s.priority = pb::Priority::High as i32;
    }
    assert_sent(a.request(alert).await);
    let mut b = relay.device(&bob).await;
    let got = b.backlog_deliveries().await;
    assert_eq!(got[0].envelope, b"alert");
    assert_eq!(got[0].priority, pb::Priority::High as i32);
    assert_eq!(got[1].envelope, b"chat");
}

#[tokio::test]
async fn no_device_can_ack_or_read_another_devices_mailbox() {
    let relay = TestRelay::start().await;
    let alice = Identity::new(1);
    let bob = Identity::new(1);
    let bob2 = bob.other_device(2);
    relay.device(&bob).await.ping().await;
    let mut a = relay.device(&alice).await;
    assert_sent(a.request(send_to(&bob, b"for bob 1")).await);
    let mut b1 = relay.device(&bob).await;
    let ids: Vec<u64> = b1.backlog_deliveries().await.iter().map(|d| d.id).collect();
    drop(b1);

    // Bob's second device and Alice both try to ack bob 1's message.
    let mut b2 = relay.device(&bob2).await;
    assert!(
        b2.backlog_deliveries().await.is_empty(),
        "device 2 sees nothing of device 1's mailbox"
    );
    b2.ack(ids.clone()).await;
    b2.ping().await;
    a.ack(ids.clone()).await;
    a.ping().await;
    assert_eq!(relay.count("messages"), 1);
    let mut b1 = relay.device(&bob).await;
    assert_eq!(
        b1.backlog_deliveries()
            .await
            .iter()
            .map(|d| d.id)
            .collect::<Vec<_>>(),
        ids
    );
}

#[tokio::test]
async fn send_to_unknown_device_is_not_found() {
    let relay = TestRelay::start().await;
    let alice = Identity::new(1);
    let nobody = Identity::new(1);
    let mut a = relay.device(&alice).await;
    assert_eq!(
        error_code(&a.request(send_to(&nobody, b"x")).await),
        Code::NotFound
    );
    let mut bad = send_to(&nobody, b"x");
    if let In::Send(s) = &mut bad {
        s.recipient_account_id.truncate(5);
    }
    assert_eq!(error_code(&a.request(bad).await), Code::Malformed);
    assert_eq!(
        error_code(&a.request(send_to(&alice, b"")).await),
        Code::Malformed
    );
    assert_eq!(relay.count("messages"), 0);
}

#[tokio::test]
async fn sealed_send_needs_the_right_access_key() {
    let relay = TestRelay::start().await;
    let bob = Identity::new(1);
    let key = [0x42u8; 16];
    let mut b = relay.device(&bob).await;
    assert!(matches!(
        b.request(In::SetAccessKey(pb::SetAccessKey {
            access_key: key.to_vec()
        }))
        .await,
        Out::Ok(_)
    ));
    assert_eq!(
        error_code(
            &b.request(In::SetAccessKey(pb::SetAccessKey {
                access_key: vec![1; 3]
            }))
            .await
        ),
        Code::Malformed
    );
    assert!(b.backlog_deliveries().await.is_empty());

    let mut anon = relay.client().await;
    assert!(matches!(
        anon.request(In::Anonymous(pb::Anonymous {})).await,
        Out::Ok(_)
    ));
    assert_eq!(
        error_code(&anon.request(sealed_to(&bob, &[0x41; 16], b"sealed")).await),
        Code::Unauthorized
    );
    assert_eq!(
        error_code(&anon.request(sealed_to(&bob, &[0x42; 15], b"sealed")).await),
        Code::Unauthorized
    );
    assert_eq!(relay.count("messages"), 0);
    assert_sent(anon.request(sealed_to(&bob, &key, b"sealed")).await);
    let d = b.delivery().await;
    assert!(d.sealed);
    assert_eq!(d.envelope, b"sealed");

    // A device that never set a key cannot be reached sealed.
    let carol = Identity::new(1);
    relay.device(&carol).await.ping().await;
    assert_eq!(
        error_code(&anon.request(sealed_to(&carol, &[0; 16], b"x")).await),
        Code::Unauthorized
    );
}

#[tokio::test]
async fn quota_and_envelope_size_are_enforced() {
    let relay = TestRelay::start_with(|c| {
        c.mailbox_quota = 3;
        c.max_envelope_bytes = 1000;
    })
    .await;
    let alice = Identity::new(1);
    let bob = Identity::new(1);
    relay.device(&bob).await.ping().await;
    let mut a = relay.device(&alice).await;
    assert_eq!(
        error_code(&a.request(send_to(&bob, &[7u8; 1001])).await),
        Code::TooLarge
    );
    for _ in 0..3 {
        assert_sent(a.request(send_to(&bob, b"fill")).await);
    }
    assert_eq!(
        error_code(&a.request(send_to(&bob, b"over")).await),
        Code::QuotaExceeded
    );
    assert_eq!(relay.count("messages"), 3);
    // Acking frees room.
    let mut b = relay.device(&bob).await;
    let got = b.backlog_deliveries().await;
    b.ack(vec![got[0].id]).await;
    b.ping().await;
    assert_sent(a.request(send_to(&bob, b"room again")).await);
}

#[tokio::test]
async fn expired_messages_are_not_delivered_and_are_swept() {
    let relay = TestRelay::start_with(|c| {
        c.message_ttl_secs = 1;
        c.sweep_interval_secs = 1;
    })
    .await;
    let alice = Identity::new(1);
    let bob = Identity::new(1);
    relay.device(&bob).await.ping().await;
    let mut a = relay.device(&alice).await;
    assert_sent(a.request(send_to(&bob, b"soon gone")).await);
    assert_eq!(relay.count("messages"), 1);
    // Wait until the message is past its expiry and a sweep has run.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while relay.count("messages") > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "sweep never removed the message"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let mut b = relay.client().await;
    assert_eq!(b.auth(&bob).await.queued, 0);
    assert!(b.backlog_deliveries().await.is_empty());
}

#[tokio::test]
async fn window_bounds_in_flight_deliveries() {
    let relay = TestRelay::start_with(|c| c.delivery_window = 4).await;
    let alice = Identity::new(1);
    let bob = Identity::new(1);
    relay.device(&bob).await.ping().await;
    let mut a = relay.device(&alice).await;
    for i in 0..10u8 {
        assert_sent(a.request(send_to(&bob, &[i])).await);
    }
    let mut b = relay.device(&bob).await;
    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(b.delivery().await);
    }
    // Nothing more arrives until acks: a ping's reply comes back with no delivery before it.
    b.ping().await;
    assert!(b
        .backlog
        .iter()
        .all(|f| !matches!(f.body, Some(Out::Deliver(_)))));
    let mut seen = got.iter().map(|d| d.envelope[0]).collect::<Vec<_>>();
    while seen.len() < 10 {
        b.ack(got.drain(..).map(|d| d.id).collect()).await;
        match b.push().await {
            Out::Deliver(d) => {
                seen.push(d.envelope[0]);
                got.push(d);
            }
            Out::QueueEmpty(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seen, (0..10).collect::<Vec<u8>>());
}

#[tokio::test]
async fn live_delivery_unacked_is_redelivered_after_reconnect() {
    let relay = TestRelay::start().await;
    let alice = Identity::new(1);
    let bob = Identity::new(1);
    let mut b = relay.device(&bob).await;
    assert!(b.backlog_deliveries().await.is_empty());
    let mut a = relay.device(&alice).await;
    // Pushed from memory right after the commit; never acknowledged.
    assert_sent(a.request(send_to(&bob, b"live 1")).await);
    assert_sent(a.request(send_to(&bob, b"live 2")).await);
    let first = [b.delivery().await, b.delivery().await];
    assert_eq!(first[1].envelope, b"live 2");
    b.ack(vec![first[1].id]).await;
    b.ping().await;
    drop(b);

    let mut b = relay.device(&bob).await;
    let again = b.backlog_deliveries().await;
    assert_eq!(again.len(), 1);
    assert_eq!(
        (again[0].id, &again[0].envelope[..]),
        (first[0].id, &b"live 1"[..])
    );
    b.ack(vec![again[0].id]).await;
    b.ping().await;
    assert_eq!(relay.count("messages"), 0);
}

#[tokio::test]
async fn live_delivery_past_the_window_falls_back_to_the_store_in_order() {
    let relay = TestRelay::start_with(|c| c.delivery_window = 3).await;
    let alice = Identity::new(1);
    let bob = Identity::new(1);
    let mut b = relay.device(&bob).await;
    assert!(b.backlog_deliveries().await.is_empty());
    let mut a = relay.device(&alice).await;
    let mut seen = Vec::new();
    for round in 0..4u8 {
        // Five sends while three fit in the window.
        for i in 0..5u8 {
            assert_sent(a.request(send_to(&bob, &[round, i])).await);
        }
        let mut got = Vec::new();
        while got.len() < 5 {
            let d = b.delivery().await;
            got.push(d.id);
            seen.push(d.envelope.clone());
            if got.len() % 3 == 0 {
                b.ack(got[got.len() - 3..].to_vec()).await;
            }
        }
        b.ack(got[3..].to_vec()).await;
        b.ping().await;
    }
    let expected: Vec<Vec<u8>> = (0..4u8)
        .flat_map(|r| (0..5u8).map(move |i| vec![r, i]))
        .collect();
    assert_eq!(seen, expected, "each once, in order");
    assert_eq!(relay.count("messages"), 0);
}

#[tokio::test]
async fn restart_loses_nothing_stored() {
    let mut relay = TestRelay::start().await;
    let alice = Identity::new(1);
    let bob = Identity::new(1);
    let key = [9u8; 16];
    let mut b = relay.device(&bob).await;
    assert!(matches!(
        b.request(In::SetAccessKey(pb::SetAccessKey {
            access_key: key.to_vec()
        }))
        .await,
        Out::Ok(_)
    ));
    assert!(matches!(
        b.request(In::UploadPrekeys(bob.prekeys(1, 2))).await,
        Out::Ok(_)
    ));
    drop(b);
    let mut a = relay.device(&alice).await;
    for i in 0..20u8 {
        assert_sent(a.request(send_to(&bob, &[i; 10])).await);
    }
    drop(a);
    let fingerprint = relay.fingerprint();
    let trust_root = relay.client().await.hello.trust_root;
    relay.restart().await;
    assert_eq!(relay.fingerprint(), fingerprint, "certificate kept");
    let mut b = relay.client().await;
    assert_eq!(b.hello.trust_root, trust_root, "trust root kept");
    assert_eq!(b.auth(&bob).await.queued, 20);
    assert_eq!(b.backlog_deliveries().await.len(), 20);
    match b.request(In::PrekeyCount(pb::PreKeyCountRequest {})).await {
        Out::PrekeyCount(c) => assert_eq!((c.one_time_prekeys, c.one_time_kyber_prekeys), (2, 2)),
        other => panic!("{other:?}"),
    }
    let mut anon = relay.client().await;
    anon.request(In::Anonymous(pb::Anonymous {})).await;
    assert_sent(anon.request(sealed_to(&bob, &key, b"after restart")).await);
}

#[tokio::test]
async fn sealed_messages_store_nothing_about_their_sender() {
    let relay = TestRelay::start().await;
    let alice = Identity::new(1);
    let bob = Identity::new(1);
    let key = [3u8; 16];
    let mut b = relay.device(&bob).await;
    b.request(In::SetAccessKey(pb::SetAccessKey {
        access_key: key.to_vec(),
    }))
    .await;
    drop(b);
    // Alice sends sealed on her authenticated connection: the relay knows who she
    // is, and must still store nothing that links her to the messages. (The
    // multi-recipient test repeats this with real libsignal ciphertext.)
    let mut a = relay.device(&alice).await;
    assert_sent(
        a.request(sealed_to(&bob, &key, b"opaque-sealed-ciphertext"))
            .await,
    );
    let mut anon = relay.client().await;
    anon.request(In::Anonymous(pb::Anonymous {})).await;
    assert_sent(
        anon.request(sealed_to(&bob, &key, b"opaque-sealed-ciphertext-2"))
            .await,
    );

    let rows = message_rows(&relay);
    assert_eq!(relay.count("messages"), 2);
    assert!(
        contains(&rows, b"opaque-sealed-ciphertext"),
        "envelope stored as given (sanity check of the grep)"
    );
    assert!(
        contains(&rows, &bob.account),
        "recipient routing is stored (sanity check of the grep)"
    );
    assert!(!contains(&rows, &alice.account), "no sender account id");
    assert!(!contains(&rows, &alice.account[..16]), "no sender ACI");
    assert!(
        !contains(&rows, rankfile_relay::aci_string(&alice.account).as_bytes()),
        "no sender ACI text"
    );
    assert!(
        !contains(&rows, &alice.pair.identity_key().serialize()),
        "no sender key"
    );
}

/// Every column of every message row, concatenated.
fn message_rows(relay: &TestRelay) -> Vec<u8> {
    let db = relay.db();
    let mut stmt = db.prepare("SELECT * FROM messages").expect("prepare");
    let columns = stmt.column_count();
    let mut out = Vec::new();
    let mut rows = stmt.query([]).expect("query");
    while let Some(row) = rows.next().expect("row") {
        for i in 0..columns {
            match row.get_ref(i).expect("column") {
                rusqlite::types::ValueRef::Blob(b) | rusqlite::types::ValueRef::Text(b) => {
                    out.extend_from_slice(b)
                }
                rusqlite::types::ValueRef::Integer(n) => out.extend_from_slice(&n.to_le_bytes()),
                _ => {}
            }
        }
    }
    out
}
