//! Alerts across the FFI: kinds, scope, answers, the draft an organizer
//! writes, an alert as received, the counts of its answers, and the alert
//! methods of [`Client`].

use std::collections::BTreeMap;

use rankfile_core::alert::{
    Alert as CoreAlert, AlertAnswer as CoreAnswer, AlertDraft as CoreDraft, AlertKind as CoreKind,
    AlertScope as CoreScope, AlertStatus as CoreStatus,
};

use crate::client::Client;
use crate::error::ClientError;
use crate::ids;
use crate::runtime::run;

/// What an alert calls for.
#[derive(uniffi::Enum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum AlertKind {
    EmergencyMeeting,
    RapidResponse,
    ActionCall,
    Information,
}

/// How far an alert goes: its committee, or on along every link.
#[derive(uniffi::Enum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum AlertScope {
    Local,
    Network,
}

/// A recipient's answer.
#[derive(uniffi::Enum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum AlertAnswer {
    Received,
    Coming,
    CannotCome,
    Safe,
}

macro_rules! same_variants {
    ($ours:ident, $core:ident, $($v:ident),+) => {
        impl From<$ours> for $core {
            fn from(x: $ours) -> Self {
                match x { $($ours::$v => $core::$v),+ }
            }
        }
        impl From<$core> for $ours {
            fn from(x: $core) -> Self {
                match x { $($core::$v => $ours::$v),+ }
            }
        }
    };
}

same_variants!(
    AlertKind,
    CoreKind,
    EmergencyMeeting,
    RapidResponse,
    ActionCall,
    Information
);
same_variants!(AlertScope, CoreScope, Local, Network);
same_variants!(AlertAnswer, CoreAnswer, Received, Coming, CannotCome, Safe);

/// What the organizer raising an alert writes.
#[derive(uniffi::Record)]
pub struct AlertDraft {
    pub kind: AlertKind,
    pub scope: AlertScope,
    pub title: String,
    pub text: String,
    pub place: String,
    /// When what it announces starts, ms since the epoch.
    pub starts_at_ms: u64,
    /// After this it is no longer shown or answered, ms since the epoch.
    pub expires_at_ms: u64,
    pub answers_wanted: bool,
}

impl From<AlertDraft> for CoreDraft {
    fn from(d: AlertDraft) -> Self {
        CoreDraft {
            kind: d.kind.into(),
            scope: d.scope.into(),
            title: d.title,
            text: d.text,
            place: d.place,
            starts_at_ms: d.starts_at_ms,
            expires_at_ms: d.expires_at_ms,
            answers_wanted: d.answers_wanted,
        }
    }
}

/// An alert on this phone.
#[derive(uniffi::Record)]
pub struct Alert {
    pub alert_id: String,
    /// The committee it reached this phone through.
    pub via: String,
    /// The committee it was raised in, and by whom.
    pub origin: String,
    pub raiser: String,
    pub raised_at_ms: u64,
    pub kind: AlertKind,
    pub scope: AlertScope,
    pub title: String,
    pub text: String,
    pub place: String,
    pub starts_at_ms: u64,
    pub expires_at_ms: u64,
    pub answers_wanted: bool,
    pub received_at_ms: i64,
    /// This phone's answer, once given.
    pub my_answer: Option<AlertAnswer>,
}

impl From<CoreAlert> for Alert {
    fn from(a: CoreAlert) -> Self {
        Alert {
            alert_id: ids::hex(a.alert_id.0),
            via: ids::hex(a.via.0),
            origin: ids::hex(a.origin.0),
            raiser: a.raiser.to_string(),
            raised_at_ms: a.raised_at_ms,
            kind: a.kind.into(),
            scope: a.scope.into(),
            title: a.title,
            text: a.text,
            place: a.place,
            starts_at_ms: a.starts_at_ms,
            expires_at_ms: a.expires_at_ms,
            answers_wanted: a.answers_wanted,
            received_at_ms: a.received_at_ms,
            my_answer: a.my_answer.map(Into::into),
        }
    }
}

