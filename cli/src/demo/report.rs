//! The demo's bookkeeping and what it prints: the timeline, the ledger of
//! every message sent, the check of every store against the ledger (nothing
//! lost, nothing stored twice), and the latency figures.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rankfile_core::AccountId;

use super::phone::{Phone, Tracker};
use crate::error::{CliError, Result};

/// Prints `[  12.3 ms] …` lines, timed from the start of the demo.
pub struct Timeline {
    start: Instant,
}

impl Timeline {
    /// Starts the clock.
    pub fn new() -> Self {
        Timeline {
            start: Instant::now(),
        }
    }

    /// Prints one line of the story.
    pub fn say(&self, text: &str) {
        let ms = self.start.elapsed().as_secs_f64() * 1000.0;
        println!("[{ms:>9.1} ms] {text}");
    }
}

/// One message the demo sent.
#[derive(Debug, Clone)]
pub struct Sent {
    pub from: usize,
    pub to: usize,
    pub body: String,
    pub at: Instant,
    pub sealed: bool,
    /// Sent while the recipient was offline: its latency includes the absence.
    pub while_offline: bool,
}

/// Every message sent, in order.
#[derive(Default)]
pub struct Ledger {
    pub sent: Vec<Sent>,
}

/// What the stores hold, checked against the ledger.
pub struct Check {
    pub delivered: usize,
    pub lost: Vec<String>,
    pub duplicated: Vec<String>,
    pub unexpected: Vec<String>,
    /// Send → stored on the recipient, for messages sent while it was online.
    pub online_latencies: Vec<Duration>,
    /// The same for messages that waited at the relay for an offline phone.
    pub offline_latencies: Vec<Duration>,
}

impl Check {
    /// Whether every message arrived exactly once.
    pub fn is_complete(&self) -> bool {
        self.lost.is_empty() && self.duplicated.is_empty() && self.unexpected.is_empty()
    }

    /// A plain description of what went wrong.
    pub fn problem(&self) -> String {
        let mut parts = Vec::new();
        let list = |v: &[String]| v.iter().take(3).cloned().collect::<Vec<_>>().join("; ");
        if !self.lost.is_empty() {
            parts.push(format!("{} lost ({})", self.lost.len(), list(&self.lost)));
        }
        if !self.duplicated.is_empty() {
            parts.push(format!(
                "{} stored twice ({})",
                self.duplicated.len(),
                list(&self.duplicated)
            ));
        }
        if !self.unexpected.is_empty() {
            parts.push(format!(
                "{} unexpected ({})",
                self.unexpected.len(),
                list(&self.unexpected)
            ));
        }
        parts.join(", ")
    }
}

/// Reads every online phone's incoming messages and compares them with the
/// ledger; arrival times come from the tracker.
pub async fn check(phones: &[Phone], ledger: &Ledger, tracker: &Tracker) -> Result<Check> {
    let ids: Vec<AccountId> = phones.iter().map(|p| p.id).collect();
    let by_body: HashMap<(usize, &str), &Sent> = ledger
        .sent
        .iter()
        .map(|s| ((s.to, s.body.as_str()), s))
        .collect();
    let mut seen: HashMap<(usize, String), usize> = HashMap::new();
    let mut result = Check {
        delivered: 0,
        lost: Vec::new(),
        duplicated: Vec::new(),
        unexpected: Vec::new(),
        online_latencies: Vec::new(),
        offline_latencies: Vec::new(),
    };
    for phone in phones {
        let client = phone.client()?;
        let mut incoming = Vec::new();
        for peer in ids.iter().copied() {
            if let Ok(page) = client.history(peer, None, u32::MAX).await {
                incoming.extend(page.into_iter().filter(|m| !m.outgoing));
            }
        }
        let arrivals: HashMap<(AccountId, i64), Instant> = tracker
            .arrivals(phone.index)
            .into_iter()
            .map(|a| ((a.peer, a.message_id), a.at))
            .collect();
        for m in incoming {
            let key = (phone.index, m.body.clone());
            *seen.entry(key).or_default() += 1;
            match by_body.get(&(phone.index, m.body.as_str())) {
                Some(sent) if ids[sent.from] == m.peer => {
                    if let Some(at) = arrivals.get(&(m.peer, m.id)) {
                        let latency = at.saturating_duration_since(sent.at);
                        if sent.while_offline {
                            result.offline_latencies.push(latency);
                        } else {
                            result.online_latencies.push(latency);
                        }
                    }
                }
                _ => result
                    .unexpected
                    .push(format!("{} holds `{}`", phone.name, m.body)),
            }
        }
    }
    for s in &ledger.sent {
        match seen.get(&(s.to, s.body.clone())).copied().unwrap_or(0) {
            0 => result
                .lost
                .push(format!("`{}` to {}", s.body, phones[s.to].name)),
            1 => result.delivered += 1,
            n => result.duplicated.push(format!(
                "`{}` stored {n} times on {}",
                s.body, phones[s.to].name
            )),
        }
    }
    Ok(result)
}

/// Waits for `target` arrivals in all; on timeout, falls back to reading the
/// stores (an event may have been dropped by a lagging stream) and fails only
/// if a message is really missing.
pub async fn wait_delivered(
    phones: &[Phone],
    ledger: &Ledger,
    tracker: &Tracker,
    target: usize,
    what: &str,
) -> Result<()> {
    const PATIENCE: Duration = Duration::from_secs(60);
    if tracker.wait_for(target, PATIENCE).await {
        return Ok(());
    }
    let c = check(phones, ledger, tracker).await?;
    if c.is_complete() {
        return Ok(());
    }
    Err(CliError::Other(format!(
        "{what}: after {} s, {}",
        PATIENCE.as_secs(),
        c.problem()
    )))
}

/// p50, p99 and max of `values`, in milliseconds.
pub fn percentiles(values: &[Duration]) -> Option<(f64, f64, f64)> {
    if values.is_empty() {
        return None;
    }
    let mut v: Vec<f64> = values.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    v.sort_by(f64::total_cmp);
    let at = |p: usize| {
        // Nearest rank: the smallest value with at least p% at or below it.
        let rank = (p * v.len()).div_ceil(100).max(1);
        v[rank - 1]
    };
    Some((at(50), at(99), v[v.len() - 1]))
}

/// A latency line for the summary.
pub fn latency_line(label: &str, values: &[Duration]) -> String {
    match percentiles(values) {
        Some((p50, p99, max)) => format!(
            "{label:<34} n={:<5} p50={p50:>7.1} ms  p99={p99:>7.1} ms  max={max:>7.1} ms",
            values.len()
        ),
        None => format!("{label:<34} n=0"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let ms = |n: u64| Duration::from_millis(n);
        let v: Vec<Duration> = (1..=100).map(ms).collect();
        let (p50, p99, max) = percentiles(&v).expect("some");
        assert_eq!((p50, p99, max), (50.0, 99.0, 100.0));
        let (p50, p99, max) = percentiles(&[ms(7)]).expect("some");
        assert_eq!((p50, p99, max), (7.0, 7.0, 7.0));
        assert!(percentiles(&[]).is_none());
    }

    #[test]
    fn problems_are_described() {
        let c = Check {
            delivered: 1,
            lost: vec!["`a` to bob".into()],
            duplicated: vec![],
            unexpected: vec![],
            online_latencies: vec![],
            offline_latencies: vec![],
        };
        assert!(!c.is_complete());
        assert_eq!(c.problem(), "1 lost (`a` to bob)");
    }
}
