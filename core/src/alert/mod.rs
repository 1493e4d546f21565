//! Emergency alerts: raised by an organizer or delegate to a committee or a
//! council, delivered over the 1:1 sessions with high priority (the relay
//! puts them ahead of other traffic and wakes offline phones), shown once per
//! phone whatever path they took, answered, and cascaded along the links
//! between committees.

pub(crate) mod receive;
mod send;
pub(crate) mod store;
#[cfg(test)]
pub(crate) mod tests;
mod types;

pub use send::AlertSent;
pub use store::{Alert, AlertStatus};
pub use types::{
    AlertAnswer, AlertDraft, AlertId, AlertKind, AlertMessage, AlertScope, ALERT_ID_LEN,
    MAX_ALERT_TEXT_LEN, MAX_PLACE_LEN, MAX_TITLE_LEN,
};
