//! Alerts in a chaos run: a second committee linked to the first through a
//! council, alerts raised by the first's organizer and cascading over the
//! link, answers from members along the way; and their invariants.
//!
//! The second committee is phone 1 (its organizer), phone 2 and the
//! outsiders, set up by invite links; phone 0 (the first's organizer)
//! proposes the link and phone 1 accepts, each its committee's delegate. An
//! alert raised at a step reaches the first committee's members at that
//! step (phone 0 makes every membership change, so its log is the plan's)
//! and every member of the second: each holds it exactly once, and shows it
//! at most once across all its processes' lives (a kill between the commit
//! and the log line may lose a showing, never add one); nobody else holds
//! it. Once settled, the answers phone 0 counts, summed over the committees
//! it reached, are the answers the recipients' stores hold.

use std::collections::{BTreeMap, BTreeSet};

use super::plan::{Op, Plan};
use super::posts::Members;
use super::world::{Outcome, World, SETUP};

impl World<'_> {
    /// Founds the second committee and links it to the first.
    pub(super) fn link(&mut self, plan: &Plan) -> Result<(), String> {
        self.linked = self.ask(1, "found linked")?;
        let members = linked_members(plan);
        for &p in members.iter().filter(|&&p| p != 1) {
            let link = self.ask(1, &format!("invite {}", self.linked))?;
            self.ask(p, &format!("join {link}"))?;
        }
        let roster = format!("roster {}", self.linked);
        for &p in &members {
            self.until(SETUP, "the linked committee forms", |w| {
                let r = w.ask(p, &roster)?;
                Ok(r.split(',').filter(|m| *m != "-").count() == members.len())
            })?;
        }
        let to = self.phones[1].id.clone();
        self.ask(0, &format!("link {} {to} {}", self.committee, self.linked))?;
        let council = self.ask(1, "accept")?;
        let roster = format!("roster {council}");
        for p in [0, 1] {
            self.until(SETUP, "both delegates hold the council", |w| {
                Ok(w.ask(p, &roster)?.split(',').count() == 2)
            })?;
        }
        Ok(())
    }
}

/// The second committee's members.
pub(super) fn linked_members(plan: &Plan) -> BTreeSet<usize> {
    [1, 2]
        .into_iter()
        .chain(plan.phones - plan.outsiders..plan.phones)
        .collect()
}

/// What one phone holds of the alerts: title → (times held, its answer),
/// and how many times each alert ID was shown.
#[derive(Default)]
pub(super) struct AlertHolds {
    held: BTreeMap<String, (usize, String)>,
    ids: BTreeMap<String, String>,
    shown: BTreeMap<String, usize>,
}

/// Parses a phone's `alerts` answer.
pub(super) fn parse(answer: &str) -> AlertHolds {
    let mut h = AlertHolds::default();
    for word in answer.split(' ') {
        let parts: Vec<&str> = word.splitn(3, ':').collect();
        match parts.as_slice() {
            ["a", title, answer] => {
                let e = h.held.entry(title.to_string()).or_default();
                e.0 += 1;
                e.1 = answer.to_string();
            }
            ["i", id, title] => {
                h.ids.insert(title.to_string(), id.to_string());
            }
            ["s", id] => *h.shown.entry(id.to_string()).or_default() += 1,
            _ => {}
        }
    }
    h
}

/// The alert invariants that do not hold, added to `broken`; the IDs of
/// the alerts whose counts must be asked of phone 0, with the counts
/// expected (`<answer>:<n>` words, as its `counts` answers).
pub(super) fn violations(
    plan: &Plan,
    outcomes: &[Outcome],
    holds: &[AlertHolds],
    broken: &mut Vec<String>,
) -> Vec<(String, String)> {
    let members = Members::of(plan);
    let linked = linked_members(plan);
    let mut counts = Vec::new();
    for (k, op) in plan.ops.iter().enumerate() {
        let Op::Alert { tag } = op else { continue };
        let raised = holds[0].held.get(tag).map_or(0, |h| h.0);
        if raised > 1 || (raised == 0 && outcomes[k] == Outcome::Done) {
            broken.push(format!("alert {tag} held {raised} times by its raiser"));
        }
        let id = holds[0].ids.get(tag);
        let mut answers: BTreeMap<String, usize> = BTreeMap::new();
        for (p, h) in holds.iter().enumerate().skip(1) {
            let meant = raised == 1 && (members.member_at(p, k) || linked.contains(&p));
            let n = h.held.get(tag).map_or(0, |h| h.0);
            if n != usize::from(meant) {
                broken.push(format!("alert {tag} held {n} times by {p}"));
            }
            let shown = id.and_then(|id| h.shown.get(id)).copied().unwrap_or(0);
            if shown > usize::from(meant) {
                broken.push(format!("alert {tag} shown {shown} times on {p}"));
            }
            if let Some((_, answer)) = h.held.get(tag).filter(|_| meant) {
                if answer != "-" {
                    *answers.entry(answer.clone()).or_default() += 1;
                }
            }
        }
        if let Some(id) = id {
            let words: Vec<String> = answers.iter().map(|(a, n)| format!("{a}:{n}")).collect();
            counts.push((id.clone(), words.join(" ")));
        }
    }
    counts
}
