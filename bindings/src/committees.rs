//! Committees across the FFI: their state, members, roles, channels and
//! invites as records, and the committee methods of [`Client`].

use rankfile_core::committee::{
    ChannelKind as CoreKind, CommitteeMeta, CommitteeState, Role as CoreRole,
};

use crate::client::Client;
use crate::error::ClientError;
use crate::ids;
use crate::runtime::run;

/// A member's role, by authority.
#[derive(uniffi::Enum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum Role {
    Member,
    Delegate,
    Organizer,
}

impl From<Role> for CoreRole {
    fn from(r: Role) -> Self {
        match r {
            Role::Member => CoreRole::Member,
            Role::Delegate => CoreRole::Delegate,
            Role::Organizer => CoreRole::Organizer,
        }
    }
}

impl From<CoreRole> for Role {
    fn from(r: CoreRole) -> Self {
        match r {
            CoreRole::Member => Role::Member,
            CoreRole::Delegate => Role::Delegate,
            CoreRole::Organizer => Role::Organizer,
        }
    }
}

/// Who may post in a channel: everyone (discussion) or organizers
/// (announcement).
#[derive(uniffi::Enum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum ChannelKind {
    Discussion,
    Announcement,
}

impl From<ChannelKind> for CoreKind {
    fn from(k: ChannelKind) -> Self {
        match k {
            ChannelKind::Discussion => CoreKind::Discussion,
            ChannelKind::Announcement => CoreKind::Announcement,
        }
    }
}

impl From<CoreKind> for ChannelKind {
    fn from(k: CoreKind) -> Self {
        match k {
            CoreKind::Discussion => ChannelKind::Discussion,
            CoreKind::Announcement => ChannelKind::Announcement,
        }
    }
}

/// What a committee says about itself; only the name is required.
#[derive(uniffi::Record)]
pub struct CommitteeDescription {
    pub name: String,
    #[uniffi(default = "")]
    pub workplace: String,
    #[uniffi(default = "")]
    pub industry: String,
    #[uniffi(default = "")]
    pub region: String,
}

impl From<CommitteeDescription> for CommitteeMeta {
    fn from(d: CommitteeDescription) -> Self {
        CommitteeMeta {
            name: d.name,
            workplace: d.workplace,
            industry: d.industry,
            region: d.region,
        }
    }
}

/// A member and their role.
#[derive(uniffi::Record)]
pub struct Member {
    pub account_id: String,
    pub role: Role,
}

/// A channel of a committee.
#[derive(uniffi::Record)]
pub struct Channel {
    pub channel_id: String,
    pub kind: ChannelKind,
    /// Its disappearing timer in seconds, 0 off.
    pub timer_secs: u32,
}

/// A committee as this phone's copy of its log says.
#[derive(uniffi::Record)]
pub struct Committee {
    pub committee_id: String,
    pub description: CommitteeDescription,
    pub members: Vec<Member>,
    pub channels: Vec<Channel>,
    /// Grows with every change applied.
    pub version: u64,
}

impl From<CommitteeState> for Committee {
    fn from(s: CommitteeState) -> Self {
        let members = s
            .members
            .iter()
            .map(|(id, m)| Member {
                account_id: id.to_string(),
                role: m.role.into(),
            })
            .collect();
        let channels = s
            .channels
            .iter()
            .map(|(id, kind)| Channel {
                channel_id: ids::hex(id),
                kind: (*kind).into(),
                timer_secs: s.channel_timers.get(id).copied().unwrap_or(0),
            })
            .collect();
        Committee {
            committee_id: ids::hex(s.id.0),
            description: CommitteeDescription {
                name: s.meta.name,
                workplace: s.meta.workplace,
                industry: s.meta.industry,
                region: s.meta.region,
            },
            members,
            channels,
            version: s.version,
        }
    }
}

/// An invite: the link (also the QR payload) and what names it.
#[derive(uniffi::Record)]
pub struct Invite {
    pub link: String,
    pub invite_id: String,
    pub expires_at_ms: u64,
}

/// A join this account asked for that is not admitted yet.
#[derive(uniffi::Record)]
pub struct PendingJoin {
    pub committee_id: String,
    pub requested_at_ms: i64,
}

#[uniffi::export]
impl Client {
    /// Founds a committee with this account its only organizer; returns its ID.
    pub async fn create_committee(
        &self,
        description: CommitteeDescription,
    ) -> Result<String, ClientError> {
        let core = self.core()?;
        run(async move {
            let id = core.create_committee(description.into()).await?;
            Ok(ids::hex(id.0))
        })
        .await
    }

    /// The committees this account is in.
    pub async fn committees(&self) -> Result<Vec<String>, ClientError> {
        let core = self.core()?;
        run(async move {
            let list = core.committees().await?;
            Ok(list.iter().map(|c| ids::hex(c.id.0)).collect())
        })
        .await
    }

