//! The relay socket's catalogue of bad input (issue 19, "Bad input at the
//! edges"), played over raw WebSocket connections on the relay's real TLS.
//!
//! Each case is one kind of bad client: garbage, text and undecodable frames,
//! truncated frames, an oversize frame, fields out of range, every request
//! before login (floods, a ping flood and a connection that stops reading are
//! in `floods.rs`). Each gets its typed refusal (`Error` frame with its code; a
//! close where the protocol ends the connection: the relay sends the error
//! frame, then closes the socket), never a panic. After each case the relay's
//! database, dumped row by row, is what it was before the case, and a
//! well-behaved pair of devices on the same relay still sends and receives.
//!
//! Cases already played elsewhere and not repeated here: bad logins (forged
//! signature, key not bound to the account ID, replayed challenge, device out
//! of range) and the close after the third refusal before login in `auth.rs`;
//! the caps on anonymous connections and identified-send floods in `abuse.rs`;
//! one device reading or acknowledging another's mailbox in `mailbox.rs` and
//! `isolation.rs`.

mod support;

use prost::Message as _;
use rankfile_proto::v1::{self as pb, client_frame::Body as In, error::Code};
use support::watch::{dump, Watchers, KEY};
use support::*;
use tokio_tungstenite::tungstenite::Message;

/// A frame as the wire carries it.
fn frame(request_id: u64, body: In) -> Vec<u8> {
    pb::ClientFrame {
        version: 1,
        request_id,
        body: Some(body),
    }
    .encode_to_vec()
}

/// Sends one raw message on a fresh connection (after login if `who` is
/// given) and returns the error codes the relay sent before it closed.
async fn refused_and_closed(relay: &TestRelay, who: Option<&Identity>, m: Message) -> Vec<Code> {
    let mut c = match who {
        Some(id) => relay.device(id).await,
        None => relay.client().await,
    };
    c.send_message(m).await;
    error_codes(&c.until_closed().await)
}

#[tokio::test]
async fn garbage_text_undecodable_and_truncated_frames_are_malformed_and_closed() {
    let relay = TestRelay::start().await;
    let mut watchers = Watchers::start(&relay).await;
    let logged_in = Identity::new(1);
    relay.device(&logged_in).await.ping().await;
    let target = Identity::new(1);

    let mut garbage: Vec<(String, Vec<u8>)> = vec![
        ("ones".into(), vec![0xff; 300]),
        ("a varint that never ends".into(), vec![0x80; 11]),
        // Field 1 (version, a varint) sent as a fixed32.
        ("wrong wire type".into(), vec![0x0d, 1, 0, 0, 0]),
        // A length running past the end of the frame.
        ("length past the end".into(), vec![0x8a, 0x01, 0x7f, 1, 2]),
        // Version and request ID, and a body this relay does not know: no body.
        ("unknown body".into(), vec![0x08, 1, 0x10, 5, 0xfa, 0x06, 0]),
        ("an HTTP request".into(), b"GET / HTTP/1.1\r\n\r\n".to_vec()),
    ];
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for n in 0..4 {
        let bytes = (0..97)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        garbage.push((format!("random bytes {n}"), bytes));
    }
    // Every cut of a real frame whose body is the last field: the body's
    // length runs past the end, or the body is missing.
    let whole = frame(9, send_to(&target, &[42; 200]));
    for cut in [2, 3, 5, 8, 40, whole.len() - 1] {
        garbage.push((format!("cut at {cut}"), whole[..cut].to_vec()));
    }

    for (name, bytes) in garbage {
        for who in [None, Some(&logged_in)] {
            let before = dump(&relay);
            let codes = refused_and_closed(&relay, who, Message::binary(bytes.clone())).await;
            assert_eq!(
                codes,
                vec![Code::Malformed],
                "{name}, logged in: {}",
                who.is_some()
            );
            assert_eq!(before, dump(&relay), "{name} changed the database");
            watchers.still_served().await;
        }
    }
    // An empty frame parses as version 0.
    let codes = refused_and_closed(&relay, None, Message::binary(Vec::<u8>::new())).await;
    assert_eq!(codes, vec![Code::UnsupportedVersion]);
    for text in ["hello", "", "\u{0}\u{1}", &"x".repeat(10_000)] {
        let before = dump(&relay);
        let codes = refused_and_closed(&relay, Some(&logged_in), Message::text(text)).await;
        assert_eq!(codes, vec![Code::Malformed], "text of {} bytes", text.len());
        assert_eq!(before, dump(&relay));
        watchers.still_served().await;
    }
}

