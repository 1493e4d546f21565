//! Invites: the token an organizer hands out (a `rankfile://join/…` link, the
//! same text as a QR payload), the join request a newcomer sends back, and the
//! organizer's device checking it against the log before admitting them.
//!
//! The token holds a random secret; the log holds only a hash of it, so a
//! member reading the log cannot mint admissions, and an organizer's device
//! admits only someone who shows the secret.

use std::fmt;

use libsignal_protocol::{IdentityKey, IdentityKeyPair};
use prost::Message;
use rankfile_proto::v1 as pb;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::entry::{Op, SignedEntry, MAX_INVITE_USES};
use super::log::CommitteeLog;
use super::state::RejectReason;
use super::types::{CommitteeId, InviteId, Role, COMMITTEE_ID_LEN, INVITE_ID_LEN};
use crate::account_id::{AccountId, ACCOUNT_ID_LEN};
use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::settings::ACCESS_KEY_LEN;
use crate::transport::RelayAddress;

/// The link form's prefix; the QR payload is the same text.
pub const INVITE_LINK_PREFIX: &str = "rankfile://join/";
/// Bytes in an invite's secret: 128 bits, beyond guessing.
pub const INVITE_SECRET_LEN: usize = 16;
/// Version byte of the token's first binary form: no relay, one organizer.
/// Still written when there is nothing more to carry, and still read.
const TOKEN_VERSION: u8 = 1;
/// Version byte of the form that also carries the relay (address and
/// certificate fingerprint), so a phone that knows no relay can join, and
/// more organizers, so any of them online can admit.
const TOKEN_VERSION_RELAY: u8 = 2;
/// Version, committee ID, invite ID, secret, expiry, the organizer's account
/// ID and access key: the whole of version 1, the start of version 2.
const TOKEN_LEN: usize =
    1 + COMMITTEE_ID_LEN + INVITE_ID_LEN + INVITE_SECRET_LEN + 8 + ACCOUNT_ID_LEN + ACCESS_KEY_LEN;
/// Organizers a link names besides the one who made it. The relay (IPv4)
/// costs 63 characters and each organizer 58: with one other a link is 274
/// characters (a QR code of version 12 at medium error correction, byte
/// mode), with three 389 (version 15; 12 when shown in capitals, which the
/// alphanumeric mode packs tighter and the parser reads the same).
pub const MAX_OTHER_ORGANIZERS: usize = 3;
/// One more organizer: account ID and access key.
const ORGANIZER_LEN: usize = ACCOUNT_ID_LEN + ACCESS_KEY_LEN;
/// Longest version 2 token: the relay at an IPv6 address, every organizer.
const MAX_TOKEN_LEN: usize =
    TOKEN_LEN + crate::transport::MAX_RELAY_ADDRESS_LEN + 1 + MAX_OTHER_ORGANIZERS * ORGANIZER_LEN;
/// Longest text [`InviteToken::parse`] looks at (a version 1 token is 152
/// characters, a version 2 one at most 408).
const MAX_TOKEN_TEXT: usize = 512;
/// Domain separation for the secret's hash in the log.
const SECRET_DOMAIN: &[u8] = b"rankfile committee invite secret v1";

/// Why an invite link or join request did not parse.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InviteTokenError {
    /// The text does not start with `rankfile://join/`.
    #[error("not a rankfile://join/ link")]
    NotAnInviteLink,
    /// The text is longer than any token.
    #[error("{len} characters is too long for an invite")]
    TooLong { len: usize },
    /// A character outside base32.
    #[error("not base32")]
    NotBase32,
    /// The decoded token has the wrong length.
    #[error("an invite token is {expected} bytes, got {len}")]
    WrongLength { len: usize, expected: usize },
    /// A token version this build does not know.
    #[error("unknown invite version {0}")]
    UnknownVersion(u8),
    /// A join request that does not parse or has a field of the wrong length.
    #[error("malformed join request: {0}")]
    MalformedJoinRequest(&'static str),
}

impl From<InviteTokenError> for Error {
    fn from(e: InviteTokenError) -> Self {
        Error::InvalidInvite(e)
    }
}

/// An invite's secret. Zeroized on drop; `Debug` shows nothing.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct InviteSecret([u8; INVITE_SECRET_LEN]);

impl InviteSecret {
    fn random() -> Self {
        let mut s = [0u8; INVITE_SECRET_LEN];
        rand::Rng::fill(&mut rand::rng(), &mut s);
        InviteSecret(s)
    }
}

