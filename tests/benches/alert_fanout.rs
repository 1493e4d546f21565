//! An organizer's emergency-meeting alert cascading to every phone of 100
//! linked committees (10,000 phones by default), against the naive baseline:
//! the same alert sent as one sealed-sender message per recipient straight
//! from the organizer's phone.
//!
//! One relay runs in this process on loopback. The phones — each a real
//! client with its own SQLCipher store (on `/dev/shm`: each real phone has its
//! own disk) and its own connection — live in worker processes
//! (`rankfile-fanout-worker`, at most [`PHONES_PER_WORKER`] each: a process
//! may hold 20,000 open files, and a phone holds a connection and three store
//! files). The organizer who raises the alert is alone in a worker of its own,
//! so that process's CPU time is the sender's cost.
//!
//! Topology: committees of 100 (an organizer and 99 members); each
//! committee's organizer is its delegate to its regional council (10
//! committees each, founded by the first committee's organizer), and the
//! regional councils link into one top council (their delegates: the
//! founders). The alert comes from the organizer of committee 1, a plain
//! member of its regional council: it delivers into its committee and its
//! council, and every other delivery is a delegate's device forwarding it.
//!
//! Setting up is minutes of CPU (accounts, sessions, a log entry to every
//! member per member added), so it is kept under the store directory, keyed by
//! the scale, and reused by later runs; every run raises a fresh alert and
//! sends a fresh naive round.
//!
//! Measures, for both paths: the organizer process's CPU time from the send
//! until the relay holds every envelope, the envelope bytes it uploads, and
//! the time from the send to each phone's decrypted-and-stored event
//! (`AlertReceived`, or `MessageStored` for the naive text), on the shared
//! wall clock; and the CPU time every process of the bench (the workers'
//! phones, this one's relay) used from the send until the last phone stored
//! it, by their own accounting (`/proc/<pid>/stat`). Last line:
//! `alert_fanout devices=N sender_ms=S upload_kib=U p50_ms=A p99_ms=B
//! naive_sender_ms=NS naive_upload_kib=NU naive_p99_ms=NB machine_cpu_ms=M`,
//! `M` for the cascade: divided by the phones, a phone's whole cost (its
//! share of the relay included) to hold against opening, decrypting and
//! committing one message.
//!
//! `ALERT_FANOUT_DEVICES` (default 10,000, a multiple of 100, at least 200)
//! sets the scale; `ALERT_FANOUT_DIR` the directory for the stores (default
//! `/dev/shm`); `ALERT_FANOUT_FRESH=1` discards a kept setup.
//! `ALERT_FANOUT_WARM=1` sends a first alert before the measured one and
//! prints its figures apart: the last line then measures phones whose account
//! threads have written before, as a phone's that has been running a while
//! has (a thread's first commit pays one-time costs, OpenSSL's per-thread
//! random generator among them). By default the measured alert is the first.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rankfile_relay::Config;
use tokio::sync::oneshot;

/// Members per committee (the organizer included).
const COMMITTEE: usize = 100;
/// Committees per regional council.
const REGION: usize = 10;
/// Phones per worker process (each holds about four open files).
const PHONES_PER_WORKER: usize = 2_000;
/// The phone that raises the alert: committee 1's organizer.
const SENDER: usize = COMMITTEE;
/// Longest wait for every phone to store the alert.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(600);

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Result<String, String>>>>>;

/// A worker process and its command line protocol (see the worker's docs).
struct Worker {
    index: usize,
    child: Child,
    stdin: Mutex<ChildStdin>,
    pending: Pending,
    next: AtomicU64,
}

