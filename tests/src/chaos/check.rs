//! The invariants of a chaos run, checked on the state it settles into.
//!
//! A sender's own store is the truth about what was sent: a step answered
//! `ok` must be there, a step whose phone died under it may or may not be,
//! and whatever is there must reach its recipients. So, once every phone is
//! up and every outbox empty: every text and post a sender holds is stored
//! exactly once by every intended recipient, as its author last edited it,
//! and by nobody else; a deleted post is held by nobody; nothing is held that
//! its sender does not hold.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use super::plan::{Op, Plan};
use super::world::{Outcome, World};

/// What one phone holds of the run's traffic.
#[derive(Default, Debug)]
struct Holds {
    /// 1:1 texts received: (sender, body) → how many times.
    texts_in: HashMap<(usize, String), usize>,
    /// 1:1 texts sent: (recipient, body).
    texts_out: HashSet<(usize, String)>,
    /// Posts received: (author, tag) → bodies (one each time stored).
    posts_in: HashMap<(usize, String), Vec<String>>,
    /// Our posts: tag → bodies.
    posts_out: HashMap<String, Vec<String>>,
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
    loop {
        let mut holds = Vec::new();
        let mut queued = 0;
        for i in 0..w.phones.len() {
            let state = w.ask(i, &format!("state {} {}", w.channel, all.join(" ")))?;
            holds.push(parse(&state, &ids)?);
            queued += w.ask(i, "outbox")?.parse::<usize>().unwrap_or(usize::MAX);
        }
        let mut broken = violations(plan, outcomes, &holds);
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
        for (tag, bodies) in &h.posts_out {
            if bodies.len() != 1 {
                broken.push(format!(
                    "post {tag} held {} times by its author",
                    bodies.len()
                ));
            }
            for (r, other) in holds.iter().enumerate().filter(|(r, _)| *r != s) {
                let got = other.posts_in.get(&(s, tag.clone()));
                if got.map(Vec::as_slice) != Some(&bodies[..1]) {
                    broken.push(format!(
                        "post {tag} by {s} reads {:?} at its author, {got:?} at {r}",
                        bodies[0]
                    ));
                }
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
        for (author, tag) in h.posts_in.keys() {
            if !holds[*author].posts_out.contains_key(tag) {
                broken.push(format!("{r} holds post {tag} its author {author} does not"));
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
