//! Security invariants of issue 19 not played elsewhere: a phone's files do not
//! open with a stock SQLCipher without the key, a classical (non-post-quantum)
//! session is refused both ways, and another key for a known contact is
//! refused and the user told.
//!
//! Where each line of the issue is covered:
//!
//! * Bad input at the edges —
//!   the relay's socket: `relay/tests/bad_frames.rs` (garbage, text,
//!   undecodable, truncated, oversize frames, fields out of range, every
//!   request before login, floods, a ping flood, a device that stops reading;
//!   each with the database unchanged and other clients served), with bad
//!   logins in `relay/tests/auth.rs` and connection caps in
//!   `relay/tests/abuse.rs`;
//!   the core's public API: `tests/tests/bad_api.rs` (IDs, contact cards,
//!   invite links, scans, keys, huge strings, unknown committees, channels,
//!   messages, alerts, proposals) and `tests/tests/bad_input.rs` (bundles,
//!   truncated and tampered envelopes, a wrong database key, an unknown
//!   sender, random corruption);
//!   the CLI: `cli/tests/bad_input.rs`; the bindings do not exist yet.
//! * The relay's database holds no plaintext and no sender identity for
//!   sealed envelopes: `relay/tests/mailbox.rs`
//!   (`sealed_messages_store_nothing_about_their_sender`),
//!   `tests/tests/relay_holds.rs` and `tests/tests/first_contact.rs` (raw
//!   file scans after whole scenarios).
//! * A phone's files hold no plaintext: `tests/tests/sessions.rs`
//!   (`files_hold_no_plaintext_and_do_not_open_without_the_key`); without the
//!   key they do not open with a stock SQLCipher: here
//!   (`a_stock_sqlcipher_opens_the_files_with_the_key_only`); after panic wipe
//!   nothing is left: `sessions.rs` (`panic_wipe_leaves_nothing_readable`) and
//!   `cli/tests/device_safety.rs`.
//! * A refused classical session: here (`a_bundle_without_the_post_quantum_key_is_refused`,
//!   `a_classical_prekey_message_is_refused`).
//! * An identity change surfaced: `tests/tests/identity.rs` (a successor
//!   account held until accepted or rejected) and here
//!   (`another_key_for_a_known_contact_is_refused_and_surfaced`).
//! * A replayed envelope not delivered twice: `sessions.rs`
//!   (`a_replayed_message_is_a_duplicate_even_under_a_new_envelope_id`,
//!   `thousand_messages_each_way_shuffled_and_duplicated_are_stored_once`).
//! * One device unable to read another's mailbox: `relay/tests/mailbox.rs`
//!   (`no_device_can_ack_or_read_another_devices_mailbox`) and
//!   `relay/tests/isolation.rs`.
//! * Supply chain: `.ci/supply-chain` runs `cargo deny` over the workspace and
//!   over `fuzz/` (its own lock file); `deny.toml` gives each exception's reason.

use libsignal_protocol::{PreKeySignalMessage, SignalMessage};
use prost::Message as _;
use rankfile_core::{Error, Event, Received};
use rankfile_proto::v1 as pb;
use rankfile_tests::{introduce, Phone};
use rusqlite::{Connection, ErrorCode, OpenFlags};

/// Opens `path` with a stock SQLCipher, keyed by `key` if given (SQL text, as
/// a `PRAGMA key` takes it), and reads the schema.
fn stock_open(path: &std::path::Path, key: Option<&str>) -> rusqlite::Result<i64> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    if let Some(key) = key {
        conn.pragma_update(None, "key", key)?;
        // The store's page MAC (see the core's `store/open.rs`).
        conn.pragma_update(None, "cipher_hmac_algorithm", "HMAC_SHA256")?;
    }
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
}

fn not_a_database(r: &rusqlite::Result<i64>) -> bool {
    matches!(r, Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == ErrorCode::NotADatabase)
}

#[test]
fn a_stock_sqlcipher_opens_the_files_with_the_key_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut alice = Phone::new(dir.path(), "alice");
    let mut bob = Phone::new(dir.path(), "bob");
    introduce(&mut alice, &mut bob);
    let e = alice
        .send_text(&bob.id(), "the ballot is on friday")
        .expect("send");
    bob.receive(&e.bytes).expect("recv");
    let path = bob.path.clone();
    let raw = hex::encode(bob.key.expose_for_keystore());
    drop(bob);

    let mut other = raw.clone().into_bytes();
    other[0] = if other[0] == b'0' { b'1' } else { b'0' };
    let other = String::from_utf8(other).expect("hex");
    assert!(
        not_a_database(&stock_open(&path, None)),
        "opened without a key"
    );
    for wrong in [
        format!("x'{other}'"),
        // The right bytes taken as a passphrase instead of a raw key.
        raw.clone(),
        "solidarity forever".into(),
    ] {
        let r = stock_open(&path, Some(&wrong));
        assert!(not_a_database(&r), "{} characters: {r:?}", wrong.len());
    }
    // The check above means something: the right raw key opens the same
    // files with the same stock library.
    let tables = stock_open(&path, Some(&format!("x'{raw}'"))).expect("the right key opens");
    assert!(tables > 10, "{tables} schema rows");
}

