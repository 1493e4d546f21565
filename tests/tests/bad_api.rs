//! Bad input through the core's public API (issue 19, "Bad input at the
//! edges"): account IDs, contact cards, invite links and safety-number scans
//! that do not parse or do not match, keys and bundles of the wrong shape,
//! huge strings (a 10 MiB text, a 1 MiB name, NULs), and committees,
//! channels, messages, alerts and link proposals that do not exist. Each is a
//! typed `rankfile_core::Error` (never a panic), and the store, compared by a
//! dump of every row, is exactly as it was. The envelope and bundle parsers
//! are played in `bad_input.rs`; the CLI's side in `cli/tests/bad_input.rs`.

use rankfile_core::alert::{AlertAnswer, AlertDraft, AlertId, AlertKind, AlertScope};
use rankfile_core::committee::{
    ChannelKind, CommitteeId, CommitteeMeta, InviteToken, InviteTokenError, LinkPolicy, Role,
};
use rankfile_core::{AccountId, ContactCard, DatabaseKey, Draft, Error, CONTACT_CARD_PREFIX};
use rankfile_tests::online::{introduce_online, OnlinePhone};
use rankfile_tests::{in_an_hour, introduce, relay, Phone};

const MIB: usize = 1024 * 1024;

/// Texts no identifier, link or scan is: empty, space, NULs, huge, non-ASCII.
fn junk_texts() -> Vec<String> {
    vec![
        String::new(),
        "   ".into(),
        "\0".into(),
        "rf1-\0\0\0\0".into(),
        "rf1-".into(),
        "rf1-zzzzzzzz".into(),
        "é".repeat(40),
        "x".repeat(MIB),
        "\u{202e}rf1-abc".into(),
    ]
}

/// Two phones with sessions both ways, and a committee of Alice's with Bob
/// in it and a discussion channel.
fn setting(dir: &std::path::Path) -> (Phone, Phone, CommitteeId) {
    let mut alice = Phone::new(dir, "alice");
    let mut bob = Phone::new(dir, "bob");
    introduce(&mut alice, &mut bob);
    introduce(&mut bob, &mut alice);
    let committee = alice
        .create_committee(CommitteeMeta {
            name: "Depot".into(),
            ..CommitteeMeta::default()
        })
        .expect("committee");
    alice
        .add_member(&committee, &bob.id(), Role::Member)
        .expect("member");
    alice
        .create_channel(&committee, ChannelKind::Discussion)
        .expect("channel");
    (alice, bob, committee)
}

