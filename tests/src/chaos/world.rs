//! One chaos run as it happens: the relay process and the phone processes,
//! the set-up that every seed shares (a committee of every phone with one
//! discussion channel, sessions between every pair), the plan's steps played
//! in order, and the settling at the end — everything started again and every
//! outbox drained — before the invariants are checked.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::plan::{Op, Plan};
use super::process::{Failed, Process};
use super::proxy::Proxy;
use super::{check, posts, Binaries};

/// The longest any one command or start may take.
pub(super) const ANSWER: Duration = Duration::from_secs(60);
/// The longest the run may take to settle once every fault has stopped.
const SETTLE: Duration = Duration::from_secs(120);
/// The longest set-up may take to reach every phone.
pub(super) const SETUP: Duration = Duration::from_secs(60);

/// The committee as a sender folded it just before and just after a send:
/// whoever was in both was sent it; whoever was in one only, maybe.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Audience {
    pub(super) before: BTreeSet<usize>,
    pub(super) after: BTreeSet<usize>,
}

/// The prefix of a log line that goes into the run's one-line summary.
pub(super) const SUMMARY: &str = "summary: ";

/// What became of one step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Answered `ok`.
    Done,
    /// Answered `err`.
    Refused(String),
    /// Refused, nothing sent: a post before a member's rotated access key
    /// has come (it comes with their first message after a removal), or
    /// while a member has no session yet (a joiner not yet greeted, the
    /// relay down), or an edit or delete of a post that was never made.
    Declined(String),
    /// The phone died before answering: it may or may not have happened.
    Unknown,
    /// A fault or a start: nothing to check.
    Fault,
}

/// One phone: its store, its key, its account ID, its process while up.
pub(super) struct Slot {
    db: PathBuf,
    key: String,
    pub(super) id: String,
    pub(super) process: Option<Process>,
    /// Started with a failpoint armed.
    armed: bool,
}

pub(super) struct World<'a> {
    seed: u64,
    dir: &'a Path,
    bins: &'a Binaries,
    pub(super) relay: Option<Process>,
    relay_addr: SocketAddr,
    fingerprint: String,
    /// Between the phones and the relay, from the first start of the relay.
    proxy: Option<Proxy>,
    /// How far time has jumped, ms (relay and phones).
    pub(super) clock_ms: i64,
    /// Each phone's clock against the relay's.
    pub(super) skews: Vec<i64>,
    /// The relay's mailbox quota (0: its default).
    pub(super) quota: u64,
    pub(super) phones: Vec<Slot>,
    pub(super) committee: String,
    pub(super) channel: String,
    /// The second committee, linked to the first (`alerts`).
    pub(super) linked: String,
    pub(super) log: Vec<String>,
    /// Per step, for a post, edit or delete answered `ok`: who it went to.
    pub(super) audiences: Vec<Option<Audience>>,
    /// Posts declined, or whose phone died under them.
    unmade: std::collections::HashSet<String>,
}

impl<'a> World<'a> {
    /// Plays `plan` in `dir`: `Err((why, steps))` when a step could not be
    /// played or an invariant does not hold.
    pub(super) fn play(
        plan: &Plan,
        dir: &'a Path,
        bins: &'a Binaries,
    ) -> Result<Vec<String>, (String, Vec<String>)> {
        let mut world = World {
            seed: plan.seed,
            dir,
            bins,
            relay: None,
            relay_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            fingerprint: String::new(),
            proxy: None,
            clock_ms: 0,
            skews: plan.skews.clone(),
            quota: plan.quota,
            phones: Vec::new(),
            committee: String::new(),
            channel: String::new(),
            linked: String::new(),
            log: Vec::new(),
            audiences: Vec::new(),
            unmade: Default::default(),
        };
        match world.run(plan) {
            Ok(()) => Ok(world.log),
            Err(why) => Err((why, std::mem::take(&mut world.log))),
        }
    }

