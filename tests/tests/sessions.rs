//! 1:1 sessions end to end between two simulated phones, each with its own
//! SQLCipher store: PQXDH from exported bundles, shuffled and duplicated
//! delivery, restarts, and what the files on disk reveal.

use rand::seq::SliceRandom;
use rankfile_core::{Account, DatabaseKey, Error, Received};
use rankfile_tests::{contains, introduce, Phone};

#[test]
fn thousand_messages_each_way_shuffled_and_duplicated_are_stored_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut alice = Phone::new(dir.path(), "alice");
    let mut bob = Phone::new(dir.path(), "bob");
    introduce(&mut alice, &mut bob);

    // Bob must learn of Alice before he can write: her first message does it.
    let first = alice.send_text(&bob.id(), "hello bob").expect("send");
    assert!(matches!(
        bob.receive(&first.bytes).expect("receive"),
        Received::Stored { .. }
    ));

    const N: usize = 1000;
    let mut rng = rand::rng();
    let mut a_to_b = Vec::new();
    let mut b_to_a = Vec::new();
    for i in 0..N {
        a_to_b.push(
            alice
                .send_text(&bob.id(), &format!("a→b {i}"))
                .expect("send")
                .bytes,
        );
        b_to_a.push(
            bob.send_text(&alice.id(), &format!("b→a {i}"))
                .expect("send")
                .bytes,
        );
        if i == N / 2 {
            // Both apps restart halfway through the conversation.
            alice.reopen();
            bob.reopen();
        }
    }
    // Every envelope delivered twice, in random order, half of them in batches.
    let mut to_bob: Vec<Vec<u8>> = a_to_b.iter().chain(a_to_b.iter()).cloned().collect();
    let mut to_alice: Vec<Vec<u8>> = b_to_a.iter().chain(b_to_a.iter()).cloned().collect();
    to_bob.shuffle(&mut rng);
    to_alice.shuffle(&mut rng);

    let mut stored = 0;
    let mut duplicates = 0;
    for (i, chunk) in to_bob.chunks(97).enumerate() {
        let results = if i % 2 == 0 {
            let refs: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
            bob.receive_batch(&refs).expect("batch")
        } else {
            chunk.iter().map(|e| bob.receive(e)).collect()
        };
        for r in results {
            match r.expect("each envelope is accepted") {
                Received::Stored { .. } => stored += 1,
                Received::Duplicate => duplicates += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
        if i == 10 {
            bob.reopen();
        }
    }
    assert_eq!((stored, duplicates), (N, N));
    for e in &to_alice {
        alice.receive(e).expect("receive");
    }

    let bob_history = bob.history(&alice.id(), None, 10_000).expect("history");
    let mut bodies: Vec<String> = bob_history
        .iter()
        .filter(|m| !m.outgoing)
        .map(|m| m.body.clone())
        .collect();
    bodies.sort();
    let mut expected: Vec<String> = (0..N).map(|i| format!("a→b {i}")).collect();
    expected.push("hello bob".to_string());
    expected.sort();
    assert_eq!(bodies, expected, "every message exactly once");

    let alice_history = alice.history(&bob.id(), None, 10_000).expect("history");
    let received: Vec<_> = alice_history.iter().filter(|m| !m.outgoing).collect();
    assert_eq!(received.len(), N);
    assert_eq!(alice.message_count().expect("count"), (2 * N + 1) as u64);
}

#[test]
fn conversation_continues_after_both_stores_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut alice = Phone::new(dir.path(), "alice");
    let mut bob = Phone::new(dir.path(), "bob");
    introduce(&mut alice, &mut bob);
    for round in 0..3 {
        let e = alice
            .send_text(&bob.id(), &format!("ping {round}"))
            .expect("send");
        alice.reopen();
        bob.reopen();
        assert!(matches!(
            bob.receive(&e.bytes).expect("recv"),
            Received::Stored { .. }
        ));
        let r = bob
            .send_text(&alice.id(), &format!("pong {round}"))
            .expect("send");
        bob.reopen();
        assert!(matches!(
            alice.receive(&r.bytes).expect("recv"),
            Received::Stored { .. }
        ));
    }
    assert_eq!(bob.history(&alice.id(), None, 100).expect("h").len(), 6);
}

