//! `cargo xtask bindings [--release] [--out DIR]`: builds `rankfile-ffi` and
//! the in-repo `uniffi-bindgen`, then generates Kotlin, Swift and Python from
//! the built library (uniffi's library mode: the library carries its own
//! interface description). The library is copied beside the generated code,
//! where Python's module and JNA look for it.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::provision::sh;

/// The workspace's target directory (`CARGO_TARGET_DIR` or `target/`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"))
}

/// The clone's root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

pub fn cargo(protoc: &Path) -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string()));
    c.env("PROTOC", protoc).current_dir(workspace());
    c
}

/// The generated bindings and the library beside them.
pub struct Generated {
    pub dir: PathBuf,
    pub library: PathBuf,
}

/// Builds the library (debug, or release) and generates the three languages
/// into `out` (default: `bindings/` under the target directory).
pub fn generate(protoc: &Path, release: bool, out: Option<PathBuf>) -> Result<Generated, String> {
    let profile = if release { "release" } else { "debug" };
    let mut build = cargo(protoc);
    build.args(["build", "-p", "rankfile-ffi", "-p", "uniffi-bindgen"]);
    if release {
        build.arg("--release");
    }
    sh(&mut build)?;
    let bin = target_dir().join(profile);
    let built = bin.join("librankfile_ffi.so");
    let dir = out.unwrap_or_else(|| target_dir().join("bindings").join(profile));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    sh(Command::new(bin.join("uniffi-bindgen"))
        .args(["generate", "--library"])
        .arg(&built)
        .args([
            "--language",
            "kotlin",
            "--language",
            "swift",
            "--language",
            "python",
            "--no-format",
            "--out-dir",
        ])
        .arg(&dir))?;
    let library = dir.join("librankfile_ffi.so");
    std::fs::copy(&built, &library).map_err(|e| format!("copying the library: {e}"))?;
    Ok(Generated { dir, library })
}

/// The command: parses its options and generates.
pub fn run(protoc: &Path, args: &[String]) -> Result<(), String> {
    let mut out = None;
    let mut release = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--out" => out = Some(PathBuf::from(it.next().ok_or("--out needs a directory")?)),
            "--release" => release = true,
            other => return Err(format!("unknown bindings option `{other}`")),
        }
    }
    let generated = generate(protoc, release, out)?;
    println!("{}", generated.dir.display());
    Ok(())
}
