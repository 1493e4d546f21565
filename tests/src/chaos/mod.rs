//! The deterministic chaos suite: seeded random runs over a real relay process
//! and real phone processes (each its own SQLCipher store) on loopback, with
//! faults — the relay and phones killed with SIGKILL and started again — and
//! invariants checked on the end state once everything has settled.
//!
//! What a seed fixes is the plan (`plan`): the phones, the operations, their
//! order and the faults between them. What it cannot fix is timing on a
//! loaded machine (how far a delivery got when a kill lands), so the
//! invariants (`check`) are about the state everything settles into — every
//! phone up, every outbox drained — waited for with a bound, never about
//! when. A failed seed says `chaos seed N failed: …` and how to replay it.
//!
//! Between the phones and the relay sits a TCP proxy (`proxy`) that, in most
//! seeds, delays bytes and cuts connections during the steps; its doc says
//! what it does and does not cover.
//!
//! Covered: relay crashes (messages it stored must survive, those it had not
//! must stay in the senders' outboxes), phone crashes between operations and
//! anywhere in the background (mid-receive, mid-send) and at the core's
//! failpoints (`plan::FAILPOINTS`), connections cut and slowed, redelivery of what a
//! phone stored but had not acknowledged, several senders at once; joins from
//! invite links, removals and role changes under those faults (`membership`,
//! `posts`); alerts over a link between two committees (`alerts`); time
//! jumps, skewed clocks and full mailboxes (`time`). Not covered: a disk that
//! loses a flushed write, a relay's data lost.

mod alerts;
mod check;
mod membership;
pub mod phone_alerts;
mod plan;
mod posts;
mod process;
mod proxy;
mod time;
mod world;

pub use plan::{plan, Op, Plan};
pub use process::{Failed, Process};
pub use proxy::Proxy;

use std::path::PathBuf;

/// The binaries a run starts (Cargo gives an integration test their paths).
#[derive(Clone, Debug)]
pub struct Binaries {
    pub relay: PathBuf,
    pub phone: PathBuf,
}

/// Runs seed `seed`: plans it, plays it, lets it settle and checks the
/// invariants; its summary (the faults that landed). On failure the message starts `chaos seed N failed:` and ends
/// with the replay command; the run's directory (stores, logs) is kept and
/// named in it.
pub fn run_seed(seed: u64, bins: &Binaries) -> Result<String, String> {
    let plan = plan::plan(seed);
    let dir = tempfile::Builder::new()
        .prefix(&format!("rankfile-chaos-{seed}-"))
        .tempdir()
        .map_err(|e| format!("chaos seed {seed} failed: no temp dir: {e}"))?;
    let result = world::World::play(&plan, dir.path(), bins);
    match result {
        Ok(log) => {
            if std::env::var_os("RANKFILE_CHAOS_VERBOSE").is_some() {
                // Verbose: the steps, and the stores and logs kept.
                eprintln!("chaos seed {seed}:\n{}", log.join("\n"));
                eprintln!("kept: {}", dir.keep().display());
            }
            let summary: Vec<&str> = log
                .iter()
                .filter_map(|l| l.strip_prefix(world::SUMMARY))
                .collect();
            Ok(summary.join(", "))
        }
        Err((why, log)) => {
            let kept = dir.keep();
            Err(format!(
                "chaos seed {seed} failed: {why}\n\
                 steps:\n{}\n\
                 logs and stores: {}\n\
                 replay: cargo xtask chaos --seed {seed}",
                log.join("\n"),
                kept.display()
            ))
        }
    }
}

/// Seeds to run from `RANKFILE_CHAOS_SEEDS` (`N`, `A..B` or `A,B,C`), else
/// `default`.
pub fn seeds_from_env(default: std::ops::Range<u64>) -> Vec<u64> {
    let Ok(text) = std::env::var("RANKFILE_CHAOS_SEEDS") else {
        return default.collect();
    };
    let text = text.trim();
    if let Some((a, b)) = text.split_once("..") {
        if let (Ok(a), Ok(b)) = (a.parse(), b.parse()) {
            return (a..b).collect();
        }
    }
    let list: Result<Vec<u64>, _> = text.split(',').map(|s| s.trim().parse()).collect();
    list.unwrap_or_else(|_| panic!("RANKFILE_CHAOS_SEEDS: `{text}` is not N, A..B or A,B,C"))
}

/// Runs `seeds` on `parallel` threads; the failures' messages, in seed order.
pub fn run_seeds(seeds: &[u64], bins: &Binaries, parallel: usize) -> Vec<String> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..parallel.max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(&seed) = seeds.get(i) else { break };
                let started = std::time::Instant::now();
                let result = run_seed(seed, bins);
                eprintln!(
                    "chaos seed {seed}: {} in {:.1} s{}",
                    if result.is_ok() { "ok" } else { "FAILED" },
                    started.elapsed().as_secs_f64(),
                    result
                        .as_ref()
                        .map(|s| format!(" ({s})"))
                        .unwrap_or_default()
                );
                if let Err(e) = result {
                    eprintln!("{e}");
                    if let Ok(mut f) = failures.lock() {
                        f.push((seed, e));
                    }
                }
            });
        }
    });
    let mut failures = failures.into_inner().unwrap_or_default();
    failures.sort();
    failures.into_iter().map(|(_, e)| e).collect()
}
