//! Shared by the alert scenarios: phones on a real relay, committees of
//! three formed from invites, links proposed and accepted, and the network
//! both scenarios use: four committees, two councils and a regional council.

#![allow(dead_code)] // each test file uses its own part of it

use std::collections::HashMap;
use std::path::Path;

use rankfile_core::alert::AlertId;
use rankfile_core::committee::{CommitteeId, CommitteeMeta, LinkPolicy, Role};
use rankfile_core::transport::{Client, ClientEvent};
use rankfile_core::{AccountId, Event};
use rankfile_tests::{connected_client, eventually, in_an_hour};
use tokio::sync::broadcast;

pub struct Phone {
    pub client: Client,
    pub id: AccountId,
    pub events: broadcast::Receiver<ClientEvent>,
}

pub async fn phone(dir: &Path, name: &str, relay: &rankfile_relay::RelayHandle) -> Phone {
    let (client, id) = connected_client(dir, name, relay).await;
    let events = client.subscribe();
    Phone { client, id, events }
}

pub async fn members(p: &Phone, committee: CommitteeId) -> usize {
    p.client
        .committee(committee)
        .await
        .map(|s| s.members.len())
        .unwrap_or(0)
}

/// A committee of three from an invite: the organizer, a delegate, a member.
pub async fn committee(name: &str, phones: &[&Phone; 3]) -> CommitteeId {
    let [organizer, delegate, member] = phones;
    let id = organizer
        .client
        .create_committee(CommitteeMeta {
            name: name.into(),
            ..CommitteeMeta::default()
        })
        .await
        .expect("found");
    let link = organizer
        .client
        .create_invite(id, in_an_hour(), 2)
        .await
        .expect("invite")
        .to_link();
    for p in [delegate, member] {
        p.client.join(&link).await.expect("join");
    }
    for p in phones {
        eventually(30, "everyone holds the whole committee", || async {
            members(p, id).await == 3
        })
        .await;
    }
    organizer
        .client
        .change_role(id, delegate.id, Role::Delegate)
        .await
        .expect("delegate");
    eventually(20, "the delegate's role arrives", || async {
        delegate
            .client
            .committee(id)
            .await
            .is_ok_and(|s| s.role(&delegate.id) == Some(Role::Delegate))
    })
    .await;
    id
}

/// `from` (organizer of `committee`) proposes a link to `to` (organizer of
/// `target`), who accepts; returns the council the link lives in.
#[allow(clippy::too_many_arguments)]
pub async fn link(
    from: &Phone,
    committee: CommitteeId,
    delegates: &[&Phone],
    policy: LinkPolicy,
    to: &Phone,
    target: CommitteeId,
    target_delegates: &[&Phone],
    council_name: &str,
) -> CommitteeId {
    let proposal = from
        .client
        .propose_link(
            committee,
            to.id,
            target,
            delegates.iter().map(|d| d.id).collect(),
            policy,
            council_name.into(),
        )
        .await
        .expect("propose");
    eventually(20, "the proposal arrives", || async {
        to.client
            .link_proposals()
            .await
            .is_ok_and(|p| p.iter().any(|(_, p)| p.proposal_id == proposal))
    })
    .await;
    let council = to
        .client
        .accept_link(
            proposal,
            target_delegates.iter().map(|d| d.id).collect(),
            LinkPolicy::Forward,
        )
        .await
        .expect("accept");
    let everyone: Vec<&Phone> = delegates
        .iter()
        .chain(target_delegates.iter())
        .copied()
        .chain([from, to])
        .collect();
    for p in everyone {
        eventually(
            30,
            "every council member holds the council's links",
            || async {
                p.client
                    .committee(council)
                    .await
                    .is_ok_and(|s| s.links.contains_key(&committee))
            },
        )
        .await;
    }
    council
}

/// How many times a phone's stream said the alert arrived.
pub fn arrivals(p: &mut Phone, alert: AlertId) -> usize {
    let mut n = 0;
    loop {
        match p.events.try_recv() {
            Ok(ClientEvent::Core(Event::AlertReceived { alert_id, .. })) if alert_id == alert => {
                n += 1
            }
            Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_)) => {}
            Err(_) => return n,
        }
    }
}

pub async fn has_alert(p: &Phone, alert: AlertId) -> bool {
    p.client
        .alerts()
        .await
        .is_ok_and(|a| a.iter().any(|a| a.alert_id == alert))
}

/// The network of these scenarios: committees A1, A2, B1, B2 of three
/// (organizer, delegate, member); councils R1 (A1 + A2) and R2 (B1 + B2, B1
/// taking alerts from it by `b1_policy`); and the regional council over R1
/// and R2. Returns the phones by name, the committees by name, and R1.
pub async fn network(
    dir: &Path,
    relay: &rankfile_relay::RelayHandle,
    b1_policy: LinkPolicy,
) -> (
    HashMap<String, Phone>,
    HashMap<&'static str, CommitteeId>,
    CommitteeId,
) {
    let mut phones = HashMap::new();
    for c in ["a1", "a2", "b1", "b2"] {
        for role in ["organizer", "delegate", "member"] {
            let name = format!("{c}-{role}");
            phones.insert(name.clone(), phone(dir, &name, relay).await);
        }
    }
    let p = |n: &str| &phones[n];
    let mut committees = HashMap::new();
    for c in ["a1", "a2", "b1", "b2"] {
        let trio = [
            p(&format!("{c}-organizer")),
            p(&format!("{c}-delegate")),
            p(&format!("{c}-member")),
        ];
        committees.insert(c, committee(c, &trio).await);
    }
    // Level 1: A1 + A2 form council R1; B1 + B2 form R2.
    let r1 = link(
        p("a1-organizer"),
        committees["a1"],
        &[p("a1-delegate")],
        LinkPolicy::Forward,
        p("a2-organizer"),
        committees["a2"],
        &[p("a2-delegate")],
        "",
    )
    .await;
    let r2 = link(
        p("b1-organizer"),
        committees["b1"],
        &[p("b1-delegate")],
        b1_policy,
        p("b2-organizer"),
        committees["b2"],
        &[p("b2-delegate")],
        "",
    )
    .await;
    // Level 2: R1 + R2 form the regional council.
    let region = link(
        p("a2-organizer"),
        r1,
        &[p("a2-delegate")],
        LinkPolicy::Forward,
        p("b2-organizer"),
        r2,
        &[p("b2-delegate")],
        "Region",
    )
    .await;
    assert!(region != r1 && region != r2);
    (phones, committees, r1)
}
