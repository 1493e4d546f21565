//! The relay's storage semantics, ONE suite run against both backends: each
//! check below is a generic function over `Arc<dyn RelayStore>`, and the
//! `suite!` macro runs it on SQLite (a temporary directory) and on PostgreSQL
//! (a fresh database on the test cluster: tests/support/postgres.rs).

mod support;

use std::any::Any;
use std::sync::{Arc, Mutex};

use rankfile_relay::{
    AttachmentMeta, Cursor, Error, MailboxId, NewMessage, PostgresStore, PreKeyUpload, Priority,
    PublicPreKey, RelayStore, SqliteStore,
};
use support::postgres as pg;

/// A store and what must outlive it (its directory).
type Opened = (Arc<dyn RelayStore>, Box<dyn Any + Send>);

async fn sqlite() -> Option<Opened> {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(dir.path(), 64).expect("open sqlite");
    Some((Arc::new(store), Box::new(dir)))
}

async fn postgres(test: &str) -> Option<Opened> {
    let cluster = pg::cluster(test)?;
    let url = pg::fresh_database(&cluster).await;
    let store = PostgresStore::connect(&url, 64)
        .await
        .expect("connect postgres");
    Some((Arc::new(store), Box::new(())))
}

macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite_store {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let (store, _keep) = super::sqlite().await.expect("sqlite");
                    super::$name(store).await;
                }
            )*
        }
        mod postgres_store {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some((store, _keep)) = super::postgres(stringify!($name)).await else {
                        return;
                    };
                    super::$name(store).await;
                }
            )*
        }
    };
}

suite!(
    devices_register_once_and_are_found_by_aci,
    prekeys_are_handed_out_once_and_capped,
    quota_refuses_whole_sends_and_acks_make_room,
    a_multi_recipient_send_skips_full_accounts_whole,
    fetch_gives_high_priority_first_after_the_cursor,
    commit_hooks_carry_growing_ids_in_commit_order,
    sweeps_remove_what_expired_and_free_the_quota,
    deleting_an_account_removes_everything_of_it,
    push_endpoints_are_set_found_and_removed,
);

const NOW: u64 = 1_000_000;

fn mb(account: u8, device: u32) -> MailboxId {
    MailboxId {
        account: [account; 20],
        device,
    }
}

fn msg(to: MailboxId, priority: Priority, sealed: bool, body: &[u8]) -> NewMessage {
    NewMessage {
        mailbox: to,
        priority,
        sealed,
        envelope: body.to_vec(),
        stored_at_ms: NOW,
        expires_at_ms: NOW + 60_000,
    }
}

fn normal(to: MailboxId, body: &[u8]) -> NewMessage {
    msg(to, Priority::Normal, true, body)
}

fn no_hook() -> rankfile_relay::OnCommit {
    Box::new(|_| {})
}

async fn put(
    store: &Arc<dyn RelayStore>,
    messages: Vec<NewMessage>,
    quota: u64,
) -> Result<(), Error> {
    store.enqueue(messages, quota, no_hook()).await
}

/// Every ID in a mailbox, high priority first.
async fn ids(store: &Arc<dyn RelayStore>, m: MailboxId) -> Vec<u64> {
    let got = store
        .fetch(m, Cursor::default(), NOW, 10_000)
        .await
        .expect("fetch");
    got.iter().map(|s| s.id).collect()
}

fn key(id: u32, tag: u8) -> PublicPreKey {
    PublicPreKey {
        id,
        public_key: vec![tag; 33],
        signature: vec![tag; 64],
    }
}

