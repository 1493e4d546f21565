//! Parking outbox envelopes the relay could not store yet, so one full
//! mailbox never stops anything else.
//!
//! A recipient whose phone has been off for days can fill its mailbox at the
//! relay. A 1:1 envelope to it is then refused (QUOTA_EXCEEDED), and a
//! multi-recipient one is stored for everyone else while the relay names the
//! recipients it could not take. Either way the envelope stays in the outbox,
//! parked: it is not offered again before its `not_before`, which backs off
//! with each attempt, and everything behind it goes meanwhile. A
//! multi-recipient envelope is narrowed to the recipients still owed it (the
//! same payload, the relay told to deliver to them only, with the XOR of their
//! access keys alone), so no one gets it twice. An envelope still owed after
//! [`OUTBOX_MAX_AGE_MS`] is given up on.

use rusqlite::{params, OptionalExtension};

use crate::account::Account;
use crate::account_id::{AccountId, ACCOUNT_ID_LEN};
use crate::contact;
use crate::error::{Error, Result};
use crate::message::ENVELOPE_ID_LEN;
use crate::send::OutgoingEnvelope;
use crate::settings::ACCESS_KEY_LEN;

/// The first wait after a refusal: a phone that drains its mailbox soon gets
/// the envelope soon.
pub const PARK_FIRST_MS: i64 = 2_000;
/// The longest wait between attempts: a phone off for days costs its senders
/// one attempt per this long, and gets its mail within it once back.
pub const PARK_MAX_MS: i64 = 10 * 60 * 1000;
/// An envelope the relay still could not store this long after it was written
/// is given up on (its recipient has been unreachable for a week).
pub const OUTBOX_MAX_AGE_MS: i64 = 7 * 24 * 3600 * 1000;

/// ACI of a recipient, as the relay names recipients of a multi-recipient send.
pub type Aci = [u8; 16];

/// An outbox envelope that is due, with the recipients it is still owed to
/// when it is a narrowed multi-recipient one.
#[derive(Clone, Debug)]
pub struct DueEnvelope {
    pub envelope: OutgoingEnvelope,
    /// Empty: every recipient of the payload. Else the relay delivers to these only.
    pub only: Vec<Aci>,
}

/// What became of a parked envelope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parked {
    /// It goes again at this time (ms, the account's clock).
    Until(i64),
    /// Too old: given up on; the caller treats it as refused.
    GaveUp,
    /// It was no longer in the outbox.
    Gone,
}

fn backoff(attempts: u32) -> i64 {
    let shift = attempts.saturating_sub(1).min(20);
    PARK_FIRST_MS.saturating_mul(1i64 << shift).min(PARK_MAX_MS)
}

