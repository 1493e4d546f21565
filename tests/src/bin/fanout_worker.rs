//! A worker process of the `alert_fanout` bench: hosts a share of the
//! simulated phones (each a real [`Client`] with its own encrypted store and
//! its own connection to the relay) on one tokio runtime, and does what the
//! bench's main process tells it on stdin, one command a line:
//! `<tag> <command> <args…>`. Each answer is one line on stdout,
//! `<tag> ok <payload>` or `<tag> err <message>`; commands run concurrently.
//!
//! `rankfile-fanout-worker <relay addr> <fingerprint hex> <store dir>`.
//! Phones are named by their global index `g`; a phone's store is
//! `<store dir>/phone-<g>.db`, its key beside it, so a later run reopens them.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rankfile_core::alert::{AlertDraft, AlertKind, AlertScope};
use rankfile_core::committee::{CommitteeId, CommitteeMeta, LinkPolicy, Role};
use rankfile_core::link::PROPOSAL_ID_LEN;
use rankfile_core::transport::{parse_fingerprint, Client, ClientEvent, ConnectionState};
use rankfile_core::{Account, AccountId, AccountOptions, DatabaseKey, Event};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

/// One-time prekeys per simulated phone: none. Sessions open with the signed
/// and last-resort Kyber prekeys, and a store holds kilobytes, not half a
/// megabyte of keys nobody will fetch.
const ONE_TIME_PREKEYS: u32 = 0;
/// Page cache per simulated phone, KiB: a real phone's. A cache holds only
/// the pages read, so a phone costs about its store's size (a member's is a
/// few hundred KiB), and a store that fits is read into it at open, as on a
/// phone.
const PAGE_CACHE_KIB: u32 = rankfile_core::PAGE_CACHE_KIB;
/// WAL per simulated phone, KiB: checkpointed and truncated at this size, so
/// 10,000 stores fit in RAM.
const WAL_LIMIT_KIB: u32 = 256;
/// Longest wait for any one condition.
const WAIT: Duration = Duration::from_secs(900);

type Phones = Arc<Mutex<HashMap<usize, Arc<Phone>>>>;

struct Phone {
    client: Client,
    id: AccountId,
}

/// When each armed phone first saw what it waits for (wall clock, ms).
#[derive(Default)]
struct Arrivals {
    times: Mutex<HashMap<usize, f64>>,
    count: AtomicUsize,
}

struct Worker {
    phones: Phones,
    dir: PathBuf,
    relay: rankfile_core::transport::RelayAddress,
    arrivals: Mutex<Arc<Arrivals>>,
}

fn wall_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1e3)
        .unwrap_or(0.0)
}

/// CPU time of this whole process (every thread), ms.
fn process_cpu_ms() -> f64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    t.tv_sec as f64 * 1e3 + t.tv_nsec as f64 / 1e6
}

fn hex_id(s: &str) -> Result<AccountId, String> {
    let bytes = hex::decode(s).map_err(|e| e.to_string())?;
    AccountId::from_bytes(&bytes).map_err(|e| e.to_string())
}

fn hex_committee(s: &str) -> Result<CommitteeId, String> {
    let bytes = hex::decode(s).map_err(|e| e.to_string())?;
    CommitteeId::from_bytes(&bytes).map_err(|e| e.to_string())
}

fn parse_g(s: &str) -> Result<usize, String> {
    s.parse().map_err(|_| format!("bad phone index {s}"))
}

async fn until<F, Fut>(what: &str, mut check: F) -> Result<(), String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if check().await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("timed out: {what}"))
}

fn in_an_hour() -> u64 {
    u64::try_from(wall_ms() as i64).unwrap_or(0) + 3_600_000
}

/// The alert the bench raises, and the naive path's text of the same size.
fn draft() -> AlertDraft {
    AlertDraft {
        kind: AlertKind::EmergencyMeeting,
        scope: AlertScope::Network,
        title: "Emergency meeting".into(),
        text: "Management announced the depot closes Friday. All committees meet now.".into(),
        place: "Union hall, Station Road".into(),
        starts_at_ms: 0,
        expires_at_ms: in_an_hour(),
        answers_wanted: false,
    }
}

fn naive_text() -> String {
    let d = draft();
    format!("{}\n{}\n{}", d.title, d.text, d.place)
}

