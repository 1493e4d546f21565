//! First contact without naming the sender to the relay, watched from the
//! relay's own database while each recipient is offline (so what was sent
//! is still stored there): a join request from a fresh account that has no
//! sender certificate yet, one from a connected account, the organizer's
//! answer, a link proposal to another committee's organizer met only through
//! its contact card, and the accepting organizer's first messages to the
//! proposer's delegate. Every stored row must be sealed and hold no raw
//! account ID of its sender.

mod alert_net;

use std::path::Path;

use alert_net::{committee, members, phone, Phone};
use rankfile_core::committee::{CommitteeMeta, InviteToken, LinkPolicy};
use rankfile_core::transport::Client;
use rankfile_core::{Account, AccountId, DatabaseKey};
use rankfile_tests::{contains, eventually, in_an_hour, outbox_drained, relay, wait_connected};

/// A client for `account`, connected.
async fn online(account: Account, relay: &rankfile_relay::RelayHandle) -> Phone {
    let id = account.id();
    let client = Client::start(account, relay::address(relay)).expect("client");
    let events = client.subscribe();
    wait_connected(&client).await;
    Phone { client, id, events }
}

/// Every message the relay holds for `account`: whether it is sealed, and
/// its stored bytes. Read from the relay's database file as it stands.
fn stored_for(relay_dir: &Path, account: &AccountId) -> Vec<(bool, Vec<u8>)> {
    let conn = rusqlite::Connection::open_with_flags(
        relay_dir.join("relay.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open the relay's database");
    let mut stmt = conn
        .prepare("SELECT sealed, envelope FROM messages WHERE account_id = ?1")
        .expect("query");
    stmt.query_map([&account.as_bytes()[..]], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("rows")
        .collect::<rusqlite::Result<_>>()
        .expect("rows")
}

/// The relay holds mail for `to`, all of it sealed, and none naming `from`.
fn only_sealed(relay_dir: &Path, to: &AccountId, from: &[AccountId], what: &str) {
    let rows = stored_for(relay_dir, to);
    assert!(!rows.is_empty(), "{what}: nothing stored");
    for (sealed, envelope) in &rows {
        assert!(
            *sealed,
            "{what}: stored identified, the relay saw its sender"
        );
        for sender in from {
            assert!(
                !contains(envelope, sender.as_bytes()),
                "{what}: a stored envelope names its sender"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_requests_and_their_answer_reach_the_relay_sealed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay_dir = dir.path().join("relay");
    let relay = relay::start(&relay_dir).await;
    let organizer = phone(dir.path(), "organizer", &relay).await;
    let committee_id = organizer
        .client
        .create_committee(CommitteeMeta {
            name: "Bakery".into(),
            ..CommitteeMeta::default()
        })
        .await
        .expect("found");
    let link = organizer
        .client
        .create_invite(committee_id, in_an_hour(), 2)
        .await
        .expect("invite")
        .to_link();
    let organizer_id = organizer.id;
    let mut organizer_account = organizer.client.shutdown().await.expect("offline");

    // A fresh account asks before it ever logged in: no sender certificate.
    let mut fresh =
        Account::create(&dir.path().join("fresh.db"), &DatabaseKey::generate()).expect("account");
    let bundle = organizer_account.prekey_bundle().expect("bundle");
    fresh.add_contact("", &bundle).expect("contact");
    fresh
        .request_join(&InviteToken::parse(&link).expect("link"))
        .expect("request");
    let fresh = online(fresh, &relay).await;
    outbox_drained(&fresh.client, 20, "the fresh account's request sent").await;
    // And a connected one, through the client, from nothing but the link.
    let connected = phone(dir.path(), "connected", &relay).await;
    connected.client.join(&link).await.expect("join");
    outbox_drained(
        &connected.client,
        20,
        "the connected account's request sent",
    )
    .await;
    only_sealed(
        &relay_dir,
        &organizer_id,
        &[fresh.id, connected.id],
        "join requests",
    );
    assert_eq!(stored_for(&relay_dir, &organizer_id).len(), 2);

    // The newcomers go offline; the organizer comes back and answers.
    let newcomers = [fresh.id, connected.id];
    let fresh_account = fresh.client.shutdown().await.expect("offline");
    let connected_account = connected.client.shutdown().await.expect("offline");
    let organizer = online(organizer_account, &relay).await;
    for id in newcomers {
        eventually(20, "admitted", || async {
            organizer
                .client
                .committee(committee_id)
                .await
                .is_ok_and(|s| s.members.contains_key(&id))
        })
        .await;
    }
    outbox_drained(&organizer.client, 20, "the answers sent").await;
    for id in newcomers {
        only_sealed(&relay_dir, &id, &[organizer_id], "the organizer's answer");
    }

    // Back online, each reads the whole log.
    for account in [fresh_account, connected_account] {
        let p = online(account, &relay).await;
        eventually(20, "the whole log arrives", || async {
            members(&p, committee_id).await == 3
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_proposal_and_the_first_messages_after_it_reach_the_relay_sealed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay_dir = dir.path().join("relay");
    let relay = relay::start(&relay_dir).await;
    let mut a = Vec::new();
    let mut b = Vec::new();
    for name in ["oa", "da", "ma"] {
        a.push(phone(dir.path(), name, &relay).await);
    }
    for name in ["ob", "db", "mb"] {
        b.push(phone(dir.path(), name, &relay).await);
    }
    let committee_a = committee("Depot A", &[&a[0], &a[1], &a[2]]).await;
    let committee_b = committee("Depot B", &[&b[0], &b[1], &b[2]]).await;
    let [oa, da, _ma] = <[Phone; 3]>::try_from(a).ok().expect("three");
    let [ob, db, _mb] = <[Phone; 3]>::try_from(b).ok().expect("three");
    let (ob_id, da_id, oa_id) = (ob.id, da.id, oa.id);

    // B's organizer hands A's its card (with B's ID), out of band.
    let card = ob.client.contact_card().await.expect("card").to_link();
    assert_eq!(
        oa.client.learn_contact_card(&card).await.expect("learn"),
        ob_id
    );

    // B's organizer and A's delegate are offline: what reaches them waits.
    let ob_account = ob.client.shutdown().await.expect("offline");
    let da_account = da.client.shutdown().await.expect("offline");
    let proposal = oa
        .client
        .propose_link(
            committee_a,
            ob_id,
            committee_b,
            vec![da_id],
            LinkPolicy::Forward,
            "Depots council".into(),
        )
        .await
        .expect("propose");
    outbox_drained(&oa.client, 20, "the proposal sent").await;
    only_sealed(&relay_dir, &ob_id, &[oa_id], "the link proposal");

    // B's organizer accepts; its first messages to A's delegate, whom it
    // never met, are sealed with the key the proposal carried.
    let ob = online(ob_account, &relay).await;
    eventually(20, "the proposal arrives", || async {
        ob.client
            .link_proposals()
            .await
            .is_ok_and(|p| p.iter().any(|(_, p)| p.proposal_id == proposal))
    })
    .await;
    let council = ob
        .client
        .accept_link(proposal, vec![db.id], LinkPolicy::Forward)
        .await
        .expect("accept");
    outbox_drained(&ob.client, 20, "the council's log sent").await;
    // B's delegate greets the council's members it lacks a session with.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    outbox_drained(&db.client, 20, "B's delegate's greetings sent").await;
    only_sealed(
        &relay_dir,
        &da_id,
        &[ob_id, db.id, oa_id],
        "the council's first messages to A's delegate",
    );

    // A's delegate, back, holds the council with both links.
    let da = online(da_account, &relay).await;
    eventually(30, "A's delegate holds the council's links", || async {
        da.client
            .committee(council)
            .await
            .is_ok_and(|s| s.links.contains_key(&committee_a) && s.links.contains_key(&committee_b))
    })
    .await;
}
