//! Repair over real stores, with sealed sender and the envelopes handed over
//! by hand: a member who never got a sender key reads the post after the
//! repair, a member whose session was lost reads the text after a new one,
//! a late sender key is used at once, and nothing is stored twice.

use libsignal_protocol::{
    DeviceId, KeyPair, SealedSenderV2SentMessage, SenderCertificate, ServerCertificate, Timestamp,
};

use crate::account::Account;
use crate::account_id::AccountId;
use crate::alert::tests::committee;
use crate::committee::ChannelKind;
use crate::event::Event;
use crate::receive::Received;
use crate::send::OutgoingEnvelope;

/// A stand-in for the relay's sealed-sender keys: a trust root and a server
/// certificate, issuing sender certificates.
struct Issuer {
    root: KeyPair,
    server: KeyPair,
    server_cert: ServerCertificate,
}

impl Issuer {
    fn new() -> Self {
        let mut rng = rand::rng();
        let root = KeyPair::generate(&mut rng);
        let server = KeyPair::generate(&mut rng);
        let server_cert = ServerCertificate::new(1, server.public_key, &root.private_key, &mut rng)
            .expect("server certificate");
        Issuer {
            root,
            server,
            server_cert,
        }
    }

    /// Gives `a` the trust root and a sender certificate for a day.
    fn certify(&self, a: &mut Account) {
        a.set_relay_trust_root(&self.root.public_key.serialize())
            .expect("trust root");
        let expires = a.clock.now_u64() + 24 * 3_600_000;
        let cert = SenderCertificate::new(
            crate::sealed::service_uuid(&a.id()).to_string(),
            None,
            *a.me.key_pair.public_key(),
            DeviceId::new(1).expect("device"),
            Timestamp::from_epoch_millis(expires),
            self.server_cert.clone(),
            &self.server.private_key,
            &mut rand::rng(),
        )
        .expect("sender certificate");
        a.set_sender_certificate(cert.serialized().expect("bytes"))
            .expect("certificate");
    }
}

/// Hands `to` what in `sent` is for it, as the relay would: a multi-recipient
/// upload split into its piece.
fn deliver(to: &mut Account, sent: &[OutgoingEnvelope]) -> Vec<Received> {
    let me = to.id();
    let mut out = Vec::new();
    for e in sent {
        if e.multi {
            let parsed = SealedSenderV2SentMessage::parse(&e.bytes).expect("parse");
            let mine = crate::sealed::service_uuid(&me).to_string();
            for (name, recipient) in &parsed.recipients {
                if name.service_id_string() != mine {
                    continue;
                }
                let piece = parsed
                    .received_message_parts_for_recipient(recipient)
                    .as_ref()
                    .concat();
                out.push(to.receive_sealed(&piece).expect("received"));
            }
        } else if e.recipient == me {
            out.push(
                match e.sealed {
                    true => to.receive_sealed(&e.bytes),
                    false => to.receive(&e.bytes),
                }
                .expect("received"),
            );
        }
    }
    out
}

/// What `from` has in its outbox for `to`, after the first `skip`.
fn waiting_for(from: &Account, to: &AccountId, skip: usize) -> Vec<OutgoingEnvelope> {
    from.outbox()
        .expect("outbox")
        .into_iter()
        .filter(|e| e.recipient == *to)
        .skip(skip)
        .collect()
}

/// An organizer and two members, certified, each knowing the others' access
/// keys through a text, and a channel all three hold.
fn sealed_committee(
    dir: &tempfile::TempDir,
) -> (
    Account,
    Account,
    Account,
    crate::committee::CommitteeId,
    [u8; 16],
) {
    let (mut organizer, mut m1, mut m2, id) = committee(dir);
    let issuer = Issuer::new();
    for a in [&mut organizer, &mut m1, &mut m2] {
        issuer.certify(a);
    }
    for m in [&mut m1, &mut m2] {
        let hello = m.send_text(&organizer.id(), "hello").expect("text");
        deliver(&mut organizer, &[hello]);
    }
    let (channel, made) = organizer
        .create_channel(&id, ChannelKind::Discussion)
        .expect("channel");
    deliver(&mut m1, &made.sent);
    deliver(&mut m2, &made.sent);
    (organizer, m1, m2, id, channel)
}

