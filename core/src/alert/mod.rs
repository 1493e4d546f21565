//! Emergency alerts: raised and signed by an organizer or delegate in a
//! committee or council, delivered over the 1:1 sessions with high priority
//! (the relay puts them ahead of other traffic and wakes offline phones),
//! checked and shown once per phone whatever path they took, answered,
//! cascaded along the links between committees, counted back along the
//! cascade, and purged a set time after they expire.

mod pending;
pub(crate) mod receive;
pub(crate) mod rollcall;
#[cfg(test)]
mod rollcall_tests;
mod send;
mod signed;
#[cfg(test)]
mod signed_tests;
pub(crate) mod store;
#[cfg(test)]
mod test_net;
#[cfg(test)]
pub(crate) mod tests;
mod types;
mod upkeep;

pub use rollcall::{
    AlertCounts, CommitteeAnswers, RollCall, MAX_COUNT_ENTRIES, ROLLCALL_DEBOUNCE_MS,
};
pub use send::AlertSent;
pub use signed::{RaisedAlert, SignedAlert, MAX_RAISED_LEN};
pub use store::{Alert, AlertStatus};
pub use types::{
    AlertAnswer, AlertDraft, AlertId, AlertKind, AlertMessage, AlertScope, ALERT_ID_LEN,
    MAX_ALERT_TEXT_LEN, MAX_PLACE_LEN, MAX_TITLE_LEN,
};
pub use upkeep::{AlertUpkeep, ALERT_RETENTION_MS};
