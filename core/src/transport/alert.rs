//! [`Client`] methods for alerts and links: calls to the account's operations
//! on its thread, then a nudge to send what they queued (alerts go out with
//! high priority, ahead of other traffic).

use tokio::sync::oneshot;

use super::client::{Client, Command};
use crate::account_id::AccountId;
use crate::alert::{Alert, AlertAnswer, AlertDraft, AlertId, AlertStatus};
use crate::committee::{CommitteeId, LinkPolicy};
use crate::error::{Error, Result};
use crate::link::{LinkInfo, LinkProposal, PROPOSAL_ID_LEN};

impl Client {
    /// Raises an alert in a committee or council; see [`crate::Account::send_alert`].
    pub async fn send_alert(&self, target: CommitteeId, draft: AlertDraft) -> Result<AlertId> {
        let (id, _) = self.queued(move |a| a.send_alert(&target, draft)).await?;
        Ok(id)
    }

    /// Answers an alert (to the member who delivered it).
    pub async fn answer_alert(&self, alert: AlertId, answer: AlertAnswer) -> Result<()> {
        self.queued(move |a| a.answer_alert(&alert, answer)).await?;
        Ok(())
    }

    /// Reminds those who have not answered an alert this device delivered.
    pub async fn renotify_alert(&self, alert: AlertId) -> Result<usize> {
        let sent = self.queued(move |a| a.renotify_alert(&alert)).await?;
        Ok(sent.sent.len())
    }

    /// Lets a held alert into a committee (its organizers only).
    pub async fn approve_alert(&self, alert: AlertId, committee: CommitteeId) -> Result<()> {
        self.queued(move |a| a.approve_alert(&alert, &committee))
            .await?;
        Ok(())
    }

    /// One alert on this device.
    pub async fn alert(&self, alert: AlertId) -> Result<Alert> {
        self.account.call(move |a| a.alert(&alert)).await?
    }

    /// Every alert on this device, newest first.
    pub async fn alerts(&self) -> Result<Vec<Alert>> {
        self.account.call(|a| a.alerts()).await?
    }

    /// The answers to an alert this device raised or forwarded, with those
    /// counted back from every committee it reached.
    pub async fn alert_status(&self, alert: AlertId) -> Result<AlertStatus> {
        self.account.call(move |a| a.alert_status(&alert)).await?
    }

    /// Alerts held for this organizer's approval.
    pub async fn held_alerts(&self) -> Result<Vec<(AlertId, CommitteeId)>> {
        self.account.call(|a| a.held_alerts()).await?
    }

    /// Proposes a link to `to`, an organizer of `target`; see
    /// [`crate::Account::propose_link`]. Opens a session with them from the
    /// relay's directory when there is none.
    pub async fn propose_link(
        &self,
        committee: CommitteeId,
        to: AccountId,
        target: CommitteeId,
        delegates: Vec<AccountId>,
        policy: LinkPolicy,
        council_name: String,
    ) -> Result<[u8; PROPOSAL_ID_LEN]> {
        let known = self.account.call(move |a| a.contact(&to).is_ok()).await?;
        if !known {
            let (reply, rx) = oneshot::channel();
            self.commands
                .send(Command::FetchBundle { account: to, reply })
                .await
                .map_err(|_| Error::Offline)?;
            let bundle = rx.await.map_err(|_| Error::Offline)??;
            self.account
                .call(move |a| a.add_contact("", &bundle))
                .await??;
        }
        let (id, _) = self
            .queued(move |a| {
                a.propose_link(&committee, &to, target, &delegates, policy, &council_name)
            })
            .await?;
        Ok(id)
    }

    /// This account's contact card (`rankfile://contact/…`), to hand to an
    /// organizer who will propose a link to us: the proposal then comes sealed.
    pub async fn contact_card(&self) -> Result<crate::ContactCard> {
        self.account.call(|a| a.contact_card()).await
    }

    /// Keeps the access key of another organizer's contact card, so a link
    /// proposed to it goes sealed; returns its account.
    pub async fn learn_contact_card(&self, link: &str) -> Result<AccountId> {
        let card = crate::ContactCard::parse(link)?;
        self.account
            .call(move |a| a.learn_contact_card(&card))
            .await?
    }

    /// Link proposals waiting for this organizer.
    pub async fn link_proposals(&self) -> Result<Vec<(AccountId, LinkProposal)>> {
        self.account.call(|a| a.link_proposals()).await?
    }

    /// Accepts a link proposal; see [`crate::Account::accept_link`]. Members
    /// of the council this device had no session with are greeted first and
    /// then sent the council's log.
    pub async fn accept_link(
        &self,
        proposal: [u8; PROPOSAL_ID_LEN],
        my_delegates: Vec<AccountId>,
        my_policy: LinkPolicy,
    ) -> Result<CommitteeId> {
        let (council, changes) = self
            .queued(move |a| a.accept_link(&proposal, &my_delegates, my_policy))
            .await?;
        let mut missed: Vec<AccountId> = changes
            .iter()
            .flat_map(|c| c.unreachable.iter().copied())
            .collect();
        missed.sort();
        missed.dedup();
        if !missed.is_empty() {
            let (reply, rx) = oneshot::channel();
            self.commands
                .send(Command::GreetMembers { reply })
                .await
                .map_err(|_| Error::Offline)?;
            rx.await.map_err(|_| Error::Offline)??;
            self.queued(move |a| a.resend_log(&council, &missed))
                .await?;
        }
        Ok(council)
    }

    /// Declines a link proposal.
    pub async fn decline_link(&self, proposal: [u8; PROPOSAL_ID_LEN]) -> Result<()> {
        self.account
            .call(move |a| a.decline_link(&proposal))
            .await?
    }

    /// Every link of every council this device holds.
    pub async fn links(&self) -> Result<Vec<LinkInfo>> {
        self.account.call(|a| a.links()).await?
    }

    /// Sends every count and note owed back along a cascade now, due or not
    /// (before this device goes offline); returns how many messages went.
    pub async fn send_alert_rollcall_now(&self) -> Result<usize> {
        self.queued(|a| a.send_alert_rollcall_now()).await
    }

    /// Runs an account operation that queues envelopes, then has them sent
    /// (and wakes the upkeep when it made counts due to be sent back).
    async fn queued<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut crate::Account) -> Result<R> + Send + 'static,
    {
        let (r, due) = self
            .account
            .call(|a| f(a).map(|r| (r, a.take_expiry_changed())))
            .await??;
        if due {
            self.expiry.notify_one();
        }
        let _ = self.commands.try_send(Command::FlushOutbox);
        Ok(r)
    }
}
