//! The plan of one chaos run: how many phones, and the operations and faults
//! in order, drawn from the seed by a ChaCha RNG and nothing else, so the same
//! seed always plans the same run.
//!
//! Tags name what is sent: `m<i>` a 1:1 text, `p<i>` a channel post (edited
//! to `p<i>.e<j>`), `i` being the step that sent it, so every body of a run
//! is unique and the invariants can count it on every phone.

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
}

/// What a seed plans.
#[derive(Clone, Debug)]
pub struct Plan {
    pub seed: u64,
    /// Phones in the committee; phone 0 founds it.
    pub phones: usize,
    pub ops: Vec<Op>,
    /// How long to let traffic flow after each step, ms: faults land while
    /// deliveries are under way, not between quiet moments.
    pub pauses: Vec<u64>,
    /// Whether the proxy between phones and relay delays and cuts during
    /// the steps (`proxy`).
    pub net_faults: bool,
}

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

/// A post that may still be edited or deleted.
struct LivePost {
    from: usize,
    tag: String,
}

/// The plan of `seed`.
pub fn plan(seed: u64) -> Plan {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let phones = rng.random_range(4..=6);
    let net_faults = rng.random_bool(0.7);
    let steps = rng.random_range(24..=40);
    let mut up = vec![true; phones];
    let mut relay_up = true;
    let mut posts: Vec<LivePost> = Vec::new();
    let mut ops = Vec::with_capacity(steps);
    for i in 0..steps {
        let live: Vec<usize> = (0..phones).filter(|&p| up[p]).collect();
        let down: Vec<usize> = (0..phones).filter(|&p| !up[p]).collect();
        if !relay_up && rng.random_bool(0.4) {
            relay_up = true;
            ops.push(Op::StartRelay);
            continue;
        }
        if !down.is_empty() && rng.random_bool(0.3) {
            let phone = down[rng.random_range(0..down.len())];
            up[phone] = true;
            ops.push(Op::StartPhone { phone });
            continue;
        }
        let pick = |rng: &mut ChaCha8Rng| live[rng.random_range(0..live.len())];
        let editable: Vec<usize> = (0..posts.len()).filter(|&k| up[posts[k].from]).collect();
        let op = match rng.random_range(0..100) {
            0..=34 => {
                let from = pick(&mut rng);
                let mut to = rng.random_range(0..phones - 1);
                if to >= from {
                    to += 1;
                }
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
            82..=86 => {
                let phone = pick(&mut rng);
                Op::ArmPhone {
                    phone,
                    point: FAILPOINTS[rng.random_range(0..FAILPOINTS.len())],
                    hit: rng.random_range(1..=4),
                }
            }
            87..=93 if live.len() > 2 => {
                let phone = pick(&mut rng);
                up[phone] = false;
                Op::KillPhone { phone }
            }
            94..=99 if relay_up => {
                relay_up = false;
                Op::KillRelay
            }
            // A post: 35..=64, and whatever a guard above turned down.
            _ => {
                let from = pick(&mut rng);
                let tag = format!("p{i}");
                posts.push(LivePost {
                    from,
                    tag: tag.clone(),
                });
                Op::Post { from, tag }
            }
        };
        ops.push(op);
    }
    let pauses = ops
        .iter()
        .map(|_| rng.random_range(0..=MAX_PAUSE_MS))
        .collect();
    Plan {
        seed,
        phones,
        ops,
        pauses,
        net_faults,
    }
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
    fn no_step_is_planned_for_a_phone_that_is_down() {
        for seed in 0..200 {
            let p = plan(seed);
            let mut up = vec![true; p.phones];
            for op in &p.ops {
                match op {
                    Op::Text { from, .. }
                    | Op::Post { from, .. }
                    | Op::Edit { from, .. }
                    | Op::Delete { from, .. } => assert!(up[*from], "seed {seed}: {op:?}"),
                    Op::KillPhone { phone } => up[*phone] = false,
                    Op::StartPhone { phone } => up[*phone] = true,
                    Op::KillRelay | Op::StartRelay | Op::ArmPhone { .. } => {}
                }
            }
        }
    }
}