async fn devices_register_once_and_are_found_by_aci(store: Arc<dyn RelayStore>) {
    assert!(store
        .register_device(mb(1, 1), vec![1; 33], NOW)
        .await
        .expect("register"));
    assert!(!store
        .register_device(mb(1, 1), vec![9; 33], NOW)
        .await
        .expect("again"));
    assert!(store
        .register_device(mb(1, 2), vec![2; 33], NOW)
        .await
        .expect("second device"));
    assert!(store
        .register_device(mb(3, 1), vec![3; 33], NOW)
        .await
        .expect("other account"));
    let d = store
        .device(mb(1, 1))
        .await
        .expect("device")
        .expect("known");
    assert_eq!(d.identity_key, vec![1; 33], "the first registration stands");
    assert_eq!((d.registration_id, d.access_key), (0, None));
    assert!(store.device(mb(1, 3)).await.expect("device").is_none());
    store
        .set_access_key(mb(1, 1), [7; 16])
        .await
        .expect("access key");
    let d = store
        .device(mb(1, 1))
        .await
        .expect("device")
        .expect("known");
    assert_eq!(d.access_key, Some([7; 16]));

    let found = store
        .accounts_by_aci(vec![[3; 16], [1; 16], [5; 16]])
        .await
        .expect("by aci");
    let summary: Vec<(u8, Vec<u32>)> = found
        .iter()
        .map(|a| (a.account[0], a.devices.iter().map(|(d, _)| *d).collect()))
        .collect();
    assert_eq!(
        summary,
        [(3, vec![1]), (1, vec![1, 2])],
        "in the order asked, unknown left out"
    );
    assert_eq!(found[1].devices[0].1, Some([7; 16]));
}

async fn prekeys_are_handed_out_once_and_capped(store: Arc<dyn RelayStore>) {
    let me = mb(1, 1);
    store
        .register_device(me, vec![1; 33], NOW)
        .await
        .expect("register");
    assert!(
        store.take_bundle(me, true).await.expect("take").is_none(),
        "no signed prekey yet"
    );
    let upload = PreKeyUpload {
        registration_id: 4242,
        signed_prekey: Some(key(1, 1)),
        kyber_last_resort: Some(key(2, 2)),
        one_time: (10..30).map(|i| key(i, 3)).collect(),
        one_time_kyber: vec![key(100, 4)],
    };
    store.upload_prekeys(me, upload, 100).await.expect("upload");
    assert_eq!(store.prekey_counts(me).await.expect("counts"), (20, 1));
    assert_eq!(
        store
            .device(me)
            .await
            .expect("d")
            .expect("known")
            .registration_id,
        4242
    );

    let b = store
        .take_bundle(me, true)
        .await
        .expect("take")
        .expect("bundle");
    assert_eq!(
        (b.signed_prekey.id, b.kyber.id),
        (1, 100),
        "one-time Kyber key first"
    );
    assert_eq!(b.one_time.map(|k| k.id), Some(10), "lowest one-time key");
    let b = store
        .take_bundle(me, false)
        .await
        .expect("take")
        .expect("bundle");
    assert_eq!(
        (b.kyber.id, b.one_time),
        (2, None),
        "without one-time keys: last resort"
    );
    assert_eq!(store.prekey_counts(me).await.expect("counts"), (19, 0));

    // Many takers at once: no key is handed out twice.
    let takers: Vec<_> = (0..19)
        .map(|_| {
            let s = store.clone();
            tokio::spawn(async move { s.take_bundle(me, true).await })
        })
        .collect();
    let mut taken = Vec::new();
    for t in takers {
        let b = t.await.expect("join").expect("take").expect("bundle");
        assert_eq!(b.kyber.id, 2, "Kyber one-time keys ran out: last resort");
        taken.push(b.one_time.expect("one left for each").id);
    }
    taken.sort_unstable();
    assert_eq!(taken, (11..30).collect::<Vec<_>>());
    assert_eq!(store.prekey_counts(me).await.expect("counts"), (0, 0));

    // Past the cap the whole upload is refused, the signed key included.
    let too_many = PreKeyUpload {
        registration_id: 1,
        signed_prekey: Some(key(50, 5)),
        one_time: (200..210).map(|i| key(i, 6)).collect(),
        ..PreKeyUpload::default()
    };
    assert!(matches!(
        store.upload_prekeys(me, too_many, 5).await,
        Err(Error::QuotaExceeded)
    ));
    assert_eq!(store.prekey_counts(me).await.expect("counts"), (0, 0));
    let b = store
        .take_bundle(me, true)
        .await
        .expect("take")
        .expect("bundle");
    assert_eq!(b.signed_prekey.id, 1, "the refused upload left nothing");
}

