//! Access keys rotate when a member is removed: through a real relay on
//! loopback, the members who remain replace their keys and tell each other,
//! the removed member's sealed mail to them is refused by the relay (it goes
//! identified, where the relay's per-sender limits see it), and a member who
//! was offline across the change and sends with the old keys still reaches
//! everyone.

use std::path::Path;

use rankfile_core::committee::{ChannelKind, CommitteeId, CommitteeMeta, CommitteeState, Role};
use rankfile_core::transport::Client;
use rankfile_core::AccountId;
use rankfile_tests::online::{introduce_online as connect, OnlinePhone as Phone};
use rankfile_tests::{eventually, relay};

async fn phone(dir: &Path, name: &str, relay: &rankfile_relay::RelayHandle) -> Phone {
    Phone::start(dir, name, relay).await
}

async fn own_key(p: &Phone) -> [u8; 16] {
    p.client
        .with_account(|a| a.access_key().expect("key"))
        .await
        .expect("account")
}

async fn key_held(p: &Phone, of: AccountId) -> Option<[u8; 16]> {
    p.client
        .with_account(move |a| a.contact_access_key(&of).expect("key"))
        .await
        .expect("account")
}

async fn state(p: &Phone, id: CommitteeId) -> Option<CommitteeState> {
    p.client.committee(id).await.ok()
}

async fn posts(p: &Phone, channel: [u8; 16]) -> Vec<String> {
    p.client
        .with_account(move |a| {
            a.channel_history(&channel, None, 100)
                .expect("history")
                .into_iter()
                .filter(|m| !m.outgoing)
                .map(|m| m.body)
                .collect()
        })
        .await
        .expect("account")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_member_loses_sealed_access_and_nothing_is_lost_to_the_new_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay::start(&dir.path().join("relay")).await;
    let o = phone(dir.path(), "organizer", &relay).await;
    let m1 = phone(dir.path(), "m1", &relay).await;
    let m2 = phone(dir.path(), "m2", &relay).await;
    let x = phone(dir.path(), "infiltrator", &relay).await;
    for p in [&m1, &m2, &x] {
        connect(&o, p).await;
    }
    connect(&m1, &x).await;
    connect(&m1, &m2).await;
    connect(&m2, &x).await;
    let committee = o
        .client
        .create_committee(CommitteeMeta {
            name: "Loading dock".into(),
            ..CommitteeMeta::default()
        })
        .await
        .expect("found");
    for p in [&m1, &m2, &x] {
        o.client
            .add_member(committee, p.id, Role::Member)
            .await
            .expect("add");
    }
    let channel = o
        .client
        .create_channel(committee, ChannelKind::Discussion)
        .await
        .expect("channel");
    let full = state(&o, committee).await.expect("state");
    for p in [&m1, &m2, &x] {
        eventually(30, "everyone folds the log", || async {
            state(p, committee).await.as_ref() == Some(&full)
        })
        .await;
    }
    let m1_old = own_key(&m1).await;
    let m2_old = own_key(&m2).await;
    assert_eq!(key_held(&x, m1.id).await, Some(m1_old));

    // m2 is offline across the removal, and writes a post meanwhile.
    let mut m2_account = m2.client.shutdown().await.expect("stop");
    o.client
        .remove_member(committee, x.id)
        .await
        .expect("remove");

    // Those online who remain replace their keys and tell each other; the
    // one removed is not told.
    eventually(30, "m1 replaces its key", || async {
        own_key(&m1).await != m1_old
    })
    .await;
    let m1_new = own_key(&m1).await;
    let o_new = own_key(&o).await;
    eventually(30, "the organizer learns m1's new key", || async {
        key_held(&o, m1.id).await == Some(m1_new)
    })
    .await;
    eventually(30, "m1 learns the organizer's new key", || async {
        key_held(&m1, o.id).await == Some(o_new)
    })
    .await;
    assert_eq!(key_held(&x, m1.id).await, Some(m1_old), "x was not told");

    // The removed member writes to m1 with the key it kept: the relay refuses
    // it sealed; it arrives identified (the relay sees who sent it), and x
    // forgets the key.
    x.client
        .send_text(m1.id, "let me back in".into())
        .await
        .expect("send");
    eventually(30, "x's message arrives identified", || {
        m1.has_text_from(x.id, "let me back in")
    })
    .await;
    assert_eq!(
        key_held(&x, m1.id).await,
        None,
        "the relay refused the old key"
    );

    // m2 posts with the keys it had, and comes back: the post is refused for
    // the replaced keys, sent again, and reaches every member who remains.
    m2_account
        .post(&committee, &channel, "written offline")
        .expect("post");
    let m2 = Phone {
        client: Client::start(m2_account, relay::address(&relay)).expect("restart"),
        id: m2.id,
    };
    for p in [&o, &m1] {
        eventually(60, "the offline post arrives", || async {
            posts(p, channel).await == ["written offline"]
        })
        .await;
    }
    // m2 caught up with the removal, replaced its key and told the others.
    eventually(30, "m2 folds the removal", || async {
        state(&m2, committee)
            .await
            .is_some_and(|s| !s.members.contains_key(&x.id))
    })
    .await;
    eventually(30, "m2 replaces its key", || async {
        own_key(&m2).await != m2_old
    })
    .await;
    let m2_new = own_key(&m2).await;
    eventually(30, "m1 learns m2's new key", || async {
        key_held(&m1, m2.id).await == Some(m2_new)
    })
    .await;
    relay.shutdown().await;
}
