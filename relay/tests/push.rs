//! Push wake-ups against a real HTTP server on loopback: an offline device is
//! woken once, with nothing of the message, for high-priority mail only; never
//! while connected, but as it leaves with an alert unacknowledged; bursts coalesce; gone endpoints are forgotten; transient
//! failures are retried; a hanging endpoint holds up no one else; endpoints
//! survive a restart; bad endpoints are typed refusals.

mod support;

use std::time::{Duration, Instant};

use rankfile_proto::v1::{client_frame::Body as In, error::Code, server_frame::Body as Out};
use rankfile_relay::PushStats;
use support::push_server::{Answer, PushServer, Recorded};
use support::*;

/// A relay that may post to plain-http loopback endpoints.
async fn relay_for_tests(tweak: impl FnOnce(&mut rankfile_relay::Config)) -> TestRelay {
    TestRelay::start_with(|c| {
        c.push_allow_http = true;
        tweak(c);
    })
    .await
}

fn stats(relay: &TestRelay) -> PushStats {
    relay.handle.as_ref().expect("running").push_stats()
}

/// Registers `who`'s endpoint, then takes it offline.
async fn offline_with_endpoint(relay: &TestRelay, who: &Identity, url: &str) {
    let mut c = relay.device(who).await;
    assert!(matches!(c.set_push_endpoint(url).await, Out::Ok(_)));
    c.close().await;
}

/// A relay with its push server, and two connected devices: the sender's,
/// and `bob`'s, with its endpoint registered and its (empty) backlog read.
async fn bob_online(
    tweak: impl FnOnce(&mut rankfile_relay::Config),
) -> (PushServer, TestRelay, Identity, Client, Client) {
    let server = PushServer::start().await;
    let relay = relay_for_tests(tweak).await;
    let bob = Identity::new(1);
    let a = relay.device(&Identity::new(1)).await;
    let mut b = relay.device(&bob).await;
    assert!(matches!(
        b.set_push_endpoint(&server.url("/up/bob")).await,
        Out::Ok(_)
    ));
    assert!(b.backlog_deliveries().await.is_empty());
    (server, relay, bob, a, b)
}

async fn eventually(secs: u64, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What every wake-up must look like: a POST to the registered path with an
/// empty body and the RFC 8030 headers, nothing else.
fn assert_content_free(r: &Recorded, path: &str, server: &PushServer) {
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, path);
    assert!(r.body.is_empty(), "body {:?}", r.body);
    let mut headers = r.headers.clone();
    headers.sort();
    let expected: Vec<(String, String)> = [
        ("content-length", "0".to_owned()),
        ("host", server.addr.to_string()),
        ("topic", "wake".to_owned()),
        ("ttl", "86400".to_owned()),
        ("urgency", "high".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(headers, expected);
}

#[tokio::test]
async fn an_offline_device_gets_one_content_free_wake_up_then_fetches() {
    let server = PushServer::start().await;
    let relay = relay_for_tests(|_| {}).await;
    let alice = Identity::new(1);
    let bob = Identity::new(1);
    offline_with_endpoint(&relay, &bob, &server.url("/up/bob")).await;
    assert_eq!(relay.count("push_endpoints"), 1);

    let envelope = b"ALERT-ciphertext-raid-at-gate-3";
    let mut a = relay.device(&alice).await;
    assert_sent(a.request(high_to(&bob, envelope)).await);
    let wakes = server.wait_for("/up/bob", 1, 10).await;
    assert_eq!(wakes.len(), 1);
    let wake = &wakes[0];
    assert_content_free(wake, "/up/bob", &server);
    let all = wake.bytes();
    for secret in [
        &envelope[..],
        &alice.account[..],
        &bob.account[..],
        hex::encode(alice.account).as_bytes(),
        hex::encode(bob.account).as_bytes(),
        rankfile_relay::aci_string(&alice.account).as_bytes(),
    ] {
        assert!(!contains(&all, secret), "the wake-up leaks {secret:?}");
    }
    eventually(10, "the wake-up is counted as sent", || {
        stats(&relay).sent == 1
    })
    .await;

    // A second alert for another device: its wake-up is the same bytes but for
    // the path, so nothing in it varies with the message, sender or time.
    let carol = Identity::new(1);
    offline_with_endpoint(&relay, &carol, &server.url("/up/bob-too")).await;
    assert_sent(a.request(high_to(&carol, b"another alert")).await);
    let other = server.wait_for("/up/bob-too", 1, 10).await;
    assert_eq!(other[0].headers, wake.headers);
    assert_eq!(other[0].body, wake.body);

    // The phone wakes, connects and fetches the alert.
    let mut b = relay.device(&bob).await;
    let got = b.backlog_deliveries().await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].envelope, envelope);
    b.ack(vec![got[0].id]).await;
    b.ping().await;
    assert_eq!(
        server.requests_to("/up/bob").len(),
        1,
        "exactly one wake-up"
    );
    let s = stats(&relay);
    assert_eq!((s.queued, s.sent, s.failed, s.dropped), (2, 2, 0, 0));
}

