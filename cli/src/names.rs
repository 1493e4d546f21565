//! Names a person can type for committees, channels and members: IDs shown
//! in a short form (their first 8 hex digits) and taken back as any unique
//! prefix of at least 4, a committee by its name, a channel as
//! `COMMITTEE/discussion`, a member by contact name or the start of their
//! account ID. Nothing is stored for this: every name comes from the
//! encrypted store, so the home holds no plaintext list of committees.

use std::collections::HashMap;

use rankfile_core::alert::Alert;
use rankfile_core::committee::{ChannelId, ChannelKind, CommitteeId, CommitteeState};
use rankfile_core::transport::Client;
use rankfile_core::AccountId;

use crate::commands::quoted;
use crate::error::{CliError, Result};

/// Hex digits shown for a committee or channel ID.
pub const SHORT_HEX: usize = 8;
/// Fewest hex digits accepted as an ID prefix: fewer would match by accident.
pub const MIN_PREFIX: usize = 4;
/// Fewest characters (after `rf1`, dashes ignored) accepted as the start of an
/// account ID.
const MIN_ACCOUNT_PREFIX: usize = 4;

/// The short form of an ID.
pub fn short(bytes: &[u8]) -> String {
    let full = hex::encode(bytes);
    full.get(..SHORT_HEX).unwrap_or(&full).to_string()
}

/// A committee's short ID.
pub fn short_committee(id: &CommitteeId) -> String {
    short(&id.0)
}

/// The start of an account ID, `rf1-xxxxx-xxxxx`: enough to tell members apart
/// by eye, and accepted back by [`member`].
pub fn short_account(id: &AccountId) -> String {
    let full = id.to_string();
    full.get(..15).unwrap_or(&full).to_string()
}

/// Contact names by account (contacts filed on first contact have none).
pub async fn contact_names(client: &Client) -> Result<HashMap<AccountId, String>> {
    Ok(client
        .contacts()
        .await?
        .into_iter()
        .filter(|c| !c.name.trim().is_empty())
        .map(|c| (c.account_id, c.name))
        .collect())
}

/// How to show a person: "you", their contact name, or the start of their ID.
pub fn person(names: &HashMap<AccountId, String>, me: &AccountId, id: &AccountId) -> String {
    if id == me {
        "you".to_string()
    } else {
        names.get(id).cloned().unwrap_or_else(|| short_account(id))
    }
}

/// What a channel kind is called on the command line.
pub fn kind_word(kind: ChannelKind) -> &'static str {
    match kind {
        ChannelKind::Discussion => "discussion",
        ChannelKind::Announcement => "announcement",
    }
}

/// Every committee this device holds, as its log folds it.
pub async fn all_committees(client: &Client) -> Result<Vec<CommitteeState>> {
    Ok(client.committees().await?)
}

/// The committee `text` names.
pub async fn committee(client: &Client, text: &str) -> Result<CommitteeState> {
    let all = all_committees(client).await?;
    pick_committee(&all, text).cloned()
}

