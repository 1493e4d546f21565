//! How long a received envelope's ID is remembered, and the prune that
//! forgets it.
//!
//! `received_envelopes` holds the ID of every envelope this device took in,
//! so a redelivery stores nothing twice (`receive::claim_envelope`). It needs
//! to know only roughly when: each ID keeps the day it was claimed, not the
//! moment, so a seized phone does not list when each message arrived. IDs
//! older than [`RECEIVED_ENVELOPE_RETENTION_DAYS`] go, a bounded step at a
//! time: one step when the account opens, and the rest from the client's
//! purger task, which wakes at least hourly and leaves the account thread
//! free between steps. A step reads up to [`PRUNE_SCAN`] IDs in key order
//! (no write lock), then deletes the old ones among them in one short
//! transaction; a cursor carries the pass on from there, and a pass that
//! reaches the end is not begun again until the next day.

use rusqlite::params;

use crate::account::Account;
use crate::error::Result;
use crate::message::ENVELOPE_ID_LEN;

/// Milliseconds in a day: the claim's unit.
const MS_PER_DAY: i64 = 24 * 3600 * 1000;

/// Days a received envelope's ID is kept: the relay's message lifetime (30
/// days by default, `message_ttl_secs` in `relay/src/config.rs`) plus a week
/// for clocks that disagree and days counted whole.
///
/// Forgetting an ID cannot let that envelope be stored again. An honest relay
/// deletes every message once its device acknowledges it, and any message
/// after its lifetime, so it cannot deliver the envelope again. A relay that
/// kept a copy and replays it gains nothing either: libsignal refuses a
/// message whose key the ratchet has already used (`DuplicatedMessage`, which
/// receive treats as a duplicate, leaving no trace), for 1:1 sessions and
/// sender keys alike, and a prekey message whose one-time prekey is gone.
/// (`received::tests` plays such a replay after the prune.)
pub const RECEIVED_ENVELOPE_RETENTION_DAYS: i64 = 30 + 7;

/// IDs one prune step looks at, at most; it deletes at most as many, in one
/// transaction that holds the writer for no longer than that.
pub(crate) const PRUNE_SCAN: usize = 4096;

/// Forgets one received envelope's ID (a prune, or the claim of an envelope
/// that failed given back).
pub(crate) const FORGET_SQL: &str = "DELETE FROM received_envelopes WHERE envelope_id = ?1";

/// The day a claim is dated by: days since the epoch.
pub(crate) fn day(now_ms: i64) -> i64 {
    now_ms.div_euclid(MS_PER_DAY)
}

/// Where the prune of received envelope IDs stands.
#[derive(Debug, Default)]
pub(crate) struct PruneState {
    /// The day a pass last reached the end of the table.
    done_on: Option<i64>,
    /// The last ID a pass under way looked at.
    cursor: Option<[u8; ENVELOPE_ID_LEN]>,
}

impl Account {
    /// One step of the prune of received envelope IDs older than
    /// [`RECEIVED_ENVELOPE_RETENTION_DAYS`], by the account's clock. Returns
    /// whether the pass has more to look at (call again, after letting other
    /// work in); `false` once the table has been gone through today.
    #[cfg_attr(feature = "testing", rankfile_testing_pub::public)]
    pub(crate) fn prune_received_envelopes(&mut self) -> Result<bool> {
        let today = day(self.clock.now_ms());
        let state = &mut self.received_prune;
        if state.cursor.is_none() && state.done_on == Some(today) {
            return Ok(false);
        }
        let cutoff = today - RECEIVED_ENVELOPE_RETENTION_DAYS;
        let after = state.cursor.map_or_else(Vec::new, |c| c.to_vec());
        // Read first, outside any write transaction.
        let (seen, last, old) = {
            let mut stmt = self.store.conn().prepare_cached(
                "SELECT envelope_id, received_day FROM received_envelopes
                 WHERE envelope_id > ?1 ORDER BY envelope_id LIMIT ?2",
            )?;
            let mut rows = stmt.query(params![after, PRUNE_SCAN as i64])?;
            let (mut seen, mut last, mut old) = (0usize, None, Vec::new());
            while let Some(row) = rows.next()? {
                let id: Vec<u8> = row.get(0)?;
                let claimed: i64 = row.get(1)?;
                seen += 1;
                if claimed < cutoff {
                    old.push(id.clone());
                }
                last = Some(id);
            }
            (seen, last, old)
        };
        if !old.is_empty() {
            let tx = self.store.write()?;
            {
                let mut forget = tx.prepare_cached(FORGET_SQL)?;
                for id in &old {
                    forget.execute([id])?;
                }
            }
            tx.commit()?;
        }
        let state = &mut self.received_prune;
        let more = seen == PRUNE_SCAN;
        state.cursor = match last {
            // Every ID the store makes is this long; another would end the
            // pass early, and the next day's pass would start over.
            Some(id) if more => id.as_slice().try_into().ok(),
            _ => None,
        };
        if state.cursor.is_none() {
            state.done_on = Some(today);
        }
        Ok(state.cursor.is_some())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicI64, Ordering};
    use std::sync::Arc;

