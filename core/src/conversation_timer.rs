//! Disappearing 1:1 messages: each conversation's timer, set by either side,
//! carried in every text and adopted by the other side, as Signal does.
//!
//! A conversation's timer is a setting and its version. Setting it (either
//! phone) takes the next version and sends a `ConversationTimer` to the other
//! phone in the same transaction; every text then carries the setting it was
//! written under. A receiver adopts a higher version; at the same version with
//! another timer (both sides changed it at once) the stricter wins on both
//! phones; a lower version is stale (a text written before the change,
//! arriving late) and changes nothing. Signal added the same version counter
//! (`expireTimerVersion`) because without it a late text set an old timer back.
//!
//! A text expires at its sent time plus its timer on both phones (on the
//! receiver, counted from the earlier of the sender's clock and its own, so a
//! clock set ahead keeps nothing longer), and the purge that deletes expired
//! channel messages deletes it (`channel::expiry`): the same query, the same
//! WAL checkpoint, so the text leaves the raw files too. The receiver gives a
//! text the stricter of the timer it carries and the conversation's after
//! adoption: a stale text cannot outlive the newer setting.

use rusqlite::{params, Connection, OptionalExtension};

use crate::account::Account;
use crate::account_id::AccountId;
use crate::channel::{effective_timer, expires_at};
use crate::committee::MAX_DISAPPEARING_SECS;
use crate::committee_store::BatchLogs;
use crate::error::{Error, Result};
use crate::event::Event;
use crate::message::Body;
use crate::send::OutgoingEnvelope;

/// A conversation's timer: seconds (0 off) and the version of that setting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Timer {
    pub secs: u32,
    pub version: u32,
}

impl Timer {
    /// Checks a timer that arrived in content.
    pub(crate) fn checked(secs: u32, version: u32) -> Result<Timer> {
        if secs > MAX_DISAPPEARING_SECS {
            return Err(Error::InvalidContent("disappearing timer too long"));
        }
        Ok(Timer { secs, version })
    }
}

pub(crate) const GET_SQL: &str = "SELECT secs, version FROM conversation_timers WHERE peer = ?1";
const PUT_SQL: &str = "INSERT INTO conversation_timers (peer, secs, version) VALUES (?1, ?2, ?3)
     ON CONFLICT (peer) DO UPDATE SET secs = excluded.secs, version = excluded.version";

/// The timer of the conversation with `peer` (off, version 0, if never set).
pub(crate) fn get(conn: &Connection, peer: &AccountId) -> Result<Timer> {
    Ok(conn
        .prepare_cached(GET_SQL)?
        .query_row([&peer.as_bytes()[..]], |r| {
            Ok(Timer {
                secs: r.get(0)?,
                version: r.get(1)?,
            })
        })
        .optional()?
        .unwrap_or_default())
}

/// Records the conversation's timer (inside the caller's transaction).
pub(crate) fn put(conn: &Connection, peer: &AccountId, timer: Timer) -> Result<()> {
    conn.prepare_cached(PUT_SQL)?.execute(params![
        &peer.as_bytes()[..],
        timer.secs,
        timer.version
    ])?;
    Ok(())
}

/// What the conversation's timer becomes when `carried` arrives from its
/// other side, given `ours`.
fn merge(ours: Timer, carried: Timer) -> Timer {
    if carried.version > ours.version {
        carried
    } else if carried.version == ours.version && carried.secs != ours.secs {
        Timer {
            secs: effective_timer(carried.secs, ours.secs),
            version: ours.version,
        }
    } else {
        ours
    }
}

/// Takes in a timer from `peer` (a timer change, or the one a text carries):
/// adopts it as the rules say, raising [`Event::ConversationTimerChanged`]
/// when the setting changed. Returns the timer a text carrying it gets.
pub(crate) fn receive(
    conn: &Connection,
    peer: &AccountId,
    carried: Timer,
    events: &mut Vec<Event>,
) -> Result<u32> {
    let ours = get(conn, peer)?;
    let now = merge(ours, carried);
    if now != ours {
        put(conn, peer, now)?;
        if now.secs != ours.secs {
            events.push(Event::ConversationTimerChanged {
                peer: *peer,
                secs: now.secs,
            });
        }
    }
    Ok(effective_timer(carried.secs, now.secs))
}

/// When a received text expires (`None`: never), after taking in the timer
/// it carries; tells the batch when it stores something to purge.
pub(crate) fn receive_text(
    conn: &Connection,
    peer: &AccountId,
    carried: Timer,
    sent_at_ms: i64,
    logs: &mut BatchLogs<'_>,
    events: &mut Vec<Event>,
) -> Result<Option<i64>> {
    let secs = receive(conn, peer, carried, events)?;
    let at = expires_at(sent_at_ms, logs.now_ms, secs);
    logs.stores_expiring |= at.is_some();
    Ok(at)
}

