//! Decoy wake-ups: with decoys on, offline devices with an endpoint are woken
//! with no mail for them, by the same content-free POST as a real wake-up;
//! a connected device gets none; with decoys off (the tests' default) nothing
//! is sent without an alert.

mod support;

use std::time::Duration;

use rankfile_proto::v1::server_frame::Body as Out;
use support::push_server::PushServer;
use support::*;

#[tokio::test]
async fn decoys_wake_offline_devices_like_real_wake_ups() {
    let server = PushServer::start().await;
    let relay = TestRelay::start_with(|c| {
        c.push_allow_http = true;
        // Many a second, so the test sees some soon.
        c.push_decoys_per_day = 86_400 * 20;
        c.push_coalesce_ms = 50;
        c.push_spread_ms = 10;
    })
    .await;
    let (away, here) = (Identity::new(1), Identity::new(1));
    let mut a = relay.device(&away).await;
    assert!(matches!(
        a.set_push_endpoint(&server.url("/up/away")).await,
        Out::Ok(_)
    ));
    a.close().await;
    let mut h = relay.device(&here).await;
    assert!(matches!(
        h.set_push_endpoint(&server.url("/up/here")).await,
        Out::Ok(_)
    ));

    let woken = server.wait_for("/up/away", 3, 30).await;
    assert!(woken.len() >= 3);
    for r in &woken {
        assert_eq!(r.method, "POST");
        assert!(r.body.is_empty());
        assert_eq!(r.header("urgency"), Some("high"));
    }
    assert!(
        server.requests_to("/up/here").is_empty(),
        "connected device woken"
    );
    let stats = relay.handle.as_ref().expect("running").push_stats();
    assert!(stats.decoys >= 3, "{stats:?}");
    assert_eq!(relay.count("messages"), 0, "decoys store nothing");
    h.ping().await;
}

#[tokio::test]
async fn without_decoys_no_alert_wakes_no_one() {
    let server = PushServer::start().await;
    let relay = TestRelay::start_with(|c| c.push_allow_http = true).await;
    let away = Identity::new(1);
    let mut a = relay.device(&away).await;
    assert!(matches!(
        a.set_push_endpoint(&server.url("/up/away")).await,
        Out::Ok(_)
    ));
    a.close().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(server.requests().is_empty());
    let stats = relay.handle.as_ref().expect("running").push_stats();
    assert_eq!(stats.decoys, 0);
}
