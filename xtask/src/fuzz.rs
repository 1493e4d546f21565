//! `cargo xtask fuzz [--secs N] [--jobs N] [--asan] [target]`: builds the fuzz
//! targets in `fuzz/` with cargo-fuzz on the nightly toolchain and runs each
//! (or one) for N seconds.
//!
//! Each target starts from its committed corpus (`fuzz/corpus/<target>`,
//! read only) and writes what it finds to a working corpus outside the clone
//! (`$CARGO_TARGET_DIR/fuzz-corpus/<target>`), so long runs build on each
//! other without touching the committed seeds. A crash stops the run with a
//! failure; libFuzzer leaves the input in `fuzz/artifacts/<target>/`, to be
//! committed with its fix. Builds are without AddressSanitizer unless `--asan`:
//! our code forbids `unsafe`, and the build takes half the time; `--asan`
//! also watches the C inside (SQLCipher) and libsignal's few `unsafe` blocks.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// Every fuzz target, in the order they run (see `fuzz/README.md`).
pub const TARGETS: &[&str] = &[
    "client_frame",
    "server_frame",
    "envelope",
    "content",
    "prekey_bundle",
    "invite",
    "membership_entry",
    "alert",
    "attachment_pointer",
    "receive",
];

/// Longest time one input may take, in seconds, before libFuzzer calls it a hang.
const INPUT_TIMEOUT_SECS: u32 = 25;

struct Options {
    secs: u32,
    jobs: u32,
    asan: bool,
    targets: Vec<String>,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        secs: 60,
        jobs: 1,
        asan: false,
        targets: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut number = |what: &str| -> Result<u32, String> {
            it.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{what} needs a number"))
        };
        match a.as_str() {
            "--secs" => o.secs = number("--secs")?,
            "--jobs" => o.jobs = number("--jobs")?.max(1),
            "--asan" => o.asan = true,
            t if TARGETS.contains(&t) => o.targets.push(t.to_string()),
            other => return Err(format!("unknown fuzz target or option `{other}`")),
        }
    }
    if o.targets.is_empty() {
        o.targets = TARGETS.iter().map(|t| t.to_string()).collect();
    }
    Ok(o)
}

/// Builds and runs the fuzz targets; `protoc` is the vendored protoc.
pub fn run(protoc: &Path, args: &[String]) -> ExitCode {
    let o = match parse(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("xtask fuzz: {e}\nusage: cargo xtask fuzz [--secs N] [--jobs N] [--asan] [target]\ntargets: {}", TARGETS.join(" "));
            return ExitCode::from(2);
        }
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let sanitizer = if o.asan { "address" } else { "none" };
    let build = ["fuzz", "build", "-O", "--sanitizer", sanitizer];
    if !cargo_fuzz(protoc, &root, &target_dir, &build) {
        eprintln!("xtask fuzz: the build failed");
        return ExitCode::FAILURE;
    }
    for t in &o.targets {
        let work = target_dir.join("fuzz-corpus").join(t);
        if let Err(e) = std::fs::create_dir_all(&work) {
            eprintln!("xtask fuzz: cannot make {}: {e}", work.display());
            return ExitCode::FAILURE;
        }
        let seeds = root.join("fuzz").join("corpus").join(t);
        println!("== fuzz {t}: {} s", o.secs);
        let (secs, jobs, timeout) = (
            format!("-max_total_time={}", o.secs),
            format!("-jobs={}", o.jobs),
            format!("-timeout={INPUT_TIMEOUT_SECS}"),
        );
        let (work, seeds) = (work.display().to_string(), seeds.display().to_string());
        let mut run = vec![
            "fuzz",
            "run",
            "-O",
            "--sanitizer",
            sanitizer,
            t,
            &work,
            &seeds,
            "--",
            &secs,
            &timeout,
        ];
        if o.jobs > 1 {
            // Jobs run in parallel processes, each for the whole time.
            run.push(&jobs);
            run.push("-workers=0");
        }
        if !cargo_fuzz(protoc, &root, &target_dir, &run) {
            eprintln!(
                "xtask fuzz: {t} failed; the input is in fuzz/artifacts/{t}/ (replay: cargo +nightly fuzz run {t} <file>)"
            );
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

/// Runs `cargo <args>` on the nightly toolchain in the repository's root.
fn cargo_fuzz(protoc: &Path, root: &Path, target_dir: &Path, args: &[&str]) -> bool {
    let status = Command::new("cargo")
        .args(args)
        .current_dir(root)
        // The nightly toolchain beside stable: cargo-fuzz needs its flags.
        .env("RUSTUP_TOOLCHAIN", "nightly")
        .env("CARGO_TARGET_DIR", target_dir)
        .env("PROTOC", protoc)
        // What the outer cargo set for this xtask must not leak into the
        // nightly build.
        .env_remove("CARGO")
        .env_remove("RUSTC")
        .env_remove("RUSTDOC")
        .status();
    match status {
        Ok(s) => s.success(),
        Err(e) => {
            eprintln!("xtask fuzz: could not run cargo: {e}");
            false
        }
    }
}
