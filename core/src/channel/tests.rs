//! Tests of the channel message rules over a real store: replies and their
//! quotes, edits and deletes (only by the author, in any order of arrival),
//! expiry and the purge, read markers, search, and that deleted text leaves
//! no trace in the raw files of a plaintext twin of the store.

use libsignal_protocol::IdentityKeyPair;
use rusqlite::Connection;

use super::content::{ChannelContent, MessageRef};
use super::receive::{check, write};
use super::store::{self, NewChannelMessage};
use super::{ChannelMessage, Quote};
use crate::account::Account;
use crate::account_id::AccountId;
use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::event::Event;
use crate::receive::{claim_envelope, Received};
use crate::store::DatabaseKey;

const CHANNEL: [u8; 16] = [7; 16];

fn someone() -> AccountId {
    AccountId::from_identity_key(IdentityKeyPair::generate(&mut rand::rng()).identity_key())
}

fn account(dir: &tempfile::TempDir) -> Account {
    Account::create(&dir.path().join("a.db"), &DatabaseKey::generate()).expect("account")
}

/// Delivers channel content from `sender` as the receive path would, after
/// decryption; `ours` is our log's timer. Like a receive batch, it commits
/// whatever the message wrote even when it fails.
fn deliver(
    a: &mut Account,
    sender: &AccountId,
    sent_at_ms: i64,
    content: ChannelContent,
    ours: u32,
) -> (Result<Received>, Vec<Event>) {
    let mut events = Vec::new();
    let now = now_ms();
    let tx = a.store.write().expect("tx");
    let checked = check(
        &tx,
        &CHANNEL,
        sender,
        sent_at_ms,
        content,
        ours,
        now,
        &mut events,
    );
    let result = checked.and_then(|change| {
        let mut envelope = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut envelope);
        claim_envelope(&tx, &envelope, now)?;
        write(
            &tx,
            &CHANNEL,
            sender,
            sent_at_ms,
            change,
            &envelope,
            now,
            &mut events,
        )
    });
    tx.commit().expect("commit");
    a.search_backlog |= super::fills_search_backlog(&events);
    (result, events)
}

fn post(id: u8, body: &str, timer: u32) -> ChannelContent {
    ChannelContent::Post {
        id: [id; 16],
        body: body.into(),
        reply_to: None,
        attachments: Vec::new(),
        expire_timer_secs: timer,
    }
}

fn history(a: &Account) -> Vec<ChannelMessage> {
    a.channel_history(&CHANNEL, None, 100).expect("history")
}

fn found(a: &Account, text: &str) -> Vec<String> {
    a.search_channel_messages(Some(&CHANNEL), text, None, 100)
        .expect("search")
        .into_iter()
        .map(|m| m.body)
        .collect()
}

#[test]
fn a_reply_quotes_its_message_and_says_when_it_was_deleted() {
    let dir = tempfile::tempdir().expect("dir");
    let mut a = account(&dir);
    let (bob, carol) = (someone(), someone());
    let now = now_ms();
    deliver(&mut a, &bob, now, post(1, "meeting at gate 3", 0), 0)
        .0
        .expect("post");
    let target = MessageRef {
        author: bob,
        id: [1; 16],
    };
    let reply = ChannelContent::Post {
        id: [2; 16],
        body: "I will be there".into(),
        reply_to: Some(target),
        attachments: Vec::new(),
        expire_timer_secs: 0,
    };
    deliver(&mut a, &carol, now, reply, 0).0.expect("reply");
    let shown = history(&a);
    let original = shown.iter().find(|m| m.sender == bob).expect("original").id;
    let r = shown[0].reply_to.as_ref().expect("a reply");
    assert_eq!(r.target, target);
    assert_eq!(
        r.quote,
        Quote::Message {
            message_id: original,
            body: "meeting at gate 3".into()
        }
    );

    let (done, events) = deliver(&mut a, &bob, now, ChannelContent::Delete { target }, 0);
    assert!(matches!(done, Ok(Received::Control { .. })));
    assert_eq!(
        events,
        vec![Event::ChannelMessageDeleted {
            channel_id: CHANNEL,
            message_id: original
        }]
    );
    let shown = history(&a);
    assert_eq!(shown.len(), 1);
    assert_eq!(
        shown[0].reply_to.as_ref().expect("reply").quote,
        Quote::Deleted
    );
    assert!(
        found(&a, "gate").is_empty(),
        "the deleted text left the index"
    );
    assert_eq!(found(&a, "there"), ["I will be there"]);
}

