//! Bad input: malformed bundles, truncated and tampered ciphertext, a wrong
//! database key, an unknown sender. Each is a typed error, never a panic, and
//! the database is exactly as it was (compared by a dump of every row).

use proptest::prelude::*;
use prost::Message as _;
use rankfile_core::{Account, DatabaseKey, Error, Received};
use rankfile_proto::v1 as pb;
use rankfile_tests::{introduce, Phone};

fn pair(dir: &std::path::Path) -> (Phone, Phone) {
    let mut alice = Phone::new(dir, "alice");
    let mut bob = Phone::new(dir, "bob");
    introduce(&mut alice, &mut bob);
    (alice, bob)
}

#[test]
fn malformed_bundles_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut alice, mut bob) = pair(dir.path());
    let good = bob.prekey_bundle().expect("bundle");
    let decoded = pb::PreKeyBundle::decode(good.as_slice()).expect("decode");
    let mut cases: Vec<Vec<u8>> = vec![
        Vec::new(),
        vec![0xff; 10],
        good[..good.len() / 2].to_vec(),
        vec![0u8; 100_000],
    ];
    let mut bad_sig = decoded.clone();
    bad_sig.signed_prekey_signature[5] ^= 1;
    cases.push(bad_sig.encode_to_vec());
    let mut bad_kyber_sig = decoded.clone();
    bad_kyber_sig.kyber_prekey_signature[5] ^= 1;
    cases.push(bad_kyber_sig.encode_to_vec());
    let mut bad_key = decoded.clone();
    bad_key.kyber_prekey.truncate(10);
    cases.push(bad_key.encode_to_vec());
    let mut no_identity = decoded.clone();
    no_identity.identity_key.clear();
    cases.push(no_identity.encode_to_vec());
    let mut bad_device = decoded.clone();
    bad_device.device_id = 0;
    cases.push(bad_device.encode_to_vec());

    let before = alice.dump_database().expect("dump");
    for (i, case) in cases.iter().enumerate() {
        let r = alice.add_contact("x", case);
        assert!(
            matches!(
                r,
                Err(Error::InvalidBundle(_)) | Err(Error::IdentityMismatch(_))
            ),
            "case {i}: {r:?}"
        );
        assert_eq!(
            before,
            alice.dump_database().expect("dump"),
            "case {i} changed the store"
        );
    }
}

#[test]
fn truncated_and_tampered_envelopes_change_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut alice, mut bob) = pair(dir.path());
    let first = alice.send_text(&bob.id(), "first").expect("send");
    let second = alice.send_text(&bob.id(), "second").expect("send");
    let before = bob.dump_database().expect("dump");
    let env = pb::Envelope::decode(first.bytes.as_slice()).expect("decode");

    let mut cases: Vec<Vec<u8>> = vec![
        Vec::new(),
        vec![1, 2, 3],
        first.bytes[..first.bytes.len() - 9].to_vec(),
    ];
    for cut in [1, 40, env.ciphertext.len() / 2] {
        let mut e = env.clone();
        e.ciphertext.truncate(env.ciphertext.len() - cut);
        cases.push(e.encode_to_vec());
    }
    for pos in [0, 1, 50, env.ciphertext.len() / 2, env.ciphertext.len() - 1] {
        let mut e = env.clone();
        e.ciphertext[pos] ^= 0x40;
        cases.push(e.encode_to_vec());
    }
    let mut wrong_kind = env.clone();
    wrong_kind.kind = pb::envelope::Kind::SignalMessage as i32;
    cases.push(wrong_kind.encode_to_vec());
    let mut unknown_kind = env.clone();
    unknown_kind.kind = 99;
    cases.push(unknown_kind.encode_to_vec());
    let mut short_id = env.clone();
    short_id.id.truncate(3);
    cases.push(short_id.encode_to_vec());
    let mut bad_sender = env.clone();
    bad_sender.sender_account_id = vec![1; 20];
    cases.push(bad_sender.encode_to_vec());
    let mut self_sender = env.clone();
    self_sender.sender_account_id = bob.id().as_bytes().to_vec();
    cases.push(self_sender.encode_to_vec());
    cases.push(vec![0u8; rankfile_core::MAX_ENVELOPE_LEN + 1]);

    for (i, case) in cases.iter().enumerate() {
        let r = bob.receive(case);
        assert!(r.is_err(), "case {i} was accepted: {r:?}");
        assert_eq!(
            before,
            bob.dump_database().expect("dump"),
            "case {i} changed the store"
        );
    }
    // The real envelopes still go through afterwards.
    assert!(matches!(
        bob.receive(&first.bytes).expect("recv"),
        Received::Stored { .. }
    ));
    assert!(matches!(
        bob.receive(&second.bytes).expect("recv"),
        Received::Stored { .. }
    ));
}