impl Worker {
    fn spawn(index: usize, relay: &str, fingerprint: &str, dir: &Path) -> Worker {
        let mut child = Command::new(env!("CARGO_BIN_EXE_rankfile-fanout-worker"))
            .arg(relay)
            .arg(fingerprint)
            .arg(dir)
            // Thousands of account threads would each get a malloc arena of
            // their own; two keep a worker's memory to what its phones hold.
            .env("MALLOC_ARENA_MAX", "2")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start a worker");
        let stdin = child.stdin.take().expect("worker stdin");
        let stdout = child.stdout.take().expect("worker stdout");
        let pending: Pending = Arc::default();
        let replies = pending.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let mut parts = line.splitn(3, ' ');
                let (Some(tag), Some(status)) = (parts.next(), parts.next()) else {
                    continue;
                };
                let payload = parts.next().unwrap_or("").to_string();
                let Ok(tag) = tag.parse::<u64>() else {
                    continue;
                };
                let reply = if status == "ok" {
                    Ok(payload)
                } else {
                    Err(payload)
                };
                if let Some(tx) = replies.lock().ok().and_then(|mut p| p.remove(&tag)) {
                    let _ = tx.send(reply);
                }
            }
        });
        Worker {
            index,
            child,
            stdin: Mutex::new(stdin),
            pending,
            next: AtomicU64::new(1),
        }
    }

    /// Sends one command and waits for its answer.
    async fn call(&self, command: String) -> String {
        let tag = self.next.fetch_add(1, Ordering::SeqCst);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().expect("pending").insert(tag, tx);
        {
            let mut stdin = self.stdin.lock().expect("stdin");
            writeln!(stdin, "{tag} {command}").expect("write to a worker");
            stdin.flush().expect("flush to a worker");
        }
        let what: String = command.chars().take(60).collect();
        match rx.await {
            Ok(Ok(payload)) => payload,
            Ok(Err(e)) => panic!("worker {}: `{what}…` failed: {e}", self.index),
            Err(_) => panic!("worker {} stopped during `{what}…`", self.index),
        }
    }

    /// Asks the worker to stop its phones and exit.
    fn quit(&self) {
        if let Ok(mut stdin) = self.stdin.lock() {
            let _ = writeln!(stdin, "0 quit");
        }
    }

    fn wait(mut self) {
        let _ = self.child.wait();
    }
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// CPU time the whole machine has spent busy (user, system, interrupts) since
/// boot, in seconds, from `/proc/stat`: what a cascade costs all the phones
/// and the relay together, a steadier figure than its latencies.
fn machine_cpu_s() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu = stat.lines().next()?.strip_prefix("cpu ")?;
    let fields: Vec<u64> = cpu
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal
    let busy: u64 = [0, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|i| fields.get(*i))
        .sum();
    Some(busy as f64 / 100.0)
}

