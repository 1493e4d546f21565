//! Time in a chaos run: jumps forward for the relay and every phone at once
//! (each phone keeping its own skew against the relay), and the jump past
//! the longest wait of envelopes parked for a full mailbox.

use super::process::Failed;
use super::world::{World, ANSWER};

impl World<'_> {
    /// Moves time forward `ms` for the relay and every phone that is up
    /// (the others start with it).
    pub(super) fn jump(&mut self, ms: i64) -> Result<(), String> {
        self.clock_ms += ms;
        if let Some(relay) = self.relay.as_mut() {
            relay
                .ask(&format!("clock {}", self.clock_ms), ANSWER)
                .map_err(|e| format!("relay `clock`: {e}"))?;
        }
        for i in 0..self.phones.len() {
            let command = format!("clock {}", self.clock_ms + self.skews[i]);
            match self.try_ask(i, &command) {
                // Down, or dying at its failpoint: it starts with the new time.
                Ok(_) | Err(Failed::Died) => {}
                Err(e) => return Err(format!("phone {i} `clock`: {e}")),
            }
        }
        Ok(())
    }

    /// A relay with a small mailbox quota refuses what a full mailbox cannot
    /// take, and the senders park it (`outbox_park`) for up to ten minutes:
    /// time jumps past that and every phone sends its outbox now.
    pub(super) fn unpark(&mut self) -> Result<(), String> {
        if self.quota == 0 {
            return Ok(());
        }
        self.jump(11 * 60 * 1000)?;
        for i in 0..self.phones.len() {
            self.ask(i, "flush")?;
        }
        self.log
            .push("    time moved past the parked envelopes' wait".into());
        Ok(())
    }
}