#[test]
fn identifiers_links_and_scans_that_do_not_parse_are_typed_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut alice, bob, _) = setting(dir.path());
    let mut carol = Phone::new(dir.path(), "carol");
    introduce(&mut carol, &mut alice);
    let before = alice.dump_database().expect("dump");

    let good = bob.id().to_string();
    let mut flipped = good.clone();
    let last = flipped.pop().expect("a character");
    flipped.push(if last == 'a' { 'b' } else { 'a' });
    let mut ids = junk_texts();
    ids.extend([flipped, format!("{good}{good}"), good.to_uppercase() + "!"]);
    for text in &ids {
        let r = AccountId::parse(text);
        assert!(
            matches!(r, Err(Error::InvalidAccountId(_))),
            "{} bytes: {r:?}",
            text.len()
        );
    }
    for bytes in [&[][..], &[1; 19][..], &[1; 21][..], &vec![0; MIB][..]] {
        assert!(matches!(
            AccountId::from_bytes(bytes),
            Err(Error::InvalidAccountId(_))
        ));
    }
    for hex in ["", "zz", &"0".repeat(39), &"0".repeat(41), &"é".repeat(20)] {
        assert!(matches!(
            AccountId::from_hex(hex),
            Err(Error::InvalidAccountId(_))
        ));
    }

    // Contact cards: not links, not base32, the wrong length or version.
    let card = bob.contact_card().to_link();
    let body = card.strip_prefix(CONTACT_CARD_PREFIX).expect("prefix");
    let mut cards = junk_texts();
    cards.extend([
        CONTACT_CARD_PREFIX.to_string(),
        format!("{CONTACT_CARD_PREFIX}!!!!"),
        format!("{CONTACT_CARD_PREFIX}{}", &body[..body.len() - 2]),
        format!("{CONTACT_CARD_PREFIX}{body}aaaa"),
        format!("{CONTACT_CARD_PREFIX}b{}", &body[1..]),
        format!("rankfile://join/{body}"),
        format!("{CONTACT_CARD_PREFIX}{}", "a".repeat(MIB)),
    ]);
    for text in &cards {
        let r = ContactCard::parse(text);
        assert!(
            matches!(r, Err(Error::InvalidAccountId(_))),
            "{:?}: {r:?}",
            text.chars().take(60).collect::<String>()
        );
    }
    // One's own card is refused.
    let mine = ContactCard::parse(&alice.contact_card().to_link()).expect("parses");
    assert!(matches!(
        alice.learn_contact_card(&mine),
        Err(Error::FromSelf)
    ));

    // Invite links.
    let mut invites = junk_texts();
    invites.extend([
        "rankfile://join/".into(),
        "rankfile://join/!!!!".into(),
        format!("rankfile://join/{body}"),
        card.clone(),
        format!("rankfile://join/{}", "a".repeat(MIB)),
    ]);
    for text in &invites {
        let r = InviteToken::parse(text);
        assert!(
            matches!(
                r,
                Err(InviteTokenError::NotAnInviteLink
                    | InviteTokenError::TooLong { .. }
                    | InviteTokenError::NotBase32
                    | InviteTokenError::WrongLength { .. }
                    | InviteTokenError::UnknownVersion(_))
            ),
            "{:?}: {r:?}",
            text.chars().take(60).collect::<String>()
        );
    }

    // Safety-number scans: empty, short, huge, random, and another pair's.
    let others = carol
        .safety_number(&alice.id())
        .expect("carol's number")
        .scannable;
    let genuine = bob
        .safety_number(&alice.id())
        .expect("bob's number")
        .scannable;
    let mut tampered = genuine.clone();
    let at = tampered.len() / 2;
    tampered[at] ^= 1;
    for scan in [
        Vec::new(),
        vec![0],
        vec![0xff; 64],
        vec![7; MIB],
        others,
        tampered,
        genuine[..genuine.len() - 1].to_vec(),
    ] {
        let r = alice.verify_contact(&bob.id(), &scan);
        assert!(
            matches!(r, Err(Error::SafetyNumberMismatch | Error::Protocol(_))),
            "{} bytes: {r:?}",
            scan.len()
        );
    }
    assert!(!alice.contact(&bob.id()).expect("contact").verified);
    assert_eq!(before, alice.dump_database().expect("dump"));
}

