//! Attachments: chunked upload checked against its address, chunked download,
//! wrong addresses, limits.

mod support;

use rankfile_proto::v1::{
    self as pb, client_frame::Body as In, error::Code, server_frame::Body as Out,
};
use sha2::{Digest, Sha256};
use support::*;

fn put(address: &[u8], total: u64, offset: u64, data: &[u8]) -> In {
    In::PutAttachment(pb::PutAttachment {
        address: address.to_vec(),
        total_size: total,
        offset,
        data: data.to_vec(),
        upload_token: Vec::new(),
        delete_key_hash: Vec::new(),
    })
}

fn get(address: &[u8], offset: u64, max_len: u32) -> In {
    In::GetAttachment(pb::GetAttachment {
        address: address.to_vec(),
        offset,
        max_len,
    })
}

#[tokio::test]
async fn chunked_round_trip_and_wrong_addresses() {
    let relay = TestRelay::start().await;
    let blob: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let address = Sha256::digest(&blob).to_vec();
    let mut device = relay.device(&Identity::new(1)).await;
    let token = upload_token(&mut device, blob.len() as u64).await;
    let mut up = relay.client().await;
    up.request(In::Anonymous(pb::Anonymous {})).await;
    let mut offset = 0usize;
    for chunk in blob.chunks(100_000) {
        let frame = if offset == 0 {
            first_chunk(&token, &address, blob.len() as u64, chunk)
        } else {
            put(&address, blob.len() as u64, offset as u64, chunk)
        };
        match up.request(frame).await {
            Out::AttachmentStored(s) => {
                offset += chunk.len();
                assert_eq!(s.received, offset as u64);
                assert_eq!(s.complete, offset == blob.len());
                if s.complete {
                    assert!(s.expires_at_ms > rankfile_relay::now_ms());
                }
            }
            other => panic!("{other:?}"),
        }
    }

    // Download by another (authenticated) client in chunks.
    let mut down = relay.device(&Identity::new(1)).await;
    let mut got = Vec::new();
    while got.len() < blob.len() {
        match down.request(get(&address, got.len() as u64, 70_000)).await {
            Out::AttachmentChunk(c) => {
                assert_eq!(c.total_size, blob.len() as u64);
                assert_eq!(c.offset, got.len() as u64);
                assert!(!c.data.is_empty() && c.data.len() <= 70_000);
                got.extend(c.data);
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(got, blob);
    // Past the end, unknown address, bad address.
    assert_eq!(
        error_code(&down.request(get(&address, blob.len() as u64 + 1, 10)).await),
        Code::Malformed
    );
    assert_eq!(
        error_code(&down.request(get(&[0u8; 32], 0, 10)).await),
        Code::NotFound
    );
    assert_eq!(
        error_code(&down.request(get(&[0u8; 5], 0, 10)).await),
        Code::Malformed
    );

    // Uploading content under the wrong address is refused and nothing is served.
    let wrong = Sha256::digest(b"something else").to_vec();
    let token = upload_token(&mut device, 5).await;
    assert_eq!(
        error_code(&up.request(first_chunk(&token, &wrong, 5, b"hello")).await),
        Code::Malformed
    );
    assert_eq!(
        error_code(&down.request(get(&wrong, 0, 10)).await),
        Code::NotFound
    );
    assert_eq!(relay.count("attachments"), 1);
    // No partial files left behind.
    let tmp = relay.dir.path().join("attachments").join("tmp");
    assert_eq!(std::fs::read_dir(tmp).expect("tmp dir").count(), 0);
}

#[tokio::test]
async fn out_of_order_and_oversize_uploads_are_refused() {
    let relay = TestRelay::start_with(|c| c.attachment_max_bytes = 1000).await;
    let mut c = relay.device(&Identity::new(1)).await;
    let blob = vec![1u8; 600];
    let address = Sha256::digest(&blob).to_vec();
    assert_eq!(
        error_code(&c.request(put(&address, 2000, 0, &blob)).await),
        Code::TooLarge
    );
    assert_eq!(
        error_code(&c.request(put(&address, 600, 100, &blob[100..])).await),
        Code::Malformed
    );
    let token = upload_token(&mut c, 600).await;
    assert!(matches!(
        c.request(first_chunk(&token, &address, 600, &blob[..300]))
            .await,
        Out::AttachmentStored(_)
    ));
    assert_eq!(
        error_code(&c.request(put(&address, 600, 400, &blob[400..])).await),
        Code::Malformed
    );
    assert_eq!(
        error_code(&c.request(put(&address, 600, 300, &[1u8; 400])).await),
        Code::Malformed
    );
    assert_eq!(
        error_code(&c.request(put(&address, 0, 0, &[])).await),
        Code::Malformed
    );
    assert_eq!(relay.count("attachments"), 0);
    // A fresh start at offset 0 works, and a second upload of the same blob is
    // recognised at once.
    let token = upload_token(&mut c, 600).await;
    assert!(
        matches!(c.request(first_chunk(&token, &address, 600, &blob)).await, Out::AttachmentStored(s) if s.complete)
    );
    let token = upload_token(&mut c, 600).await;
    assert!(
        matches!(c.request(first_chunk(&token, &address, 600, &blob[..10])).await, Out::AttachmentStored(s) if s.complete && s.received == 600)
    );
}