#[test]
fn a_bundle_without_the_post_quantum_key_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut alice = Phone::new(dir.path(), "alice");
    let mut bob = Phone::new(dir.path(), "bob");
    let bundle =
        pb::PreKeyBundle::decode(bob.prekey_bundle().expect("bundle").as_slice()).expect("decode");
    let before = alice.dump_database().expect("dump");
    let mut classical = bundle.clone();
    classical.kyber_prekey.clear();
    classical.kyber_prekey_signature.clear();
    classical.kyber_prekey_id = 0;
    let mut unsigned = bundle.clone();
    unsigned.kyber_prekey_signature.clear();
    for (what, b) in [
        ("no Kyber key", classical),
        ("unsigned Kyber key", unsigned),
    ] {
        let r = alice.add_contact("bob", &b.encode_to_vec());
        assert!(matches!(r, Err(Error::InvalidBundle(_))), "{what}: {r:?}");
        assert_eq!(before, alice.dump_database().expect("dump"), "{what}");
    }
    assert!(alice.contacts().expect("contacts").is_empty());
}

#[test]
fn a_classical_prekey_message_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut alice = Phone::new(dir.path(), "alice");
    let mut bob = Phone::new(dir.path(), "bob");
    introduce(&mut alice, &mut bob);
    let first = alice.send_text(&bob.id(), "hello").expect("send");
    let env = pb::Envelope::decode(first.bytes.as_slice()).expect("envelope");
    assert_eq!(env.kind, pb::envelope::Kind::PrekeyMessage as i32);
    let pq = PreKeySignalMessage::try_from(env.ciphertext.as_slice()).expect("a PreKey message");
    assert!(pq.kyber_pre_key_id().is_some(), "sent with PQXDH");
    let signal = SignalMessage::try_from(pq.message().serialized()).expect("inner");

    // The same message as classical X3DH would send it: no Kyber payload,
    // under the pre-Kyber version and under the current one.
    let before = bob.dump_database().expect("dump");
    for version in [3u8, pq.message_version()] {
        let classical = PreKeySignalMessage::new(
            version,
            pq.registration_id(),
            pq.pre_key_id(),
            pq.signed_pre_key_id(),
            None,
            *pq.base_key(),
            *pq.identity_key(),
            signal.clone(),
        )
        .expect("built");
        let mut e = env.clone();
        e.ciphertext = classical.serialized().to_vec();
        let r = bob.receive(&e.encode_to_vec());
        assert!(
            matches!(
                r,
                Err(Error::Protocol(_) | Error::DecryptionFailed(_) | Error::InvalidEnvelope(_))
            ),
            "version {version}: {r:?}"
        );
        assert_eq!(
            before,
            bob.dump_database().expect("dump"),
            "version {version}"
        );
    }
    assert!(bob.contacts().expect("contacts").is_empty());
    // The genuine post-quantum message still opens the session.
    assert!(matches!(
        bob.receive(&first.bytes).expect("recv"),
        Received::Stored { .. }
    ));
}

#[test]
fn another_key_for_a_known_contact_is_refused_and_surfaced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut alice = Phone::new(dir.path(), "alice");
    let mut bob = Phone::new(dir.path(), "bob");
    let mut mallory = Phone::new(dir.path(), "mallory");
    introduce(&mut alice, &mut bob);
    introduce(&mut bob, &mut alice);
    let e = bob.send_text(&alice.id(), "hi").expect("send");
    alice.receive(&e.bytes).expect("recv");
    alice.drain_events();
    let bob_id = bob.id();
    let number = alice.safety_number(&bob_id).expect("number").digits;
    let before = alice.dump_database().expect("dump");

    // A bundle under Bob's ID with Mallory's keys (a relay swapping keys).
    let mut forged =
        pb::PreKeyBundle::decode(mallory.prekey_bundle().expect("b").as_slice()).expect("decode");
    forged.account_id = bob_id.as_bytes().to_vec();
    let r = alice.add_contact("bob", &forged.encode_to_vec());
    assert!(
        matches!(r, Err(Error::IdentityMismatch(id)) if id == bob_id),
        "{r:?}"
    );
    assert_eq!(before, alice.dump_database().expect("dump"));

    // A message under Bob's ID from a session Mallory opened with her key.
    introduce(&mut mallory, &mut alice);
    let before = alice.dump_database().expect("dump");
    alice.drain_events();
    let sent = mallory
        .send_text(&alice.id(), "it's bob, new keys")
        .expect("send");
    let mut env = pb::Envelope::decode(sent.bytes.as_slice()).expect("envelope");
    env.sender_account_id = bob_id.as_bytes().to_vec();
    let r = alice.receive(&env.encode_to_vec());
    assert!(
        matches!(r, Err(Error::IdentityMismatch(id)) if id == bob_id),
        "{r:?}"
    );
    assert_eq!(before, alice.dump_database().expect("dump"));
    // The user is told, and nothing about Bob changed.
    assert!(alice
        .drain_events()
        .contains(&Event::IdentityMismatch { account: bob_id }));
    assert_eq!(alice.safety_number(&bob_id).expect("sn").digits, number);
    assert_eq!(alice.history(&bob_id, None, 10).expect("h").len(), 1);
}