#[tokio::test]
async fn normal_messages_never_wake() {
    let server = PushServer::start().await;
    let relay = relay_for_tests(|_| {}).await;
    let alice = Identity::new(1);
    let bob = Identity::new(1);
    offline_with_endpoint(&relay, &bob, &server.url("/up/bob")).await;
    let mut a = relay.device(&alice).await;
    for i in 0..5u8 {
        assert_sent(a.request(send_to(&bob, &[b'c', i])).await);
    }
    // The decision is taken right after the commit, before the send is
    // answered: nothing was queued.
    assert_eq!(stats(&relay).queued, 0);
    // A high-priority message to the same device does wake it, and only once.
    assert_sent(a.request(high_to(&bob, b"alert")).await);
    server.wait_for("/up/bob", 1, 10).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(server.requests().len(), 1);
    assert_eq!(stats(&relay).queued, 1);
}

#[tokio::test]
async fn a_connected_device_gets_live_delivery_not_a_wake_up() {
    let server = PushServer::start().await;
    let relay = relay_for_tests(|_| {}).await;
    let alice = Identity::new(1);
    let bob = Identity::new(1);
    let mut b = relay.device(&bob).await;
    assert!(matches!(
        b.set_push_endpoint(&server.url("/up/bob")).await,
        Out::Ok(_)
    ));
    assert!(b.backlog_deliveries().await.is_empty());
    let mut a = relay.device(&alice).await;
    assert_sent(a.request(high_to(&bob, b"alert")).await);
    assert_eq!(b.delivery().await.envelope, b"alert");
    assert_eq!(stats(&relay).queued, 0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(server.requests().is_empty());
}

/// An alert pushed into a connection that then ends without acknowledging it
/// (the phone's socket died with it in flight, or the app went) wakes the
/// device as it leaves; acknowledged alerts and normal mail do not.
#[tokio::test]
async fn a_device_that_leaves_with_an_alert_unacknowledged_is_woken() {
    // No coalescing: every wake-up decision shows in the count.
    let (server, relay, bob, mut a, mut b) = bob_online(|c| c.push_coalesce_ms = 0).await;

    // An acknowledged alert, and chat left unacknowledged: no wake-up.
    assert_sent(a.request(high_to(&bob, b"first alert")).await);
    let first = b.delivery().await;
    b.ack(vec![first.id]).await;
    assert_sent(a.request(send_to(&bob, b"chat")).await);
    assert_eq!(b.delivery().await.envelope, b"chat");
    b.ping().await;
    b.close().await;

    // Back, it takes the chat again; then an alert is pushed and the
    // connection ends without a word.
    let mut b = relay.device(&bob).await;
    let chat = b.backlog_deliveries().await;
    assert_eq!(chat.len(), 1);
    b.ack(vec![chat[0].id]).await;
    assert_sent(a.request(high_to(&bob, b"second alert")).await);
    assert_eq!(b.delivery().await.envelope, b"second alert");
    drop(b);
    let wakes = server.wait_for("/up/bob", 1, 10).await;
    assert_content_free(&wakes[0], "/up/bob", &server);

    // Woken, it fetches the alert, which waited in its mailbox.
    let mut b = relay.device(&bob).await;
    let got = b.backlog_deliveries().await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].envelope, b"second alert");
    b.ack(vec![got[0].id]).await;
    b.ping().await;
    b.close().await;

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(server.requests_to("/up/bob").len(), 1, "one wake-up in all");
    assert_eq!(stats(&relay).queued, 1);
}

