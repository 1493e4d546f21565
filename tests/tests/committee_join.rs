//! Joining committees from invite links through a real relay on loopback: a
//! newcomer who knows nothing but the link asks the organizer it names, the
//! organizer's device admits them (at once, or when it is next online), the
//! members open sessions with each other by themselves, and everyone reads
//! every post. Invites that are used up, revoked, expired or forged admit
//! nobody.

use std::path::Path;
use std::time::Duration;

use rankfile_core::committee::{
    ChannelKind, CommitteeId, CommitteeMeta, InviteToken, RejectReason,
};
use rankfile_core::transport::{Client, ClientEvent};
use rankfile_core::{Account, AccountId, DatabaseKey, Event};
use rankfile_tests::{eventually, in_an_hour, outbox_drained, relay, wait_connected};
use tokio::sync::broadcast;

struct Phone {
    client: Client,
    id: AccountId,
    events: broadcast::Receiver<ClientEvent>,
}

fn start(account: Account, relay: &rankfile_relay::RelayHandle) -> Phone {
    let id = account.id();
    let client = Client::start(account, relay::address(relay)).expect("client");
    let events = client.subscribe();
    Phone { client, id, events }
}

async fn phone(dir: &Path, name: &str, relay: &rankfile_relay::RelayHandle) -> Phone {
    let account = Account::create(&dir.join(format!("{name}.db")), &DatabaseKey::generate())
        .expect("account");
    let p = start(account, relay);
    wait_connected(&p.client).await;
    p
}

async fn is_member(p: &Phone, committee: CommitteeId, who: AccountId) -> bool {
    p.client
        .committee(committee)
        .await
        .is_ok_and(|s| s.members.contains_key(&who))
}

async fn members(p: &Phone, committee: CommitteeId) -> usize {
    p.client
        .committee(committee)
        .await
        .map(|s| s.members.len())
        .unwrap_or(0)
}

