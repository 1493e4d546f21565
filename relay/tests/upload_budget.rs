//! Attachment floods and the disk reserve: uploads without a token are
//! refused, with tokens they stop at the account's and the relay's byte
//! budgets, and a relay at its disk reserve refuses new work but keeps
//! serving what it holds.

mod support;

use rankfile_proto::v1::{
    self as pb, client_frame::Body as In, error::Code, server_frame::Body as Out,
};
use sha2::{Digest, Sha256};
use support::*;

fn blob(seed: u8, len: usize) -> (Vec<u8>, Vec<u8>) {
    let b: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(seed)).collect();
    let address = Sha256::digest(&b).to_vec();
    (b, address)
}

async fn anonymous(relay: &TestRelay) -> Client {
    let mut c = relay.client().await;
    assert!(matches!(
        c.request(In::Anonymous(pb::Anonymous {})).await,
        Out::Ok(_)
    ));
    c
}

fn token_request(size: u64) -> In {
    In::UploadToken(pb::UploadTokenRequest { size })
}

#[tokio::test]
async fn an_attachment_flood_stops_without_a_token_and_at_the_budgets() {
    let relay = TestRelay::start_with(|c| {
        c.upload_account_bytes_per_day = 3000;
        c.upload_global_bytes_per_hour = 5000;
    })
    .await;
    let mut up = anonymous(&relay).await;

    // Without a token, or with a made-up one: refused, nothing written.
    let (b, address) = blob(3, 1000);
    let no_token = In::PutAttachment(pb::PutAttachment {
        address: address.clone(),
        total_size: 1000,
        offset: 0,
        data: b.clone(),
        upload_token: Vec::new(),
        delete_key_hash: Vec::new(),
    });
    assert_eq!(error_code(&up.request(no_token).await), Code::Unauthorized);
    let forged = first_chunk(&[7u8; 32], &address, 1000, &b);
    assert_eq!(error_code(&up.request(forged).await), Code::Unauthorized);
    // Tokens are only for logged-in devices.
    assert_eq!(
        error_code(&up.request(token_request(1000)).await),
        Code::NotAuthenticated
    );
    assert_eq!(relay.count("attachments"), 0);

    // With tokens: one account gets its budget's worth, then no more.
    let mut alice = relay.device(&Identity::new(1)).await;
    let mut tokens = Vec::new();
    for _ in 0..3 {
        tokens.push(upload_token(&mut alice, 1000).await);
    }
    assert_eq!(
        error_code(&alice.request(token_request(1000)).await),
        Code::QuotaExceeded
    );
    for (i, token) in tokens.iter().enumerate() {
        let (b, address) = blob(5 + i as u8, 1000);
        let out = up.request(first_chunk(token, &address, 1000, &b)).await;
        assert!(matches!(out, Out::AttachmentStored(s) if s.complete));
    }
    // A spent token is spent, and a token covers only its size.
    let (b, address) = blob(11, 1000);
    assert_eq!(
        error_code(
            &up.request(first_chunk(&tokens[0], &address, 1000, &b))
                .await
        ),
        Code::Unauthorized
    );
    assert_eq!(relay.count("attachments"), 3);

    // Other accounts share the relay's budget: it stops them too.
    let mut bob = relay.device(&Identity::new(1)).await;
    let small = upload_token(&mut bob, 500).await;
    assert_eq!(
        error_code(&up.request(first_chunk(&small, &address, 1000, &b)).await),
        Code::Unauthorized
    );
    upload_token(&mut bob, 1500).await;
    let mut carol = relay.device(&Identity::new(1)).await;
    assert_eq!(
        error_code(&carol.request(token_request(100)).await),
        Code::QuotaExceeded
    );
    // No partial files from the refused uploads.
    let tmp = relay.dir.path().join("attachments").join("tmp");
    assert_eq!(std::fs::read_dir(tmp).expect("tmp dir").count(), 0);
}

#[tokio::test]
async fn at_its_disk_reserve_the_relay_refuses_new_work_and_serves_the_rest() {
    let mut relay = TestRelay::start().await;
    let (alice, bob) = (Identity::new(1), Identity::new(1));
    let b = relay.device(&bob).await;
    let mut a = relay.device(&alice).await;
    assert_sent(a.request(send_to(&bob, b"before")).await);
    let token = upload_token(&mut a, 100).await;
    let (data, address) = blob(13, 100);
    let mut up = anonymous(&relay).await;
    assert!(matches!(
        up.request(first_chunk(&token, &address, 100, &data)).await,
        Out::AttachmentStored(s) if s.complete
    ));
    drop((a, b, up));

    // Simulated: a reserve larger than the free space there is.
    relay.config.disk_reserve_bytes = u64::MAX / 2;
    relay.restart().await;

    let mut a = relay.device(&alice).await;
    assert_eq!(
        error_code(&a.request(send_to(&bob, b"after")).await),
        Code::InsufficientStorage
    );
    assert_eq!(
        error_code(&a.request(token_request(100)).await),
        Code::InsufficientStorage
    );
    // A new device cannot register.
    let mut c = relay.client().await;
    let auth = Identity::new(1).auth(&c.hello.challenge);
    c.send(In::Auth(auth)).await;
    assert_eq!(
        error_codes(&c.until_closed().await),
        vec![Code::InsufficientStorage]
    );
    // What is stored is still served and acknowledged, freeing space.
    let mut b = relay.device(&bob).await;
    let got = b.backlog_deliveries().await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].envelope, b"before");
    b.ack(vec![got[0].id]).await;
    b.ping().await;
    assert_eq!(relay.count("messages"), 0);
    match b
        .request(In::GetAttachment(pb::GetAttachment {
            address: address.clone(),
            offset: 0,
            max_len: 0,
        }))
        .await
    {
        Out::AttachmentChunk(chunk) => assert_eq!(chunk.data, data),
        other => panic!("{other:?}"),
    }
    assert_eq!(relay.count("devices"), 2);
}
