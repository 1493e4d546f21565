//! The demo's later acts: safety numbers compared and verified on both phones,
//! a phone offline while messages are sent to it and then catching up, and
//! the final check and summary.

use std::time::{Duration, Instant};

use rankfile_core::transport::RelayAddress;
use rankfile_core::SafetyNumber;

use super::report::{self, latency_line};
use super::{Demo, NAMED_PHONES};
use crate::error::{CliError, Result};

/// How long the organizer's outbox may take to empty.
const OUTBOX_PATIENCE: Duration = Duration::from_secs(60);

impl Demo<'_> {
    /// Each member and the organizer compare safety numbers and verify each
    /// other by scanning the other's code; a code from another pair is refused.
    pub(super) async fn verify_safety_numbers(&mut self, members: &[usize]) -> Result<()> {
        let org = self.phones[0].id;
        let mut numbers = Vec::with_capacity(members.len());
        for &m in members {
            let mid = self.phones[m].id;
            let theirs = self.phones[0].client()?.safety_number(mid).await?;
            let ours = self.phones[m].client()?.safety_number(org).await?;
            if theirs.digits != ours.digits {
                return Err(CliError::Other(format!(
                    "the organizer and {} see different safety numbers",
                    self.phones[m].name
                )));
            }
            numbers.push((m, theirs, ours));
        }
        // A code shown for another pair must not verify this one.
        if let [(first, _, _), (_, _, other), ..] = numbers.as_slice() {
            let (fid, wrong) = (self.phones[*first].id, other.scannable.clone());
            let refused = self.phones[0].client()?.verify_contact(fid, wrong).await;
            if !matches!(refused, Err(rankfile_core::Error::SafetyNumberMismatch)) {
                return Err(CliError::Other(
                    "a safety-number code from another pair was not refused".into(),
                ));
            }
            self.timeline.say(&format!(
                "the organizer scanned {}'s code while checking {}: refused (safety numbers do not match)",
                self.phones[numbers[1].0].name, self.phones[*first].name
            ));
        }
        for (m, organizer_side, member_side) in numbers {
            self.cross_verify(m, &organizer_side, &member_side).await?;
            if m <= NAMED_PHONES {
                self.timeline.say(&format!(
                    "organizer and {} both show safety number {}… — verified by scanning each other's code",
                    self.phones[m].name,
                    organizer_side
                        .digits
                        .get(..17)
                        .unwrap_or(&organizer_side.digits)
                ));
            }
        }
        self.verified_pairs = members.len();
        self.timeline.say(&format!(
            "{} pairs compared safety numbers and verified each other, both ways",
            members.len()
        ));
        Ok(())
    }

    async fn cross_verify(
        &self,
        member: usize,
        organizer_side: &SafetyNumber,
        member_side: &SafetyNumber,
    ) -> Result<()> {
        let (org, mid) = (self.phones[0].id, self.phones[member].id);
        let scanned = member_side.scannable.clone();
        self.phones[0]
            .client()?
            .verify_contact(mid, scanned)
            .await?;
        let scanned = organizer_side.scannable.clone();
        self.phones[member]
            .client()?
            .verify_contact(org, scanned)
            .await?;
        Ok(())
    }

    /// The last member goes offline; the organizer writes to it (and to
    /// another member, who is online); it comes back and catches up.
    pub(super) async fn offline_round(&mut self, relay: &RelayAddress) -> Result<()> {
        let off = self.phones.len() - 1;
        let name = self.phones[off].name.clone();
        self.phones[off].go_offline().await?;
        self.timeline.say(&format!(
            "{name} goes offline: client shut down, store closed"
        ));
        let mark = self.ledger.sent.len();
        for i in 1..=self.offline_messages {
            let body =
                format!("{name}: change of plan #{i}, meet at the side gate, not the canteen.");
            self.send(0, off, body, true).await?;
        }
        if off > 1 {
            self.send(
                0,
                1,
                "Side gate tonight; pass it on by word of mouth.".into(),
                false,
            )
            .await?;
        }
        self.wait_outbox_empty().await?;
        self.timeline.say(&format!(
            "the relay holds {} messages for {name} durably (organizer's outbox empty)",
            self.offline_messages
        ));
        let back = Instant::now();
        self.phones[off].go_online(relay, &self.tracker)?;
        self.phones[off]
            .wait_connected(super::CONNECT_PATIENCE)
            .await?;
        self.timeline
            .say(&format!("{name} back online: store reopened, logged in"));
        self.wait_all("messages sent while offline", mark).await?;
        self.catch_up = Some((name.clone(), self.offline_messages, back.elapsed()));
        let body = format!(
            "{name} back: got all {} while I was away.",
            self.offline_messages
        );
        let mark = self.ledger.sent.len();
        self.send(off, 0, body, false).await?;
        self.wait_all("reply after catching up", mark).await
    }

    async fn wait_outbox_empty(&self) -> Result<()> {
        let deadline = Instant::now() + OUTBOX_PATIENCE;
        loop {
            let empty = self.phones[0].client()?.outbox_len().await? == 0;
            if empty {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(CliError::Other(
                    "the relay did not take the organizer's messages in time".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Checks every store against the ledger and writes the summary.
    pub(super) async fn finish(&mut self) -> Result<String> {
        let check = report::check(&self.phones, &self.ledger, &self.tracker).await?;
        if !check.is_complete() {
            return Err(CliError::Other(format!(
                "messages went wrong: {}",
                check.problem()
            )));
        }
        let sent = self.ledger.sent.len();
        let sealed = self.ledger.sent.iter().filter(|s| s.sealed).count();
        self.timeline.say(&format!(
            "checked every store against what was sent: {} stored exactly once, none lost",
            check.delivered
        ));
        let n = self.phones.len();
        let mut lines = vec![
            String::new(),
            "summary".to_string(),
            format!(
                "  {:<18}{n} (1 organizer, {} members), each its own SQLCipher store",
                "phones",
                n - 1
            ),
            format!(
                "  {:<18}{sent} sent, {} stored exactly once, 0 lost, 0 duplicated",
                "messages", check.delivered
            ),
            format!(
                "  {:<18}{sealed} of {sent} (only each first message is identified)",
                "sealed sender"
            ),
            format!(
                "  {:<18}{} pairs compared and verified both ways",
                "safety numbers", self.verified_pairs
            ),
        ];
        if let Some((name, count, took)) = &self.catch_up {
            lines.push(format!(
                "  {:<18}{name} got {count} queued messages {:.0} ms after coming back",
                "offline catch-up",
                took.as_secs_f64() * 1000.0
            ));
        }
        lines.push(format!(
            "  {}",
            latency_line("latency send → stored (online)", &check.online_latencies)
        ));
        lines.push(format!(
            "  {}",
            latency_line("latency incl. time offline", &check.offline_latencies)
        ));
        if let Some(c) = &self.committee {
            lines.extend(c.lines());
        }
        if let Some(a) = &self.alert {
            lines.extend(a.lines());
        }
        lines.push(format!(
            "  {:<18}{}",
            "databases",
            if self.keep {
                format!(
                    "kept in {} (phone stores use random keys that were not kept)",
                    self.dir.display()
                )
            } else {
                "in a temporary directory, removed now".to_string()
            }
        ));
        let stored = self.phones[0].path().exists();
        if !stored {
            return Err(CliError::Other("the organizer's store is missing".into()));
        }
        let mut last = format!("demo ok: phones={n} messages={} lost=0", check.delivered);
        if let Some(c) = &self.committee {
            last.push_str(&format!(
                " joined={} posts={} removed_read={}",
                c.joined, c.posts, c.removed_read
            ));
        }
        if let Some(a) = &self.alert {
            last.push_str(&format!(" alerted={} answered={}", a.alerted, a.answered));
        }
        lines.push(last);
        Ok(lines.join("\n"))
    }
}
