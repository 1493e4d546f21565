//! Convergence: organizers changing the membership at the same moment, on
//! forked views, and every client ending in the same state whatever order the
//! entries reach it in — worked cases and a proptest.

use proptest::prelude::*;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::entry::{Op, SignedEntry};
use super::tests::{add, client, founded, meta, person, Person};
use super::*;

/// Every order of `entries`, each delivered to a fresh client after `base`.
fn all_orders(
    genesis: &SignedEntry,
    base: &[SignedEntry],
    entries: &[SignedEntry],
) -> Vec<CommitteeLog> {
    let mut out = Vec::new();
    permute(entries.to_vec(), 0, &mut |order| {
        let mut all = base.to_vec();
        all.extend_from_slice(order);
        out.push(client(genesis, &all));
    });
    out
}

fn permute(mut v: Vec<SignedEntry>, k: usize, f: &mut impl FnMut(&[SignedEntry])) {
    if k == v.len() {
        f(&v);
        return;
    }
    for i in k..v.len() {
        v.swap(k, i);
        permute(v.clone(), k + 1, f);
        v.swap(k, i);
    }
}

fn assert_all_agree(logs: &[CommitteeLog]) {
    let first = &logs[0];
    for log in logs {
        assert_eq!(log.state(), first.state());
        assert_eq!(log.rejected(), first.rejected());
        assert_eq!(log.heads(), first.heads());
        assert_eq!(log.pending().count(), 0);
        assert!(log.state().organizers().count() >= 1);
    }
}

/// A committee of founder A, organizer B, member C; returns the genesis,
/// the entries after it, and a log holding them.
fn two_organizers() -> (SignedEntry, Vec<SignedEntry>, CommitteeLog, [Person; 3]) {
    let (mut log, genesis, a) = founded();
    let (b, c) = (person(), person());
    let base = vec![
        log.propose(&a.key, add(&b, Role::Organizer))
            .expect("adds b"),
        log.propose(&a.key, add(&c, Role::Member)).expect("adds c"),
    ];
    (genesis, base, log, [a, b, c])
}

#[test]
fn organizers_removing_each_other_leaves_exactly_one() {
    let (genesis, base, log, [a, b, _]) = two_organizers();
    let (mut view_a, mut view_b) = (log.clone(), log);
    let ea = view_a
        .propose(&a.key, Op::Remove { account: b.id })
        .expect("a removes b");
    let eb = view_b
        .propose(&b.key, Op::Remove { account: a.id })
        .expect("b removes a");
    view_a.insert_signed(eb.clone()).expect("stored");
    view_b.insert_signed(ea.clone()).expect("stored");
    let mut logs = all_orders(&genesis, &base, &[ea, eb]);
    logs.extend([view_a, view_b]);
    assert_all_agree(&logs);
    let s = logs[0].state();
    assert_eq!(s.organizers().count(), 1);
    assert!(s.role(&a.id).is_some() != s.role(&b.id).is_some());
    assert!(matches!(
        logs[0].rejected()[0].reason,
        RejectReason::RevokedConcurrently(_)
    ));
}

#[test]
fn both_adding_the_same_person_adds_them_once() {
    let (genesis, base, log, [a, b, _]) = two_organizers();
    let d = person();
    let (mut view_a, mut view_b) = (log.clone(), log);
    let ea = view_a
        .propose(&a.key, add(&d, Role::Member))
        .expect("a adds d");
    let eb = view_b
        .propose(&b.key, add(&d, Role::Delegate))
        .expect("b adds d");
    let logs = all_orders(&genesis, &base, &[ea, eb]);
    assert_all_agree(&logs);
    assert!(logs[0].state().role(&d.id).is_some());
    assert_eq!(logs[0].rejected().len(), 1);
    assert_eq!(
        logs[0].rejected()[0].reason,
        RejectReason::AlreadyAMember(d.id)
    );
    assert_eq!(logs[0].state().version, 4);
}

#[test]
fn a_demotion_wins_over_the_demoted_organizer_s_concurrent_add() {
    let (genesis, base, log, [a, b, _]) = two_organizers();
    let d = person();
    let (mut view_a, mut view_b) = (log.clone(), log);
    let demote = Op::ChangeRole {
        account: b.id,
        role: Role::Member,
    };
    let ea = view_a.propose(&a.key, demote).expect("a demotes b");
    let eb = view_b
        .propose(&b.key, add(&d, Role::Member))
        .expect("b adds d");
    let logs = all_orders(&genesis, &base, &[ea, eb.clone()]);
    assert_all_agree(&logs);
    let s = logs[0].state();
    assert_eq!(s.role(&b.id), Some(Role::Member));
    assert_eq!(s.role(&d.id), None);
    assert_eq!(logs[0].rejected()[0].entry_hash, eb.hash());
    assert_eq!(
        logs[0].rejected()[0].reason,
        RejectReason::RevokedConcurrently(b.id)
    );
}

