//! What an alert is: its kinds, scope and answers, the message one delivery
//! carries, and their wire forms (`proto/schemas/rankfile/alert.proto`).

use rankfile_proto::v1 as pb;

use super::signed::SignedAlert;
use crate::committee::CommitteeId;
use crate::error::{Error, Result};

/// Bytes of an alert ID.
pub const ALERT_ID_LEN: usize = 16;
/// Longest title, in bytes of UTF-8.
pub const MAX_TITLE_LEN: usize = 200;
/// Longest text, in bytes of UTF-8.
pub const MAX_ALERT_TEXT_LEN: usize = 4 * 1024;
/// Longest place, in bytes of UTF-8.
pub const MAX_PLACE_LEN: usize = 200;

/// An alert's ID: a hash of what its raiser signed ([`AlertId::of`]), the
/// same on every path.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AlertId(pub [u8; ALERT_ID_LEN]);

impl AlertId {
    /// Reads an ID from a protobuf field.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        bytes
            .try_into()
            .map(AlertId)
            .map_err(|_| Error::InvalidContent("bad alert id"))
    }
}

impl std::fmt::Display for AlertId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl std::fmt::Debug for AlertId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AlertId({self})")
    }
}

/// What an alert calls for.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum AlertKind {
    EmergencyMeeting,
    RapidResponse,
    ActionCall,
    Information,
}

/// How far an alert goes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum AlertScope {
    /// The committee or council it was sent to.
    Local,
    /// On along every link, to every committee and council of the network.
    Network,
}

/// A recipient's answer.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub enum AlertAnswer {
    Received,
    Coming,
    CannotCome,
    Safe,
}

impl AlertAnswer {
    /// Every answer, in display order.
    pub const ALL: [AlertAnswer; 4] = [
        AlertAnswer::Received,
        AlertAnswer::Coming,
        AlertAnswer::CannotCome,
        AlertAnswer::Safe,
    ];

    pub(crate) fn to_wire(self) -> i32 {
        (match self {
            AlertAnswer::Received => pb::AlertAnswerKind::Received,
            AlertAnswer::Coming => pb::AlertAnswerKind::Coming,
            AlertAnswer::CannotCome => pb::AlertAnswerKind::CannotCome,
            AlertAnswer::Safe => pb::AlertAnswerKind::Safe,
        }) as i32
    }

    pub(crate) fn from_wire(value: i32) -> Result<Self> {
        match pb::AlertAnswerKind::try_from(value) {
            Ok(pb::AlertAnswerKind::Received) => Ok(AlertAnswer::Received),
            Ok(pb::AlertAnswerKind::Coming) => Ok(AlertAnswer::Coming),
            Ok(pb::AlertAnswerKind::CannotCome) => Ok(AlertAnswer::CannotCome),
            Ok(pb::AlertAnswerKind::Safe) => Ok(AlertAnswer::Safe),
            _ => Err(Error::InvalidContent("unknown alert answer")),
        }
    }
}

impl AlertKind {
    pub(crate) fn to_wire(self) -> i32 {
        (match self {
            AlertKind::EmergencyMeeting => pb::AlertKind::EmergencyMeeting,
            AlertKind::RapidResponse => pb::AlertKind::RapidResponse,
            AlertKind::ActionCall => pb::AlertKind::ActionCall,
            AlertKind::Information => pb::AlertKind::Information,
        }) as i32
    }

    pub(crate) fn from_wire(value: i32) -> Result<Self> {
        match pb::AlertKind::try_from(value) {
            Ok(pb::AlertKind::EmergencyMeeting) => Ok(AlertKind::EmergencyMeeting),
            Ok(pb::AlertKind::RapidResponse) => Ok(AlertKind::RapidResponse),
            Ok(pb::AlertKind::ActionCall) => Ok(AlertKind::ActionCall),
            Ok(pb::AlertKind::Information) => Ok(AlertKind::Information),
            _ => Err(Error::InvalidContent("unknown alert kind")),
        }
    }
}

impl AlertScope {
    pub(crate) fn to_wire(self) -> i32 {
        (match self {
            AlertScope::Local => pb::AlertScope::Local,
            AlertScope::Network => pb::AlertScope::Network,
        }) as i32
    }

    pub(crate) fn from_wire(value: i32) -> Result<Self> {
        match pb::AlertScope::try_from(value) {
            Ok(pb::AlertScope::Local) => Ok(AlertScope::Local),
            Ok(pb::AlertScope::Network) => Ok(AlertScope::Network),
            _ => Err(Error::InvalidContent("unknown alert scope")),
        }
    }
}

/// What the person raising an alert writes.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct AlertDraft {
    pub kind: AlertKind,
    pub scope: AlertScope,
    pub title: String,
    pub text: String,
    pub place: String,
    /// When the meeting or action is, ms since the epoch; 0 when none.
    pub starts_at_ms: u64,
    /// After this, ms since the epoch, the alert stops asking for answers.
    pub expires_at_ms: u64,
    pub answers_wanted: bool,
}

impl AlertDraft {
    pub(crate) fn check(&self) -> Result<()> {
        let fits = |s: &str, max: usize| s.len() <= max && !s.chars().any(char::is_control);
        if self.title.trim().is_empty() || !fits(&self.title, MAX_TITLE_LEN) {
            return Err(Error::InvalidContent("alert title empty or too long"));
        }
        if self.text.len() > MAX_ALERT_TEXT_LEN {
            return Err(Error::InvalidContent("alert text too long"));
        }
        if !fits(&self.place, MAX_PLACE_LEN) {
            return Err(Error::InvalidContent("alert place too long"));
        }
        Ok(())
    }
}

/// One delivery of an alert (the `Alert` content): the alert as its raiser
/// signed it, and this hop's own fields.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct AlertMessage {
    pub alert: SignedAlert,
    /// The committee or council this delivery goes to.
    pub via: CommitteeId,
    /// Waiting for an organizer of `via` to approve it.
    pub held: bool,
    /// A reminder to someone who has not answered.
    pub renotify: bool,
}

impl AlertMessage {
    /// The alert's ID.
    pub fn alert_id(&self) -> AlertId {
        self.alert.id
    }

    /// What the raiser wrote.
    pub fn draft(&self) -> &AlertDraft {
        &self.alert.raised.draft
    }

    pub(crate) fn to_wire(&self) -> pb::Alert {
        pb::Alert {
            via_committee_id: self.via.0.to_vec(),
            held: self.held,
            renotify: self.renotify,
            raised: self.alert.bytes.clone(),
            signature: self.alert.signature.clone(),
        }
    }

    pub(crate) fn from_wire(a: pb::Alert) -> Result<Self> {
        Ok(AlertMessage {
            alert: SignedAlert::parse(a.raised, a.signature)?,
            via: CommitteeId::from_bytes(&a.via_committee_id)
                .map_err(|_| Error::InvalidContent("bad committee id"))?,
            held: a.held,
            renotify: a.renotify,
        })
    }
}
