//! `rankfile demo` runs to the end and says so on its last line; with
//! `--data DIR` it keeps every database there; with two phones it leaves out
//! the committee chapter (which needs an organizer, a member and an
//! infiltrator) and says so.

use assert_cmd::Command;

fn last_line(stdout: &[u8]) -> String {
    String::from_utf8_lossy(stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn the_demo_ends_with_demo_ok() {
    let out = Command::cargo_bin("rankfile")
        .expect("binary")
        .arg("demo")
        .timeout(std::time::Duration::from_secs(300))
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = last_line(&out.stdout);
    assert!(last.starts_with("demo ok: phones="), "{last}");
    // 3 members join from the invite; 4 posts, the infiltrator removed, 2 more.
    assert_eq!(
        last,
        "demo ok: phones=4 messages=14 lost=0 joined=3 posts=6 removed_read=0 alerted=4 answered=4"
    );
}

#[test]
fn the_demo_keeps_its_databases_with_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::cargo_bin("rankfile")
        .expect("binary")
        .args(["demo", "--phones", "6", "--offline-messages", "5", "--data"])
        .arg(dir.path())
        .timeout(std::time::Duration::from_secs(300))
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // 5 first messages, 5 replies, 5 agendas, 5 to the offline phone, one to
    // member-1 meanwhile, one reply after catching up.
    // 5 members join; 6 posts before the removal, 2 after.
    assert_eq!(
        last_line(&out.stdout),
        "demo ok: phones=6 messages=22 lost=0 joined=5 posts=8 removed_read=0 alerted=6 answered=6"
    );
    assert!(dir.path().join("relay").join("relay.db").exists());
    for i in 0..6 {
        // Each phone's client directory holds its store.
        assert!(dir
            .path()
            .join(format!("phone-{i:03}"))
            .join(rankfile_core::transport::DATABASE_FILE)
            .exists());
    }
}

#[test]
fn two_phones_play_without_the_committee_chapter() {
    let out = Command::cargo_bin("rankfile")
        .expect("binary")
        .args(["demo", "--phones", "2"])
        .timeout(std::time::Duration::from_secs(300))
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("committee chapter skipped: it needs 3 phones"),
        "{stdout}"
    );
    // 1 first message, 1 reply, 1 agenda, 3 while offline, 1 reply after.
    assert_eq!(
        last_line(&out.stdout),
        "demo ok: phones=2 messages=7 lost=0"
    );
}