#[test]
fn only_the_author_edits_and_the_latest_edit_wins() {
    let dir = tempfile::tempdir().expect("dir");
    let mut a = account(&dir);
    let (bob, carol) = (someone(), someone());
    let now = now_ms();
    deliver(&mut a, &bob, now, post(1, "vote on friday", 0), 0)
        .0
        .expect("post");
    let target = MessageRef {
        author: bob,
        id: [1; 16],
    };
    let edit = |body: &str| ChannelContent::Edit {
        target,
        body: body.into(),
        expire_timer_secs: 0,
    };

    let (refused, events) = deliver(&mut a, &carol, now + 1, edit("vote cancelled"), 0);
    assert!(matches!(refused, Err(Error::NotMessageAuthor(who)) if who == carol));
    assert_eq!(
        events,
        vec![Event::ChannelChangeRejected {
            channel_id: CHANNEL,
            sender: carol
        }]
    );
    let (refused, _) = deliver(
        &mut a,
        &carol,
        now + 1,
        ChannelContent::Delete { target },
        0,
    );
    assert!(matches!(refused, Err(Error::NotMessageAuthor(_))));
    assert_eq!(history(&a)[0].body, "vote on friday");
    assert_eq!(history(&a)[0].edited_at_ms, None);

    deliver(&mut a, &bob, now + 20, edit("vote on saturday"), 0)
        .0
        .expect("edit");
    // An older edit arriving late does not win.
    let (_, events) = deliver(&mut a, &bob, now + 10, edit("vote on sunday"), 0);
    assert!(events.is_empty());
    let m = &history(&a)[0];
    assert_eq!(m.body, "vote on saturday");
    assert_eq!(m.edited_at_ms, Some(now + 20));
    assert_eq!(found(&a, "saturday"), ["vote on saturday"]);
    assert!(found(&a, "friday").is_empty());
    assert!(found(&a, "sunday").is_empty());
}

#[test]
fn an_edit_or_a_delete_before_its_message_is_applied_when_it_comes() {
    let dir = tempfile::tempdir().expect("dir");
    let mut a = account(&dir);
    let bob = someone();
    let now = now_ms();
    let early = MessageRef {
        author: bob,
        id: [1; 16],
    };
    let edit = ChannelContent::Edit {
        target: early,
        body: "picket moved to gate 5".into(),
        expire_timer_secs: 0,
    };
    deliver(&mut a, &bob, now + 5, edit, 0).0.expect("held");
    assert!(history(&a).is_empty());
    deliver(&mut a, &bob, now, post(1, "picket at gate 4", 0), 0)
        .0
        .expect("post");
    let m = &history(&a)[0];
    assert_eq!(m.body, "picket moved to gate 5");
    assert_eq!(m.edited_at_ms, Some(now + 5));

    let gone = MessageRef {
        author: bob,
        id: [2; 16],
    };
    deliver(
        &mut a,
        &bob,
        now,
        ChannelContent::Delete { target: gone },
        0,
    )
    .0
    .expect("delete");
    let (late, events) = deliver(&mut a, &bob, now, post(2, "regret this", 0), 0);
    assert!(matches!(late, Ok(Received::Control { .. })), "{late:?}");
    assert!(events.is_empty());
    assert_eq!(history(&a).len(), 1);
    assert!(found(&a, "regret").is_empty());
}