#[tokio::test]
async fn oversize_frames_are_too_large() {
    let relay = TestRelay::start().await;
    let mut watchers = Watchers::start(&relay).await;
    let me = Identity::new(1);
    relay.device(&me).await.ping().await;
    let over = rankfile_relay::MAX_FRAME_BYTES + 1;
    let before = dump(&relay);
    for who in [None, Some(&me)] {
        let codes = refused_and_closed(&relay, who, Message::binary(vec![0x0a; over])).await;
        assert_eq!(codes, vec![Code::TooLarge]);
        let codes = refused_and_closed(&relay, who, Message::text("x".repeat(over))).await;
        assert_eq!(codes, vec![Code::TooLarge]);
        // A well-formed frame just past the limit, holding an envelope.
        let big = frame(1, send_to(&watchers.bob_id, &vec![1; over]));
        let codes = refused_and_closed(&relay, who, Message::binary(big)).await;
        assert_eq!(codes, vec![Code::TooLarge]);
        watchers.still_served().await;
    }
    // Within the frame limit but over the envelope limit: refused, and the
    // connection goes on.
    let mut c = relay.device(&me).await;
    let envelope = vec![1; relay.config.max_envelope_bytes + 1];
    let out = c
        .request(sealed_to(&watchers.bob_id, &KEY, &envelope))
        .await;
    assert_eq!(error_code(&out), Code::TooLarge);
    c.ping().await;
    assert_eq!(before, dump(&relay));
    watchers.still_served().await;
}

#[tokio::test]
async fn fields_out_of_range_are_refused_and_the_connection_goes_on() {
    let relay = TestRelay::start().await;
    let mut watchers = Watchers::start(&relay).await;
    let me = Identity::new(1);
    let mut c = relay.device(&me).await;
    let bob = watchers.bob_id.other_device(1);
    let send = |account: Vec<u8>, device: u32, envelope: &[u8], priority: i32| {
        In::Send(pb::SendMessage {
            recipient_account_id: account,
            recipient_device_id: device,
            envelope: envelope.to_vec(),
            priority,
        })
    };
    let mut bad_signature = me.prekeys(1, 1);
    if let Some(k) = bad_signature.signed_prekey.as_mut() {
        k.signature[3] ^= 1;
    }
    // Past the count per upload, in EC keys (small enough for one frame).
    let mut too_many = me.prekeys(1, 1);
    let one = too_many.one_time_prekeys[0].clone();
    too_many.one_time_prekeys = (0..201)
        .map(|id| pb::OneTimePreKey { id, ..one.clone() })
        .collect();
    let mut bad_key = me.prekeys(1, 1);
    bad_key.one_time_prekeys[0].public_key.truncate(7);
    let cases: Vec<(&str, In, Code)> = vec![
        (
            "short account id",
            send(vec![1; 3], 1, b"x", 0),
            Code::Malformed,
        ),
        (
            "device 0",
            send(bob.account.to_vec(), 0, b"x", 0),
            Code::Malformed,
        ),
        (
            "device 500",
            send(bob.account.to_vec(), 500, b"x", 0),
            Code::Malformed,
        ),
        (
            "unknown priority",
            send(bob.account.to_vec(), 1, b"x", 7),
            Code::Malformed,
        ),
        (
            "empty envelope",
            send(bob.account.to_vec(), 1, b"", 0),
            Code::Malformed,
        ),
        (
            "unknown recipient",
            send(vec![3; 20], 1, b"x", 0),
            Code::NotFound,
        ),
        (
            "short access key",
            sealed_to(&bob, &KEY[..15], b"x"),
            Code::Unauthorized,
        ),
        (
            "wrong access key",
            sealed_to(&bob, &[8; 16], b"x"),
            Code::Unauthorized,
        ),
        (
            "multi-recipient garbage",
            In::SendMultiSealed(pb::SendMultiSealed {
                payload: vec![0xee; 300],
                access_key: KEY.to_vec(),
                ..Default::default()
            }),
            Code::Malformed,
        ),
        (
            "multi-recipient short key",
            In::SendMultiSealed(pb::SendMultiSealed {
                payload: vec![0xee; 300],
                access_key: vec![1; 3],
                ..Default::default()
            }),
            Code::Malformed,
        ),
        (
            "bundle of a short account id",
            In::FetchBundle(pb::FetchBundle {
                account_id: vec![1; 19],
                device_id: 1,
                ..Default::default()
            }),
            Code::Malformed,
        ),
        (
            "bundle of device 128",
            In::FetchBundle(pb::FetchBundle {
                account_id: bob.account.to_vec(),
                device_id: 128,
                ..Default::default()
            }),
            Code::Malformed,
        ),
        (
            "short access key set",
            In::SetAccessKey(pb::SetAccessKey {
                access_key: vec![1; 3],
            }),
            Code::Malformed,
        ),
        (
            "prekey signature",
            In::UploadPrekeys(bad_signature),
            Code::Malformed,
        ),
        (
            "prekey that does not parse",
            In::UploadPrekeys(bad_key),
            Code::Malformed,
        ),
        (
            "too many prekeys",
            In::UploadPrekeys(too_many),
            Code::TooLarge,
        ),
        (
            "ack of too many ids",
            In::Ack(pb::Ack {
                ids: (0..5000).collect(),
            }),
            Code::TooLarge,
        ),
        (
            "short attachment address",
            first_chunk(&[], &[1; 31], 10, b"0123456789"),
            Code::Malformed,
        ),
        (
            "a chunk without an upload",
            In::PutAttachment(pb::PutAttachment {
                address: vec![1; 32],
                total_size: 10,
                offset: 5,
                data: b"56789".to_vec(),
                ..Default::default()
            }),
            Code::Malformed,
        ),
        (
            "an upload without a token",
            first_chunk(&[9; 40], &[1; 32], 10, b"0123456789"),
            Code::Unauthorized,
        ),
        (
            "short download address",
            In::GetAttachment(pb::GetAttachment {
                address: vec![1; 5],
                ..Default::default()
            }),
            Code::Malformed,
        ),
        (
            "unknown attachment",
            In::GetAttachment(pb::GetAttachment {
                address: vec![1; 32],
                ..Default::default()
            }),
            Code::NotFound,
        ),
        (
            "empty upload token",
            In::UploadToken(pb::UploadTokenRequest { size: 0 }),
            Code::Malformed,
        ),
        (
            "an upload past every budget",
            In::UploadToken(pb::UploadTokenRequest { size: u64::MAX }),
            Code::QuotaExceeded,
        ),
        (
            "push endpoint not a URL",
            In::SetPushEndpoint(pb::SetPushEndpoint {
                url: "not a url \u{0}".into(),
            }),
            Code::Malformed,
        ),
        (
            "push endpoint too long",
            In::SetPushEndpoint(pb::SetPushEndpoint {
                url: format!("https://push.example/{}", "a".repeat(2000)),
            }),
            Code::TooLarge,
        ),
        (
            "deletion naming a short address",
            In::DeleteAccount(pb::DeleteAccount {
                attachments: vec![pb::OwnedAttachment {
                    address: vec![1; 31],
                    delete_key: vec![2; 32],
                }],
            }),
            Code::Malformed,
        ),
    ];
    for (name, body, code) in cases {
        let before = dump(&relay);
        let out = c.request(body).await;
        assert_eq!(error_code(&out), code, "{name}: {out:?}");
        c.ping().await;
        assert_eq!(before, dump(&relay), "{name} changed the database");
        watchers.still_served().await;
    }
    // Acknowledging IDs that are not in this mailbox: no reply, nothing changes.
    let before = dump(&relay);
    c.ack(vec![0, 1, 2, u64::MAX]).await;
    c.ping().await;
    assert_eq!(before, dump(&relay));
}

