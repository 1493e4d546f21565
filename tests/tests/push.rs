//! A phone woken by push: it registers its push endpoint through its `Client`,
//! goes offline, an organizer's alert is stored for it at high priority, the
//! push service (a recording HTTP server on loopback) receives a wake-up that
//! carries nothing of the alert, and the phone starts again and stores it —
//! once with the alert sent as a raw high-priority frame, once through the
//! core's own committee alert.

#[path = "../../relay/tests/support/mod.rs"]
mod relay_support;

use std::time::Duration;

use rankfile_core::alert::{AlertDraft, AlertKind, AlertScope};
use rankfile_core::committee::CommitteeMeta;
use rankfile_core::transport::Client;
use rankfile_core::{Account, AccountId, DatabaseKey};
use rankfile_proto::v1::{self as pb, client_frame::Body as In, server_frame::Body as Out};
use rankfile_tests::{connected_client, contains, eventually, in_an_hour, relay, wait_connected};
use relay_support::push_server::PushServer;

const ALERT: &str = "Raid at gate 3: everyone to the canteen now";

async fn alerts_from(client: &Client, from: AccountId) -> Vec<String> {
    client
        .with_account(move |a| {
            a.history(&from, None, 100)
                .expect("history")
                .into_iter()
                .filter(|m| !m.outgoing)
                .map(|m| m.body)
                .collect()
        })
        .await
        .expect("account")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_phone_is_woken_by_an_alert_and_then_stores_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let push = PushServer::start().await;
    let mut config = rankfile_relay::Config::local(dir.path().join("relay"));
    // The push service is a plain-http server on loopback.
    config.push_allow_http = true;
    let relay_handle = rankfile_relay::start(config).await.expect("relay starts");

    let phone_path = dir.path().join("phone.db");
    let phone_key = DatabaseKey::generate();
    let mut phone = Account::create(&phone_path, &phone_key).expect("phone");
    let phone_id = phone.id();
    let mut organizer = Account::create(&dir.path().join("organizer.db"), &DatabaseKey::generate())
        .expect("organizer");
    let organizer_id = organizer.id();
    organizer
        .add_contact("phone", &phone.prekey_bundle().expect("bundle"))
        .expect("contact");

    // The phone registers the endpoint its push distributor gave it.
    let client = Client::start(phone, relay::address(&relay_handle)).expect("client");
    wait_connected(&client).await;
    let endpoint = push.url("/up/phone-7Qx");
    client
        .set_push_endpoint(Some(endpoint.clone()))
        .await
        .expect("the relay takes the endpoint");
    assert_eq!(
        client.push_endpoint().await.expect("setting"),
        Some(endpoint.clone())
    );
    // A URL the relay refuses comes back as its typed refusal; the endpoint
    // before it stays, on the phone and at the relay.
    let refused = client
        .set_push_endpoint(Some("https://user:pw@push.example.org/x".into()))
        .await;
    assert!(
        matches!(&refused, Err(rankfile_core::Error::Relay { code, .. }) if code == "MALFORMED"),
        "{refused:?}"
    );
    assert_eq!(
        client.push_endpoint().await.expect("setting"),
        Some(endpoint)
    );
    // The phone goes offline (the app is killed).
    let phone = client.shutdown().await.expect("the account comes back");

    // The organizer's alert, sent at high priority over a raw connection (the
    // core's alert sending is not what this test is about).
    let alert = organizer.send_text(&phone_id, ALERT).expect("encrypt");
    let mut raw =
        relay_support::Client::connect(relay_handle.local_addr(), relay_handle.fingerprint()).await;
    let auth = organizer
        .sign_relay_challenge(&raw.hello.challenge)
        .expect("auth");
    assert!(matches!(raw.request(In::Auth(auth)).await, Out::AuthOk(_)));
    // Give the relay a moment to notice the phone's connection is gone.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let send = if alert.sealed {
        In::SendSealed(pb::SendSealed {
            recipient_account_id: phone_id.as_bytes().to_vec(),
            recipient_device_id: alert.recipient_device,
            access_key: alert.access_key.expect("access key").to_vec(),
            envelope: alert.bytes.clone(),
            priority: pb::Priority::High as i32,
        })
    } else {
        In::Send(pb::SendMessage {
            recipient_account_id: phone_id.as_bytes().to_vec(),
            recipient_device_id: alert.recipient_device,
            envelope: alert.bytes.clone(),
            priority: pb::Priority::High as i32,
        })
    };
    assert!(matches!(raw.request(send).await, Out::SendResult(_)));

    // The push service gets one wake-up, and it says nothing.
    let wakes = push.wait_for("/up/phone-7Qx", 1, 20).await;
    let wake = &wakes[0];
    assert_eq!(wake.method, "POST");
    assert!(wake.body.is_empty());
    assert_eq!(wake.header("urgency"), Some("high"));
    let all = wake.bytes();
    for secret in [
        &alert.bytes[..],
        &alert.envelope_id[..],
        phone_id.as_bytes(),
        organizer_id.as_bytes(),
        phone_id.to_string().as_bytes(),
        organizer_id.to_string().as_bytes(),
        b"gate 3",
    ] {
        assert!(!contains(&all, secret), "the wake-up leaks {secret:?}");
    }

    // Woken, the phone starts its client again, fetches and stores the alert.
    let client = Client::start(phone, relay::address(&relay_handle)).expect("client");
    eventually(30, "the alert is stored on the phone", || async {
        alerts_from(&client, organizer_id).await == [ALERT]
    })
    .await;
    assert_eq!(push.requests().len(), 1, "exactly one wake-up");

    // Cleared: forgotten on the phone and at the relay.
    let relay_db = dir.path().join("relay").join("relay.db");
    let endpoints = || {
        rusqlite::Connection::open(&relay_db)
            .expect("relay db")
            .query_row("SELECT COUNT(*) FROM push_endpoints", [], |r| {
                r.get::<_, i64>(0)
            })
            .expect("count")
    };
    assert_eq!(endpoints(), 1);
    wait_connected(&client).await;
    client.set_push_endpoint(None).await.expect("cleared");
    assert_eq!(client.push_endpoint().await.expect("setting"), None);
    assert_eq!(endpoints(), 0);
    client.shutdown().await.expect("shutdown");
    relay_handle.shutdown().await;
}