#[test]
fn an_unknown_sender_is_a_typed_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut alice, mut bob) = pair(dir.path());
    let mut carol = Phone::new(dir.path(), "carol");
    introduce(&mut carol, &mut alice);
    // Carol and Alice talk until Carol's messages are plain SignalMessages.
    let hello = carol.send_text(&alice.id(), "hi").expect("send");
    alice.receive(&hello.bytes).expect("recv");
    let reply = alice.send_text(&carol.id(), "hi carol").expect("send");
    carol.receive(&reply.bytes).expect("recv");
    let later = carol.send_text(&alice.id(), "later").expect("send");
    // Bob has never heard of Carol.
    let before = bob.dump_database().expect("dump");
    assert!(matches!(bob.receive(&later.bytes), Err(Error::NoSession(id)) if id == carol.id()));
    assert_eq!(before, bob.dump_database().expect("dump"));
    // And sending to a stranger is refused too.
    assert!(matches!(
        bob.send_text(&carol.id(), "?"),
        Err(Error::UnknownContact(_))
    ));
}

#[test]
fn a_wrong_database_key_is_a_typed_error_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (alice, _bob) = pair(dir.path());
    let path = alice.path.clone();
    let key = DatabaseKey::from_slice(alice.key.expose_for_keystore()).expect("32 bytes");
    drop(alice);
    let bytes_before: Vec<Vec<u8>> = ["", "-wal"]
        .iter()
        .filter_map(|s| std::fs::read(format!("{}{s}", path.display())).ok())
        .collect();
    for _ in 0..3 {
        assert!(matches!(
            Account::open(&path, &DatabaseKey::generate()),
            Err(Error::WrongDatabaseKey)
        ));
    }
    assert!(matches!(
        Account::create(&path, &key),
        Err(Error::StoreExists)
    ));
    assert!(matches!(
        Account::open(&dir.path().join("nothing.db"), &key),
        Err(Error::StoreMissing)
    ));
    assert!(
        !dir.path().join("nothing.db").exists(),
        "no empty database was made"
    );
    let bytes_after: Vec<Vec<u8>> = ["", "-wal"]
        .iter()
        .filter_map(|s| std::fs::read(format!("{}{s}", path.display())).ok())
        .collect();
    assert!(
        bytes_before == bytes_after,
        "a wrong key wrote to the files"
    );
    Account::open(&path, &key).expect("the right key still opens it");
}

#[test]
fn a_bad_envelope_inside_a_batch_leaves_the_others_intact() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut alice, mut bob) = pair(dir.path());
    let envelopes: Vec<Vec<u8>> = (0..10)
        .map(|i| {
            alice
                .send_text(&bob.id(), &format!("m{i}"))
                .expect("send")
                .bytes
        })
        .collect();
    let mut tampered = pb::Envelope::decode(envelopes[5].as_slice()).expect("decode");
    tampered.ciphertext[60] ^= 1;
    let tampered = tampered.encode_to_vec();
    let mut batch: Vec<&[u8]> = envelopes.iter().map(Vec::as_slice).collect();
    batch[5] = &tampered;
    let results = bob.receive_batch(&batch).expect("batch commits");
    for (i, r) in results.iter().enumerate() {
        if i == 5 {
            assert!(r.is_err());
        } else {
            assert!(matches!(r, Ok(Received::Stored { .. })), "{i}: {r:?}");
        }
    }
    assert_eq!(bob.history(&alice.id(), None, 100).expect("h").len(), 9);
    // The genuine fifth envelope still decrypts afterwards.
    assert!(matches!(
        bob.receive(&envelopes[5]).expect("recv"),
        Received::Stored { .. }
    ));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Random corruptions of a ciphertext (flipped bytes, truncation, junk
    /// appended): an error each time, and the store unchanged.
    #[test]
    fn corrupted_ciphertext_is_an_error_and_the_store_is_unchanged(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4),
        cut in proptest::option::of(any::<prop::sample::Index>()),
        junk in proptest::collection::vec(any::<u8>(), 0..8),
        established in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut alice, mut bob) = pair(dir.path());
        if established {
            let e = alice.send_text(&bob.id(), "open").expect("send");
            bob.receive(&e.bytes).expect("recv");
            let r = bob.send_text(&alice.id(), "ok").expect("send");
            alice.receive(&r.bytes).expect("recv");
        }
        let env = alice.send_text(&bob.id(), "the real message").expect("send");
        let mut e = pb::Envelope::decode(env.bytes.as_slice()).expect("decode");
        for (at, x) in &flips {
            let i = at.index(e.ciphertext.len());
            e.ciphertext[i] ^= x;
        }
        if let Some(c) = cut {
            let keep = c.index(e.ciphertext.len());
            e.ciphertext.truncate(keep);
        }
        e.ciphertext.extend_from_slice(&junk);
        let before = bob.dump_database().expect("dump");
        let r = bob.receive(&e.encode_to_vec());
        prop_assert!(r.is_err(), "corrupted envelope accepted: {:?}", r);
        prop_assert_eq!(before, bob.dump_database().expect("dump"));
        // The uncorrupted envelope is still readable.
        let genuine = bob.receive(&env.bytes);
        prop_assert!(matches!(genuine, Ok(Received::Stored { .. })), "genuine envelope: {:?}", genuine);
    }
}