#[test]
fn files_hold_no_plaintext_and_do_not_open_without_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut alice = Phone::new(dir.path(), "alice");
    let mut bob = Phone::new(dir.path(), "bob");
    introduce(&mut alice, &mut bob);
    let secret = "meet at the north gate at six, bring the strike fund ledger";
    for _ in 0..20 {
        let e = alice.send_text(&bob.id(), secret).expect("send");
        bob.receive(&e.bytes).expect("recv");
    }
    for phone in [&alice, &bob] {
        let raw = phone.raw_bytes();
        assert!(raw.len() > 4096, "the store has data");
        assert!(
            !contains(&raw, secret.as_bytes()),
            "plaintext on disk for {}",
            phone.name
        );
        assert!(!contains(&raw, b"north gate"));
        assert!(
            !contains(&raw, b"SQLite format 3"),
            "the header is encrypted too"
        );
        assert!(
            !contains(&raw, b"CREATE TABLE"),
            "the schema is encrypted too"
        );
        // Account IDs, which name who talks to whom, are inside the encryption.
        assert!(!contains(&raw, bob.id().as_bytes()));
        assert!(!contains(&raw, alice.id().as_bytes()));
    }
    let path = bob.path.clone();
    drop(bob);
    assert!(matches!(
        Account::open(&path, &DatabaseKey::generate()),
        Err(Error::WrongDatabaseKey)
    ));
}

#[test]
fn a_replayed_message_is_a_duplicate_even_under_a_new_envelope_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut alice = Phone::new(dir.path(), "alice");
    let mut bob = Phone::new(dir.path(), "bob");
    introduce(&mut alice, &mut bob);
    let e1 = alice.send_text(&bob.id(), "one").expect("send");
    bob.receive(&e1.bytes).expect("recv");
    let reply = bob.send_text(&alice.id(), "ack").expect("send");
    alice.receive(&reply.bytes).expect("recv");
    let e2 = alice.send_text(&bob.id(), "two").expect("send");
    bob.receive(&e2.bytes).expect("recv");

    // The relay re-wraps the same ciphertext under a fresh envelope ID.
    use prost::Message as _;
    let mut forged = rankfile_proto::v1::Envelope::decode(e2.bytes.as_slice()).expect("decode");
    forged.id = vec![7; 16];
    let before = bob.dump_database().expect("dump");
    assert_eq!(
        bob.receive(&forged.encode_to_vec()).expect("recv"),
        Received::Duplicate
    );
    assert_eq!(before, bob.dump_database().expect("dump"));
    assert_eq!(bob.history(&alice.id(), None, 10).expect("h").len(), 3);
}

#[test]
fn outbox_keeps_envelopes_until_confirmed_across_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut alice = Phone::new(dir.path(), "alice");
    let mut bob = Phone::new(dir.path(), "bob");
    introduce(&mut alice, &mut bob);
    let a = alice.send_text(&bob.id(), "first").expect("send");
    let b = alice.send_text(&bob.id(), "second").expect("send");
    alice.reopen();
    let outbox = alice.outbox().expect("outbox");
    assert_eq!(outbox, vec![a.clone(), b.clone()]);
    assert!(alice.confirm_sent(&a.envelope_id).expect("confirm"));
    assert!(!alice.confirm_sent(&a.envelope_id).expect("confirm twice"));
    assert_eq!(alice.outbox().expect("outbox"), vec![b.clone()]);
    // Sent twice (before and after the restart): stored once.
    for e in [&b, &b, &a] {
        bob.receive(&e.bytes).expect("recv");
    }
    assert_eq!(bob.history(&alice.id(), None, 10).expect("h").len(), 2);
}

#[test]
fn panic_wipe_leaves_nothing_readable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut alice = Phone::new(dir.path(), "alice");
    let mut bob = Phone::new(dir.path(), "bob");
    introduce(&mut alice, &mut bob);
    let e = alice.send_text(&bob.id(), "wipe me").expect("send");
    bob.receive(&e.bytes).expect("recv");
    let files = bob.files();
    assert!(!files.is_empty());
    let path = bob.path.clone();
    let key = DatabaseKey::from_slice(bob.key.expose_for_keystore()).expect("32 bytes");
    bob.into_account().wipe().expect("wipe");
    for f in &files {
        assert!(!f.exists(), "{} survived the wipe", f.display());
    }
    assert!(matches!(
        Account::open(&path, &key),
        Err(Error::StoreMissing)
    ));
}

