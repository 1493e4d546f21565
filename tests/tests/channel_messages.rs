//! Channel messages end to end through a real relay on loopback: a
//! disappearing message gone from every member's history, search and raw
//! database files once its timer runs out; replies, edits and deletes by
//! their author reaching every member; an attachment uploaded encrypted and
//! read back by another member; read markers.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rankfile_core::committee::{CommitteeId, RejectReason};
use rankfile_core::transport::{Client, ClientEvent};
use rankfile_core::{AccountId, ChannelMessage, Draft, Error, Event, Quote};
use rankfile_tests::online::committee_with_channel;
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
    async fn history(&self, channel: [u8; 16]) -> Vec<ChannelMessage> {
        self.client
            .with_account(move |a| a.channel_history(&channel, None, 1000).expect("history"))
            .await
            .expect("account")
    }

    async fn search(&self, text: &'static str) -> Vec<ChannelMessage> {
        self.client
            .with_account(move |a| {
                a.search_channel_messages(None, text, None, 100)
                    .expect("search")
            })
            .await
            .expect("account")
    }

    async fn has_text(&self, channel: [u8; 16], text: &str) -> bool {
        self.history(channel).await.iter().any(|m| m.body == text)
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

/// Sessions both ways between `a` and `b`, each holding the other's access key.
async fn connect(a: &Phone, b: &Phone) {
    a.client
        .add_contact_from_relay("peer".into(), b.id)
        .await
        .expect("bundle");
    a.client.send_text(b.id, "hi".into()).await.expect("send");
    let (from, to) = (a.id, b.id);
    eventually(20, "hello arrives", || async {
        b.client
            .with_account(move |x| {
                x.history(&from, None, 10)
                    .map(|h| h.iter().any(|m| !m.outgoing))
            })
            .await
            .expect("account")
            .expect("history")
    })
    .await;
    b.client.send_text(a.id, "hi".into()).await.expect("reply");
    eventually(20, "reply arrives", || async {
        a.client
            // Its own "hi" is in the history too: wait for the answer.
            .with_account(move |x| {
                x.history(&to, None, 10)
                    .map(|h| h.iter().any(|m| !m.outgoing))
            })
            .await
            .expect("account")
            .expect("history")
    })
    .await;
}

/// An organizer and members in one committee with one discussion channel
/// that every member's log has.
async fn committee(
    dir: &Path,
    names: &[&str],
) -> (
    rankfile_relay::RelayHandle,
    Vec<Phone>,
    CommitteeId,
    [u8; 16],
) {
    let relay = relay::start(&dir.join("relay")).await;
    let mut phones = Vec::new();
    for name in names {
        phones.push(phone(dir, name, &relay).await);
    }
    // The organizer knows everyone; members meet through the committee
    // (sessions between them open when one of them first posts).
    for p in &phones[1..] {
        connect(&phones[0], p).await;
    }
    let members: Vec<_> = phones[1..].iter().map(|p| (&p.client, p.id)).collect();
    let (committee, channel) = committee_with_channel(&phones[0].client, &members).await;
    (relay, phones, committee, channel)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disappearing_message_leaves_no_trace_on_any_member_s_device() {
    const SECRET: &str = "rendezvous behind the loading bay zanzibarite";
    const SECRET_WORD: &[u8] = b"zanzibarite";
    const KEPT: &str = "canteen vote results stay";
    let dir = tempfile::tempdir().expect("tempdir");
    let (_relay, phones, committee, channel) =
        committee(dir.path(), &["organizer", "ana", "kwame"]).await;
    let organizer = &phones[0];

    // A message from before the timer stays. It must have reached everyone
    // before the timer is set: a receiver applies the stricter of the timer a
    // message carries and the one its log has when the message arrives.
    organizer
        .client
        .post_message(committee, channel, Draft::text(KEPT))
        .await
        .expect("post");
    for p in &phones[1..] {
        eventually(30, "the earlier message arrives", || {
            p.has_text(channel, KEPT)
        })
        .await;
    }
    // Only an organizer may set the timer.
    let refused = phones[1]
        .client
        .set_channel_timer(committee, channel, 2)
        .await;
    assert!(
        matches!(
            refused,
            Err(Error::CommitteeChangeRefused(RejectReason::NotAnOrganizer(
                _
            )))
        ),
        "{refused:?}"
    );
    organizer
        .client
        .set_channel_timer(committee, channel, 2)
        .await
        .expect("timer");
    for p in &phones {
        eventually(30, "every member has the timer", || async {
            p.client
                .committee(committee)
                .await
                .is_ok_and(|s| s.channel_timer(&channel) == 2)
        })
        .await;
        eventually(30, "the earlier message arrives", || {
            p.has_text(channel, KEPT)
        })
        .await;
    }

    let mut streams: Vec<_> = phones.iter().map(|p| p.client.subscribe()).collect();
    phones[1]
        .client
        .post_message(committee, channel, Draft::text(SECRET))
        .await
        .expect("post the secret");
    for p in &phones {
        // It carries the timer (looked at only while it is there: a slow run
        // may see it gone already).
        let shown = p.history(channel).await;
        if let Some(m) = shown.iter().find(|m| m.body == SECRET) {
            let expires = m.expires_at_ms.expect("it carries the timer");
            assert!(expires <= m.sent_at_ms.min(m.stored_at_ms) + 2_000);
        }
    }
    // Each phone stores the secret (the author as it sends it) and then
    // loses it to the timer: waited for by its events, since under load a
    // phone may not have received it yet when the checks below begin (and
    // "gone" would then hold trivially).
    let mut stored = vec![None; phones.len()];
    let mut expired = vec![Vec::new(); phones.len()];
    for (i, stream) in streams.iter_mut().enumerate() {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while expired[i].is_empty() {
            match tokio::time::timeout_at(deadline, stream.recv()).await {
                Ok(Ok(ClientEvent::Core(Event::ChannelMessageStored {
                    sender,
                    message_id,
                    ..
                }))) if sender == phones[1].id => stored[i] = Some(message_id),
                Ok(Ok(ClientEvent::Core(Event::ChannelMessageExpired { message_id, .. }))) => {
                    expired[i].push(message_id)
                }
                Ok(Ok(_)) => {}
                other => panic!("phone {i}: the secret did not come and go: {other:?}"),
            }
        }
    }
    for p in &phones {
        eventually(10, "the secret disappears", || async {
            !p.has_text(channel, SECRET).await
        })
        .await;
        // History hides it at once; the purge deletes it within a second.
        eventually(10, "the purge deletes it", || async {
            p.client
                .with_account(|a| a.next_expiry().expect("next").is_none())
                .await
                .expect("account")
        })
        .await;
        assert!(p.search("zanzibarite").await.is_empty(), "gone from search");
        assert_eq!(
            p.search("canteen")
                .await
                .iter()
                .map(|m| m.body.as_str())
                .collect::<Vec<_>>(),
            [KEPT]
        );
        assert!(p.has_text(channel, KEPT).await, "only the expired one goes");
        for (path, bytes) in p.raw_files() {
            assert!(
                !contains(&bytes, SECRET_WORD),
                "the secret is in {}",
                path.display()
            );
        }
    }

    // Every member stored it (the author when sending) and then lost it to
    // the timer, once: the absence above is the purge's doing.
    for (i, stream) in streams.iter_mut().enumerate() {
        while let Ok(e) = stream.try_recv() {
            if let ClientEvent::Core(Event::ChannelMessageExpired { message_id, .. }) = e {
                expired[i].push(message_id)
            }
        }
        assert_eq!(expired[i].len(), 1, "phone {i}: one message expired");
        if i != 1 {
            assert_eq!(
                stored[i],
                Some(expired[i][0]),
                "phone {i}: stored, then expired"
            );
        }
    }

    // After a restart the store holds nothing of it either.
    let kwame = phones.into_iter().nth(2).expect("kwame");
    let db = kwame.db.clone();
    let account = kwame.client.shutdown().await.expect("stop");
    let dump = account.dump_database().expect("dump");
    assert!(!dump.contains("zanzibarite"));
    assert!(dump.contains(KEPT));
    drop(account);
    assert!(db.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_edits_deletes_and_attachments_reach_every_member() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_relay, phones, committee, channel) =
        committee(dir.path(), &["organizer", "ana", "kwame"]).await;
    let (organizer, ana, kwame) = (&phones[0], &phones[1], &phones[2]);

    // An attachment bigger than one upload and one download chunk.
    let file: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let pointer = organizer
        .client
        .upload_attachment(file.clone(), "application/pdf".into(), "minutes.pdf".into())
        .await
        .expect("upload");
    organizer
        .client
        .post_message(
            committee,
            channel,
            Draft::text("minutes of the meeting attached").attach(pointer),
        )
        .await
        .expect("post");
    let mut original = 0;
    for p in [ana, kwame] {
        eventually(30, "the post arrives", || {
            p.has_text(channel, "minutes of the meeting attached")
        })
        .await;
        let m = p.history(channel).await.remove(0);
        assert_eq!(m.sender, organizer.id);
        assert_eq!(m.attachments.len(), 1);
        assert_eq!(m.attachments[0].file_name, "minutes.pdf");
        assert_eq!(m.attachments[0].size, file.len() as u64);
        let got = p
            .client
            .download_attachment(m.id, 0)
            .await
            .expect("download");
        assert!(got == file, "the file arrives intact");
        assert!(matches!(
            p.client.download_attachment(m.id, 1).await,
            Err(Error::UnknownAttachment { .. })
        ));
        if p.id == ana.id {
            original = m.id;
        }
    }
    // The relay holds only ciphertext: the file's bytes are not in its store.
    let relay_files: Vec<u8> = walk(&dir.path().join("relay"));
    assert!(!contains(&relay_files, &file[1000..1064]));

    // Ana replies; everyone sees the quote.
    ana.client
        .post_message(
            committee,
            channel,
            Draft::text("thanks, reading now").reply_to(original),
        )
        .await
        .expect("reply");
    for p in [organizer, kwame] {
        eventually(30, "the reply arrives", || {
            p.has_text(channel, "thanks, reading now")
        })
        .await;
        let reply = p.history(channel).await.remove(0);
        let quoted = reply.reply_to.expect("a reply");
        assert_eq!(quoted.target.author, organizer.id);
        assert!(matches!(
            quoted.quote,
            Quote::Message { ref body, .. } if body == "minutes of the meeting attached"
        ));
    }

    // Ana may not edit or delete the organizer's message.
    assert!(matches!(
        ana.client.edit_message(original, "forged".into()).await,
        Err(Error::NotOwnMessage(_))
    ));
    assert!(matches!(
        ana.client.delete_message(original).await,
        Err(Error::NotOwnMessage(_))
    ));

    // The organizer edits it: the new text, marked edited, everywhere.
    let own = organizer
        .history(channel)
        .await
        .into_iter()
        .find(|m| m.outgoing)
        .expect("own message")
        .id;
    organizer
        .client
        .edit_message(own, "minutes attached, corrected quorum".into())
        .await
        .expect("edit");
    for p in &phones {
        eventually(30, "the edit arrives", || {
            p.has_text(channel, "minutes attached, corrected quorum")
        })
        .await;
        let m = p
            .history(channel)
            .await
            .into_iter()
            .find(|m| m.sender == organizer.id)
            .expect("message");
        assert!(m.edited_at_ms.is_some());
        assert_eq!(m.attachments.len(), 1, "an edit keeps the attachment");
        assert_eq!(p.search("quorum").await.len(), 1);
        assert!(p.search("meeting").await.is_empty());
    }

    // Read state on Kwame's phone: two messages from others.
    let newest = kwame.history(channel).await[0].id;
    let unread = kwame
        .client
        .with_account(move |a| {
            let before = a.channel_unread_count(&channel).expect("count");
            a.mark_channel_read(&channel, newest).expect("mark");
            (before, a.channel_unread_count(&channel).expect("count"))
        })
        .await
        .expect("account");
    assert_eq!(unread, (2, 0));

    // The organizer deletes it: gone everywhere, the reply says so.
    organizer.client.delete_message(own).await.expect("delete");
    for p in &phones {
        eventually(30, "the delete arrives", || async {
            !p.history(channel)
                .await
                .iter()
                .any(|m| m.sender == organizer.id)
        })
        .await;
        assert!(p.search("quorum").await.is_empty());
        let reply = p
            .history(channel)
            .await
            .into_iter()
            .find(|m| m.body == "thanks, reading now")
            .expect("the reply stays");
        assert_eq!(reply.reply_to.expect("reply").quote, Quote::Deleted);
    }
    assert!(matches!(
        ana.client.download_attachment(original, 0).await,
        Err(Error::UnknownChannelMessage(_))
    ));
}

/// Every byte of every file under `dir`.
fn walk(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.extend(bytes);
        }
    }
    out
}
