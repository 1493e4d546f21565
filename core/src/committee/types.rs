//! The small value types of the committee log: IDs, hashes, roles, settings and
//! the committee's description, with their wire conversions and limits.

use std::fmt;

use rankfile_proto::v1 as pb;

use crate::error::{Error, Result};

/// Bytes in a committee ID (random, chosen by the founder).
pub const COMMITTEE_ID_LEN: usize = 16;
/// Bytes in an entry hash (SHA-256).
pub const ENTRY_HASH_LEN: usize = 32;
/// Bytes in an invite ID (random): unique among one committee's invites.
pub const INVITE_ID_LEN: usize = 8;
/// Longest name, workplace, industry or region, in bytes of UTF-8: enough for
/// any real name, small enough that a log of thousands of entries stays small.
pub const MAX_META_LEN: usize = 200;
/// Longest disappearing-message timer: one year.
pub const MAX_DISAPPEARING_SECS: u32 = 365 * 24 * 3600;

/// A committee's ID: 16 random bytes, the same in every entry of its log.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommitteeId(pub [u8; COMMITTEE_ID_LEN]);

impl CommitteeId {
    /// A fresh random ID.
    pub fn random() -> Self {
        let mut id = [0u8; COMMITTEE_ID_LEN];
        rand::Rng::fill(&mut rand::rng(), &mut id);
        CommitteeId(id)
    }

    /// Reads the ID from a protobuf field.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        bytes
            .try_into()
            .map(CommitteeId)
            .map_err(|_| Error::InvalidCommitteeEntry("committee ID of the wrong length"))
    }
}

/// The SHA-256 hash that names an entry (see [`super::SignedEntry::hash`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntryHash(pub [u8; ENTRY_HASH_LEN]);

impl EntryHash {
    /// Reads a hash from a protobuf field.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        bytes
            .try_into()
            .map(EntryHash)
            .map_err(|_| Error::InvalidCommitteeEntry("parent hash of the wrong length"))
    }
}

/// An invite's ID: 8 random bytes, cited by the Add entries that redeem it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InviteId(pub [u8; INVITE_ID_LEN]);

impl InviteId {
    /// A fresh random ID.
    pub fn random() -> Self {
        let mut id = [0u8; INVITE_ID_LEN];
        rand::Rng::fill(&mut rand::rng(), &mut id);
        InviteId(id)
    }

    /// Reads the ID from a protobuf field.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        bytes
            .try_into()
            .map(InviteId)
            .map_err(|_| Error::InvalidCommitteeEntry("invite ID of the wrong length"))
    }
}

macro_rules! hex_display {
    ($t:ty, $name:literal, $shown:expr) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex::encode(&self.0[..$shown]))
            }
        }
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($name, "({})"), self)
            }
        }
    };
}

hex_display!(CommitteeId, "CommitteeId", COMMITTEE_ID_LEN);
// Eight bytes are plenty to tell entries apart in a message or a log line.
hex_display!(EntryHash, "EntryHash", 8);
hex_display!(InviteId, "InviteId", INVITE_ID_LEN);

/// A member's role. Ordered by authority: `Member < Delegate < Organizer`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub enum Role {
    /// Reads and posts in discussion channels, votes.
    Member,
    /// Elected to speak for the committee; posts in announcement channels when
    /// the settings allow, sits in council channels.
    Delegate,
    /// Changes the membership log.
    Organizer,
}

impl Role {
    pub(crate) fn to_wire(self) -> i32 {
        match self {
            Role::Member => pb::CommitteeRole::Member as i32,
            Role::Delegate => pb::CommitteeRole::Delegate as i32,
            Role::Organizer => pb::CommitteeRole::Organizer as i32,
        }
    }

    pub(crate) fn from_wire(value: i32) -> Result<Self> {
        match pb::CommitteeRole::try_from(value) {
            Ok(pb::CommitteeRole::Member) => Ok(Role::Member),
            Ok(pb::CommitteeRole::Delegate) => Ok(Role::Delegate),
            Ok(pb::CommitteeRole::Organizer) => Ok(Role::Organizer),
            _ => Err(Error::InvalidCommitteeEntry("unknown role")),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Member => "member",
            Role::Delegate => "delegate",
            Role::Organizer => "organizer",
        })
    }
}

/// Bytes in a channel ID (random; also the libsignal group ID).
pub const CHANNEL_ID_LEN: usize = 16;
/// A committee channel's ID.
pub type ChannelId = [u8; CHANNEL_ID_LEN];

/// What a committee channel is for.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum ChannelKind {
    /// Every member posts.
    Discussion,
    /// Organizers post (and delegates, when the settings allow); members read.
    Announcement,
}

impl ChannelKind {
    pub(crate) fn to_wire(self) -> i32 {
        match self {
            ChannelKind::Discussion => pb::ChannelKind::Discussion as i32,
            ChannelKind::Announcement => pb::ChannelKind::Announcement as i32,
        }
    }