#[test]
fn a_reused_message_id_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let mut a = account(&dir);
    let bob = someone();
    deliver(&mut a, &bob, now_ms(), post(1, "first", 0), 0)
        .0
        .expect("post");
    let (again, _) = deliver(&mut a, &bob, now_ms(), post(1, "second", 0), 0);
    assert!(matches!(again, Err(Error::InvalidContent(_))));
    // Another author may use the same bytes: names are per author.
    deliver(&mut a, &someone(), now_ms(), post(1, "third", 0), 0)
        .0
        .expect("post");
    assert_eq!(history(&a).len(), 2);
}

#[test]
fn expired_messages_are_never_shown_and_the_purge_deletes_them() {
    let dir = tempfile::tempdir().expect("dir");
    let mut a = account(&dir);
    let bob = someone();
    let now = now_ms();
    // Sent long ago with a short timer: arrives expired, nothing is kept.
    let (late, _) = deliver(&mut a, &bob, now - 10_000, post(1, "too late", 2), 0);
    assert!(matches!(late, Ok(Received::Control { .. })));
    // The message says no timer, but our log says 60 s: the stricter holds.
    deliver(&mut a, &bob, now, post(2, "secret plan", 0), 60)
        .0
        .expect("post");
    deliver(&mut a, &bob, now, post(3, "kept plan", 0), 0)
        .0
        .expect("post");
    let shown = history(&a);
    assert_eq!(shown.len(), 2);
    let expiring = shown
        .iter()
        .find(|m| m.body == "secret plan")
        .expect("there");
    assert_eq!(expiring.expires_at_ms, Some(now + 60_000));
    assert_eq!(a.next_expiry().expect("next"), Some(now + 60_000));

    a.drain_events();
    assert_eq!(a.purge_expired_at(now + 59_999).expect("purge"), 0);
    assert_eq!(a.purge_expired_at(now + 60_000).expect("purge"), 1);
    assert_eq!(
        a.drain_events(),
        vec![Event::ChannelMessageExpired {
            channel_id: CHANNEL,
            message_id: expiring.id
        }]
    );
    assert_eq!(history(&a).len(), 1);
    assert!(found(&a, "plan") == ["kept plan"]);
    assert_eq!(a.next_expiry().expect("next"), None);
}

#[test]
fn the_read_marker_counts_unread_messages_and_never_moves_back() {
    let dir = tempfile::tempdir().expect("dir");
    let mut a = account(&dir);
    let bob = someone();
    for i in 1..=3 {
        deliver(&mut a, &bob, now_ms(), post(i, "news", 0), 0)
            .0
            .expect("post");
    }
    assert_eq!(a.channel_unread_count(&CHANNEL).expect("count"), 3);
    assert_eq!(a.channel_read_marker(&CHANNEL).expect("marker"), None);
    let ids: Vec<i64> = history(&a).iter().map(|m| m.id).collect();
    a.mark_channel_read(&CHANNEL, ids[1]).expect("mark");
    assert_eq!(a.channel_unread_count(&CHANNEL).expect("count"), 1);
    a.mark_channel_read(&CHANNEL, ids[2]).expect("mark back");
    assert_eq!(
        a.channel_read_marker(&CHANNEL).expect("marker"),
        Some(ids[1])
    );
    assert_eq!(a.channel_unread_count(&[8; 16]).expect("other"), 0);
}

