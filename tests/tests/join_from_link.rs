//! The invite link alone: a fresh phone that knows no relay opens its store
//! with `Client::open` and joins from the link (which carries the relay's
//! address and certificate fingerprint), and any organizer of the committee
//! who is online admits it — here the second organizer, while the one who
//! made the link is offline. When both organizers answer at once, one
//! admission stands on every phone.

use std::path::Path;

use rankfile_core::committee::{CommitteeId, CommitteeMeta, CommitteeState, InviteToken, Role};
use rankfile_core::transport::{Client, ConnectionState};
use rankfile_core::{AccountId, DatabaseKey};
use rankfile_tests::{eventually, in_an_hour, relay, wait_connected};

/// An organizer's phone: a client opened in its own directory, and its key.
async fn phone(
    dir: &Path,
    name: &str,
    relay: &rankfile_relay::RelayHandle,
) -> (Client, AccountId, DatabaseKey) {
    let key = DatabaseKey::generate();
    let client = Client::open(&dir.join(name), &key, Some(relay::address(relay))).expect("client");
    wait_connected(&client).await;
    let id = client.id().await.expect("id");
    (client, id, key)
}

async fn state(client: &Client, committee: CommitteeId) -> Option<CommitteeState> {
    client.committee(committee).await.ok()
}

/// A committee with two organizers, `a` its founder; `a` holds `b`'s access
/// key (from a message of theirs), so `a`'s invites name `b` too.
async fn two_organizers(a: &Client, b: &Client, b_id: AccountId) -> CommitteeId {
    let committee = a
        .create_committee(CommitteeMeta {
            name: "Bus depot".into(),
            ..CommitteeMeta::default()
        })
        .await
        .expect("found");
    a.add_contact_from_relay("B".into(), b_id)
        .await
        .expect("contact");
    a.add_member(committee, b_id, Role::Organizer)
        .await
        .expect("add");
    eventually(20, "the second organizer holds the log", || async {
        state(b, committee)
            .await
            .is_some_and(|s| s.role(&b_id) == Some(Role::Organizer))
    })
    .await;
    let a_id = a.id().await.expect("id");
    b.send_text(a_id, "here".into()).await.expect("text");
    eventually(
        20,
        "the founder hears from the second organizer",
        || async {
            a.history(b_id, None, 10)
                .await
                .is_ok_and(|h| h.iter().any(|m| m.body == "here"))
        },
    )
    .await;
    committee
}

/// The newcomer is a member once on every phone, and the invite counts one use.
async fn admitted_once(
    phones: &[&Client],
    committee: CommitteeId,
    token: &InviteToken,
    who: AccountId,
) {
    for p in phones {
        eventually(30, "every phone holds the same admission", || async {
            state(p, committee).await.is_some_and(|s| {
                s.members.contains_key(&who)
                    && s.invites.get(&token.invite_id).is_some_and(|i| i.uses == 1)
            })
        })
        .await;
    }
    let first = state(phones[0], committee).await.expect("state");
    for p in &phones[1..] {
        let s = state(p, committee).await.expect("state");
        assert_eq!(
            s.members.keys().collect::<Vec<_>>(),
            first.members.keys().collect::<Vec<_>>()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_phone_joins_from_the_link_alone_and_the_other_organizer_admits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay::start(&dir.path().join("relay")).await;
    let (a, _, a_key) = phone(dir.path(), "a", &relay).await;
    let (b, b_id, _) = phone(dir.path(), "b", &relay).await;
    let committee = two_organizers(&a, &b, b_id).await;

    let token = a
        .create_invite(committee, in_an_hour(), 1)
        .await
        .expect("invite");
    let link = token.to_link();
    // What the QR code holds: the relay and both organizers, still short.
    let parsed = InviteToken::parse(&link).expect("parses");
    assert_eq!(parsed.relay, Some(relay::address(&relay)));
    assert_eq!(parsed.organizers().len(), 2);
    assert_eq!(link.len(), 274, "an IPv4 relay and two organizers");

    // The organizer who made the link goes offline, once the other holds
    // the invite (its entry went to the members with the link's making).
    eventually(20, "the second organizer holds the invite", || async {
        state(&b, committee)
            .await
            .is_some_and(|s| s.invites.contains_key(&token.invite_id))
    })
    .await;
    a.close().await.expect("offline");

    // A phone with a new store and no relay: the link is all it has.
    let home = dir.path().join("newcomer");
    let key = DatabaseKey::generate();
    let newcomer = Client::open(&home, &key, None).expect("opens");
    assert_eq!(newcomer.connection_state(), ConnectionState::NoRelay);
    let me = newcomer.id().await.expect("id");
    assert_eq!(newcomer.join(&link).await.expect("join"), committee);
    assert_eq!(newcomer.relay(), Some(relay::address(&relay)));
    eventually(30, "the second organizer admits the newcomer", || async {
        state(&newcomer, committee)
            .await
            .is_some_and(|s| s.members.contains_key(&me))
    })
    .await;
    // The relay is remembered: opened again with none given, it connects.
    newcomer.close().await.expect("closed");
    let newcomer = Client::open(&home, &key, None).expect("reopens");
    wait_connected(&newcomer).await;

    // The first organizer comes back to a request already answered (or
    // answers it at once, concurrently): one admission stands everywhere.
    let a = Client::open(&dir.path().join("a"), &a_key, None).expect("back");
    wait_connected(&a).await;
    admitted_once(&[&a, &b, &newcomer], committee, &token, me).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_organizers_answering_at_once_admit_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay::start(&dir.path().join("relay")).await;
    let (a, _, _) = phone(dir.path(), "a", &relay).await;
    let (b, b_id, _) = phone(dir.path(), "b", &relay).await;
    let committee = two_organizers(&a, &b, b_id).await;
    let token = a
        .create_invite(committee, in_an_hour(), 1)
        .await
        .expect("invite");

    let newcomer =
        Client::open(&dir.path().join("newcomer"), &DatabaseKey::generate(), None).expect("opens");
    let me = newcomer.id().await.expect("id");
    newcomer.join(&token.to_link()).await.expect("join");
    admitted_once(&[&a, &b, &newcomer], committee, &token, me).await;
}
