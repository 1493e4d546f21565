//! `cargo xtask`: the project's build glue.
//!
//! libsignal's build scripts (and ours) compile protobuf schemas and need
//! `protoc`. Rather than asking every developer and CI machine to install one,
//! xtask takes the binary that the `protoc-bin-vendored` crate ships, points
//! `PROTOC` at it and runs cargo. Every cargo invocation that builds libsignal
//! goes through here (or exports `PROTOC=$(cargo xtask protoc-path)` first), so
//! the build scripts always see the same `PROTOC` and are not rerun needlessly.

use std::process::{Command, ExitCode};

mod bench_ffi;
mod bindings;
mod chaos;
mod ffi_tests;
mod fuzz;
mod kotlin_deps;
mod mobile;
mod postgres;
mod provision;
mod relay_process;

const USAGE: &str = "\
usage: cargo xtask <command> [args…]

commands:
  demo [args…]     run `rankfile demo`: a relay and phones on loopback, the story so far
  test [args…]     run the whole test suite (cargo test --workspace, with a temporary
                   PostgreSQL cluster for the relay's tests), then (without args) the
                   binding scenarios in Python, Kotlin and Swift, installing their
                   toolchains when absent
  test-bindings    only the binding scenarios
  bindings [--release] [--out DIR]
                   build rankfile-ffi and generate its Kotlin, Swift and Python
  bench-ffi [--messages N]
                   catch up a backlog through the Rust facade and through Kotlin
  kotlin-deps      check the Kotlin project's dependencies: pinned, Maven Central only
  check-mobile     cargo check rankfile-ffi for aarch64-linux-android and aarch64-apple-ios
  bench [args…]    run the benchmarks (cargo bench …)
  lint             cargo fmt --check and cargo clippy -D warnings
  fuzz [--secs N] [--jobs N] [--asan] [target]
                   build the fuzz targets (nightly, cargo-fuzz) and run each for N s
  chaos [--seeds N] [--from S] [--seed N] [--parallel P] [--release]
                   run the chaos suite over N seeds from S (200 from 0), or replay one
  cargo [args…]    run any cargo command with PROTOC set
  protoc-path      print the path of the vendored protoc
";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(command) = args.next() else {
        eprint!("{USAGE}");
        return ExitCode::from(2);
    };
    let rest: Vec<String> = args.collect();
    let protoc = match protoc_bin_vendored::protoc_bin_path() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("xtask: no vendored protoc for this machine: {e}");
            return ExitCode::FAILURE;
        }
    };
    let cargo_args: Vec<String> = match command.as_str() {
        "protoc-path" => {
            println!("{}", protoc.display());
            return ExitCode::SUCCESS;
        }
        "demo" => return demo(&protoc, &rest),
        // With arguments (a filter, one package) only cargo's tests run.
        "test" if rest.is_empty() => {
            let tested = postgres::with_cluster(|| run(&protoc, &["test", "--workspace"]));
            if tested != ExitCode::SUCCESS {
                return tested;
            }
            return done(ffi_tests::run(&protoc));
        }
        "test" => ["test", "--workspace"]
            .iter()
            .map(|s| s.to_string())
            .chain(rest)
            .collect(),
        "test-bindings" => return done(ffi_tests::run(&protoc)),
        "bindings" => return done(bindings::run(&protoc, &rest)),
        "bench-ffi" => return done(bench_ffi::run(&protoc, &rest)),
        "kotlin-deps" => return done(kotlin_deps::run()),
        "check-mobile" => return done(mobile::run(&protoc)),
        "bench" => std::iter::once("bench".to_string()).chain(rest).collect(),
        "cargo" => rest,
        "fuzz" => return fuzz::run(&protoc, &rest),
        "chaos" => return chaos::run(&protoc, &rest),
        "lint" => {
            let fmt = run(&protoc, &["fmt", "--all", "--check"]);
            if fmt != ExitCode::SUCCESS {
                return fmt;
            }
            return run(
                &protoc,
                &[
                    "clippy",
                    "--workspace",
                    "--all-targets",
                    "--",
                    "-D",
                    "warnings",
                ],
            );
        }
        "help" | "--help" | "-h" => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        other => {
            eprintln!("xtask: unknown command `{other}`\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let refs: Vec<&str> = cargo_args.iter().map(String::as_str).collect();
    if command == "test" {
        return postgres::with_cluster(|| run(&protoc, &refs));
    }
    run(&protoc, &refs)
}

/// `cargo xtask demo`: builds the CLI with cargo's own progress on the screen
/// (a first build takes minutes), then runs `rankfile demo` directly, so
/// what follows is the demo's output alone.
fn demo(protoc: &std::path::Path, rest: &[String]) -> ExitCode {
    let built = run(
        protoc,
        &["build", "--package", "rankfile-cli", "--bin", "rankfile"],
    );
    if built != ExitCode::SUCCESS {
        return built;
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("target")
        });
    let binary = target.join("debug").join("rankfile");
    match Command::new(&binary).arg("demo").args(rest).status() {
        Ok(status) => exit_code(status),
        Err(e) => {
            eprintln!("xtask: could not run {}: {e}", binary.display());
            ExitCode::FAILURE
        }
    }
}

/// A command's result as the exit code, its error printed.
fn done(result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The exit code of a finished child, passed on.
fn exit_code(status: std::process::ExitStatus) -> ExitCode {
    match status.code().and_then(|c| u8::try_from(c).ok()) {
        Some(0) => ExitCode::SUCCESS,
        Some(c) => ExitCode::from(c),
        None => ExitCode::FAILURE,
    }
}

/// Runs cargo with `args` and `PROTOC` set, passing its exit code on.
fn run(protoc: &std::path::Path, args: &[&str]) -> ExitCode {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    match Command::new(cargo)
        .args(args)
        .env("PROTOC", protoc)
        .status()
    {
        Ok(status) => exit_code(status),
        Err(e) => {
            eprintln!("xtask: could not run cargo: {e}");
            ExitCode::FAILURE
        }
    }
}
