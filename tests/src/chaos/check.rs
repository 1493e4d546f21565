//! The invariants of a chaos run, checked on the state it settles into.
//!
//! A sender's own store is the truth about what was sent: a step answered
//! `ok` must be there, a step whose phone died under it may or may not be,
//! and whatever is there must reach its recipients. So, once every phone is
//! up and every outbox empty: every text a sender holds is stored exactly
//! once by its recipient and by nobody else; nothing is held that its
//! sender does not hold; posts as `posts` says (their recipients are the
//! membership at send time); and every phone in the committee folds the
//! same committee state: the plan's members with the plan's roles.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use super::plan::{Op, Plan};
use super::world::{Outcome, World};
use super::{alerts, posts};

/// How long outboxes may stay full before time is moved past the wait of
/// parked envelopes (`World::unpark`).
const UNPARK_AFTER: Duration = Duration::from_secs(10);

/// What one phone holds of the run's traffic.
#[derive(Default, Debug)]
pub(super) struct Holds {
    /// 1:1 texts received: (sender, body) → how many times.
    texts_in: HashMap<(usize, String), usize>,
    /// 1:1 texts sent: (recipient, body).
    texts_out: HashSet<(usize, String)>,
    /// Posts received: (author, tag) → bodies (one each time stored).
    pub(super) posts_in: HashMap<(usize, String), Vec<String>>,
    /// Our posts: tag → bodies.
    pub(super) posts_out: HashMap<String, Vec<String>>,
    /// The committee's members as this phone folds them: phone → role.
    roster: BTreeMap<usize, String>,
    /// A digest of the committee state this phone folds.
    digest: String,
}

/// Whether `body` is traffic of the plan (`m<i>`, `p<i>`, `p<i>.e<j>`), not set-up.
fn planned(body: &str, kind: char) -> bool {
    let mut chars = body.chars();
    chars.next() == Some(kind) && chars.next().is_some_and(|c| c.is_ascii_digit())
}

/// The post a body is (an edit keeps its post's tag before the dot).
fn tag_of(body: &str) -> &str {
    body.split('.').next().unwrap_or(body)
}

fn parse(state: &str, ids: &HashMap<String, usize>) -> Result<Holds, String> {
    let mut h = Holds::default();
    let who = |id: &str| {
        ids.get(id)
            .copied()
            .ok_or_else(|| format!("state names an unknown account {id}"))
    };
    for word in state.split(' ').filter(|w| !w.is_empty()) {
        if let Some(digest) = word.strip_prefix("c:") {
            h.digest = digest.to_string();
            continue;
        }
        if let Some(roster) = word.strip_prefix("r:") {
            for m in roster.split(',').filter(|m| *m != "-") {
                let (id, role) = m.split_once(':').unwrap_or((m, ""));
                h.roster.insert(who(id)?, role.to_string());
            }
            continue;
        }
        let parts: Vec<&str> = word.splitn(3, ':').collect();
        match parts.as_slice() {
            ["t", from, body] if planned(body, 'm') => {
                *h.texts_in
                    .entry((who(from)?, body.to_string()))
                    .or_default() += 1;
            }
            ["o", to, body] if planned(body, 'm') => {
                h.texts_out.insert((who(to)?, body.to_string()));
            }
            ["p", author, body] if planned(body, 'p') => h
                .posts_in
                .entry((who(author)?, tag_of(body).to_string()))
                .or_default()
                .push(body.to_string()),
            ["q", body] if planned(body, 'p') => h
                .posts_out
                .entry(tag_of(body).to_string())
                .or_default()
                .push(body.to_string()),
            _ => {}
        }
    }
    Ok(h)
}