async fn online(dir: &std::path::Path, name: &str, relay: &rankfile_relay::RelayHandle) -> Client {
    connected_client(dir, name, relay).await.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committee_alert_wakes_an_offline_member() {
    let dir = tempfile::tempdir().expect("tempdir");
    let push = PushServer::start().await;
    let mut config = rankfile_relay::Config::local(dir.path().join("relay"));
    config.push_allow_http = true;
    let relay_handle = rankfile_relay::start(config).await.expect("relay starts");

    let organizer = online(dir.path(), "organizer", &relay_handle).await;
    let member = online(dir.path(), "member", &relay_handle).await;
    let committee = organizer
        .create_committee(CommitteeMeta {
            name: "Depot 4".into(),
            ..CommitteeMeta::default()
        })
        .await
        .expect("committee");
    let invite = organizer
        .create_invite(committee, in_an_hour(), 1)
        .await
        .expect("invite")
        .to_link();
    member.join(&invite).await.expect("join");
    for c in [&organizer, &member] {
        eventually(30, "both hold the committee", || async {
            c.committee(committee)
                .await
                .is_ok_and(|s| s.members.len() == 2)
        })
        .await;
    }
    member
        .set_push_endpoint(Some(push.url("/up/member")))
        .await
        .expect("endpoint");
    // Nothing woke the member while it was online.
    assert!(push.requests().is_empty());
    let account = member.shutdown().await.expect("the account comes back");
    tokio::time::sleep(Duration::from_millis(200)).await;

    let title = "Walkout at 14:00";
    let alert = organizer
        .send_alert(
            committee,
            AlertDraft {
                kind: AlertKind::ActionCall,
                scope: AlertScope::Local,
                title: title.into(),
                text: "Meet at the north gate".into(),
                place: "North gate".into(),
                starts_at_ms: 0,
                expires_at_ms: in_an_hour(),
                answers_wanted: true,
            },
        )
        .await
        .expect("alert");

    let wakes = push.wait_for("/up/member", 1, 20).await;
    let all = wakes[0].bytes();
    assert!(wakes[0].body.is_empty());
    for secret in [
        title.as_bytes(),
        b"north gate",
        b"Depot 4",
        &alert.0[..],
        &committee.0[..],
        hex::encode(alert.0).as_bytes(),
        hex::encode(committee.0).as_bytes(),
    ] {
        assert!(!contains(&all, secret), "the wake-up leaks {secret:?}");
    }

    let member = Client::start(account, relay::address(&relay_handle)).expect("client");
    eventually(30, "the woken member shows the alert", || async {
        member
            .alerts()
            .await
            .is_ok_and(|a| a.iter().any(|a| a.alert_id == alert && a.title == title))
    })
    .await;
    assert_eq!(push.requests().len(), 1, "exactly one wake-up");
    member.shutdown().await.expect("shutdown");
    organizer.shutdown().await.expect("shutdown");
    relay_handle.shutdown().await;
}