/// An alert that never left the relay because the connection's window was
/// full (the phone fell behind, then went) wakes the device as it leaves.
#[tokio::test]
async fn a_device_that_leaves_before_an_alert_was_pushed_is_woken() {
    let (server, relay, bob, mut a, mut b) = bob_online(|c| {
        c.push_coalesce_ms = 0;
        c.delivery_window = 1;
    })
    .await;
    assert_sent(a.request(send_to(&bob, b"chat")).await);
    assert_eq!(b.delivery().await.envelope, b"chat");
    // The window is full: the alert stays in the store, unpushed.
    assert_sent(a.request(high_to(&bob, b"alert")).await);
    b.ping().await;
    assert_eq!(stats(&relay).queued, 0);
    b.close().await;
    let wakes = server.wait_for("/up/bob", 1, 10).await;
    assert_content_free(&wakes[0], "/up/bob", &server);
    // Back, it gets the alert first (by priority), then the chat.
    let mut b = relay.device(&bob).await;
    assert_eq!(b.delivery().await.envelope, b"alert");
}

/// A phone whose network went with an alert in flight says nothing more: the
/// relay probes it once the alert has waited `alert_ack_secs`, hangs up when
/// the probe goes unanswered as long again, and wakes the device by push, in
/// seconds rather than at the keepalive. A phone that answers the probe keeps
/// its connection, however long it takes to acknowledge.
#[tokio::test]
async fn a_silent_connection_with_an_alert_in_flight_is_probed_and_the_device_woken() {
    let (server, relay, bob, mut a, mut b) = bob_online(|c| {
        c.push_coalesce_ms = 0;
        c.alert_ack_secs = 1;
        c.keepalive_secs = 600;
    })
    .await;

    // Alive but slow: it sends nothing, yet its socket answers the probe.
    assert_sent(a.request(high_to(&bob, b"first alert")).await);
    let first = b.delivery().await;
    let listened = tokio::time::timeout(Duration::from_secs(4), b.recv()).await;
    assert!(listened.is_err(), "the connection stays open: {listened:?}");
    assert_eq!(stats(&relay).queued, 0);
    b.ack(vec![first.id]).await;
    b.ping().await;

    // Gone silent: nothing read, nothing answered, the socket still open.
    assert_sent(a.request(high_to(&bob, b"second alert")).await);
    assert_eq!(b.delivery().await.envelope, b"second alert");
    let wakes = server.wait_for("/up/bob", 1, 10).await;
    assert_content_free(&wakes[0], "/up/bob", &server);
    assert!(b.until_closed().await.is_empty(), "the relay hung up");

    // Woken, it fetches the alert.
    let mut b = relay.device(&bob).await;
    assert_eq!(b.delivery().await.envelope, b"second alert");
}

