//! Less on a seized phone, through the binary: a panic wipe that asks for no
//! passphrase and destroys a locked or corrupt home, the duress passphrase
//! (wipes, then answers as a wrong passphrase does), and the passphrase read
//! from a file.

mod support;

use std::path::Path;
use std::process::Output;

use assert_cmd::Command;
use predicates::prelude::*;
use support::{rankfile, PASSPHRASE};

/// Every file a home holds, unlock material first.
const HOME_FILES: [&str; 8] = [
    "salt",
    "kdf.toml",
    "duress",
    "account.db",
    "account.db-wal",
    "account.db-shm",
    "account.db-journal",
    "relay.toml",
];

/// `rankfile` with no way at all to get a passphrase: none in the
/// environment, no file, and stdin not a terminal. A command that asks for
/// one fails with a usage error.
fn no_passphrase(home: &Path) -> Command {
    let mut c = rankfile(home);
    c.env_remove("RANKFILE_PASSPHRASE")
        .env_remove("RANKFILE_PASSPHRASE_FILE")
        .write_stdin("");
    c
}

fn left_in(home: &Path) -> Vec<&'static str> {
    HOME_FILES
        .into_iter()
        .filter(|f| home.join(f).exists())
        .collect()
}

fn init(home: &Path) {
    rankfile(home).arg("init").assert().success();
    // A relay saved, as a real home has.
    std::fs::write(
        home.join("relay.toml"),
        format!(
            "address = \"127.0.0.1:7443\"\nfingerprint = \"{}\"\n",
            "ab".repeat(32)
        ),
    )
    .expect("relay.toml");
}

#[test]
fn wipe_asks_for_no_passphrase_and_leaves_nothing_of_a_locked_home() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    init(&home);
    // Something in the WAL too.
    rankfile(&home).args(["contact", "list"]).assert().success();
    assert!(left_in(&home).contains(&"salt"));
    no_passphrase(&home)
        .args(["wipe", "--yes"])
        .assert()
        .success()
        .stdout(predicate::str::contains("wiped"))
        .stderr(predicate::str::contains("assphrase").not());
    assert_eq!(left_in(&home), Vec::<&str>::new(), "survived the wipe");
    assert!(!home.exists(), "the emptied home is removed");
    rankfile(&home).arg("id").assert().code(5);
}

#[test]
fn wipe_destroys_a_corrupt_store_and_a_half_wiped_home() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    init(&home);
    std::fs::write(home.join("account.db"), vec![0x42; 20_000]).expect("corrupt");
    rankfile(&home).arg("id").assert().failure();
    no_passphrase(&home)
        .args(["--json", "wipe", "--yes"])
        .assert()
        .success()
        .stdout(predicate::str::contains("\"home_removed\":true"));
    assert_eq!(left_in(&home), Vec::<&str>::new());

    // A wipe cut short after the store went still finishes the job.
    init(&home);
    std::fs::remove_file(home.join("account.db")).expect("rm");
    no_passphrase(&home)
        .args(["wipe", "--yes"])
        .assert()
        .success();
    assert_eq!(left_in(&home), Vec::<&str>::new());
}

fn set_duress(home: &Path, duress: &str) {
    let file = home.with_extension("duress-passphrase");
    std::fs::write(&file, format!("{duress}\n")).expect("duress file");
    rankfile(home)
        .args(["duress", "set", "--duress-file"])
        .arg(&file)
        .assert()
        .success()
        .stdout(predicate::str::contains("duress passphrase set"));
}

fn id_with(home: &Path, passphrase: &str, json: bool) -> Output {
    let mut c = rankfile(home);
    c.env("RANKFILE_PASSPHRASE", passphrase);
    if json {
        c.arg("--json");
    }
    c.arg("id").output().expect("runs")
}

#[test]
fn the_duress_passphrase_wipes_and_answers_as_a_wrong_passphrase() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    init(&home);
    set_duress(&home, "the boss is watching");

    // A wrong passphrase: refused, nothing touched.
    let before: Vec<Vec<u8>> = HOME_FILES
        .iter()
        .filter_map(|f| std::fs::read(home.join(f)).ok())
        .collect();
    let wrong = id_with(&home, "scab", false);
    assert_eq!(wrong.status.code(), Some(3));
    let after: Vec<Vec<u8>> = HOME_FILES
        .iter()
        .filter_map(|f| std::fs::read(home.join(f)).ok())
        .collect();
    assert_eq!(before, after, "a wrong passphrase changed the home");
    // The real one opens.
    rankfile(&home).arg("id").assert().success();

    // The duress passphrase: the same answer, byte for byte, and the home
    // is gone.
    let duress = id_with(&home, "the boss is watching", false);
    assert_eq!(duress.status.code(), wrong.status.code());
    assert_eq!(duress.stderr, wrong.stderr);
    assert_eq!(duress.stdout, wrong.stdout);
    assert_eq!(
        left_in(&home),
        Vec::<&str>::new(),
        "survived the duress wipe"
    );
    assert!(!home.exists(), "the emptied home is removed");
    // Asked again, it is a home that is not there.
    rankfile(&home).arg("id").assert().code(5);

    // In JSON too.
    let home = dir.path().join("home2");
    init(&home);
    set_duress(&home, "the boss is watching");
    let wrong_json = id_with(&home, "scab", true);
    let duress_json = id_with(&home, "the boss is watching", true);
    assert_eq!(duress_json.status.code(), Some(3));
    assert_eq!(duress_json.stderr, wrong_json.stderr);
    assert_eq!(duress_json.stdout, wrong_json.stdout);
    assert!(!home.join("account.db").exists() && !home.join("salt").exists());
}

