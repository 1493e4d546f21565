//! `cargo xtask bench-ffi [--messages N]`: a phone back from a weekend
//! offline catches up through the bindings. One backlog of N messages
//! (10,000 by default; 1:1 messages and channel posts alternating) is made
//! once at a relay; then fresh copies of the phone's store and the relay's
//! data are caught up once through the Rust facade (`ffi-catchup rust`) and
//! once through the generated Kotlin on the JVM with a Kotlin listener that
//! counts the events (`CatchUpBench.kt`), each timed from open to the last
//! message stored. Release builds. The last line:
//! `ffi_catchup messages=N rust_ms=A kotlin_ms=B ratio=B/A`.

use std::path::Path;
use std::process::Command;

use crate::bindings::{self, cargo, target_dir};
use crate::ffi_tests::{maven, relay_binary};
use crate::provision::{self, sh};
use crate::relay_process::RelayProcess;

/// The `ms=` line a runner prints.
fn timed(command: &mut Command) -> Result<u64, String> {
    let out = command
        .output()
        .map_err(|e| format!("could not run {:?}: {e}", command.get_program()))?;
    if !out.status.success() {
        return Err(format!(
            "{:?} failed: {}",
            command.get_program(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("ms=").and_then(|v| v.trim().parse().ok()))
        .ok_or_else(|| format!("{:?} printed no ms= line", command.get_program()))
}

/// `cp -a` of the prepared backlog into a fresh directory.
fn fresh_copy(prepared: &Path, to: &Path) -> Result<(), String> {
    let _ = std::fs::remove_dir_all(to);
    sh(Command::new("cp").arg("-a").arg(prepared).arg(to))
}

pub fn run(protoc: &Path, args: &[String]) -> Result<(), String> {
    let messages: u64 = match args {
        [] => 10_000,
        [flag, n] if flag == "--messages" => n.parse().map_err(|_| "--messages needs a number")?,
        _ => return Err("usage: cargo xtask bench-ffi [--messages N]".into()),
    };
    let generated = bindings::generate(protoc, true, None)?;
    let relay_bin = relay_binary(protoc, true)?;
    sh(cargo(protoc).args(["build", "--release", "-p", "rankfile-ffi-bench"]))?;
    let catchup = target_dir().join("release").join("ffi-catchup");
    provision::maven()?;
    let classpath_file = target_dir().join("kotlin").join("bench-classpath.txt");
    sh(maven(
        &generated,
        &relay_bin,
        &["compile", "dependency:build-classpath"],
    )
    .arg(format!("-Dmdep.outputFile={}", classpath_file.display())))?;
    let classpath = format!(
        "{}:{}",
        target_dir().join("kotlin").join("classes").display(),
        std::fs::read_to_string(&classpath_file)
            .map_err(|e| e.to_string())?
            .trim()
    );

    let base = target_dir().join("bench-ffi");
    let prepared = base.join("prepared");
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&prepared).map_err(|e| e.to_string())?;
    eprintln!("bench-ffi: making the backlog of {messages} messages");
    {
        let relay = RelayProcess::start(&relay_bin, &prepared.join("relay"), true)?;
        sh(Command::new(&catchup).arg("prepare").arg(&prepared).args([
            &relay.address,
            &relay.fingerprint,
            &messages.to_string(),
        ]))?;
    }

    let n = messages.to_string();
    let rust_dir = base.join("rust");
    fresh_copy(&prepared, &rust_dir)?;
    let rust_ms = {
        let relay = RelayProcess::start(&relay_bin, &rust_dir.join("relay"), false)?;
        timed(Command::new(&catchup).arg("rust").arg(&rust_dir).args([
            &relay.address,
            &relay.fingerprint,
            &n,
        ]))?
    };
    eprintln!("bench-ffi: Rust facade {rust_ms} ms");
    let kotlin_dir = base.join("kotlin");
    fresh_copy(&prepared, &kotlin_dir)?;
    let kotlin_ms = {
        let relay = RelayProcess::start(&relay_bin, &kotlin_dir.join("relay"), false)?;
        timed(
            Command::new("java")
                .arg(format!("-Djna.library.path={}", generated.dir.display()))
                .args(["-cp", &classpath, "org.rankfile.ffi.CatchUpBenchKt"])
                .arg(&kotlin_dir)
                .args([&relay.address, &relay.fingerprint, &n]),
        )?
    };
    eprintln!("bench-ffi: Kotlin over the bindings {kotlin_ms} ms");
    let ratio = kotlin_ms as f64 / rust_ms.max(1) as f64;
    println!(
        "ffi_catchup messages={messages} rust_ms={rust_ms} kotlin_ms={kotlin_ms} ratio={ratio:.2}"
    );
    Ok(())
}
