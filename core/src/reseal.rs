//! Sealing again what waited in the outbox past its sender certificate.
//!
//! A sealed envelope names its sender inside a certificate the relay issued,
//! and every receiver checks that certificate against the time the relay
//! stored the envelope. An envelope written while the phone was offline for
//! longer than its certificate had left would reach the relay with a dead
//! certificate and be refused by everyone it was for. So before the outbox
//! goes out, the transport makes sure the account holds a fresh certificate,
//! and every sealed envelope whose certificate expires within
//! [`RESEAL_MARGIN_MS`] is sealed again around the same inner ciphertext —
//! the same message, already encrypted to its recipients: a receiver that got
//! the old copy too reads it once (the second is a spent message key).

use libsignal_protocol::{
    CiphertextMessage, CiphertextMessageType, DeviceId, PreKeySignalMessage, SignalMessage,
};
use rusqlite::params;

use crate::account::Account;
use crate::account_id::{AccountId, ACCOUNT_ID_LEN};
use crate::error::{Error, Result};
use crate::sealed;
use crate::store::signal::{address, Pending, SignalStores};

/// An envelope leaves only with a certificate that is valid at least this
/// long yet: long enough for the relay to store it, whatever the delays.
pub const RESEAL_MARGIN_MS: i64 = 60 * 60 * 1000;

/// One outbox row to seal again.
struct Stale {
    seq: i64,
    recipient: Vec<u8>,
    recipient_device: u32,
    inner: Vec<u8>,
    inner_kind: u8,
    recipients: Option<Vec<u8>>,
    multi: bool,
}

impl Account {
    /// Whether the account needs a newer sender certificate before its outbox
    /// can go: a sealed envelope in it carries one that expires within
    /// [`RESEAL_MARGIN_MS`], and the one held is no better.
    #[cfg_attr(feature = "testing", rankfile_testing_pub::public)]
    pub(crate) fn outbox_needs_certificate(&self) -> Result<bool> {
        let threshold = self.clock.now_ms() + RESEAL_MARGIN_MS;
        if self
            .settings
            .sender_certificate
            .as_ref()
            .is_some_and(|(_, expires)| *expires > threshold)
        {
            return Ok(false);
        }
        self.outbox_has_stale(threshold)
    }

    /// Whether a sealed envelope in the outbox carries a certificate that
    /// expires before `threshold`.
    fn outbox_has_stale(&self, threshold: i64) -> Result<bool> {
        Ok(self
            .store
            .conn()
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM outbox
                 WHERE sealed = 1 AND certificate_expires < ?1 AND inner IS NOT NULL)",
            )?
            .query_row([threshold], |r| r.get(0))?)
    }

    /// Seals again, with the certificate held now, every sealed envelope in
    /// the outbox whose certificate expires within [`RESEAL_MARGIN_MS`]; does
    /// nothing unless the certificate held is valid longer than that. Returns
    /// how many were sealed again. One that cannot be (its recipient is no
    /// longer a contact with a session) is left as it is.
    #[cfg_attr(feature = "testing", rankfile_testing_pub::public)]
    pub(crate) fn reseal_stale_outbox(&mut self) -> Result<usize> {
        let threshold = self.clock.now_ms() + RESEAL_MARGIN_MS;
        let Some((certificate, expires)) = self.settings.sender_certificate.clone() else {
            return Ok(0);
        };
        if expires <= threshold || !self.outbox_has_stale(threshold)? {
            return Ok(0);
        }
        let tx = self.store.write()?;
        let stale: Vec<Stale> = tx
            .prepare_cached(
                "SELECT seq, recipient, recipient_device, inner, inner_kind, recipients, multi
                 FROM outbox
                 WHERE sealed = 1 AND certificate_expires < ?1 AND inner IS NOT NULL",
            )?
            .query_map([threshold], |r| {
                Ok(Stale {
                    seq: r.get(0)?,
                    recipient: r.get(1)?,
                    recipient_device: r.get(2)?,
                    inner: r.get(3)?,
                    inner_kind: r.get(4)?,
                    recipients: r.get(5)?,
                    multi: r.get(6)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        if stale.is_empty() {
            return Ok(0);
        }
        let mut pending = Pending::default();
        let stores = SignalStores::new(&tx, &self.cache, &mut pending);
        let own = (self.me.key_pair, self.me.registration_id);
        let mut resealed = 0;
        for row in stale {
            let bytes = match row.multi {
                true => {
                    let members = row
                        .recipients
                        .as_deref()
                        .unwrap_or_default()
                        .chunks(ACCOUNT_ID_LEN)
                        .map(AccountId::from_bytes)
                        .collect::<Result<Vec<_>>>()?;
                    crate::channel::seal_for_members(
                        &tx,
                        &stores,
                        own,
                        &members,
                        (&certificate, &row.inner, &row.recipient),
                    )
                    .map(|s| s.payload)
                }
                false => seal_one(&stores, &row, &certificate),
            };
            let bytes = match bytes {
                Ok(b) => b,
                Err(e @ (Error::Storage(_) | Error::Io(_))) => return Err(e),
                Err(e) => {
                    tracing::debug!("an outbox envelope could not be sealed again: {e}");
                    continue;
                }
            };
            tx.prepare_cached(
                "UPDATE outbox SET envelope = ?1, certificate_expires = ?2 WHERE seq = ?3",
            )?
            .execute(params![&bytes, expires, row.seq])?;
            resealed += 1;
        }
        stores.commit_op()?;
        pending.flush(&tx)?;
        tx.commit()?;
        self.cache.absorb(pending);
        Ok(resealed)
    }
}

/// Seals a 1:1 ciphertext again for its recipient.
fn seal_one(stores: &SignalStores<'_, '_>, row: &Stale, certificate: &[u8]) -> Result<Vec<u8>> {
    let recipient = AccountId::from_bytes(&row.recipient)?;
    let device = DeviceId::try_from(row.recipient_device)
        .map_err(|_| Error::Storage("stored device id is out of range".into()))?;
    let malformed = |_| Error::Storage("stored inner ciphertext is malformed".into());
    let ciphertext = match row.inner_kind {
        k if k == CiphertextMessageType::PreKey as u8 => CiphertextMessage::PreKeySignalMessage(
            PreKeySignalMessage::try_from(row.inner.as_slice()).map_err(malformed)?,
        ),
        k if k == CiphertextMessageType::Whisper as u8 => CiphertextMessage::SignalMessage(
            SignalMessage::try_from(row.inner.as_slice()).map_err(malformed)?,
        ),
        _ => {
            return Err(Error::Storage(
                "stored inner ciphertext of an unknown kind".into(),
            ))
        }
    };
    sealed::seal(
        stores.view(),
        &address(&recipient, device),
        certificate,
        &ciphertext,
    )
}
