//! `rankfile demo` runs to the end and says so on its last line; with
//! `--data DIR` it keeps every database there.

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
    assert_eq!(last, "demo ok: phones=4 messages=14 lost=0");
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
    assert_eq!(
        last_line(&out.stdout),
        "demo ok: phones=6 messages=22 lost=0"
    );
    assert!(dir.path().join("relay").join("relay.db").exists());
    for i in 0..6 {
        assert!(dir.path().join(format!("phone-{i:03}.db")).exists());
    }
}