impl Worker {
    fn phone(&self, g: usize) -> Result<Arc<Phone>, String> {
        self.phones
            .lock()
            .map_err(|_| "poisoned".to_string())?
            .get(&g)
            .cloned()
            .ok_or_else(|| format!("phone {g} is not here"))
    }

    fn phones_of(&self, args: &[&str]) -> Result<Vec<(usize, Arc<Phone>)>, String> {
        args.iter()
            .map(|a| {
                let g = parse_g(a)?;
                Ok((g, self.phone(g)?))
            })
            .collect()
    }

    /// `phones <g>…`: opens (or creates) each phone's store, connects it, and
    /// answers `g:id` for each. A phone written `<g>*` is provisioned like a
    /// real phone (the default page cache), not as a small simulated one:
    /// the organizer, whose store holds thousands of sessions.
    async fn start_phones(&self, args: &[&str]) -> Result<String, String> {
        let simulated = AccountOptions::simulated(ONE_TIME_PREKEYS, PAGE_CACHE_KIB, WAL_LIMIT_KIB);
        let mut full = AccountOptions::default();
        full.one_time_prekeys = ONE_TIME_PREKEYS;
        let mut out = Vec::new();
        let mut started = Vec::new();
        for a in args {
            let (a, options) = match a.strip_suffix('*') {
                Some(a) => (a, full.clone()),
                None => (*a, simulated.clone()),
            };
            let g = parse_g(a)?;
            let path = self.dir.join(format!("phone-{g}.db"));
            let key_path = self.dir.join(format!("phone-{g}.key"));
            let (path2, key_path2, options2) = (path.clone(), key_path.clone(), options.clone());
            let account =
                tokio::task::spawn_blocking(move || open_or_create(&path2, &key_path2, &options2))
                    .await
                    .map_err(|e| e.to_string())??;
            let id = account.id();
            let client = Client::start(account, self.relay.clone()).map_err(|e| e.to_string())?;
            let phone = Arc::new(Phone { client, id });
            self.phones
                .lock()
                .map_err(|_| "poisoned".to_string())?
                .insert(g, phone.clone());
            started.push(phone);
            out.push(format!("{g}:{}", hex::encode(id.as_bytes())));
        }
        for p in &started {
            until("every phone logs in", || async {
                matches!(
                    p.client.connection_state(),
                    ConnectionState::Connected { .. }
                )
            })
            .await?;
        }
        Ok(out.join(" "))
    }

    /// `committee <g> <name> <member id>…`: founds a committee (or finds the
    /// one this organizer founded before) and adds every member.
    async fn committee(&self, args: &[&str]) -> Result<String, String> {
        let org = self.phone(parse_g(args[0])?)?;
        let name = args[1].to_string();
        let members = args[2..]
            .iter()
            .map(|s| hex_id(s))
            .collect::<Result<Vec<_>, _>>()?;
        let meta = CommitteeMeta {
            name: name.clone(),
            ..CommitteeMeta::default()
        };
        let committee = org
            .client
            .create_committee(meta)
            .await
            .map_err(|e| e.to_string())?;
        for m in members {
            org.client
                .add_contact_from_relay(String::new(), m)
                .await
                .map_err(|e| format!("bundle: {e}"))?;
            org.client
                .add_member(committee, m, Role::Member)
                .await
                .map_err(|e| format!("add: {e}"))?;
        }
        org.client.flush().await.map_err(|e| e.to_string())?;
        Ok(hex::encode(committee.0))
    }

    /// `expect <committee> <members> <links> <g>…`: waits until each phone
    /// holds the committee with that many members and links.
    async fn expect(&self, args: &[&str]) -> Result<String, String> {
        let committee = hex_committee(args[0])?;
        let members: usize = args[1].parse().map_err(|_| "bad count")?;
        let links: usize = args[2].parse().map_err(|_| "bad count")?;
        for (g, p) in self.phones_of(&args[3..])? {
            until(&format!("phone {g} holds the committee"), || async {
                p.client
                    .committee(committee)
                    .await
                    .is_ok_and(|s| s.members.len() == members && s.links.len() == links)
            })
            .await?;
        }
        Ok(String::new())
    }

