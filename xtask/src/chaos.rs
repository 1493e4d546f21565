//! `cargo xtask chaos [--seeds N] [--from S] [--seed N] [--parallel P] [--release]`:
//! runs the deterministic chaos suite (`tests/tests/chaos.rs`) over a range of
//! seeds — N seeds from S (default 200 from 0) — or replays one seed. The
//! test reads the seeds from `RANKFILE_CHAOS_SEEDS`; every failing seed
//! prints `chaos seed N failed: …`, its steps, where its stores and logs were
//! kept, and the `--seed N` command that replays it the same way.

use std::path::Path;
use std::process::{Command, ExitCode};

struct Options {
    from: u64,
    seeds: u64,
    parallel: Option<u64>,
    release: bool,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        from: 0,
        seeds: 200,
        parallel: None,
        release: false,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut number = |what: &str| -> Result<u64, String> {
            it.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{what} needs a number"))
        };
        match a.as_str() {
            "--seeds" => o.seeds = number("--seeds")?,
            "--from" => o.from = number("--from")?,
            "--seed" => {
                o.from = number("--seed")?;
                o.seeds = 1;
            }
            "--parallel" => o.parallel = Some(number("--parallel")?.max(1)),
            "--release" => o.release = true,
            other => return Err(format!("unknown chaos option `{other}`")),
        }
    }
    Ok(o)
}

/// Runs the chaos test over the chosen seeds, passing its exit code on.
pub fn run(protoc: &Path, args: &[String]) -> ExitCode {
    let o = match parse(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("xtask chaos: {e}");
            return ExitCode::from(2);
        }
    };
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut command = Command::new(cargo);
    command.args(["test", "-p", "rankfile-tests", "--test", "chaos"]);
    if o.release {
        command.arg("--release");
    }
    command
        .args(["--", "--nocapture"])
        .env("PROTOC", protoc)
        .env(
            "RANKFILE_CHAOS_SEEDS",
            format!("{}..{}", o.from, o.from.saturating_add(o.seeds)),
        );
    if let Some(p) = o.parallel {
        command.env("RANKFILE_CHAOS_PARALLEL", p.to_string());
    }
    match command.status() {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("xtask chaos: could not run cargo: {e}");
            ExitCode::FAILURE
        }
    }
}
