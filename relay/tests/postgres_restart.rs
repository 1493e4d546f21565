//! PostgreSQL restarted under load: while it is down the relay refuses sends
//! (an error answer, never a false acknowledgement), it recovers on its own
//! when the database is back (no relay restart), and every send it
//! acknowledged, before or after, reaches its phone once.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rankfile_relay::{Config, DatabaseUrl};
use support::load::{self, Node, Received, Sent};
use support::postgres as pg;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_rides_out_a_database_restart() {
    let Some(server) = pg::OwnServer::start("postgres_restart") else {
        return;
    };
    let url = pg::fresh_database(&server.url).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = Config::local(dir.path());
    config.database = Some(DatabaseUrl(url));
    let relay = rankfile_relay::start(config).await.expect("relay");
    let node = Node {
        addr: relay.local_addr(),
        fingerprint: relay.fingerprint().to_owned(),
    };
    let receivers: Vec<Identity> = (0..3).map(|_| Identity::new(1)).collect();
    for r in &receivers {
        Client::connect(node.addr, &node.fingerprint)
            .await
            .auth(r)
            .await;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let got: Vec<Received> = receivers.iter().map(|_| Received::default()).collect();
    let mut tasks = Vec::new();
    for (r, g) in receivers.iter().zip(&got) {
        tasks.push(tokio::spawn(load::receive(
            vec![node.clone()],
            load::same(r),
            g.clone(),
            stop.clone(),
        )));
    }
    let sent: Vec<Arc<Sent>> = (0..3).map(|_| Arc::new(Sent::default())).collect();
    for (i, s) in sent.iter().enumerate() {
        let to = receivers.iter().map(load::same).collect();
        tasks.push(tokio::spawn(load::send(
            vec![node.clone()],
            Identity::new(1),
            to,
            format!("s{i}"),
            s.clone(),
            stop.clone(),
        )));
    }
    let acked = || -> usize {
        sent.iter()
            .map(|s| s.acknowledged.lock().expect("lock").len())
            .sum()
    };
    let refused = || -> u64 { sent.iter().map(|s| s.refused.load(Ordering::Relaxed)).sum() };
    wait_until(60, "load before the restart", || acked() >= 100).await;

    server.stop();
    wait_until(60, "sends refused while the database is down", || {
        refused() >= 3
    })
    .await;
    let during = acked();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        acked(),
        during,
        "nothing is acknowledged while the database is down"
    );

    server.start_again();
    wait_until(60, "the relay serving again on its own", || {
        acked() >= during + 100
    })
    .await;
    stop.store(true, Ordering::Release);
    for t in tasks {
        let _ = t.await;
    }

    let expected = |i: usize| load::acknowledged_for(&sent, i);
    // What had not been delivered when the load stopped comes on a last login.
    let late_stop = Arc::new(AtomicBool::new(false));
    let late: Vec<_> = receivers
        .iter()
        .zip(&got)
        .map(|(r, g)| {
            tokio::spawn(load::receive(
                vec![node.clone()],
                load::same(r),
                g.clone(),
                late_stop.clone(),
            ))
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline
        && !(0..receivers.len())
            .all(|i| load::check(&got[i].lock().expect("lock"), &expected(i)).is_ok())
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    late_stop.store(true, Ordering::Release);
    for t in late {
        let _ = t.await;
    }
    for (i, g) in got.iter().enumerate() {
        if let Err(e) = load::check(&g.lock().expect("lock"), &expected(i)) {
            panic!("receiver {i}: {e}");
        }
    }
    relay.shutdown().await;
}

async fn wait_until(secs: u64, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
