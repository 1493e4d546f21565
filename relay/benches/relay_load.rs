//! Relay load benchmark: the relay runs as its own process (the `rankfile-relay`
//! binary), load comes from worker processes (this executable re-run with a
//! hidden `worker` argument), all on loopback.
//!
//! Measures (1) the relay's RSS growth per authenticated idle connection at
//! 10,000 connections, and (2) durable end-to-end throughput: 1 KiB opaque
//! messages from 100 senders to 100 receivers, each stored (fsync), delivered
//! and acknowledged. Last line: `relay_load idle_kib_per_conn=X msgs_per_s=Y`.
//!
//! Sizes can be changed with RELAY_LOAD_IDLE (connections), RELAY_LOAD_PAIRS
//! (sender/receiver pairs) and RELAY_LOAD_MSGS (messages per sender).
//!
//! `-- --backend postgres --nodes N`: the same workload through N relay
//! processes on one PostgreSQL server (started for the run, in a temporary
//! directory; or RELAY_LOAD_POSTGRES names a database), each receiver on
//! another node than its sender. Last line then
//! `relay_load backend=postgres nodes=N idle_kib_per_conn=X msgs_per_s=Y`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{FutureExt, SinkExt, StreamExt};
use prost::Message as _;
use rankfile_proto::v1::{self as pb, client_frame::Body as In, server_frame::Body as Out};
use support::{Client, Identity};
use tokio_tungstenite::tungstenite::Message;

/// Load worker processes (each under its own 20,000-file limit).
const WORKERS: usize = 2;
/// Unacknowledged sends a sender keeps in flight.
const SEND_WINDOW: usize = 64;
/// Payload size.
const PAYLOAD: usize = 1024;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("worker") => worker(&args[2..]),
        // `cargo bench` passes `--bench`; anything else (e.g. a filter) runs it too.
        _ => orchestrate(),
    }
}

// ---- the orchestrator

struct RelayProcess {
    child: Child,
    addr: SocketAddr,
    fingerprint: String,
}

impl RelayProcess {
    fn start(data: &std::path::Path, database: Option<&str>) -> RelayProcess {
        let mut command = Command::new(relay_binary());
        if let Some(url) = database {
            command.args(["--database", url]);
        }
        let mut child = command
            .args([
                "--bind",
                "127.0.0.1:0",
                "--max-connections",
                "30000",
                // One loopback address plays every device, and the senders
                // send identified: the per-address and per-sender abuse
                // limits would measure themselves, not the relay.
                "--registration-burst",
                "4294967295",
                "--anonymous-per-address",
                "4294967295",
                "--identified-send-burst",
                "4294967295",
                "--unaccepted-quota",
                "18446744073709551615",
                "--data-dir",
            ])
            .arg(data)
            .arg("--log")
            .arg(std::env::var("RELAY_LOAD_LOG").unwrap_or_else(|_| "warn".into()))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn rankfile-relay");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("startup line");
        // `rankfile-relay listening on <addr> fingerprint <hex>`
        let words: Vec<&str> = line.split_whitespace().collect();
        assert!(
            words.len() == 6 && words[1] == "listening",
            "unexpected startup line {line:?}"
        );
        RelayProcess {
            child,
            addr: words[3].parse().expect("addr"),
            fingerprint: words[5].to_owned(),
        }
    }

    fn rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The relay binary: next to this bench's `deps/` directory, where cargo puts it.
fn relay_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let bin = dir.join("rankfile-relay");
    assert!(
        bin.exists(),
        "build the relay binary first: {} is missing",
        bin.display()
    );
    bin
}

struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Worker {
    fn spawn(args: &[String]) -> Worker {
        let mut child = Command::new(std::env::current_exe().expect("exe"))
            .arg("worker")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn worker");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        Worker {
            child,
            stdin,
            stdout,
        }
    }

    fn expect_line(&mut self, prefix: &str) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("worker line");
        assert!(
            line.starts_with(prefix),
            "worker said {line:?}, expected {prefix}"
        );
        line
    }

    fn say(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").expect("tell worker");
        self.stdin.flush().expect("flush");
    }

    fn finish(mut self) {
        drop(self.stdin);
        let _ = self.child.wait();
    }
}

/// `--backend postgres` and `--nodes N` from the command line.
fn backend() -> (bool, usize) {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let postgres = match value("--backend").as_deref() {
        None | Some("sqlite") => false,
        Some("postgres") => true,
        Some(other) => panic!("unknown backend {other}: sqlite or postgres"),
    };
    let nodes = value("--nodes").map_or(1, |n| n.parse().expect("--nodes N"));
    assert!(
        postgres || nodes == 1,
        "several nodes need --backend postgres"
    );
    (postgres, nodes.max(1))
}