    /// `propose <g> <committee> <to id> <target> <council name or ->`.
    async fn propose(&self, args: &[&str]) -> Result<String, String> {
        let p = self.phone(parse_g(args[0])?)?;
        let committee = hex_committee(args[1])?;
        let to = hex_id(args[2])?;
        let target = hex_committee(args[3])?;
        let name = if args[4] == "-" { "" } else { args[4] };
        let id = p
            .client
            .propose_link(
                committee,
                to,
                target,
                vec![p.id],
                LinkPolicy::Forward,
                name.to_string(),
            )
            .await
            .map_err(|e| e.to_string())?;
        p.client.flush().await.map_err(|e| e.to_string())?;
        Ok(hex::encode(id))
    }

    /// `accept <g> <proposal>`: waits for the proposal, accepts it with this
    /// organizer as the delegate, answers the council.
    async fn accept(&self, args: &[&str]) -> Result<String, String> {
        let p = self.phone(parse_g(args[0])?)?;
        let proposal: [u8; PROPOSAL_ID_LEN] = hex::decode(args[1])
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or("bad proposal id")?;
        until("the link proposal arrives", || async {
            p.client
                .link_proposals()
                .await
                .is_ok_and(|l| l.iter().any(|(_, x)| x.proposal_id == proposal))
        })
        .await?;
        let council = p
            .client
            .accept_link(proposal, vec![p.id], LinkPolicy::Forward)
            .await
            .map_err(|e| e.to_string())?;
        p.client.flush().await.map_err(|e| e.to_string())?;
        Ok(hex::encode(council.0))
    }

    /// `contacts <g> <id>…`: waits until the phone has a message from each
    /// of them (which opened the session and brought its access key, so
    /// what it sends them later goes sealed).
    async fn contacts(&self, args: &[&str]) -> Result<String, String> {
        let p = self.phone(parse_g(args[0])?)?;
        let ids = Arc::new(
            args[1..]
                .iter()
                .map(|s| hex_id(s))
                .collect::<Result<Vec<_>, _>>()?,
        );
        let n = ids.len() as u64;
        let p = &p;
        // Cheap first: the count of stored messages.
        until("every phone has written", || async move {
            p.client
                .with_account(move |a| a.message_count().is_ok_and(|c| c >= n))
                .await
                .unwrap_or(false)
        })
        .await?;
        until("every phone has written", || {
            let ids = ids.clone();
            async move {
                p.client
                    .with_account(move |a| {
                        ids.iter().all(|i| {
                            a.history(i, None, 4)
                                .is_ok_and(|h| h.iter().any(|m| !m.outgoing))
                        })
                    })
                    .await
                    .unwrap_or(false)
            }
        })
        .await?;
        Ok(String::new())
    }

    /// `answer <id> <g>…`: each phone opens a session with `id` unless it
    /// has one (from the relay's directory), and writes to it once.
    async fn answer(&self, args: &[&str]) -> Result<String, String> {
        let to = hex_id(args[0])?;
        let phones = self.phones_of(&args[1..])?;
        let tasks = phones.into_iter().map(|(_, p)| async move {
            let written = p
                .client
                .with_account(move |a| {
                    a.history(&to, None, 4)
                        .is_ok_and(|h| h.iter().any(|m| m.outgoing))
                })
                .await
                .unwrap_or(false);
            if written {
                return Ok(());
            }
            let known = p
                .client
                .with_account(move |a| a.contact(&to).is_ok())
                .await
                .unwrap_or(false);
            if !known {
                p.client
                    .add_contact_from_relay(String::new(), to)
                    .await
                    .map_err(|e| format!("bundle: {e}"))?;
            }
            p.client
                .send_text(to, "here".into())
                .await
                .map_err(|e| e.to_string())?;
            p.client.flush().await.map_err(|e| e.to_string())
        });
        for r in futures_util::future::join_all(tasks).await {
            r?;
        }
        Ok(String::new())
    }

