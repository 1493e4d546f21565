//! Attacks on alerts by a delegate of the network, played over real stores
//! and real sessions: an alert forged in the name of another committee's
//! organizer, and a genuine alert forwarded with its place changed. Each copy
//! is refused on every phone with a typed error, leaves nothing behind, and
//! never takes the place of the genuine alert.

use libsignal_protocol::IdentityKeyPair;
use prost::Message as _;
use rankfile_proto::v1 as pb;

use super::signed::signing_message;
use super::test_net::{network_draft, Net, Outcome};
use super::*;
use crate::committee::CommitteeId;
use crate::error::Error;
use crate::event::Event;
use crate::message::Body;
use crate::receive::Received;

/// Signed alert bytes naming `raiser_key` as the raiser, signed by `signer`.
fn forge(
    raiser: &IdentityKeyPair,
    signer: &IdentityKeyPair,
    origin: CommitteeId,
    draft: &AlertDraft,
) -> SignedAlert {
    let honest = SignedAlert::raise(raiser, origin, draft.clone(), 1).expect("bytes");
    let signature = signer
        .private_key()
        .calculate_signature(&signing_message(&honest.bytes), &mut rand::rng())
        .expect("sign")
        .to_vec();
    SignedAlert::parse(honest.bytes, signature).expect("parses")
}

/// `genuine` with another place, under the raiser's signature still.
fn tamper(genuine: &SignedAlert, place: &str) -> SignedAlert {
    let mut raised = pb::RaisedAlert::decode(genuine.bytes.as_slice()).expect("decode");
    raised.place = place.into();
    SignedAlert::parse(raised.encode_to_vec(), genuine.signature.clone()).expect("parses")
}

/// `from` delivers `alert` into `via` to `to`, as its device would forward it.
fn deliver_as(
    net: &mut Net,
    from: &str,
    to: &[&str],
    via: CommitteeId,
    alert: SignedAlert,
) -> Vec<Outcome> {
    let to: Vec<_> = to.iter().map(|n| net.id(n)).collect();
    let message = AlertMessage {
        alert,
        via,
        held: false,
        renotify: false,
    };
    let (sent, unreachable) = net
        .phone(from)
        .send_to_many(&to, &Body::Alert(message), true, |_, _, _| Ok(()))
        .expect("sent");
    assert!(unreachable.is_empty());
    net.take(from);
    net.deliver(&sent)
}

fn refused(outcomes: &[Outcome]) -> bool {
    outcomes
        .iter()
        .all(|(_, r)| matches!(r, Err(Error::InvalidAlert(_))))
}

#[test]
fn an_alert_forged_in_another_committees_organizers_name_is_refused_everywhere() {
    let mut net = Net::new();
    let (a, b, k) = (net.a, net.b, net.k);
    let draft = network_draft(&net);
    // ob, B's delegate in the council, writes an alert as if raised by oa,
    // A's organizer, in A: it can sign only with its own key.
    let (oa_key, ob_key) = (net.phone("oa").me.key_pair, net.phone("ob").me.key_pair);
    let forged = forge(&oa_key, &ob_key, a, &draft);
    assert_eq!(forged.raised.raiser, net.id("oa"));
    // Down into its own committee, whose members cannot see A's log, and up
    // into the council to A's own organizer.
    let down = deliver_as(&mut net, "ob", &["d2", "mb"], b, forged.clone());
    let up = deliver_as(&mut net, "ob", &["oa"], k, forged.clone());
    assert!(refused(&down) && refused(&up), "{down:?} {up:?}");
    for name in ["oa", "d2", "mb"] {
        let phone = net.phone(name);
        assert!(
            phone.alerts().expect("alerts").is_empty(),
            "{name} keeps nothing"
        );
        assert!(!phone
            .drain_events()
            .iter()
            .any(|e| matches!(e, Event::AlertReceived { .. })));
    }

    // Signed under its own name, naming A as where it was raised: refused
    // where A's log is held (ob is no organizer or delegate of A) ...
    let own = SignedAlert::raise(&ob_key, a, draft.clone(), 1).expect("signed");
    let up = deliver_as(&mut net, "ob", &["oa"], k, own.clone());
    assert!(refused(&up), "{up:?}");
    assert!(net.phone("oa").alerts().expect("alerts").is_empty());
    // ... and elsewhere shown for what it is, ob's own alert, never oa's.
    let down = deliver_as(&mut net, "ob", &["mb"], b, own.clone());
    assert!(
        matches!(down[0].1, Ok(Received::Control { .. })),
        "{down:?}"
    );
    let shown = net.phone("mb").alert(&own.id).expect("stored");
    assert_eq!(shown.raiser, net.id("ob"));
    assert_ne!(shown.raiser, net.id("oa"));

    // oa's real alert still reaches every phone, once.
    let (real, _) = net.phone("oa").send_alert(&a, draft).expect("raise");
    net.settle();
    for name in ["ma", "ob", "d2", "mb"] {
        let alert = net.phone(name).alert(&real).expect("the genuine alert");
        assert_eq!(alert.raiser, net.id("oa"));
        assert_eq!(alert.place, "Union hall");
    }
}

