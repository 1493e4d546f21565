//! The invariants on channel posts, with the membership moving under them.
//!
//! Who a post is for is the committee as its sender folded it when it sent:
//! a post answered `ok` names the sender's roster just before and just after
//! the send, so a phone in both was sent it (it must store it exactly once)
//! and a phone in one only may have been (at most once); a phone in neither
//! must not hold it. When the answer was lost (the sender died under the
//! send), the founders not yet removed were sent it and anyone a member by
//! then may have been. This is where a removed member is checked: it holds
//! no post its sender sent with the removal folded, and no edit either. A
//! post sent after the removal step was answered `ok` by a sender that had
//! not folded the removal yet is concurrent with it and allowed either way:
//! end to end, a sender's device cannot know a removal it has not received.
//!
//! The mirror case: a post or edit by a member removed later may reach a
//! member only after it has folded its author's removal, and a member's
//! device refuses channel messages from a non-member; it cannot tell when
//! the post was sent. So posts by an author removed later are held at most
//! once, by those it was sent to, as sent or edited (seeds 32, 35, 44).
//!
//! A post its author still holds reads, at every member sent it who is still
//! a member, as its author last edited it; a removed member's copy reads the
//! post or an edit sent to it. A post its author no longer holds (deleted,
//! or never committed) is held only by a removed member the delete did not
//! go to.

use std::collections::{BTreeSet, HashMap};

use super::check::Holds;
use super::plan::{Op, Plan};
use super::world::{Audience, Outcome};

/// The membership of a run, from its plan (each membership step ends with
/// the plan's membership made true: `membership`).
pub(super) struct Members {
    founders: usize,
    /// The step a phone joined at.
    joined: Vec<Option<usize>>,
    /// The step a phone was removed at.
    removed: Vec<Option<usize>>,
    /// Roles at the end.
    roles: Vec<&'static str>,
}

impl Members {
    pub(super) fn of(plan: &Plan) -> Members {
        let mut m = Members {
            founders: plan.phones - plan.outsiders,
            joined: vec![None; plan.phones],
            removed: vec![None; plan.phones],
            roles: vec!["member"; plan.phones],
        };
        m.roles[0] = "organizer";
        for (k, op) in plan.ops.iter().enumerate() {
            match op {
                Op::Join { phone } => m.joined[*phone] = Some(k),
                Op::Remove { phone } => m.removed[*phone] = Some(k),
                Op::SetRole { phone, role } => m.roles[*phone] = role,
                _ => {}
            }
        }
        m
    }

    fn ever_by(&self, p: usize, k: usize) -> bool {
        p < self.founders || self.joined[p].is_some_and(|j| j < k)
    }

    /// Whether `p` is a member when step `k` is played.
    pub(super) fn member_at(&self, p: usize, k: usize) -> bool {
        self.ever_by(p, k) && self.removed[p].is_none_or(|r| r > k)
    }

    pub(super) fn at_end(&self, p: usize) -> bool {
        (p < self.founders || self.joined[p].is_some()) && self.removed[p].is_none()
    }

    pub(super) fn role_at_end(&self, p: usize) -> &'static str {
        self.roles[p]
    }

    /// (sent to, maybe sent to) of the send at step `k` by `s`.
    fn audience(&self, k: usize, s: usize, answer: Option<&Audience>) -> (Set, Set) {
        let n = self.joined.len();
        let (sure, maybe): (Set, Set) = match answer {
            Some(a) => (
                a.before.intersection(&a.after).copied().collect(),
                a.before.symmetric_difference(&a.after).copied().collect(),
            ),
            None => (
                (0..self.founders)
                    .filter(|&p| self.removed[p].is_none_or(|r| r > k))
                    .collect(),
                (0..n).filter(|&p| self.ever_by(p, k)).collect(),
            ),
        };
        let maybe = maybe.difference(&sure).copied().collect();
        let drop = |mut set: Set| {
            set.remove(&s);
            set
        };
        (drop(sure), drop(maybe))
    }
}

type Set = BTreeSet<usize>;

/// One post of the plan: its step, its author, and its edits and delete.
struct Post<'a> {
    step: usize,
    from: usize,
    /// (step, body) of each edit played.
    edits: Vec<(usize, &'a str)>,
    deleted: Option<usize>,
}

