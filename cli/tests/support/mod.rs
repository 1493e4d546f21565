//! Shared by the CLI's tests: a `rankfile relay` child process, homes driven
//! through the binary with `RANKFILE_PASSPHRASE`, and bounded waits for the
//! lines of long-running commands.

#![allow(dead_code)] // each test file uses its own part of it

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command as StdCommand, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use assert_cmd::Command;
use predicates::prelude::*;

/// Bounded waits for lines from child processes (not a timing assertion: a
/// hang must fail the test instead of blocking the suite).
pub const PATIENCE: Duration = Duration::from_secs(90);
pub const PASSPHRASE: &str = "solidarity forever";

/// A `rankfile relay` child process, killed when dropped.
pub struct Relay {
    child: Child,
    pub addr: String,
    pub fingerprint: String,
}

impl Relay {
    pub fn start(dir: &Path) -> Relay {
        let mut child = StdCommand::new(assert_cmd::cargo::cargo_bin("rankfile"))
            .args(["relay", "--bind", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .args(["--log", "warn"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("relay starts");
        let lines = lines_of(child.stdout.take().expect("stdout"));
        let line = lines
            .recv_timeout(PATIENCE)
            .expect("the relay's startup line");
        // rankfile-relay listening on <addr> fingerprint <hex>
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(
            words.get(..3),
            Some(&["rankfile-relay", "listening", "on"][..]),
            "{line}"
        );
        assert_eq!(words.get(4), Some(&"fingerprint"), "{line}");
        Relay {
            addr: words[3].to_string(),
            fingerprint: words[5].to_string(),
            child,
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Lines of a child's output, read on a thread so waits can be bounded.
pub fn lines_of(out: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

pub fn rankfile(home: &Path) -> Command {
    let mut c = Command::cargo_bin("rankfile").expect("binary");
    c.env("RANKFILE_HOME", home)
        .env("RANKFILE_PASSPHRASE", PASSPHRASE)
        .env_remove("RANKFILE_RELAY_BIND")
        .timeout(PATIENCE);
    c
}

pub fn init(home: &Path, relay: &Relay) {
    rankfile(home)
        .args([
            "init",
            "--relay",
            &relay.addr,
            "--fingerprint",
            &relay.fingerprint,
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("rf1-"));
}

pub fn json(home: &Path, args: &[&str]) -> serde_json::Value {
    let out = rankfile(home)
        .arg("--json")
        .args(args)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

pub fn account_id(home: &Path) -> String {
    json(home, &["id"])["account_id"]
        .as_str()
        .expect("account_id")
        .to_string()
}

/// A command's `--json` output of one object per line.
pub fn json_lines(home: &Path, args: &[&str]) -> Vec<serde_json::Value> {
    let out = rankfile(home)
        .arg("--json")
        .args(args)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}
