//! Committees end to end through a real relay on loopback: membership changes
//! travel as signed log entries over the 1:1 sessions, channel messages under
//! sender keys that rotate when a member is removed, a change signed by a
//! non-organizer is rejected everywhere, and concurrent changes by two
//! organizers converge.

use std::path::Path;
use std::time::Instant;

use rankfile_core::committee::{
    ChannelKind, CommitteeId, CommitteeMeta, CommitteeState, RejectReason, Role,
};
use rankfile_core::transport::Client;
use rankfile_core::{AccountId, Error, Inbound};
use rankfile_tests::online::{introduce_online as connect, OnlinePhone as Phone};
use rankfile_tests::{eventually, outbox_drained, relay};

/// Members of the large committee, organizers included (the 50: about
/// 21 s on a 2-core machine, most of it opening the organizers' sessions).
const MEMBERS: usize = 50;

async fn phone(dir: &Path, name: &str, relay: &rankfile_relay::RelayHandle) -> Phone {
    Phone::start(dir, name, relay).await
}

async fn state(p: &Phone, id: CommitteeId) -> Option<CommitteeState> {
    p.client.committee(id).await.ok()
}

async fn channel_bodies(p: &Phone, channel: [u8; 16]) -> Vec<String> {
    p.client
        .with_account(move |a| {
            let mut v: Vec<String> = a
                .channel_history(&channel, None, 10_000)
                .expect("history")
                .into_iter()
                .filter(|m| !m.outgoing)
                .map(|m| m.body)
                .collect();
            v.sort();
            v
        })
        .await
        .expect("account")
}

