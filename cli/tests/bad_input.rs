//! Bad input through the `rankfile` binary (issue 19, "Bad input at the
//! edges"): account IDs, invite links, safety-number codes, channels, alerts
//! and members that do not parse or do not exist, a message and names past
//! their limits, terminal escapes, an argument that is not UTF-8. Each ends
//! with a plain-words message that repeats at most the start of the input
//! (escaped), its non-zero exit code and no panic, and the home's store holds
//! what it held (its contacts, committees and messages, listed before and
//! after).

mod support;

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::Path;

use support::{account_id, init, json, json_lines, rankfile, Relay};

/// What the home holds, as its own listings show it.
fn holdings(home: &Path) -> Vec<serde_json::Value> {
    let mut all = json_lines(home, &["contact", "list"]);
    all.extend(json_lines(home, &["committee", "list"]));
    all.extend(json_lines(home, &["alert", "list", "--offline"]));
    all
}

/// Runs `args` in `home` and checks the failure: exit code `code`, a plain
/// message on stderr (no panic, no backtrace, no debug dump), nothing on stdout.
fn refused(home: &Path, args: &[OsString], code: i32) -> String {
    let out = rankfile(home).args(args).output().expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let shown: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().chars().take(40).collect())
        .collect();
    assert_eq!(out.status.code(), Some(code), "{shown:?}: {stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "{shown:?} panicked: {stderr}"
    );
    assert!(!stderr.trim().is_empty(), "{shown:?}: no message");
    assert!(
        stderr.len() < 2000,
        "{shown:?}: the message echoes its input ({} bytes)",
        stderr.len()
    );
    assert!(
        !stderr.contains('\u{1b}'),
        "{shown:?}: a terminal escape sequence printed back"
    );
    assert!(
        !stderr.contains("Error {") && !stderr.contains("Some("),
        "{shown:?}: a debug dump, not words: {stderr}"
    );
    stderr
}

fn os(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

#[test]
fn bad_arguments_get_plain_words_and_change_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = Relay::start(&dir.path().join("relay"));
    let (alice, bob) = (dir.path().join("alice"), dir.path().join("bob"));
    init(&alice, &relay);
    init(&bob, &relay);
    let bob_id = account_id(&bob);
    rankfile(&alice)
        .args(["contact", "add", "bob", &bob_id])
        .assert()
        .success();
    json(&alice, &["committee", "create", "Depot"]);
    let before = holdings(&alice);

    let mut flipped = bob_id.clone();
    let last = flipped.pop().expect("a character");
    flipped.push(if last == 'a' { 'b' } else { 'a' });
    let big = "x".repeat(100 * 1024);
    let usage = 2;
    let failure = 1;
    let cases: Vec<(Vec<OsString>, i32)> = vec![
        (os(&["contact", "add", "carol", "rf1-zzzz"]), usage),
        (os(&["contact", "add", "carol", &flipped]), usage),
        (os(&["contact", "add", "carol", ""]), usage),
        (os(&["contact", "add", "carol", &big]), usage),
        (os(&["contact", "safety", "rf1-"]), usage),
        (
            os(&["contact", "verify", &bob_id, "--scanned", "not hex"]),
            usage,
        ),
        (os(&["contact", "verify", &bob_id, "--scanned", "00"]), 6),
        (os(&["contact", "verify", &bob_id, "--digits", "12"]), 6),
        (os(&["send", "rf1-zzzz", "hi"]), usage),
        (os(&["send", &bob_id, &"x".repeat(70 * 1024)]), failure),
        (os(&["committee", "join", "rankfile://join/!!!"]), usage),
        (
            os(&["committee", "join", &format!("rankfile://join/{big}")]),
            usage,
        ),
        (os(&["committee", "join", "rankfile://contact/aaaa"]), usage),
        (os(&["committee", "create", &big]), failure),
        (os(&["committee", "members", "nowhere", "--offline"]), usage),
        (
            os(&["committee", "members", "\u{1b}[2Jx", "--offline"]),
            usage,
        ),
        (os(&["contact", "safety", "rf1-\u{1b}]0;owned\u{7}"]), usage),
        (os(&["committee", "remove", "Depot", "rf1-zzzz"]), usage),
        (os(&["channel", "send", "nowhere/discussion", "hi"]), usage),
        (os(&["channel", "history", "ffffffff", "--offline"]), usage),
        (os(&["alert", "answer", "ffffffff", "coming"]), usage),
        (os(&["alert", "status", "zz"]), usage),
        (os(&["timer", "bob", "999y"]), usage),
        (os(&["link", "decline", "ffffffff"]), usage),
    ];
    for (args, code) in &cases {
        refused(&alice, args, *code);
    }
    // An argument that is not UTF-8.
    let mut bad = os(&["contact", "add"]);
    bad.push(OsString::from_vec(vec![b'b', 0xff, 0xfe, b'b']));
    bad.push(OsString::from(bob_id.as_str()));
    refused(&alice, &bad, usage);

    assert_eq!(before, holdings(&alice), "bad input changed the home");
    // The home still works.
    rankfile(&alice)
        .args(["send", &bob_id, "still here"])
        .assert()
        .success();
}