/// Compared in constant time: a secret is checked against a guess.
impl PartialEq for InviteSecret {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for InviteSecret {}

impl fmt::Debug for InviteSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("InviteSecret(..)")
    }
}

/// What an invite link carries.
#[derive(Clone, Debug)]
pub struct InviteToken {
    /// The committee it admits to.
    pub committee_id: CommitteeId,
    /// The invite, as the log names it.
    pub invite_id: InviteId,
    /// The proof of holding the link.
    pub secret: InviteSecret,
    /// When it stops working, milliseconds since the epoch (shown to the
    /// newcomer; the organizer's device checks the log's copy).
    pub expires_at_ms: u64,
    /// The organizer who made it: the newcomer's device sends its join
    /// request there (fetching the organizer's prekey bundle from the relay).
    pub organizer: AccountId,
    /// The organizer's access key, so the join request travels by sealed
    /// sender and the relay does not learn who asks to join whom.
    pub organizer_access_key: [u8; ACCESS_KEY_LEN],
    /// The committee's relay, for a phone that knows none yet (`None` in a
    /// version 1 link).
    pub relay: Option<RelayAddress>,
    /// Other organizers the join request goes to as well, each with its
    /// access key, so whichever is online admits (at most
    /// [`MAX_OTHER_ORGANIZERS`]).
    pub other_organizers: Vec<(AccountId, [u8; ACCESS_KEY_LEN])>,
}

impl InviteToken {
    /// The link: `rankfile://join/` and the token in base32 (version 1 when
    /// it carries no relay and no other organizer, else version 2).
    pub fn to_link(&self) -> String {
        let plain = self.relay.is_none() && self.other_organizers.is_empty();
        let mut bytes = Vec::with_capacity(MAX_TOKEN_LEN);
        bytes.push(if plain {
            TOKEN_VERSION
        } else {
            TOKEN_VERSION_RELAY
        });
        bytes.extend_from_slice(&self.committee_id.0);
        bytes.extend_from_slice(&self.invite_id.0);
        bytes.extend_from_slice(&self.secret.0);
        bytes.extend_from_slice(&self.expires_at_ms.to_be_bytes());
        bytes.extend_from_slice(self.organizer.as_bytes());
        bytes.extend_from_slice(&self.organizer_access_key);
        if !plain {
            match &self.relay {
                Some(r) => bytes.extend_from_slice(&r.to_bytes()),
                None => bytes.push(0),
            }
            let others =
                &self.other_organizers[..self.other_organizers.len().min(MAX_OTHER_ORGANIZERS)];
            bytes.push(u8::try_from(others.len()).unwrap_or(0));
            for (id, key) in others {
                bytes.extend_from_slice(id.as_bytes());
                bytes.extend_from_slice(key);
            }
        }
        let text = format!("{INVITE_LINK_PREFIX}{}", crate::base32::encode(&bytes));
        bytes.zeroize();
        text
    }

    /// Every organizer the link names, the one who made it first, each with
    /// its access key.
    pub fn organizers(&self) -> Vec<(AccountId, [u8; ACCESS_KEY_LEN])> {
        let mut all = vec![(self.organizer, self.organizer_access_key)];
        for (id, key) in &self.other_organizers {
            if !all.iter().any(|(o, _)| o == id) {
                all.push((*id, *key));
            }
        }
        all
    }

    /// The QR payload: the link itself, so scanning and tapping are one path.
    pub fn qr_payload(&self) -> String {
        self.to_link()
    }

