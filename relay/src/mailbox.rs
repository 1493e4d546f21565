//! Mailboxes: the three kinds of send, and the delivery state of a connected
//! device (cursor, bounded in-flight window).
//!
//! A send is answered only after the store has committed it (fsync). Right
//! after the commit the writer hands the new messages to their connected
//! recipients (`Hub::offer`): a connection that is keeping up pushes them from
//! memory, one that is behind reads them from the store. Either way a message
//! leaves the store only on its device's Ack. Nothing about a sealed send's
//! sender is stored.

use std::collections::{HashMap, HashSet};

use rankfile_proto::v1::{self as pb, server_frame::Body as Out};
use tokio::time::Instant;

use crate::frame::{fixed, priority_from_wire, priority_to_wire, Refusal, Reply};
use crate::hub::Fresh;
use crate::limits::MAX_DEVICE_ID;
use crate::relay::Relay;
use crate::sealed::{access_key_matches, received_for, recipients_of, FanOutError};
use crate::storage::{
    AccessKey, AccountId, Cursor, MailboxId, NewMessage, Priority, StoredMessage,
};

pub(crate) fn recipient(account: &[u8], device: u32) -> Result<MailboxId, Refusal> {
    let account = fixed::<20>(account, "recipient account id must be 20 bytes")?;
    if device == 0 || device > MAX_DEVICE_ID {
        return Err(Refusal::malformed("recipient device id out of range"));
    }
    Ok(MailboxId { account, device })
}

fn check_size(relay: &Relay, envelope: &[u8]) -> Result<(), Refusal> {
    if envelope.is_empty() {
        return Err(Refusal::malformed("empty envelope"));
    }
    if envelope.len() > relay.config.max_envelope_bytes {
        return Err(Refusal::too_large("envelope too large"));
    }
    Ok(())
}

fn new_message(
    relay: &Relay,
    mailbox: MailboxId,
    priority: Priority,
    sealed: bool,
    envelope: Vec<u8>,
) -> NewMessage {
    let now = relay.now_ms();
    NewMessage {
        mailbox,
        priority,
        sealed,
        envelope,
        stored_at_ms: now,
        expires_at_ms: now.saturating_add(relay.config.message_ttl_secs.saturating_mul(1000)),
    }
}

/// Like [`store_and_wake`], for the accounts with room; returns those without.
async fn store_where_room(
    relay: &Relay,
    messages: Vec<NewMessage>,
) -> Result<Vec<AccountId>, Refusal> {
    let hub = relay.hub.clone();
    let push = relay.push.clone();
    Ok(relay
        .store
        .enqueue_where_room(
            messages,
            relay.config.mailbox_quota,
            Box::new(move |committed| push.wake(hub.offer(committed))),
        )
        .await?)
}

async fn store_and_wake(relay: &Relay, messages: Vec<NewMessage>) -> Result<(), Refusal> {
    let hub = relay.hub.clone();
    let push = relay.push.clone();
    relay
        .store
        .enqueue(
            messages,
            relay.config.mailbox_quota,
            // Connected recipients get the mail from memory; unconnected ones
            // with high-priority mail get a push wake-up (queued, not posted,
            // on this thread).
            Box::new(move |committed| push.wake(hub.offer(committed))),
        )
        .await?;
    Ok(())
}

/// SendMessage: an identified send from an authenticated device.
pub async fn send(relay: &Relay, req: pb::SendMessage) -> Reply {
    let to = recipient(&req.recipient_account_id, req.recipient_device_id)?;
    let priority = priority_from_wire(req.priority)?;
    check_size(relay, &req.envelope)?;
    if relay.devices.get(relay.store.as_ref(), to).await?.is_none() {
        return Err(Refusal::not_found("unknown recipient"));
    }
    // A sender without the recipient's access key is not one it accepted:
    // such mail has a small quota of its own, so it never fills the room
    // that sealed mail from the recipient's committees needs.
    // (Set at or above the mailbox quota it binds nothing: no count then.)
    let quota = relay.config.unaccepted_quota;
    if quota < relay.config.mailbox_quota && relay.store.identified_count(to).await? >= quota {
        return Err(Refusal::new(
            pb::error::Code::QuotaExceeded,
            "mailbox full for senders not accepted",
        ));
    }
    store_and_wake(
        relay,
        vec![new_message(relay, to, priority, false, req.envelope)],
    )
    .await?;
    Ok(Out::SendResult(pb::SendResult::default()))
}

