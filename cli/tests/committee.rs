//! Committees and channels through the `rankfile` binary and a relay process:
//! an organizer founds a committee, one member joins from an invite link (the
//! organizer's device admits him), another is added as a contact, a used-up
//! invite is refused; a channel carries posts both ways and is searched; a
//! removed member reads nothing posted after the removal, and a role change
//! reaches the others. Each command is its own process, so each
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

fn sorted(mut v: Vec<(String, String)>) -> Vec<(String, String)> {
    v.sort();
    v
}

#[test]
fn a_committee_discusses_in_a_channel_and_removes_an_infiltrator() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = Relay::start(&dir.path().join("relay"));
    let [ann, bob, carol, dave] = ["ann", "bob", "carol", "dave"].map(|n| dir.path().join(n));
    for home in [&ann, &bob, &carol, &dave] {
        init(home, &relay);
    }
    let (ann_id, bob_id, carol_id) = (account_id(&ann), account_id(&bob), account_id(&carol));
    rankfile(&ann)
        .args(["contact", "add", "carol", &carol_id])
        .assert()
        .success();

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

    // Bob joins from an invite for one person; Ann's device admits him when
    // it next receives its mailbox.
    let invite = json(&ann, &["committee", "invite", "depot", "--uses", "1"]);
    let link = invite["link"].as_str().expect("link").to_string();
    assert!(link.starts_with("rankfile://join/"), "{link}");
    rankfile(&bob)
        .args(["committee", "join", "rankfile://join/not-a-token"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not an invite link"));
    rankfile(&bob)
        .args(["committee", "join", &link])
        .assert()
        .success()
        .stdout(predicate::str::contains("asked to join committee"));
    let waiting = json_lines(&bob, &["committee", "list"]);
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    assert_eq!(waiting[0]["pending"], true);
    assert_eq!(waiting[0]["short"], short.as_str());
    rankfile(&ann)
        .arg("sync")
        .assert()
        .success()
        .stdout(predicate::str::contains("admitted").and(predicate::str::contains(&bob_id)));
    // Bob's device learns it is in when it receives its mailbox.
    assert_eq!(
        roles(&bob, &short),
        sorted(vec![
            (ann_id.clone(), "organizer".into()),
            (bob_id.clone(), "member".into()),
        ])
    );
    let listed = json_lines(&bob, &["committee", "list"]);
    assert_eq!(listed.len(), 1, "no longer pending: {listed:?}");
    assert_eq!(listed[0]["name"], "Depot");

    // The invite is used up: Dave's request is refused by Ann's device, and
    // Dave, waiting for an answer that does not come, gets exit code 7.
    rankfile(&dave)
        .args(["committee", "join", &link, "--wait", "2"])
        .assert()
        .code(7)
        .stderr(predicate::str::contains("request stands"));
    rankfile(&ann)
        .arg("sync")
        .assert()
        .success()
        .stdout(predicate::str::contains("join refused"));

    // Carol, a contact of Ann's, is added directly.
    rankfile(&ann)
        .args(["committee", "add", "depot", "carol"])
        .assert()
        .success()
        .stdout(predicate::str::contains("added carol"));
    rankfile(&ann)
        .args(["committee", "add", "depot", "nobody"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no contact named `nobody`"));
    rankfile(&carol).arg("sync").assert().success().stdout(
        predicate::str::contains("you were added to committee Depot")
            .and(predicate::str::contains("synced")),
    );
    // Her reply carries her access key, which sealed channel posts need (a
    // joiner's request carried it already).
    rankfile(&carol)
        .args(["send", &ann_id, "In. Count me for Thursday."])
        .assert()
        .success();
    let expected = sorted(vec![
        (ann_id.clone(), "organizer".into()),
        (bob_id.clone(), "member".into()),
        (carol_id.clone(), "member".into()),
    ]);
    assert_eq!(roles(&ann, "Depot"), expected);
    assert_eq!(roles(&bob, "Depot"), expected);

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
    // `sync` prints what arrived, as `watch` would.
    let synced = json_lines(&carol, &["sync"]);
    let post = synced
        .iter()
        .find(|e| e["type"] == "channel_message")
        .expect("the post among what carol's sync printed");
    assert_eq!(post["body"], "Mass meeting Thursday 18:00, canteen.");
    assert_eq!(post["from"], ann_id.as_str());
    assert_eq!(synced.last().expect("lines")["type"], "synced");
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

#[test]
fn a_revoked_invite_admits_nobody() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = Relay::start(&dir.path().join("relay"));
    let [ann, bob] = ["ann", "bob"].map(|n| dir.path().join(n));
    for home in [&ann, &bob] {
        init(home, &relay);
    }
    json(&ann, &["committee", "create", "Depot"]);
    let invite = json(&ann, &["committee", "invite", "depot", "--uses", "5"]);
    let link = invite["link"].as_str().expect("link").to_string();
    let invite_id = invite["invite_id"].as_str().expect("invite ID").to_string();
    // `committee members` lists the open invite by the ID the revoke takes.
    let view = json(&ann, &["committee", "members", "depot", "--offline"]);
    assert_eq!(
        view["invites"][0]["invite_id"],
        invite_id.as_str(),
        "{view}"
    );
    assert_eq!(view["invites"][0]["revoked"], false);
    rankfile(&ann)
        .args(["committee", "revoke", "depot", "zzzz"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no invite"));
    rankfile(&ann)
        .args(["committee", "revoke", "depot", &invite_id[..6]])
        .assert()
        .success()
        .stdout(predicate::str::contains("nobody is admitted from it"));
    let view = json(&ann, &["committee", "members", "depot", "--offline"]);
    assert_eq!(view["invites"][0]["revoked"], true, "{view}");
    rankfile(&ann)
        .args(["committee", "revoke", "depot", &invite_id[..6]])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("already withdrawn"));
    // Bob asks with the withdrawn link; Ann's device refuses him.
    rankfile(&bob)
        .args(["committee", "join", &link])
        .assert()
        .success();
    rankfile(&ann)
        .arg("sync")
        .assert()
        .success()
        .stdout(predicate::str::contains("join refused"));
    let members = json(&ann, &["committee", "members", "depot", "--offline"]);
    assert_eq!(members["members"].as_array().map(Vec::len), Some(1));
}