/// Asks every phone for its state and outbox until every invariant holds
/// and every outbox is empty, for at most `wait`; the violations left then.
pub(super) fn check(
    w: &mut World,
    plan: &Plan,
    outcomes: &[Outcome],
    wait: Duration,
) -> Result<(), String> {
    let ids: HashMap<String, usize> = w
        .phones
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.clone(), i))
        .collect();
    let all: Vec<String> = w.phones.iter().map(|s| s.id.clone()).collect();
    let deadline = Instant::now() + wait;
    let mut unpark = Instant::now() + UNPARK_AFTER;
    let mut rounds = 0;
    loop {
        let mut holds = Vec::new();
        let mut queued = 0;
        for i in 0..w.phones.len() {
            let state = w.ask(
                i,
                &format!("state {} {} {}", w.committee, w.channel, all.join(" ")),
            )?;
            holds.push(parse(&state, &ids)?);
            queued += w.ask(i, "outbox")?.parse::<usize>().unwrap_or(usize::MAX);
        }
        let mut broken = violations(plan, outcomes, &holds);
        posts::violations(plan, outcomes, &w.audiences, &holds, &mut broken);
        folds(plan, &holds, &mut broken);
        if plan.alerts {
            alert_counts(w, plan, outcomes, &mut broken, &mut rounds)?;
        }
        if queued > 0 {
            broken.push(format!("{queued} envelopes still in outboxes"));
        }
        if broken.is_empty() {
            return Ok(());
        }
        if std::env::var_os("RANKFILE_CHAOS_VERBOSE").is_some() {
            let mut conns = Vec::new();
            for i in 0..w.phones.len() {
                conns.push(format!(
                    "{}/{}",
                    w.ask(i, "connection")?,
                    w.ask(i, "outbox")?
                ));
            }
            eprintln!(
                "chaos seed {}: waiting ({}): {}",
                plan.seed,
                conns.join(" "),
                broken.len()
            );
        }
        if Instant::now() > deadline {
            return Err(format!("after settling: {}", broken.join("; ")));
        }
        if queued > 0 && Instant::now() > unpark {
            w.unpark()?;
            unpark = Instant::now() + UNPARK_AFTER;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Every invariant that does not hold, in words.
fn violations(plan: &Plan, outcomes: &[Outcome], holds: &[Holds]) -> Vec<String> {
    let mut broken = Vec::new();
    steps_held(plan, outcomes, holds, &mut broken);
    for (s, h) in holds.iter().enumerate() {
        for (to, body) in &h.texts_out {
            let n = holds[*to]
                .texts_in
                .get(&(s, body.clone()))
                .copied()
                .unwrap_or(0);
            if n != 1 {
                broken.push(format!("text {body} ({s}→{to}) stored {n} times by {to}"));
            }
        }
    }
    for (r, h) in holds.iter().enumerate() {
        for (from, body) in h.texts_in.keys() {
            if !holds[*from].texts_out.contains(&(r, body.clone())) {
                broken.push(format!(
                    "{r} holds text {body} its sender {from} never sent it"
                ));
            }
        }
    }
    broken
}

/// Every step answered `ok` left its mark in its phone's store; no send was
/// refused.
fn steps_held(plan: &Plan, outcomes: &[Outcome], holds: &[Holds], broken: &mut Vec<String>) {
    let gone: HashSet<&str> = plan
        .ops
        .iter()
        .zip(outcomes)
        .filter_map(|(op, o)| match op {
            Op::Delete { tag, .. } if matches!(o, Outcome::Done | Outcome::Unknown) => {
                Some(tag.as_str())
            }
            _ => None,
        })
        .collect();
    let mut last_edit: HashMap<&str, (&str, &Outcome)> = HashMap::new();
    for (i, (op, outcome)) in plan.ops.iter().zip(outcomes).enumerate() {
        if let Outcome::Refused(why) = outcome {
            broken.push(format!("step {i} {op:?} refused: {why}"));
            continue;
        }
        match (op, outcome) {
            (Op::Text { from, to, tag }, Outcome::Done)
                if !holds[*from].texts_out.contains(&(*to, tag.clone())) =>
            {
                broken.push(format!("text {tag}, sent, is not in its sender's store"));
            }
            (Op::Post { from, tag }, Outcome::Done)
                if !gone.contains(tag.as_str()) && !holds[*from].posts_out.contains_key(tag) =>
            {
                broken.push(format!("post {tag}, sent, is not in its author's store"));
            }
            (Op::Edit { tag, body, .. }, o) => {
                last_edit.insert(tag, (body, o));
            }
            (Op::Delete { from, tag }, Outcome::Done)
                if holds[*from].posts_out.contains_key(tag) =>
            {
                broken.push(format!(
                    "post {tag}, deleted, is still in its author's store"
                ));
            }
            _ => {}
        }
    }
    for (tag, (body, outcome)) in last_edit {
        let from = plan.ops.iter().find_map(|op| match op {
            Op::Post { from, tag: t } if t == tag => Some(*from),
            _ => None,
        });
        let held = from.and_then(|f| holds[f].posts_out.get(tag));
        if let (Outcome::Done, Some(bodies)) = (outcome, held) {
            if bodies.first().map(String::as_str) != Some(body) {
                broken.push(format!(
                    "post {tag} reads {bodies:?}, last edited to {body}"
                ));
            }
        }
    }
}

/// Every phone in the committee at the end folds the same state, with the
/// plan's members and roles.
fn folds(plan: &Plan, holds: &[Holds], broken: &mut Vec<String>) {
    let members = posts::Members::of(plan);
    let expected: BTreeMap<usize, String> = (0..plan.phones)
        .filter(|&p| members.at_end(p))
        .map(|p| (p, members.role_at_end(p).to_string()))
        .collect();
    let mut digests = HashSet::new();
    for p in expected.keys() {
        if holds[*p].roster != expected {
            broken.push(format!(
                "phone {p} folds the members {:?}, the plan {expected:?}",
                holds[*p].roster
            ));
        }
        digests.insert(holds[*p].digest.as_str());
    }
    if digests.len() > 1 {
        broken.push(format!(
            "the members fold {} committee states",
            digests.len()
        ));
    }
}

/// The alert invariants (`alerts`), with phone 0's counts; every few rounds
/// that the counts are not there yet, every phone sends the counts it owes
/// back along the cascade now rather than when they fall due.
fn alert_counts(
    w: &mut World,
    plan: &Plan,
    outcomes: &[Outcome],
    broken: &mut Vec<String>,
    rounds: &mut usize,
) -> Result<(), String> {
    let mut holds = Vec::new();
    for i in 0..w.phones.len() {
        holds.push(alerts::parse(&w.ask(i, "alerts")?));
    }
    let mut short = false;
    for (id, expected) in alerts::violations(plan, outcomes, &holds, broken) {
        let counted = w.ask(0, &format!("counts {id}"))?;
        if counted != expected {
            short = true;
            broken.push(format!(
                "alert {id:.8} counted [{counted}], answered [{expected}]"
            ));
        }
    }
    *rounds += 1;
    if short && *rounds % 8 == 0 {
        for i in 0..w.phones.len() {
            w.ask(i, "rollcall")?;
        }
    }
    Ok(())
}
