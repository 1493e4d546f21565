//! `rankfile sync`: connect, receive everything waiting at the relay (the
//! client answers what needs answering: an organizer's device admits those
//! who asked to join), send the outbox, print what arrived, and exit. For
//! scripts and for a device that is not left running `rankfile watch`.

use serde_json::json;

use super::watch::show;
use crate::cli::SyncArgs;
use crate::error::Result;
use crate::home::Home;
use crate::output::{Output, Style};

/// Runs `rankfile sync`.
pub fn run(home: &Home, args: &SyncArgs, out: &Output) -> Result<()> {
    let received = super::online(home, &args.relay, out, async |online| {
        for event in online.arrived.iter().cloned() {
            show(&online.client, event, out).await?;
        }
        Ok(online.queued)
    })?;
    out.emit(
        || {
            format!(
                "{}: {received} waiting message{} received, outbox sent",
                out.paint(Style::Good, "synced"),
                if received == 1 { "" } else { "s" }
            )
        },
        || json!({ "type": "synced", "received": received }),
    );
    Ok(())
}
