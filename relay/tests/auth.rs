//! Login and bad input: every refusal has its typed error (and a close where the
//! protocol says so), stores nothing, and leaves other clients served.

mod support;

use prost::Message as _;
use rankfile_proto::v1::{
    self as pb, client_frame::Body as In, error::Code, server_frame::Body as Out,
};
use support::*;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn auth_ok_registers_the_device() {
    let relay = TestRelay::start().await;
    let me = Identity::new(1);
    let mut c = relay.client().await;
    assert_eq!(c.hello.version, 1);
    assert_eq!(c.hello.challenge.len(), 32);
    assert_eq!(c.hello.trust_root.len(), 33);
    let ok = c.auth(&me).await;
    assert_eq!(ok.queued, 0);
    c.ping().await;
    assert_eq!(relay.count("devices"), 1);
    // A second device of the same account, then the first again: still two rows.
    relay.device(&me.other_device(2)).await.ping().await;
    relay.device(&me).await.ping().await;
    assert_eq!(relay.count("devices"), 2);
}

#[tokio::test]
async fn challenges_differ_per_connection() {
    let relay = TestRelay::start().await;
    let a = relay.client().await;
    let b = relay.client().await;
    assert_ne!(a.hello.challenge, b.hello.challenge);
}

/// Sends a bad Auth and expects AUTH_FAILED and a close.
async fn refused_login(relay: &TestRelay, auth: pb::Auth) {
    let mut c = relay.client().await;
    c.send(In::Auth(auth)).await;
    let frames = c.until_closed().await;
    assert_eq!(error_codes(&frames), vec![Code::AuthFailed]);
}

#[tokio::test]
async fn bad_logins_are_refused_and_store_nothing() {
    let relay = TestRelay::start().await;
    let watcher_id = Identity::new(1);
    let mut watcher = relay.device(&watcher_id).await;
    let me = Identity::new(1);
    let other = Identity::new(1);

    // Forged signature: my account and key, signed by another key.
    let mut c = relay.client().await;
    let mut a = me.auth(&c.hello.challenge);
    a.signature = other.auth(&c.hello.challenge).signature;
    c.send(In::Auth(a)).await;
    assert_eq!(error_codes(&c.until_closed().await), vec![Code::AuthFailed]);

    // Wrong account ID: my key, someone else's ID (correctly signed over it).
    let mut c = relay.client().await;
    let mut a = me.auth(&c.hello.challenge);
    a.account_id = other.account.to_vec();
    let msg = rankfile_relay::auth_message(&c.hello.challenge, &other.account, 1);
    a.signature = me
        .pair
        .private_key()
        .calculate_signature(&msg, &mut rand::rng())
        .expect("sign")
        .to_vec();
    c.send(In::Auth(a)).await;
    assert_eq!(error_codes(&c.until_closed().await), vec![Code::AuthFailed]);

    // Replayed challenge: a login signed over an earlier connection's challenge.
    let earlier = relay.client().await;
    let replay = me.auth(&earlier.hello.challenge);
    drop(earlier);
    refused_login(&relay, replay).await;

    // Device ID out of range, truncated key.
    let probe = relay.client().await;
    let mut a = me.auth(&probe.hello.challenge);
    a.device_id = 500;
    refused_login(&relay, a).await;
    let mut a = me.auth(&probe.hello.challenge);
    a.identity_key.truncate(10);
    refused_login(&relay, a).await;

    assert_eq!(relay.count("devices"), 1, "only the watcher is registered");
    watcher.ping().await;
}

#[tokio::test]
async fn unknown_version_is_refused_and_closed() {
    let relay = TestRelay::start().await;
    let mut watcher = relay.device(&Identity::new(1)).await;
    let mut c = relay.client().await;
    let f = pb::ClientFrame {
        version: 2,
        request_id: 9,
        body: Some(In::Ping(pb::Ping {})),
    };
    c.send_message(Message::binary(f.encode_to_vec())).await;
    let frames = c.until_closed().await;
    assert_eq!(error_codes(&frames), vec![Code::UnsupportedVersion]);
    assert_eq!(frames.last().map(|f| f.request_id), Some(9));
    watcher.ping().await;
}

#[tokio::test]
async fn garbage_is_malformed_and_closed() {
    let relay = TestRelay::start().await;
    let mut watcher = relay.device(&Identity::new(1)).await;
    for garbage in [
        vec![0xffu8; 64],
        vec![0x0a, 0x80],
        b"GET / HTTP/1.1".to_vec(),
    ] {
        let mut c = relay.client().await;
        c.send_message(Message::binary(garbage)).await;
        assert_eq!(error_codes(&c.until_closed().await), vec![Code::Malformed]);
    }
    let mut c = relay.client().await;
    c.send_message(Message::text("hello")).await;
    assert_eq!(error_codes(&c.until_closed().await), vec![Code::Malformed]);
    // A frame with no body, even after login.
    let mut c = relay.device(&Identity::new(1)).await;
    let f = pb::ClientFrame {
        version: 1,
        request_id: 3,
        body: None,
    };
    c.send_message(Message::binary(f.encode_to_vec())).await;
    assert_eq!(error_codes(&c.until_closed().await), vec![Code::Malformed]);
    watcher.ping().await;
    assert_eq!(relay.count("devices"), 2);
}

