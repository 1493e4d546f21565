//! `cargo xtask check-mobile`: `cargo check -p rankfile-ffi` for the phones'
//! targets on a Linux machine without the Android NDK or Xcode.
//!
//! Checking still runs the build scripts, and two of them compile C for the
//! target: SQLCipher (libsqlite3-sys) and ring. For `aarch64-linux-android`,
//! Debian's clang compiles them with `--target=aarch64-linux-android24`
//! against the aarch64 glibc headers (`libc6-dev-arm64-cross`) and a stub
//! `android/log.h` (SQLCipher's Android logging; only its declarations are
//! needed, nothing links), with `llvm-ar` as the archiver. For
//! `aarch64-apple-ios` no such stand-in exists: cc-rs asks `xcrun` for the
//! SDK (or wants `SDKROOT`), and glibc's headers do not parse for an Apple
//! target, so the crates whose build scripts compile C cannot be checked
//! there; every crate of ours and each dependency that compiles no C is
//! (`IOS_CRATES`). The complete iOS check needs a Mac with Xcode.
//!
//! Status: written from the setup found to work on this machine for the
//! core, but not yet run as a whole here (the machine was shared during the
//! session), so it is not part of `.ci/run`; `IOS_CRATES` lists only what is
//! known to compile no C and must be extended once the iOS check is run.

use std::path::Path;
use std::process::Command;

use crate::bindings::{cargo, target_dir};
use crate::provision::{apt, sh};

const ANDROID: &str = "aarch64-linux-android";
const IOS: &str = "aarch64-apple-ios";

/// The declarations of `<android/log.h>` SQLCipher uses.
const ANDROID_LOG_H: &str = "\
#pragma once
typedef enum android_LogPriority { ANDROID_LOG_UNKNOWN = 0, ANDROID_LOG_DEFAULT,
  ANDROID_LOG_VERBOSE, ANDROID_LOG_DEBUG, ANDROID_LOG_INFO, ANDROID_LOG_WARN,
  ANDROID_LOG_ERROR, ANDROID_LOG_FATAL, ANDROID_LOG_SILENT } android_LogPriority;
int __android_log_print(int prio, const char *tag, const char *fmt, ...);
int __android_log_write(int prio, const char *tag, const char *text);
";

fn rustup_target(target: &str) -> Result<(), String> {
    sh(Command::new("rustup").args(["target", "add", target]))
}

/// A compiler wrapper script for `target`.
fn wrapper(dir: &Path, name: &str, body: &str) -> Result<std::path::PathBuf, String> {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).map_err(|e| e.to_string())?;
    sh(Command::new("chmod").arg("+x").arg(&path))?;
    Ok(path)
}

fn android(protoc: &Path) -> Result<(), String> {
    apt(&["clang", "llvm", "libc6-dev-arm64-cross"])?;
    rustup_target(ANDROID)?;
    let dir = target_dir().join("mobile");
    std::fs::create_dir_all(dir.join("stub").join("android")).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("stub/android/log.h"), ANDROID_LOG_H).map_err(|e| e.to_string())?;
    let cc = wrapper(
        &dir,
        "android-cc",
        &format!(
            "exec clang --target=aarch64-linux-android24 -isystem {} \
             -isystem /usr/aarch64-linux-gnu/include \"$@\"",
            dir.join("stub").display()
        ),
    )?;
    sh(cargo(protoc)
        .args(["check", "-p", "rankfile-ffi", "--target", ANDROID])
        .env("CC_aarch64_linux_android", &cc)
        .env("AR_aarch64_linux_android", "llvm-ar"))
}

/// Ours and the dependencies without a C build script.
const IOS_CRATES: &[&str] = &["rankfile-proto"];

fn ios(protoc: &Path) -> Result<(), String> {
    rustup_target(IOS)?;
    let mut check = cargo(protoc);
    check.args(["check", "--target", IOS]);
    for c in IOS_CRATES {
        check.args(["-p", c]);
    }
    sh(&mut check)
}

pub fn run(protoc: &Path) -> Result<(), String> {
    android(protoc)?;
    ios(protoc)
}