/// The organizer posts; its sender key reaches m1 but m2's copy is lost. m2
/// keeps the post as unreadable and sends a receipt; the organizer sends its
/// sender key and the post again, to m2 alone; m2 reads it, once. Before,
/// m2's failure was acknowledged and the post was lost to it for good.
#[test]
fn a_member_who_never_got_a_sender_key_reads_the_post_after_the_repair() {
    let dir = tempfile::tempdir().expect("dir");
    let (mut organizer, mut m1, mut m2, id, channel) = sealed_committee(&dir);
    let post = organizer
        .post(&id, &channel, "strike vote at six")
        .expect("post");
    let lost: Vec<_> = post
        .sender_keys
        .iter()
        .filter(|k| k.recipient == m2.id())
        .cloned()
        .collect();
    assert_eq!(lost.len(), 1);
    deliver(&mut m1, &post.sender_keys);
    assert!(matches!(
        deliver(&mut m1, std::slice::from_ref(&post.message))[..],
        [Received::Channel { .. }]
    ));
    let before = waiting_for(&m2, &organizer.id(), 0).len();
    let got = deliver(&mut m2, std::slice::from_ref(&post.message));
    assert_eq!(
        got,
        vec![Received::Unreadable {
            from: organizer.id()
        }]
    );
    assert!(m2.drain_events().contains(&Event::MessageUnreadable {
        from: organizer.id()
    }));
    assert_eq!(m2.unreadable_messages().expect("list").len(), 1);
    // Handed over again (the relay redelivering): still one, no second receipt.
    assert_eq!(
        deliver(&mut m2, std::slice::from_ref(&post.message)),
        vec![Received::Duplicate]
    );
    let receipts = waiting_for(&m2, &organizer.id(), before);
    assert_eq!(receipts.len(), 1, "one receipt");

    let resent_from = waiting_for(&organizer, &m2.id(), 0).len();
    deliver(&mut organizer, &receipts);
    let resent = waiting_for(&organizer, &m2.id(), resent_from);
    let multi: Vec<_> = organizer
        .outbox()
        .expect("outbox")
        .into_iter()
        .filter(|e| e.multi && e.envelope_id != post.message.envelope_id)
        .collect();
    assert_eq!(resent.len(), 1, "the sender key again");
    assert_eq!(multi.len(), 1, "the post again");
    deliver(&mut m2, &resent);
    let read = deliver(&mut m2, &multi);
    assert!(matches!(read[..], [Received::Channel { .. }]), "{read:?}");
    let history = m2.channel_history(&channel, None, 10).expect("history");
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].body, "strike vote at six");
    assert!(m2.unreadable_messages().expect("list").is_empty());
    // m1 got nothing twice.
    assert_eq!(m1.channel_history(&channel, None, 10).expect("h").len(), 1);

    // The lost sender key turns up after all: the kept copy is gone, and
    // nothing is stored twice.
    deliver(&mut m2, &lost);
    assert_eq!(m2.channel_history(&channel, None, 10).expect("h").len(), 1);
}

/// A post that arrives before its sender key (envelopes reordered) is kept,
/// and read as soon as the sender key comes.
#[test]
fn a_post_ahead_of_its_sender_key_is_read_when_the_key_comes() {
    let dir = tempfile::tempdir().expect("dir");
    let (mut organizer, _m1, mut m2, id, channel) = sealed_committee(&dir);
    let post = organizer
        .post(&id, &channel, "canteen at noon")
        .expect("post");
    assert_eq!(
        deliver(&mut m2, std::slice::from_ref(&post.message)),
        vec![Received::Unreadable {
            from: organizer.id()
        }]
    );
    deliver(&mut m2, &post.sender_keys);
    let history = m2.channel_history(&channel, None, 10).expect("history");
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].body, "canteen at noon");
    assert!(m2.unreadable_messages().expect("list").is_empty());
}

