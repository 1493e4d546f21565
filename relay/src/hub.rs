//! Which devices are connected right now, so a stored message can wake the
//! connection that delivers it.
//!
//! Right after a group commit the writer hands each connected recipient its new
//! messages (`Hub::offer`), so a device that is keeping up gets live mail from
//! memory instead of reading it back from the store. That hand-off is bounded
//! (`FRESH_MAX_*`) and only taken while the connection says it is caught up
//! (`Slot::accept`); past the bound, or while the connection is still working
//! through a backlog, the messages simply stay in the store (where they already
//! are, durably) and the woken connection reads them from there. So a slow
//! client never makes the relay buffer more than the bound for it.
//!
//! When several relay nodes share one database (`Hub::set_shared`) there is no
//! hand-off: a node would hand over its own mail at once but hear of another
//! node's earlier mail only later, and a connection that had pushed the newer
//! ID from memory would skip the older one. Every wake-up — this node's
//! commits, another node's notification (`Hub::stale`) — then makes the
//! connection read the store, where commit order is ID order.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::storage::{MailboxId, Priority, StoredMessage};

/// Fresh messages held for one connection, at most (it takes them on its next turn).
const FRESH_MAX_MESSAGES: usize = 256;
/// Envelope bytes held for one connection, at most.
const FRESH_MAX_BYTES: usize = 256 * 1024;

/// Messages committed for a connected device and not yet taken by its connection.
#[derive(Debug, Default)]
pub struct Fresh {
    /// In commit order (IDs grow).
    pub messages: Vec<StoredMessage>,
    /// Some message was left in the store (bound reached): the connection must read it.
    pub overflowed: bool,
    bytes: usize,
    accepting: bool,
}

impl Fresh {
    /// A hand-over as a connection would take it.
    #[cfg(test)]
    pub fn of(messages: Vec<StoredMessage>, overflowed: bool) -> Self {
        Fresh {
            messages,
            overflowed,
            ..Fresh::default()
        }
    }
}

/// One connected device.
#[derive(Debug, Default)]
pub struct Slot {
    /// Woken when mail arrives (or the slot is displaced).
    pub notify: Notify,
    displaced: AtomicBool,
    // A std Mutex: held only to push or take, never across an await.
    fresh: Mutex<Fresh>,
}

impl Slot {
    /// Whether a newer connection of the same device has taken over.
    pub fn is_displaced(&self) -> bool {
        self.displaced.load(Ordering::Acquire)
    }

    /// Whether the writer should hand this connection its new messages. Switched
    /// on before the connection reads the store, so nothing committed after that
    /// read misses both paths; off (dropping what is held) when it falls behind.
    pub fn accept(&self, on: bool) {
        if let Ok(mut f) = self.fresh.lock() {
            f.accepting = on;
            if !on {
                *f = Fresh::default();
            }
        }
    }

    /// Takes what the writer handed over since the last take.
    pub fn take(&self) -> Fresh {
        match self.fresh.lock() {
            Ok(mut f) => {
                let accepting = f.accepting && !f.overflowed;
                let taken = std::mem::take(&mut *f);
                f.accepting = accepting;
                taken
            }
            Err(_) => Fresh {
                overflowed: true,
                ..Fresh::default()
            },
        }
    }

    /// Makes the connection read the store on its next turn.
    fn stale(&self) {
        if let Ok(mut f) = self.fresh.lock() {
            if f.accepting {
                f.overflowed = true;
                f.messages = Vec::new();
                f.bytes = 0;
            }
        }
    }

    /// Holds one newly committed message if the connection is accepting and the
    /// bound allows; otherwise notes that the store has more.
    fn hold(&self, message: StoredMessage) {
        let Ok(mut f) = self.fresh.lock() else { return };
        if !f.accepting || f.overflowed {
            return;
        }
        let size = message.envelope.len();
        if f.messages.len() >= FRESH_MAX_MESSAGES || f.bytes + size > FRESH_MAX_BYTES {
            f.overflowed = true;
            f.messages = Vec::new();
            f.bytes = 0;
            return;
        }
        f.bytes += size;
        f.messages.push(message);
    }
}