    /// Reads a link or QR payload, ignoring surrounding space and case.
    pub fn parse(text: &str) -> Result<Self, InviteTokenError> {
        let text = text.trim();
        if text.len() > MAX_TOKEN_TEXT {
            return Err(InviteTokenError::TooLong { len: text.len() });
        }
        let lower = text.to_ascii_lowercase();
        let body = lower
            .strip_prefix(INVITE_LINK_PREFIX)
            .ok_or(InviteTokenError::NotAnInviteLink)?;
        let mut bytes = crate::base32::decode(body).ok_or(InviteTokenError::NotBase32)?;
        let parsed = Self::from_bytes(&bytes);
        bytes.zeroize();
        parsed
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, InviteTokenError> {
        let wrong = |expected| InviteTokenError::WrongLength {
            len: bytes.len(),
            expected,
        };
        let version = *bytes.first().ok_or(wrong(TOKEN_LEN))?;
        if version != TOKEN_VERSION && version != TOKEN_VERSION_RELAY {
            return Err(InviteTokenError::UnknownVersion(version));
        }
        if bytes.len() < TOKEN_LEN || (version == TOKEN_VERSION && bytes.len() != TOKEN_LEN) {
            return Err(wrong(TOKEN_LEN));
        }
        let (committee, rest) = bytes[1..].split_at(COMMITTEE_ID_LEN);
        let (invite, rest) = rest.split_at(INVITE_ID_LEN);
        let (secret, rest) = rest.split_at(INVITE_SECRET_LEN);
        let (expiry, rest) = rest.split_at(8);
        let (organizer, rest) = rest.split_at(ACCOUNT_ID_LEN);
        let (access_key, rest) = rest.split_at(ACCESS_KEY_LEN);
        let (relay, other_organizers) = if version == TOKEN_VERSION {
            (None, Vec::new())
        } else {
            Self::relay_part(rest).ok_or(wrong(MAX_TOKEN_LEN))?
        };
        Ok(InviteToken {
            committee_id: CommitteeId(committee.try_into().map_err(|_| wrong(TOKEN_LEN))?),
            invite_id: InviteId(invite.try_into().map_err(|_| wrong(TOKEN_LEN))?),
            secret: InviteSecret(secret.try_into().map_err(|_| wrong(TOKEN_LEN))?),
            expires_at_ms: u64::from_be_bytes(expiry.try_into().map_err(|_| wrong(TOKEN_LEN))?),
            organizer: AccountId::from_bytes(organizer).map_err(|_| wrong(TOKEN_LEN))?,
            organizer_access_key: access_key.try_into().map_err(|_| wrong(TOKEN_LEN))?,
            relay,
            other_organizers,
        })
    }

    /// What version 2 adds after the organizer: the relay (or a 0 byte),
    /// then the count of other organizers and each one. `None` when
    /// malformed or with bytes left over.
    #[allow(clippy::type_complexity)]
    fn relay_part(
        bytes: &[u8],
    ) -> Option<(Option<RelayAddress>, Vec<(AccountId, [u8; ACCESS_KEY_LEN])>)> {
        let (relay, rest) = match bytes.first()? {
            0 => (None, &bytes[1..]),
            _ => {
                let (r, rest) = RelayAddress::from_bytes(bytes)?;
                (Some(r), rest)
            }
        };
        let (&count, mut rest) = rest.split_first()?;
        let count = usize::from(count);
        if count > MAX_OTHER_ORGANIZERS || rest.len() != count * ORGANIZER_LEN {
            return None;
        }
        let mut others = Vec::with_capacity(count);
        while !rest.is_empty() {
            let (id, after) = rest.split_at(ACCOUNT_ID_LEN);
            let (key, after) = after.split_at(ACCESS_KEY_LEN);
            others.push((AccountId::from_bytes(id).ok()?, key.try_into().ok()?));
            rest = after;
        }
        Some((relay, others))
    }

    /// Whether the token has expired at `now_ms`.
    pub fn is_expired(&self, now_ms: u64) -> bool {
        now_ms >= self.expires_at_ms
    }

    /// The hash the log keeps in place of the secret.
    pub fn secret_hash(&self) -> [u8; 32] {
        secret_hash(self.committee_id, self.invite_id, &self.secret)
    }
}

fn secret_hash(committee: CommitteeId, invite: InviteId, secret: &InviteSecret) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(SECRET_DOMAIN);
    h.update(committee.0);
    h.update(invite.0);
    h.update(secret.0);
    h.finalize().into()
}

/// What a newcomer sends (end-to-end encrypted) to an organizer's device to
/// redeem an invite.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinRequest {
    /// The committee, from the token.
    pub committee_id: CommitteeId,
    /// The invite, from the token.
    pub invite_id: InviteId,
    /// The token's secret.
    pub secret: InviteSecret,
    /// The newcomer's public identity key.
    pub identity_key: IdentityKey,
}

impl JoinRequest {
    /// The request for `token` from the holder of `identity_key`.
    pub fn new(token: &InviteToken, identity_key: IdentityKey) -> Self {
        JoinRequest {
            committee_id: token.committee_id,
            invite_id: token.invite_id,
            secret: token.secret.clone(),
            identity_key,
        }
    }

    /// The newcomer's account ID.
    pub fn account(&self) -> AccountId {
        AccountId::from_identity_key(&self.identity_key)
    }

    /// The wire form (`CommitteeJoinRequest`).
    pub fn encode(&self) -> Vec<u8> {
        self.to_wire().encode_to_vec()
    }