fn meta(name: &str) -> CommitteeMeta {
    CommitteeMeta {
        name: name.into(),
        workplace: "Depot 4".into(),
        ..CommitteeMeta::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_member_reads_each_post_once_and_a_removed_member_reads_nothing_new() {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay::start(&dir.path().join("relay")).await;
    let mut phones = Vec::new();
    for i in 0..MEMBERS {
        phones.push(phone(dir.path(), &format!("p{i}"), &relay).await);
    }
    // p0 founds the committee, p1 is the second organizer: both know everyone.
    for i in 1..MEMBERS {
        connect(&phones[0], &phones[i]).await;
    }
    for i in 2..MEMBERS {
        connect(&phones[1], &phones[i]).await;
    }
    let (o1, o2) = (&phones[0], &phones[1]);
    let committee = o1
        .client
        .create_committee(meta("Night shift"))
        .await
        .expect("found");
    o1.client
        .add_member(committee, o2.id, Role::Organizer)
        .await
        .expect("add organizer");
    for p in &phones[2..] {
        let change = o1
            .client
            .add_member(committee, p.id, Role::Member)
            .await
            .expect("add");
        assert!(change.unreachable.is_empty());
    }
    let discussion = o1
        .client
        .create_channel(committee, ChannelKind::Discussion)
        .await
        .expect("channel");
    let announcements = o1
        .client
        .create_channel(committee, ChannelKind::Announcement)
        .await
        .expect("channel");
    let full = state(o1, committee).await.expect("state");
    assert_eq!(full.members.len(), MEMBERS);
    for p in &phones {
        eventually(60, "everyone folds the same log", || async {
            state(p, committee).await.as_ref() == Some(&full)
        })
        .await;
    }
    let setup = started.elapsed();

    // A plain member may not post announcements.
    let refused = phones[2]
        .client
        .post(committee, announcements, "not mine to say".into())
        .await;
    assert!(matches!(refused, Err(Error::MayNotPost(_))), "{refused:?}");

    for i in 0..3 {
        o1.client
            .post(committee, discussion, format!("o1 says {i}"))
            .await
            .expect("post");
    }
    o2.client
        .post(committee, discussion, "o2 says".into())
        .await
        .expect("post");
    o1.client
        .post(committee, announcements, "strike vote friday".into())
        .await
        .expect("announce");
    for (i, p) in phones.iter().enumerate() {
        let mut want: Vec<String> = Vec::new();
        if i != 0 {
            want.extend((0..3).map(|n| format!("o1 says {n}")));
        }
        if i != 1 {
            want.push("o2 says".into());
        }
        want.sort();
        eventually(60, "every post arrives", || async {
            channel_bodies(p, discussion).await.len() >= want.len()
        })
        .await;
        assert_eq!(channel_bodies(p, discussion).await, want, "each post once");
        if i != 0 {
            eventually(60, "the announcement arrives", || async {
                channel_bodies(p, announcements).await == ["strike vote friday"]
            })
            .await;
        }
    }
    let fan_out = started.elapsed() - setup;

    // The last member is removed. It keeps its database and every key in it.
    let removed = phones.pop().expect("a member");
    let removed_id = removed.id;
    let mut removed_account = removed.client.shutdown().await.expect("stop");
    let (o1, o2) = (&phones[0], &phones[1]);
    o1.client
        .remove_member(committee, removed_id)
        .await
        .expect("remove");
    let after = state(o1, committee).await.expect("state");
    assert_eq!(after.members.len(), MEMBERS - 1);
    for p in &phones {
        eventually(60, "everyone applies the removal", || async {
            state(p, committee).await.as_ref() == Some(&after)
        })
        .await;
    }
    // Both organizers post again: each starts a new sender key first.
    let posts = [
        o1.client
            .post(committee, discussion, "after the removal".into())
            .await
            .expect("post"),
        o2.client
            .post(committee, discussion, "o2 after the removal".into())
            .await
            .expect("post"),
    ];
    for p in &phones[2..] {
        eventually(60, "posts after the removal arrive", || async {
            channel_bodies(p, discussion).await.len() == 6
        })
        .await;
    }
    let before = removed_account.dump_database().expect("dump");
    for post in &posts {
        let parsed =
            libsignal_protocol::SealedSenderV2SentMessage::parse(&post.bytes).expect("parse");
        for (_, recipient) in &parsed.recipients {
            let piece = parsed
                .received_message_parts_for_recipient(recipient)
                .as_ref()
                .concat();
            let r = removed_account
                .receive_all(&[Inbound::Sealed(&piece)])
                .expect("batch");
            assert!(r[0].is_err(), "the removed member read a post: {:?}", r[0]);
        }
    }
    assert_eq!(before, removed_account.dump_database().expect("dump"));
    assert_eq!(
        removed_account
            .channel_history(&discussion, None, 100)
            .expect("history")
            .len(),
        4,
        "only what was posted before the removal"
    );
    eprintln!(
        "{MEMBERS} members: setup {setup:?}, 5 posts to all {fan_out:?}, total {:?}",
        started.elapsed()
    );
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_changes_converge_and_a_non_organizer_change_is_rejected_everywhere() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay::start(&dir.path().join("relay")).await;
    let mut phones = Vec::new();
    for name in ["o1", "o2", "ana", "ben", "chen"] {
        phones.push(phone(dir.path(), name, &relay).await);
    }
    for i in 1..phones.len() {
        connect(&phones[0], &phones[i]).await;
    }
    for i in 2..phones.len() {
        connect(&phones[1], &phones[i]).await;
    }
    let ids: Vec<AccountId> = phones.iter().map(|p| p.id).collect();
    let (o2, ana, ben, chen) = (ids[1], ids[2], ids[3], ids[4]);
    let committee = phones[0]
        .client
        .create_committee(meta("Warehouse"))
        .await
        .expect("found");
    for (who, role) in [
        (o2, Role::Organizer),
        (ana, Role::Member),
        (ben, Role::Member),
    ] {
        phones[0]
            .client
            .add_member(committee, who, role)
            .await
            .expect("add");
    }
    for p in &phones[..4] {
        eventually(30, "four members", || async {
            state(p, committee)
                .await
                .is_some_and(|s| s.members.len() == 4)
        })
        .await;
    }

    // At the same moment o1 adds chen and o2 removes ben.
    let (a, b) = tokio::join!(
        phones[0].client.add_member(committee, chen, Role::Member),
        phones[1].client.remove_member(committee, ben),
    );
    a.expect("add");
    b.expect("remove");
    let watchers = [0usize, 1, 2, 4];
    eventually(30, "everyone converges", || async {
        let mut states = Vec::new();
        for &i in &watchers {
            states.push(state(&phones[i], committee).await);
        }
        states.iter().all(|s| s.is_some() && *s == states[0])
    })
    .await;
    let converged = state(&phones[0], committee).await.expect("state");
    assert!(converged.members.contains_key(&chen));
    assert!(!converged.members.contains_key(&ben));

    // o1 demotes o2 while o2 is offline; o2, not knowing, re-adds ben. Its
    // entry is made concurrently with its demotion: void everywhere.
    let o2_phone = phones.remove(1);
    let mut o2_account = o2_phone.client.shutdown().await.expect("stop");
    phones[0]
        .client
        .change_role(committee, o2, Role::Member)
        .await
        .expect("demote");
    outbox_drained(&phones[0].client, 30, "the demotion reaches the relay").await;
    o2_account
        .add_member(&committee, &ben, Role::Member)
        .expect("o2 still thinks it is an organizer");
    let o2_client = Client::start(o2_account, relay::address(&relay)).expect("restart");
    phones.insert(
        1,
        Phone {
            client: o2_client,
            id: o2,
        },
    );
    eventually(
        30,
        "every member rejects o2's change and agrees",
        || async {
            let mut states = Vec::new();
            for &i in &watchers {
                let p = &phones[i];
                let rejected = p
                    .client
                    .with_account(move |a| a.committee_rejections(&committee).unwrap_or_default())
                    .await
                    .unwrap_or_default();
                if !rejected
                    .iter()
                    .any(|r| r.author == o2 && r.reason == RejectReason::RevokedConcurrently(o2))
                {
                    return false;
                }
                states.push(state(p, committee).await);
            }
            states.iter().all(|s| *s == states[0])
        },
    )
    .await;
    let last = state(&phones[0], committee).await.expect("state");
    assert!(!last.members.contains_key(&ben));
    assert_eq!(last.role(&o2), Some(Role::Member));
    relay.shutdown().await;
}