#[tokio::test]
async fn every_request_before_login_is_not_authenticated() {
    let relay = TestRelay::start().await;
    let mut watchers = Watchers::start(&relay).await;
    let bob = watchers.bob_id.other_device(1);
    let requests = vec![
        In::UploadPrekeys(bob.prekeys(1, 1)),
        In::PrekeyCount(pb::PreKeyCountRequest {}),
        In::FetchBundle(pb::FetchBundle {
            account_id: bob.account.to_vec(),
            device_id: 1,
            access_key: KEY.to_vec(),
        }),
        In::SenderCertificate(pb::SenderCertificateRequest {}),
        In::SetAccessKey(pb::SetAccessKey {
            access_key: KEY.to_vec(),
        }),
        send_to(&bob, b"early"),
        sealed_to(&bob, &KEY, b"early sealed"),
        In::SendMultiSealed(pb::SendMultiSealed {
            payload: vec![1; 100],
            access_key: KEY.to_vec(),
            ..Default::default()
        }),
        In::Ack(pb::Ack { ids: vec![1] }),
        first_chunk(&[1; 40], &[1; 32], 10, b"0123456789"),
        In::GetAttachment(pb::GetAttachment {
            address: vec![1; 32],
            ..Default::default()
        }),
        In::Ping(pb::Ping {}),
        In::SetPushEndpoint(pb::SetPushEndpoint {
            url: "https://push.example/x".into(),
        }),
        In::UploadToken(pb::UploadTokenRequest { size: 10 }),
        In::DeleteAccount(pb::DeleteAccount::default()),
    ];
    for body in requests {
        let name = format!("{body:?}").chars().take(40).collect::<String>();
        let before = dump(&relay);
        let mut c = relay.client().await;
        assert_eq!(
            error_code(&c.request(body).await),
            Code::NotAuthenticated,
            "{name}"
        );
        assert_eq!(before, dump(&relay), "{name} changed the database");
        watchers.still_served().await;
    }
}
