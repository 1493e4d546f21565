//! The deterministic chaos suite (`rankfile_tests::chaos`): seeds 0..50, or
//! those `RANKFILE_CHAOS_SEEDS` names (`N`, `A..B`, `A,B,C`; `cargo xtask
//! chaos` sets it), each a seeded random run of a relay and phones in their
//! own processes with crashes along the way, checked on the state it settles
//! into. A failing seed prints itself and its replay command.

use rankfile_tests::chaos::{run_seeds, seeds_from_env, Binaries};

/// The seeds CI runs.
const CI_SEEDS: std::ops::Range<u64> = 0..50;
/// Seeds run at once: each is a relay and up to six phone processes.
const PARALLEL: usize = 2;

fn binaries() -> Binaries {
    Binaries {
        relay: env!("CARGO_BIN_EXE_rankfile-chaos-relay").into(),
        phone: env!("CARGO_BIN_EXE_rankfile-chaos-phone").into(),
    }
}

#[test]
fn chaos_seeds_settle_with_every_invariant_holding() {
    let seeds = seeds_from_env(CI_SEEDS);
    let parallel = std::env::var("RANKFILE_CHAOS_PARALLEL")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(PARALLEL);
    let failures = run_seeds(&seeds, &binaries(), parallel);
    assert!(
        failures.is_empty(),
        "{} of {} chaos seeds failed:\n\n{}",
        failures.len(),
        seeds.len(),
        failures.join("\n\n")
    );
}

/// Seed 6: phone 1, organizer and delegate of the linked committee and also
/// a member of the first, got phone 0's network alert first as a member of
/// the first committee; its cascade started from there and, not being that
/// committee's delegate, never went down into its own committee, and phone
/// 2 (in the linked committee only) never got the alert.
#[test]
fn seed_6_an_alert_reaching_a_delegate_first_as_a_member_still_cascades() {
    if let Err(e) = rankfile_tests::chaos::run_seed(6, &binaries()) {
        panic!("{e}");
    }
}
