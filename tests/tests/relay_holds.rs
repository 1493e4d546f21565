//! What the relay's database holds after a committee's traffic — sealed 1:1
//! messages, a channel post fanned out from one upload, an alert — while the
//! recipients are offline, so all of it is still stored. After a WAL
//! checkpoint the raw file and every table's rows are scanned: no stored
//! envelope names or carries the key of anyone but its own recipient, no
//! row of any table ties two of the committee's accounts together, and no
//! account appears anywhere in text form (hex, `rf1-…`).

mod alert_net;

use alert_net::{committee, phone, Phone};
use rankfile_core::alert::{AlertDraft, AlertKind, AlertScope};
use rankfile_core::committee::ChannelKind;
use rankfile_core::AccountId;
use rankfile_tests::{contains, eventually, in_an_hour, outbox_drained, relay};

/// Every way an account could be written down: its ID raw, its first 16
/// bytes (the sealed-sender service ID), hex and `rf1-` text, and its
/// identity key (serialized, and the bare public key).
struct Traces {
    raw: Vec<Vec<u8>>,
    text: Vec<Vec<u8>>,
}

async fn traces(p: &Phone) -> Traces {
    let key = p
        .client
        .with_account(|a| a.identity_key())
        .await
        .expect("account");
    let id = p.id.as_bytes();
    Traces {
        raw: vec![
            id.to_vec(),
            id[..16].to_vec(),
            key.clone(),
            key[1..].to_vec(),
        ],
        text: vec![
            hex::encode(id).into_bytes(),
            hex::encode_upper(id).into_bytes(),
            p.id.to_string().into_bytes(),
            p.id.to_string().to_ascii_uppercase().into_bytes(),
        ],
    }
}

fn found_in(bytes: &[u8], t: &Traces) -> bool {
    t.raw.iter().chain(&t.text).any(|n| contains(bytes, n))
}

/// Every row of every table of the relay's database, as its table's name
/// and the bytes of all its columns.
fn all_rows(conn: &rusqlite::Connection) -> Vec<(String, Vec<u8>)> {
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .expect("tables")
        .query_map([], |r| r.get(0))
        .expect("tables")
        .collect::<rusqlite::Result<_>>()
        .expect("tables");
    let mut rows = Vec::new();
    for table in tables {
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM \"{table}\""))
            .expect("select");
        let columns = stmt.column_count();
        let mut cursor = stmt.query([]).expect("rows");
        while let Some(row) = cursor.next().expect("row") {
            let mut bytes = Vec::new();
            for i in 0..columns {
                match row.get_ref(i).expect("column") {
                    rusqlite::types::ValueRef::Blob(b) => bytes.extend_from_slice(b),
                    rusqlite::types::ValueRef::Text(t) => bytes.extend_from_slice(t),
                    rusqlite::types::ValueRef::Integer(n) => {
                        bytes.extend_from_slice(&n.to_be_bytes())
                    }
                    _ => {}
                }
            }
            rows.push((table.clone(), bytes));
        }
    }
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_holds_no_sender_and_no_committee_after_sealed_traffic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay_dir = dir.path().join("relay");
    let relay = relay::start(&relay_dir).await;
    let mut phones = Vec::new();
    for name in ["organizer", "delegate", "member"] {
        phones.push(phone(dir.path(), name, &relay).await);
    }
    let committee_id = committee("Sorting centre", &[&phones[0], &phones[1], &phones[2]]).await;
    let organizer = &phones[0];
    let channel = organizer
        .client
        .create_channel(committee_id, ChannelKind::Discussion)
        .await
        .expect("channel");
    let mut traces_of = Vec::new();
    for p in &phones {
        traces_of.push((p.id, traces(p).await));
    }
    let [organizer, delegate, member] = <[Phone; 3]>::try_from(phones).ok().expect("three");
    // The delegate goes offline; the member posts (opening the sessions it
    // lacks) and writes to it, then goes offline too: two senders' mail
    // waits at the relay.
    let delegate_account = delegate.client.shutdown().await.expect("offline");
    eventually(30, "the member posts", || async {
        member
            .client
            .post(committee_id, channel, "who has the leaflets?".into())
            .await
            .is_ok()
    })
    .await;
    let e = member
        .client
        .send_text(delegate.id, "see you at the gate".into())
        .await
        .expect("text");
    assert!(e.sealed);
    outbox_drained(&member.client, 20, "the member's mail sent").await;
    let member_account = member.client.shutdown().await.expect("offline");
    drop((delegate_account, member_account));

    for to in [delegate.id, member.id] {
        let e = organizer
            .client
            .send_text(to, "meeting after the shift".into())
            .await
            .expect("text");
        assert!(e.sealed);
    }
    organizer
        .client
        .post(committee_id, channel, "the ballot opens Monday".into())
        .await
        .expect("post");
    organizer
        .client
        .send_alert(
            committee_id,
            AlertDraft {
                kind: AlertKind::RapidResponse,
                scope: AlertScope::Local,
                title: "Gate 3".into(),
                text: "Come now.".into(),
                place: "Gate 3".into(),
                starts_at_ms: 0,
                expires_at_ms: in_an_hour(),
                answers_wanted: true,
            },
        )
        .await
        .expect("alert");
    outbox_drained(&organizer.client, 20, "everything sent").await;
    drop(organizer.client.shutdown().await.expect("offline"));
    relay.shutdown().await;

    let db = relay_dir.join("relay.db");
    let conn = rusqlite::Connection::open(&db).expect("open the relay's database");
    let (busy, _, _): (i64, i64, i64) = conn
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .expect("checkpoint");
    assert_eq!(busy, 0, "the checkpoint ran to the end");

    // Every stored envelope is sealed and carries no trace of anyone but
    // its own recipient: text, post (its per-recipient part), alert.
    let stored: Vec<(Vec<u8>, bool, Vec<u8>)> = conn
        .prepare("SELECT account_id, sealed, envelope FROM messages")
        .expect("messages")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("messages")
        .collect::<rusqlite::Result<_>>()
        .expect("messages");
    for who in [delegate.id, member.id] {
        let n = stored.iter().filter(|(a, ..)| a == who.as_bytes()).count();
        assert!(n >= 4, "texts, sender keys, posts and alert wait: {n}");
    }
    for (recipient, sealed, envelope) in &stored {
        assert!(*sealed, "stored identified: the relay saw its sender");
        for (id, t) in &traces_of {
            if id.as_bytes() != recipient.as_slice() {
                assert!(!found_in(envelope, t), "an envelope names another account");
            }
        }
    }
    // No row of any table links two of the committee's accounts: a mailbox
    // row names its recipient alone, a device row its account alone.
    for (table, row) in all_rows(&conn) {
        let named: Vec<&AccountId> = traces_of
            .iter()
            .filter(|(_, t)| found_in(&row, t))
            .map(|(id, _)| id)
            .collect();
        assert!(named.len() <= 1, "a row of {table} links accounts");
    }
    drop(conn);
    // The raw files: no account in text form anywhere, no plaintext, WAL
    // emptied.
    let raw = std::fs::read(&db).expect("read");
    for (_, t) in &traces_of {
        assert!(!t.text.iter().any(|n| contains(&raw, n)), "an ID as text");
    }
    for text in [
        "see you at the gate",
        "leaflets",
        "after the shift",
        "ballot opens",
        "Gate 3",
    ] {
        assert!(!contains(&raw, text.as_bytes()), "plaintext in the relay");
    }
    let wal = std::fs::metadata(relay_dir.join("relay.db-wal")).map_or(0, |m| m.len());
    assert_eq!(wal, 0, "the WAL was checkpointed");
}