impl Account {
    /// Sets the disappearing timer of the conversation with contact `peer`,
    /// in seconds (0 off, at most a year). Texts sent from now on carry it,
    /// and both phones delete each of them that long after it was sent.
    /// The change goes to `peer`'s phone, which adopts it; the returned
    /// envelope, committed with the change, is in the outbox.
    pub fn set_conversation_timer(
        &mut self,
        peer: &AccountId,
        secs: u32,
    ) -> Result<OutgoingEnvelope> {
        if secs > MAX_DISAPPEARING_SECS {
            return Err(Error::TimerTooLong {
                secs,
                max: MAX_DISAPPEARING_SECS,
            });
        }
        let ours = get(self.store.conn(), peer)?;
        // At the top version the setting can still only be made stricter:
        // a tie goes to the stricter timer on both phones.
        let timer = Timer {
            secs,
            version: ours.version.saturating_add(1),
        };
        // The send records the setting in its own transaction.
        self.send_body(peer, &Body::ConversationTimer(timer))
    }

    /// The disappearing timer of the conversation with `peer`, in seconds
    /// (0: off).
    pub fn conversation_timer(&self, peer: &AccountId) -> Result<u32> {
        Ok(get(self.store.conn(), peer)?.secs)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicI64, Ordering};
    use std::sync::Arc;

    use super::*;
    use crate::account::AccountOptions;
    use crate::clock::Clock;
    use crate::message::{NewMessage, StoredMessage};
    use crate::receive::Received;
    use crate::store::DatabaseKey;

    fn t(secs: u32, version: u32) -> Timer {
        Timer { secs, version }
    }

    /// Two accounts with sessions both ways, on one clock the test moves.
    fn pair(dir: &tempfile::TempDir, offset: &Arc<AtomicI64>) -> (Account, Account) {
        let options = AccountOptions::default().with_clock(Clock::shifted(offset.clone()));
        let open = |name: &str| {
            Account::create_with(&dir.path().join(name), &DatabaseKey::generate(), &options)
                .expect("account")
        };
        let (mut alice, mut bob) = (open("alice.db"), open("bob.db"));
        alice
            .add_contact("bob", &bob.prekey_bundle().expect("bundle"))
            .expect("contact");
        let hello = alice.send_text(&bob.id(), "hello").expect("send");
        bob.receive(&hello.bytes).expect("receive");
        (alice, bob)
    }

    fn latest(a: &Account, peer: &AccountId) -> StoredMessage {
        a.history(peer, None, 1)
            .expect("history")
            .pop()
            .expect("a message")
    }

    fn bodies(a: &Account, peer: &AccountId) -> Vec<String> {
        a.history(peer, None, 100)
            .expect("history")
            .into_iter()
            .map(|m| m.body)
            .collect()
    }

    #[test]
    fn either_side_sets_the_timer_the_other_adopts_it_and_both_delete_on_time() {
        let dir = tempfile::tempdir().expect("dir");
        let offset = Arc::new(AtomicI64::new(0));
        let (mut alice, mut bob) = pair(&dir, &offset);
        let (a, b) = (alice.id(), bob.id());

        // Bob, the receiving side so far, sets a minute.
        let change = bob.set_conversation_timer(&a, 60).expect("set");
        assert_eq!(bob.conversation_timer(&a).expect("timer"), 60);
        alice.drain_events();
        assert!(matches!(
            alice.receive(&change.bytes),
            Ok(Received::Control { .. })
        ));
        assert_eq!(alice.conversation_timer(&b).expect("timer"), 60);
        assert!(alice
            .drain_events()
            .contains(&Event::ConversationTimerChanged { peer: b, secs: 60 }));

        // Alice's text carries it: both copies go a minute after it was sent.
        let text = alice.send_text(&b, "meet at the gate").expect("send");
        let ours = latest(&alice, &b);
        assert_eq!(ours.expires_at_ms, Some(ours.sent_at_ms + 60_000));
        bob.receive(&text.bytes).expect("receive");
        let theirs = latest(&bob, &a);
        assert_eq!(theirs.body, "meet at the gate");
        assert_eq!(theirs.expires_at_ms, Some(theirs.sent_at_ms + 60_000));
        let late = bob.send_text(&a, "nothing").expect("send");
        // Alice turns it off; a text written before (the one above) keeps
        // its minute, what comes after is kept.
        let off = alice.set_conversation_timer(&b, 0).expect("off");
        bob.receive(&off.bytes).expect("receive");
        assert_eq!(bob.conversation_timer(&a).expect("timer"), 0);
        alice.receive(&late.bytes).expect("late text");
        assert_eq!(
            alice.conversation_timer(&b).expect("timer"),
            0,
            "a text written before the change does not set the old timer back"
        );
        assert!(
            latest(&alice, &b).expires_at_ms.is_some(),
            "it keeps its own"
        );
        let after = bob.send_text(&a, "kept for good").expect("send");
        alice.receive(&after.bytes).expect("receive");
        assert_eq!(latest(&alice, &b).expires_at_ms, None);

        // A minute later the purge deletes the timed ones on both phones.
        offset.store(61_000, Ordering::Relaxed);
        alice.drain_events();
        assert_eq!(alice.purge_expired().expect("purge"), 2);
        assert_eq!(bob.purge_expired().expect("purge"), 2);
        assert!(alice
            .drain_events()
            .iter()
            .all(|e| matches!(e, Event::MessageExpired { peer, .. } if *peer == b)));
        assert_eq!(bodies(&alice, &b), ["kept for good", "hello"]);
        assert_eq!(bodies(&bob, &a), ["kept for good", "hello"]);
        assert!(alice.next_expiry().expect("next").is_none());
    }