#[tokio::test]
async fn a_burst_of_alerts_makes_one_wake_up_until_the_device_connects() {
    let server = PushServer::start().await;
    let relay = relay_for_tests(|c| c.push_coalesce_ms = 60_000).await;
    let alice = Identity::new(1);
    let bob = Identity::new(1);
    offline_with_endpoint(&relay, &bob, &server.url("/up/bob")).await;
    let mut a = relay.device(&alice).await;
    for i in 0..5u8 {
        assert_sent(a.request(high_to(&bob, &[b'a', i])).await);
    }
    server.wait_for("/up/bob", 1, 10).await;
    let s = stats(&relay);
    assert_eq!((s.queued, s.coalesced), (1, 4));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(server.requests_to("/up/bob").len(), 1);

    // Connecting ends the window: the next alert while offline wakes again.
    let mut b = relay.device(&bob).await;
    assert_eq!(b.backlog_deliveries().await.len(), 5);
    b.close().await;
    assert_sent(a.request(high_to(&bob, b"later")).await);
    server.wait_for("/up/bob", 2, 10).await;
}

#[tokio::test]
async fn a_gone_endpoint_is_forgotten() {
    let server = PushServer::start().await;
    let relay = relay_for_tests(|_| {}).await;
    server.answer("/up/gone", Answer::Status(410));
    server.answer("/up/missing", Answer::Status(404));
    let alice = Identity::new(1);
    let bob = Identity::new(1);
    let carol = Identity::new(1);
    offline_with_endpoint(&relay, &bob, &server.url("/up/gone")).await;
    offline_with_endpoint(&relay, &carol, &server.url("/up/missing")).await;
    assert_eq!(relay.count("push_endpoints"), 2);
    let mut a = relay.device(&alice).await;
    assert_sent(a.request(high_to(&bob, b"alert")).await);
    assert_sent(a.request(high_to(&carol, b"alert")).await);
    eventually(10, "both endpoints are forgotten", || {
        stats(&relay).gone == 2
    })
    .await;
    assert_eq!(relay.count("push_endpoints"), 0);
    assert_eq!(server.requests().len(), 2, "a gone endpoint is not retried");
    // The messages themselves are untouched.
    assert_eq!(relay.count("messages"), 2);
}

#[tokio::test]
async fn transient_failures_are_retried_with_backoff() {
    let server = PushServer::start().await;
    let relay = relay_for_tests(|_| {}).await;
    server.answer("/up/flaky", Answer::Sequence([503, 500, 201].into()));
    server.answer("/up/refusing", Answer::Status(400));
    let alice = Identity::new(1);
    let bob = Identity::new(1);
    let carol = Identity::new(1);
    offline_with_endpoint(&relay, &bob, &server.url("/up/flaky")).await;
    offline_with_endpoint(&relay, &carol, &server.url("/up/refusing")).await;
    let mut a = relay.device(&alice).await;
    assert_sent(a.request(high_to(&bob, b"alert")).await);
    assert_sent(a.request(high_to(&carol, b"alert")).await);
    server.wait_for("/up/flaky", 3, 20).await;
    eventually(10, "the retried wake-up is sent", || {
        stats(&relay).sent == 1
    })
    .await;
    let s = stats(&relay);
    assert_eq!((s.sent, s.failed, s.gone), (1, 1, 0));
    // A 400 is not retried, and does not cost the device its endpoint.
    assert_eq!(server.requests_to("/up/refusing").len(), 1);
    assert_eq!(relay.count("push_endpoints"), 2);
}