#[test]
fn search_pages_newest_first_and_reads_no_syntax_from_the_user() {
    let dir = tempfile::tempdir().expect("dir");
    let mut a = account(&dir);
    let bob = someone();
    for i in 1..=5 {
        deliver(
            &mut a,
            &bob,
            now_ms(),
            post(i, &format!("Strike update {i}"), 0),
            0,
        )
        .0
        .expect("post");
    }
    deliver(&mut a, &bob, now_ms(), post(9, "canteen menu", 0), 0)
        .0
        .expect("post");
    let page = a
        .search_channel_messages(None, "stri UPD", None, 2)
        .expect("search");
    let bodies: Vec<&str> = page.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies, ["Strike update 5", "Strike update 4"]);
    let next = a
        .search_channel_messages(Some(&CHANNEL), "strike", Some(page[1].id), 10)
        .expect("next page");
    assert_eq!(next.len(), 3);
    assert_eq!(next[0].body, "Strike update 3");
    for hostile in ["\"", "strike OR", "NEAR(a b", "a*", "-", "^x", ")"] {
        a.search_channel_messages(None, hostile, None, 10)
            .expect("no syntax error");
    }
    assert!(a
        .search_channel_messages(Some(&[8; 16]), "strike", None, 10)
        .expect("other channel")
        .is_empty());
}

/// The same schema in a file without encryption, so its raw bytes show what
/// the store would hold: deleted text must leave the database file, the WAL
/// and the search index, not just the tables.
#[test]
fn deleted_text_leaves_no_trace_in_the_raw_files_of_a_plaintext_twin() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("plain.db");
    let mut conn = Connection::open(&path).expect("open");
    conn.pragma_update(None, "secure_delete", "ON")
        .expect("secure delete");
    conn.pragma_update(None, "journal_mode", "WAL")
        .expect("wal");
    crate::store::Store::migrate_plain(&mut conn).expect("migrations");
    let raw = || -> Vec<u8> {
        ["", "-wal"]
            .iter()
            .filter_map(|s| std::fs::read(format!("{}{s}", path.display())).ok())
            .flatten()
            .collect()
    };
    let has = |needle: &[u8]| raw().windows(needle.len()).any(|w| w == needle);
    let bob = someone();
    let now = now_ms();
    for (i, body, expires) in [
        (1u8, "quetzalcoatl wolframite", Some(now)),
        (2, "ordinary words", None),
    ] {
        store::insert(
            &conn,
            &NewChannelMessage {
                channel_id: &CHANNEL,
                envelope_id: &[i; 16],
                sender: &bob,
                outgoing: false,
                body,
                sent_at_ms: now,
                message_ref: &[i; 16],
                reply_to: None,
                attachments: &[],
                expires_at_ms: expires,
                stored_at_ms: now,
            },
        )
        .expect("insert");
    }
    // The check can fail: the text is there before the purge.
    assert!(has(b"quetzalcoatl wolframite"));
    assert!(has(b"wolframite"));
    let purged = super::expiry::purge_at(&conn, now).expect("purge");
    assert_eq!(purged.len(), 1);
    super::expiry::scrub(&conn);
    for needle in [&b"quetzalcoatl"[..], b"wolframite", b"quetzal"] {
        assert!(
            !has(needle),
            "{} is still in the raw files",
            String::from_utf8_lossy(needle)
        );
    }
    assert!(has(b"ordinary"), "the other message stays");
}

#[test]
fn edits_waiting_for_their_messages_are_bounded_and_a_refused_one_leaves_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let mut a = account(&dir);
    let bob = someone();
    let now = now_ms();
    deliver(&mut a, &bob, now, post(1, "here already", 0), 0)
        .0
        .expect("post");
    {
        let tx = a.store.write().expect("tx");
        for i in 0..super::MAX_PENDING_EDITS {
            let mut id = [0xaa; 16];
            id[..8].copy_from_slice(&i.to_le_bytes());
            let r = MessageRef { author: bob, id };
            store::hold_edit(&tx, &CHANNEL, &r, "later", now, now + 60_000).expect("hold");
        }
        tx.commit().expect("commit");
    }
    let before = a.dump_database().expect("dump");
    let edit = |id: u8, body: &str| ChannelContent::Edit {
        target: MessageRef {
            author: bob,
            id: [id; 16],
        },
        body: body.into(),
        expire_timer_secs: 0,
    };
    let (full, _) = deliver(&mut a, &bob, now + 1, edit(2, "no room"), 0);
    assert!(matches!(full, Err(Error::InvalidContent(_))), "{full:?}");
    assert_eq!(a.dump_database().expect("dump"), before, "nothing written");
    // An edit of a message that is here needs no room.
    deliver(&mut a, &bob, now + 1, edit(1, "edited anyway"), 0)
        .0
        .expect("edit");
    assert_eq!(history(&a)[0].body, "edited anyway");
}