fn orchestrate() {
    let idle = env_or("RELAY_LOAD_IDLE", 10_000);
    let pairs = env_or("RELAY_LOAD_PAIRS", 50);
    let msgs = env_or("RELAY_LOAD_MSGS", 2_000);
    let (postgres, nodes) = backend();
    let data = tempfile::tempdir().expect("tempdir");
    let mut server = None;
    let database = match (postgres, std::env::var("RELAY_LOAD_POSTGRES")) {
        (false, _) => None,
        (true, Ok(url)) => Some(url),
        (true, Err(_)) => {
            let s = support::postgres::OwnServer::launch();
            let url = s.url.clone();
            server = Some(s);
            let runtime = tokio::runtime::Runtime::new().expect("runtime");
            Some(runtime.block_on(support::postgres::fresh_database(&url)))
        }
    };
    // Every node shares the data directory (certificate, keys): one fingerprint.
    let relays: Vec<RelayProcess> = (0..nodes)
        .map(|_| RelayProcess::start(data.path(), database.as_deref()))
        .collect();
    let addr = relays
        .iter()
        .map(|r| r.addr.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let fp = relays[0].fingerprint.clone();
    let rss = |relays: &[RelayProcess]| relays.iter().map(RelayProcess::rss_kib).sum::<u64>();

    // (1) Idle connections.
    std::thread::sleep(Duration::from_millis(500));
    let before = rss(&relays);
    let mut workers: Vec<Worker> = (0..WORKERS)
        .map(|i| {
            let n = idle / WORKERS + usize::from(i < idle % WORKERS);
            Worker::spawn(&["idle".into(), addr.clone(), fp.clone(), n.to_string()])
        })
        .collect();
    for w in &mut workers {
        w.expect_line("ready");
    }
    std::thread::sleep(Duration::from_secs(2));
    let after = rss(&relays);
    let per_conn = (after.saturating_sub(before)) as f64 / idle.max(1) as f64;
    println!("idle: {idle} authenticated connections, relay RSS {before} KiB -> {after} KiB, {per_conn:.2} KiB each");
    for w in workers {
        w.finish();
    }
    std::thread::sleep(Duration::from_secs(1));

    // (2) Durable throughput: `pairs` senders per worker, 1 KiB payloads.
    let senders = pairs * WORKERS;
    let mut workers: Vec<Worker> = (0..WORKERS)
        .map(|_| {
            Worker::spawn(&[
                "throughput".into(),
                addr.clone(),
                fp.clone(),
                pairs.to_string(),
                msgs.to_string(),
            ])
        })
        .collect();
    for w in &mut workers {
        w.expect_line("ready");
    }
    let start = Instant::now();
    for w in &mut workers {
        w.say("go");
    }
    let mut total = 0u64;
    for w in &mut workers {
        let line = w.expect_line("done");
        total += line
            .split_whitespace()
            .nth(1)
            .and_then(|n| n.parse::<u64>().ok())
            .expect("count");
    }
    let elapsed = start.elapsed();
    for w in workers {
        w.finish();
    }
    let rate = total as f64 / elapsed.as_secs_f64();
    println!(
        "throughput: {senders} senders -> {senders} receivers, {total} messages of {PAYLOAD} B stored, delivered and acked in {:.2} s",
        elapsed.as_secs_f64()
    );
    for relay in relays {
        relay.stop();
    }
    drop(server);
    if postgres {
        println!("relay_load backend=postgres nodes={nodes} idle_kib_per_conn={per_conn:.2} msgs_per_s={rate:.0}");
    } else {
        println!("relay_load idle_kib_per_conn={per_conn:.2} msgs_per_s={rate:.0}");
    }
}

// ---- workers

fn worker(args: &[String]) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // The nodes' addresses, comma-separated.
    let addr: Vec<SocketAddr> = args[1]
        .split(',')
        .map(|a| a.parse().expect("addr"))
        .collect();
    let fp = args[2].clone();
    match args[0].as_str() {
        "idle" => runtime.block_on(idle_worker(addr, fp, args[3].parse().expect("count"))),
        "throughput" => runtime.block_on(throughput_worker(
            addr,
            fp,
            args[3].parse().expect("pairs"),
            args[4].parse().expect("messages"),
        )),
        other => panic!("unknown worker {other}"),
    }
}

fn wait_for_stdin_line() -> tokio::task::JoinHandle<()> {
    tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
    })
}