    use super::*;
    use crate::account::AccountOptions;
    use crate::clock::Clock;
    use crate::receive::Received;
    use crate::store::DatabaseKey;

    const DAY_MS: i64 = MS_PER_DAY;

    /// Alice, and Bob on a clock the test moves, with a session both ways.
    fn pair(dir: &tempfile::TempDir, offset: &Arc<AtomicI64>) -> (Account, Account, DatabaseKey) {
        let mut alice =
            Account::create(&dir.path().join("alice.db"), &DatabaseKey::generate()).expect("a");
        let key = DatabaseKey::generate();
        let options = AccountOptions::default().with_clock(Clock::shifted(offset.clone()));
        let mut bob = Account::create_with(&dir.path().join("bob.db"), &key, &options).expect("b");
        alice
            .add_contact("bob", &bob.prekey_bundle().expect("bundle"))
            .expect("contact");
        (alice, bob, key)
    }

    fn claims(a: &Account) -> Vec<i64> {
        a.store
            .conn()
            .prepare("SELECT received_day FROM received_envelopes")
            .expect("select")
            .query_map([], |r| r.get(0))
            .expect("query")
            .collect::<rusqlite::Result<_>>()
            .expect("rows")
    }

    #[test]
    fn claims_keep_the_day_only_and_go_after_the_relay_lifetime_and_margin() {
        let dir = tempfile::tempdir().expect("dir");
        let offset = Arc::new(AtomicI64::new(0));
        let (mut alice, mut bob, key) = pair(&dir, &offset);
        let sent: Vec<_> = (0..3)
            .map(|i| alice.send_text(&bob.id(), &format!("m{i}")).expect("send"))
            .collect();
        for e in &sent {
            assert!(matches!(bob.receive(&e.bytes), Ok(Received::Stored { .. })));
        }
        let today = day(bob.clock.now_ms());
        assert_eq!(claims(&bob), vec![today; 3], "dated by the day, not the ms");

        // Within the relay's lifetime and the margin: kept.
        offset.store(RECEIVED_ENVELOPE_RETENTION_DAYS * DAY_MS, Ordering::Relaxed);
        while bob.prune_received_envelopes().expect("prune") {}
        assert_eq!(claims(&bob).len(), 3);

        // A day past it: forgotten at the next open.
        offset.store(
            (RECEIVED_ENVELOPE_RETENTION_DAYS + 1) * DAY_MS,
            Ordering::Relaxed,
        );
        drop(bob);
        let options = AccountOptions::default().with_clock(Clock::shifted(offset.clone()));
        let mut bob = Account::open_with(&dir.path().join("bob.db"), &key, &options).expect("open");
        assert_eq!(claims(&bob), Vec::<i64>::new());
        let stored = bob.message_count().expect("count");

        // A relay that kept the envelopes and replays them now stores nothing:
        // the ratchet has used those keys.
        for e in &sent {
            assert!(
                matches!(bob.receive(&e.bytes), Ok(Received::Duplicate)),
                "a pruned envelope was taken again"
            );
        }
        assert_eq!(bob.message_count().expect("count"), stored);
        assert_eq!(claims(&bob), Vec::<i64>::new(), "the replays left no claim");
        // New mail is still received and claimed.
        let e = alice.send_text(&bob.id(), "still here").expect("send");
        assert!(matches!(bob.receive(&e.bytes), Ok(Received::Stored { .. })));
        assert_eq!(claims(&bob).len(), 1);
    }

    #[test]
    fn a_pass_goes_in_bounded_steps_and_once_a_day() {
        let dir = tempfile::tempdir().expect("dir");
        let offset = Arc::new(AtomicI64::new(0));
        let (_alice, mut bob, _) = pair(&dir, &offset);
        let today = day(bob.clock.now_ms());
        let total = 2 * PRUNE_SCAN + 10;
        {
            let tx = bob.store.write().expect("tx");
            for i in 0..total {
                let mut id = [0u8; ENVELOPE_ID_LEN];
                rand::RngCore::fill_bytes(&mut rand::rng(), &mut id);
                // Every other one old.
                let claimed = if i % 2 == 0 { today - 60 } else { today };
                tx.execute(
                    "INSERT INTO received_envelopes (envelope_id, received_day) VALUES (?1, ?2)",
                    params![&id[..], claimed],
                )
                .expect("insert");
            }
            tx.commit().expect("commit");
        }
        let mut steps = 1;
        while bob.prune_received_envelopes().expect("step") {
            steps += 1;
        }
        assert_eq!(steps, 3, "{total} IDs at {PRUNE_SCAN} a step");
        assert_eq!(claims(&bob), vec![today; total / 2]);
        // Done for today: the next call looks at nothing.
        assert!(!bob.prune_received_envelopes().expect("again"));
        assert!(bob.received_prune.cursor.is_none());
        assert_eq!(bob.received_prune.done_on, Some(today));
    }
}
