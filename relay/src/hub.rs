//! Which devices are connected right now, so a stored message can wake the
//! connection that delivers it.
//!
//! A slot holds only a `Notify`: the message itself stays in the store and the
//! woken connection reads it from there, so nothing is queued per connection and
//! a slow client cannot make the relay buffer for it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::storage::MailboxId;

/// One connected device.
#[derive(Debug, Default)]
pub struct Slot {
    /// Woken when mail arrives (or the slot is displaced).
    pub notify: Notify,
    displaced: AtomicBool,
}

impl Slot {
    /// Whether a newer connection of the same device has taken over.
    pub fn is_displaced(&self) -> bool {
        self.displaced.load(Ordering::Acquire)
    }
}

/// The registry of connected devices.
#[derive(Debug, Default)]
pub struct Hub {
    // A std Mutex: held only for a map operation, never across an await.
    slots: Mutex<HashMap<MailboxId, Arc<Slot>>>,
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

    /// Removes a connection's slot (only if it is still the current one).
    pub fn unregister(&self, mailbox: &MailboxId, slot: &Arc<Slot>) {
        if let Ok(mut slots) = self.slots.lock() {
            if slots.get(mailbox).is_some_and(|s| Arc::ptr_eq(s, slot)) {
                slots.remove(mailbox);
            }
        }
    }

    /// Wakes several mailboxes, taking the lock once.
    pub fn wake_all<'a>(&self, mailboxes: impl IntoIterator<Item = &'a MailboxId>) {
        let Ok(slots) = self.slots.lock() else { return };
        for m in mailboxes {
            if let Some(slot) = slots.get(m) {
                slot.notify.notify_one();
            }
        }
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

    #[tokio::test]
    async fn wake_reaches_the_current_slot_only() {
        let hub = Hub::default();
        let first = hub.register(mb(1));
        let second = hub.register(mb(1));
        assert!(first.is_displaced());
        assert!(!second.is_displaced());
        hub.wake_all(&[mb(1)]);
        second.notify.notified().await;
        hub.unregister(&mb(1), &first);
        assert_eq!(hub.len(), 1);
        hub.unregister(&mb(1), &second);
        assert_eq!(hub.len(), 0);
    }
}