    #[test]
    fn changes_made_at_once_on_both_sides_end_at_the_stricter_on_both() {
        let dir = tempfile::tempdir().expect("dir");
        let offset = Arc::new(AtomicI64::new(0));
        let (mut alice, mut bob) = pair(&dir, &offset);
        let (a, b) = (alice.id(), bob.id());
        let from_alice = alice.set_conversation_timer(&b, 3600).expect("set");
        let from_bob = bob.set_conversation_timer(&a, 60).expect("set");
        alice.receive(&from_bob.bytes).expect("receive");
        bob.receive(&from_alice.bytes).expect("receive");
        assert_eq!(alice.conversation_timer(&b).expect("timer"), 60);
        assert_eq!(bob.conversation_timer(&a).expect("timer"), 60);
        assert!(matches!(
            alice.set_conversation_timer(&b, MAX_DISAPPEARING_SECS + 1),
            Err(Error::TimerTooLong { .. })
        ));
    }

    /// The same schema in a file without encryption, so its raw bytes show
    /// what the store would hold: an expired 1:1 text leaves the database
    /// file and the WAL, as an expired channel message does
    /// (`channel::tests::deleted_text_leaves_no_trace_in_the_raw_files_of_a_plaintext_twin`).
    #[test]
    fn an_expired_text_leaves_no_trace_in_the_raw_files_of_a_plaintext_twin() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("plain.db");
        let mut conn = Connection::open(&path).expect("open");
        conn.pragma_update(None, "secure_delete", "ON")
            .expect("secure delete");
        conn.pragma_update(None, "journal_mode", "WAL")
            .expect("wal");
        crate::store::Store::migrate_plain(&mut conn).expect("migrations");
        let raw = || -> Vec<u8> {
            ["", "-wal"]
                .iter()
                .filter_map(|s| std::fs::read(format!("{}{s}", path.display())).ok())
                .flatten()
                .collect()
        };
        let has = |needle: &[u8]| raw().windows(needle.len()).any(|w| w == needle);
        let peer = AccountId::from_identity_key(
            libsignal_protocol::IdentityKeyPair::generate(&mut rand::rng()).identity_key(),
        );
        let now = crate::clock::now_ms();
        for (i, body, expires_at) in [
            (1u8, "quetzalcoatl wolframite", Some(now)),
            (2, "ordinary words", None),
        ] {
            crate::message::insert(
                &conn,
                &NewMessage {
                    envelope_id: &[i; 16],
                    peer: &peer,
                    outgoing: false,
                    body,
                    sent_at_ms: now,
                    stored_at_ms: now,
                    held: false,
                    expires_at,
                },
            )
            .expect("insert");
        }
        // The check can fail: the text is there before the purge.
        assert!(has(b"quetzalcoatl wolframite"));
        let purged = crate::channel::expiry::purge_at(&conn, now).expect("purge");
        assert_eq!(purged.direct.len(), 1);
        crate::channel::expiry::scrub(&conn);
        for needle in [&b"quetzalcoatl"[..], b"wolframite"] {
            assert!(
                !has(needle),
                "{} is still in the raw files",
                String::from_utf8_lossy(needle)
            );
        }
        assert!(has(b"ordinary"), "the other message stays");
    }

    #[test]
    fn a_newer_setting_is_adopted_a_stale_one_is_not_and_a_tie_goes_to_the_stricter() {
        assert_eq!(merge(t(0, 0), t(3600, 1)), t(3600, 1));
        // Turned off later: adopted.
        assert_eq!(merge(t(3600, 1), t(0, 2)), t(0, 2));
        // A text written before the change, arriving late.
        assert_eq!(merge(t(0, 2), t(3600, 1)), t(0, 2));
        // Both changed it at once: both end at the stricter.
        assert_eq!(merge(t(60, 3), t(3600, 3)), t(60, 3));
        assert_eq!(merge(t(3600, 3), t(60, 3)), t(60, 3));
        assert_eq!(merge(t(0, 3), t(60, 3)), t(60, 3));
        assert!(Timer::checked(MAX_DISAPPEARING_SECS + 1, 1).is_err());
    }
}