    /// One committee as this phone knows it.
    pub async fn committee(&self, committee: String) -> Result<Committee, ClientError> {
        let (core, committee) = (self.core()?, ids::committee(&committee)?);
        run(async move { Ok(core.committee(committee).await?.into()) }).await
    }

    /// Adds a contact to a committee (organizers only).
    pub async fn add_member(
        &self,
        committee: String,
        account: String,
        role: Role,
    ) -> Result<(), ClientError> {
        let core = self.core()?;
        let (committee, account) = (ids::committee(&committee)?, ids::account(&account)?);
        run(async move {
            core.add_member(committee, account, role.into()).await?;
            Ok(())
        })
        .await
    }

    /// Removes a member (organizers only): they read nothing sent after.
    pub async fn remove_member(
        &self,
        committee: String,
        account: String,
    ) -> Result<(), ClientError> {
        let core = self.core()?;
        let (committee, account) = (ids::committee(&committee)?, ids::account(&account)?);
        run(async move {
            core.remove_member(committee, account).await?;
            Ok(())
        })
        .await
    }

    /// Gives a member another role (organizers only).
    pub async fn change_role(
        &self,
        committee: String,
        account: String,
        role: Role,
    ) -> Result<(), ClientError> {
        let core = self.core()?;
        let (committee, account) = (ids::committee(&committee)?, ids::account(&account)?);
        run(async move {
            core.change_role(committee, account, role.into()).await?;
            Ok(())
        })
        .await
    }

    /// Leaves a committee.
    pub async fn leave(&self, committee: String) -> Result<(), ClientError> {
        let (core, committee) = (self.core()?, ids::committee(&committee)?);
        run(async move {
            core.leave(committee).await?;
            Ok(())
        })
        .await
    }

    /// Changes what a committee says about itself (organizers only).
    pub async fn rename(
        &self,
        committee: String,
        description: CommitteeDescription,
    ) -> Result<(), ClientError> {
        let (core, committee) = (self.core()?, ids::committee(&committee)?);
        run(async move {
            core.rename(committee, description.into()).await?;
            Ok(())
        })
        .await
    }

    /// Makes a channel in a committee (organizers only); returns its ID.
    pub async fn create_channel(
        &self,
        committee: String,
        kind: ChannelKind,
    ) -> Result<String, ClientError> {
        let (core, committee) = (self.core()?, ids::committee(&committee)?);
        run(async move { Ok(ids::hex(core.create_channel(committee, kind.into()).await?)) }).await
    }

    /// Sets a channel's disappearing timer (seconds, 0 off; organizers only).
    pub async fn set_channel_timer(
        &self,
        committee: String,
        channel: String,
        secs: u32,
    ) -> Result<(), ClientError> {
        let core = self.core()?;
        let (committee, channel) = (ids::committee(&committee)?, ids::channel(&channel)?);
        run(async move {
            core.set_channel_timer(committee, channel, secs).await?;
            Ok(())
        })
        .await
    }

    /// An invite admitting up to `max_uses` people until `expires_at_ms`
    /// (organizers only).
    pub async fn create_invite(
        &self,
        committee: String,
        expires_at_ms: u64,
        max_uses: u32,
    ) -> Result<Invite, ClientError> {
        let (core, committee) = (self.core()?, ids::committee(&committee)?);
        run(async move {
            let token = core
                .create_invite(committee, expires_at_ms, max_uses)
                .await?;
            Ok(Invite {
                link: token.to_link(),
                invite_id: ids::hex(token.invite_id.0),
                expires_at_ms: token.expires_at_ms,
            })
        })
        .await
    }

    /// Withdraws an invite (organizers only).
    pub async fn revoke_invite(
        &self,
        committee: String,
        invite: String,
    ) -> Result<(), ClientError> {
        let core = self.core()?;
        let (committee, invite) = (ids::committee(&committee)?, ids::invite(&invite)?);
        run(async move { Ok(core.revoke_invite(committee, invite).await?) }).await
    }

    /// Asks to join the committee an invite link (or QR payload) names;
    /// returns its ID. Admission arrives later as `AddedToCommittee`.
    pub async fn join(&self, link: String) -> Result<String, ClientError> {
        let core = self.core()?;
        run(async move { Ok(ids::hex(core.join(&link).await?.0)) }).await
    }

    /// Joins asked for and not yet admitted.
    pub async fn pending_joins(&self) -> Result<Vec<PendingJoin>, ClientError> {
        let core = self.core()?;
        run(async move {
            let joins = core.pending_joins().await?;
            Ok(joins
                .into_iter()
                .map(|j| PendingJoin {
                    committee_id: ids::hex(j.committee_id.0),
                    requested_at_ms: j.requested_at_ms,
                })
                .collect())
        })
        .await
    }
}
