//! Tests of the log's rules: who may change what, replays, out-of-order
//! delivery, forgeries, other committees; and the helpers the other test
//! modules share.

use libsignal_protocol::IdentityKeyPair;

use super::entry::{Entry, Op, SignedEntry};
use super::*;
use crate::account_id::AccountId;
use crate::error::Error;

/// Someone with an identity key.
pub(super) struct Person {
    pub key: IdentityKeyPair,
    pub id: AccountId,
}

pub(super) fn person() -> Person {
    let key = IdentityKeyPair::generate(&mut rand::rng());
    let id = AccountId::from_identity_key(key.identity_key());
    Person { key, id }
}

pub(super) fn meta(name: &str) -> CommitteeMeta {
    CommitteeMeta {
        name: name.into(),
        workplace: "Depot 4".into(),
        industry: "logistics".into(),
        region: "north".into(),
    }
}

pub(super) fn add(p: &Person, role: Role) -> Op {
    Op::Add {
        account: p.id,
        identity_key: *p.key.identity_key(),
        role,
        invite: None,
    }
}

/// A committee founded by a new person.
pub(super) fn founded() -> (CommitteeLog, SignedEntry, Person) {
    let founder = person();
    let (log, genesis) =
        CommitteeLog::genesis(&founder.key, meta("Depot 4 committee")).expect("founds a committee");
    (log, genesis, founder)
}

/// Signs an entry with no checks at all: what a hostile client could send.
pub(super) fn forge(log: &CommitteeLog, author: &Person, op: Op) -> SignedEntry {
    let entry = Entry {
        committee_id: log.id(),
        parents: log.heads(),
        author: author.id,
        created_at_ms: 1,
        op,
    };
    SignedEntry::sign(&author.key, &entry).expect("signs")
}

/// A fresh client holding the genesis and then `entries`, in that order.
pub(super) fn client(genesis: &SignedEntry, entries: &[SignedEntry]) -> CommitteeLog {
    let mut log = CommitteeLog::from_genesis(genesis).expect("genesis");
    for e in entries {
        log.insert(&e.encode()).expect("inserts");
    }
    log
}

