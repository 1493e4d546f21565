//! Committees and channels through the `rankfile` binary and a relay process:
//! an organizer founds a committee, members come in, a channel carries posts
//! both ways, a removed member reads nothing posted after the removal, and a
//! role change reaches the others. Each command is its own process, so each
//! one must receive what waits for it and send what it made before exiting.

mod support;

use predicates::prelude::*;
use support::{account_id, init, json, json_lines, rankfile, Relay};

/// The bodies of a channel's history as `home` sees it (after syncing).
fn bodies(home: &std::path::Path, channel: &str) -> Vec<String> {
    json_lines(home, &["channel", "history", channel])
        .iter()
        .map(|m| m["body"].as_str().expect("body").to_string())
        .collect()
}

/// Each member's role in `home`'s view of the committee, by account ID.
fn roles(home: &std::path::Path, committee: &str) -> Vec<(String, String)> {
    let view = json(home, &["committee", "members", committee]);
    let mut roles: Vec<(String, String)> = view["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| {
            (
                m["account_id"].as_str().expect("id").to_string(),
                m["role"].as_str().expect("role").to_string(),
            )
        })
        .collect();
    roles.sort();
    roles
}

#[test]
fn a_committee_discusses_in_a_channel_and_removes_an_infiltrator() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = Relay::start(&dir.path().join("relay"));
    let [ann, bob, carol] = ["ann", "bob", "carol"].map(|n| dir.path().join(n));
    for home in [&ann, &bob, &carol] {
        init(home, &relay);
    }
    let (ann_id, bob_id, carol_id) = (account_id(&ann), account_id(&bob), account_id(&carol));
    for (name, id) in [("bob", &bob_id), ("carol", &carol_id)] {
        rankfile(&ann)
            .args(["contact", "add", name, id])
            .assert()
            .success();
    }

    // Founding needs no network; the committee is named by its name or ID prefix.
    let founded = json(
        &ann,
        &["committee", "create", "Depot", "--workplace", "North depot"],
    );
    let short = founded["short"].as_str().expect("short ID").to_string();
    assert_eq!(short.len(), 8);
    assert!(founded["committee_id"]
        .as_str()
        .expect("ID")
        .starts_with(&short));
    for member in ["bob", "carol"] {
        rankfile(&ann)
            .args(["committee", "add", "depot", member])
            .assert()
            .success()
            .stdout(predicate::str::contains(format!("added {member}")));
    }
    rankfile(&ann)
        .args(["committee", "add", "depot", "nobody"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no contact named `nobody`"));

    // Bob's device learns of the committee when it receives its mailbox.
    let expected = {
        let mut r = vec![
            (ann_id.clone(), "organizer".to_string()),
            (bob_id.clone(), "member".to_string()),
            (carol_id.clone(), "member".to_string()),
        ];
        r.sort();
        r
    };
    assert_eq!(roles(&bob, &short), expected);
    assert_eq!(roles(&ann, "Depot"), expected);
    rankfile(&carol).arg("sync").assert().success().stdout(
        predicate::str::contains("you were added to committee Depot")
            .and(predicate::str::contains("synced")),
    );
    // Their replies carry their access keys, which sealed channel posts need.
    for home in [&bob, &carol] {
        rankfile(home)
            .args(["send", &ann_id, "In. Count me for Thursday."])
            .assert()
            .success();
    }

    // A discussion channel; members find it as Depot/discussion.
    let made = json(&ann, &["channel", "create", "Depot"]);
    let channel = made["short"].as_str().expect("channel").to_string();
    assert_eq!(made["kind"], "discussion");
    rankfile(&ann)
        .args([
            "channel",
            "send",
            &channel,
            "Mass meeting Thursday 18:00, canteen.",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("posted in Depot/discussion"));
    assert_eq!(
        bodies(&bob, "depot/discussion"),
        ["Mass meeting Thursday 18:00, canteen."]
    );
    assert_eq!(
        bodies(&carol, &channel[..6]),
        ["Mass meeting Thursday 18:00, canteen."]
    );
    let history = json_lines(&bob, &["channel", "history", &channel, "--offline"]);
    assert_eq!(history[0]["from"], ann_id.as_str());
    assert_eq!(history[0]["name"], ann_id[..15].to_string());

    // Carol is found passing notes to management: removed.
    rankfile(&ann)
        .args(["committee", "remove", &short, "carol"])
        .assert()
        .success()
        .stdout(predicate::str::contains("removed carol"));
    rankfile(&ann)
        .args([
            "channel",
            "send",
            "Depot/discussion",
            "Strike vote: Friday.",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("to 1 member,"));
    rankfile(&bob)
        .args(["channel", "send", "Depot/discussion", "Night shift is in."])
        .assert()
        .success();
    assert_eq!(
        bodies(&ann, &channel),
        [
            "Mass meeting Thursday 18:00, canteen.",
            "Strike vote: Friday.",
            "Night shift is in."
        ]
    );
    assert_eq!(
        bodies(&bob, &channel),
        [
            "Mass meeting Thursday 18:00, canteen.",
            "Strike vote: Friday.",
            "Night shift is in."
        ]
    );
    // The removed member reads nothing posted after the removal, and knows it
    // is out.
    assert_eq!(
        bodies(&carol, &channel),
        ["Mass meeting Thursday 18:00, canteen."]
    );
    let found = |home, words: &[&str]| -> Vec<String> {
        let mut args = vec!["channel", "search", "Depot/discussion"];
        args.extend_from_slice(words);
        json_lines(home, &args)
            .iter()
            .map(|m| m["body"].as_str().expect("body").to_string())
            .collect()
    };
    assert_eq!(found(&bob, &["STRIKE", "fri"]), ["Strike vote: Friday."]);
    assert_eq!(
        found(&bob, &["shift"]),
        ["Night shift is in."],
        "only bob's own post says shift"
    );
    assert!(found(&carol, &["strike"]).is_empty());
    let carols_view = json(&carol, &["committee", "members", "Depot"]);
    assert_eq!(carols_view["committee"]["role"], serde_json::Value::Null);
    assert_eq!(carols_view["members"].as_array().expect("members").len(), 2);
    rankfile(&carol)
        .args(["channel", "send", "Depot/discussion", "let me back in"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("not a member"));

    // Bob is elected delegate; his device sees it. A member may not change roles.
    rankfile(&ann)
        .args(["committee", "role", "Depot", &bob_id[..12], "delegate"])
        .assert()
        .success()
        .stdout(predicate::str::contains("is now delegate"));
    let bobs = roles(&bob, "Depot");
    assert!(
        bobs.contains(&(bob_id.clone(), "delegate".into())),
        "{bobs:?}"
    );
    rankfile(&bob)
        .args(["committee", "role", "Depot", &ann_id, "member"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("not an organizer"));
}

#[test]
fn names_that_do_not_fit_are_usage_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    rankfile(&home).arg("init").assert().success();
    let first = json(&home, &["committee", "create", "Depot"])["short"]
        .as_str()
        .expect("short")
        .to_string();
    json(&home, &["committee", "create", "depot"]);
    let listed = json_lines(&home, &["committee", "list"]);
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|c| c["role"] == "organizer"));
    // Two committees answer to the name: the error lists their IDs.
    rankfile(&home)
        .args(["committee", "members", "DEPOT", "--offline"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(&first));
    rankfile(&home)
        .args(["committee", "members", &first, "--offline"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Depot"));
    rankfile(&home)
        .args(["channel", "history", "depot/discussion", "--offline"])
        .assert()
        .code(2);
    rankfile(&home)
        .args([
            "channel",
            "history",
            &format!("{first}/discussion"),
            "--offline",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no discussion channel yet"));
}