#[tokio::test]
async fn oversize_frame_is_too_large_and_closed() {
    let relay = TestRelay::start().await;
    let mut watcher = relay.device(&Identity::new(1)).await;
    let mut c = relay.client().await;
    c.send_message(Message::binary(vec![
        0u8;
        rankfile_relay::MAX_FRAME_BYTES + 1
    ]))
    .await;
    let frames = c.until_closed().await;
    assert_eq!(error_codes(&frames), vec![Code::TooLarge]);
    watcher.ping().await;
    assert_eq!(relay.count("messages"), 0);
}

#[tokio::test]
async fn frames_before_auth_are_refused_then_closed() {
    let relay = TestRelay::start().await;
    let mut watcher = relay.device(&Identity::new(1)).await;
    let target = Identity::new(1);
    let mut c = relay.client().await;
    let out = c.request(send_to(&target, b"early")).await;
    assert_eq!(error_code(&out), Code::NotAuthenticated);
    let out = c.request(In::Ping(pb::Ping {})).await;
    assert_eq!(error_code(&out), Code::NotAuthenticated);
    c.send(In::PrekeyCount(pb::PreKeyCountRequest {})).await;
    let frames = c.until_closed().await;
    assert_eq!(error_codes(&frames), vec![Code::NotAuthenticated]);
    assert_eq!(relay.count("messages"), 0);
    watcher.ping().await;
}

#[tokio::test]
async fn second_login_is_refused_but_connection_stays() {
    let relay = TestRelay::start().await;
    let me = Identity::new(1);
    let mut c = relay.device(&me).await;
    let a = me.auth(&c.hello.challenge);
    assert_eq!(
        error_code(&c.request(In::Auth(a)).await),
        Code::AlreadyAuthenticated
    );
    assert_eq!(
        error_code(&c.request(In::Anonymous(pb::Anonymous {})).await),
        Code::AlreadyAuthenticated
    );
    c.ping().await;
}

#[tokio::test]
async fn anonymous_may_only_send_sealed_fetch_with_a_key_and_use_attachments() {
    let relay = TestRelay::start().await;
    let target = Identity::new(1);
    relay.device(&target).await.ping().await;
    let mut c = relay.client().await;
    assert!(matches!(
        c.request(In::Anonymous(pb::Anonymous {})).await,
        Out::Ok(_)
    ));
    c.ping().await;
    for body in [
        send_to(&target, b"identified"),
        In::PrekeyCount(pb::PreKeyCountRequest {}),
        In::SenderCertificate(pb::SenderCertificateRequest {}),
        In::SetAccessKey(pb::SetAccessKey {
            access_key: vec![1; 16],
        }),
        In::UploadPrekeys(pb::UploadPreKeys::default()),
    ] {
        assert_eq!(error_code(&c.request(body).await), Code::NotAuthenticated);
    }
    c.ack(vec![1, 2, 3]).await;
    c.ping().await;
    assert_eq!(relay.count("messages"), 0);
}

#[tokio::test]
async fn a_newer_connection_of_the_same_device_displaces_the_older() {
    let relay = TestRelay::start().await;
    let me = Identity::new(1);
    let mut first = relay.device(&me).await;
    let mut second = relay.device(&me).await;
    first.until_closed().await;
    second.ping().await;
}

#[tokio::test]
async fn sender_certificate_chains_to_the_trust_root() {
    use libsignal_protocol::{PublicKey, SenderCertificate, Timestamp};
    let relay = TestRelay::start().await;
    let me = Identity::new(3);
    let mut c = relay.device(&me).await;
    let Out::SenderCertificate(cert) = c
        .request(In::SenderCertificate(pb::SenderCertificateRequest {}))
        .await
    else {
        panic!("expected a certificate")
    };
    let parsed = SenderCertificate::deserialize(&cert.certificate).expect("parses");
    let root = PublicKey::deserialize(&c.hello.trust_root).expect("root");
    let now = rankfile_relay::now_ms();
    assert!(parsed
        .validate(&root, Timestamp::from_epoch_millis(now))
        .expect("validates"));
    assert_eq!(
        parsed.sender_uuid().expect("uuid"),
        rankfile_relay::aci_string(&me.account)
    );
    assert_eq!(u32::from(parsed.sender_device_id().expect("device")), 3);
    assert_eq!(
        parsed.key().expect("key"),
        *me.pair.identity_key().public_key()
    );
    assert!(
        cert.expires_at_ms > now
            && cert.expires_at_ms <= now + rankfile_relay::SENDER_CERTIFICATE_LIFETIME_MS + 1000
    );
}
