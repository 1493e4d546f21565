//! Disappearing 1:1 messages end to end through a real relay on loopback,
//! as `channel_messages.rs` plays them for channels: a timer set by one side
//! and adopted by the other, and a text under it gone from both phones'
//! history and raw database files once it runs out, while a text sent
//! before the timer stays.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rankfile_core::transport::{Client, ClientEvent};
use rankfile_core::{AccountId, Event};
use rankfile_tests::{connected_client, contains, eventually, relay};

struct Phone {
    client: Client,
    id: AccountId,
    db: PathBuf,
}

async fn phone(dir: &Path, name: &str, relay: &rankfile_relay::RelayHandle) -> Phone {
    let (client, id) = connected_client(dir, name, relay).await;
    Phone {
        client,
        id,
        db: dir.join(format!("{name}.db")),
    }
}

impl Phone {
    async fn texts(&self, peer: AccountId) -> Vec<String> {
        self.client
            .with_account(move |a| a.history(&peer, None, 1000).expect("history"))
            .await
            .expect("account")
            .into_iter()
            .map(|m| m.body)
            .collect()
    }

    async fn has_text(&self, peer: AccountId, text: &str) -> bool {
        self.texts(peer).await.iter().any(|t| t == text)
    }

    async fn timer(&self, peer: AccountId) -> u32 {
        self.client
            .conversation_timer(peer)
            .await
            .expect("conversation timer")
    }

    /// Every file of the phone's store as it is on disk: the database, its
    /// WAL and shared memory, and any journal or temporary file beside it.
    fn raw_files(&self) -> Vec<(PathBuf, Vec<u8>)> {
        let name = self
            .db
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let dir = self.db.parent().expect("dir");
        std::fs::read_dir(dir)
            .expect("read dir")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(&name))
            .map(|e| (e.path(), std::fs::read(e.path()).expect("read file")))
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disappearing_text_leaves_no_trace_on_either_phone() {
    const SECRET: &str = "the steward list is under the vending machine zanzibarite";
    const SECRET_WORD: &[u8] = b"zanzibarite";
    const KEPT: &str = "canteen vote results stay";
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay::start(&dir.path().join("relay")).await;
    let ana = phone(dir.path(), "ana", &relay).await;
    let kwame = phone(dir.path(), "kwame", &relay).await;
    ana.client
        .add_contact_from_relay("kwame".into(), kwame.id)
        .await
        .expect("contact");

    // A text from before the timer stays.
    ana.client
        .send_text(kwame.id, KEPT.into())
        .await
        .expect("send");
    eventually(30, "the earlier text arrives", || {
        kwame.has_text(ana.id, KEPT)
    })
    .await;

    // Kwame, the side that has not written yet, sets two seconds; Ana's
    // phone adopts it.
    let mut ana_events = ana.client.subscribe();
    kwame
        .client
        .set_conversation_timer(ana.id, 2)
        .await
        .expect("timer");
    eventually(30, "ana's phone adopts the timer", || async {
        ana.timer(kwame.id).await == 2
    })
    .await;
    assert_eq!(kwame.timer(ana.id).await, 2);

    let mut streams = [ana.client.subscribe(), kwame.client.subscribe()];
    ana.client
        .send_text(kwame.id, SECRET.into())
        .await
        .expect("send the secret");
    // Each phone stores the secret (Ana as she sends it) and then loses it
    // to the timer: waited for by its events, so "gone" cannot hold
    // trivially because it never came.
    let mut expired = [0usize; 2];
    let mut stored_by_kwame = None;
    for (i, stream) in streams.iter_mut().enumerate() {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while expired[i] == 0 {
            match tokio::time::timeout_at(deadline, stream.recv()).await {
                Ok(Ok(ClientEvent::Core(Event::MessageStored { peer, message_id })))
                    if peer == ana.id =>
                {
                    stored_by_kwame = Some(message_id)
                }
                Ok(Ok(ClientEvent::Core(Event::MessageExpired { message_id, .. }))) => {
                    if i == 1 {
                        assert_eq!(Some(message_id), stored_by_kwame, "stored, then expired");
                    }
                    expired[i] += 1;
                }
                Ok(Ok(_)) => {}
                other => panic!("phone {i}: the secret did not come and go: {other:?}"),
            }
        }
    }
    for (p, peer) in [(&ana, kwame.id), (&kwame, ana.id)] {
        eventually(10, "the secret disappears", || async {
            !p.has_text(peer, SECRET).await
        })
        .await;
        eventually(10, "the purge is done", || async {
            p.client
                .with_account(|a| a.next_expiry().expect("next").is_none())
                .await
                .expect("account")
        })
        .await;
        assert!(p.has_text(peer, KEPT).await, "only the expired one goes");
        for (path, bytes) in p.raw_files() {
            assert!(
                !contains(&bytes, SECRET_WORD),
                "the secret is in {}",
                path.display()
            );
        }
    }
    // Ana was told of the timer Kwame set.
    let mut told = false;
    while let Ok(e) = ana_events.try_recv() {
        told |= matches!(
            e,
            ClientEvent::Core(Event::ConversationTimerChanged { peer, secs: 2 }) if peer == kwame.id
        );
    }
    assert!(told, "ana's phone raised the timer change");

    // After a restart the store holds nothing of it either.
    for p in [ana, kwame] {
        let account = p.client.shutdown().await.expect("stop");
        let dump = account.dump_database().expect("dump");
        assert!(!dump.contains("zanzibarite"));
        assert!(dump.contains(KEPT));
    }
}
