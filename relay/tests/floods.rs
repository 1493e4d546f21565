//! Floods and stalls on the relay's socket (issue 19, "Bad input at the
//! edges"; the rest of the catalogue is `bad_frames.rs`): identified sends and
//! bundle fetches past their rate limits, thousands of pipelined pings, a
//! WebSocket ping flood, and a device that stops reading its socket. Each is
//! refused or cut off by its limit while a well-behaved pair of devices keeps
//! talking, and the relay's database is what it was.

mod support;

use rankfile_proto::v1::{
    self as pb, client_frame::Body as In, error::Code, server_frame::Body as Out,
};
use support::watch::{dump, Watchers, KEY};
use support::*;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floods_are_refused_past_their_limits_and_others_are_served() {
    let relay = TestRelay::start_with(|c| {
        c.identified_send_burst = 5;
        c.identified_sends_per_minute = 1;
        c.fetch_burst = 5;
        c.fetch_per_minute = 1;
    })
    .await;
    let mut watchers = Watchers::start(&relay).await;
    let flooder = Identity::new(1);
    let mut c = relay.device(&flooder).await;
    let nobody = Identity::new(1);
    let before = dump(&relay);

    // Identified sends, pipelined without waiting: the first `burst` reach
    // the (unknown) recipient check, the rest are RATE_LIMITED with a time to
    // come back; bundle fetches likewise.
    for (kind, body) in [
        ("send", send_to(&nobody, b"flood")),
        (
            "fetch",
            In::FetchBundle(pb::FetchBundle {
                account_id: nobody.account.to_vec(),
                device_id: 1,
                ..Default::default()
            }),
        ),
    ] {
        let mut ids = Vec::new();
        for _ in 0..200 {
            ids.push(c.send(body.clone()).await);
        }
        let mut codes = Vec::new();
        for id in ids {
            let out = c.reply_to(id).await;
            if let Out::Error(e) = &out {
                if e.code == Code::RateLimited as i32 {
                    assert!(e.retry_after_ms > 0, "{kind}: no time to come back");
                }
            }
            codes.push(error_code(&out));
        }
        assert_eq!(codes[..5], [Code::NotFound; 5], "{kind}");
        assert!(
            codes[5..].iter().all(|c| *c == Code::RateLimited),
            "{kind}: {codes:?}"
        );
        c.ping().await;
        watchers.still_served().await;
    }
    assert_eq!(before, dump(&relay));

    // Protocol pings, thousands pipelined from another task while the
    // watchers talk: each answered in order, and the watchers not starved.
    let mut pinger = relay.device(&Identity::new(1)).await;
    let flood = tokio::spawn(async move {
        let mut ids = Vec::new();
        for _ in 0..5000 {
            ids.push(pinger.send(In::Ping(pb::Ping {})).await);
        }
        for id in ids {
            assert!(matches!(pinger.reply_to(id).await, Out::Pong(_)));
        }
        pinger
    });
    for _ in 0..5 {
        watchers.still_served().await;
    }
    flood.await.expect("the flood's client").ping().await;
    watchers.still_served().await;
}

#[tokio::test]
async fn a_websocket_ping_flood_is_answered_without_growing() {
    let relay = TestRelay::start().await;
    let mut watchers = Watchers::start(&relay).await;
    let me = Identity::new(1);
    let mut c = relay.device(&me).await;
    let before = dump(&relay);
    // Ten thousand pings of the largest control payload, none of whose
    // pongs is read while they go out.
    for i in 0..10_000u32 {
        let mut payload = vec![0u8; 125];
        payload[..4].copy_from_slice(&i.to_be_bytes());
        c.send_message(Message::Ping(payload.into())).await;
        if i % 2000 == 0 {
            watchers.still_served().await;
        }
    }
    // The connection still answers requests, and the relay stayed the same.
    c.ping().await;
    assert_eq!(before, dump(&relay));
    watchers.still_served().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_that_stops_reading_is_cut_off_and_loses_nothing() {
    let relay = TestRelay::start_with(|c| c.write_timeout_secs = 2).await;
    let mut watchers = Watchers::start(&relay).await;
    let stalled = Identity::new(1);
    let mut s = relay.device(&stalled).await;
    let set = s
        .request(In::SetAccessKey(pb::SetAccessKey {
            access_key: KEY.to_vec(),
        }))
        .await;
    assert!(matches!(set, Out::Ok(_)));
    s.close().await;
    // More mail than the socket buffers of both ends and the relay's write
    // buffer hold together.
    const MESSAGES: usize = 240;
    let envelope = vec![0x5a; 120 * 1024];
    for _ in 0..MESSAGES {
        assert_sent(
            watchers
                .alice
                .request(sealed_to(&stalled, &KEY, &envelope))
                .await,
        );
    }
    let before = dump(&relay);

    // Logs in, and then reads nothing.
    let mut s = relay.client().await;
    let login = s.send(In::Auth(stalled.auth(&s.hello.challenge))).await;
    for _ in 0..3 {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        watchers.still_served().await;
    }
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    // By now the relay has given up on it: what the socket still holds ends
    // in a close, short of the whole mailbox (a relay still waiting would
    // send it all and then a QueueEmpty, and `until_closed` would time out).
    let frames = s.until_closed().await;
    assert_eq!(frames.first().map(|f| f.request_id), Some(login));
    let delivered = frames
        .iter()
        .filter(|f| matches!(f.body, Some(Out::Deliver(_))))
        .count();
    assert!(delivered < MESSAGES, "{delivered} delivered");
    // Nothing was acknowledged, so nothing is gone: the device gets it all
    // when it comes back and reads.
    assert_eq!(before, dump(&relay));
    let mut s = relay.device(&stalled).await;
    let mut got = 0;
    while got < MESSAGES {
        let d = s.delivery().await;
        assert_eq!(d.envelope.len(), envelope.len());
        s.ack(vec![d.id]).await;
        got += 1;
    }
    s.ping().await;
    assert_eq!(relay.count("messages"), 0);
    watchers.still_served().await;
}
