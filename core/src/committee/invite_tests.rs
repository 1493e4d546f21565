//! Tests of invites: tokens as links and QR payloads, redemption through an
//! organizer's device, expiry, uses, revocation, and what other clients see.

use super::entry::{Op, SignedEntry};
use super::tests::{self, client, forge, founded, person, Person};
use super::*;
use crate::error::Error;
use crate::settings::ACCESS_KEY_LEN;

const NOW: u64 = 1_700_000_000_000;
const HOUR: u64 = 3_600_000;

fn refused(result: crate::Result<SignedEntry>) -> RejectReason {
    match result {
        Err(Error::CommitteeChangeRefused(r)) => r,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_token_round_trips_as_link_and_qr_payload() {
    let (mut log, _, founder) = founded();
    let (entry, token) = log
        .create_invite(&founder.key, [5; ACCESS_KEY_LEN], NOW + HOUR, 3)
        .expect("invites");
    let link = token.to_link();
    assert!(link.starts_with(INVITE_LINK_PREFIX));
    assert_eq!(token.qr_payload(), link);
    assert!(!format!("{token:?}").contains(&hex::encode(token.secret_hash())));
    assert!(format!("{:?}", token.secret).contains(".."));
    let parsed = InviteToken::parse(&format!("  {}\n", link.to_uppercase())).expect("parses");
    assert_eq!(parsed.committee_id, log.id());
    assert_eq!(parsed.invite_id, token.invite_id);
    assert_eq!(parsed.expires_at_ms, NOW + HOUR);
    assert_eq!(parsed.secret_hash(), token.secret_hash());
    assert_eq!(parsed.organizer, founder.id);
    assert_eq!(parsed.organizer_access_key, [5; ACCESS_KEY_LEN]);
    assert!(!parsed.is_expired(NOW) && parsed.is_expired(NOW + HOUR));
    // The log keeps the hash, never the secret.
    let invite = &log.state().invites[&token.invite_id];
    assert_eq!(invite.secret_hash, token.secret_hash());
    assert_eq!(
        (invite.max_uses, invite.uses, invite.revoked),
        (3, 0, false)
    );
    assert_eq!(entry.hash(), log.heads()[0]);
}

#[test]
fn token_parse_errors_are_typed() {
    let (mut log, _, founder) = founded();
    let (_, token) = log
        .create_invite(&founder.key, [5; ACCESS_KEY_LEN], NOW, 1)
        .expect("invites");
    let link = token.to_link();
    let body = &link[INVITE_LINK_PREFIX.len()..];
    let cases: Vec<(String, InviteTokenError)> = vec![
        (
            format!("https://join/{body}"),
            InviteTokenError::NotAnInviteLink,
        ),
        (String::new(), InviteTokenError::NotAnInviteLink),
        (format!("{link}!"), InviteTokenError::NotBase32),
        (
            format!("{INVITE_LINK_PREFIX}{}", &body[..16]),
            InviteTokenError::WrongLength {
                len: 10,
                expected: 85,
            },
        ),
        (
            format!("{INVITE_LINK_PREFIX}aa"),
            InviteTokenError::UnknownVersion(0),
        ),
        (
            INVITE_LINK_PREFIX.to_string(),
            InviteTokenError::WrongLength {
                len: 0,
                expected: 85,
            },
        ),
        ("x".repeat(1000), InviteTokenError::TooLong { len: 1000 }),
    ];
    for (text, expected) in cases {
        assert_eq!(InviteToken::parse(&text).expect_err(&text), expected);
    }
    // A character changed anywhere changes what the token says: the access
    // key at the end is its last field.
    let mut odd = link.clone();
    let last = odd.pop().expect("non-empty");
    odd.push(if last == 'a' { 'b' } else { 'a' });
    let changed = InviteToken::parse(&odd).expect("still a token");
    assert_ne!(changed.organizer_access_key, token.organizer_access_key);
    assert!(matches!(
        JoinRequest::decode(b"\x0a\x02ab"),
        Err(InviteTokenError::MalformedJoinRequest(_))
    ));
}

#[test]
fn a_newcomer_is_admitted_on_an_invite_and_every_client_agrees() {
    let (mut log, genesis, founder) = founded();
    let (created, token) = log
        .create_invite(&founder.key, [5; ACCESS_KEY_LEN], NOW + HOUR, 2)
        .expect("invites");
    let newcomer = person();
    // The newcomer scans the QR code and sends a join request.
    let scanned = InviteToken::parse(&token.qr_payload()).expect("parses");
    let request = JoinRequest::new(&scanned, *newcomer.key.identity_key());
    let received = JoinRequest::decode(&request.encode()).expect("decodes");
    assert_eq!(received.account(), newcomer.id);
    let admission = log.admit_at(&founder.key, &received, NOW).expect("admits");
    match admission.parse().expect("parses").op {
        Op::Add {
            account,
            role,
            invite,
            ..
        } => {
            assert_eq!(
                (account, role, invite),
                (newcomer.id, Role::Member, Some(token.invite_id))
            );
        }
        other => panic!("expected an Add, got {other:?}"),
    }
    assert_eq!(log.state().invites[&token.invite_id].uses, 1);
    assert_eq!(log.state().role(&newcomer.id), Some(Role::Member));
    let other = client(&genesis, &[admission, created]);
    assert_eq!(other.state(), log.state());
    // Already a member: a second redemption by the same person is refused.
    assert_eq!(
        refused(log.admit_at(&founder.key, &received, NOW)),
        RejectReason::AlreadyAMember(newcomer.id)
    );
}

#[test]
fn expired_used_up_revoked_and_wrong_secret_invites_are_refused() {
    let (mut log, genesis, founder) = founded();
    let (_, once) = log
        .create_invite(&founder.key, [5; ACCESS_KEY_LEN], NOW + HOUR, 1)
        .expect("invites");
    let (a, b, c) = (person(), person(), person());
    let req = |p: &Person, t: &InviteToken| JoinRequest::new(t, *p.key.identity_key());
    assert_eq!(
        refused(log.admit_at(&founder.key, &req(&a, &once), NOW + HOUR)),
        RejectReason::InviteExpired(once.invite_id)
    );
    log.admit_at(&founder.key, &req(&a, &once), NOW)
        .expect("admits a");
    assert_eq!(
        refused(log.admit_at(&founder.key, &req(&b, &once), NOW)),
        RejectReason::InviteUsedUp {
            invite: once.invite_id,
            max_uses: 1
        }
    );
    let (_, revoked) = log
        .create_invite(&founder.key, [5; ACCESS_KEY_LEN], NOW + HOUR, 5)
        .expect("invites");
    log.revoke_invite(&founder.key, revoked.invite_id)
        .expect("revokes");
    assert_eq!(
        refused(log.admit_at(&founder.key, &req(&b, &revoked), NOW)),
        RejectReason::InviteRevoked(revoked.invite_id)
    );
    assert_eq!(
        refused(log.revoke_invite(&founder.key, revoked.invite_id)),
        RejectReason::InviteRevoked(revoked.invite_id)
    );
    let (_, open) = log
        .create_invite(&founder.key, [5; ACCESS_KEY_LEN], NOW + HOUR, 5)
        .expect("invites");
    let mut guessed = req(&b, &open);
    guessed.secret = req(&b, &once).secret;
    assert_eq!(
        refused(log.admit_at(&founder.key, &guessed, NOW)),
        RejectReason::InviteSecretMismatch(open.invite_id)
    );
    let (mut other_log, _, other_founder) = founded();
    let (_, foreign) = other_log
        .create_invite(&other_founder.key, [5; ACCESS_KEY_LEN], NOW + HOUR, 1)
        .expect("invites");
    assert!(matches!(
        log.admit_at(&founder.key, &req(&c, &foreign), NOW),
        Err(Error::WrongCommittee { .. })
    ));
    // An organizer's client that skips the checks: every other client rejects
    // the Add in the fold, by the entry's own time.
    let late = Op::Add {
        account: c.id,
        identity_key: *c.key.identity_key(),
        role: Role::Member,
        invite: Some(once.invite_id),
    };
    let forged = forge(&log, &founder, late);
    let mut other = client(&genesis, &log.entries().cloned().collect::<Vec<_>>());
    assert!(matches!(
        other.insert_signed(forged).expect("stored"),
        InsertOutcome::Rejected {
            reason: RejectReason::InviteUsedUp { .. },
            ..
        }
    ));
    assert_eq!(other.state().role(&c.id), None);
    assert_eq!(log.state().invites.len(), 3);
}

#[test]
fn a_member_cannot_make_invites_and_limits_hold() {
    let (mut log, _, founder) = founded();
    let m = person();
    log.propose(&founder.key, tests::add(&m, Role::Delegate))
        .expect("adds");
    assert_eq!(
        refused(
            log.create_invite(&m.key, [5; ACCESS_KEY_LEN], NOW + HOUR, 1)
                .map(|(e, _)| e)
        ),
        RejectReason::NotAnOrganizer(m.id)
    );
    assert!(log
        .create_invite(&founder.key, [5; ACCESS_KEY_LEN], NOW + HOUR, 0)
        .is_err());
    assert!(log
        .create_invite(
            &founder.key,
            [5; ACCESS_KEY_LEN],
            NOW + HOUR,
            MAX_INVITE_USES + 1
        )
        .is_err());
    let far = u64::MAX;
    for _ in 0..MAX_OPEN_INVITES {
        log.create_invite(&founder.key, [5; ACCESS_KEY_LEN], far, 1)
            .expect("invites");
    }
    assert_eq!(
        refused(
            log.create_invite(&founder.key, [5; ACCESS_KEY_LEN], far, 1)
                .map(|(e, _)| e)
        ),
        RejectReason::TooManyInvites {
            max: MAX_OPEN_INVITES
        }
    );
}

#[test]
fn a_link_carries_the_relay_and_other_organizers_and_old_links_still_parse() {
    let (mut log, _, founder) = founded();
    let (_, mut token) = log
        .create_invite(&founder.key, [5; ACCESS_KEY_LEN], NOW + HOUR, 1)
        .expect("invites");
    // Nothing more to carry: the first form, as older phones read it.
    let old = token.to_link();
    assert_eq!(old.len(), 152);
    let parsed = InviteToken::parse(&old).expect("old form");
    assert_eq!((parsed.relay, parsed.other_organizers.len()), (None, 0));

    let relay = crate::transport::RelayAddress {
        addr: "192.0.2.7:7443".parse().expect("addr"),
        fingerprint: [0xab; 32],
    };
    let others: Vec<_> = (1..=MAX_OTHER_ORGANIZERS as u8)
        .map(|i| (person().id, [i; ACCESS_KEY_LEN]))
        .collect();
    token.relay = Some(relay.clone());
    token.other_organizers = others.clone();
    let link = token.to_link();
    // Short enough for a QR code: the longest with an IPv4 relay.
    assert_eq!(link.len(), 389, "{link}");
    let parsed = InviteToken::parse(&link.to_uppercase()).expect("new form");
    assert_eq!(parsed.relay, Some(relay.clone()));
    assert_eq!(parsed.other_organizers, others);
    assert_eq!(parsed.organizers().len(), 1 + MAX_OTHER_ORGANIZERS);
    assert_eq!(parsed.organizers()[0], (founder.id, [5; ACCESS_KEY_LEN]));
    assert_eq!(parsed.secret_hash(), token.secret_hash());

    // A relay alone, at an IPv6 address.
    token.relay = Some(crate::transport::RelayAddress {
        addr: "[2001:db8::7]:443".parse().expect("addr"),
        fingerprint: [1; 32],
    });
    token.other_organizers.clear();
    let parsed = InviteToken::parse(&token.to_link()).expect("v6");
    assert_eq!(parsed.relay, token.relay);
}

#[test]
fn a_malformed_second_form_is_a_typed_error() {
    let (mut log, _, founder) = founded();
    let (_, mut token) = log
        .create_invite(&founder.key, [5; ACCESS_KEY_LEN], NOW + HOUR, 1)
        .expect("invites");
    token.other_organizers = vec![(person().id, [1; ACCESS_KEY_LEN])];
    let good = crate::base32::decode(&token.to_link()[INVITE_LINK_PREFIX.len()..]).expect("b32");
    // No relay (a 0 byte), a count of one, one organizer.
    let (relay_at, count_at) = (good.len() - 38, good.len() - 37);
    let mut cases: Vec<Vec<u8>> = Vec::new();
    for cut in 1..good.len() {
        cases.push(good[..cut].to_vec());
    }
    let mut longer = good.clone();
    longer.push(0);
    cases.push(longer);
    assert_eq!((good[relay_at], good[count_at]), (0, 1));
    let mut family = good.clone();
    family[relay_at] = 9;
    cases.push(family);
    let mut count = good.clone();
    count[count_at] = u8::try_from(MAX_OTHER_ORGANIZERS + 1).expect("small");
    cases.push(count);
    let mut fewer = good.clone();
    fewer[count_at] = 0;
    cases.push(fewer);
    for bytes in cases {
        let text = format!("{INVITE_LINK_PREFIX}{}", crate::base32::encode(&bytes));
        assert!(
            matches!(
                InviteToken::parse(&text),
                Err(InviteTokenError::WrongLength { .. })
            ),
            "{} bytes",
            bytes.len()
        );
    }
}
