//! `rankfile demo`: the whole system on one machine. A relay in-process on
//! loopback (SQLite in a temporary directory) and simulated phones, each its
//! own account in its own encrypted store, driven by a `transport::Client`
//! over real TLS sockets, play the story of what exists so far — contacts,
//! safety numbers, messages, a phone offline, then a committee formed from an
//! invite that holds a discussion and removes an infiltrator, then links with
//! a second committee through a council and raises a network-wide emergency
//! meeting that members of both answer; every store is checked against what
//! was sent, and the last line says `demo ok: phones=N messages=M lost=0
//! joined=J posts=P removed_read=0 alerted=A answered=B`.

mod alert;
mod committee;
mod phone;
mod report;
mod steps;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rankfile_core::transport::RelayAddress;
use rankfile_relay::Config;

use self::alert::AlertFigures;
use self::committee::CommitteeFigures;
use self::phone::{Phone, Tracker};
use self::report::{Ledger, Sent, Timeline};
use crate::cli::DemoArgs;
use crate::error::{CliError, Result};
use crate::home::relay_address;
use crate::output::Output;

/// How long phones may take to log in.
const CONNECT_PATIENCE: Duration = Duration::from_secs(60);
/// Phones named one by one in the timeline; beyond, lines are summed up.
const NAMED_PHONES: usize = 3;