/// The registry of connected devices.
#[derive(Debug, Default)]
pub struct Hub {
    // A std Mutex: held only for a map operation, never across an await.
    slots: Mutex<HashMap<MailboxId, Arc<Slot>>>,
    /// Other relay nodes write the same store: no hand-off from memory.
    shared: AtomicBool,
}

impl Hub {
    /// Registers a new connection for a device; an older one is told to go, so
    /// two connections never deliver the same mailbox at once.
    pub fn register(&self, mailbox: MailboxId) -> Arc<Slot> {
        let slot = Arc::new(Slot::default());
        let old = match self.slots.lock() {
            Ok(mut slots) => slots.insert(mailbox, slot.clone()),
            Err(_) => None,
        };
        if let Some(old) = old {
            old.displaced.store(true, Ordering::Release);
            old.notify.notify_one();
        }
        slot
    }

    /// Other relay nodes share the store: from now on every wake-up makes the
    /// connection read the store instead of taking mail from memory.
    pub fn set_shared(&self) {
        self.shared.store(true, Ordering::Release);
    }

    /// Another node committed mail for these mailboxes: their connections
    /// here, if any, read the store.
    pub fn stale(&self, mailboxes: &[MailboxId]) {
        let Ok(slots) = self.slots.lock() else { return };
        for m in mailboxes {
            if let Some(slot) = slots.get(m) {
                slot.stale();
                slot.notify.notify_one();
            }
        }
    }

    /// Any mailbox may have new mail (notifications were lost): every
    /// connection here reads the store.
    pub fn stale_all(&self) {
        let Ok(slots) = self.slots.lock() else { return };
        for slot in slots.values() {
            slot.stale();
            slot.notify.notify_one();
        }
    }

    /// Whether a device has a connection now.
    pub fn is_connected(&self, mailbox: &MailboxId) -> bool {
        self.slots
            .lock()
            .is_ok_and(|slots| slots.contains_key(mailbox))
    }

    /// Removes a connection's slot (only if it is still the current one).
    pub fn unregister(&self, mailbox: &MailboxId, slot: &Arc<Slot>) {
        if let Ok(mut slots) = self.slots.lock() {
            if slots.get(mailbox).is_some_and(|s| Arc::ptr_eq(s, slot)) {
                slots.remove(mailbox);
            }
        }
    }

    /// Hands newly committed messages to their connected recipients and wakes
    /// them, taking the lock once. Called in commit order (see `OnCommit`).
    /// Returns the devices with high-priority mail among them and no
    /// connection: the ones to wake by push.
    pub fn offer(&self, committed: Vec<(MailboxId, StoredMessage)>) -> Vec<MailboxId> {
        let mut asleep: Vec<MailboxId> = Vec::new();
        let Ok(slots) = self.slots.lock() else {
            return asleep;
        };
        // Wake only after holding, so a connection never takes half a batch
        // without being woken for the rest.
        let mut woken: Vec<&Arc<Slot>> = Vec::new();
        let shared = self.shared.load(Ordering::Acquire);
        for (mailbox, message) in committed {
            let Some(slot) = slots.get(&mailbox) else {
                if message.priority == Priority::High && !asleep.contains(&mailbox) {
                    asleep.push(mailbox);
                }
                continue;
            };
            if shared {
                slot.stale();
            } else {
                slot.hold(message);
            }
            // Consecutive only: a repeated wake-up is harmless, a quadratic scan is not.
            if !woken.last().is_some_and(|s| Arc::ptr_eq(s, slot)) {
                woken.push(slot);
            }
        }
        for slot in woken {
            slot.notify.notify_one();
        }
        asleep
    }

