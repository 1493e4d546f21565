//! One message to a committee channel of N members (500 by default) on one
//! relay on loopback, each member a real client with its own encrypted store.
//!
//! Measures the sender's cost (encrypting once under its sender key, sealing
//! for every member in one multi-recipient upload, committing) and the latency
//! from send to decrypted-and-stored on every member. The simulated phones'
//! stores live on a RAM-backed directory when one exists (`/dev/shm`): each
//! real phone has its own disk, and 500 fsyncs on one shared disk would measure
//! this machine's disk queue, not the system.
//!
//! Last line: `channel_send members=N sender_ms=S p50_ms=A p99_ms=B`.
//! `RANKFILE_BENCH_MEMBERS` overrides N; `RANKFILE_BENCH_ROUNDS` the number of
//! messages (default 5; the figures pool every delivery of every round).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rankfile_core::transport::{Client, ClientEvent, ConnectionState};
use rankfile_core::{AccountId, DatabaseKey, Event};
use rankfile_relay::Config;
use rankfile_tests::relay;
use uuid::Uuid;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn store_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(d) = tempfile::tempdir_in(shm) {
            return d;
        }
    }
    tempfile::tempdir().expect("tempdir")
}

async fn wait_until<F, Fut>(secs: u64, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out: {what}");
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn start_phone(
    dir: &Path,
    i: usize,
    relay: &rankfile_relay::RelayHandle,
) -> (Client, AccountId) {
    let home: PathBuf = dir.join(format!("phone-{i}"));
    let client =
        Client::open(&home, &DatabaseKey::generate(), Some(relay::address(relay))).expect("client");
    let id = client.id().await.expect("id");
    (client, id)
}

fn main() {
    let members = env_usize("RANKFILE_BENCH_MEMBERS", 500);
    let rounds = env_usize("RANKFILE_BENCH_ROUNDS", 5);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(members, rounds));
}

async fn run(members: usize, rounds: usize) {
    let relay_dir = tempfile::tempdir().expect("relay dir");
    let stores = store_dir();
    let mut config = Config::local(relay_dir.path());
    // One organizer fetches every member's bundle at once.
    let fetches = u32::try_from(members + 10).unwrap_or(u32::MAX);
    config.fetch_burst = config.fetch_burst.max(fetches);
    config.fetch_per_minute = config.fetch_per_minute.max(fetches);
    let relay = rankfile_relay::start(config).await.expect("relay");

    let t0 = Instant::now();
    let (organizer, organizer_id) = start_phone(stores.path(), 0, &relay).await;
    let mut phones = Vec::with_capacity(members);
    for i in 1..=members {
        phones.push(start_phone(stores.path(), i, &relay).await);
    }
    let all: Vec<&Client> = std::iter::once(&organizer)
        .chain(phones.iter().map(|(c, _)| c))
        .collect();
    for c in &all {
        wait_until(120, "every phone logs in", || async {
            matches!(c.connection_state(), ConnectionState::Connected { .. })
        })
        .await;
    }
    eprintln!("{members} phones up in {:.1} s", t0.elapsed().as_secs_f64());

    // Sessions and access keys both ways: the organizer writes to everyone, and
    // everyone answers.
    for (_, id) in &phones {
        organizer
            .add_contact_from_relay("member".into(), *id)
            .await
            .expect("bundle");
        organizer
            .send_text(*id, "welcome".into())
            .await
            .expect("send");
    }
    for (c, _) in &phones {
        let o = organizer_id;
        wait_until(120, "welcome arrives", || async {
            c.history(o, None, 1)
                .await
                .map(|h| !h.is_empty())
                .unwrap_or(false)
        })
        .await;
        c.send_text(organizer_id, "here".into())
            .await
            .expect("reply");
    }
    let ids: Vec<AccountId> = phones.iter().map(|(_, id)| *id).collect();
    let channel = *Uuid::new_v4().as_bytes();
    let distribution = Uuid::new_v4();
    wait_until(120, "every reply arrives", || async {
        let n = ids.len();
        organizer
            .message_count()
            .await
            .is_ok_and(|c| c as usize >= 2 * n)
    })
    .await;
    organizer
        .distribute_sender_key(ids.clone(), channel, distribution)
        .await
        .expect("sender keys");
    wait_until(120, "sender keys reach the relay", || async {
        organizer.outbox_len().await.is_ok_and(|n| n == 0)
    })
    .await;
    // Give the members a moment to commit the sender keys.
    tokio::time::sleep(Duration::from_millis(500)).await;
    eprintln!(
        "committee of {members} set up in {:.1} s",
        t0.elapsed().as_secs_f64()
    );

    // Every member's arrival time, keyed by (round, member).
    let arrivals: Arc<Mutex<HashMap<(usize, AccountId), Instant>>> =
        Arc::new(Mutex::new(HashMap::new()));
    let round_of: Arc<Mutex<usize>> = Arc::new(Mutex::new(0));
    for (c, id) in &phones {
        let mut events = c.subscribe();
        let (arrivals, round_of, id) = (arrivals.clone(), round_of.clone(), *id);
        tokio::spawn(async move {
            while let Ok(e) = events.recv().await {
                if let ClientEvent::Core(Event::ChannelMessageStored { .. }) = e {
                    let now = Instant::now();
                    let round = round_of.lock().map(|r| *r).unwrap_or(0);
                    if let Ok(mut a) = arrivals.lock() {
                        a.insert((round, id), now);
                    }
                }
            }
        });
    }

    let mut sender_ms = Vec::new();
    let mut latencies = Vec::new();
    for round in 0..rounds {
        if let Ok(mut r) = round_of.lock() {
            *r = round;
        }
        let started = Instant::now();
        organizer
            .send_channel_text(
                channel,
                distribution,
                ids.clone(),
                "Emergency meeting: canteen, 14:00.".into(),
            )
            .await
            .expect("channel send");
        // Encrypting once, sealing for every member and committing: the
        // account thread's work for this message.
        sender_ms.push(started.elapsed().as_secs_f64() * 1e3);
        let want = members;
        wait_until(60, "every member stores the message", || {
            let arrivals = arrivals.clone();
            async move {
                arrivals
                    .lock()
                    .map(|a| a.keys().filter(|(r, _)| *r == round).count() >= want)
                    .unwrap_or(false)
            }
        })
        .await;
        if let Ok(a) = arrivals.lock() {
            for ((r, _), t) in a.iter() {
                if *r == round {
                    latencies.push(t.duration_since(started).as_secs_f64() * 1e3);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    latencies.sort_by(f64::total_cmp);
    sender_ms.sort_by(f64::total_cmp);
    let s = percentile(&sender_ms, 0.5);
    println!(
        "{rounds} messages to {members} members: sender {:.1} ms (median), delivery p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms over {} deliveries",
        s,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0),
        latencies.len()
    );
    println!(
        "channel_send members={members} sender_ms={s:.1} p50_ms={:.0} p99_ms={:.0}",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99)
    );
    drop(phones);
    drop(organizer);
    relay.shutdown().await;
}