    pub(crate) fn to_wire(&self) -> pb::CommitteeJoinRequest {
        pb::CommitteeJoinRequest {
            committee_id: self.committee_id.0.to_vec(),
            invite_id: self.invite_id.0.to_vec(),
            secret: self.secret.0.to_vec(),
            identity_key: self.identity_key.serialize().to_vec(),
        }
    }

    /// Reads the wire form.
    pub fn decode(bytes: &[u8]) -> Result<Self, InviteTokenError> {
        use InviteTokenError::MalformedJoinRequest as Bad;
        if bytes.len() > MAX_TOKEN_TEXT {
            return Err(Bad("too large"));
        }
        let r = pb::CommitteeJoinRequest::decode(bytes).map_err(|_| Bad("does not parse"))?;
        Self::from_wire(r)
    }

    pub(crate) fn from_wire(mut r: pb::CommitteeJoinRequest) -> Result<Self, InviteTokenError> {
        use InviteTokenError::MalformedJoinRequest as Bad;
        let secret = r.secret.as_slice().try_into().map_err(|_| Bad("secret"));
        r.secret.zeroize();
        Ok(JoinRequest {
            committee_id: CommitteeId(
                r.committee_id
                    .as_slice()
                    .try_into()
                    .map_err(|_| Bad("committee ID"))?,
            ),
            invite_id: InviteId(
                r.invite_id
                    .as_slice()
                    .try_into()
                    .map_err(|_| Bad("invite ID"))?,
            ),
            secret: InviteSecret(secret?),
            identity_key: IdentityKey::decode(&r.identity_key).map_err(|_| Bad("identity key"))?,
        })
    }
}

impl CommitteeLog {
    /// Makes an invite by `organizer` admitting up to `max_uses` people until
    /// `expires_at_ms`: the CreateInvite entry to send to the members, and the
    /// token to show as a link or QR code (carrying the organizer's
    /// `access_key`, so join requests can reach it sealed).
    pub fn create_invite(
        &mut self,
        organizer: &IdentityKeyPair,
        access_key: [u8; ACCESS_KEY_LEN],
        expires_at_ms: u64,
        max_uses: u32,
    ) -> Result<(SignedEntry, InviteToken)> {
        if max_uses == 0 || max_uses > MAX_INVITE_USES {
            return Err(Error::InvalidCommitteeEntry("invite uses out of range"));
        }
        let token = InviteToken {
            committee_id: self.id(),
            invite_id: InviteId::random(),
            secret: InviteSecret::random(),
            expires_at_ms,
            organizer: AccountId::from_identity_key(organizer.identity_key()),
            organizer_access_key: access_key,
            relay: None,
            other_organizers: Vec::new(),
        };
        let op = Op::CreateInvite {
            invite_id: token.invite_id,
            expires_at_ms,
            max_uses,
            secret_hash: token.secret_hash(),
        };
        let entry = self.propose(organizer, op)?;
        Ok((entry, token))
    }

    /// Withdraws an invite.
    pub fn revoke_invite(
        &mut self,
        organizer: &IdentityKeyPair,
        invite_id: InviteId,
    ) -> Result<SignedEntry> {
        self.propose(organizer, Op::RevokeInvite { invite_id })
    }

    /// On an organizer's device: checks a join request against the log (the
    /// committee, the secret, and that the invite is not revoked, expired or
    /// used up) and admits the newcomer as a member with an Add citing the
    /// invite.
    pub fn admit(
        &mut self,
        organizer: &IdentityKeyPair,
        request: &JoinRequest,
    ) -> Result<SignedEntry> {
        self.admit_at(organizer, request, u64::try_from(now_ms()).unwrap_or(0))
    }

    pub(crate) fn admit_at(
        &mut self,
        organizer: &IdentityKeyPair,
        request: &JoinRequest,
        now_ms: u64,
    ) -> Result<SignedEntry> {
        if request.committee_id != self.id() {
            return Err(Error::WrongCommittee {
                expected: self.id(),
                found: request.committee_id,
            });
        }
        let id = request.invite_id;
        let refused = Error::CommitteeChangeRefused;
        let invite = self
            .state()
            .invites
            .get(&id)
            .ok_or(refused(RejectReason::UnknownInvite(id)))?;
        let presented = secret_hash(self.id(), id, &request.secret);
        if !bool::from(presented.ct_eq(&invite.secret_hash)) {
            return Err(refused(RejectReason::InviteSecretMismatch(id)));
        }
        invite.check_open(id, now_ms).map_err(refused)?;
        let op = Op::Add {
            account: request.account(),
            identity_key: request.identity_key,
            role: Role::Member,
            invite: Some(id),
        };
        self.propose_at(organizer, op, now_ms)
    }
}
