//! 1:1 sessions: opening one from a prekey bundle (PQXDH), and the rule that
//! every session carries the post-quantum ratchet (SPQR).

use std::time::SystemTime;

use libsignal_protocol::{process_prekey_bundle, SessionRecord, SessionUsabilityRequirements};

use crate::error::{Error, Result};
use crate::prekeys::ImportedBundle;
use crate::store::signal::{address, Pending, SignalCache, SignalStores};
use crate::store::WriteTransaction;

/// What a session must offer before we encrypt on it: PQXDH at the start and
/// SPQR throughout. libsignal would fall back to a classical session for a peer
/// that lacks SPQR; Rankfile peers all have it, so a session without it is a
/// downgrade and refused.
pub(crate) const REQUIRED: SessionUsabilityRequirements =
    SessionUsabilityRequirements::EstablishedWithPqxdh.union(SessionUsabilityRequirements::Spqr);

/// Whether `record`'s current session still runs the post-quantum ratchet.
pub(crate) fn has_post_quantum_ratchet(record: &SessionRecord) -> bool {
    record.current_pq_state().is_some_and(|s| !s.is_empty())
}

/// Whether `record` may be used to send now.
pub(crate) fn usable_for_sending(record: &SessionRecord, now: SystemTime) -> bool {
    has_post_quantum_ratchet(record)
        && record
            .has_usable_sender_chain(now, REQUIRED)
            .unwrap_or(false)
}

/// Runs PQXDH against `bundle` inside `tx` and stages the new session.
pub(crate) fn start(
    tx: &WriteTransaction<'_>,
    cache: &SignalCache,
    pending: &mut Pending,
    bundle: &ImportedBundle,
) -> Result<()> {
    let device = bundle.device_id()?;
    let addr = address(&bundle.account_id, device);
    let stores = SignalStores::new(tx, cache, pending);
    futures::executor::block_on(process_prekey_bundle(
        &addr,
        &mut stores.view(),
        &mut stores.view(),
        &bundle.bundle,
        SystemTime::now(),
        &mut rand::rng(),
    ))?;
    let record = stores
        .session(&addr.to_string())?
        .ok_or(Error::NoSession(bundle.account_id))?;
    if !has_post_quantum_ratchet(&record) {
        return Err(Error::PostQuantumRequired(bundle.account_id));
    }
    stores.commit_op()
}
