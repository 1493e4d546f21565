//! The binding tests `cargo xtask test` runs after the cargo tests: the same
//! committee scenario through the generated Python (pytest), Kotlin (JUnit 5
//! on the JVM, with Maven) and Swift (a test program in the trixie chroot),
//! each against a real relay on loopback. Toolchains come from `provision`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::bindings::{self, cargo, target_dir, workspace, Generated};
use crate::provision::{self, sh};
use crate::relay_process::RelayProcess;

/// Builds the relay binary the scenarios start; returns its path.
pub fn relay_binary(protoc: &Path, release: bool) -> Result<PathBuf, String> {
    let mut build = cargo(protoc);
    build.args(["build", "-p", "rankfile-relay", "--bin", "rankfile-relay"]);
    if release {
        build.arg("--release");
    }
    sh(&mut build)?;
    let profile = if release { "release" } else { "debug" };
    Ok(target_dir().join(profile).join("rankfile-relay"))
}

/// Generates the bindings and runs the three languages' scenarios.
pub fn run(protoc: &Path) -> Result<(), String> {
    let generated = bindings::generate(protoc, false, None)?;
    let relay = relay_binary(protoc, false)?;
    eprintln!("== bindings: Python (pytest)");
    python(&generated, &relay)?;
    eprintln!("== bindings: Kotlin on the JVM (Maven, JUnit 5)");
    kotlin(&generated, &relay)?;
    eprintln!("== bindings: Swift (trixie chroot)");
    swift(&generated, &relay)
}

fn python(generated: &Generated, relay: &Path) -> Result<(), String> {
    let python = provision::python()?;
    sh(Command::new(python)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .arg(workspace().join("bindings").join("python"))
        .env("RANKFILE_FFI_BINDINGS", &generated.dir)
        .env("RANKFILE_RELAY_BIN", relay)
        // Nothing written into the clone.
        .env("PYTHONDONTWRITEBYTECODE", "1"))
}

/// `mvn` over `bindings/kotlin` with the generated code, the library and
/// the relay; its build output goes to the target directory.
pub fn maven(generated: &Generated, relay: &Path, goals: &[&str]) -> Command {
    let mut c = Command::new("mvn");
    c.args(["-B", "-q", "-f"])
        .arg(workspace().join("bindings").join("kotlin").join("pom.xml"))
        .arg(format!("-Drankfile.bindings={}", generated.dir.display()))
        .arg(format!("-Drankfile.relay={}", relay.display()))
        .arg(format!(
            "-Drankfile.build={}",
            target_dir().join("kotlin").display()
        ))
        .args(goals);
    c
}

fn kotlin(generated: &Generated, relay: &Path) -> Result<(), String> {
    provision::maven()?;
    sh(&mut maven(generated, relay, &["test"]))
}

fn swift(generated: &Generated, relay: &Path) -> Result<(), String> {
    let root = provision::swift_chroot()?;
    // What the chroot sees at /work: the generated Swift, its C header and
    // module map (rewritten with an absolute path, which swiftc needs), the
    // library and the test program.
    let work = target_dir().join("swift-work");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let copy = |from: &Path, name: &str| {
        std::fs::copy(from, work.join(name)).map_err(|e| format!("copying {name}: {e}"))
    };
    copy(
        &generated.dir.join("rankfile_ffi.swift"),
        "rankfile_ffi.swift",
    )?;
    copy(
        &generated.dir.join("rankfile_ffiFFI.h"),
        "rankfile_ffiFFI.h",
    )?;
    copy(&generated.library, "librankfile_ffi.so")?;
    let program = workspace().join("bindings").join("swift");
    copy(&program.join("Scenario.swift"), "main.swift")?;
    std::fs::write(
        work.join("rankfile_ffiFFI.modulemap"),
        "module rankfile_ffiFFI {\n    header \"/work/rankfile_ffiFFI.h\"\n    export *\n}\n",
    )
    .map_err(|e| e.to_string())?;
    let relay = RelayProcess::start(relay, &target_dir().join("swift-relay"), true)?;
    provision::in_swift_chroot(
        &root,
        &work,
        &format!(
            "swiftc -module-name Scenario -Xcc -fmodule-map-file=/work/rankfile_ffiFFI.modulemap \
             -I /work -L /work -lrankfile_ffi rankfile_ffi.swift main.swift -o scenario \
             && LD_LIBRARY_PATH=/work ./scenario {} {}",
            relay.address, relay.fingerprint
        ),
    )
}