    /// `arm alert` or `arm text <id>`: from now, each phone here records
    /// when it first stores an alert (or a text from `id`).
    fn arm(&self, args: &[&str]) -> Result<String, String> {
        let text_from = match args.first() {
            Some(&"alert") => None,
            Some(&"text") => Some(hex_id(args.get(1).ok_or("no sender")?)?),
            _ => return Err("arm alert|text <id>".into()),
        };
        let arrivals = Arc::new(Arrivals::default());
        *self.arrivals.lock().map_err(|_| "poisoned")? = arrivals.clone();
        let phones: Vec<(usize, Arc<Phone>)> = self
            .phones
            .lock()
            .map_err(|_| "poisoned")?
            .iter()
            .map(|(g, p)| (*g, p.clone()))
            .collect();
        for (g, p) in phones {
            let mut events = p.client.subscribe();
            let arrivals = arrivals.clone();
            tokio::spawn(async move {
                loop {
                    let seen = match events.recv().await {
                        Ok(ClientEvent::Core(Event::AlertReceived { .. })) => text_from.is_none(),
                        Ok(ClientEvent::Core(Event::MessageStored { peer, .. })) => {
                            text_from == Some(peer)
                        }
                        Ok(_) => false,
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => false,
                        Err(_) => return,
                    };
                    if seen {
                        let now = wall_ms();
                        if let Ok(mut t) = arrivals.times.lock() {
                            t.insert(g, now);
                        }
                        arrivals.count.fetch_add(1, Ordering::SeqCst);
                        return;
                    }
                }
            });
        }
        Ok(String::new())
    }

    fn count(&self) -> Result<String, String> {
        let a = self.arrivals.lock().map_err(|_| "poisoned")?.clone();
        Ok(a.count.load(Ordering::SeqCst).to_string())
    }

    /// `collect`: `g:ms` for every phone that has arrived.
    fn collect(&self) -> Result<String, String> {
        let a = self.arrivals.lock().map_err(|_| "poisoned")?.clone();
        let t = a.times.lock().map_err(|_| "poisoned")?;
        Ok(t.iter()
            .map(|(g, ms)| format!("{g}:{ms:.3}"))
            .collect::<Vec<_>>()
            .join(" "))
    }

    /// `alert <g> <committee>`: raises the network alert; answers the send
    /// instant, this process's CPU ms until the relay held every envelope,
    /// the envelope bytes, and their number.
    async fn alert(&self, args: &[&str]) -> Result<String, String> {
        let p = self.phone(parse_g(args[0])?)?;
        let committee = hex_committee(args[1])?;
        let d = draft();
        let cpu0 = process_cpu_ms();
        let t0 = wall_ms();
        let (_, sent) = p
            .client
            .with_account(move |a| a.send_alert(&committee, d))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        p.client.flush().await.map_err(|e| e.to_string())?;
        let cpu = process_cpu_ms() - cpu0;
        if !sent.unreachable.is_empty() {
            return Err(format!("{} unreachable", sent.unreachable.len()));
        }
        let bytes: usize = sent.sent.iter().map(|e| e.bytes.len()).sum();
        let sealed = sent.sent.iter().filter(|e| e.sealed).count();
        Ok(format!(
            "{t0:.3} {cpu:.3} {bytes} {} {sealed}",
            sent.sent.len()
        ))
    }

    /// `naive <g> <id>…`: the same alert's text sent to each of them
    /// separately, high priority; answers as `alert` does.
    async fn naive(&self, args: &[&str]) -> Result<String, String> {
        let p = self.phone(parse_g(args[0])?)?;
        let ids = args[1..]
            .iter()
            .map(|s| hex_id(s))
            .collect::<Result<Vec<_>, _>>()?;
        let body = naive_text();
        let cpu0 = process_cpu_ms();
        let t0 = wall_ms();
        let (sent, unreachable) = p
            .client
            .with_account(move |a| a.send_text_to_many(&ids, &body, true))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        p.client.flush().await.map_err(|e| e.to_string())?;
        let cpu = process_cpu_ms() - cpu0;
        if !unreachable.is_empty() {
            return Err(format!("{} unreachable", unreachable.len()));
        }
        let bytes: usize = sent.iter().map(|e| e.bytes.len()).sum();
        let sealed = sent.iter().filter(|e| e.sealed).count();
        Ok(format!("{t0:.3} {cpu:.3} {bytes} {} {sealed}", sent.len()))
    }

