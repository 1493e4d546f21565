//! [`Client`] methods for committees: thin calls to the account's committee
//! operations on its thread, then a nudge to the connection manager to send
//! what they put in the outbox. A post waits for its sender keys to reach the
//! relay before the channel message goes, so no member gets a message under a
//! key it has not been given yet.

use tokio::sync::oneshot;

use super::client::{Client, Command};
use crate::account_id::AccountId;
use crate::committee::{
    ChannelId, ChannelKind, CommitteeId, CommitteeMeta, CommitteeState, InviteId, InviteToken, Role,
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
    /// Show the token with [`InviteToken::to_link`] (the QR payload is the same).
    pub async fn create_invite(
        &self,
        committee: CommitteeId,
        expires_at_ms: u64,
        max_uses: u32,
    ) -> Result<InviteToken> {
        let (token, _) = self
            .changed(move |a| a.create_invite(&committee, expires_at_ms, max_uses))
            .await?;
        Ok(token)
    }

    /// Withdraws an invite.
    pub async fn revoke_invite(&self, committee: CommitteeId, invite: InviteId) -> Result<()> {
        self.changed(move |a| a.revoke_invite(&committee, invite))
            .await?;
        Ok(())
    }

    /// Asks to join the committee an invite link names: opens a session with
    /// the organizer it names (from the relay's directory) unless we have one,
    /// and sends the join request. Admission comes later, whenever that
    /// organizer's device is online, as [`crate::Event::AddedToCommittee`].
    pub async fn join(&self, link: &str) -> Result<CommitteeId> {
        let token = InviteToken::parse(link)?;
        let organizer = token.organizer;
        let me = self.account.call(|a| a.id()).await?;
        if organizer == me {
            return Err(Error::FromSelf);
        }
        let known = self
            .account
            .call(move |a| a.contact(&organizer).is_ok())
            .await?;
        if !known {
            let (reply, rx) = oneshot::channel();
            self.commands
                .send(Command::FetchBundle {
                    account: organizer,
                    reply,
                })
                .await
                .map_err(|_| Error::Offline)?;
            let bundle = rx.await.map_err(|_| Error::Offline)??;
            self.account
                .call(move |a| a.add_contact("", &bundle))
                .await??;
        }
        let committee = token.committee_id;
        self.changed(move |a| a.request_join(&token)).await?;
        Ok(committee)
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