#[test]
fn three_organizers_with_chains_of_concurrent_changes_converge() {
    let (mut log, genesis, a) = founded();
    let (b, c, d, e) = (person(), person(), person(), person());
    let base = vec![
        log.propose(&a.key, add(&b, Role::Organizer)).expect("adds"),
        log.propose(&a.key, add(&c, Role::Organizer)).expect("adds"),
    ];
    let (mut va, mut vb, mut vc) = (log.clone(), log.clone(), log);
    let mut concurrent = vec![
        va.propose(&a.key, add(&d, Role::Member)).expect("a adds d"),
        va.propose(&a.key, Op::Remove { account: c.id })
            .expect("a removes c"),
        vb.propose(&b.key, add(&d, Role::Organizer))
            .expect("b adds d"),
        vb.propose(&b.key, Op::Rename(meta("Night shift")))
            .expect("b renames"),
        vc.propose(
            &c.key,
            Op::ChangeRole {
                account: a.id,
                role: Role::Delegate,
            },
        )
        .expect("c demotes a"),
    ];
    // c learns of b's changes and builds on them.
    for entry in vb.entries().cloned().collect::<Vec<_>>() {
        vc.insert_signed(entry).expect("syncs");
    }
    concurrent.push(vc.propose(&c.key, add(&e, Role::Member)).expect("c adds e"));
    let logs = all_orders(&genesis, &base, &concurrent);
    assert_eq!(logs.len(), 720);
    assert_all_agree(&logs);
    // And the organizers' own views, once synced, agree with them.
    for view in [&mut va, &mut vb, &mut vc] {
        for entry in &concurrent {
            view.insert_signed(entry.clone()).expect("syncs");
        }
        assert_eq!(view.state(), logs[0].state());
        assert_eq!(view.rejected(), logs[0].rejected());
    }
}

fn op_for(kind: u8, target: &Person, role: u8, n: usize) -> Op {
    let role = [Role::Member, Role::Delegate, Role::Organizer][usize::from(role % 3)];
    match kind {
        0 | 1 => add(target, role),
        2 => Op::Remove { account: target.id },
        3 => Op::ChangeRole {
            account: target.id,
            role,
        },
        4 => Op::Rename(meta(&format!("committee {n}"))),
        5 => Op::Settings(CommitteeSettings {
            disappearing_timer_secs: u32::try_from(n).unwrap_or(0) * 60,
            announcement_posters: AnnouncementPosters::OrganizersAndDelegates,
        }),
        _ => Op::Leave,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    #[test]
    fn random_concurrent_changes_converge_on_every_client(
        // (actor: 0-2 an organizer's view, 3 a sync; op kind; target; role or view)
        steps in proptest::collection::vec((0usize..4, 0u8..8, 0usize..6, 0u8..3), 1..40),
        seed in any::<u64>(),
    ) {
        let (mut log, genesis, founder) = founded();
        let mut people = vec![founder];
        people.extend((0..5).map(|_| person()));
        let mut all: Vec<SignedEntry> = vec![
            log.propose(&people[0].key, add(&people[1], Role::Organizer)).expect("adds"),
            log.propose(&people[0].key, add(&people[2], Role::Organizer)).expect("adds"),
            log.propose(&people[0].key, add(&people[3], Role::Delegate)).expect("adds"),
        ];
        // One view per organizer, forked from the same log.
        let mut views = vec![log.clone(), log.clone(), log];
        for (n, (actor, kind, target, role)) in steps.iter().copied().enumerate() {
            if actor == 3 {
                // Sync: view `target % 3` gets everything view `role` holds.
                let from: Vec<SignedEntry> = views[usize::from(role)].entries().cloned().collect();
                for e in from {
                    views[target % 3].insert_signed(e).expect("syncs");
                }
                continue;
            }
            let op = op_for(kind, &people[target], role, n);
            if let Ok(entry) = views[actor].propose(&people[actor].key, op) {
                all.push(entry);
            }
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut clients = Vec::new();
        for _ in 0..4 {
            all.shuffle(&mut rng);
            clients.push(client(&genesis, &all));
        }
        for view in &mut views {
            for e in &all {
                view.insert_signed(e.clone()).expect("syncs");
            }
        }
        clients.extend(views);
        for c in &clients {
            prop_assert_eq!(c.state(), clients[0].state());
            prop_assert_eq!(c.rejected(), clients[0].rejected());
            prop_assert_eq!(c.pending().count(), 0);
            prop_assert!(c.state().organizers().count() >= 1);
            prop_assert_eq!(c.state().version as usize + c.rejected().len(), all.len() + 1);
        }
    }
}