async fn idle_worker(addr: Vec<SocketAddr>, fp: String, count: usize) {
    // Connect in waves so the relay's accept queue is not overrun.
    let mut clients = Vec::with_capacity(count);
    let wave = 100;
    let mut started = 0;
    while started < count {
        let n = wave.min(count - started);
        let mut tasks = Vec::with_capacity(n);
        for i in 0..n {
            let fp = fp.clone();
            let addr = addr[(started + i) % addr.len()];
            tasks.push(tokio::spawn(async move {
                let mut c = Client::connect(addr, &fp).await;
                c.auth(&Identity::new(1)).await;
                c
            }));
        }
        for t in tasks {
            clients.push(t.await.expect("connect"));
        }
        started += n;
    }
    // Keep reading (answers the relay's keepalive pings) until told to stop.
    let mut readers = Vec::with_capacity(clients.len());
    for mut c in clients {
        readers.push(tokio::spawn(async move {
            while let Some(Ok(_)) = c.ws.next().await {}
        }));
    }
    println!("ready");
    let _ = std::io::stdout().flush();
    let _ = wait_for_stdin_line().await;
    for r in readers {
        r.abort();
    }
}

fn frame(request_id: u64, body: In) -> Message {
    Message::binary(
        pb::ClientFrame {
            version: 1,
            request_id,
            body: Some(body),
        }
        .encode_to_vec(),
    )
}

async fn throughput_worker(addr: Vec<SocketAddr>, fp: String, pairs: usize, msgs: usize) {
    let mut receivers = Vec::new();
    let mut senders = Vec::new();
    for i in 0..pairs {
        let to = Identity::new(1);
        // With several nodes, each receiver on another node than its sender.
        let mut r = Client::connect(addr[i % addr.len()], &fp).await;
        r.auth(&to).await;
        let mut s = Client::connect(addr[(i + 1) % addr.len()], &fp).await;
        s.auth(&Identity::new(1)).await;
        receivers.push(r);
        senders.push((s, to.account));
    }
    println!("ready");
    let _ = std::io::stdout().flush();
    let _ = wait_for_stdin_line().await;

    let mut tasks = Vec::new();
    for r in receivers {
        tasks.push(tokio::spawn(receive(r, msgs)));
    }
    for (s, to) in senders {
        tasks.push(tokio::spawn(send(s, to, msgs)));
    }
    let mut delivered = 0u64;
    for t in tasks {
        delivered += t.await.expect("task");
    }
    println!("done {delivered}");
    let _ = std::io::stdout().flush();
    let _ = wait_for_stdin_line().await;
}

/// Sends `msgs` messages with a window of unanswered sends; returns 0.
async fn send(mut c: Client, to: [u8; 20], msgs: usize) -> u64 {
    let payload: Vec<u8> = (0..PAYLOAD).map(|i| (i * 31 % 256) as u8).collect();
    let (mut sent, mut answered) = (0usize, 0usize);
    while answered < msgs {
        while sent < msgs && sent - answered < SEND_WINDOW {
            sent += 1;
            let body = In::Send(pb::SendMessage {
                recipient_account_id: to.to_vec(),
                recipient_device_id: 1,
                envelope: payload.clone(),
                priority: 0,
            });
            c.ws.feed(frame(sent as u64, body)).await.expect("send");
        }
        c.ws.flush().await.expect("flush");
        let mut next = c.ws.next().await;
        loop {
            match next {
                Some(Ok(Message::Binary(b))) => {
                    match pb::ServerFrame::decode(&b[..]).expect("frame").body {
                        Some(Out::SendResult(_)) => answered += 1,
                        Some(Out::QueueEmpty(_)) => {}
                        other => panic!("sender got {other:?}"),
                    }
                }
                Some(Ok(_)) => {}
                other => panic!("sender connection ended: {other:?}"),
            }
            match c.ws.next().now_or_never() {
                Some(m) => next = m,
                None => break,
            }
        }
    }
    0
}

/// Receives and acknowledges `msgs` messages; returns how many.
async fn receive(mut c: Client, msgs: usize) -> u64 {
    let mut got = 0usize;
    let mut ids = Vec::new();
    while got < msgs {
        let mut next = c.ws.next().await;
        loop {
            match next {
                Some(Ok(Message::Binary(b))) => {
                    match pb::ServerFrame::decode(&b[..]).expect("frame").body {
                        Some(Out::Deliver(d)) => {
                            assert_eq!(d.envelope.len(), PAYLOAD);
                            ids.push(d.id);
                        }
                        Some(Out::QueueEmpty(_)) => {}
                        other => panic!("receiver got {other:?}"),
                    }
                }
                Some(Ok(_)) => {}
                other => panic!("receiver connection ended: {other:?}"),
            }
            match c.ws.next().now_or_never() {
                Some(m) => next = m,
                None => break,
            }
        }
        got += ids.len();
        c.ws.send(frame(
            0,
            In::Ack(pb::Ack {
                ids: std::mem::take(&mut ids),
            }),
        ))
        .await
        .expect("ack");
    }
    got as u64
}
