//! A relay node SIGKILLed under load, with another node on the same
//! PostgreSQL database: nothing either node acknowledged is lost, no send is
//! stored twice, and the dead node's phones log in to the live one and get
//! everything. The killed node is a real process (the relay binary); the
//! other runs in this process; both share one data directory.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rankfile_relay::{Config, DatabaseUrl};
use support::load::{self, Node, Received, Sent};
use support::postgres as pg;
use support::*;

/// The relay binary on the database, in `dir`; its address from its startup line.
fn spawn_node(dir: &std::path::Path, url: &str) -> (Child, Node) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rankfile-relay"))
        .arg("--data-dir")
        .arg(dir)
        .args(["--database", url, "--bind", "127.0.0.1:0"])
        .args([
            "--registration-burst",
            "1000000",
            "--identified-send-burst",
            "1000000",
        ])
        .args([
            "--anonymous-per-address",
            "1000000",
            "--push-decoys-per-day",
            "0",
        ])
        .args(["--disk-reserve-bytes", "0", "--log", "warn"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the relay binary");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("startup line");
    // "rankfile-relay listening on ADDR fingerprint FP"
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words.get(2), Some(&"on"), "startup line: {line}");
    let addr = words[3].parse().expect("address");
    let fingerprint = words[5].to_owned();
    (child, Node { addr, fingerprint })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_under_load_loses_nothing_it_acknowledged() {
    let Some(cluster) = pg::cluster("node_killed") else {
        return;
    };
    let url = pg::fresh_database(&cluster).await;
    let dir = tempfile::tempdir().expect("tempdir");
    // The in-process node first: it makes the shared certificate and keys.
    let mut config = Config::local(dir.path());
    config.database = Some(DatabaseUrl(url.clone()));
    let live = rankfile_relay::start(config).await.expect("live node");
    let live = Node {
        addr: live.local_addr(),
        fingerprint: live.fingerprint().to_owned(),
    };
    let (mut child, doomed) = spawn_node(dir.path(), &url);
    assert_eq!(
        doomed.fingerprint, live.fingerprint,
        "one certificate for all nodes"
    );

    let receivers: Vec<Identity> = (0..6).map(|_| Identity::new(1)).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let mut got: Vec<Received> = Vec::new();
    let mut tasks = Vec::new();
    for r in &receivers {
        // Registered (first login) before anyone sends to them.
        Client::connect(doomed.addr, &doomed.fingerprint)
            .await
            .auth(r)
            .await;
        let received = Received::default();
        got.push(received.clone());
        let order = vec![doomed.clone(), live.clone()];
        tasks.push(tokio::spawn(load::receive(
            order,
            load::same(r),
            received,
            stop.clone(),
        )));
    }
    // Senders on both nodes: those on the doomed one lose their connection
    // mid-send and carry on through the live one.
    let mut sent: Vec<Arc<Sent>> = Vec::new();
    for s in 0..6 {
        let order = match s % 2 {
            0 => vec![doomed.clone(), live.clone()],
            _ => vec![live.clone(), doomed.clone()],
        };
        let record = Arc::new(Sent::default());
        sent.push(record.clone());
        let to: Vec<Identity> = receivers.iter().map(load::same).collect();
        tasks.push(tokio::spawn(load::send(
            order,
            Identity::new(1),
            to,
            format!("s{s}"),
            record,
            stop.clone(),
        )));
    }
    let acknowledged = |sent: &[Arc<Sent>]| -> usize {
        sent.iter()
            .map(|s| s.acknowledged.lock().expect("lock").len())
            .sum()
    };
    wait_until(60, "load before the kill", || acknowledged(&sent) >= 300).await;
    child.kill().expect("SIGKILL the node");
    child.wait().expect("reaped");
    let at_kill = acknowledged(&sent);
    wait_until(60, "load after the kill", || {
        acknowledged(&sent) >= at_kill + 300
    })
    .await;
    stop.store(true, Ordering::Release);
    for t in tasks {
        let _ = t.await;
    }

    // Everything acknowledged reaches its phone: the receivers stopped, so
    // read what is left through a last login each.
    let stop_late = Arc::new(AtomicBool::new(false));
    let mut late = Vec::new();
    for (i, r) in receivers.iter().enumerate() {
        late.push(tokio::spawn(load::receive(
            vec![live.clone()],
            load::same(r),
            got[i].clone(),
            stop_late.clone(),
        )));
    }
    let expected = |i: usize| load::acknowledged_for(&sent, i);
    let all_in = || {
        (0..receivers.len())
            .all(|i| load::check(&got[i].lock().expect("lock"), &expected(i)).is_ok())
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !all_in() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop_late.store(true, Ordering::Release);
    for t in late {
        let _ = t.await;
    }
    for (i, g) in got.iter().enumerate() {
        let mail = g.lock().expect("lock").clone();
        if let Err(e) = load::check(&mail, &expected(i)) {
            panic!("receiver {i}: {e}");
        }
    }
    let lost: u64 = sent.iter().map(|s| s.lost.load(Ordering::Relaxed)).sum();
    assert!(
        lost >= 1,
        "the kill cut some send short: the test saw the failure it is about"
    );
}

async fn wait_until(secs: u64, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
