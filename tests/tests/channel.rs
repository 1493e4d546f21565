//! A committee channel through a real relay: each member's sender key goes out
//! over the 1:1 sessions, a channel message goes up once and the relay fans it
//! out; after a removal the remaining members rotate their sender keys and the
//! removed member, holding every key it ever had and the raw envelopes, reads
//! nothing new.

use std::path::Path;

use rankfile_core::transport::{Client, ConnectionState};
use rankfile_core::{Account, AccountId, DatabaseKey, Inbound};
use rankfile_tests::{eventually, outbox_drained, relay};
use uuid::Uuid;

struct Member {
    client: Client,
    id: AccountId,
}

async fn join(dir: &Path, name: &str, relay: &rankfile_relay::RelayHandle) -> Member {
    let path = dir.join(format!("{name}.db"));
    let account = Account::create(&path, &DatabaseKey::generate()).expect("account");
    let id = account.id();
    let client = Client::start(account, relay::address(relay)).expect("client");
    eventually(20, "connected", || async {
        matches!(client.connection_state(), ConnectionState::Connected { .. })
    })
    .await;
    Member { client, id }
}

async fn channel_bodies(m: &Member, channel: [u8; 16]) -> Vec<String> {
    m.client
        .with_account(move |a| {
            let mut v: Vec<String> = a
                .channel_history(&channel, None, 1000)
                .expect("history")
                .into_iter()
                .filter(|x| !x.outgoing)
                .map(|x| x.body)
                .collect();
            v.sort();
            v
        })
        .await
        .expect("account")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_message_reaches_every_member_once_and_a_removed_member_reads_nothing_new() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay::start(&dir.path().join("relay")).await;
    let organizer = join(dir.path(), "organizer", &relay).await;
    let mut members = Vec::new();
    for name in ["ana", "kwame", "li", "tomasz"] {
        members.push(join(dir.path(), name, &relay).await);
    }
    // Sessions both ways, so each side holds the other's access key.
    for m in &members {
        organizer
            .client
            .add_contact_from_relay("member".into(), m.id)
            .await
            .expect("bundle");
        organizer
            .client
            .send_text(m.id, "welcome".into())
            .await
            .expect("send");
    }
    for m in &members {
        eventually(20, "welcome arrives", || async {
            m.client
                .with_account({
                    let o = organizer.id;
                    move |a| {
                        a.history(&o, None, 10)
                            .map(|h| !h.is_empty())
                            .unwrap_or(false)
                    }
                })
                .await
                .unwrap_or(false)
        })
        .await;
        m.client
            .send_text(organizer.id, "hello".into())
            .await
            .expect("reply");
    }
    eventually(20, "replies arrive", || async {
        organizer
            .client
            .with_account(|a| a.message_count().unwrap_or(0) >= 8)
            .await
            .unwrap_or(false)
    })
    .await;

    let channel = *Uuid::new_v4().as_bytes();
    let first_key = Uuid::new_v4();
    let everyone: Vec<AccountId> = members.iter().map(|m| m.id).collect();
    organizer
        .client
        .distribute_sender_key(everyone.clone(), channel, first_key)
        .await
        .expect("distribute");
    outbox_drained(&organizer.client, 20, "sender keys delivered").await;
    for i in 0..3 {
        let sent = organizer
            .client
            .send_channel_text(channel, first_key, everyone.clone(), format!("meeting {i}"))
            .await
            .expect("channel send");
        assert!(sent.multi && sent.sealed, "one sealed upload for everyone");
    }
    for m in &members {
        eventually(20, "channel messages arrive", || async {
            channel_bodies(m, channel).await.len() == 3
        })
        .await;
        assert_eq!(
            channel_bodies(m, channel).await,
            ["meeting 0", "meeting 1", "meeting 2"]
        );
    }

    // Tomasz is removed. He keeps his database, and with it every sender key
    // he was given.
    let removed = members.pop().expect("a member");
    let removed_account = removed.client.shutdown().await.expect("stop");
    let remaining: Vec<AccountId> = members.iter().map(|m| m.id).collect();
    let second_key = Uuid::new_v4();
    organizer
        .client
        .distribute_sender_key(remaining.clone(), channel, second_key)
        .await
        .expect("rotate");
    outbox_drained(&organizer.client, 20, "new sender keys delivered").await;
    let after = organizer
        .client
        .send_channel_text(
            channel,
            second_key,
            remaining.clone(),
            "after the removal".into(),
        )
        .await
        .expect("send");
    for m in &members {
        eventually(20, "the new message arrives", || async {
            channel_bodies(m, channel).await.len() == 4
        })
        .await;
    }

    // The removed member gets hold of the raw upload and of what the relay
    // would hand a recipient, and still reads nothing.
    let mut removed_account = removed_account;
    let parsed = libsignal_protocol::SealedSenderV2SentMessage::parse(&after.bytes).expect("parse");
    let mut pieces = Vec::new();
    for r in &parsed.recipients {
        let (_, recipient) = r;
        pieces.push(
            parsed
                .received_message_parts_for_recipient(recipient)
                .as_ref()
                .concat(),
        );
    }
    assert!(!pieces.is_empty());
    let before = removed_account.dump_database().expect("dump");
    for piece in &pieces {
        let r = removed_account
            .receive_all(&[Inbound::Sealed(piece)])
            .expect("batch");
        assert!(
            r[0].is_err(),
            "the removed member read a message: {:?}",
            r[0]
        );
    }
    let r = removed_account
        .receive_all(&[Inbound::Sealed(&after.bytes)])
        .expect("batch");
    assert!(r[0].is_err());
    assert_eq!(before, removed_account.dump_database().expect("dump"));
    assert_eq!(
        removed_account
            .channel_history(&channel, None, 100)
            .expect("h")
            .len(),
        3,
        "only what was sent before the removal"
    );
    relay.shutdown().await;
}