#[test]
fn the_duress_verifier_is_always_there_and_a_cleared_one_wipes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    init(&home);
    // Set or not, the home holds a verifier of the same size.
    let unset = std::fs::read(home.join("duress")).expect("a verifier from the start");
    assert_eq!(unset.len(), 32);
    // The duress passphrase may not be the passphrase.
    let same = home.with_extension("same");
    std::fs::write(&same, PASSPHRASE).expect("write");
    rankfile(&home)
        .args(["duress", "set", "--duress-file"])
        .arg(&same)
        .assert()
        .code(2);
    assert_eq!(std::fs::read(home.join("duress")).expect("read"), unset);
    set_duress(&home, "the boss is watching");
    let set = std::fs::read(home.join("duress")).expect("read");
    assert_eq!(set.len(), 32);
    assert_ne!(set, unset);
    rankfile(&home).args(["duress", "clear"]).assert().success();
    assert_ne!(std::fs::read(home.join("duress")).expect("read"), set);
    // Cleared: now merely a wrong passphrase.
    assert_eq!(
        id_with(&home, "the boss is watching", false).status.code(),
        Some(3)
    );
    rankfile(&home).arg("id").assert().success();

    // A home from before duress passphrases gets a verifier at its next unlock.
    std::fs::remove_file(home.join("duress")).expect("rm");
    assert_eq!(id_with(&home, "scab", false).status.code(), Some(3));
    assert!(
        !home.join("duress").exists(),
        "a wrong passphrase writes nothing"
    );
    rankfile(&home).arg("id").assert().success();
    assert_eq!(std::fs::read(home.join("duress")).expect("read").len(), 32);
}

#[test]
fn the_passphrase_comes_from_a_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    let file = dir.path().join("passphrase");
    std::fs::write(&file, format!("{PASSPHRASE}\r\nnot the passphrase\n")).expect("write");
    no_passphrase(&home)
        .arg("--passphrase-file")
        .arg(&file)
        .arg("init")
        .assert()
        .success();
    no_passphrase(&home)
        .arg("id")
        .arg("--passphrase-file")
        .arg(&file)
        .assert()
        .success();
    no_passphrase(&home)
        .env("RANKFILE_PASSPHRASE_FILE", &file)
        .arg("id")
        .assert()
        .success();
    // The same passphrase as the environment variable opens it too.
    rankfile(&home).arg("id").assert().success();
    // The file wins over the variable.
    std::fs::write(&file, "scab\n").expect("write");
    rankfile(&home)
        .env("RANKFILE_PASSPHRASE_FILE", &file)
        .arg("id")
        .assert()
        .code(3);
    no_passphrase(&home)
        .arg("id")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--passphrase-file"));
    rankfile(&home)
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("RANKFILE_PASSPHRASE_FILE"))
        .stdout(predicate::str::contains("other processes"));
}

#[test]
fn a_conversation_timer_set_on_one_side_is_adopted_and_shown_on_the_other() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = support::Relay::start(&dir.path().join("relay"));
    let (alice, bob) = (dir.path().join("alice"), dir.path().join("bob"));
    support::init(&alice, &relay);
    support::init(&bob, &relay);
    let bob_id = support::account_id(&bob);
    let alice_id = support::account_id(&alice);
    rankfile(&alice)
        .args(["contact", "add", "bob", &bob_id])
        .assert()
        .success();
    rankfile(&alice)
        .args(["timer", "bob", "nonsense"])
        .assert()
        .code(2);
    rankfile(&alice)
        .args(["timer", "bob", "1h"])
        .assert()
        .success()
        .stdout(predicate::str::contains("1h"));
    let listed = support::json(&alice, &["contact", "list"]);
    assert_eq!(listed["timer_secs"], 3600);

    // Bob's phone adopts it, says so, and shows it where the conversation shows.
    let arrived = support::json_lines(&bob, &["sync"]);
    assert!(
        arrived
            .iter()
            .any(|l| l["type"] == "conversation_timer" && l["timer_secs"] == 3600),
        "{arrived:?}"
    );
    let listed = support::json(&bob, &["contact", "list"]);
    assert_eq!(listed["account_id"], alice_id.as_str());
    assert_eq!(listed["timer_secs"], 3600);

    // A text under it disappears an hour after it was sent, on Bob's phone too.
    rankfile(&alice)
        .args(["send", "bob", "the list is in the locker"])
        .assert()
        .success();
    let arrived = support::json_lines(&bob, &["sync"]);
    let message = arrived
        .iter()
        .find(|l| l["type"] == "message")
        .unwrap_or_else(|| panic!("the text arrived: {arrived:?}"));
    let sent = message["sent_at_ms"].as_i64().expect("sent");
    let stored = message["stored_at_ms"].as_i64().expect("stored");
    assert_eq!(
        message["expires_at_ms"].as_i64(),
        Some(sent.min(stored) + 3_600_000)
    );

    // Bob turns it off; Alice adopts that.
    rankfile(&bob)
        .args(["timer", &alice_id, "off"])
        .assert()
        .success();
    support::json_lines(&alice, &["sync"]);
    assert_eq!(support::json(&alice, &["contact", "list"])["timer_secs"], 0);
}