    /// Connected devices.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.slots.lock().map(|s| s.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mb(d: u32) -> MailboxId {
        MailboxId {
            account: [1; 20],
            device: d,
        }
    }

    fn msg(id: u64, size: usize) -> StoredMessage {
        StoredMessage {
            id,
            priority: Priority::Normal,
            sealed: false,
            stored_at_ms: 0,
            envelope: vec![7; size],
        }
    }

    #[tokio::test]
    async fn offer_reaches_the_current_slot_only() {
        let hub = Hub::default();
        let first = hub.register(mb(1));
        let second = hub.register(mb(1));
        assert!(first.is_displaced());
        assert!(!second.is_displaced());
        second.accept(true);
        first.accept(true);
        hub.offer(vec![(mb(1), msg(1, 1)), (mb(2), msg(2, 1))]);
        second.notify.notified().await;
        assert_eq!(second.take().messages.len(), 1);
        assert!(first.take().messages.is_empty());
        hub.unregister(&mb(1), &first);
        assert_eq!(hub.len(), 1);
        hub.unregister(&mb(1), &second);
        assert_eq!(hub.len(), 0);
    }

    #[test]
    fn high_priority_mail_for_unconnected_devices_is_reported() {
        let hub = Hub::default();
        let _connected = hub.register(mb(1));
        let high = |id| StoredMessage {
            priority: Priority::High,
            ..msg(id, 1)
        };
        let asleep = hub.offer(vec![
            (mb(1), high(1)),
            (mb(2), msg(2, 1)),
            (mb(3), high(3)),
            (mb(3), high(4)),
            (mb(4), high(5)),
        ]);
        // Connected, or only normal mail: no wake-up. Each device once.
        assert_eq!(asleep, [mb(3), mb(4)]);
    }

    #[tokio::test]
    async fn fresh_mail_is_held_only_while_accepting_and_within_bounds() {
        let hub = Hub::default();
        let slot = hub.register(mb(1));
        // Not accepting: only a wake-up.
        hub.offer(vec![(mb(1), msg(1, 10))]);
        slot.notify.notified().await;
        let f = slot.take();
        assert!(f.messages.is_empty() && !f.overflowed);

        slot.accept(true);
        hub.offer(vec![(mb(1), msg(2, 10)), (mb(1), msg(3, 10))]);
        let f = slot.take();
        assert_eq!(f.messages.iter().map(|m| m.id).collect::<Vec<_>>(), [2, 3]);
        assert!(!f.overflowed);

        // Past the bound: everything held is dropped (it is in the store), the
        // overflow is reported once, and nothing more is held until re-accepted.
        let many = (10..10 + FRESH_MAX_MESSAGES as u64 + 1).map(|id| (mb(1), msg(id, 1)));
        hub.offer(many.collect());
        let f = slot.take();
        assert!(f.overflowed && f.messages.is_empty());
        hub.offer(vec![(mb(1), msg(1000, 1))]);
        let f = slot.take();
        assert!(!f.overflowed && f.messages.is_empty());
        slot.accept(true);
        hub.offer(vec![(mb(1), msg(1001, FRESH_MAX_BYTES + 1))]);
        assert!(slot.take().overflowed);
    }

    #[tokio::test]
    async fn a_shared_hub_hands_nothing_over_and_sends_connections_to_the_store() {
        let hub = Hub::default();
        hub.set_shared();
        let slot = hub.register(mb(1));
        slot.accept(true);
        hub.offer(vec![(mb(1), msg(2, 10))]);
        slot.notify.notified().await;
        let f = slot.take();
        assert!(
            f.messages.is_empty() && f.overflowed,
            "read the store, not memory"
        );
        slot.accept(true);
        hub.stale(&[mb(2), mb(1)]);
        slot.notify.notified().await;
        assert!(slot.take().overflowed);
        slot.accept(true);
        hub.stale_all();
        slot.notify.notified().await;
        assert!(slot.take().overflowed);
    }
}