    fn run(&mut self, plan: &Plan) -> Result<(), String> {
        self.start_relay()?;
        for i in 0..plan.phones {
            // Keys from the seed: a replay opens the same kind of stores.
            let key = hex::encode(
                [plan.seed.to_le_bytes(), (i as u64).to_le_bytes()]
                    .concat()
                    .repeat(2),
            );
            self.phones.push(Slot {
                db: self.dir.join(format!("phone-{i}.db")),
                key,
                id: String::new(),
                process: None,
                armed: false,
            });
            self.start_phone(i, None)?;
            self.phones[i].id = self.ask(i, "id")?;
        }
        let t = Instant::now();
        self.setup(plan.phones - plan.outsiders)?;
        if plan.alerts {
            self.link(plan)?;
        }
        self.log
            .push(format!("set up in {:.1} s", t.elapsed().as_secs_f64()));
        let t = Instant::now();
        if let Some(p) = &self.proxy {
            p.set_faults(plan.net_faults);
        }
        let mut outcomes = Vec::with_capacity(plan.ops.len());
        for (i, op) in plan.ops.iter().enumerate() {
            self.reap()?;
            let (outcome, audience) = self.step(op)?;
            self.log.push(format!("{i:3} {op:?} -> {outcome:?}"));
            outcomes.push(outcome);
            self.audiences.push(audience);
            std::thread::sleep(Duration::from_millis(plan.pauses[i]));
        }
        if let Some(p) = &self.proxy {
            p.set_faults(false);
            self.log
                .push(format!("{SUMMARY}{} connections cut", p.cuts()));
        }
        self.log
            .push(format!("steps in {:.1} s", t.elapsed().as_secs_f64()));
        let t = Instant::now();
        self.settle()?;
        self.log
            .push(format!("back up in {:.1} s", t.elapsed().as_secs_f64()));
        let t = Instant::now();
        check::check(self, plan, &outcomes, SETTLE)?;
        self.log.push(format!("{SUMMARY}{}", plan.faults()));
        let declined = outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::Declined(_)))
            .count();
        if declined > 0 {
            self.log.push(format!(
                "{SUMMARY}{declined} sends declined (no access key or session yet)"
            ));
        }
        let late = posts::late_to_removed(plan, &self.audiences);
        if late > 0 {
            self.log.push(format!(
                "{SUMMARY}{late} posts sent to a member already removed"
            ));
        }
        self.log
            .push(format!("settled in {:.1} s", t.elapsed().as_secs_f64()));
        self.close()
    }

    fn start_relay(&mut self) -> Result<(), String> {
        let mut command = Command::new(&self.bins.relay);
        command
            .arg(self.dir.join("relay"))
            .arg(self.relay_addr.to_string())
            .arg(self.clock_ms.to_string())
            .arg(self.quota.to_string())
            .stderr(self.log_file("relay")?);
        let relay = Process::spawn(command).map_err(|e| format!("relay: {e}"))?;
        let line = relay
            .line(ANSWER)
            .map_err(|e| format!("relay start: {e}"))?;
        let mut words = line.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some("ready"), Some(addr), Some(fp)) => {
                self.relay_addr = addr.parse().map_err(|_| format!("relay said {line}"))?;
                self.fingerprint = fp.to_string();
            }
            _ => return Err(format!("relay start: {line}")),
        }
        self.relay = Some(relay);
        match &self.proxy {
            Some(p) => p.set_target(self.relay_addr),
            None => {
                let proxy =
                    Proxy::start(self.seed, self.relay_addr).map_err(|e| format!("proxy: {e}"))?;
                self.proxy = Some(proxy);
            }
        }
        Ok(())
    }

    fn log_file(&self, name: &str) -> Result<Stdio, String> {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("{name}.log")))
            .map(Stdio::from)
            .map_err(|e| format!("log file: {e}"))
    }

    /// The address phones dial.
    fn phone_addr(&self) -> SocketAddr {
        self.proxy.as_ref().map_or(self.relay_addr, Proxy::addr)
    }

    /// Starts phone `i` on its store, with `failpoint` (`<name>:<hit>`) armed.
    pub(super) fn start_phone(
        &mut self,
        i: usize,
        failpoint: Option<String>,
    ) -> Result<(), String> {
        let mut command = Command::new(&self.bins.phone);
        command
            .arg(&self.phones[i].db)
            .arg(self.phone_addr().to_string())
            .arg(&self.fingerprint)
            .arg((self.clock_ms + self.skews[i]).to_string())
            .env("RANKFILE_TEST_DB_KEY", &self.phones[i].key)
            .env_remove("RANKFILE_FAILPOINT")
            .stderr(self.log_file(&format!("phone-{i}"))?);
        let armed = failpoint.is_some();
        if let Some(f) = failpoint {
            command.env("RANKFILE_FAILPOINT", f);
        }
        let phone = Process::spawn(command).map_err(|e| format!("phone {i}: {e}"))?;
        match phone.line(ANSWER) {
            Ok(line) if line == "ready" => {}
            Ok(line) => return Err(format!("phone {i}'s store: {line}")),
            Err(e) => return Err(format!("phone {i} start: {e}")),
        }
        self.phones[i].process = Some(phone);
        self.phones[i].armed = armed;
        Ok(())
    }

    /// Phone `i` answers `command`; any failure is the run's.
    pub(super) fn ask(&mut self, i: usize, command: &str) -> Result<String, String> {
        self.try_ask(i, command)
            .map_err(|e| format!("phone {i} `{}`: {e}", short(command)))
    }

    pub(super) fn try_ask(&mut self, i: usize, command: &str) -> Result<String, Failed> {
        let phone = self.phones[i].process.as_mut().ok_or(Failed::Died)?;
        phone.ask(command, ANSWER)
    }

    /// Waits until `done` holds, asking again every 100 ms, for at most `wait`.
    pub(super) fn until(
        &mut self,
        wait: Duration,
        what: &str,
        mut done: impl FnMut(&mut Self) -> Result<bool, String>,
    ) -> Result<(), String> {
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            if done(self)? {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!("timed out: {what}"))
    }

    /// Whether phone `i` holds a 1:1 `body` from phone `from`.
    fn has_text(&mut self, i: usize, from: usize, body: &str) -> Result<bool, String> {
        let peer = self.phones[from].id.clone();
        let state = self.ask(i, &format!("state - - {peer}"))?;
        Ok(state.split(' ').any(|w| w == format!("t:{peer}:{body}")))
    }

    /// The first `n` phones know each other: the founder (phone 0) meets
    /// each one and founds a committee of them, with one discussion channel;
    /// each then posts a greeting, which opens sessions between every pair.
    /// The phones after them know nobody.
    fn setup(&mut self, n: usize) -> Result<(), String> {
        for i in 0..self.phones.len() {
            self.ask(i, "connected")?;
        }
        for j in 1..n {
            let id = self.phones[j].id.clone();
            self.ask(0, &format!("contact {id}"))?;
            self.ask(0, &format!("text {id} hi"))?;
        }
        let founder = self.phones[0].id.clone();
        for j in 1..n {
            self.until(SETUP, "the founder's hello", |w| w.has_text(j, 0, "hi"))?;
            self.ask(j, &format!("text {founder} hi"))?;
        }
        for j in 1..n {
            self.until(SETUP, "the answers", |w| w.has_text(0, j, "hi"))?;
        }
        self.committee = self.ask(0, "found chaos")?;
        for j in 1..n {
            let id = self.phones[j].id.clone();
            self.ask(0, &format!("add {} {id}", self.committee))?;
        }
        self.channel = self.ask(0, &format!("channel {}", self.committee))?;
        let members = format!("members {} {}", self.committee, self.channel);
        for i in 0..n {
            self.until(SETUP, "every member has the channel", |w| {
                Ok(w.ask(i, &members)? == n.to_string())
            })?;
        }
        for i in 0..n {
            let post = format!("post {} {} h{i}", self.committee, self.channel);
            self.ask(i, &post)?;
        }
        let state = format!("state {} {}", self.committee, self.channel);
        for i in 0..n {
            self.until(SETUP, "every greeting", |w| {
                let s = w.ask(i, &state)?;
                Ok((0..n)
                    .filter(|&j| j != i)
                    .all(|j| s.contains(&format!("p:{}:h{j}", w.phones[j].id))))
            })?;
        }
        Ok(())
    }

    /// Plays one step: what became of it, and for a send who it went to.
    fn step(&mut self, op: &Op) -> Result<(Outcome, Option<Audience>), String> {
        let (com, chan) = (&self.committee, &self.channel);
        let (phone, command) = match op {
            Op::Text { from, to, tag } => (*from, format!("text {} {tag}", self.phones[*to].id)),
            Op::Post { from, tag } => (*from, format!("post {com} {chan} {tag}")),
            Op::Edit { from, tag, body } => (*from, format!("edit {com} {chan} {tag} {body}")),
            Op::Delete { from, tag } => (*from, format!("delete {com} {chan} {tag}")),
            Op::Remove { phone } => (0, format!("remove {com} {}", self.phones[*phone].id)),
            Op::SetRole { phone, role } => {
                (0, format!("role {com} {} {role}", self.phones[*phone].id))
            }
            Op::Alert { tag } => (0, format!("alert {com} {tag}")),
            Op::Answer { phone, answer } => (*phone, format!("answer {answer}")),
            Op::Join { phone } => return Ok((self.join(*phone)?, None)),
            Op::KillPhone { phone } => {
                if let Some(mut p) = self.phones[*phone].process.take() {
                    p.kill();
                }
                return Ok((Outcome::Fault, None));
            }
            Op::StartPhone { phone } => {
                self.start_phone(*phone, None)?;
                return Ok((Outcome::Fault, None));
            }
            Op::ArmPhone { phone, point, hit } => {
                if let Some(mut p) = self.phones[*phone].process.take() {
                    p.kill();
                }
                self.start_phone(*phone, Some(format!("{point}:{hit}")))?;
                return Ok((Outcome::Fault, None));
            }
            Op::KillRelay => {
                if let Some(mut r) = self.relay.take() {
                    r.kill();
                }
                return Ok((Outcome::Fault, None));
            }
            Op::StartRelay => {
                self.start_relay()?;
                return Ok((Outcome::Fault, None));
            }
            Op::Clock { ms } => {
                self.jump(*ms)?;
                return Ok((Outcome::Fault, None));
            }
        };
        let outcome = match self.try_ask(phone, &command) {
            Ok(answer) => {
                let audience = match op {
                    Op::Post { .. } | Op::Edit { .. } | Op::Delete { .. } => {
                        Some(self.audience(&answer)?)
                    }
                    _ => None,
                };
                return Ok((Outcome::Done, audience));
            }
            Err(Failed::Refused(why)) => self.refused(op, why),
            Err(Failed::Died) => {
                if let Op::Post { tag, .. } = op {
                    // Maybe never made: an edit of it may find nothing.
                    self.unmade.insert(tag.clone());
                }
                // Died under the command (a failpoint): start it again.
                if let Some(mut p) = self.phones[phone].process.take() {
                    p.kill();
                }
                self.start_phone(phone, None)?;
                Outcome::Unknown
            }
            Err(Failed::Timeout) => {
                return Err(format!("phone {phone} `{}`: no answer", short(&command)))
            }
        };
        match (op, &outcome) {
            // A membership change whose organizer died under it is made
            // again if it did not take, so that the run's membership is the
            // plan's.
            (Op::Remove { .. } | Op::SetRole { .. }, Outcome::Unknown) => {
                Ok((self.complete_change(op, &command)?, None))
            }
            _ => Ok((outcome, None)),
        }
    }

    /// What a refusal of `op` is: declined by design, or a violation.
    fn refused(&mut self, op: &Op, why: String) -> Outcome {
        match op {
            Op::Post { tag, .. }
                if why.starts_with("no access key from") || why.starts_with("no session with") =>
            {
                self.unmade.insert(tag.clone());
                Outcome::Declined(why)
            }
            Op::Edit { tag, .. } | Op::Delete { tag, .. }
                if why.starts_with("no post") && self.unmade.contains(tag) =>
            {
                Outcome::Declined(why)
            }
            Op::Edit { .. } | Op::Delete { .. }
                if why.starts_with("no access key from") || why.starts_with("no session with") =>
            {
                Outcome::Declined(why)
            }
            _ => Outcome::Refused(why),
        }
    }

    /// Starts again, unarmed, every phone that died at its failpoint.
    pub(super) fn reap(&mut self) -> Result<(), String> {
        for i in 0..self.phones.len() {
            if self.phones[i].process.as_mut().is_some_and(|p| p.exited()) {
                self.phones[i].process = None;
                self.log
                    .push(format!("    phone {i} died at its failpoint"));
                self.start_phone(i, None)?;
            }
        }
        Ok(())
    }

    /// Every fault stops: the relay and every phone up and connected.
    fn settle(&mut self) -> Result<(), String> {
        if self.relay.is_none() {
            self.start_relay()?;
        }
        for i in 0..self.phones.len() {
            // A failpoint still armed is disarmed: a clean stop and start.
            if self.phones[i].armed {
                if let Some(mut p) = self.phones[i].process.take() {
                    p.stop(ANSWER);
                }
            }
            let dead = self.phones[i].process.as_mut().is_none_or(|p| p.exited());
            if dead {
                self.phones[i].process = None;
                self.start_phone(i, None)?;
            }
            self.ask(i, "connected")?;
        }
        Ok(())
    }

    /// Stops every phone and the relay, then opens every store here: none
    /// may be left unopenable.
    fn close(&mut self) -> Result<(), String> {
        for (i, slot) in self.phones.iter_mut().enumerate() {
            if let Some(mut p) = slot.process.take() {
                if !p.stop(ANSWER) {
                    return Err(format!("phone {i} did not stop cleanly"));
                }
            }
            let key = hex::decode(&slot.key).map_err(|e| e.to_string())?;
            let key = rankfile_core::DatabaseKey::from_slice(&key).map_err(|e| e.to_string())?;
            rankfile_core::Account::open(&slot.db, &key)
                .and_then(|a| a.message_count())
                .map_err(|e| format!("phone {i}'s store is unopenable: {e}"))?;
        }
        if let Some(mut r) = self.relay.take() {
            r.stop(ANSWER);
        }
        Ok(())
    }
}

/// A command without its long IDs, for messages.
fn short(command: &str) -> String {
    command
        .split(' ')
        .map(|w| if w.len() > 12 { &w[..8] } else { w })
        .collect::<Vec<_>>()
        .join(" ")
}