#[test]
fn bad_keys_and_huge_strings_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut alice, bob, committee) = setting(dir.path());
    let before = alice.dump_database().expect("dump");

    // Database keys of the wrong length.
    for len in [0, 1, 31, 33, 64, MIB] {
        assert!(matches!(
            DatabaseKey::from_slice(&vec![1; len]),
            Err(Error::DatabaseKeyLength(n)) if n == len
        ));
    }
    // Bundles: ten MiB of zeros, and of random-looking bytes.
    let noise: Vec<u8> = (0..10 * MIB).map(|i| (i * 2_654_435_761) as u8).collect();
    for bundle in [vec![0u8; 10 * MIB], noise] {
        let r = alice.add_contact("x", &bundle);
        assert!(matches!(r, Err(Error::InvalidBundle(_))), "{r:?}");
    }
    // A 10 MiB message to a contact (into a channel, which needs the relay:
    // below).
    let huge = "a".repeat(10 * MIB);
    assert!(matches!(
        alice.send_text(&bob.id(), &huge),
        Err(Error::MessageTooLarge { .. })
    ));
    // A committee whose name or workplace is a MiB, or empty.
    for meta in [
        CommitteeMeta {
            name: "n".repeat(MIB),
            ..CommitteeMeta::default()
        },
        CommitteeMeta {
            name: "Depot".into(),
            workplace: "\0".repeat(MIB),
            ..CommitteeMeta::default()
        },
        CommitteeMeta {
            name: "  ".into(),
            ..CommitteeMeta::default()
        },
        CommitteeMeta {
            name: "\0".into(),
            ..CommitteeMeta::default()
        },
        CommitteeMeta {
            name: "Depot\u{1b}[2J".into(),
            region: "North\nSouth".into(),
            ..CommitteeMeta::default()
        },
    ] {
        let r = alice.create_committee(meta.clone());
        assert!(matches!(r, Err(Error::InvalidCommitteeEntry(_))), "{r:?}");
        let r = alice.rename(&committee, meta);
        assert!(matches!(r, Err(Error::InvalidCommitteeEntry(_))), "{r:?}");
    }
    // An alert whose title or text is huge, or whose title is empty or NULs.
    for (title, text) in [
        ("t".repeat(MIB), String::new()),
        ("Strike".into(), "x".repeat(10 * MIB)),
        (String::new(), String::new()),
        ("\0\0".into(), String::new()),
    ] {
        let draft = AlertDraft {
            kind: AlertKind::RapidResponse,
            scope: AlertScope::Local,
            title,
            text,
            place: String::new(),
            starts_at_ms: 0,
            expires_at_ms: in_an_hour(),
            answers_wanted: true,
        };
        let r = alice.send_alert(&committee, draft);
        assert!(matches!(r, Err(Error::InvalidContent(_))), "{r:?}");
    }
    assert_eq!(before, alice.dump_database().expect("dump"));

    // A contact's name is cleaned rather than refused: a MiB of it with NULs
    // is kept to its bounded, printable first part.
    alice
        .rename_contact(&bob.id(), &"\0bob\u{7}".repeat(MIB / 5))
        .expect("renamed");
    let name = alice.contact(&bob.id()).expect("contact").name;
    assert!(
        name.len() <= rankfile_core::MAX_CONTACT_NAME,
        "{}",
        name.len()
    );
    assert!(!name.chars().any(char::is_control), "{name:?}");
}

#[test]
fn unknown_committees_channels_messages_alerts_and_proposals_are_typed_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut alice, bob, committee) = setting(dir.path());
    let channel = *alice
        .committee(&committee)
        .expect("state")
        .channels
        .keys()
        .next()
        .expect("a channel");
    let stranger = Phone::new(dir.path(), "stranger").id();
    let nowhere = CommitteeId([9; rankfile_core::committee::COMMITTEE_ID_LEN]);
    let no_channel = [7; rankfile_core::CHANNEL_ID_LEN];
    let no_alert = AlertId([5; rankfile_core::alert::ALERT_ID_LEN]);
    let before = alice.dump_database().expect("dump");

    let unknown_committee = |r: Result<(), Error>| {
        assert!(
            matches!(r, Err(Error::UnknownCommittee(id)) if id == nowhere),
            "{r:?}"
        )
    };
    unknown_committee(alice.committee(&nowhere).map(drop));
    unknown_committee(alice.remove_member(&nowhere, &bob.id()).map(drop));
    unknown_committee(
        alice
            .change_role(&nowhere, &bob.id(), Role::Delegate)
            .map(drop),
    );
    unknown_committee(alice.leave(&nowhere).map(drop));
    unknown_committee(alice.post(&nowhere, &channel, "hello").map(drop));
    unknown_committee(
        alice
            .create_channel(&nowhere, ChannelKind::Discussion)
            .map(drop),
    );
    unknown_committee(alice.create_invite(&nowhere, in_an_hour(), 1).map(drop));

    // A stranger is no member to remove or promote.
    for r in [
        alice.remove_member(&committee, &stranger).map(drop),
        alice
            .change_role(&committee, &stranger, Role::Organizer)
            .map(drop),
    ] {
        assert!(matches!(r, Err(Error::CommitteeChangeRefused(_))), "{r:?}");
    }
    // And someone with no session is no member to add.
    let r = alice.add_member(&committee, &stranger, Role::Member);
    assert!(
        matches!(r, Err(Error::UnknownContact(id)) if id == stranger),
        "{r:?}"
    );

    let r = alice.post(&committee, &no_channel, "hello");
    assert!(
        matches!(r, Err(Error::UnknownChannel(id)) if id == committee),
        "{r:?}"
    );
    for id in [0, -1, i64::MAX, i64::MIN, 999] {
        let r = alice.edit_channel_message(id, "changed");
        assert!(
            matches!(r, Err(Error::UnknownChannelMessage(n)) if n == id),
            "{r:?}"
        );
        let r = alice.delete_channel_message(id);
        assert!(
            matches!(r, Err(Error::UnknownChannelMessage(n)) if n == id),
            "{r:?}"
        );
    }
    for answer in [AlertAnswer::Coming, AlertAnswer::Safe] {
        let r = alice.answer_alert(&no_alert, answer);
        assert!(
            matches!(r, Err(Error::UnknownAlert(id)) if id == no_alert),
            "{r:?}"
        );
    }
    assert!(matches!(
        alice.renotify_alert(&no_alert),
        Err(Error::UnknownAlert(_))
    ));
    assert!(matches!(
        alice.alert(&no_alert),
        Err(Error::UnknownAlert(_))
    ));
    assert!(matches!(
        alice.approve_alert(&no_alert, &committee),
        Err(Error::UnknownAlert(_))
    ));
    assert!(matches!(
        alice.decline_link(&[3; 16]),
        Err(Error::UnknownLinkProposal)
    ));
    assert!(matches!(
        alice.accept_link(&[3; 16], &[], LinkPolicy::Forward),
        Err(Error::UnknownLinkProposal)
    ));
    // Contacts that are not, and identity changes that are not pending.
    for r in [
        alice.rename_contact(&stranger, "x"),
        alice.mark_verified(&stranger),
        alice.verify_contact(&stranger, &[1; 32]),
        alice.safety_number(&stranger).map(drop),
        alice.send_text(&stranger, "hi").map(drop),
        alice.accept_identity_change(&stranger).map(drop),
        alice.reject_identity_change(&stranger),
        alice.accept_identity_change(&bob.id()).map(drop),
    ] {
        assert!(matches!(r, Err(Error::UnknownContact(_))), "{r:?}");
    }
    assert_eq!(before, alice.dump_database().expect("dump"));
}

