//! Toolchains the binding tests need, installed by the test command itself
//! and idempotently: Debian packages when absent (`apt-get`), a Python venv
//! with pytest, Maven's repository in `~/.m2` (Maven fills it), and a Debian
//! trixie chroot with Swift. Every cache lives outside the clone, under
//! [`cache_dir`], so a fresh clone on the same machine reuses them.

use std::path::{Path, PathBuf};
use std::process::Command;

/// pytest, pinned: the venv is rebuilt when this changes.
const PYTEST: &str = "pytest==8.3.4";
/// The Debian release whose `swiftlang` package runs the Swift test.
const SWIFT_SUITE: &str = "trixie";
const DEBIAN_MIRROR: &str = "http://deb.debian.org/debian";

/// Where the toolchains are cached: `$RANKFILE_CACHE`, else
/// `/var/cache/rankfile`.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("RANKFILE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/rankfile"))
}

/// Runs a command to its end; an error names it.
pub fn sh(command: &mut Command) -> Result<(), String> {
    let status = command
        .status()
        .map_err(|e| format!("could not run {:?}: {e}", command.get_program()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{command:?} failed ({status})"))
    }
}

fn installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
}

/// Installs the Debian packages that are missing (one `apt-get update`
/// first, only when something is).
pub fn apt(packages: &[&str]) -> Result<(), String> {
    let missing: Vec<&str> = packages.iter().copied().filter(|p| !installed(p)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("xtask: installing {}", missing.join(" "));
    sh(Command::new("apt-get").args(["update", "-q"]))?;
    sh(Command::new("apt-get")
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

/// A venv with pytest; returns its `python`.
pub fn python() -> Result<PathBuf, String> {
    apt(&["python3", "python3-venv"])?;
    let venv = cache_dir().join("venv");
    let python = venv.join("bin").join("python");
    let stamp = venv.join("rankfile-pins");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(PYTEST) && python.exists() {
        return Ok(python);
    }
    let _ = std::fs::remove_dir_all(&venv);
    sh(Command::new("/usr/bin/python3")
        .args(["-m", "venv"])
        .arg(&venv))?;
    sh(Command::new(&python).args(["-m", "pip", "install", "-q", PYTEST]))?;
    std::fs::write(&stamp, PYTEST).map_err(|e| format!("writing {}: {e}", stamp.display()))?;
    Ok(python)
}

/// Maven and a JDK (Debian's); Maven caches what it downloads in `~/.m2`.
pub fn maven() -> Result<(), String> {
    apt(&["maven", "openjdk-17-jdk-headless"])
}

/// The trixie chroot with `swiftlang`, made once by debootstrap. Built in a
/// `.partial` directory and renamed when complete, so an interrupted build
/// is started over, never used.
pub fn swift_chroot() -> Result<PathBuf, String> {
    let root = cache_dir().join(format!("swift-{SWIFT_SUITE}"));
    if root.join("usr/bin/swiftc").exists() && root.join("usr/include/stdio.h").exists() {
        return Ok(root);
    }
    apt(&["debootstrap"])?;
    let partial = cache_dir().join(format!("swift-{SWIFT_SUITE}.partial"));
    let _ = std::fs::remove_dir_all(&partial);
    std::fs::create_dir_all(cache_dir()).map_err(|e| e.to_string())?;
    eprintln!("xtask: building the Swift chroot (Debian {SWIFT_SUITE}, a few minutes, once)");
    sh(Command::new("debootstrap")
        .args([
            "--variant=minbase",
            "--include=swiftlang,libc6-dev",
            SWIFT_SUITE,
        ])
        .arg(&partial)
        .arg(DEBIAN_MIRROR))?;
    std::fs::rename(&partial, &root).map_err(|e| format!("renaming the chroot: {e}"))?;
    Ok(root)
}

/// Runs `script` with `sh` inside the Swift chroot, with `/proc` mounted
/// (the compiler finds its libraries through `$ORIGIN`, which needs it) and
/// `work` bind-mounted at `/work`, all in a private mount namespace that
/// vanishes with the command.
pub fn in_swift_chroot(root: &Path, work: &Path, script: &str) -> Result<(), String> {
    let inner = format!(
        "set -e; mkdir -p {r}/work; mount -t proc proc {r}/proc; \
         mount --bind {w} {r}/work; exec chroot {r} /bin/sh -c 'cd /work && {script}'",
        r = root.display(),
        w = work.display(),
    );
    sh(Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(inner))
}