/// Every post invariant that does not hold, in words, added to `broken`.
pub(super) fn violations(
    plan: &Plan,
    outcomes: &[Outcome],
    audiences: &[Option<Audience>],
    holds: &[Holds],
    broken: &mut Vec<String>,
) {
    let members = Members::of(plan);
    let mut posts: HashMap<&str, Post> = HashMap::new();
    let played = |k: usize| matches!(outcomes[k], Outcome::Done | Outcome::Unknown);
    for (k, op) in plan.ops.iter().enumerate() {
        match op {
            Op::Post { from, tag } => {
                posts.insert(
                    tag,
                    Post {
                        step: k,
                        from: *from,
                        edits: Vec::new(),
                        deleted: None,
                    },
                );
            }
            Op::Edit { tag, body, .. } if played(k) => {
                if let Some(p) = posts.get_mut(tag.as_str()) {
                    p.edits.push((k, body));
                }
            }
            Op::Delete { tag, .. } if played(k) => {
                if let Some(p) = posts.get_mut(tag.as_str()) {
                    p.deleted = Some(k);
                }
            }
            _ => {}
        }
    }
    let audience = |k: usize, s: usize| members.audience(k, s, audiences[k].as_ref());
    for (tag, post) in &posts {
        let s = post.from;
        let own = holds[s].posts_out.get(*tag);
        if let Some(bodies) = own.filter(|b| b.len() != 1) {
            broken.push(format!(
                "post {tag} held {} times by its author",
                bodies.len()
            ));
        }
        let (mut sure, mut maybe) = audience(post.step, s);
        if members.removed[s].is_some() {
            // Concurrent with its author's removal at every recipient.
            maybe.append(&mut sure);
        }
        for (r, other) in holds.iter().enumerate().filter(|(r, _)| *r != s) {
            let got = other.posts_in.get(&(s, tag.to_string()));
            let n = got.map_or(0, Vec::len);
            let is_removed = members.removed[r].is_some();
            // The bodies r may read: the post and the edits sent to it.
            let mut allowed = vec![tag.to_string()];
            for (e, body) in &post.edits {
                let (es, em) = audience(*e, s);
                if es.contains(&r) || em.contains(&r) {
                    allowed.push(body.to_string());
                }
            }
            let wrong_body = got.into_iter().flatten().find(|b| !allowed.contains(*b));
            if let Some(b) = wrong_body {
                broken.push(format!(
                    "{r} holds post {tag} by {s} as {b}, never sent to it"
                ));
            }
            if !sure.contains(&r) && !maybe.contains(&r) {
                if n > 0 {
                    broken.push(format!("{r} holds post {tag} by {s}, not sent to it"));
                }
                continue;
            }
            let Some(bodies) = own else {
                // Deleted or never committed: only a removed member the
                // delete did not go to may still hold it.
                let kept = post.deleted.is_some_and(|d| !audience(d, s).0.contains(&r));
                if n > usize::from(is_removed && kept) {
                    broken.push(format!(
                        "{r} holds post {tag} by {s}, which its author does not"
                    ));
                }
                continue;
            };
            if n > 1 || (n == 0 && sure.contains(&r)) {
                broken.push(format!("post {tag} by {s} stored {n} times by {r}"));
            }
            let current = sure.contains(&r) && !is_removed && members.removed[s].is_none();
            if current && n == 1 && got.map(|g| &g[..]) != Some(&bodies[..1]) {
                broken.push(format!(
                    "post {tag} by {s} reads {:?} at its author, {got:?} at {r}",
                    bodies[0]
                ));
            }
        }
    }
}

/// Posts sent after a member's removal step whose sender had not folded the
/// removal yet (so the removed member was sent them): concurrent with it.
pub(super) fn late_to_removed(plan: &Plan, audiences: &[Option<Audience>]) -> usize {
    let members = Members::of(plan);
    plan.ops
        .iter()
        .enumerate()
        .filter(|(k, op)| {
            matches!(op, Op::Post { .. })
                && audiences[*k].as_ref().is_some_and(|a| {
                    a.before
                        .union(&a.after)
                        .any(|r| members.removed[*r].is_some_and(|at| at < *k))
                })
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Phone 1 posts p0, phone 0 removes phone 3, phone 1 posts p2 with
    /// `late` its roster (before and after) for p2.
    fn run(late: &[usize]) -> (Plan, Vec<Outcome>, Vec<Option<Audience>>) {
        let plan = Plan {
            seed: 0,
            phones: 4,
            outsiders: 0,
            ops: vec![
                Op::Post {
                    from: 1,
                    tag: "p0".into(),
                },
                Op::Remove { phone: 3 },
                Op::Post {
                    from: 1,
                    tag: "p2".into(),
                },
            ],
            pauses: vec![0; 3],
            net_faults: false,
            quota: 0,
            skews: vec![0; 4],
            alerts: false,
        };
        let everyone: Set = (0..4).collect();
        let late: Set = late.iter().copied().collect();
        let audiences = vec![
            Some(Audience {
                before: everyone.clone(),
                after: everyone,
            }),
            None,
            Some(Audience {
                before: late.clone(),
                after: late,
            }),
        ];
        (plan, vec![Outcome::Done; 3], audiences)
    }

    fn holds(removed_holds_p2: bool) -> Vec<Holds> {
        let mut h: Vec<Holds> = (0..4).map(|_| Holds::default()).collect();
        for tag in ["p0", "p2"] {
            h[1].posts_out.insert(tag.into(), vec![tag.into()]);
            for r in [0, 2] {
                h[r].posts_in.insert((1, tag.into()), vec![tag.into()]);
            }
        }
        h[3].posts_in.insert((1, "p0".into()), vec!["p0".into()]);
        if removed_holds_p2 {
            h[3].posts_in.insert((1, "p2".into()), vec!["p2".into()]);
        }
        h
    }

    fn broken(late: &[usize], removed_holds_p2: bool) -> Vec<String> {
        let (plan, outcomes, audiences) = run(late);
        let mut broken = Vec::new();
        violations(
            &plan,
            &outcomes,
            &audiences,
            &holds(removed_holds_p2),
            &mut broken,
        );
        broken
    }

    #[test]
    fn a_removed_member_holding_a_post_sent_with_its_removal_folded_is_caught() {
        assert!(broken(&[0, 1, 2], false).is_empty());
        let b = broken(&[0, 1, 2], true);
        assert_eq!(b.len(), 1, "{b:?}");
        assert!(b[0].contains("3 holds post p2"), "{b:?}");
    }

    #[test]
    fn a_post_whose_sender_had_not_folded_the_removal_must_reach_the_removed_member() {
        // Sent to phone 3 (its sender still had it): it must arrive.
        assert!(broken(&[0, 1, 2, 3], true).is_empty());
        let b = broken(&[0, 1, 2, 3], false);
        assert!(b.iter().any(|v| v.contains("stored 0 times by 3")), "{b:?}");
    }
}