/// SendSealed: authorised by the recipient's access key, sender unknown.
pub async fn send_sealed(relay: &Relay, req: pb::SendSealed) -> Reply {
    let to = recipient(&req.recipient_account_id, req.recipient_device_id)?;
    let priority = priority_from_wire(req.priority)?;
    check_size(relay, &req.envelope)?;
    let Some(device) = relay.devices.get(relay.store.as_ref(), to).await? else {
        return Err(Refusal::not_found("unknown recipient"));
    };
    if !access_key_matches(device.access_key.as_ref(), &req.access_key) {
        return Err(Refusal::unauthorized("wrong access key"));
    }
    store_and_wake(
        relay,
        vec![new_message(relay, to, priority, true, req.envelope)],
    )
    .await?;
    Ok(Out::SendResult(pb::SendResult::default()))
}

/// SendMultiSealed: one upload, fanned out to every addressed device.
///
/// Limits come before work: the recipient count and the size the copies
/// would take are checked, the accounts resolved and the combined access key
/// verified, and only then is anything copied per recipient. Recipients the
/// relay does not know (or devices of theirs it does not know) are listed
/// back and get nothing; the access key must be the XOR of the known
/// recipients' keys (all devices of one account must share a key). Recipients
/// whose mailbox is full are listed back too, and everyone else gets the
/// message: one full phone does not stop a committee.
pub async fn send_multi(relay: &Relay, req: pb::SendMultiSealed) -> Reply {
    let config = &relay.config;
    let priority = priority_from_wire(req.priority)?;
    let presented = fixed::<16>(&req.access_key, "access key must be 16 bytes")?;
    if req.only_recipients.len() > config.max_multi_recipients {
        return Err(Refusal::too_large("too many recipients"));
    }
    let only = req
        .only_recipients
        .iter()
        .map(|r| fixed::<16>(r, "recipient must be a 16-byte ACI"))
        .collect::<Result<HashSet<[u8; 16]>, _>>()?;
    let mut recipients =
        recipients_of(&req.payload, config.max_multi_recipients).map_err(fan_out_refusal)?;
    if !only.is_empty() {
        recipients.retain(|r| r.aci.is_some_and(|aci| only.contains(&aci)));
    }
    let acis: Vec<[u8; 16]> = recipients.iter().filter_map(|r| r.aci).collect();
    let accounts = relay.store.accounts_by_aci(acis).await?;

    let mut combined: AccessKey = [0u8; 16];
    let mut targets: HashMap<[u8; 16], Vec<MailboxId>> = HashMap::new();
    let mut copies = 0usize;
    let mut unknown = Vec::new();
    for r in recipients {
        let Some((aci, account)) = r.aci.and_then(|aci| {
            accounts
                .iter()
                .find(|a| a.account[..16] == aci)
                .map(|a| (aci, a))
        }) else {
            unknown.push(r.service_id);
            continue;
        };
        let mut key: Option<AccessKey> = None;
        let mut devices = Vec::new();
        for device in &r.devices {
            let Some((_, device_key)) = account.devices.iter().find(|(d, _)| d == device) else {
                continue;
            };
            let Some(device_key) = device_key else {
                return Err(Refusal::unauthorized("recipient has no access key"));
            };
            match &key {
                Some(k) if k != device_key => {
                    return Err(Refusal::unauthorized(
                        "recipient devices disagree on access key",
                    ))
                }
                _ => key = Some(*device_key),
            }
            devices.push(MailboxId {
                account: account.account,
                device: *device,
            });
        }
        let Some(key) = key else {
            unknown.push(r.service_id);
            continue;
        };
        for (c, k) in combined.iter_mut().zip(key.iter()) {
            *c ^= k;
        }
        copies += devices.len();
        targets.insert(aci, devices);
    }
    if targets.is_empty() {
        return Ok(Out::SendResult(pb::SendResult {
            unknown_recipients: unknown,
            full_recipients: Vec::new(),
        }));
    }
    // Each copy is at most the payload's size.
    if copies.saturating_mul(req.payload.len()) > config.max_fan_out_bytes {
        return Err(Refusal::too_large("message too large for its recipients"));
    }
    if !access_key_matches(Some(&combined), &presented) {
        return Err(Refusal::unauthorized("wrong access key"));
    }
    let received = received_for(&req.payload, config.max_envelope_bytes, |aci| {
        targets.contains_key(aci)
    })
    .map_err(fan_out_refusal)?;
    drop(req);
    let mut messages = Vec::with_capacity(copies);
    for (aci, bytes) in received {
        let Some(devices) = targets.remove(&aci) else {
            continue;
        };
        let last = devices.len().saturating_sub(1);
        let mut bytes = Some(bytes);
        for (i, target) in devices.into_iter().enumerate() {
            let envelope = match i == last {
                true => bytes.take().unwrap_or_default(),
                false => bytes.clone().unwrap_or_default(),
            };
            messages.push(new_message(relay, target, priority, true, envelope));
        }
    }
    let full = store_where_room(relay, messages).await?;
    Ok(Out::SendResult(pb::SendResult {
        unknown_recipients: unknown,
        full_recipients: full.iter().map(|a| a[..16].to_vec()).collect(),
    }))
}

