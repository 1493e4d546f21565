//! Abuse limits, each played as the attack it stops: identified-send floods,
//! strangers filling a mailbox, minting accounts, draining one-time prekeys,
//! idle and piled-up anonymous connections, anonymous connections taking the
//! slots logged-in devices need.

mod support;

use rankfile_proto::v1::{
    self as pb, client_frame::Body as In, error::Code, server_frame::Body as Out,
};
use support::*;

async fn anonymous(relay: &TestRelay) -> (Client, Out) {
    let mut c = relay.client().await;
    let out = c.request(In::Anonymous(pb::Anonymous {})).await;
    (c, out)
}

#[tokio::test]
async fn identified_sends_are_rate_limited_per_sender() {
    let relay = TestRelay::start_with(|c| {
        c.identified_send_burst = 3;
        c.identified_sends_per_minute = 1;
    })
    .await;
    let (alice, carol, bob) = (Identity::new(1), Identity::new(1), Identity::new(1));
    relay.device(&bob).await.ping().await;
    let mut a = relay.device(&alice).await;
    for i in 0..3u8 {
        assert_sent(a.request(send_to(&bob, &[i])).await);
    }
    let out = a.request(send_to(&bob, b"flood")).await;
    assert_eq!(error_code(&out), Code::RateLimited);
    let Out::Error(e) = out else { unreachable!() };
    assert!(e.retry_after_ms > 0);
    // Limited per sender: another device still sends, and the refused one's
    // connection keeps working.
    let mut c = relay.device(&carol).await;
    assert_sent(c.request(send_to(&bob, b"other sender")).await);
    a.ping().await;
    assert_eq!(relay.count("messages"), 4);
}

#[tokio::test]
async fn strangers_cannot_fill_a_mailbox_past_their_quota() {
    let relay = TestRelay::start_with(|c| {
        c.unaccepted_quota = 3;
        c.mailbox_quota = 10;
    })
    .await;
    let (stranger, friend, bob) = (Identity::new(1), Identity::new(1), Identity::new(1));
    let mut b = relay.device(&bob).await;
    let key = [9u8; 16];
    assert!(matches!(
        b.request(In::SetAccessKey(pb::SetAccessKey {
            access_key: key.to_vec()
        }))
        .await,
        Out::Ok(_)
    ));
    drop(b);
    let mut s = relay.device(&stranger).await;
    for i in 0..3u8 {
        assert_sent(s.request(send_to(&bob, &[i])).await);
    }
    assert_eq!(
        error_code(&s.request(send_to(&bob, b"more")).await),
        Code::QuotaExceeded
    );
    // Another unaccepted sender shares the same small quota.
    let mut f = relay.device(&friend).await;
    assert_eq!(
        error_code(&f.request(send_to(&bob, b"also identified")).await),
        Code::QuotaExceeded
    );
    // Sealed mail, from someone given the access key, still has room.
    for i in 0..5u8 {
        assert_sent(f.request(sealed_to(&bob, &key, &[b's', i])).await);
    }
    assert_eq!(relay.count("messages"), 8);
}

#[tokio::test]
async fn first_logins_are_rate_limited_per_address() {
    let relay = TestRelay::start_with(|c| {
        c.registration_burst = 2;
        c.registrations_per_hour = 1;
    })
    .await;
    let first = Identity::new(1);
    relay.device(&first).await.ping().await;
    relay.device(&Identity::new(1)).await.ping().await;
    let mut c = relay.client().await;
    let auth = Identity::new(1).auth(&c.hello.challenge);
    c.send(In::Auth(auth)).await;
    assert_eq!(
        error_codes(&c.until_closed().await),
        vec![Code::RateLimited]
    );
    assert_eq!(relay.count("devices"), 2);
    // A device already registered logs in again freely.
    relay.device(&first).await.ping().await;
}

#[tokio::test]
async fn one_time_prekeys_of_a_target_cannot_be_drained() {
    let relay = TestRelay::start_with(|c| {
        c.one_time_prekey_burst = 2;
        c.one_time_prekeys_per_hour = 1;
    })
    .await;
    let bob = Identity::new(1);
    let mut b = relay.device(&bob).await;
    assert!(matches!(
        b.request(In::UploadPrekeys(bob.prekeys(1, 5))).await,
        Out::Ok(_)
    ));
    // Fetchers from several accounts (each within its own fetch limit).
    let mut with_one_time = 0;
    for _ in 0..4 {
        let mut f = relay.device(&Identity::new(1)).await;
        let Out::Bundle(bundle) = f
            .request(In::FetchBundle(pb::FetchBundle {
                account_id: bob.account.to_vec(),
                device_id: 1,
                ..Default::default()
            }))
            .await
        else {
            panic!("expected a bundle")
        };
        // Every bundle still opens a session: signed and Kyber keys present.
        assert!(!bundle.signed_prekey.is_empty() && !bundle.kyber_prekey.is_empty());
        with_one_time += usize::from(bundle.one_time_prekey_id.is_some());
    }
    assert_eq!(with_one_time, 2);
    let Out::PrekeyCount(left) = b.request(In::PrekeyCount(pb::PreKeyCountRequest {})).await else {
        panic!("expected counts")
    };
    assert_eq!((left.one_time_prekeys, left.one_time_kyber_prekeys), (3, 3));
}

#[tokio::test]
async fn a_silent_anonymous_connection_is_closed() {
    let relay = TestRelay::start_with(|c| c.anonymous_idle_secs = 1).await;
    let (mut c, out) = anonymous(&relay).await;
    assert!(matches!(out, Out::Ok(_)));
    // The relay hangs up (the client would otherwise wait until its own
    // frame timeout, and fail).
    c.until_closed().await;
    // A logged-in device is not held to that limit.
    let mut d = relay.device(&Identity::new(1)).await;
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    d.ping().await;
}

#[tokio::test]
async fn anonymous_connections_are_capped_per_address() {
    let relay = TestRelay::start_with(|c| c.anonymous_per_address = 2).await;
    let (_one, out1) = anonymous(&relay).await;
    let (two, out2) = anonymous(&relay).await;
    assert!(matches!((out1, out2), (Out::Ok(_), Out::Ok(_))));
    let (mut three, out3) = anonymous(&relay).await;
    assert_eq!(error_code(&out3), Code::Busy);
    three.until_closed().await;
    // Once one goes, its place is free again.
    two.close().await;
    let (_again, out) = anonymous(&relay).await;
    assert!(matches!(out, Out::Ok(_)));
}

#[tokio::test]
async fn anonymous_connections_leave_the_last_slots_to_devices() {
    let relay = TestRelay::start_with(|c| {
        c.max_connections = 4;
        c.reserved_device_slots = 2;
    })
    .await;
    let (_one, out1) = anonymous(&relay).await;
    let (_two, out2) = anonymous(&relay).await;
    assert!(matches!((out1, out2), (Out::Ok(_), Out::Ok(_))));
    let (mut three, out3) = anonymous(&relay).await;
    assert_eq!(error_code(&out3), Code::Busy);
    three.until_closed().await;
    // The two slots left are there for logged-in devices.
    let bob = Identity::new(1);
    let mut b = relay.device(&bob).await;
    let mut c = relay.device(&Identity::new(1)).await;
    b.ping().await;
    c.ping().await;
}
