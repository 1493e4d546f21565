//! Phones online through a real relay, for the scenarios: a connected
//! [`Client`] and its account ID, with the checks and the introductions the
//! scenario files share.

use std::path::Path;

use rankfile_core::committee::{ChannelId, ChannelKind, CommitteeId, CommitteeMeta, Role};
use rankfile_core::transport::Client;
use rankfile_core::AccountId;

use crate::{connected_client, eventually};

/// A phone connected to a relay.
pub struct OnlinePhone {
    pub client: Client,
    pub id: AccountId,
}

impl OnlinePhone {
    /// A new account in `dir`, connected to `relay` and set up.
    pub async fn start(dir: &Path, name: &str, relay: &rankfile_relay::RelayHandle) -> Self {
        let (client, id) = connected_client(dir, name, relay).await;
        OnlinePhone { client, id }
    }

    /// Whether a 1:1 message with `body` from `from` is stored.
    pub async fn has_text_from(&self, from: AccountId, body: &str) -> bool {
        let body = body.to_owned();
        self.client
            .with_account(move |a| {
                a.history(&from, None, 1000)
                    .map(|h| h.iter().any(|m| !m.outgoing && m.body == body))
                    .unwrap_or(false)
            })
            .await
            .unwrap_or(false)
    }

    /// Bodies of the channel messages received in `channel`, oldest first.
    pub async fn channel_texts(&self, channel: [u8; 16]) -> Vec<String> {
        self.client
            .with_account(move |a| {
                a.channel_history(&channel, None, 1000)
                    .map(|h| {
                        h.into_iter()
                            .filter(|m| !m.outgoing)
                            .map(|m| m.body)
                            .collect()
                    })
                    .unwrap_or_default()
            })
            .await
            .unwrap_or_default()
    }
}

/// Sessions both ways between `a` and `b`, each holding the other's access
/// key: `a` fetches `b`'s bundle and says hello, `b` answers.
pub async fn introduce_online(a: &OnlinePhone, b: &OnlinePhone) {
    a.client
        .add_contact_from_relay("peer".into(), b.id)
        .await
        .expect("bundle");
    a.client.send_text(b.id, "hi".into()).await.expect("send");
    eventually(20, "hello arrives", || b.has_text_from(a.id, "hi")).await;
    b.client.send_text(a.id, "hi".into()).await.expect("reply");
    eventually(20, "reply arrives", || a.has_text_from(b.id, "hi")).await;
}

/// A committee founded by `organizer` with `members` added and one
/// discussion channel, once every member (the organizer included) holds the
/// channel and the whole roster.
pub async fn committee_with_channel(
    organizer: &Client,
    members: &[(&Client, AccountId)],
) -> (CommitteeId, ChannelId) {
    let committee = organizer
        .create_committee(CommitteeMeta {
            name: "Warehouse 9".into(),
            ..CommitteeMeta::default()
        })
        .await
        .expect("found");
    for (_, id) in members {
        organizer
            .add_member(committee, *id, Role::Member)
            .await
            .expect("add");
    }
    let channel = organizer
        .create_channel(committee, ChannelKind::Discussion)
        .await
        .expect("channel");
    let everyone = members.len() + 1;
    for client in std::iter::once(organizer).chain(members.iter().map(|(c, _)| *c)) {
        eventually(30, "every member has the channel", || async {
            client
                .committee(committee)
                .await
                .is_ok_and(|s| s.channels.contains_key(&channel) && s.members.len() == everyone)
        })
        .await;
    }
    (committee, channel)
}