async fn received(p: &Phone, channel: [u8; 16]) -> Vec<String> {
    p.client
        .with_account(move |a| {
            let mut v: Vec<String> = a
                .channel_history(&channel, None, 1000)
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

/// Waits for a refusal of `who`'s join on the organizer's event stream.
async fn refusal(events: &mut broadcast::Receiver<ClientEvent>, who: AccountId) -> RejectReason {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Ok(ClientEvent::Core(Event::JoinRefused {
                account, reason, ..
            }))) if account == who => return reason,
            Ok(Ok(_)) | Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(e)) => panic!("event stream: {e}"),
            Err(_) => panic!("no refusal for {who}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committee_forms_from_an_invite_link_and_every_member_reads_every_post() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay::start(&dir.path().join("relay")).await;
    let organizer = phone(dir.path(), "organizer", &relay).await;
    let committee = organizer
        .client
        .create_committee(CommitteeMeta {
            name: "Warehouse 9".into(),
            ..CommitteeMeta::default()
        })
        .await
        .expect("found");
    let channel = organizer
        .client
        .create_channel(committee, ChannelKind::Discussion)
        .await
        .expect("channel");
    let link = organizer
        .client
        .create_invite(committee, in_an_hour(), 3)
        .await
        .expect("invite")
        .to_link();

    // Three newcomers with nothing but the link: no contact, no session.
    let mut newcomers = Vec::new();
    for i in 0..3 {
        let p = phone(dir.path(), &format!("newcomer{i}"), &relay).await;
        assert_eq!(p.client.join(&link).await.expect("join"), committee);
        assert_eq!(p.client.pending_joins().await.expect("pending").len(), 1);
        newcomers.push(p);
    }
    for p in &newcomers {
        eventually(20, "admitted on the organizer's device", || {
            is_member(&organizer, committee, p.id)
        })
        .await;
    }
    for p in &newcomers {
        eventually(20, "the whole log reaches the newcomer", || async {
            members(p, committee).await == 4
        })
        .await;
        assert!(p.client.pending_joins().await.expect("pending").is_empty());
        let state = p.client.committee(committee).await.expect("state");
        assert_eq!(state.meta.name, "Warehouse 9");
        assert!(state.channels.contains_key(&channel));
    }
    // The invite counts its three admissions.
    let state = organizer.client.committee(committee).await.expect("state");
    let invite = state.invites.values().next().expect("the invite");
    assert_eq!(invite.uses, 3);

    // Everyone posts; the members opened the sessions they lacked themselves.
    let everyone: Vec<&Phone> = std::iter::once(&organizer)
        .chain(newcomers.iter())
        .collect();
    for (i, p) in everyone.iter().enumerate() {
        let text = format!("post {i}");
        let mut tries = 0;
        // A post waits for access keys that hellos still carry: retried
        // while the sessions between members settle.
        loop {
            match p.client.post(committee, channel, text.clone()).await {
                Ok(_) => break,
                Err(e) if tries < 100 => {
                    tries += 1;
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("post {i}: {e}"),
            }
        }
        outbox_drained(&p.client, 20, "post sent").await;
    }
    for (i, p) in everyone.iter().enumerate() {
        let expected: Vec<String> = (0..everyone.len())
            .filter(|j| *j != i)
            .map(|j| format!("post {j}"))
            .collect();
        eventually(30, "every post arrives once", || async {
            received(p, channel).await == expected
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_organizer_admits_when_it_is_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay::start(&dir.path().join("relay")).await;
    let organizer = phone(dir.path(), "organizer", &relay).await;
    let committee = organizer
        .client
        .create_committee(CommitteeMeta {
            name: "Depot".into(),
            ..CommitteeMeta::default()
        })
        .await
        .expect("found");
    let link = organizer
        .client
        .create_invite(committee, in_an_hour(), 1)
        .await
        .expect("invite")
        .to_link();
    let account = organizer.client.shutdown().await.expect("offline");

    let newcomer = phone(dir.path(), "newcomer", &relay).await;
    newcomer.client.join(&link).await.expect("join");
    outbox_drained(&newcomer.client, 20, "request sent").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        members(&newcomer, committee).await,
        0,
        "nobody admitted yet"
    );

    let organizer = start(account, &relay);
    eventually(20, "admitted once the organizer is back", || async {
        members(&newcomer, committee).await == 2
    })
    .await;
    assert!(is_member(&organizer, committee, newcomer.id).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn used_up_revoked_expired_and_forged_invites_admit_nobody() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay::start(&dir.path().join("relay")).await;
    let mut organizer = phone(dir.path(), "organizer", &relay).await;
    let committee = organizer
        .client
        .create_committee(CommitteeMeta {
            name: "Depot".into(),
            ..CommitteeMeta::default()
        })
        .await
        .expect("found");
    let once = organizer
        .client
        .create_invite(committee, in_an_hour(), 1)
        .await
        .expect("invite");
    let revoked = organizer
        .client
        .create_invite(committee, in_an_hour(), 5)
        .await
        .expect("invite");
    organizer
        .client
        .revoke_invite(committee, revoked.invite_id)
        .await
        .expect("revoke");
    let expiring = organizer
        .client
        .create_invite(committee, in_an_hour() - 3_600_000 + 1_000, 5)
        .await
        .expect("invite");

    let first = phone(dir.path(), "first", &relay).await;
    first.client.join(&once.to_link()).await.expect("join");
    eventually(20, "the first is admitted", || {
        is_member(&organizer, committee, first.id)
    })
    .await;

    // Used up.
    let second = phone(dir.path(), "second", &relay).await;
    second.client.join(&once.to_link()).await.expect("join");
    assert!(matches!(
        refusal(&mut organizer.events, second.id).await,
        RejectReason::InviteUsedUp { .. }
    ));
    // Revoked.
    let third = phone(dir.path(), "third", &relay).await;
    third.client.join(&revoked.to_link()).await.expect("join");
    assert!(matches!(
        refusal(&mut organizer.events, third.id).await,
        RejectReason::InviteRevoked(_)
    ));
    // Expired: the newcomer's device sees it on the link; a link whose shown
    // expiry was pushed forward is still refused by the organizer's log.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let fourth = phone(dir.path(), "fourth", &relay).await;
    assert!(fourth.client.join(&expiring.to_link()).await.is_err());
    let mut stretched: InviteToken = expiring.clone();
    stretched.expires_at_ms = in_an_hour();
    fourth
        .client
        .join(&stretched.to_link())
        .await
        .expect("join");
    assert!(matches!(
        refusal(&mut organizer.events, fourth.id).await,
        RejectReason::InviteExpired(_)
    ));
    // Forged: one invite's ID with another's secret.
    let fifth = phone(dir.path(), "fifth", &relay).await;
    let open = organizer
        .client
        .create_invite(committee, in_an_hour(), 5)
        .await
        .expect("invite");
    let mut forged = open.clone();
    forged.secret = revoked.secret.clone();
    fifth.client.join(&forged.to_link()).await.expect("join");
    assert!(matches!(
        refusal(&mut organizer.events, fifth.id).await,
        RejectReason::InviteSecretMismatch(_)
    ));

    let state = organizer.client.committee(committee).await.expect("state");
    assert_eq!(state.members.len(), 2, "only the first got in");
    for p in [&second, &third, &fourth, &fifth] {
        assert_eq!(members(p, committee).await, 0);
        assert_eq!(p.client.pending_joins().await.expect("pending").len(), 1);
    }
}