#[test]
fn a_tampered_forward_is_refused_and_never_displaces_the_genuine_alert() {
    let mut net = Net::new();
    let (a, b) = (net.a, net.b);
    let id = net.raise(a);
    // oa's deliveries reach A and the council; B's delegates forward theirs.
    let first = net.take("oa");
    net.deliver(&first);
    let forwards = [net.take("ob"), net.take("d2")].concat();
    let genuine = net.phone("ob").alert(&id).expect("ob has it");
    assert_eq!(genuine.place, "Union hall");
    let signed = store::signed(net.phone("ob").store.conn(), &id).expect("signed bytes");

    // ob sends mb a copy with another place before the genuine delivery
    // arrives: refused, nothing stored.
    let trap = tamper(&signed, "Loading bay 9");
    assert_ne!(trap.id, id, "other bytes, another ID");
    let early = deliver_as(&mut net, "ob", &["mb"], b, trap.clone());
    assert!(refused(&early), "{early:?}");
    assert!(net.phone("mb").alerts().expect("alerts").is_empty());

    // The genuine delivery is then taken in and shown, once.
    let to_mb: Vec<_> = forwards
        .iter()
        .filter(|e| e.recipient == net.id("mb"))
        .cloned()
        .collect();
    assert!(!to_mb.is_empty());
    let outcomes = net.deliver(&to_mb);
    assert!(outcomes.iter().all(|(_, r)| r.is_ok()), "{outcomes:?}");
    let shown = net.phone("mb").alerts().expect("alerts");
    assert_eq!(shown.len(), 1);
    assert_eq!(
        (shown[0].alert_id, shown[0].place.as_str()),
        (id, "Union hall")
    );

    // The same copy again, after the genuine one: refused, nothing changes.
    let late = deliver_as(&mut net, "ob", &["mb", "d2"], b, trap);
    assert!(refused(&late), "{late:?}");
    let shown = net.phone("mb").alerts().expect("alerts");
    assert_eq!(shown.len(), 1);
    assert_eq!(shown[0].place, "Union hall");
    let arrivals = net
        .phone("mb")
        .drain_events()
        .into_iter()
        .filter(|e| matches!(e, Event::AlertReceived { .. }))
        .count();
    assert_eq!(arrivals, 1);

    // The genuine bytes again (from any hop) are the duplicate they always
    // were: checked once, so even a garbled signature beside them changes
    // nothing.
    let mut again = signed.clone();
    again.signature[0] ^= 0x40;
    let repeat = deliver_as(&mut net, "ob", &["mb"], b, again);
    assert!(
        matches!(repeat[0].1, Ok(Received::Control { .. })),
        "{repeat:?}"
    );
    assert!(!net
        .phone("mb")
        .drain_events()
        .iter()
        .any(|e| matches!(e, Event::AlertReceived { .. })));
    net.settle();
    for name in ["ma", "ob", "d2", "mb"] {
        assert_eq!(net.phone(name).alerts().expect("alerts").len(), 1, "{name}");
    }
}

#[test]
fn a_delegate_skipping_a_hold_is_refused_where_the_link_is_seen() {
    let mut net = Net::with_policy(crate::committee::LinkPolicy::Hold);
    let (a, b) = (net.a, net.b);
    let id = net.raise(a);
    net.settle();
    // The hold keeps it from B's member until ob, B's organizer, approves.
    assert!(net
        .phone("ob")
        .held_alerts()
        .expect("held")
        .contains(&(id, b)));
    assert!(net.phone("mb").alerts().expect("alerts").is_empty());
    // d2 sends it into B as if the link forwarded: ob, who sees the link's
    // policy in the council's log, refuses it.
    let signed = store::signed(net.phone("d2").store.conn(), &id).expect("signed");
    let skipped = deliver_as(&mut net, "d2", &["ob"], b, signed);
    assert!(
        matches!(skipped[0].1, Err(Error::AlertSenderRefused(s)) if s == net.id("d2")),
        "{skipped:?}"
    );
    // Approved, it goes in.
    net.phone("ob").approve_alert(&id, &b).expect("approve");
    net.settle();
    assert!(net.phone("mb").alert(&id).is_ok());
}