impl Account {
    /// Outbox envelopes due now: not parked, or parked until now or before;
    /// high-priority ones (alerts) first, then oldest first.
    #[cfg_attr(feature = "testing", rankfile_testing_pub::public)]
    pub(crate) fn outbox_due(&self) -> Result<Vec<DueEnvelope>> {
        let now = self.clock.now_ms();
        let mut stmt = self.store.conn().prepare_cached(
            "SELECT envelope_id, recipient, recipient_device, envelope, sealed, access_key, multi,
                    priority, only_recipients, recipients
             FROM outbox WHERE not_before <= ?1 ORDER BY priority DESC, seq",
        )?;
        let rows = stmt.query_map([now], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, u32>(2)?,
                r.get::<_, Vec<u8>>(3)?,
                r.get::<_, bool>(4)?,
                r.get::<_, Option<Vec<u8>>>(5)?,
                r.get::<_, bool>(6)?,
                r.get::<_, bool>(7)?,
                r.get::<_, bool>(8)?,
                r.get::<_, Option<Vec<u8>>>(9)?,
            ))
        })?;
        let me = self.id();
        rows.map(|row| {
            let (id, recipient, device, bytes, sealed, key, multi, high, only, recipients) = row?;
            let recipient = if multi {
                me
            } else {
                AccountId::from_bytes(&recipient)?
            };
            let only = match (multi && only, recipients) {
                (true, Some(r)) => r
                    .chunks(ACCOUNT_ID_LEN)
                    .map(aci_of_bytes)
                    .collect::<Result<_>>()?,
                _ => Vec::new(),
            };
            Ok(DueEnvelope {
                envelope: OutgoingEnvelope {
                    handle: 0,
                    multi,
                    high_priority: high,
                    sealed,
                    access_key: key.and_then(|k| k.try_into().ok()),
                    envelope_id: id
                        .try_into()
                        .map_err(|_| Error::Storage("stored envelope id is malformed".into()))?,
                    recipient,
                    recipient_device: device,
                    bytes,
                },
                only,
            })
        })
        .collect()
    }

    /// When the earliest parked envelope is due (ms, the account's clock).
    #[cfg_attr(feature = "testing", rankfile_testing_pub::public)]
    pub(crate) fn outbox_next_due(&self) -> Result<Option<i64>> {
        let now = self.clock.now_ms();
        Ok(self
            .store
            .conn()
            .prepare_cached("SELECT MIN(not_before) FROM outbox WHERE not_before > ?1")?
            .query_row([now], |r| r.get::<_, Option<i64>>(0))?)
    }

    /// Parks an envelope the relay could not store (a full mailbox). For a
    /// multi-recipient envelope, `full` names the recipients it is still owed
    /// to: it is narrowed to them.
    #[cfg_attr(feature = "testing", rankfile_testing_pub::public)]
    pub(crate) fn park_outbox(
        &mut self,
        envelope_id: &[u8; ENVELOPE_ID_LEN],
        full: &[Aci],
    ) -> Result<Parked> {
        let now = self.clock.now_ms();
        let tx = self.store.write()?;
        let row = tx
            .prepare_cached(
                "SELECT seq, created_at, attempts, multi, recipients FROM outbox
                 WHERE envelope_id = ?1",
            )?
            .query_row([&envelope_id[..]], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, u32>(2)?,
                    r.get::<_, bool>(3)?,
                    r.get::<_, Option<Vec<u8>>>(4)?,
                ))
            })
            .optional()?;
        let Some((seq, created_at, attempts, multi, recipients)) = row else {
            return Ok(Parked::Gone);
        };
        if now.saturating_sub(created_at) > OUTBOX_MAX_AGE_MS {
            return Ok(Parked::GaveUp);
        }
        let attempts = attempts.saturating_add(1);
        let until = now.saturating_add(backoff(attempts));
        if multi && !full.is_empty() {
            let owed: Vec<AccountId> = recipients
                .unwrap_or_default()
                .chunks(ACCOUNT_ID_LEN)
                .map(AccountId::from_bytes)
                .collect::<Result<Vec<_>>>()?
                .into_iter()
                .filter(|a| full.iter().any(|f| a.as_bytes()[..16] == f[..]))
                .collect();
            let mut key = [0u8; ACCESS_KEY_LEN];
            for member in &owed {
                let k = contact::access_key(&tx, member)?.ok_or(Error::NoAccessKey(*member))?;
                for (a, b) in key.iter_mut().zip(k) {
                    *a ^= b;
                }
            }
            let members: Vec<u8> = owed
                .iter()
                .flat_map(|a| a.as_bytes().iter().copied())
                .collect();
            tx.prepare_cached(
                "UPDATE outbox SET recipients = ?1, access_key = ?2, only_recipients = 1,
                     attempts = ?3, not_before = ?4 WHERE seq = ?5",
            )?
            .execute(params![members, &key[..], attempts, until, seq])?;
        } else {
            tx.prepare_cached("UPDATE outbox SET attempts = ?1, not_before = ?2 WHERE seq = ?3")?
                .execute(params![attempts, until, seq])?;
        }
        tx.commit()?;
        self.outbox_may_hold = true;
        Ok(Parked::Until(until))
    }
}

fn aci_of_bytes(account: &[u8]) -> Result<Aci> {
    account
        .get(..16)
        .and_then(|a| a.try_into().ok())
        .ok_or_else(|| Error::Storage("stored recipient is malformed".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_cap() {
        assert_eq!(backoff(1), PARK_FIRST_MS);
        assert_eq!(backoff(2), 2 * PARK_FIRST_MS);
        assert_eq!(backoff(3), 4 * PARK_FIRST_MS);
        assert_eq!(backoff(60), PARK_MAX_MS);
    }
}