/// The committee `text` names among `all`: by name (case aside), else by ID prefix.
pub fn pick_committee<'a>(all: &'a [CommitteeState], text: &str) -> Result<&'a CommitteeState> {
    let wanted = text.trim();
    let by_name: Vec<&CommitteeState> = all
        .iter()
        .filter(|c| c.meta.name.trim().eq_ignore_ascii_case(wanted))
        .collect();
    match by_name.as_slice() {
        [one] => return Ok(one),
        [] => {}
        several => {
            return Err(CliError::Usage(format!(
                "several committees are named `{wanted}` ({}); use an ID prefix",
                several
                    .iter()
                    .map(|c| short_committee(&c.id))
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        }
    }
    let by_id = by_prefix(
        all.iter().map(|c| (c.id.0.as_slice(), c)),
        wanted,
        "committee",
    )?;
    by_id.ok_or_else(|| {
        CliError::Usage(format!(
            "no committee `{}` on this device; `rankfile committee list` shows yours",
            quoted(wanted)
        ))
    })
}

/// A channel and its committee.
#[derive(Debug, Clone)]
pub struct ChannelRef {
    pub committee: CommitteeState,
    pub channel: ChannelId,
    pub kind: ChannelKind,
}

/// The channel `text` names.
pub async fn channel(client: &Client, text: &str) -> Result<ChannelRef> {
    let all = all_committees(client).await?;
    pick_channel(&all, text)
}

/// The channel `text` names among the committees `all`: `COMMITTEE/KIND` when
/// the committee has one channel of that kind, else a prefix of its ID.
pub fn pick_channel(all: &[CommitteeState], text: &str) -> Result<ChannelRef> {
    let wanted = text.trim();
    if let Some((committee, word)) = wanted.rsplit_once('/') {
        let kind = match word.trim().to_ascii_lowercase().as_str() {
            "discussion" => ChannelKind::Discussion,
            "announcement" | "announcements" => ChannelKind::Announcement,
            _ => {
                return Err(CliError::Usage(format!(
                    "`{word}` is not a channel kind: use COMMITTEE/discussion or COMMITTEE/announcement"
                )))
            }
        };
        let c = pick_committee(all, committee)?;
        let of_kind: Vec<ChannelId> = c
            .channels
            .iter()
            .filter(|(_, k)| **k == kind)
            .map(|(id, _)| *id)
            .collect();
        return match of_kind.as_slice() {
            [one] => Ok(ChannelRef {
                committee: c.clone(),
                channel: *one,
                kind,
            }),
            [] => Err(CliError::Usage(format!(
                "committee `{}` has no {} channel yet; an organizer makes one with `rankfile channel create`",
                c.meta.name,
                kind_word(kind)
            ))),
            several => Err(CliError::Usage(format!(
                "committee `{}` has {} {} channels ({}); name one by its ID prefix",
                c.meta.name,
                several.len(),
                kind_word(kind),
                several.iter().map(|id| short(id)).collect::<Vec<_>>().join(", ")
            ))),
        };
    }
    let channels = all.iter().flat_map(|c| {
        c.channels
            .iter()
            .map(move |(id, kind)| (id.as_slice(), (c, *id, *kind)))
    });
    match by_prefix(channels, wanted, "channel")? {
        Some((c, channel, kind)) => Ok(ChannelRef {
            committee: c.clone(),
            channel,
            kind,
        }),
        None => Err(CliError::Usage(format!(
            "no channel `{}` on this device; `rankfile channel list` shows them",
            quoted(wanted)
        ))),
    }
}

/// The one item whose ID starts with the hex digits `text`; `None` if none
/// does, a usage error if `text` is not such a prefix or several match.
pub fn by_prefix<'a, T: Clone>(
    items: impl Iterator<Item = (&'a [u8], T)>,
    text: &str,
    what: &str,
) -> Result<Option<T>> {
    let prefix = text.to_ascii_lowercase();
    if prefix.len() < MIN_PREFIX || !prefix.chars().all(|c| c.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let matches: Vec<(String, T)> = items
        .map(|(id, t)| (hex::encode(id), t))
        .filter(|(id, _)| id.starts_with(&prefix))
        .collect();
    match matches.as_slice() {
        [] => Ok(None),
        [(_, one)] => Ok(Some(one.clone())),
        several => Err(CliError::Usage(format!(
            "`{text}` is the start of {} {what} IDs ({}); type more of it",
            several.len(),
            several
                .iter()
                .map(|(id, _)| id.get(..SHORT_HEX + 4).unwrap_or(id).to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// The alert `text` names: a unique prefix of its ID.
pub async fn alert(client: &Client, text: &str) -> Result<Alert> {
    let all = client.alerts().await?;
    let wanted = text.trim();
    by_prefix(
        all.iter().map(|a| (a.alert_id.0.as_slice(), a)),
        wanted,
        "alert",
    )?
    .cloned()
    .ok_or_else(|| {
        CliError::Usage(format!(
            "no alert `{}` on this device; `rankfile alert list` shows them",
            quoted(wanted)
        ))
    })
}

/// A committee's whole ID, typed as its 32 hex digits (for committees this
/// device does not hold, such as the other side of a link).
pub fn full_committee_id(text: &str) -> Result<CommitteeId> {
    let wanted = text.trim();
    hex::decode(wanted)
        .ok()
        .and_then(|b| CommitteeId::from_bytes(&b).ok())
        .ok_or_else(|| {
            CliError::Usage(format!(
                "`{}` is not a whole committee ID: give all 32 hex digits, as its organizer reads them from `rankfile committee list --json`",
                quoted(wanted)
            ))
        })
}

/// The member of `committee` that `text` names: an account ID, a contact's
/// name, or the unique start of a member's account ID.
pub async fn member(client: &Client, committee: &CommitteeState, text: &str) -> Result<AccountId> {
    let wanted = text.trim();
    if let Ok(id) = AccountId::parse(wanted) {
        return Ok(id);
    }
    let named: Vec<AccountId> = client
        .contacts()
        .await?
        .into_iter()
        .filter(|c| !wanted.is_empty() && c.name == wanted)
        .map(|c| c.account_id)
        .collect();
    match named.as_slice() {
        [one] => return Ok(*one),
        [] => {}
        _ => {
            return Err(CliError::Usage(format!(
                "several contacts are named `{wanted}`; use the account ID"
            )))
        }
    }
    pick_member(committee.members.keys().copied(), wanted)
}

/// The one account whose ID text starts with `text` (dashes and case aside).
fn pick_member(members: impl Iterator<Item = AccountId>, text: &str) -> Result<AccountId> {
    let squash = |s: &str| -> String {
        s.chars()
            .filter(|c| *c != '-')
            .flat_map(char::to_lowercase)
            .collect()
    };
    let prefix = squash(text);
    let typed = prefix.strip_prefix("rf1").unwrap_or(&prefix).len();
    if typed >= MIN_ACCOUNT_PREFIX {
        let found: Vec<AccountId> = members
            .filter(|m| {
                let id = squash(&m.to_string());
                id.starts_with(&prefix)
                    || id
                        .strip_prefix("rf1")
                        .is_some_and(|i| i.starts_with(&prefix))
            })
            .collect();
        match found.as_slice() {
            [one] => return Ok(*one),
            [] => {}
            several => {
                return Err(CliError::Usage(format!(
                    "`{text}` is the start of {} members' account IDs; type more of it",
                    several.len()
                )))
            }
        }
    }
    Err(CliError::Usage(format!(
        "no member `{text}` in this committee: give a contact's name, an account ID (rf1-…), or the start of one (`rankfile committee members` lists them)"
    )))
}

#[cfg(test)]
mod tests {
    use rankfile_core::committee::CommitteeMeta;
    use rankfile_core::DatabaseKey;

    use super::*;

    /// A real account (offline: founding and channels need no network).
    fn account(dir: &tempfile::TempDir) -> Client {
        Client::open_offline(dir.path(), &DatabaseKey::generate()).expect("account")
    }

    async fn found(a: &Client, name: &str) -> CommitteeId {
        a.create_committee(CommitteeMeta {
            name: name.into(),
            ..CommitteeMeta::default()
        })
        .await
        .expect("founded")
    }

    #[test]
    fn short_ids_are_eight_hex_digits() {
        assert_eq!(short(&[0xab, 0xcd, 0xef, 0x01, 0x23]), "abcdef01");
        assert_eq!(short(&[0xab]), "ab");
    }

    #[tokio::test]
    async fn committees_by_name_or_prefix() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = account(&dir);
        let depot = found(&a, "Depot").await;
        let night = found(&a, "Night shift").await;
        found(&a, "night shift").await;
        assert_eq!(committee(&a, " depot ").await.expect("name").id, depot);
        let prefix = short_committee(&night).to_uppercase();
        assert_eq!(committee(&a, &prefix).await.expect("prefix").id, night);
        let e = committee(&a, "NIGHT SHIFT").await.expect_err("two names");
        assert!(e.to_string().contains(&short_committee(&night)), "{e}");
        let e = committee(&a, &short_committee(&depot)[..3])
            .await
            .expect_err("too short");
        assert!(e.to_string().contains("no committee"), "{e}");
        a.close().await.expect("closed");
    }

    #[test]
    fn prefixes_must_be_hex_long_enough_and_unique() {
        let ids: [&[u8]; 3] = [&[0x10, 0x5a, 0], &[0x10, 0x5a, 1], &[0x20, 0, 0]];
        let items = || ids.iter().enumerate().map(|(i, id)| (*id, i));
        assert_eq!(by_prefix(items(), "2000", "x").expect("one"), Some(2));
        assert_eq!(by_prefix(items(), "105a01", "x").expect("one"), Some(1));
        assert_eq!(by_prefix(items(), "ffff", "x").expect("none"), None);
        assert_eq!(by_prefix(items(), "200", "x").expect("short"), None);
        assert_eq!(by_prefix(items(), "20zz", "x").expect("not hex"), None);
        let e = by_prefix(items(), "105a", "x").expect_err("two");
        assert!(e.to_string().contains("type more"), "{e}");
    }

    #[tokio::test]
    async fn channels_by_kind_or_prefix() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = account(&dir);
        let depot = found(&a, "Depot").await;
        let council = found(&a, "Council").await;
        let make = |c: CommitteeId, kind| a.create_channel(c, kind);
        let talk = make(depot, ChannelKind::Discussion).await.expect("channel");
        let news = make(depot, ChannelKind::Announcement)
            .await
            .expect("channel");
        let first = make(council, ChannelKind::Discussion)
            .await
            .expect("channel");
        make(council, ChannelKind::Discussion)
            .await
            .expect("channel");
        let r = channel(&a, "Depot/discussion").await.expect("kind");
        assert_eq!((r.channel, r.committee.id), (talk, depot));
        let r = channel(&a, "depot/Announcements").await.expect("kind");
        assert_eq!((r.channel, r.kind), (news, ChannelKind::Announcement));
        let r = channel(&a, &short(&first)).await.expect("prefix");
        assert_eq!((r.channel, r.committee.id), (first, council));
        let e = channel(&a, "council/discussion")
            .await
            .expect_err("two of a kind");
        assert!(e.to_string().contains(&short(&first)), "{e}");
        assert!(channel(&a, "council/announcement").await.is_err());
        assert!(channel(&a, "depot/gossip").await.is_err());
        a.close().await.expect("closed");
    }

    #[test]
    fn members_by_the_start_of_their_account_id() {
        let a = AccountId::from_bytes(&[1u8; 20]).expect("id");
        let b = AccountId::from_bytes(&[2u8; 20]).expect("id");
        let (ta, tb) = (a.to_string(), b.to_string());
        assert_ne!(ta.get(..9), tb.get(..9), "{ta} {tb}");
        let members = || [a, b].into_iter();
        assert_eq!(
            pick_member(members(), ta.get(..9).expect("9")).expect("a"),
            a
        );
        // Dashes, case and the rf1 prefix are optional.
        let bare: String = tb[4..].chars().filter(|c| *c != '-').take(6).collect();
        assert_eq!(pick_member(members(), &bare.to_uppercase()).expect("b"), b);
        // Too short to be sure, and unknown, are usage errors.
        assert!(pick_member(members(), "rf1-").is_err());
        assert!(pick_member(members(), "zzzzzzzz").is_err());
    }
}