/// A channel post needs the relay's sender certificate, so this one is online:
/// a 10 MiB post, plain and as a draft, and an edit to that size, are
/// refused before the sender keys they would need are made or anything is
/// queued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_post_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay::start(&dir.path().join("relay")).await;
    let alice = OnlinePhone::start(dir.path(), "alice", &relay).await;
    let bob = OnlinePhone::start(dir.path(), "bob", &relay).await;
    introduce_online(&alice, &bob).await;
    let bob_id = bob.id;
    let outcome = alice
        .client
        .with_account(move |a| {
            let committee = a.create_committee(CommitteeMeta {
                name: "Depot".into(),
                ..CommitteeMeta::default()
            })?;
            a.add_member(&committee, &bob_id, Role::Member)?;
            let (channel, _) = a.create_channel(&committee, ChannelKind::Discussion)?;
            let before = a.dump_database()?;
            let huge = "a".repeat(10 * MIB);
            let plain = a.post(&committee, &channel, &huge).map(drop);
            let draft = a
                .post_message(&committee, &channel, &Draft::text(huge.clone()))
                .map(drop);
            let unchanged = before == a.dump_database()?;
            // And an edit of a message posted, to the same size.
            let posted = a.post(&committee, &channel, "small")?;
            let id = a
                .channel_history(&channel, None, 10)?
                .first()
                .map(|m| m.id)
                .ok_or(Error::UnknownChannelMessage(0))?;
            drop(posted);
            let before = a.dump_database()?;
            let edit = a.edit_channel_message(id, &huge).map(drop);
            let unchanged_by_edit = before == a.dump_database()?;
            Ok::<_, Error>((plain, draft, edit, unchanged && unchanged_by_edit))
        })
        .await
        .expect("the account")
        .expect("set up");
    let (plain, draft, edit, unchanged) = outcome;
    for r in [plain, draft, edit] {
        assert!(matches!(r, Err(Error::MessageTooLarge { .. })), "{r:?}");
    }
    assert!(unchanged, "a refused post changed the store");
}
