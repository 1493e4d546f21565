//! The `rankfile` binary driven as a user would: a relay process, two homes in
//! temporary directories, init, contacts, safety numbers, send and watch; a
//! wrong passphrase that changes nothing; a wipe that leaves no database.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as StdCommand, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use assert_cmd::Command;
use predicates::prelude::*;

/// Bounded waits for lines from child processes (not a timing assertion: a
/// hang must fail the test instead of blocking the suite).
const PATIENCE: Duration = Duration::from_secs(90);
const PASSPHRASE: &str = "solidarity forever";

/// A `rankfile relay` child process, killed when dropped.
struct Relay {
    child: Child,
    addr: String,
    fingerprint: String,
}

impl Relay {
    fn start(dir: &Path) -> Relay {
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
fn lines_of(out: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
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

fn rankfile(home: &Path) -> Command {
    let mut c = Command::cargo_bin("rankfile").expect("binary");
    c.env("RANKFILE_HOME", home)
        .env("RANKFILE_PASSPHRASE", PASSPHRASE)
        .env_remove("RANKFILE_RELAY_BIND")
        .timeout(PATIENCE);
    c
}

fn init(home: &Path, relay: &Relay) {
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

fn json(home: &Path, args: &[&str]) -> serde_json::Value {
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

fn account_id(home: &Path) -> String {
    json(home, &["id"])["account_id"]
        .as_str()
        .expect("account_id")
        .to_string()
}

/// Every file in the home with its bytes.
fn snapshot(home: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    std::fs::read_dir(home)
        .expect("home")
        .map(|e| e.expect("entry").path())
        .map(|p| {
            let bytes = std::fs::read(&p).expect("read");
            (p, bytes)
        })
        .collect()
}

#[test]
fn two_homes_exchange_a_message_through_a_relay_process() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = Relay::start(&dir.path().join("relay"));
    let (alice, bob) = (dir.path().join("alice"), dir.path().join("bob"));
    init(&alice, &relay);
    init(&bob, &relay);
    let bob_id = account_id(&bob);
    let alice_id = account_id(&alice);

    rankfile(&alice)
        .args(["contact", "add", "bob", &bob_id])
        .assert()
        .success()
        .stdout(predicate::str::contains("safety number"));
    rankfile(&alice)
        .args(["send", &bob_id, "strike ballot closes friday"])
        .assert()
        .success()
        .stdout(predicate::str::contains("sent to bob"));

    // Bob watches; the queued message arrives on login.
    let mut watch = StdCommand::new(assert_cmd::cargo::cargo_bin("rankfile"))
        .args(["--json", "watch"])
        .env("RANKFILE_HOME", &bob)
        .env("RANKFILE_PASSPHRASE", PASSPHRASE)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("watch starts");
    let lines = lines_of(watch.stdout.take().expect("stdout"));
    let mut message = None;
    while let Ok(line) = lines.recv_timeout(PATIENCE) {
        let v: serde_json::Value = serde_json::from_str(&line).expect("JSON line");
        if v["type"] == "message" {
            message = Some(v);
            break;
        }
    }
    let _ = watch.kill();
    let _ = watch.wait();
    let message = message.expect("the message reached bob's watch");
    assert_eq!(message["body"], "strike ballot closes friday");
    assert_eq!(message["from"], alice_id.as_str());

    // Both see the same safety number; digits verify, wrong digits do not.
    let ours = json(&alice, &["contact", "safety", &bob_id]);
    let theirs = json(&bob, &["contact", "safety", &alice_id]);
    assert_eq!(ours["safety_number"], theirs["safety_number"]);
    let digits = theirs["safety_number"]
        .as_str()
        .expect("digits")
        .to_string();
    let mut wrong = digits.clone();
    wrong.replace_range(0..1, if digits.starts_with('1') { "2" } else { "1" });
    rankfile(&alice)
        .args(["contact", "verify", &bob_id, "--digits", &wrong])
        .assert()
        .code(6);
    rankfile(&alice)
        .args(["contact", "verify", &bob_id, "--digits", &digits])
        .assert()
        .success();
    let scannable = ours["scannable"].as_str().expect("scannable").to_string();
    rankfile(&bob)
        .args(["contact", "verify", &alice_id, "--scanned", &scannable])
        .assert()
        .success();
    let listed = rankfile(&bob)
        .args(["--json", "contact", "list"])
        .output()
        .expect("list");
    let listed: serde_json::Value =
        serde_json::from_slice(&listed.stdout).expect("one contact, one line");
    assert_eq!(listed["account_id"], alice_id.as_str());
    assert_eq!(listed["verified"], true);
}

#[test]
fn a_wrong_passphrase_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    rankfile(&home).arg("init").assert().success();
    let before = snapshot(&home);
    assert!(before.keys().any(|p| p.ends_with("salt")), "{before:?}");
    for args in [&["id"][..], &["contact", "list"], &["wipe", "--yes"]] {
        rankfile(&home)
            .env("RANKFILE_PASSPHRASE", "scab")
            .args(args)
            .assert()
            .code(3)
            .stderr(predicate::str::contains("wrong passphrase for this home"));
    }
    assert_eq!(
        snapshot(&home),
        before,
        "a wrong passphrase changed the home"
    );
    rankfile(&home).arg("id").assert().success();
}

#[test]
fn wipe_leaves_no_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    rankfile(&home).arg("init").assert().success();
    assert!(home.join("account.db").exists());
    rankfile(&home)
        .args(["wipe", "--yes"])
        .assert()
        .success()
        .stdout(predicate::str::contains("wiped"));
    for f in [
        "account.db",
        "account.db-wal",
        "account.db-shm",
        "salt",
        "kdf.toml",
    ] {
        assert!(!home.join(f).exists(), "{f} survived the wipe");
    }
    rankfile(&home).arg("id").assert().code(5);
}

#[test]
fn usage_and_home_errors_have_their_own_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    rankfile(&home).arg("id").assert().code(5);
    rankfile(&home).arg("init").assert().success();
    rankfile(&home).arg("init").assert().code(5);
    // No relay saved or given.
    rankfile(&home)
        .args(["send", "rf1-aaaaa", "hi"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--relay"));
    rankfile(&home).args(["--relay", "x"]).assert().code(2);
    rankfile(&home)
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("3  wrong passphrase"));
}

#[test]
fn an_unreachable_relay_has_its_own_code_and_keeps_the_home() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    // Nothing listens on port 1 of loopback.
    rankfile(&home)
        .args([
            "init",
            "--relay",
            "127.0.0.1:1",
            "--fingerprint",
            &"ab".repeat(32),
        ])
        .assert()
        .code(4)
        .stderr(predicate::str::contains("could not be reached"));
    assert!(home.join("account.db").exists());
    rankfile(&home).arg("id").assert().success();
}