fn fan_out_refusal(e: FanOutError) -> Refusal {
    match e {
        FanOutError::Malformed => Refusal::malformed("multi-recipient payload did not parse"),
        FanOutError::TooManyRecipients => Refusal::too_large("too many recipients"),
        FanOutError::TooLarge => Refusal::too_large("message too large"),
    }
}

/// The delivery state of one authenticated connection.
#[derive(Debug)]
pub struct Delivery {
    /// Last IDs pushed, per priority.
    pub cursor: Cursor,
    /// Pushed and not yet acknowledged (bounded by the delivery window).
    pub in_flight: Vec<u64>,
    /// The high-priority ones among them.
    high_in_flight: Vec<u64>,
    /// When the oldest of those was pushed.
    high_pushed_at: Option<Instant>,
    /// Whether the stored backlog has been pushed (QueueEmpty sent).
    pub caught_up: bool,
    /// Whether the store may hold messages not yet pushed.
    pub wanted: bool,
    /// Whether every stored message after the cursor has been pushed, and new
    /// ones are handed over from memory (the slot accepts them): then nothing
    /// needs reading from the store.
    pub live: bool,
}

impl Delivery {
    /// A fresh state: everything in the mailbox is to be pushed.
    pub fn new() -> Self {
        Delivery {
            cursor: Cursor::default(),
            in_flight: Vec::new(),
            high_in_flight: Vec::new(),
            high_pushed_at: None,
            caught_up: false,
            wanted: true,
            live: false,
        }
    }

    /// Room left in the window.
    pub fn room(&self, window: usize) -> usize {
        window.saturating_sub(self.in_flight.len())
    }

    /// Records fetched messages as pushed and makes their frames. `limit` is what
    /// was asked for: fewer means the mailbox has no more right now, and (the
    /// slot having accepted hand-overs since before the read) delivery is live.
    pub fn push(
        &mut self,
        messages: Vec<StoredMessage>,
        limit: usize,
        out: &mut Vec<pb::ServerFrame>,
    ) {
        let drained = messages.len() < limit;
        for m in messages {
            self.record(m, out);
        }
        self.live = drained;
        if drained {
            self.wanted = false;
            if !self.caught_up {
                self.caught_up = true;
                out.push(crate::frame::reply(0, Out::QueueEmpty(pb::QueueEmpty {})));
            }
        }
    }

    /// Pushes messages handed over right after their commit, in commit order.
    /// Ones already read from the store are skipped. If delivery is not live, the
    /// window is full or the hand-over overflowed, the rest stay in the store:
    /// delivery falls back to reading it, and `false` says the slot must stop
    /// accepting.
    pub fn push_fresh(
        &mut self,
        fresh: Fresh,
        window: usize,
        out: &mut Vec<pb::ServerFrame>,
    ) -> bool {
        for m in fresh.messages {
            if m.id <= self.cursor_of(m.priority) {
                continue;
            }
            if !self.live || self.room(window) == 0 {
                self.fall_behind();
                break;
            }
            self.record(m, out);
        }
        if fresh.overflowed {
            self.fall_behind();
        }
        self.live
    }

    /// Something arrived while not live: the store has it.
    pub fn woken(&mut self) {
        if !self.live {
            self.wanted = true;
        }
    }

    /// Records acknowledgements: frees window room for the IDs that were in flight.
    pub fn acked(&mut self, ids: &[u64]) {
        let before = self.in_flight.len();
        self.in_flight.retain(|id| !ids.contains(id));
        self.high_in_flight.retain(|id| !ids.contains(id));
        if self.high_in_flight.is_empty() {
            self.high_pushed_at = None;
        }
        if self.in_flight.len() != before && !self.live {
            // Window room opened: there may be more waiting behind it.
            self.wanted = true;
        }
    }

