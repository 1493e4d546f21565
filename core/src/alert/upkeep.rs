//! The alert work the client's upkeep does on its timer: roll-call work sent
//! once due (counts back to the device each alert came from, notes to devices
//! whose delivery came second; see [`super::rollcall`]), and alerts purged a
//! set time after they expire, so a seized phone holds no old call-outs.

use super::rollcall::{self, AlertCounts, Count, RollCall, COUNTER_LEN, MAX_COUNT_ENTRIES};
use super::store;
use super::types::AlertId;
use crate::account::Account;
use crate::error::Result;
use crate::message::Body;

/// How long an alert is kept after it expires: a day, so the people who
/// answered still see it and the organizer still sees the counts on the day
/// after; past that it would only tell whoever reads a seized phone who was
/// called where. An alert arriving later than this is refused, so a purged
/// alert never comes back.
pub const ALERT_RETENTION_MS: i64 = 24 * 3600 * 1000;
/// How often, by the account's clock, the upkeep looks for alerts to purge:
/// the look reads the alerts table, and receive batches run the upkeep.
const PURGE_CHECK_MS: i64 = 10 * 60 * 1000;

/// What one run of the alert upkeep did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AlertUpkeep {
    /// Roll-call messages queued in the outbox.
    pub sent: usize,
    /// Alerts purged.
    pub purged: usize,
    /// When roll-call work is next due, ms since the epoch (the account's clock).
    pub next_due_ms: Option<i64>,
}

impl Account {
    /// Sends the roll-call work that is due and purges alerts whose time is
    /// up; says when roll-call work is next due. The client runs it on its
    /// upkeep timer.
    #[cfg_attr(feature = "testing", rankfile_testing_pub::public)]
    pub(crate) fn alert_upkeep(&mut self) -> Result<AlertUpkeep> {
        let now = self.clock.now_ms();
        let purged = self.purge_alerts_checked(now)?;
        let sent = self.send_rollcall(rollcall::due_alerts(self.store.conn(), now)?)?;
        Ok(AlertUpkeep {
            sent,
            purged,
            next_due_ms: rollcall::next_due(self.store.conn())?,
        })
    }

    /// Sends all roll-call work now, due or not: for a device about to go
    /// offline (a command-line process that exits). Returns the messages queued.
    #[cfg_attr(feature = "testing", rankfile_testing_pub::public)]
    pub(crate) fn send_alert_rollcall_now(&mut self) -> Result<usize> {
        let all = rollcall::due_alerts(self.store.conn(), i64::MAX)?;
        self.send_rollcall(all)
    }

    /// Deletes every alert that expired more than [`ALERT_RETENTION_MS`] ago
    /// by the account's clock, with its recipients, answers, holds, counts and
    /// owed deliveries, then checkpoints the WAL so the text leaves the raw
    /// files. Returns how many alerts went.
    #[cfg_attr(feature = "testing", rankfile_testing_pub::public)]
    pub(crate) fn purge_expired_alerts(&mut self) -> Result<usize> {
        let cutoff = self.clock.now_ms().saturating_sub(ALERT_RETENTION_MS);
        let tx = self.store.write()?;
        for table in [
            "alert_recipients",
            "alert_holds",
            "alert_owed",
            "alert_counts",
            "alert_notes_owed",
        ] {
            tx.prepare_cached(&format!(
                "DELETE FROM {table} WHERE alert_id IN
                     (SELECT alert_id FROM alerts WHERE expires_at <= ?1)"
            ))?
            .execute([cutoff])?;
        }
        let purged = tx
            .prepare_cached("DELETE FROM alerts WHERE expires_at <= ?1")?
            .execute([cutoff])?;
        tx.commit()?;
        if purged > 0 {
            crate::channel::scrub(self.store.conn());
        }
        Ok(purged)
    }

    /// After a receive batch (and on the upkeep timer): purges expired alerts
    /// if it has not looked for some time. Never fails the caller.
    pub(crate) fn alert_purge_upkeep(&mut self) {
        let now = self.clock.now_ms();
        if let Err(e) = self.purge_alerts_checked(now) {
            tracing::warn!("purging expired alerts failed: {e}");
        }
    }