/// A large batch has its 1:1 messages decrypted ahead on a second thread. What
/// it stores, and the sessions it leaves, must be exactly what receiving the
/// same envelopes one at a time gives: out of order, duplicated, tampered, and
/// mixed with a new contact's first messages, which set up a session.
#[test]
fn a_batch_decrypted_ahead_stores_what_one_at_a_time_stores() {
    use prost::Message as _;
    use rankfile_proto::v1 as pb;

    let dir = tempfile::tempdir().expect("tempdir");
    let mut alice = Phone::new(dir.path(), "alice");
    let mut carol = Phone::new(dir.path(), "carol");
    let mut bob = Phone::new(dir.path(), "bob");
    introduce(&mut alice, &mut bob);
    introduce(&mut carol, &mut bob);
    let first = alice.send_text(&bob.id(), "hello bob").expect("send");
    bob.receive(&first.bytes).expect("receive");
    let reply = bob.send_text(&alice.id(), "hello alice").expect("send");
    alice.receive(&reply.bytes).expect("receive");
    let mut twin = bob.twin("bob-twin");

    let mut batch: Vec<Vec<u8>> = Vec::new();
    for i in 0..60 {
        batch.push(
            alice
                .send_text(&bob.id(), &format!("alice {i}"))
                .expect("send")
                .bytes,
        );
        if i % 15 == 7 {
            // Carol's first messages: each carries the session's setup.
            batch.push(
                carol
                    .send_text(&bob.id(), &format!("carol {i}"))
                    .expect("send")
                    .bytes,
            );
        }
    }
    batch.swap(3, 17);
    batch.swap(30, 31);
    let again = batch[10].clone();
    batch.insert(25, again);
    // The first envelope from `from` on that carries a message on an
    // established session (Alice's; Carol's are all first messages).
    let on_session = |batch: &[Vec<u8>], from: usize| {
        (from..)
            .find(|&i| {
                pb::Envelope::decode(batch[i].as_slice())
                    .expect("decode")
                    .kind
                    == pb::envelope::Kind::SignalMessage as i32
            })
            .expect("a message on the session")
    };
    // A copy of one of Alice's messages under a new envelope ID, with one
    // bit of its ciphertext flipped, arriving just before the real one.
    let source = on_session(&batch, 40);
    let mut tampered = pb::Envelope::decode(batch[source].as_slice()).expect("decode");
    tampered.id[0] ^= 1;
    let n = tampered.ciphertext.len();
    tampered.ciphertext[n / 2] ^= 1;
    let tampered_at = source;
    batch.insert(tampered_at, tampered.encode_to_vec());
    // One of Alice's messages arrives first under an envelope ID already
    // used: it is taken for that envelope, a duplicate, and not decrypted
    // (the helper, which has no database, decrypts it all the same). The
    // real one comes after the batch.
    let held_back = on_session(&batch, 50);
    let real = batch[held_back].clone();
    let mut misnamed = pb::Envelope::decode(real.as_slice()).expect("decode");
    misnamed.id = pb::Envelope::decode(batch[2].as_slice())
        .expect("decode")
        .id;
    batch[held_back] = misnamed.encode_to_vec();
    assert!(batch.len() > 64);

    let refs: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
    let together = bob.receive_batch(&refs).expect("batch");
    let one_by_one: Vec<_> = batch.iter().map(|e| twin.receive(e)).collect();
    assert_eq!(together.len(), one_by_one.len());
    for (i, (a, b)) in together.iter().zip(&one_by_one).enumerate() {
        match (a, b) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "envelope {i}"),
            (Err(_), Err(_)) => {}
            _ => panic!("envelope {i}: {a:?} in the batch, {b:?} alone"),
        }
    }
    assert!(together[tampered_at].is_err(), "the tampered copy fails");
    assert!(matches!(together[25], Ok(Received::Duplicate)));
    assert!(matches!(together[held_back], Ok(Received::Duplicate)));
    assert!(matches!(bob.receive(&real), Ok(Received::Stored { .. })));
    assert!(matches!(twin.receive(&real), Ok(Received::Stored { .. })));

    for peer in [alice.id(), carol.id()] {
        let a = bob.history(&peer, None, 500).expect("history");
        let b = twin.history(&peer, None, 500).expect("history");
        let bodies = |h: &[rankfile_core::StoredMessage]| -> Vec<String> {
            h.iter().map(|m| m.body.clone()).collect()
        };
        assert_eq!(bodies(&a), bodies(&b));
    }
    assert_eq!(bob.message_count().expect("count"), 1 + 1 + 60 + 4);
    assert_eq!(twin.message_count().expect("count"), 1 + 1 + 60 + 4);

    // Both left the sessions in the same place: the next messages from each
    // sender decrypt on both, and the replies decrypt at Alice and Carol.
    for phone in [&mut alice, &mut carol] {
        let next = phone.send_text(&bob.id(), "one more").expect("send");
        assert!(matches!(
            bob.receive(&next.bytes),
            Ok(Received::Stored { .. })
        ));
        assert!(matches!(
            twin.receive(&next.bytes),
            Ok(Received::Stored { .. })
        ));
    }
    bob.reopen();
    let to_alice = bob.send_text(&alice.id(), "after the batch").expect("send");
    assert!(matches!(
        alice.receive(&to_alice.bytes),
        Ok(Received::Stored { .. })
    ));
    let to_carol = twin
        .send_text(&carol.id(), "after the batch")
        .expect("send");
    assert!(matches!(
        carol.receive(&to_carol.bytes),
        Ok(Received::Stored { .. })
    ));
}