async fn quota_refuses_whole_sends_and_acks_make_room(store: Arc<dyn RelayStore>) {
    let (a, b) = (mb(1, 1), mb(2, 1));
    put(&store, vec![normal(a, b"1"), normal(a, b"2")], 3)
        .await
        .expect("two fit");
    let refused = put(
        &store,
        vec![normal(b, b"x"), normal(a, b"3"), normal(a, b"4")],
        3,
    )
    .await;
    assert!(matches!(refused, Err(Error::QuotaExceeded)));
    assert!(
        ids(&store, b).await.is_empty(),
        "a refused send stores nothing"
    );
    assert_eq!(store.queued(a, NOW).await.expect("queued"), 2);
    put(&store, vec![normal(a, b"3")], 3)
        .await
        .expect("third fits");
    assert!(matches!(
        put(&store, vec![normal(a, b"4")], 3).await,
        Err(Error::QuotaExceeded)
    ));

    let held = ids(&store, a).await;
    assert_eq!(held.len(), 3);
    assert_eq!(
        store.ack(b, held.clone()).await.expect("ack"),
        0,
        "another mailbox's IDs"
    );
    assert_eq!(store.ack(a, vec![held[0], 999_999]).await.expect("ack"), 1);
    assert_eq!(
        store.ack(a, vec![held[0]]).await.expect("ack"),
        0,
        "already gone"
    );
    put(&store, vec![normal(a, b"4")], 3)
        .await
        .expect("room again");
    assert!(matches!(
        put(&store, vec![normal(a, b"5")], 3).await,
        Err(Error::QuotaExceeded)
    ));
}

async fn a_multi_recipient_send_skips_full_accounts_whole(store: Arc<dyn RelayStore>) {
    let (x1, x2, y1) = (mb(1, 1), mb(1, 2), mb(2, 1));
    put(&store, vec![normal(x1, b"a"), normal(x1, b"b")], 2)
        .await
        .expect("fill x1");
    let committed = Arc::new(Mutex::new(Vec::new()));
    let seen = committed.clone();
    let full = store
        .enqueue_where_room(
            vec![normal(x1, b"c"), normal(x2, b"c"), normal(y1, b"c")],
            2,
            Box::new(move |c| {
                seen.lock()
                    .expect("lock")
                    .extend(c.into_iter().map(|(m, _)| m))
            }),
        )
        .await
        .expect("partial send");
    assert_eq!(full, vec![[1; 20]], "the full account is named");
    assert_eq!(
        *committed.lock().expect("lock"),
        vec![y1],
        "only the rest was committed"
    );
    assert!(
        ids(&store, x2).await.is_empty(),
        "no device of a full account gets it"
    );
    assert_eq!(ids(&store, y1).await.len(), 1);
}