    /// Whether a high-priority message was pushed and not acknowledged.
    pub fn high_unacknowledged(&self) -> bool {
        !self.high_in_flight.is_empty()
    }

    /// Since when high-priority mail has waited for its acknowledgement.
    pub fn high_waiting_since(&self) -> Option<Instant> {
        self.high_pushed_at
    }

    fn fall_behind(&mut self) {
        self.live = false;
        self.wanted = true;
    }

    fn cursor_of(&self, p: Priority) -> u64 {
        match p {
            Priority::High => self.cursor.high,
            Priority::Normal => self.cursor.normal,
        }
    }

    fn record(&mut self, m: StoredMessage, out: &mut Vec<pb::ServerFrame>) {
        match m.priority {
            Priority::High => {
                self.cursor.high = self.cursor.high.max(m.id);
                if self.high_in_flight.is_empty() {
                    self.high_pushed_at = Some(Instant::now());
                }
                self.high_in_flight.push(m.id);
            }
            Priority::Normal => self.cursor.normal = self.cursor.normal.max(m.id),
        }
        self.in_flight.push(m.id);
        out.push(crate::frame::reply(
            0,
            Out::Deliver(pb::Deliver {
                id: m.id,
                envelope: m.envelope,
                priority: priority_to_wire(m.priority),
                sealed: m.sealed,
                stored_at_ms: m.stored_at_ms,
            }),
        ));
    }
}

impl Default for Delivery {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(id: u64, priority: Priority) -> StoredMessage {
        StoredMessage {
            id,
            priority,
            sealed: false,
            stored_at_ms: 0,
            envelope: vec![1],
        }
    }

    #[test]
    fn cursor_window_and_queue_empty() {
        let mut d = Delivery::new();
        let mut out = Vec::new();
        d.push(
            vec![msg(5, Priority::High), msg(2, Priority::Normal)],
            2,
            &mut out,
        );
        assert_eq!(d.cursor, Cursor { high: 5, normal: 2 });
        assert_eq!(out.len(), 2);
        assert!(d.wanted && !d.caught_up);
        assert_eq!(d.room(3), 1);
        d.push(vec![msg(7, Priority::Normal)], 1, &mut out);
        assert!(d.wanted);
        d.push(vec![], 1, &mut out);
        assert!(d.caught_up && !d.wanted);
        assert!(matches!(
            out.last().and_then(|f| f.body.as_ref()),
            Some(Out::QueueEmpty(_))
        ));
        // Live: acks free room but nothing waits in the store.
        assert!(d.live);
        d.acked(&[2, 99]);
        assert_eq!(d.in_flight, vec![5, 7]);
        assert!(!d.wanted);
        // The high-priority message is pushed and unacknowledged until its ID
        // comes back; normal mail does not count.
        assert!(d.high_unacknowledged());
        d.acked(&[7]);
        assert!(d.high_unacknowledged());
        d.acked(&[5]);
        assert!(!d.high_unacknowledged());
    }

    fn fresh(ids: &[u64], overflowed: bool) -> Fresh {
        Fresh::of(
            ids.iter().map(|id| msg(*id, Priority::Normal)).collect(),
            overflowed,
        )
    }

    #[test]
    fn fresh_mail_is_pushed_only_while_live() {
        let mut d = Delivery::new();
        let mut out = Vec::new();
        // Not live yet (backlog unread): the hand-over is refused, the store has it.
        assert!(!d.push_fresh(fresh(&[3], false), 4, &mut out));
        assert!(out.is_empty() && d.wanted);
        d.push(vec![msg(3, Priority::Normal)], 4, &mut out);
        assert!(d.live && !d.wanted);
        // What the read already pushed is skipped; the rest goes out in order.
        out.clear();
        assert!(d.push_fresh(fresh(&[3, 4, 5], false), 4, &mut out));
        assert_eq!(d.in_flight, vec![3, 4, 5]);
        assert_eq!(out.len(), 2);
        // The window fills: the rest stays in the store and delivery falls behind.
        assert!(!d.push_fresh(fresh(&[6, 7], false), 4, &mut out));
        assert_eq!(d.in_flight, vec![3, 4, 5, 6]);
        assert!(d.wanted && !d.live);
        // An ack while behind asks for the store again.
        d.wanted = false;
        d.acked(&[3]);
        assert!(d.wanted);
        // Overflow also means falling behind.
        d.push(vec![], 1, &mut out);
        assert!(d.live);
        assert!(!d.push_fresh(fresh(&[], true), 4, &mut out));
        assert!(d.wanted);
    }
}
