//! The `rankfile` binary driven as a user would: a relay process, two homes in
//! temporary directories, init, contacts, safety numbers, send and watch; a
//! wrong passphrase that changes nothing; a wipe that leaves no database.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Stdio};

use predicates::prelude::*;
use support::{account_id, init, json, lines_of, rankfile, Relay, PASSPHRASE, PATIENCE};

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
    // (A wipe asks for no passphrase: `device_safety.rs`.)
    for args in [&["id"][..], &["contact", "list"], &["duress", "clear"]] {
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
    let out = rankfile(&home)
        .args([
            "init",
            "--relay",
            "127.0.0.1:1",
            "--fingerprint",
            &"ab".repeat(32),
        ])
        .assert()
        .code(4)
        .get_output()
        .clone();
    // One plain sentence, said once.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.matches("could not be reached").count(),
        1,
        "{stderr}"
    );
    assert_eq!(stderr.matches("check the address").count(), 1, "{stderr}");
    assert!(stderr.contains("home was created"), "{stderr}");
    assert!(home.join("account.db").exists());
    rankfile(&home).arg("id").assert().success();
}