async fn fetch_gives_high_priority_first_after_the_cursor(store: Arc<dyn RelayStore>) {
    let m = mb(1, 1);
    let mut old = msg(m, Priority::Normal, false, b"old");
    old.expires_at_ms = NOW;
    put(
        &store,
        vec![
            normal(m, b"n1"),
            msg(m, Priority::High, true, b"h1"),
            msg(m, Priority::Normal, false, b"n2"),
            msg(m, Priority::High, true, b"h2"),
            old,
        ],
        10,
    )
    .await
    .expect("store");
    let all = store
        .fetch(m, Cursor::default(), NOW, 10)
        .await
        .expect("fetch");
    let bodies: Vec<&[u8]> = all.iter().map(|s| &s.envelope[..]).collect();
    assert_eq!(
        bodies,
        [&b"h1"[..], b"h2", b"n1", b"n2"],
        "expired left out"
    );
    assert!(all[0].priority == Priority::High && all[2].priority == Priority::Normal);
    assert!(all[0].id < all[1].id && all[2].id < all[3].id);
    assert_eq!(
        (all[0].sealed, all[3].sealed, all[3].stored_at_ms),
        (true, false, NOW)
    );
    let three = store
        .fetch(m, Cursor::default(), NOW, 3)
        .await
        .expect("fetch");
    assert_eq!(three.len(), 3);
    let after = Cursor {
        high: all[1].id,
        normal: all[2].id,
    };
    let rest = store.fetch(m, after, NOW, 10).await.expect("fetch");
    assert_eq!(rest.iter().map(|s| s.id).collect::<Vec<_>>(), [all[3].id]);

    assert_eq!(store.queued(m, NOW).await.expect("queued"), 4);
    assert_eq!(
        store.identified_count(m).await.expect("identified"),
        2,
        "expired counts too"
    );
    assert!(store.high_after(m, all[0].id, NOW).await.expect("high"));
    assert!(!store.high_after(m, all[1].id, NOW).await.expect("high"));
    assert!(
        !store.high_after(m, 0, NOW + 60_000).await.expect("high"),
        "expired"
    );
}

async fn commit_hooks_carry_growing_ids_in_commit_order(store: Arc<dyn RelayStore>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sends: Vec<_> = (0..200u32)
        .map(|i| {
            let (store, seen) = (store.clone(), seen.clone());
            tokio::spawn(async move {
                let to = mb((i % 5) as u8, 1);
                let hook: rankfile_relay::OnCommit = Box::new(move |c| {
                    let mut seen = seen.lock().expect("lock");
                    seen.extend(c.into_iter().map(|(_, s)| s.id));
                });
                store
                    .enqueue(vec![normal(to, &i.to_be_bytes())], 1_000, hook)
                    .await
            })
        })
        .collect();
    for s in sends {
        s.await.expect("join").expect("send");
    }
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 200);
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "hooks run in commit order, IDs grow"
    );
    let mut stored = Vec::new();
    for a in 0..5 {
        stored.extend(ids(&store, mb(a, 1)).await);
    }
    stored.sort_unstable();
    assert_eq!(stored, seen, "each hooked message is stored, once");
}

async fn sweeps_remove_what_expired_and_free_the_quota(store: Arc<dyn RelayStore>) {
    let m = mb(1, 1);
    put(&store, vec![normal(m, b"a"), normal(m, b"b")], 2)
        .await
        .expect("fill");
    let blob = |address: u8, expires_at_ms| AttachmentMeta {
        address: [address; 32],
        size: 10,
        expires_at_ms,
        delete_hash: None,
    };
    store.put_attachment(blob(1, NOW + 10)).await.expect("put");
    store
        .put_attachment(blob(2, NOW + 100_000))
        .await
        .expect("put");
    assert_eq!(
        store.attachment([1; 32], NOW).await.expect("get"),
        Some(blob(1, NOW + 10))
    );
    assert!(
        store
            .attachment([1; 32], NOW + 10)
            .await
            .expect("get")
            .is_none(),
        "expired"
    );

    let nothing = store.sweep(NOW).await.expect("sweep");
    assert_eq!((nothing.messages, nothing.attachments.len()), (0, 0));
    let later = NOW + 60_000;
    let swept = store.sweep(later).await.expect("sweep");
    assert_eq!(swept.messages, 2);
    assert_eq!(swept.attachments, vec![[1; 32]]);
    assert!(store
        .attachment([2; 32], later)
        .await
        .expect("get")
        .is_some());
    put(&store, vec![normal(m, b"c"), normal(m, b"d")], 2)
        .await
        .expect("the swept messages no longer count");
}

