//! The plan of one chaos run: how many phones, and the operations and faults
//! in order, drawn from the seed by a ChaCha RNG and nothing else, so the same
//! seed always plans the same run.
//!
//! Tags name what is sent: `m<i>` a 1:1 text, `p<i>` a channel post (edited
//! to `p<i>.e<j>`), `i` being the step that sent it, so every body of a run
//! is unique and the invariants can count it on every phone.
//!
//! Membership moves too: the last `outsiders` phones start outside the
//! committee and join it from an invite link phone 0 (the founder, the one
//! organizer) makes; phone 0 removes members and changes their roles. A
//! phone posts only while a member; 1:1 texts go between phones that have
//! met (every founding member with every other; a joiner with phone 0).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// One step of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Phone `from` sends a 1:1 text `tag` to phone `to`.
    Text { from: usize, to: usize, tag: String },
    /// Phone `from` posts `tag` in the committee's channel.
    Post { from: usize, tag: String },
    /// Phone `from` edits its post `tag` to read `body`.
    Edit {
        from: usize,
        tag: String,
        body: String,
    },
    /// Phone `from` deletes its post `tag`.
    Delete { from: usize, tag: String },
    /// Phone `phone` is killed (SIGKILL), wherever it is.
    KillPhone { phone: usize },
    /// Phone `phone` is started again on its store.
    StartPhone { phone: usize },
    /// Phone `phone` is killed and started again with a core failpoint
    /// armed: it dies by itself the `hit`-th time it reaches `point` (if it
    /// does) and is then started again unarmed.
    ArmPhone {
        phone: usize,
        point: &'static str,
        hit: u64,
    },
    /// The relay is killed (SIGKILL).
    KillRelay,
    /// The relay is started again on its data and address.
    StartRelay,
    /// Phone 0 makes an invite and phone `phone`, outside the committee,
    /// joins from its link; the step ends once both hold the admission.
    Join { phone: usize },
    /// Phone 0 removes phone `phone` from the committee.
    Remove { phone: usize },
    /// Phone 0 gives member `phone` the role `role` (`member`, `delegate`).
    SetRole { phone: usize, role: &'static str },
    /// Time jumps forward `ms` for the relay and every phone (a phone that
    /// is down sees it when it starts): past a parked envelope's longest
    /// wait, or past a sender certificate's lifetime.
    Clock { ms: i64 },
    /// Phone 0 raises alert `tag` in the committee, on along the link.
    Alert { tag: String },
    /// Phone `phone` answers the newest alert it holds and has not answered.
    Answer { phone: usize, answer: &'static str },
}

/// What a seed plans.
#[derive(Clone, Debug)]
pub struct Plan {
    pub seed: u64,
    /// Phones in the run; phone 0 founds the committee.
    pub phones: usize,
    /// The last `outsiders` phones are not in the committee at first.
    pub outsiders: usize,
    pub ops: Vec<Op>,
    /// How long to let traffic flow after each step, ms: faults land while
    /// deliveries are under way, not between quiet moments.
    pub pauses: Vec<u64>,
    /// Whether the proxy between phones and relay delays and cuts during
    /// the steps (`proxy`).
    pub net_faults: bool,
    /// The relay's mailbox quota (messages), when small enough for a phone
    /// that is off to fill its mailbox; 0 keeps the relay's default.
    pub quota: u64,
    /// Each phone's clock against the relay's, ms.
    pub skews: Vec<i64>,
    /// Whether a second committee is linked to the first and alerts are
    /// raised (`alerts`): phone 1 founds it, with phone 2 and the outsiders.
    pub alerts: bool,
}

/// The answers a phone gives to an alert.
const ANSWERS: [&str; 4] = ["received", "coming", "cannot", "safe"];

/// A small mailbox quota: a phone off for a few steps fills it.
const SMALL_QUOTA: std::ops::RangeInclusive<u64> = 8..=24;
/// The most a phone's clock is off against the relay's, ms (five minutes).
const MAX_SKEW_MS: i64 = 5 * 60 * 1000;
/// Time jumps: past the longest wait of a parked envelope (eleven minutes),
/// past a sender certificate's lifetime (a day and an hour).
const JUMPS_MS: [i64; 2] = [11 * 60 * 1000, 25 * 3600 * 1000];

/// The core's failpoints (`core/src/failpoint.rs`): after a receive batch is
/// decrypted and before it commits; after it commits and before the relay
/// hears the acknowledgement; after a committee change commits and before
/// its sends leave.
pub const FAILPOINTS: [&str; 3] = [
    "receive_before_commit",
    "receive_before_ack",
    "committee_change_committed",
];

/// The longest pause after a step, ms.
const MAX_PAUSE_MS: u64 = 250;

impl Plan {
    /// The faults and moves of the plan in words, for the run's summary.
    pub fn faults(&self) -> String {
        let count = |f: fn(&Op) -> bool| self.ops.iter().filter(|o| f(o)).count();
        let mut words = vec![
            format!("{} joins", count(|o| matches!(o, Op::Join { .. }))),
            format!("{} removals", count(|o| matches!(o, Op::Remove { .. }))),
            format!("{} relay kills", count(|o| matches!(o, Op::KillRelay))),
            format!(
                "{} phone kills",
                count(|o| matches!(o, Op::KillPhone { .. } | Op::ArmPhone { .. }))
            ),
        ];
        // A phone down while time passes a certificate's lifetime.
        let mut down = vec![false; self.phones];
        let mut past_certificate = 0;
        for op in &self.ops {
            match op {
                Op::KillPhone { phone } => down[*phone] = true,
                Op::StartPhone { phone } => down[*phone] = false,
                Op::Clock { ms } if *ms >= JUMPS_MS[1] => {
                    past_certificate += down.iter().filter(|d| **d).count()
                }
                _ => {}
            }
        }
        words.push(format!(
            "{} time jumps ({past_certificate} phones off past a certificate)",
            count(|o| matches!(o, Op::Clock { .. }))
        ));
        if self.quota > 0 {
            words.push(format!("mailbox quota {}", self.quota));
        }
        words.join(", ")
    }
}

/// A post that may still be edited or deleted.
struct LivePost {
    from: usize,
    tag: String,
}

/// Who is where, as the plan has it so far.
struct Model {
    up: Vec<bool>,
    member: Vec<bool>,
    /// Joined or removed: no second membership change for this phone.
    moved: Vec<bool>,
    delegate: Vec<bool>,
    /// `met[a][b]`: `a` can text `b` (they have a session).
    met: Vec<Vec<bool>>,
}

impl Model {
    fn live_members(&self) -> usize {
        (0..self.up.len())
            .filter(|&p| self.up[p] && self.member[p])
            .count()
    }
}

/// The plan of `seed`.
pub fn plan(seed: u64) -> Plan {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let phones = rng.random_range(4..=6);
    let net_faults = rng.random_bool(0.7);
    let steps = rng.random_range(24..=40);
    let outsiders = rng.random_range(0..=(phones - 4).min(2));
    let alerts = rng.random_bool(0.5);
    let founders = phones - outsiders;
    let mut m = Model {
        up: vec![true; phones],
        member: (0..phones).map(|p| p < founders).collect(),
        moved: vec![false; phones],
        delegate: vec![false; phones],
        met: (0..phones)
            .map(|a| {
                (0..phones)
                    .map(|b| a != b && a < founders && b < founders)
                    .collect()
            })
            .collect(),
    };
    let mut relay_up = true;
    let mut posts: Vec<LivePost> = Vec::new();
    let mut ops = Vec::with_capacity(steps);
    for i in 0..steps {
        let live: Vec<usize> = (0..phones).filter(|&p| m.up[p]).collect();
        let down: Vec<usize> = (0..phones).filter(|&p| !m.up[p]).collect();
        if !relay_up && rng.random_bool(0.4) {
            relay_up = true;
            ops.push(Op::StartRelay);
            continue;
        }
        if !down.is_empty() && rng.random_bool(0.3) {
            let phone = down[rng.random_range(0..down.len())];
            m.up[phone] = true;
            ops.push(Op::StartPhone { phone });
            continue;
        }
        let pick = |rng: &mut ChaCha8Rng, from: &[usize]| from[rng.random_range(0..from.len())];
        let posters: Vec<usize> = live.iter().copied().filter(|&p| m.member[p]).collect();
        let texters: Vec<usize> = live
            .iter()
            .copied()
            .filter(|&p| m.met[p].iter().any(|&k| k))
            .collect();
        let editable: Vec<usize> = (0..posts.len())
            .filter(|&k| m.up[posts[k].from] && m.member[posts[k].from])
            .collect();
        let organizer = m.up[0];
        let joinable: Vec<usize> = live
            .iter()
            .copied()
            .filter(|&p| !m.member[p] && !m.moved[p])
            .collect();
        let members: Vec<usize> = (1..phones).filter(|&p| m.member[p]).collect();
        let op = match rng.random_range(0..124) {
            0..=34 if !texters.is_empty() => {
                let from = pick(&mut rng, &texters);
                let known: Vec<usize> = (0..phones).filter(|&t| m.met[from][t]).collect();
                let to = pick(&mut rng, &known);
                Op::Text {
                    from,
                    to,
                    tag: format!("m{i}"),
                }
            }
            65..=76 if !editable.is_empty() => {
                let post = &posts[editable[rng.random_range(0..editable.len())]];
                Op::Edit {
                    from: post.from,
                    tag: post.tag.clone(),
                    body: format!("{}.e{i}", post.tag),
                }
            }
            77..=81 if !editable.is_empty() => {
                let k = editable[rng.random_range(0..editable.len())];
                let post = posts.remove(k);
                Op::Delete {
                    from: post.from,
                    tag: post.tag,
                }
            }
            82..=86 => Op::ArmPhone {
                phone: pick(&mut rng, &live),
                point: FAILPOINTS[rng.random_range(0..FAILPOINTS.len())],
                hit: rng.random_range(1..=4),
            },
            87..=93 if live.len() > 2 => {
                let phone = pick(&mut rng, &live);
                if m.member[phone] && m.live_members() <= 2 {
                    // Two members stay up to post.
                    continue_with_post(&mut rng, &posters, &mut posts, i)
                } else {
                    m.up[phone] = false;
                    Op::KillPhone { phone }
                }
            }
            94..=99 if relay_up => {
                relay_up = false;
                Op::KillRelay
            }
            100..=104 if organizer && relay_up && !joinable.is_empty() => {
                let phone = pick(&mut rng, &joinable);
                m.member[phone] = true;
                m.moved[phone] = true;
                m.met[phone][0] = true;
                m.met[0][phone] = true;
                Op::Join { phone }
            }
            105..=107 if organizer && members.len() > 2 => {
                let phone = pick(&mut rng, &members);
                if m.moved[phone] || (m.up[phone] && m.live_members() <= 2) {
                    continue_with_post(&mut rng, &posters, &mut posts, i)
                } else {
                    m.member[phone] = false;
                    m.moved[phone] = true;
                    posts.retain(|p| p.from != phone);
                    Op::Remove { phone }
                }
            }
            108..=111 if organizer && !members.is_empty() => {
                let phone = pick(&mut rng, &members);
                m.delegate[phone] = !m.delegate[phone];
                Op::SetRole {
                    phone,
                    role: if m.delegate[phone] {
                        "delegate"
                    } else {
                        "member"
                    },
                }
            }
            112..=115 => Op::Clock {
                ms: JUMPS_MS[rng.random_range(0..JUMPS_MS.len())],
            },
            116..=118 if alerts && organizer => Op::Alert {
                tag: format!("a{i}"),
            },
            119..=123 if alerts => Op::Answer {
                phone: pick(&mut rng, &live),
                answer: ANSWERS[rng.random_range(0..ANSWERS.len())],
            },
            // A post: 35..=64, and whatever a guard above turned down.
            _ => continue_with_post(&mut rng, &posters, &mut posts, i),
        };
        ops.push(op);
    }
    let pauses = ops
        .iter()
        .map(|_| rng.random_range(0..=MAX_PAUSE_MS))
        .collect();
    let quota = if rng.random_bool(0.25) {
        rng.random_range(SMALL_QUOTA)
    } else {
        0
    };
    let skews = (0..phones)
        .map(|_| match rng.random_bool(0.3) {
            true => rng.random_range(-MAX_SKEW_MS..=MAX_SKEW_MS),
            false => 0,
        })
        .collect();
    Plan {
        seed,
        phones,
        outsiders,
        ops,
        pauses,
        net_faults,
        quota,
        skews,
        alerts,
    }
}

/// A post by one of `posters` (never empty: two members stay up).
fn continue_with_post(
    rng: &mut ChaCha8Rng,
    posters: &[usize],
    posts: &mut Vec<LivePost>,
    i: usize,
) -> Op {
    let from = posters[rng.random_range(0..posters.len())];
    let tag = format!("p{i}");
    posts.push(LivePost {
        from,
        tag: tag.clone(),
    });
    Op::Post { from, tag }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_always_plans_the_same_run() {
        for seed in 0..20 {
            assert_eq!(plan(seed).ops, plan(seed).ops);
        }
        assert_ne!(plan(1).ops, plan(2).ops);
    }

    #[test]
    fn no_step_is_planned_for_a_phone_that_is_down_or_outside() {
        let mut moves = 0;
        for seed in 0..300 {
            let p = plan(seed);
            let mut up = vec![true; p.phones];
            let mut member: Vec<bool> = (0..p.phones).map(|i| i < p.phones - p.outsiders).collect();
            for op in &p.ops {
                match op {
                    Op::Text { from, .. } => assert!(up[*from], "seed {seed}: {op:?}"),
                    Op::Post { from, .. } | Op::Edit { from, .. } | Op::Delete { from, .. } => {
                        assert!(up[*from] && member[*from], "seed {seed}: {op:?}")
                    }
                    Op::KillPhone { phone } => up[*phone] = false,
                    Op::StartPhone { phone } => up[*phone] = true,
                    Op::Join { phone } => {
                        assert!(
                            up[0] && up[*phone] && !member[*phone],
                            "seed {seed}: {op:?}"
                        );
                        member[*phone] = true;
                        moves += 1;
                    }
                    Op::Remove { phone } => {
                        assert!(
                            up[0] && member[*phone] && *phone != 0,
                            "seed {seed}: {op:?}"
                        );
                        member[*phone] = false;
                        moves += 1;
                    }
                    Op::SetRole { phone, .. } => {
                        assert!(up[0] && member[*phone], "seed {seed}: {op:?}")
                    }
                    Op::Alert { .. } => assert!(p.alerts && up[0], "seed {seed}: {op:?}"),
                    Op::Answer { phone, .. } => assert!(up[*phone], "seed {seed}: {op:?}"),
                    Op::KillRelay | Op::StartRelay | Op::ArmPhone { .. } | Op::Clock { .. } => {}
                }
            }
        }
        // Membership moves in a good share of runs.
        assert!(moves > 100, "{moves} joins and removals in 300 seeds");
    }
}