    async fn run(&self, line: &str) -> Result<String, String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let (cmd, args) = words.split_first().ok_or("empty command")?;
        let need = |n: usize| {
            if args.len() < n {
                Err(format!("{cmd}: too few arguments"))
            } else {
                Ok(())
            }
        };
        match *cmd {
            "phones" => self.start_phones(args).await,
            "committee" => {
                need(2)?;
                self.committee(args).await
            }
            "expect" => {
                need(3)?;
                self.expect(args).await
            }
            "propose" => {
                need(5)?;
                self.propose(args).await
            }
            "accept" => {
                need(2)?;
                self.accept(args).await
            }
            "contacts" => {
                need(1)?;
                self.contacts(args).await
            }
            "answer" => {
                need(1)?;
                self.answer(args).await
            }
            "arm" => self.arm(args),
            "count" => self.count(),
            "collect" => self.collect(),
            "alert" => {
                need(2)?;
                self.alert(args).await
            }
            "naive" => {
                need(1)?;
                self.naive(args).await
            }
            other => Err(format!("unknown command {other}")),
        }
    }
}

/// Opens the phone's store when a previous run left one, else makes it.
fn open_or_create(
    path: &Path,
    key_path: &Path,
    options: &AccountOptions,
) -> Result<Account, String> {
    if path.exists() {
        let key = std::fs::read_to_string(key_path)
            .ok()
            .and_then(|k| hex::decode(k.trim()).ok())
            .and_then(|k| DatabaseKey::from_slice(&k).ok())
            .ok_or("unreadable store key")?;
        return Account::open_with(path, &key, options).map_err(|e| e.to_string());
    }
    let mut raw = [0u8; rankfile_core::DATABASE_KEY_LEN];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut raw);
    let key = DatabaseKey::from_slice(&raw).map_err(|e| e.to_string())?;
    let account = Account::create_with(path, &key, options).map_err(|e| e.to_string())?;
    std::fs::write(key_path, hex::encode(raw)).map_err(|e| e.to_string())?;
    Ok(account)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: rankfile-fanout-worker <relay addr> <fingerprint> <store dir>");
        std::process::exit(2);
    }
    let (Ok(addr), Some(fingerprint)) = (args[1].parse(), parse_fingerprint(&args[2])) else {
        eprintln!("rankfile-fanout-worker: bad relay address or fingerprint");
        std::process::exit(2);
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("rankfile-fanout-worker: {e}");
            std::process::exit(2);
        }
    };
    let worker = Arc::new(Worker {
        phones: Arc::default(),
        dir: PathBuf::from(&args[3]),
        relay: rankfile_core::transport::RelayAddress { addr, fingerprint },
        arrivals: Mutex::new(Arc::new(Arrivals::default())),
    });
    runtime.block_on(async move {
        // Lines from stdin, read on a thread of their own.
        let (lines_tx, mut lines) = mpsc::unbounded_channel::<String>();
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let (out_tx, mut out) = mpsc::unbounded_channel::<String>();
        let writer = tokio::spawn(async move {
            let mut stdout = tokio::io::stdout();
            while let Some(line) = out.recv().await {
                if stdout.write_all(line.as_bytes()).await.is_err() || stdout.flush().await.is_err()
                {
                    break;
                }
            }
        });
        while let Some(line) = lines.recv().await {
            let Some((tag, rest)) = line.split_once(' ') else {
                continue;
            };
            if rest == "quit" {
                break;
            }
            let (tag, rest, worker, out_tx) = (
                tag.to_string(),
                rest.to_string(),
                worker.clone(),
                out_tx.clone(),
            );
            tokio::spawn(async move {
                let reply = match worker.run(&rest).await {
                    Ok(p) => format!("{tag} ok {p}\n"),
                    Err(e) => format!("{tag} err {}\n", e.replace('\n', " ")),
                };
                let _ = out_tx.send(reply);
            });
        }
        // Every client stopped and its account thread ended before the
        // process exits: no thread may still be in SQLCipher or OpenSSL when
        // the exit handlers run.
        let phones: Vec<Arc<Phone>> = worker
            .phones
            .lock()
            .map(|mut p| p.drain().map(|(_, v)| v).collect())
            .unwrap_or_default();
        let stops = phones
            .into_iter()
            .filter_map(|p| Arc::try_unwrap(p).ok())
            .map(|p| p.client.shutdown());
        futures_util::future::join_all(stops).await;
        drop(out_tx);
        let _ = writer.await;
    });
    runtime.shutdown_timeout(Duration::from_secs(5));
}
