//! [`Client`] methods for committees: thin calls to the account's committee
//! operations on its thread, then a nudge to the connection manager to send
//! what they put in the outbox. A post waits for its sender keys to reach the
//! relay before the channel message goes, so no member gets a message under a
//! key it has not been given yet.

use tokio::sync::oneshot;

use super::client::{Client, Command};
use crate::account_id::AccountId;
use crate::committee::{
    ChannelId, ChannelKind, CommitteeId, CommitteeMeta, CommitteeState, InviteId, InviteToken,
    Rejection, Role,
};
use crate::committee_join::PendingJoin;
use crate::committee_ops::CommitteeChange;
use crate::error::{Error, Result};
use crate::send::OutgoingEnvelope;

impl Client {
    /// Founds a committee with this account its only organizer.
    pub async fn create_committee(&self, meta: CommitteeMeta) -> Result<CommitteeId> {
        self.account.call(move |a| a.create_committee(meta)).await?
    }

    /// The committee as this device's log folds it.
    pub async fn committee(&self, id: CommitteeId) -> Result<CommitteeState> {
        self.account.call(move |a| a.committee(&id)).await?
    }

    /// Every committee (and council) this device holds, as its log folds it.
    pub async fn committees(&self) -> Result<Vec<CommitteeState>> {
        self.account
            .call(|a| {
                let ids = a.committees()?;
                ids.iter().map(|id| a.committee(id)).collect()
            })
            .await?
    }

    /// The entries of a committee's log the fold rejected, and why.
    pub async fn committee_rejections(&self, id: CommitteeId) -> Result<Vec<Rejection>> {
        self.account
            .call(move |a| a.committee_rejections(&id))
            .await?
    }

    /// Adds a contact to a committee; see [`crate::Account::add_member`].
    pub async fn add_member(
        &self,
        committee: CommitteeId,
        account: AccountId,
        role: Role,
    ) -> Result<CommitteeChange> {
        self.changed(move |a| a.add_member(&committee, &account, role))
            .await
    }

    /// Removes a member; see [`crate::Account::remove_member`].
    pub async fn remove_member(
        &self,
        committee: CommitteeId,
        account: AccountId,
    ) -> Result<CommitteeChange> {
        self.changed(move |a| a.remove_member(&committee, &account))
            .await
    }

    /// Changes a member's role.
    pub async fn change_role(
        &self,
        committee: CommitteeId,
        account: AccountId,
        role: Role,
    ) -> Result<CommitteeChange> {
        self.changed(move |a| a.change_role(&committee, &account, role))
            .await
    }

    /// Leaves a committee.
    pub async fn leave(&self, committee: CommitteeId) -> Result<CommitteeChange> {
        self.changed(move |a| a.leave(&committee)).await
    }

    /// Renames a committee.
    pub async fn rename(
        &self,
        committee: CommitteeId,
        meta: CommitteeMeta,
    ) -> Result<CommitteeChange> {
        self.changed(move |a| a.rename(&committee, meta)).await
    }

    /// Makes a channel of a committee.
    pub async fn create_channel(
        &self,
        committee: CommitteeId,
        kind: ChannelKind,
    ) -> Result<ChannelId> {
        let (channel, _) = self
            .changed(move |a| a.create_channel(&committee, kind))
            .await?;
        Ok(channel)
    }

    /// Makes an invite to a committee; see [`crate::Account::create_invite`].
    /// The token carries this client's relay (address and certificate
    /// fingerprint), so a phone that knows no relay can join from the link
    /// alone. Show it with [`InviteToken::to_link`] (the QR payload is the
    /// same text).
    pub async fn create_invite(
        &self,
        committee: CommitteeId,
        expires_at_ms: u64,
        max_uses: u32,
    ) -> Result<InviteToken> {
        let (mut token, _) = self
            .changed(move |a| a.create_invite(&committee, expires_at_ms, max_uses))
            .await?;
        token.relay = self.relay();
        Ok(token)
    }

    /// Withdraws an invite.
    pub async fn revoke_invite(&self, committee: CommitteeId, invite: InviteId) -> Result<()> {
        self.changed(move |a| a.revoke_invite(&committee, invite))
            .await?;
        Ok(())
    }

    /// Asks to join the committee an invite link names. A phone that knows
    /// no relay yet takes the link's (remembered from then on) and waits for
    /// its first connection; a link naming another relay than this client's
    /// is [`Error::OtherRelay`]. Opens a session with each organizer the link
    /// names (from the relay's directory, fetched anonymously with the
    /// access key the link carries) unless we have one, and sends the join
    /// request to each, sealed. Admission comes whenever one of their
    /// devices is online, as [`crate::Event::AddedToCommittee`].
    pub async fn join(&self, link: &str) -> Result<CommitteeId> {
        let token = InviteToken::parse(link)?;
        let me = self.account.call(|a| a.id()).await?;
        if token.organizer == me {
            return Err(Error::FromSelf);
        }
        if let Some(relay) = token.relay.clone() {
            if self.learn_relay(relay).await? {
                self.wait_connected().await?;
            }
        }
        let organizers: Vec<_> = token
            .organizers()
            .into_iter()
            .filter(|(o, _)| *o != me)
            .collect();
        // Their keys first: each bundle is then fetched on the anonymous
        // connection, and the relay does not learn who asked for whom.
        let keys = organizers.clone();
        self.account
            .call(move |a| a.learn_access_keys(&keys))
            .await??;
        let mut failed = None;
        for (organizer, _) in organizers {
            let known = self
                .account
                .call(move |a| a.contact(&organizer).is_ok())
                .await?;
            if known {
                continue;
            }
            match self.fetch_bundle(organizer).await {
                Ok(bundle) => {
                    self.account
                        .call(move |a| a.add_contact("", &bundle))
                        .await??;
                }
                // Another organizer may be reachable: the request goes to
                // those that are; none at all is the error below.
                Err(e) => failed = Some(e),
            }
        }
        let committee = token.committee_id;
        match self.changed(move |a| a.request_join(&token)).await {
            Err(Error::UnknownContact(_)) if failed.is_some() => {
                Err(failed.unwrap_or(Error::Offline))
            }
            r => r.map(|_| committee),
        }
    }

    /// Fetches an account's bundle from the relay's directory.
    async fn fetch_bundle(&self, account: AccountId) -> Result<Vec<u8>> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::FetchBundle { account, reply })
            .await
            .map_err(|_| Error::Offline)?;
        rx.await.map_err(|_| Error::Offline)?
    }

    /// Joins this account asked for that are not yet admitted.
    pub async fn pending_joins(&self) -> Result<Vec<PendingJoin>> {
        self.account.call(|a| a.pending_joins()).await?
    }

    /// Posts in a committee channel: opens sessions with members we have none
    /// with, sends sender keys first (confirmed by the relay when some member
    /// lacked ours), then one upload for everyone.
    pub async fn post(
        &self,
        committee: CommitteeId,
        channel: ChannelId,
        text: String,
    ) -> Result<OutgoingEnvelope> {
        self.send_in_channel(committee, channel, move |a, distribution, recipients| {
            a.send_channel_text(channel, distribution, recipients, &text)
        })
        .await
    }

    /// Sends the outbox now and waits until the relay has taken it.
    pub async fn flush(&self) -> Result<()> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::Flush { reply })
            .await
            .map_err(|_| Error::Offline)?;
        rx.await.map_err(|_| Error::Offline)?
    }

    async fn changed<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut crate::Account) -> Result<R> + Send + 'static,
    {
        let r = self.account.call(f).await??;
        let _ = self.commands.try_send(Command::FlushOutbox);
        Ok(r)
    }
}