/// m1 lost its session with the organizer (a store restored from an old
/// copy, say). The organizer's next text cannot be read: m1 keeps it and
/// sends a receipt; the organizer archives the session the receipt names,
/// opens a new one from m1's bundle and sends the text again; m1 reads it,
/// once.
#[test]
fn a_text_on_a_lost_session_is_read_after_a_new_session() {
    let dir = tempfile::tempdir().expect("dir");
    let (mut organizer, mut m1, _m2, _id, _channel) = sealed_committee(&dir);
    // m1's side of the session is gone.
    m1.store
        .conn()
        .execute("DELETE FROM sessions", [])
        .expect("forget sessions");
    m1.cache = crate::store::signal::SignalCache::new(m1.me.key_pair, m1.me.registration_id);
    let text = organizer
        .send_text(&m1.id(), "meeting moved to the canteen")
        .expect("text");
    let before = waiting_for(&m1, &organizer.id(), 0).len();
    assert_eq!(
        deliver(&mut m1, &[text]),
        vec![Received::Unreadable {
            from: organizer.id()
        }]
    );
    let receipts = waiting_for(&m1, &organizer.id(), before);
    assert_eq!(receipts.len(), 1);
    deliver(&mut organizer, &receipts);
    assert_eq!(
        organizer.sessions_to_reopen().expect("reopen"),
        vec![m1.id()],
        "the session the receipt names is archived"
    );
    let resent_from = waiting_for(&organizer, &m1.id(), 0).len();
    let bundle = m1.prekey_bundle().expect("bundle");
    assert_eq!(organizer.reopen_session(&bundle).expect("reopens"), 1);
    let resent = waiting_for(&organizer, &m1.id(), resent_from);
    assert_eq!(resent.len(), 1);
    assert!(matches!(
        deliver(&mut m1, &resent)[..],
        [Received::Stored { .. }]
    ));
    let texts: Vec<String> = m1
        .history(&organizer.id(), None, 10)
        .expect("history")
        .into_iter()
        .filter(|m| !m.outgoing)
        .map(|m| m.body)
        .collect();
    assert_eq!(texts, vec!["meeting moved to the canteen".to_string()]);
    assert!(m1.unreadable_messages().expect("list").is_empty());
    assert!(organizer.sessions_to_reopen().expect("reopen").is_empty());
}

/// A receipt is no way to make a device send to someone what was never
/// theirs: a member removed from the committee is not sent a post again.
#[test]
fn a_receipt_from_a_removed_member_gets_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let (mut organizer, _m1, mut m2, id, channel) = sealed_committee(&dir);
    let post = organizer.post(&id, &channel, "before").expect("post");
    let before = waiting_for(&m2, &organizer.id(), 0).len();
    deliver(&mut m2, std::slice::from_ref(&post.message));
    let receipts = waiting_for(&m2, &organizer.id(), before);
    assert_eq!(receipts.len(), 1);
    organizer.remove_member(&id, &m2.id()).expect("removes");
    let before = organizer.outbox().expect("outbox").len();
    deliver(&mut organizer, &receipts);
    assert_eq!(organizer.outbox().expect("outbox").len(), before);
}

/// The relay delivers an alert ahead of ordinary traffic, so a member just
/// added can get an alert before the update that adds them. It is kept, and
/// read as soon as the committee arrives. Before, it failed for want of the
/// committee, was acknowledged, and was lost.
#[test]
fn an_alert_ahead_of_the_update_that_adds_us_is_read_when_it_comes() {
    let dir = tempfile::tempdir().expect("dir");
    let (mut organizer, _m1, _m2, id) = committee(&dir);
    let mut newcomer = Account::create(
        &dir.path().join("new.db"),
        &crate::store::DatabaseKey::generate(),
    )
    .expect("account");
    let bundle = newcomer.prekey_bundle().expect("bundle");
    organizer.add_contact("new", &bundle).expect("contact");
    let added = organizer
        .add_member(&id, &newcomer.id(), crate::committee::Role::Member)
        .expect("adds");
    let draft = crate::alert::AlertDraft {
        kind: crate::alert::AlertKind::EmergencyMeeting,
        scope: crate::alert::AlertScope::Local,
        title: "Meeting at the gate".into(),
        text: String::new(),
        place: "Gate 3".into(),
        starts_at_ms: 0,
        expires_at_ms: organizer.clock.now_u64() + 3_600_000,
        answers_wanted: true,
    };
    let (alert, sent) = organizer.send_alert(&id, draft).expect("alert");
    // High priority first.
    assert_eq!(deliver(&mut newcomer, &sent.sent), vec![Received::Waiting]);
    assert!(newcomer.alerts().expect("alerts").is_empty());
    deliver(&mut newcomer, &added.sent);
    let alerts = newcomer.alerts().expect("alerts");
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].alert_id, alert);
    assert_eq!(newcomer.read_waiting().expect("none left"), 0);
}
