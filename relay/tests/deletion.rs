//! Deleting an account: its devices' records, mailboxes, prekeys and push
//! endpoints, and the attachments it proves it uploaded, are gone from the
//! relay — checked in the database file's raw bytes after a WAL checkpoint,
//! and in the data directory — while other accounts' data stays.

mod support;

use rankfile_proto::v1::{self as pb, client_frame::Body as In, server_frame::Body as Out};
use sha2::{Digest, Sha256};
use support::*;

/// Uploads `blob` with a token from `device`, on an anonymous connection,
/// declaring `delete_key`'s hash.
async fn upload(relay: &TestRelay, device: &mut Client, blob: &[u8], delete_key: &[u8; 32]) {
    let token = upload_token(device, blob.len() as u64).await;
    let mut up = relay.client().await;
    up.request(In::Anonymous(pb::Anonymous {})).await;
    let address = Sha256::digest(blob).to_vec();
    let out = up
        .request(In::PutAttachment(pb::PutAttachment {
            address,
            total_size: blob.len() as u64,
            offset: 0,
            data: blob.to_vec(),
            upload_token: token,
            delete_key_hash: Sha256::digest(delete_key).to_vec(),
        }))
        .await;
    assert!(matches!(out, Out::AttachmentStored(s) if s.complete));
}

/// Every byte of every file under `dir`.
fn all_file_bytes(dir: &std::path::Path) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            all.extend(all_file_bytes(&path));
        } else if let Ok(b) = std::fs::read(&path) {
            all.extend(b);
        }
    }
    all
}

#[tokio::test]
async fn a_deleted_account_leaves_nothing_in_the_relay_store() {
    let mut relay = TestRelay::start_with(|c| c.push_allow_http = true).await;
    let alice = Identity::new(1);
    let alice2 = alice.other_device(2);
    let bob = Identity::new(1);

    // Alice's account: two devices, prekeys, a push endpoint, queued mail,
    // an upload of her own. Bob has an upload too.
    let mut a = relay.device(&alice).await;
    assert!(matches!(
        a.request(In::UploadPrekeys(alice.prekeys(1, 5))).await,
        Out::Ok(_)
    ));
    assert!(matches!(
        a.set_push_endpoint("http://127.0.0.1:9/wake-alice").await,
        Out::Ok(_)
    ));
    relay.device(&alice2).await.ping().await;
    let mut b = relay.device(&bob).await;
    for i in 0..3u8 {
        assert_sent(b.request(send_to(&alice2, &[b'q', i])).await);
    }
    let alice_blob: Vec<u8> = (0..5000u32).map(|i| (i * 13 % 251) as u8).collect();
    let alice_key = [4u8; 32];
    upload(&relay, &mut a, &alice_blob, &alice_key).await;
    let bob_blob: Vec<u8> = (0..5000u32).map(|i| (i * 17 % 253) as u8).collect();
    upload(&relay, &mut b, &bob_blob, &[5u8; 32]).await;
    let alice_address = Sha256::digest(&alice_blob).to_vec();
    assert!(contains(&relay.db_bytes(), &alice.account));

    // A wrong key deletes nothing of Bob's; Alice's own key deletes hers.
    let out = a
        .request(In::DeleteAccount(pb::DeleteAccount {
            attachments: vec![
                pb::OwnedAttachment {
                    address: alice_address.clone(),
                    delete_key: alice_key.to_vec(),
                },
                pb::OwnedAttachment {
                    address: Sha256::digest(&bob_blob).to_vec(),
                    delete_key: [6u8; 32].to_vec(),
                },
            ],
        }))
        .await;
    assert!(matches!(out, Out::Ok(_)));
    // The relay hangs up after answering.
    a.until_closed().await;

    // Sends to the deleted account find no one.
    assert_eq!(
        error_code(&b.request(send_to(&alice2, b"late")).await),
        rankfile_proto::v1::error::Code::NotFound
    );
    drop(b);

    if let Some(h) = relay.handle.take() {
        h.shutdown().await;
    }
    {
        let db = rusqlite::Connection::open(relay.db_path()).expect("open db");
        let _: (i64, i64, i64) = db
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .expect("checkpoint");
        for table in [
            "devices",
            "signed_prekeys",
            "one_time_prekeys",
            "messages",
            "push_endpoints",
        ] {
            let n: i64 = db
                .query_row(
                    &format!("SELECT COUNT(*) FROM {table} WHERE account_id = ?1"),
                    [&alice.account[..]],
                    |r| r.get(0),
                )
                .expect("count");
            assert_eq!(n, 0, "{table}");
        }
    }
    let db = relay.db_bytes();
    assert!(!contains(&db, &alice.account), "account ID in the database");
    assert!(!contains(&db, &alice.pair.identity_key().serialize()));
    assert!(!contains(&db, b"wake-alice"));
    assert!(!contains(&db, &alice_address));
    let files = all_file_bytes(relay.dir.path());
    assert!(!contains(&files, &alice_blob[..1000]), "attachment bytes");
    assert!(
        contains(&files, &bob_blob[..1000]),
        "another's upload stays"
    );
    assert_eq!(relay.count("attachments"), 1);

    // Bob's data is all still there after a restart.
    relay.restart().await;
    let mut b = relay.device(&bob).await;
    b.ping().await;
    assert_eq!(relay.count("devices"), 1);
}
