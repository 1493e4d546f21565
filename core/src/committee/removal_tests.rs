//! Strong removal: what a removed or demoted organizer signs against heads
//! from before its removal is void on every client, whatever the entry's time
//! or hash, and whatever order the entries arrive in.

use super::entry::{Entry, Op, SignedEntry};
use super::tests::{add, client, founded, person, Person};
use super::*;
use crate::error::Error;

/// Signs `op` by `author` against `parents`, trying entry times from
/// `from_ms` on until the entry's hash is below `below`: what an attacker
/// grinding its entry to sort first in the fold does.
fn ground(
    log: &CommitteeLog,
    author: &Person,
    parents: Vec<EntryHash>,
    op: Op,
    below: EntryHash,
) -> SignedEntry {
    for created_at_ms in 1_000u64.. {
        let entry = Entry {
            committee_id: log.id(),
            parents: parents.clone(),
            author: author.id,
            created_at_ms,
            op: op.clone(),
        };
        let signed = SignedEntry::sign(&author.key, &entry).expect("signs");
        if signed.hash() < below {
            return signed;
        }
    }
    unreachable!("some time gives a lower hash")
}

/// Every order of `entries` after `genesis`, each to a fresh client.
fn every_order(genesis: &SignedEntry, entries: &[SignedEntry]) -> Vec<CommitteeLog> {
    fn go(
        rest: &mut Vec<SignedEntry>,
        done: &mut Vec<SignedEntry>,
        out: &mut Vec<Vec<SignedEntry>>,
    ) {
        if rest.is_empty() {
            out.push(done.clone());
            return;
        }
        for i in 0..rest.len() {
            let e = rest.remove(i);
            done.push(e.clone());
            go(rest, done, out);
            done.pop();
            rest.insert(i, e);
        }
    }
    let mut orders = Vec::new();
    go(&mut entries.to_vec(), &mut Vec::new(), &mut orders);
    orders
        .iter()
        .map(|order| {
            let mut log = CommitteeLog::from_genesis(genesis).expect("genesis");
            for e in order {
                // An entry whose parents are not here yet waits; none fails.
                log.insert_signed(e.clone()).expect("inserts");
            }
            log
        })
        .collect()
}

fn agree(logs: &[CommitteeLog]) -> &CommitteeLog {
    let first = &logs[0];
    for log in logs {
        assert_eq!(log.state(), first.state());
        assert_eq!(log.rejected(), first.rejected());
        assert_eq!(log.heads(), first.heads());
        assert_eq!(log.pending().count(), 0);
        assert!(log.state().organizers().count() >= 1);
    }
    first
}

/// The founder F makes A an organizer and adds member M; A removes F. F then
/// signs, against the genesis, an Add making its accomplice X an organizer,
/// with its time ground so that the entry sorts before A's own Add: under a
/// fold that only checks each entry against the state before it, F was
/// still the only organizer there and X would stay an organizer for good.
#[test]
fn an_ex_organizer_signing_against_the_genesis_after_its_removal_is_void_everywhere() {
    let (mut log, genesis, f) = founded();
    let (a, m, x) = (person(), person(), person());
    let add_a = log
        .propose(&f.key, add(&a, Role::Organizer))
        .expect("adds a");
    let add_m = log.propose(&f.key, add(&m, Role::Member)).expect("adds m");
    let remove_f = log
        .propose(&a.key, Op::Remove { account: f.id })
        .expect("a removes f");
    assert_eq!(log.state().role(&f.id), None);
    let comeback = ground(
        &log,
        &f,
        vec![genesis.hash()],
        add(&x, Role::Organizer),
        add_a.hash(),
    );
    // The accomplice, once "added", removes A: built on the comeback.
    let takeover = {
        let entry = Entry {
            committee_id: log.id(),
            parents: vec![comeback.hash()],
            author: x.id,
            created_at_ms: 2_000,
            op: Op::Remove { account: a.id },
        };
        SignedEntry::sign(&x.key, &entry).expect("signs")
    };
    let logs = every_order(
        &genesis,
        &[add_a, add_m, remove_f, comeback.clone(), takeover.clone()],
    );
    assert_eq!(logs.len(), 120);
    let s = agree(&logs).state();
    assert_eq!(s.role(&x.id), None, "the accomplice never became a member");
    assert_eq!(s.role(&f.id), None);
    assert_eq!(s.role(&a.id), Some(Role::Organizer));
    assert_eq!(s.role(&m.id), Some(Role::Member));
    let rejected = logs[0].rejected();
    assert!(rejected
        .iter()
        .any(|r| r.entry_hash == comeback.hash()
            && r.reason == RejectReason::RevokedConcurrently(f.id)));
    assert!(rejected
        .iter()
        .any(|r| r.entry_hash == takeover.hash() && r.reason == RejectReason::NotAMember(x.id)));
}

