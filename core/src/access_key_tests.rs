//! Tests of the access-key rules for keys given out before anyone is a
//! co-member: an invite link carries its maker's key, so the invite counts
//! among the key's holders until it is revoked, and revoking it replaces the
//! key (once).

use crate::committee::{CommitteeId, CommitteeMeta};
use crate::store::DatabaseKey;
use crate::Account;

fn organizer(dir: &std::path::Path) -> (Account, CommitteeId) {
    let mut a =
        Account::create(&dir.join("organizer.db"), &DatabaseKey::generate()).expect("account");
    let committee = a
        .create_committee(CommitteeMeta {
            name: "Yard".into(),
            ..CommitteeMeta::default()
        })
        .expect("found");
    (a, committee)
}

fn in_an_hour(a: &Account) -> u64 {
    u64::try_from(a.clock.now_ms()).expect("clock") + 3_600_000
}

#[test]
fn revoking_an_invite_replaces_the_key_it_carried() {
    let dir = tempfile::tempdir().expect("dir");
    let (mut a, committee) = organizer(dir.path());
    let (token, _) = a
        .create_invite(&committee, in_an_hour(&a), 5)
        .expect("invite");
    assert_eq!(token.organizer_access_key, a.settings.access_key);
    // Making it gives the key to whoever holds the link: nothing to replace.
    assert!(!a.check_access_key().expect("check"));
    let before = a.settings.access_key;
    a.revoke_invite(&committee, token.invite_id)
        .expect("revoke");
    assert!(a.check_access_key().expect("check"), "replaced");
    assert_ne!(a.settings.access_key, before);
    assert_eq!(a.access_key_for_relay(), Some(a.settings.access_key));
    // Once: a later change to the committee finds nobody else gone.
    let (_, _) = a
        .create_invite(&committee, in_an_hour(&a), 1)
        .expect("another invite");
    assert!(!a.check_access_key().expect("check"));
}

/// An invite revoked before any check saw it is still a holder gone.
#[test]
fn an_invite_revoked_before_any_check_still_replaces_the_key() {
    let dir = tempfile::tempdir().expect("dir");
    let (mut a, committee) = organizer(dir.path());
    assert!(!a.check_access_key().expect("check"));
    let (token, _) = a
        .create_invite(&committee, in_an_hour(&a), 1)
        .expect("invite");
    a.revoke_invite(&committee, token.invite_id)
        .expect("revoke");
    let before = a.settings.access_key;
    assert!(a.check_access_key().expect("check"));
    assert_ne!(a.settings.access_key, before);
    a.rename(
        &committee,
        CommitteeMeta {
            name: "Yard 2".into(),
            ..CommitteeMeta::default()
        },
    )
    .expect("rename");
    assert!(!a.check_access_key().expect("check"), "only once");
}