fn backlog(a: &Account) -> i64 {
    a.store
        .conn()
        .query_row("SELECT count(*) FROM channel_search_backlog", [], |r| {
            r.get(0)
        })
        .expect("backlog")
}

/// FTS5's own check that the index matches `channel_messages`.
fn index_consistent(a: &Account) -> bool {
    a.store
        .conn()
        .execute(
            "INSERT INTO channel_search (channel_search, rank) VALUES ('integrity-check', 1)",
            [],
        )
        .is_ok()
}

#[test]
fn messages_waiting_for_the_index_are_found_edited_and_deleted_like_indexed_ones() {
    let dir = tempfile::tempdir().expect("dir");
    let mut a = account(&dir);
    let s = someone();
    let now = now_ms();
    deliver(&mut a, &s, now, post(1, "walkout at noon", 0), 0)
        .0
        .expect("post");
    deliver(&mut a, &s, now, post(2, "petition draft", 0), 0)
        .0
        .expect("post");
    assert_eq!(backlog(&a), 2, "receiving indexes nothing by itself");
    // Edited and deleted while still waiting.
    let edit = ChannelContent::Edit {
        target: MessageRef {
            author: s,
            id: [1; 16],
        },
        body: "walkout at two".into(),
        expire_timer_secs: 0,
    };
    deliver(&mut a, &s, now + 1, edit, 0).0.expect("edit");
    let delete = ChannelContent::Delete {
        target: MessageRef {
            author: s,
            id: [2; 16],
        },
    };
    deliver(&mut a, &s, now + 1, delete, 0).0.expect("delete");
    assert_eq!(backlog(&a), 1);
    // A search takes in the backlog first.
    assert_eq!(found(&a, "walkout"), vec!["walkout at two".to_string()]);
    assert!(found(&a, "noon").is_empty());
    assert!(found(&a, "petition").is_empty());
    assert_eq!(backlog(&a), 0);
    assert!(index_consistent(&a));
    // Edited and deleted once indexed.
    let edit = ChannelContent::Edit {
        target: MessageRef {
            author: s,
            id: [1; 16],
        },
        body: "walkout at three".into(),
        expire_timer_secs: 0,
    };
    deliver(&mut a, &s, now + 2, edit, 0).0.expect("edit");
    assert_eq!(found(&a, "walkout"), vec!["walkout at three".to_string()]);
    assert!(found(&a, "two").is_empty());
    let delete = ChannelContent::Delete {
        target: MessageRef {
            author: s,
            id: [1; 16],
        },
    };
    deliver(&mut a, &s, now + 3, delete, 0).0.expect("delete");
    assert!(found(&a, "walkout").is_empty());
    assert!(index_consistent(&a));
}

#[test]
fn upkeep_indexes_the_backlog_at_most_once_per_pause() {
    let dir = tempfile::tempdir().expect("dir");
    let mut a = account(&dir);
    let s = someone();
    a.channel_upkeep(false);
    assert!(!a.search_backlog, "nothing waits after the first run");
    // The next runs wait for the pause.
    deliver(&mut a, &s, now_ms(), post(1, "first shift", 0), 0)
        .0
        .expect("post");
    assert!(a.search_backlog);
    a.channel_upkeep(false);
    assert_eq!(backlog(&a), 1);
    a.search_indexed_at = None;
    a.channel_upkeep(false);
    assert_eq!(backlog(&a), 0);
    assert!(!a.search_backlog);
    assert!(index_consistent(&a));
}