fn refused(result: crate::Result<SignedEntry>) -> RejectReason {
    match result {
        Err(Error::CommitteeChangeRefused(r)) => r,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn genesis_makes_the_founder_the_only_organizer() {
    let (log, genesis, founder) = founded();
    let s = log.state();
    assert_eq!(s.version, 1);
    assert_eq!(s.meta, meta("Depot 4 committee"));
    assert_eq!(s.role(&founder.id), Some(Role::Organizer));
    assert_eq!(s.members.len(), 1);
    assert_eq!(log.heads(), vec![genesis.hash()]);
    assert_eq!(
        CommitteeLog::from_genesis(&genesis).expect("reads").state(),
        s
    );
    let empty = CommitteeLog::genesis(&founder.key, meta("  "));
    assert!(matches!(empty, Err(Error::InvalidCommitteeEntry(_))));
}

#[test]
fn a_change_signed_by_a_non_organizer_is_rejected_by_every_client() {
    let (mut log, genesis, founder) = founded();
    let (m, x) = (person(), person());
    let add_m = log
        .propose(&founder.key, add(&m, Role::Member))
        .expect("adds");
    assert_eq!(
        refused(log.propose(&m.key, add(&x, Role::Member))),
        RejectReason::NotAnOrganizer(m.id)
    );
    let forged = forge(&log, &m, add(&x, Role::Organizer));
    let before = log.state().clone();
    let outcome = log.insert(&forged.encode()).expect("stored");
    assert_eq!(
        outcome,
        InsertOutcome::Rejected {
            reason: RejectReason::NotAnOrganizer(m.id),
            released: 0
        }
    );
    assert_eq!(log.state(), &before);
    // Another client, getting the same entries in the other order, agrees.
    let other = client(&genesis, &[forged.clone(), add_m]);
    assert_eq!(other.state(), log.state());
    assert_eq!(other.rejected(), log.rejected());
    assert_eq!(other.rejected()[0].entry_hash, forged.hash());
}

#[test]
fn a_stranger_s_entry_is_never_applied() {
    let (mut log, _, _) = founded();
    let (stranger, x) = (person(), person());
    let forged = forge(&log, &stranger, add(&x, Role::Organizer));
    // Everything it builds on is here and no entry names its author: refused,
    // and nothing of it is held.
    assert!(matches!(
        log.insert(&forged.encode()),
        Err(Error::CommitteeEntryFromNonMember(h)) if h == forged.hash()
    ));
    assert_eq!(log.state().members.len(), 1);
    assert!(!log.contains(&forged.hash()));
    assert_eq!(log.pending().count(), 0);
    assert!(log.missing_parents().is_empty());
}

#[test]
fn a_member_can_leave_but_the_last_organizer_cannot() {
    let (mut log, _, founder) = founded();
    let m = person();
    assert_eq!(
        refused(log.propose(&founder.key, Op::Leave)),
        RejectReason::LastOrganizer(founder.id)
    );
    assert_eq!(
        refused(log.propose(
            &founder.key,
            Op::Remove {
                account: founder.id
            }
        )),
        RejectReason::LastOrganizer(founder.id)
    );
    let demote = Op::ChangeRole {
        account: founder.id,
        role: Role::Delegate,
    };
    assert_eq!(
        refused(log.propose(&founder.key, demote.clone())),
        RejectReason::LastOrganizer(founder.id)
    );
    log.propose(&founder.key, add(&m, Role::Member))
        .expect("adds");
    log.propose(&m.key, Op::Leave).expect("a member leaves");
    assert_eq!(log.state().role(&m.id), None);
    // A forged demotion of the last organizer is rejected in the fold too.
    let forged = forge(&log, &founder, demote.clone());
    assert!(matches!(
        log.insert_signed(forged).expect("stored"),
        InsertOutcome::Rejected {
            reason: RejectReason::LastOrganizer(_),
            ..
        }
    ));
    // With a second organizer, the founder may step down.
    log.propose(&founder.key, add(&m, Role::Organizer))
        .expect("re-adds");
    log.propose(&founder.key, demote).expect("demotes");
    assert_eq!(log.state().organizers().collect::<Vec<_>>(), vec![&m.id]);
    assert_eq!(
        refused(log.propose(&founder.key, Op::Remove { account: m.id })),
        RejectReason::NotAnOrganizer(founder.id)
    );
}

#[test]
fn replays_and_duplicates_are_no_ops() {
    let (mut log, genesis, founder) = founded();
    let b = person();
    let add_b = log
        .propose(&founder.key, add(&b, Role::Delegate))
        .expect("adds");
    let remove_b = log
        .propose(&founder.key, Op::Remove { account: b.id })
        .expect("removes");
    let state = log.state().clone();
    assert_eq!(
        log.insert(&add_b.encode()).expect("ok"),
        InsertOutcome::Duplicate
    );
    assert_eq!(
        log.insert(&genesis.encode()).expect("ok"),
        InsertOutcome::Duplicate
    );
    // The same entry signed again is the same entry.
    let resigned = SignedEntry::sign(&founder.key, &add_b.parse().expect("parses")).expect("signs");
    assert_ne!(resigned.signature, add_b.signature);
    assert_eq!(
        log.insert_signed(resigned).expect("ok"),
        InsertOutcome::Duplicate
    );
    assert_eq!(log.state(), &state);
    assert_eq!(log.state().role(&b.id), None);
    assert_eq!(log.state().version, 3);
    let other = client(
        &genesis,
        &[remove_b.clone(), add_b.clone(), remove_b, add_b],
    );
    assert_eq!(other.state(), &state);
}

#[test]
fn an_entry_with_unknown_parents_waits_for_them() {
    let (mut log, genesis, founder) = founded();
    let (b, c) = (person(), person());
    let e1 = log
        .propose(&founder.key, add(&b, Role::Organizer))
        .expect("adds b");
    let e2 = log
        .propose(&b.key, add(&c, Role::Member))
        .expect("b adds c");
    let mut late = CommitteeLog::from_genesis(&genesis).expect("genesis");
    // e2's author is b, whose key arrives only with e1.
    assert_eq!(
        late.insert(&e2.encode()).expect("held"),
        InsertOutcome::Pending { missing: 1 }
    );
    assert_eq!(late.state().version, 1);
    assert!(late.rejected().is_empty());
    assert_eq!(
        late.missing_parents().into_iter().collect::<Vec<_>>(),
        vec![e1.hash()]
    );
    assert_eq!(
        late.insert(&e2.encode()).expect("ok"),
        InsertOutcome::Duplicate
    );
    assert_eq!(
        late.insert(&e1.encode()).expect("applies"),
        InsertOutcome::Applied { released: 1 }
    );
    assert_eq!(late.pending().count(), 0);
    assert_eq!(late.state(), log.state());
    assert_eq!(late.heads(), vec![e2.hash()]);
}

#[test]
fn forged_signatures_and_other_committees_are_refused_and_not_stored() {
    let (mut log, genesis, founder) = founded();
    let (b, mallory) = (person(), person());
    let mut bad = forge(&log, &founder, add(&b, Role::Organizer));
    bad.signature[5] ^= 1;
    assert!(matches!(
        log.insert(&bad.encode()),
        Err(Error::CommitteeSignatureInvalid(_))
    ));
    // Claiming to be the founder with another key.
    let entry = Entry {
        author: founder.id,
        ..forge(&log, &founder, add(&mallory, Role::Organizer))
            .parse()
            .expect("parses")
    };
    let impostor = SignedEntry::sign(&mallory.key, &entry).expect("signs");
    assert!(matches!(
        log.insert_signed(impostor.clone()),
        Err(Error::CommitteeSignatureInvalid(_))
    ));
    assert!(!log.contains(&impostor.hash()));
    let (other, _, other_founder) = founded();
    let foreign = forge(&other, &other_founder, add(&b, Role::Member));
    assert!(matches!(
        log.insert(&foreign.encode()),
        Err(Error::WrongCommittee { .. })
    ));
    let (_, other_genesis, _) = founded();
    assert!(log.insert(&other_genesis.encode()).is_err());
    assert!(matches!(
        log.insert(b"not an entry at all"),
        Err(Error::InvalidCommitteeEntry(_))
    ));
    assert_eq!(log.state().version, 1);
    assert_eq!(log.entries().count(), 1);
    assert_eq!(log.heads(), vec![genesis.hash()]);
}

#[test]
fn an_add_whose_key_is_not_the_account_s_is_refused() {
    let (mut log, _, founder) = founded();
    let (b, c) = (person(), person());
    let swapped = Op::Add {
        account: b.id,
        identity_key: *c.key.identity_key(),
        role: Role::Member,
        invite: None,
    };
    let forged = forge(&log, &founder, swapped.clone());
    assert!(matches!(
        log.insert_signed(forged),
        Err(Error::IdentityMismatch(id)) if id == b.id
    ));
    assert!(log.propose(&founder.key, swapped).is_err());
    assert_eq!(log.entries().count(), 1);
}

#[test]
fn renames_settings_and_role_changes() {
    let (mut log, genesis, founder) = founded();
    let b = person();
    log.propose(&founder.key, Op::Rename(meta("Gate 3 rank and file")))
        .expect("renames");
    assert_eq!(log.state().meta.name, "Gate 3 rank and file");
    assert_eq!(
        refused(log.propose(&founder.key, Op::Rename(meta("Gate 3 rank and file")))),
        RejectReason::NoChange
    );
    let settings = CommitteeSettings {
        disappearing_timer_secs: 7 * 24 * 3600,
        announcement_posters: AnnouncementPosters::OrganizersAndDelegates,
    };
    log.propose(&founder.key, Op::Settings(settings))
        .expect("sets");
    assert_eq!(log.state().settings, settings);
    let too_long = CommitteeSettings {
        disappearing_timer_secs: MAX_DISAPPEARING_SECS + 1,
        ..settings
    };
    assert!(matches!(
        log.propose(&founder.key, Op::Settings(too_long)),
        Err(Error::InvalidCommitteeEntry(_))
    ));
    assert!(log
        .propose(
            &founder.key,
            Op::Rename(meta(&"x".repeat(MAX_META_LEN + 1)))
        )
        .is_err());
    log.propose(&founder.key, add(&b, Role::Member))
        .expect("adds");
    assert_eq!(
        refused(log.propose(&founder.key, add(&b, Role::Member))),
        RejectReason::AlreadyAMember(b.id)
    );
    let promote = Op::ChangeRole {
        account: b.id,
        role: Role::Delegate,
    };
    log.propose(&founder.key, promote.clone())
        .expect("promotes");
    assert_eq!(
        refused(log.propose(&founder.key, promote)),
        RejectReason::NoChange
    );
    assert_eq!(log.state().role(&b.id), Some(Role::Delegate));
    log.propose(&founder.key, Op::Remove { account: b.id })
        .expect("removes");
    assert_eq!(
        refused(log.propose(&founder.key, Op::Remove { account: b.id })),
        RejectReason::NoSuchMember(b.id)
    );
    assert_eq!(log.state().version, 6);
    // A reloaded log (entries in any order) is the same log.
    let mut entries: Vec<SignedEntry> = log.entries().cloned().collect();
    entries.reverse();
    let reloaded = CommitteeLog::from_entries(entries).expect("reloads");
    assert_eq!(reloaded.state(), log.state());
    assert_eq!(reloaded.genesis_hash(), genesis.hash());
    assert!(CommitteeLog::from_entries(Vec::new()).is_err());
}