/// CPU time (user and system, every thread) one process has used, in ms,
/// by its own accounting: `utime` and `stime` of `/proc/<pid>/stat`, in clock
/// ticks. `None` when it cannot be read.
fn process_cpu_ms(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces: the fields that follow come after
    // its closing parenthesis, starting with the state (field 3).
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let ticks = rustix::param::clock_ticks_per_second() as f64;
    Some((utime + stime) as f64 * 1e3 / ticks)
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Prints one measured send: what the organizer sent and how long the phones
/// took to store it. Returns its p50 and p99, in ms.
fn report(
    what: &str,
    stored: &str,
    lat: &[f64],
    (sender_ms, upload_kib, envelopes): (f64, f64, usize),
) -> (f64, f64) {
    let (p50, p99, max) = (
        percentile(lat, 0.5),
        percentile(lat, 0.99),
        percentile(lat, 1.0),
    );
    println!(
        "{what}: the organizer sent {envelopes} envelopes ({upload_kib:.1} KiB) with {sender_ms:.1} ms of CPU; {} phones stored the {stored}: p50 {p50:.0} ms, p99 {p99:.0} ms, max {max:.0} ms",
        lat.len()
    );
    (p50, p99)
}

fn main() {
    let devices = env_usize("ALERT_FANOUT_DEVICES", 10_000);
    assert!(
        devices % COMMITTEE == 0 && devices >= 2 * COMMITTEE,
        "ALERT_FANOUT_DEVICES must be a multiple of {COMMITTEE}, at least {}",
        2 * COMMITTEE
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(devices));
}

/// Phones by global index: which worker holds each.
struct Placement {
    workers: usize,
}

impl Placement {
    fn worker_of(&self, g: usize) -> usize {
        if g == SENDER {
            0
        } else {
            // Spread each committee over the workers, and the organizers
            // (who do the most) too.
            1 + (g + g / COMMITTEE) % (self.workers - 1)
        }
    }

    /// `gs` grouped by worker.
    fn group(&self, gs: impl IntoIterator<Item = usize>) -> HashMap<usize, Vec<usize>> {
        let mut out: HashMap<usize, Vec<usize>> = HashMap::new();
        for g in gs {
            out.entry(self.worker_of(g)).or_default().push(g);
        }
        out
    }
}

fn join(gs: &[usize]) -> String {
    gs.iter()
        .map(|g| g.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

struct Bench {
    workers: Vec<Worker>,
    place: Placement,
    /// Account IDs (hex) by global index.
    ids: Vec<String>,
    started: Instant,
}

impl Bench {
    fn log(&self, what: &str) {
        eprintln!("[{:7.1} s] {what}", self.started.elapsed().as_secs_f64());
    }

    async fn on(&self, g: usize, command: String) -> String {
        self.workers[self.place.worker_of(g)].call(command).await
    }

    /// Waits until every phone in `gs` holds `committee` with `members`
    /// members and `links` links.
    async fn expect(&self, committee: &str, members: usize, links: usize, gs: &[usize]) {
        let groups = self.place.group(gs.iter().copied());
        let calls = groups.iter().map(|(w, gs)| {
            self.workers[*w].call(format!("expect {committee} {members} {links} {}", join(gs)))
        });
        futures_util::future::join_all(calls).await;
    }

    /// `from` (organizer of `committee`) proposes a link to the organizer
    /// `to` of `target`, who accepts; returns the council.
    async fn link(
        &self,
        from: usize,
        committee: &str,
        to: usize,
        target: &str,
        name: &str,
    ) -> String {
        let proposal = self
            .on(
                from,
                format!(
                    "propose {from} {committee} {} {target} {name}",
                    self.ids[to]
                ),
            )
            .await;
        self.on(to, format!("accept {to} {proposal}")).await
    }

    /// A regional council over `committees` (their organizers the delegates).
    async fn region(&self, r: usize, cids: &[String], orgs: &[usize]) -> String {
        let founder = orgs[0];
        let council = self
            .link(orgs[1], &cids[1], founder, &cids[0], &format!("Region-{r}"))
            .await;
        self.expect(&council, 2, 2, &[founder, orgs[1]]).await;
        for j in 2..orgs.len() {
            let c = self.link(orgs[j], &cids[j], founder, &council, "-").await;
            assert_eq!(c, council, "a link into an existing council");
            self.expect(&council, j + 1, j + 1, &[founder, orgs[j]])
                .await;
        }
        self.expect(&council, orgs.len(), orgs.len(), orgs).await;
        council
    }

    /// CPU time, in ms, every process of the bench has used so far: the
    /// worker processes (the phones) and this one (the relay, and the bench's
    /// own driving, which is light). `None` if one cannot be read.
    fn processes_cpu_ms(&self) -> Option<f64> {
        let mut total = process_cpu_ms("self")?;
        for w in &self.workers {
            total += process_cpu_ms(&w.child.id().to_string())?;
        }
        Some(total)
    }

    /// Arms every worker, runs `send` on the sender's worker, waits until
    /// every other phone has stored what it sent; returns every phone's
    /// latency in ms, the sender's CPU ms, upload KiB and envelopes, and the
    /// CPU ms every process of the bench used from the send until the last
    /// phone stored it.
    async fn measure(&self, arm: &str, send: String, what: &str) -> Measured {
        let arms = self.workers.iter().map(|w| w.call(format!("arm {arm}")));
        futures_util::future::join_all(arms).await;
        let machine_before = machine_cpu_s();
        let cpu_before = self.processes_cpu_ms();
        let answer = self.workers[0].call(send).await;
        let fields: Vec<&str> = answer.split_whitespace().collect();
        let t0: f64 = fields[0].parse().expect("send instant");
        let cpu_ms: f64 = fields[1].parse().expect("cpu");
        let bytes: usize = fields[2].parse().expect("bytes");
        let envelopes: usize = fields[3].parse().expect("envelopes");
        let sealed: usize = fields[4].parse().expect("sealed");
        self.log(&format!(
            "{what}: sent {envelopes} envelopes ({sealed} sealed, {bytes} bytes), sender CPU {cpu_ms:.1} ms"
        ));
        let want = self.ids.len() - 1;
        let deadline = Instant::now() + DELIVERY_TIMEOUT;
        let mut last_report = Instant::now();
        loop {
            let counts = self.workers.iter().map(|w| w.call("count".into()));
            let n: usize = futures_util::future::join_all(counts)
                .await
                .iter()
                .map(|c| c.parse::<usize>().expect("count"))
                .sum();
            if n >= want {
                break;
            }
            if last_report.elapsed() > Duration::from_secs(5) {
                self.log(&format!("{what}: {n} of {want} phones have it"));
                last_report = Instant::now();
            }
            assert!(
                Instant::now() < deadline,
                "{what}: only {n} of {want} phones stored it"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Right after the last phone stored it (to within one look).
        let cpu_after = self.processes_cpu_ms();
        let machine_ms = match (cpu_before, cpu_after) {
            (Some(a), Some(b)) => b - a,
            _ => f64::NAN,
        };
        self.log(&format!(
            "{what}: the bench's processes used {machine_ms:.0} ms of CPU from the send until every phone had it ({:.3} ms per phone)",
            machine_ms / want as f64
        ));
        if let (Some(a), Some(b)) = (machine_before, machine_cpu_s()) {
            self.log(&format!(
                "{what}: the machine as a whole was busy {:.1} CPU-seconds meanwhile",
                b - a
            ));
        }
        let collected = self.workers.iter().map(|w| w.call("collect".into()));
        let mut latencies = Vec::with_capacity(want);
        for answer in futures_util::future::join_all(collected).await {
            for item in answer.split_whitespace() {
                let (_, ms) = item.split_once(':').expect("g:ms");
                latencies.push(ms.parse::<f64>().expect("ms") - t0);
            }
        }
        latencies.sort_by(f64::total_cmp);
        Measured {
            latencies,
            sender_ms: cpu_ms,
            upload_kib: bytes as f64 / 1024.0,
            envelopes,
            machine_ms,
        }
    }
}

/// One measured send.
struct Measured {
    /// Each phone's time from the send until it stored it, ms, sorted.
    latencies: Vec<f64>,
    /// The sender's process CPU time until the relay held every envelope.
    sender_ms: f64,
    upload_kib: f64,
    envelopes: usize,
    /// CPU time of every process of the bench (phones, relay) from the send
    /// until the last phone stored it.
    machine_ms: f64,
}

async fn run(devices: usize) {
    let started = Instant::now();
    let committees = devices / COMMITTEE;
    let base = std::env::var("ALERT_FANOUT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            let shm = Path::new("/dev/shm");
            if shm.is_dir() {
                shm.to_path_buf()
            } else {
                std::env::temp_dir()
            }
        });
    let root = base.join(format!("rankfile-alert-fanout-{devices}"));
    let manifest = root.join("manifest");
    let fresh = std::env::var("ALERT_FANOUT_FRESH").is_ok_and(|v| v == "1");
    let cached = !fresh && manifest.is_file();
    if !cached {
        let _ = std::fs::remove_dir_all(&root);
    }
    let phones_dir = root.join("phones");
    std::fs::create_dir_all(&phones_dir).expect("store directory");

    let mut config = Config::local(root.join("relay"));
    // Setting up, one organizer fetches the bundle of every phone it adds
    // (and the naive sender of every phone): far past a phone's usual rate.
    config.fetch_burst = u32::try_from(devices * 2).unwrap_or(u32::MAX);
    config.fetch_per_minute = config.fetch_burst;
    // Every phone's logged-in connection, and room for the anonymous ones
    // sealed sends go on (a delegate forwarding, the naive sender; during the
    // setup, many phones at once): past that they wait (`BUSY`) rather than
    // take this process past its open-file limit.
    config.max_connections = devices + config.reserved_device_slots + 2_000;
    let relay = rankfile_relay::start(config).await.expect("relay");
    let addr = relay.local_addr().to_string();
    let fingerprint = relay.fingerprint().to_string();

    let workers_n = 1 + (devices - 1).div_ceil(PHONES_PER_WORKER);
    let place = Placement { workers: workers_n };
    let workers: Vec<Worker> = (0..workers_n)
        .map(|i| Worker::spawn(i, &addr, &fingerprint, &phones_dir))
        .collect();
    let mut bench = Bench {
        workers,
        place,
        ids: vec![String::new(); devices],
        started,
    };
    bench.log(&format!(
        "{devices} phones in {workers_n} worker processes, stores in {} ({})",
        root.display(),
        if cached { "kept setup" } else { "new setup" }
    ));

    // Every phone: its store opened or made, connected and logged in.
    let groups = bench.place.group(0..devices);
    let starts = groups.iter().map(|(w, gs)| {
        let worker = &bench.workers[*w];
        // The organizer's phone is provisioned like a real phone.
        let list: Vec<String> = gs
            .iter()
            .map(|g| {
                if *g == SENDER {
                    format!("{g}*")
                } else {
                    g.to_string()
                }
            })
            .collect();
        async move { worker.call(format!("phones {}", list.join(" "))).await }
    });
    for answer in futures_util::future::join_all(starts).await {
        for item in answer.split_whitespace() {
            let (g, id) = item.split_once(':').expect("g:id");
            let g: usize = g.parse().expect("g");
            bench.ids[g] = id.to_string();
        }
    }
    bench.log(&format!("{devices} phones connected"));

    let sender_committee = if cached {
        std::fs::read_to_string(&manifest)
            .expect("manifest")
            .lines()
            .find_map(|l| l.strip_prefix("sender_committee ").map(str::to_string))
            .expect("the sender's committee in the manifest")
    } else {
        set_up(&bench, committees).await
    };
    if !cached {
        std::fs::write(
            &manifest,
            format!("devices {devices}\nsender_committee {sender_committee}\n"),
        )
        .expect("write the manifest");
        bench.log("setup kept for later runs");
    }
    // Let the reconnection traffic settle.
    tokio::time::sleep(Duration::from_secs(2)).await;

    // With ALERT_FANOUT_WARM, a first alert goes out before the measured one.
    let rounds: &[&str] = if std::env::var_os("ALERT_FANOUT_WARM").is_some() {
        &["first cascade", "cascade"]
    } else {
        &["cascade"]
    };
    let mut measured = None;
    for what in rounds {
        let m = bench
            .measure("alert", format!("alert {SENDER} {sender_committee}"), what)
            .await;
        let (p50, p99) = report(
            what,
            "alert",
            &m.latencies,
            (m.sender_ms, m.upload_kib, m.envelopes),
        );
        measured = Some((m.sender_ms, m.upload_kib, p50, p99, m.machine_ms));
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let (sender_ms, upload_kib, p50, p99, machine_ms) = measured.expect("the measured alert");

    let others: Vec<&str> = (0..devices)
        .filter(|g| *g != SENDER)
        .map(|g| bench.ids[g].as_str())
        .collect();
    let naive = bench
        .measure(
            &format!("text {}", bench.ids[SENDER]),
            format!("naive {SENDER} {}", others.join(" ")),
            "naive",
        )
        .await;
    let (naive_ms, naive_kib) = (naive.sender_ms, naive.upload_kib);
    let (_, n99) = report(
        "naive",
        "text",
        &naive.latencies,
        (naive_ms, naive_kib, naive.envelopes),
    );
    println!(
        "alert_fanout devices={devices} sender_ms={sender_ms:.1} upload_kib={upload_kib:.1} p50_ms={p50:.0} p99_ms={p99:.0} naive_sender_ms={naive_ms:.1} naive_upload_kib={naive_kib:.1} naive_p99_ms={n99:.0} machine_cpu_ms={machine_ms:.0}"
    );
    for w in &bench.workers {
        w.quit();
    }
    for w in bench.workers.drain(..) {
        w.wait();
    }
    relay.shutdown().await;
}

/// Builds the network once: committees, regional councils, the top council,
/// and the naive sender's sessions with everyone. Returns the sender's
/// committee.
async fn set_up(bench: &Bench, committees: usize) -> String {
    let org = |c: usize| c * COMMITTEE;
    // Committees, all at once: each organizer adds its 99 members.
    let founding = (0..committees).map(|c| async move {
        let members: Vec<&str> = (org(c) + 1..org(c) + COMMITTEE)
            .map(|g| bench.ids[g].as_str())
            .collect();
        let cid = bench
            .on(
                org(c),
                format!("committee {} C{c} {}", org(c), members.join(" ")),
            )
            .await;
        let gs: Vec<usize> = (org(c)..org(c) + COMMITTEE).collect();
        bench.expect(&cid, COMMITTEE, 0, &gs).await;
        cid
    });
    let cids: Vec<String> = futures_util::future::join_all(founding).await;
    bench.log(&format!("{committees} committees of {COMMITTEE} set up"));

    // Regional councils, in parallel.
    let regions: Vec<Vec<usize>> = (0..committees)
        .collect::<Vec<_>>()
        .chunks(REGION)
        .map(|c| c.to_vec())
        .collect();
    let councils = regions.iter().enumerate().map(|(r, cs)| {
        let cids: Vec<String> = cs.iter().map(|c| cids[*c].clone()).collect();
        let orgs: Vec<usize> = cs.iter().map(|c| org(*c)).collect();
        async move {
            if orgs.len() < 2 {
                return None;
            }
            Some(bench.region(r, &cids, &orgs).await)
        }
    });
    let councils: Vec<Option<String>> = futures_util::future::join_all(councils).await;
    bench.log(&format!("{} regional councils linked", councils.len()));

    // The top council over the regional ones, their founders its delegates.
    let tops: Vec<(usize, String)> = regions
        .iter()
        .zip(&councils)
        .filter_map(|(cs, c)| c.clone().map(|c| (org(cs[0]), c)))
        .collect();
    if tops.len() >= 2 {
        let founder = tops[0].0;
        let top = bench
            .link(tops[1].0, &tops[1].1, founder, &tops[0].1, "Top")
            .await;
        bench.expect(&top, 2, 2, &[founder, tops[1].0]).await;
        for (k, (f, council)) in tops.iter().enumerate().skip(2) {
            let c = bench.link(*f, council, founder, &top, "-").await;
            assert_eq!(c, top, "a link into the top council");
            bench.expect(&top, k + 1, k + 1, &[founder, *f]).await;
        }
        let founders: Vec<usize> = tops.iter().map(|(f, _)| *f).collect();
        bench
            .expect(&top, founders.len(), founders.len(), &founders)
            .await;
        bench.log(&format!("top council over {} councils linked", tops.len()));
    }

    // The naive sender's sessions with everyone: every phone writes to it
    // once (opening a session from the relay's directory if it has none), which
    // brings the sender its access key.
    let devices = bench.ids.len();
    let others: Vec<usize> = (0..devices).filter(|g| *g != SENDER).collect();
    let greeting = bench.on(
        SENDER,
        format!(
            "contacts {SENDER} {}",
            others
                .iter()
                .map(|g| bench.ids[*g].as_str())
                .collect::<Vec<_>>()
                .join(" ")
        ),
    );
    let groups = bench.place.group(others.iter().copied());
    let answers = groups.iter().map(|(w, gs)| {
        bench.workers[*w].call(format!("answer {} {}", bench.ids[SENDER], join(gs)))
    });
    let (_, _) = tokio::join!(greeting, futures_util::future::join_all(answers));
    bench.log("the naive sender holds a session with every phone");
    cids[SENDER / COMMITTEE].clone()
}