/// Runs the demo.
pub fn run(args: &DemoArgs, out: &Output) -> Result<()> {
    let (_temp, dir) = match &args.data {
        Some(d) => {
            std::fs::create_dir_all(d)
                .map_err(CliError::io(format!("creating {}", d.display())))?;
            (None, d.clone())
        }
        None => {
            let t = tempfile::tempdir().map_err(CliError::io("making a temporary directory"))?;
            let p = t.path().to_path_buf();
            (Some(t), p)
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(CliError::io("starting the async runtime"))?;
    let result = rt.block_on(Demo::new(args, &dir, out).play());
    match result {
        Ok(summary) => {
            println!("{summary}");
            Ok(())
        }
        Err(e) => Err(CliError::Other(format!("demo failed: {e}"))),
    }
}

struct Demo<'a> {
    phones_wanted: usize,
    offline_messages: usize,
    dir: PathBuf,
    keep: bool,
    out: &'a Output,
    timeline: Timeline,
    tracker: Arc<Tracker>,
    ledger: Ledger,
    phones: Vec<Phone>,
    verified_pairs: usize,
    /// The phone that was offline, how many messages waited, and how long
    /// catching up took after it came back.
    catch_up: Option<(String, usize, Duration)>,
    /// What the committee chapter did (not played with fewer than 3 phones).
    committee: Option<CommitteeFigures>,
    /// What the alert chapter did (played after the committee chapter).
    alert: Option<AlertFigures>,
}

impl<'a> Demo<'a> {
    fn new(args: &DemoArgs, dir: &Path, out: &'a Output) -> Self {
        let n = usize::from(args.phones);
        Demo {
            phones_wanted: n,
            offline_messages: usize::from(args.offline_messages),
            dir: dir.to_path_buf(),
            keep: args.data.is_some(),
            out,
            timeline: Timeline::new(),
            tracker: Tracker::new(n),
            ledger: Ledger::default(),
            phones: Vec::new(),
            verified_pairs: 0,
            catch_up: None,
            committee: None,
            alert: None,
        }
    }

    /// The story; returns the summary (whose last line is the `demo ok` line).
    async fn play(mut self) -> Result<String> {
        let relay_dir = self.dir.join("relay");
        let mut config = Config::local(&relay_dir);
        // One organizer adds every member at once; the relay's bundle-fetch
        // limit (against directory scraping) is raised to fit the demo's size.
        let fetches = u32::try_from(self.phones_wanted)
            .unwrap_or(u32::MAX)
            .saturating_mul(2);
        config.fetch_burst = config.fetch_burst.max(fetches);
        config.fetch_per_minute = config.fetch_per_minute.max(fetches);
        let relay = rankfile_relay::start(config)
            .await
            .map_err(|e| CliError::Other(format!("the relay could not start: {e}")))?;
        let address = relay_address(relay.local_addr(), relay.fingerprint())?;
        self.timeline.say(&format!(
            "relay listening on {} (TLS, certificate {}…; SQLite in {})",
            relay.local_addr(),
            relay.fingerprint().get(..16).unwrap_or(relay.fingerprint()),
            relay_dir.display()
        ));
        let outcome = self.story(&address).await;
        for p in &mut self.phones {
            let _ = p.go_offline().await;
        }
        relay.shutdown().await;
        outcome
    }

    async fn story(&mut self, relay: &RelayAddress) -> Result<String> {
        self.create_phones().await?;
        self.connect_all(relay).await?;
        let members: Vec<usize> = (1..self.phones.len()).collect();

        // Contacts through the relay's prekey directory.
        let started = Instant::now();
        for &m in &members {
            let (name, id) = (self.phones[m].name.clone(), self.phones[m].id);
            self.phones[0]
                .client()?
                .add_contact_from_relay(name, id)
                .await?;
        }
        self.timeline.say(&format!(
            "organizer fetched {} prekey bundles from the relay's directory and opened PQXDH sessions ({:.0} ms)",
            members.len(),
            started.elapsed().as_secs_f64() * 1000.0
        ));

        // First messages: identified, since the member has no access key for us yet.
        let mark = self.ledger.sent.len();
        for &m in &members {
            let body = format!(
                "Welcome to the depot committee, {}. Meeting Thursday 18:00.",
                self.phones[m].name
            );
            self.send(0, m, body, false).await?;
        }
        self.wait_all("first messages", mark).await?;
        self.say_sealing(
            mark,
            "first messages",
            "identified: the relay sees the sender, needed once for the handshake",
        );

        self.verify_safety_numbers(&members).await?;

        // Replies, then the organizer again: both sealed now.
        let mark = self.ledger.sent.len();
        for &m in &members {
            let body = format!(
                "{} here: I'll be there, and I'll bring two from the night shift.",
                self.phones[m].name
            );
            self.send(m, 0, body, false).await?;
        }
        self.wait_all("replies", mark).await?;
        self.say_sealing(
            mark,
            "replies",
            "sealed sender: the relay does not learn who wrote",
        );
        let mark = self.ledger.sent.len();
        for &m in &members {
            self.send(
                0,
                m,
                format!(
                    "Agenda for {}: demands, delegates, strike fund.",
                    self.phones[m].name
                ),
                false,
            )
            .await?;
        }
        self.wait_all("agendas", mark).await?;
        self.say_sealing(
            mark,
            "organizer's later messages",
            "sealed now that it holds each member's access key",
        );

        self.offline_round(relay).await?;
        self.committee = self.committee_chapter().await?;
        self.alert = self.alert_chapter(relay).await?;
        self.finish().await
    }

    async fn create_phones(&mut self) -> Result<()> {
        let n = self.phones_wanted;
        let bar = self.out.progress(n as u64, "creating phones");
        let mut made = Vec::with_capacity(n);
        // Key generation is CPU-bound: two at a time on the blocking pool.
        for chunk in (0..n).collect::<Vec<_>>().chunks(2) {
            let jobs: Vec<_> = chunk
                .iter()
                .map(|&i| {
                    let dir = self.dir.clone();
                    let name = if i == 0 {
                        "organizer".to_string()
                    } else {
                        format!("member-{i}")
                    };
                    tokio::task::spawn_blocking(move || Phone::create(&dir, i, name))
                })
                .collect();
            for job in jobs {
                made.push(job.await.map_err(|e| CliError::Other(e.to_string()))??);
                bar.inc(1);
            }
        }
        bar.finish_and_clear();
        self.phones = made;
        self.timeline.say(&format!(
            "{n} phones created: 1 organizer, {} members; each an identity key, signed + Kyber + one-time prekeys, and its own SQLCipher store",
            n - 1
        ));
        Ok(())
    }

    async fn connect_all(&mut self, relay: &RelayAddress) -> Result<()> {
        for p in &mut self.phones {
            p.go_online(relay, &self.tracker)?;
        }
        let bar = self
            .out
            .progress(self.phones.len() as u64, "connecting phones");
        for p in &self.phones {
            p.wait_connected(CONNECT_PATIENCE).await?;
            bar.inc(1);
        }
        bar.finish_and_clear();
        self.timeline.say(&format!(
            "{} phones connected over TLS (certificate pinned), logged in by identity-key signature, prekeys published",
            self.phones.len()
        ));
        Ok(())
    }

    /// Sends one message and writes it in the ledger.
    async fn send(
        &mut self,
        from: usize,
        to: usize,
        body: String,
        while_offline: bool,
    ) -> Result<()> {
        let at = Instant::now();
        let to_id = self.phones[to].id;
        let envelope = self.phones[from]
            .client()?
            .send_text(to_id, body.clone())
            .await?;
        // Every message involves the organizer (phone 0): name the first few members'.
        if from.max(to) <= NAMED_PHONES {
            self.timeline.say(&format!(
                "{} → {}: \"{body}\" ({})",
                self.phones[from].name,
                self.phones[to].name,
                if envelope.sealed {
                    "sealed"
                } else {
                    "identified"
                }
            ));
        }
        self.ledger.sent.push(Sent {
            from,
            to,
            body,
            at,
            sealed: envelope.sealed,
            while_offline,
        });
        Ok(())
    }

    /// Waits until every message sent so far is stored; `since` is where
    /// this batch starts in the ledger.
    async fn wait_all(&self, what: &str, since: usize) -> Result<()> {
        let target = self.ledger.sent.len();
        let started = self.ledger.sent.get(since).map(|s| s.at);
        report::wait_delivered(&self.phones, &self.ledger, &self.tracker, target, what).await?;
        self.timeline.say(&format!(
            "{what}: all {} stored on the recipients' phones{}",
            target - since,
            started
                .map(|t| format!(
                    " ({:.0} ms after the first was sent)",
                    t.elapsed().as_secs_f64() * 1000.0
                ))
                .unwrap_or_default()
        ));
        Ok(())
    }

    fn say_sealing(&self, from_index: usize, what: &str, why: &str) {
        let batch = &self.ledger.sent[from_index..];
        let sealed = batch.iter().filter(|s| s.sealed).count();
        self.timeline.say(&format!(
            "{what}: {sealed} of {} sealed, {} identified — {why}",
            batch.len(),
            batch.len() - sealed
        ));
    }
}