    pub(crate) fn from_wire(value: i32) -> Result<Self> {
        match pb::ChannelKind::try_from(value) {
            Ok(pb::ChannelKind::Discussion) => Ok(ChannelKind::Discussion),
            Ok(pb::ChannelKind::Announcement) => Ok(ChannelKind::Announcement),
            _ => Err(Error::InvalidCommitteeEntry("unknown channel kind")),
        }
    }

    /// Whether a member with `role` may post in a channel of this kind under `settings`.
    pub fn may_post(self, role: Role, settings: &CommitteeSettings) -> bool {
        match self {
            ChannelKind::Discussion => true,
            ChannelKind::Announcement => match settings.announcement_posters {
                AnnouncementPosters::Organizers => role == Role::Organizer,
                AnnouncementPosters::OrganizersAndDelegates => role >= Role::Delegate,
            },
        }
    }
}

/// Who may post in a committee's announcement channels.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub enum AnnouncementPosters {
    /// Organizers only (the default).
    #[default]
    Organizers,
    /// Organizers and delegates.
    OrganizersAndDelegates,
}

/// A committee's settings; a Settings entry replaces them all at once.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct CommitteeSettings {
    /// Disappearing-message timer in seconds; 0 is off.
    pub disappearing_timer_secs: u32,
    /// Who may post in announcement channels.
    pub announcement_posters: AnnouncementPosters,
}

impl CommitteeSettings {
    pub(crate) fn to_wire(self) -> pb::CommitteeSettings {
        let posters = match self.announcement_posters {
            AnnouncementPosters::Organizers => pb::AnnouncementPosters::Organizers,
            AnnouncementPosters::OrganizersAndDelegates => {
                pb::AnnouncementPosters::OrganizersAndDelegates
            }
        };
        pb::CommitteeSettings {
            disappearing_timer_secs: self.disappearing_timer_secs,
            announcement_posters: posters as i32,
        }
    }

    pub(crate) fn from_wire(s: &pb::CommitteeSettings) -> Result<Self> {
        let announcement_posters = match pb::AnnouncementPosters::try_from(s.announcement_posters) {
            Ok(pb::AnnouncementPosters::Organizers) => AnnouncementPosters::Organizers,
            Ok(pb::AnnouncementPosters::OrganizersAndDelegates) => {
                AnnouncementPosters::OrganizersAndDelegates
            }
            _ => return Err(Error::InvalidCommitteeEntry("unknown announcement posters")),
        };
        let settings = CommitteeSettings {
            disappearing_timer_secs: s.disappearing_timer_secs,
            announcement_posters,
        };
        settings.check()?;
        Ok(settings)
    }

    /// Checks the limits; the same check runs on what we propose and what we receive.
    pub(crate) fn check(&self) -> Result<()> {
        if self.disappearing_timer_secs > MAX_DISAPPEARING_SECS {
            return Err(Error::InvalidCommitteeEntry("disappearing timer too long"));
        }
        Ok(())
    }
}

/// What a committee says about itself: free text, seen only by its members.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default)]
pub struct CommitteeMeta {
    /// The committee's name; never empty.
    pub name: String,
    /// The workplace (a factory, depot, hospital…).
    pub workplace: String,
    /// The industry.
    pub industry: String,
    /// The region.
    pub region: String,
}

impl CommitteeMeta {
    /// Checks the limits: a name, no field over [`MAX_META_LEN`] bytes, and
    /// no control characters (NULs, escapes, line breaks: each field is one
    /// line shown on every member's screen).
    pub(crate) fn check(&self) -> Result<()> {
        if self.name.trim().is_empty() {
            return Err(Error::InvalidCommitteeEntry("empty committee name"));
        }
        for field in [&self.name, &self.workplace, &self.industry, &self.region] {
            if field.len() > MAX_META_LEN {
                return Err(Error::InvalidCommitteeEntry(
                    "committee text field too long",
                ));
            }
            if field.chars().any(char::is_control) {
                return Err(Error::InvalidCommitteeEntry(
                    "committee text field has control characters",
                ));
            }
        }
        Ok(())
    }
}

/// How alerts coming from a council enter a committee linked into it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum LinkPolicy {
    /// Forwarded to every member at once.
    Forward,
    /// Held until an organizer of the committee approves it.
    Hold,
}

impl LinkPolicy {
    pub(crate) fn to_wire(self) -> i32 {
        match self {
            LinkPolicy::Forward => pb::LinkPolicy::Forward as i32,
            LinkPolicy::Hold => pb::LinkPolicy::Hold as i32,
        }
    }

    pub(crate) fn from_wire(value: i32) -> Result<Self> {
        match pb::LinkPolicy::try_from(value) {
            Ok(pb::LinkPolicy::Forward) => Ok(LinkPolicy::Forward),
            Ok(pb::LinkPolicy::Hold) => Ok(LinkPolicy::Hold),
            _ => Err(Error::InvalidCommitteeEntry("unknown link policy")),
        }
    }
}
