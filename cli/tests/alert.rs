//! Alerts and links through the `rankfile` binary and a relay process: an
//! organizer's alert reaches a member's `sync`, the member answers, and the
//! organizer's `alert status` counts it; a member may not raise one; two
//! committees link through a council, and a network alert raised in one
//! reaches a member of the other through the council's delegates, whose
//! answer is counted back to the raiser per committee.

mod support;

use predicates::prelude::*;
use support::{account_id, init, json, json_lines, rankfile, Relay};

/// Founds `name` on `home` and adds `member` (by account ID) as a member;
/// returns the committee's whole ID.
fn committee_with(home: &std::path::Path, name: &str, member: &str) -> String {
    rankfile(home)
        .args(["contact", "add", "member", member])
        .assert()
        .success();
    let founded = json(home, &["committee", "create", name]);
    rankfile(home)
        .args(["committee", "add", name, member])
        .assert()
        .success();
    founded["committee_id"].as_str().expect("ID").to_string()
}

#[test]
fn an_alert_is_answered_and_counted_and_cascades_across_a_link() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = Relay::start(&dir.path().join("relay"));
    let [ann, bob, carol, dan] = ["ann", "bob", "carol", "dan"].map(|n| dir.path().join(n));
    for home in [&ann, &bob, &carol, &dan] {
        init(home, &relay);
    }
    let (ann_id, bob_id, carol_id, dan_id) = (
        account_id(&ann),
        account_id(&bob),
        account_id(&carol),
        account_id(&dan),
    );
    committee_with(&ann, "Depot", &bob_id);
    rankfile(&bob).arg("sync").assert().success();

    // Ann raises an emergency meeting; Bob's sync shows it prominently.
    let sent = json(
        &ann,
        &[
            "alert",
            "send",
            "depot",
            "Mass meeting now",
            "--place",
            "Canteen",
            "--in",
            "30",
        ],
    );
    assert_eq!(sent["recipients"], 1, "{sent}");
    let short = sent["short"].as_str().expect("short").to_string();
    rankfile(&bob).arg("sync").assert().success().stdout(
        predicate::str::contains("EMERGENCY MEETING")
            .and(predicate::str::contains("Mass meeting now"))
            .and(predicate::str::contains("at Canteen"))
            .and(predicate::str::contains(format!(
                "answer with: rankfile alert answer {short}"
            ))),
    );

    // A member may not raise an alert: plain words, exit code 8, nothing sent.
    rankfile(&bob)
        .args(["alert", "send", "depot", "Free pizza"])
        .assert()
        .code(8)
        .stderr(predicate::str::contains(
            "only organizers and delegates of committee",
        ));

    // Before Bob answers, Ann's status names him as waiting.
    let before = json(&ann, &["alert", "status", &short]);
    assert_eq!(before["answered"], 0, "{before}");
    assert_eq!(before["waiting"][0], bob_id.as_str());
    rankfile(&bob)
        .args(["alert", "answer", &short, "coming"])
        .assert()
        .success()
        .stdout(predicate::str::contains("answered coming"));
    let after = json(&ann, &["alert", "status", &short]);
    assert_eq!(after["counts"]["coming"], 1, "{after}");
    assert_eq!(after["answered"], 1);
    assert_eq!(after["recipients"], 1);
    assert_eq!(after["waiting"].as_array().map(Vec::len), Some(0));
    let mine = json_lines(&bob, &["alert", "list", "--offline"]);
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!(mine[0]["my_answer"], "coming");

    // Carol's warehouse committee, with Dan a member, links with Ann's depot:
    // Ann proposes (herself the depot's delegate), Carol accepts.
    let warehouse = committee_with(&carol, "Warehouse", &dan_id);
    rankfile(&dan).arg("sync").assert().success();
    rankfile(&ann)
        .args([
            "link",
            "propose",
            "depot",
            &warehouse,
            "--to",
            &carol_id,
            "--delegate",
            &ann_id,
            "--council",
            "North council",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("proposed"));
    // Only a delegate or organizer speaks for a committee in a council.
    rankfile(&ann)
        .args([
            "link",
            "propose",
            "depot",
            &warehouse,
            "--to",
            &carol_id,
            "--delegate",
            &bob_id,
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("must be delegates or organizers"));
    let proposals: Vec<serde_json::Value> = json_lines(&carol, &["link", "list"])
        .into_iter()
        .filter(|l| l["type"] == "link_proposal")
        .collect();
    // The refused one was never sent.
    assert_eq!(proposals.len(), 1, "{proposals:?}");
    assert_eq!(proposals[0]["council_name"], "North council");
    assert_eq!(proposals[0]["from"], ann_id.as_str());
    let proposal = proposals[0]["short"].as_str().expect("short").to_string();
    rankfile(&carol)
        .args(["link", "accept", &proposal, "--delegate", &carol_id])
        .assert()
        .success()
        .stdout(predicate::str::contains("North council"));
    let links = json_lines(&ann, &["link", "list"]);
    let linked: Vec<&serde_json::Value> = links.iter().filter(|l| l["type"] == "link").collect();
    assert_eq!(
        linked.len(),
        2,
        "depot and warehouse in the council: {links:?}"
    );
    assert!(linked.iter().all(|l| l["council"]
        .as_str()
        .is_some_and(|c| c.starts_with("North council"))));
    assert!(linked
        .iter()
        .any(|l| l["committee_id"] == warehouse.as_str()));

    // A network alert from Ann crosses the link: Carol's device, the
    // warehouse's delegate, passes it on to Dan when it receives it.
    let network = json(
        &ann,
        &[
            "alert",
            "send",
            "depot",
            "Raid at gate 3",
            "--kind",
            "rapid-response",
            "--network",
        ],
    );
    let raid = network["short"].as_str().expect("short").to_string();
    rankfile(&carol)
        .arg("sync")
        .assert()
        .success()
        .stdout(predicate::str::contains("Raid at gate 3"));
    rankfile(&dan).arg("sync").assert().success().stdout(
        predicate::str::contains("RAPID RESPONSE")
            .and(predicate::str::contains("Raid at gate 3"))
            .and(predicate::str::contains("network-wide")),
    );
    let dans = json_lines(&dan, &["alert", "list", "--offline"]);
    assert_eq!(dans.len(), 1, "once on Dan's phone: {dans:?}");
    assert_eq!(dans[0]["short"], raid.as_str());
    rankfile(&dan)
        .args(["alert", "answer", &raid, "safe"])
        .assert()
        .success();
    // Dan's answer goes to Carol's device, which delivered it to him.
    let carols = json(&carol, &["alert", "status", &raid]);
    assert_eq!(carols["counts"]["safe"], 1, "{carols}");
    // Carol's device sends the warehouse's count back to Ann's: Ann sees it
    // per committee, as a number (the names stay with Carol).
    let anns = json(&ann, &["alert", "status", &raid]);
    let committees = anns["committees"].as_array().expect("committees");
    let counted = committees
        .iter()
        .find(|c| c["committee_id"] == warehouse.as_str())
        .unwrap_or_else(|| panic!("the warehouse's count came back: {anns}"));
    assert_eq!(counted["counts"]["safe"], 1, "{anns}");
    assert_eq!(counted["not_answered"], 0, "{anns}");
    let depot = committees
        .iter()
        .find(|c| c["name"].as_str().is_some_and(|n| n.starts_with("Depot")))
        .expect("Ann's own committee");
    assert_eq!(depot["not_answered"], 1, "Bob has not answered: {anns}");
    assert!(
        !anns.to_string().contains(&dan_id),
        "no name from outside Ann's committee: {anns}"
    );
    rankfile(&ann)
        .args(["alert", "status", &raid])
        .assert()
        .success()
        .stdout(predicate::str::contains("per committee").and(predicate::str::contains("safe 1")));
}