    /// Purges if the last look was [`PURGE_CHECK_MS`] ago or more (or the
    /// clock went back) and some alert's time is up.
    fn purge_alerts_checked(&mut self, now: i64) -> Result<usize> {
        if self
            .alerts_checked_at
            .is_some_and(|t| (0..PURGE_CHECK_MS).contains(&now.saturating_sub(t)))
        {
            return Ok(0);
        }
        self.alerts_checked_at = Some(now);
        let oldest: Option<i64> = self
            .store
            .conn()
            .prepare_cached("SELECT min(expires_at) FROM alerts")?
            .query_row([], |r| r.get(0))?;
        match oldest {
            Some(t) if t <= now.saturating_sub(ALERT_RETENTION_MS) => self.purge_expired_alerts(),
            _ => Ok(0),
        }
    }

    /// Sends the roll-call work of `alerts`; returns the messages queued.
    fn send_rollcall(&mut self, alerts: Vec<AlertId>) -> Result<usize> {
        let mut sent = 0;
        for id in alerts {
            sent += self.rollcall_of(&id)?;
        }
        Ok(sent)
    }

    /// One alert's roll-call work: the notes it owes, then its counts to the
    /// device it came from. Each send commits with the record that it is done.
    fn rollcall_of(&mut self, id: &AlertId) -> Result<usize> {
        let Some(alert) = store::get(self.store.conn(), id)? else {
            return Ok(0);
        };
        let mut sent = 0;
        let notes = rollcall::notes_owed(self.store.conn(), id)?;
        if !notes.is_empty() {
            let body = Body::AlertRollCall(RollCall::ReachedBefore(*id));
            let (envelopes, unreachable) =
                self.send_to_many(&notes, &body, false, |tx, _, _| {
                    rollcall::notes_sent(tx, id)
                })?;
            if !unreachable.is_empty() {
                tracing::debug!(
                    "alert notes to {} members without a session dropped",
                    unreachable.len()
                );
            }
            sent += envelopes.len();
        }
        let counts = match alert.from {
            Some(up) => self.counts_to_send(id)?.map(|c| (up, c)),
            None => None,
        };
        let Some((up, (counts, mine))) = counts else {
            rollcall::done(self.store.conn(), id, None)?;
            return Ok(sent);
        };
        let body = Body::AlertRollCall(RollCall::Counts(AlertCounts {
            alert_id: *id,
            counts,
        }));
        let (envelopes, _) = self.send_to_many(&[up], &body, false, |tx, _, _| {
            rollcall::done(tx, id, Some(mine))
        })?;
        Ok(sent + envelopes.len())
    }

    /// The counts this device sends back for an alert (its own under a new
    /// version, and those it gathered), with its counter name and that
    /// version; `None` when it has none to send.
    #[allow(clippy::type_complexity)]
    fn counts_to_send(
        &mut self,
        id: &AlertId,
    ) -> Result<Option<(Vec<Count>, ([u8; COUNTER_LEN], u64))>> {
        let conn = self.store.conn();
        let own = rollcall::own(conn, id)?;
        let gathered = rollcall::gathered(conn, id)?;
        if own.is_empty() && gathered.is_empty() {
            return Ok(None);
        }
        let (counter, version) = rollcall::counter(conn, id)?;
        let counter = counter.unwrap_or_else(|| {
            let mut c = [0u8; COUNTER_LEN];
            rand::RngCore::fill_bytes(&mut rand::rng(), &mut c);
            c
        });
        let version = version + 1;
        let mut counts: Vec<Count> = own
            .into_iter()
            .map(|(committee, reached, answers)| Count {
                committee,
                counter,
                version,
                reached,
                answers,
            })
            .chain(gathered)
            .collect();
        if counts.len() > MAX_COUNT_ENTRIES {
            tracing::debug!("alert counts beyond {MAX_COUNT_ENTRIES} left out");
            counts.truncate(MAX_COUNT_ENTRIES);
        }
        Ok(Some((counts, (counter, version))))
    }
}
