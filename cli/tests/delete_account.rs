//! `rankfile delete-account` through the binary against a relay process: it
//! asks for confirmation, deletes the account at the relay (nobody can fetch
//! its keys any more), keeps the home readable, and the home never connects
//! (and so never registers the account) again.

mod support;

use predicates::prelude::*;
use support::{account_id, init, rankfile, Relay};

#[test]
fn delete_account_removes_it_from_the_relay_and_keeps_the_home() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = Relay::start(&dir.path().join("relay"));
    let (alice, bob, carol) = (
        dir.path().join("alice"),
        dir.path().join("bob"),
        dir.path().join("carol"),
    );
    for home in [&alice, &bob, &carol] {
        init(home, &relay);
    }
    let alice_id = account_id(&alice);
    // Alice's first connection registers her and publishes her keys.
    rankfile(&alice).arg("sync").assert().success();
    rankfile(&bob)
        .args(["contact", "add", "alice", &alice_id])
        .assert()
        .success();

    // No terminal and no --yes: nothing happens.
    rankfile(&alice)
        .arg("delete-account")
        .write_stdin("")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("confirmation"));
    rankfile(&alice).arg("sync").assert().success();

    rankfile(&alice)
        .args(["delete-account", "--yes"])
        .assert()
        .success()
        .stdout(predicate::str::contains("account deleted"));
    // The relay no longer knows her: her keys cannot be fetched.
    rankfile(&carol)
        .args(["contact", "add", "alice", &alice_id])
        .assert()
        .code(4)
        .stderr(predicate::str::contains("NOT_FOUND"));
    // Her home stays readable, and will not log in (which would register
    // the account again).
    rankfile(&alice).arg("id").assert().success();
    rankfile(&alice)
        .arg("sync")
        .assert()
        .failure()
        .stderr(predicate::str::contains("deleted at the relay"));
    rankfile(&carol)
        .args(["contact", "add", "alice", &alice_id])
        .assert()
        .code(4);
}
