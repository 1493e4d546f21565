//! Failpoints: named places where a test can make the process die on purpose,
//! to prove what survives a crash (e.g. between decrypting a batch and
//! committing it). Set `RANKFILE_FAILPOINT=<name>` to die the first time the
//! point is reached, or `<name>:<n>` to die the n-th time (the chaos suite
//! draws n from its seed, so a phone dies at a different moment of its
//! traffic); unset, they do nothing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// Aborts the process at the named point when `RANKFILE_FAILPOINT` names it
/// and this is the hit it names.
pub(crate) fn failpoint(name: &str) {
    static ARMED: OnceLock<Option<(String, u64)>> = OnceLock::new();
    static HITS: AtomicU64 = AtomicU64::new(0);
    let armed = ARMED.get_or_init(|| std::env::var("RANKFILE_FAILPOINT").ok().map(|v| parse(&v)));
    if let Some((point, n)) = armed {
        if point == name && HITS.fetch_add(1, Ordering::Relaxed) + 1 >= *n {
            // No unwinding, no destructors, no commit: as if the phone died here.
            std::process::abort();
        }
    }
}

/// `<name>` or `<name>:<n>`: the point and the hit to die at (from 1).
fn parse(value: &str) -> (String, u64) {
    match value.rsplit_once(':') {
        Some((name, n)) => match n.parse::<u64>() {
            Ok(n) => (name.to_string(), n.max(1)),
            Err(_) => (value.to_string(), 1),
        },
        None => (value.to_string(), 1),
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn a_failpoint_names_its_point_and_optionally_the_hit_to_die_at() {
        assert_eq!(
            parse("receive_before_ack"),
            ("receive_before_ack".into(), 1)
        );
        assert_eq!(
            parse("receive_before_ack:3"),
            ("receive_before_ack".into(), 3)
        );
        assert_eq!(
            parse("receive_before_ack:0"),
            ("receive_before_ack".into(), 1)
        );
        assert_eq!(parse("a:b"), ("a:b".into(), 1));
    }
}
