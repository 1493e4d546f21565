//! Identity: account IDs bound to keys, safety numbers, verification, and an
//! identity change that is never accepted silently.

use rankfile_core::{Error, Event, Received};
use rankfile_tests::{introduce, Phone};

#[test]
fn safety_numbers_agree_and_scanning_verifies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut alice = Phone::new(dir.path(), "alice");
    let mut bob = Phone::new(dir.path(), "bob");
    introduce(&mut alice, &mut bob);
    introduce(&mut bob, &mut alice);
    let (bob_id, alice_id) = (bob.id(), alice.id());
    let at_alice = alice.safety_number(&bob_id).expect("safety number");
    let at_bob = bob.safety_number(&alice_id).expect("safety number");
    assert_eq!(
        at_alice.digits, at_bob.digits,
        "both phones show the same digits"
    );
    assert_eq!(at_alice.digits.replace(' ', "").len(), 60);

    assert!(!alice.contact(&bob_id).expect("contact").verified);
    // Alice scans the QR code on Bob's phone.
    alice
        .verify_contact(&bob_id, &at_bob.scannable)
        .expect("verify");
    assert!(alice.contact(&bob_id).expect("contact").verified);

    // A QR code from some other pairing does not verify.
    let mut carol = Phone::new(dir.path(), "carol");
    introduce(&mut carol, &mut bob);
    let wrong = carol.safety_number(&bob_id).expect("sn").scannable;
    assert!(matches!(
        bob.verify_contact(&alice_id, &wrong),
        Err(Error::SafetyNumberMismatch)
    ));
    assert!(matches!(
        bob.verify_contact(&alice_id, b"garbage"),
        Err(Error::SafetyNumberMismatch)
    ));
    assert!(!bob.contact(&alice_id).expect("contact").verified);
}

#[test]
fn a_bundle_whose_key_does_not_hash_to_its_id_is_refused() {
    use prost::Message as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut alice = Phone::new(dir.path(), "alice");
    let mut bob = Phone::new(dir.path(), "bob");
    let mut mallory = Phone::new(dir.path(), "mallory");
    // The relay hands out Mallory's keys under Bob's account ID.
    let mut forged =
        rankfile_proto::v1::PreKeyBundle::decode(mallory.prekey_bundle().expect("b").as_slice())
            .expect("decode");
    forged.account_id = bob.id().as_bytes().to_vec();
    let before = alice.dump_database().expect("dump");
    let bob_id = bob.id();
    assert!(matches!(
        alice.add_contact("bob", &forged.encode_to_vec()),
        Err(Error::IdentityMismatch(id)) if id == bob_id
    ));
    assert_eq!(before, alice.dump_database().expect("dump"));
    let _ = bob.prekey_bundle();
}

#[test]
fn a_successor_account_is_held_until_the_user_accepts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut alice = Phone::new(dir.path(), "alice");
    let mut bob = Phone::new(dir.path(), "bob");
    introduce(&mut alice, &mut bob);
    introduce(&mut bob, &mut alice);
    let old_bob = bob.id();
    let old_number = alice.safety_number(&old_bob).expect("sn");
    let bob_qr = bob.safety_number(&alice.id()).expect("sn").scannable;
    alice.verify_contact(&old_bob, &bob_qr).expect("verified");
    let e = bob.send_text(&alice.id(), "before").expect("send");
    alice.receive(&e.bytes).expect("recv");
    alice.drain_events();

    // Bob's phone is seized; he starts again with a new identity.
    let mut new_bob = Phone::new(dir.path(), "bob2");
    introduce(&mut new_bob, &mut alice);
    let new_id = new_bob.id();
    let claim = new_bob
        .send_text_as_successor(&alice.id(), "it's me, new phone", &old_bob)
        .expect("send");
    let outcome = alice.receive(&claim.bytes).expect("recv");
    assert!(matches!(outcome, Received::Held { from, .. } if from == new_id));
    let events = alice.drain_events();
    assert!(events.contains(&Event::IdentityChanged {
        contact: old_bob,
        new_account: new_id
    }));

    // Nothing flows until Alice decides, and the verification is gone.
    let c = alice.contact(&old_bob).expect("contact");
    assert_eq!(c.pending_successor, Some(new_id));
    assert!(!c.verified);
    assert!(matches!(
        alice.send_text(&old_bob, "x"),
        Err(Error::IdentityChangePending(_))
    ));
    let more = new_bob
        .send_text(&alice.id(), "please accept")
        .expect("send");
    assert!(matches!(
        alice.receive(&more.bytes).expect("recv"),
        Received::Held { .. }
    ));
    assert!(alice
        .history(&new_id, None, 10)
        .expect("h")
        .iter()
        .all(|m| m.held));

    // Alice accepts: the contact is now the new account, unverified, and the
    // safety number is a new one.
    assert_eq!(
        alice.accept_identity_change(&old_bob).expect("accept"),
        new_id
    );
    let c = alice.contact(&new_id).expect("contact");
    assert_eq!(c.name, "bob");
    assert!(!c.verified);
    assert!(c.pending_successor.is_none());
    let history = alice.history(&new_id, None, 10).expect("h");
    assert_eq!(
        history.len(),
        3,
        "old conversation and held messages together"
    );
    assert!(history.iter().all(|m| !m.held));
    let new_number = alice.safety_number(&new_id).expect("sn");
    assert_ne!(new_number.digits, old_number.digits);
    assert_eq!(
        new_number.digits,
        new_bob.safety_number(&alice.id()).expect("sn").digits
    );
    alice
        .send_text(&new_id, "welcome back")
        .expect("send works again");
}

#[test]
fn a_rejected_successor_is_dropped_with_its_messages() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut alice = Phone::new(dir.path(), "alice");
    let mut bob = Phone::new(dir.path(), "bob");
    introduce(&mut alice, &mut bob);
    let old_bob = bob.id();
    let mut impostor = Phone::new(dir.path(), "impostor");
    introduce(&mut impostor, &mut alice);
    let claim = impostor
        .send_text_as_successor(&alice.id(), "i'm bob now", &old_bob)
        .expect("send");
    alice.receive(&claim.bytes).expect("recv");
    alice.reject_identity_change(&old_bob).expect("reject");
    assert!(alice
        .history(&impostor.id(), None, 10)
        .expect("h")
        .is_empty());
    assert!(alice
        .contact(&old_bob)
        .expect("c")
        .pending_successor
        .is_none());
    alice
        .send_text(&old_bob, "still you?")
        .expect("old contact works");
}