#[tokio::test]
async fn a_hanging_endpoint_delays_no_one_else() {
    let server = PushServer::start().await;
    let relay = relay_for_tests(|c| {
        c.push_timeout_secs = 1;
        c.push_concurrency = 2;
        // What is measured is the hold-up, not the deliberate spread.
        c.push_spread_ms = 0;
    })
    .await;
    server.answer("/up/hang", Answer::Hang);
    let alice = Identity::new(1);
    let hanging = Identity::new(1);
    let carol = Identity::new(1);
    let bob = Identity::new(1);
    offline_with_endpoint(&relay, &hanging, &server.url("/up/hang")).await;
    offline_with_endpoint(&relay, &carol, &server.url("/up/carol")).await;
    let mut b = relay.device(&bob).await;
    assert!(b.backlog_deliveries().await.is_empty());

    let mut a = relay.device(&alice).await;
    assert_sent(a.request(high_to(&hanging, b"alert")).await);
    server.wait_for("/up/hang", 1, 10).await;

    // While that request hangs: sends are answered at once, a connected
    // device gets its mail live, and another device's wake-up goes out.
    let started = Instant::now();
    assert_sent(a.request(high_to(&carol, b"alert")).await);
    assert_sent(a.request(high_to(&bob, b"live")).await);
    assert_eq!(b.delivery().await.envelope, b"live");
    server.wait_for("/up/carol", 1, 10).await;
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "held up for {:?}",
        started.elapsed()
    );

    // The hanging one times out and is tried again.
    server.wait_for("/up/hang", 2, 10).await;
    assert_eq!(stats(&relay).sent, 1);
}

#[tokio::test]
async fn an_endpoint_survives_a_relay_restart_and_can_be_cleared() {
    let server = PushServer::start().await;
    let mut relay = relay_for_tests(|_| {}).await;
    let alice = Identity::new(1);
    let bob = Identity::new(1);
    offline_with_endpoint(&relay, &bob, &server.url("/up/bob")).await;
    relay.restart().await;
    let mut a = relay.device(&alice).await;
    assert_sent(a.request(high_to(&bob, b"alert")).await);
    server.wait_for("/up/bob", 1, 10).await;

    // Cleared: the next alert (after the device was online) wakes nothing.
    let mut b = relay.device(&bob).await;
    assert!(matches!(b.set_push_endpoint("").await, Out::Ok(_)));
    assert_eq!(relay.count("push_endpoints"), 0);
    b.close().await;
    assert_sent(a.request(high_to(&bob, b"alert 2")).await);
    eventually(10, "the wake-up for the cleared device is dropped", || {
        stats(&relay).queued == 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(server.requests().len(), 1);
    assert_eq!(stats(&relay).failed, 0);
}

#[tokio::test]
async fn bad_endpoints_are_typed_refusals_and_change_nothing() {
    // A relay with production settings: https to public hosts only.
    let relay = TestRelay::start().await;
    let bob = Identity::new(1);
    let mut b = relay.device(&bob).await;
    let too_long = format!(
        "https://push.example.org/{}",
        "a".repeat(rankfile_relay::MAX_PUSH_URL_LEN)
    );
    for (url, code) in [
        ("http://push.example.org/up", Code::Malformed),
        ("https://user:secret@push.example.org/up", Code::Malformed),
        ("https://push.example.org/up#x", Code::Malformed),
        ("https://127.0.0.1:8443/up", Code::Malformed),
        ("https://10.0.0.8/up", Code::Malformed),
        ("https://localhost/up", Code::Malformed),
        ("not a url", Code::Malformed),
        ("mailto:someone@example.org", Code::Malformed),
        (too_long.as_str(), Code::TooLarge),
    ] {
        assert_eq!(error_code(&b.set_push_endpoint(url).await), code, "{url}");
    }
    assert_eq!(relay.count("push_endpoints"), 0);
    b.ping().await;

    let good = "https://push.example.org/up/AbCdEf?token=1";
    assert!(matches!(b.set_push_endpoint(good).await, Out::Ok(_)));
    let stored: String = relay
        .db()
        .query_row("SELECT url FROM push_endpoints", [], |r| r.get(0))
        .expect("stored");
    assert_eq!(stored, good);

    // Only a logged-in device registers an endpoint, and only its own.
    let mut anon = relay.client().await;
    assert!(matches!(
        anon.request(In::Anonymous(Default::default())).await,
        Out::Ok(_)
    ));
    assert_eq!(
        error_code(&anon.set_push_endpoint(good).await),
        Code::NotAuthenticated
    );
}