async fn deleting_an_account_removes_everything_of_it(store: Arc<dyn RelayStore>) {
    let (gone, stays) = (mb(1, 1), mb(2, 1));
    for m in [gone, mb(1, 2), stays] {
        store
            .register_device(m, vec![1; 33], NOW)
            .await
            .expect("register");
        let up = PreKeyUpload {
            signed_prekey: Some(key(1, 1)),
            kyber_last_resort: Some(key(2, 2)),
            one_time: vec![key(3, 3)],
            ..PreKeyUpload::default()
        };
        store.upload_prekeys(m, up, 10).await.expect("prekeys");
        store
            .set_push_endpoint(m, Some("https://push.example/x".into()), NOW)
            .await
            .expect("endpoint");
        put(&store, vec![normal(m, b"a"), normal(m, b"b")], 2)
            .await
            .expect("fill");
    }
    let owned = |address: u8, hash: u8| AttachmentMeta {
        address: [address; 32],
        size: 1,
        expires_at_ms: NOW + 1000,
        delete_hash: Some([hash; 32]),
    };
    store.put_attachment(owned(1, 11)).await.expect("put");
    store.put_attachment(owned(2, 22)).await.expect("put");
    let deleted = store
        .delete_account([1; 20], vec![([1; 32], [11; 32]), ([2; 32], [99; 32])])
        .await
        .expect("delete");
    assert_eq!(
        deleted,
        vec![[1; 32]],
        "only the attachment whose key matched"
    );
    assert!(store.attachment([2; 32], NOW).await.expect("get").is_some());
    for m in [gone, mb(1, 2)] {
        assert!(store.device(m).await.expect("device").is_none());
        assert!(ids(&store, m).await.is_empty());
        assert_eq!(store.prekey_counts(m).await.expect("counts"), (0, 0));
        assert!(store.push_endpoint(m).await.expect("endpoint").is_none());
    }
    assert!(store.device(stays).await.expect("device").is_some());
    assert_eq!(ids(&store, stays).await.len(), 2);
    assert_eq!(store.push_endpoint_count().await.expect("count"), 1);
    put(&store, vec![normal(gone, b"c"), normal(gone, b"d")], 2)
        .await
        .expect("a deleted mailbox starts from zero");
}

async fn push_endpoints_are_set_found_and_removed(store: Arc<dyn RelayStore>) {
    let (a, b) = (mb(2, 1), mb(1, 1));
    assert_eq!(store.push_endpoint_count().await.expect("count"), 0);
    assert!(store.push_endpoint_at(0).await.expect("at").is_none());
    store
        .set_push_endpoint(a, Some("https://p/a".into()), NOW)
        .await
        .expect("set");
    store
        .set_push_endpoint(b, Some("https://p/b".into()), NOW)
        .await
        .expect("set");
    store
        .set_push_endpoint(a, Some("https://p/a2".into()), NOW)
        .await
        .expect("replace");
    assert_eq!(
        store.push_endpoint(a).await.expect("get").as_deref(),
        Some("https://p/a2")
    );
    assert_eq!(store.push_endpoint_count().await.expect("count"), 2);
    let mut listed = vec![
        store.push_endpoint_at(0).await.expect("at").expect("first"),
        store
            .push_endpoint_at(1)
            .await
            .expect("at")
            .expect("second"),
    ];
    listed.sort_by_key(|m| m.account);
    assert_eq!(listed, [b, a]);
    assert!(store.push_endpoint_at(2).await.expect("at").is_none());
    assert!(!store
        .remove_push_endpoint(a, "https://p/a".into())
        .await
        .expect("stale url"));
    assert!(store
        .remove_push_endpoint(a, "https://p/a2".into())
        .await
        .expect("remove"));
    store.set_push_endpoint(b, None, NOW).await.expect("clear");
    assert_eq!(store.push_endpoint_count().await.expect("count"), 0);
}