/// The same entry by an organizer about to be removed: applied on a client
/// that has it before the removal, void once the removal arrives — the same
/// state as on a client that got the removal first.
#[test]
fn the_same_entry_before_and_after_the_removal_gives_the_same_state() {
    let (mut log, genesis, f) = founded();
    let (b, c) = (person(), person());
    let add_b = log
        .propose(&f.key, add(&b, Role::Organizer))
        .expect("adds b");
    let (mut view_f, mut view_b) = (log.clone(), log);
    let remove_b = view_f
        .propose(&f.key, Op::Remove { account: b.id })
        .expect("f removes b");
    let add_c = view_b
        .propose(&b.key, add(&c, Role::Organizer))
        .expect("b adds c, not knowing");
    // Before: b's own view has applied it.
    assert_eq!(view_b.state().role(&c.id), Some(Role::Organizer));
    let before = client(&genesis, &[add_b.clone(), add_c.clone(), remove_b.clone()]);
    let after = client(&genesis, &[add_b.clone(), remove_b.clone(), add_c.clone()]);
    view_b.insert_signed(remove_b).expect("b learns of it");
    view_f.insert_signed(add_c.clone()).expect("f learns of it");
    for log in [&before, &after, &view_b, &view_f] {
        assert_eq!(log.state(), after.state());
        assert_eq!(log.rejected(), after.rejected());
        assert_eq!(log.state().role(&c.id), None);
        assert_eq!(log.state().role(&b.id), None);
        assert_eq!(
            log.rejected()[0].reason,
            RejectReason::RevokedConcurrently(b.id)
        );
    }
}

/// A demoted organizer's concurrent changes are void too, but it may still
/// leave: leaving needs only membership, which a demotion leaves.
#[test]
fn a_demotion_voids_concurrent_changes_but_not_a_concurrent_leave() {
    let (mut log, genesis, f) = founded();
    let (b, c) = (person(), person());
    let add_b = log
        .propose(&f.key, add(&b, Role::Organizer))
        .expect("adds b");
    let add_c = log.propose(&f.key, add(&c, Role::Member)).expect("adds c");
    let (mut view_f, mut view_b) = (log.clone(), log);
    let demote = view_f
        .propose(
            &f.key,
            Op::ChangeRole {
                account: b.id,
                role: Role::Member,
            },
        )
        .expect("f demotes b");
    let by_b = view_b
        .propose(&b.key, Op::Remove { account: c.id })
        .expect("b removes c");
    let leave = view_b.propose(&b.key, Op::Leave).expect("b leaves");
    let logs = every_order(&genesis, &[add_b, add_c, demote, by_b.clone(), leave]);
    let first = agree(&logs);
    let s = first.state();
    assert_eq!(s.role(&c.id), Some(Role::Member));
    assert_eq!(s.role(&b.id), None, "b's leave stands");
    assert_eq!(first.rejected().len(), 1);
    assert_eq!(first.rejected()[0].entry_hash, by_b.hash());
}

/// Two organizers removing each other at once: on every client the one who
/// has been an organizer longer stays — here the founder, though the other
/// ground its removal's hash to sort first — and the committee keeps an
/// organizer.
#[test]
fn mutual_concurrent_removals_converge_on_the_senior_organizer() {
    let (mut log, genesis, a) = founded();
    let (b, c) = (person(), person());
    let add_b = log
        .propose(&a.key, add(&b, Role::Organizer))
        .expect("adds b");
    let add_c = log.propose(&a.key, add(&c, Role::Member)).expect("adds c");
    let (mut view_a, view_b) = (log.clone(), log);
    let ea = view_a
        .propose(&a.key, Op::Remove { account: b.id })
        .expect("a removes b");
    let eb = ground(
        &view_b,
        &b,
        view_b.heads(),
        Op::Remove { account: a.id },
        ea.hash(),
    );
    let logs = every_order(&genesis, &[add_b, add_c, ea, eb.clone()]);
    let s = agree(&logs).state();
    assert_eq!(s.role(&a.id), Some(Role::Organizer));
    assert_eq!(s.role(&b.id), None);
    assert_eq!(s.organizers().count(), 1);
    assert!(logs[0]
        .rejected()
        .iter()
        .any(|r| r.entry_hash == eb.hash() && r.reason == RejectReason::RevokedConcurrently(b.id)));
}

/// Entries from someone the log never names, and a flood of entries waiting
/// for parents that never come from one author: refused, nothing held.
#[test]
fn a_non_member_is_refused_and_one_author_cannot_fill_the_queue() {
    let (log, _, f) = founded();
    let stranger = person();
    let mut held = log.clone();
    let own = ground(
        &log,
        &stranger,
        log.heads(),
        Op::Leave,
        EntryHash([0xff; ENTRY_HASH_LEN]),
    );
    assert!(matches!(
        held.insert_signed(own),
        Err(Error::CommitteeEntryFromNonMember(_))
    ));
    // Waiting entries claiming one author: at most MAX_PENDING_PER_AUTHOR.
    let mut refused = 0;
    for n in 0..(MAX_PENDING_PER_AUTHOR + 10) {
        let entry = Entry {
            committee_id: log.id(),
            parents: vec![EntryHash(
                [u8::try_from(n % 251).expect("byte"); ENTRY_HASH_LEN],
            )],
            author: f.id,
            created_at_ms: u64::try_from(n).expect("n"),
            op: Op::Leave,
        };
        match held.insert_signed(SignedEntry::sign(&f.key, &entry).expect("signs")) {
            Ok(InsertOutcome::Pending { .. }) => {}
            Err(Error::CommitteePendingFull { .. }) => refused += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(held.pending().count(), MAX_PENDING_PER_AUTHOR);
    assert_eq!(refused, 10);
    assert_eq!(held.state(), log.state());
}