/// How many gave one answer.
#[derive(uniffi::Record)]
pub struct AnswerCount {
    pub answer: AlertAnswer,
    pub count: u64,
}

fn counts(map: &BTreeMap<CoreAnswer, usize>) -> Vec<AnswerCount> {
    map.iter()
        .map(|(a, n)| AnswerCount {
            answer: (*a).into(),
            count: *n as u64,
        })
        .collect()
}

/// The answers to an alert this phone raised or passed on.
#[derive(uniffi::Record)]
pub struct AlertStatus {
    pub alert_id: String,
    /// This phone's recipients' latest answers, counted.
    pub counts: Vec<AnswerCount>,
    /// This phone's recipients who have not answered.
    pub waiting: Vec<String>,
    /// How many this phone delivered it to.
    pub recipients: u64,
    /// Members it could not reach yet.
    pub not_reached: Vec<String>,
}

impl From<CoreStatus> for AlertStatus {
    fn from(s: CoreStatus) -> Self {
        AlertStatus {
            alert_id: ids::hex(s.alert_id.0),
            counts: counts(&s.counts),
            waiting: ids::accounts(&s.waiting),
            recipients: s.recipients as u64,
            not_reached: ids::accounts(&s.not_reached),
        }
    }
}

/// An alert waiting for this organizer's approval to enter a committee.
#[derive(uniffi::Record)]
pub struct HeldAlert {
    pub alert_id: String,
    pub committee_id: String,
}

#[uniffi::export]
impl Client {
    /// Raises an alert in a committee or council (organizers and delegates);
    /// returns its ID.
    pub async fn send_alert(
        &self,
        committee: String,
        draft: AlertDraft,
    ) -> Result<String, ClientError> {
        let (core, committee) = (self.core()?, ids::committee(&committee)?);
        run(async move { Ok(ids::hex(core.send_alert(committee, draft.into()).await?.0)) }).await
    }

    /// Answers an alert.
    pub async fn answer_alert(
        &self,
        alert: String,
        answer: AlertAnswer,
    ) -> Result<(), ClientError> {
        let (core, alert) = (self.core()?, ids::alert(&alert)?);
        run(async move { Ok(core.answer_alert(alert, answer.into()).await?) }).await
    }

    /// Reminds those who have not answered; returns how many were reminded.
    pub async fn renotify_alert(&self, alert: String) -> Result<u64, ClientError> {
        let (core, alert) = (self.core()?, ids::alert(&alert)?);
        run(async move { Ok(core.renotify_alert(alert).await? as u64) }).await
    }

    /// Lets a held alert into a committee (its organizers only).
    pub async fn approve_alert(&self, alert: String, committee: String) -> Result<(), ClientError> {
        let core = self.core()?;
        let (alert, committee) = (ids::alert(&alert)?, ids::committee(&committee)?);
        run(async move { Ok(core.approve_alert(alert, committee).await?) }).await
    }

    /// Every alert on this phone, newest first.
    pub async fn alerts(&self) -> Result<Vec<Alert>, ClientError> {
        let core = self.core()?;
        run(async move { Ok(core.alerts().await?.into_iter().map(Alert::from).collect()) }).await
    }

    /// The answers to an alert this phone raised or passed on.
    pub async fn alert_status(&self, alert: String) -> Result<AlertStatus, ClientError> {
        let (core, alert) = (self.core()?, ids::alert(&alert)?);
        run(async move { Ok(core.alert_status(alert).await?.into()) }).await
    }

    /// Alerts held for this organizer's approval.
    pub async fn held_alerts(&self) -> Result<Vec<HeldAlert>, ClientError> {
        let core = self.core()?;
        run(async move {
            Ok(core
                .held_alerts()
                .await?
                .into_iter()
                .map(|(a, c)| HeldAlert {
                    alert_id: ids::hex(a.0),
                    committee_id: ids::hex(c.0),
                })
                .collect())
        })
        .await
    }
}
