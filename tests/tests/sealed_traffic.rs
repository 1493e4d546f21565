//! Sealed traffic reaches the relay on connections that carry no identity:
//! through a real relay on loopback, after contacts have met, every sealed
//! 1:1 message, committee change, channel post and alert arrives on an
//! anonymous connection, and bundles of members whose access key a phone
//! holds are fetched there too. The relay's own counters say on which kind
//! of connection each came: before, every sealed send came on the sender's
//! logged-in connection, so the relay knew who sent it.

use rankfile_core::alert::{AlertDraft, AlertKind, AlertScope};
use rankfile_core::Draft;
use rankfile_tests::online::{committee_with_channel, introduce_online, OnlinePhone};
use rankfile_tests::{eventually, in_an_hour, relay, wait_connected};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_sends_and_keyed_fetches_come_on_anonymous_connections() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay::start(&dir.path().join("relay")).await;
    let organizer = OnlinePhone::start(dir.path(), "organizer", &relay).await;
    let ana = OnlinePhone::start(dir.path(), "ana", &relay).await;
    let kwame = OnlinePhone::start(dir.path(), "kwame", &relay).await;
    // First contact: the organizer knows no access key yet, so its hellos
    // go identified (the relay is told the sender); the answers carry keys.
    introduce_online(&organizer, &ana).await;
    introduce_online(&organizer, &kwame).await;
    let before = relay.traffic();

    for text in ["the list is ready", "meet at six"] {
        organizer
            .client
            .send_text(ana.id, text.into())
            .await
            .expect("send");
        eventually(20, "ana has the message", || {
            ana.has_text_from(organizer.id, text)
        })
        .await;
    }
    ana.client
        .send_text(organizer.id, "I will be there".into())
        .await
        .expect("reply");
    eventually(20, "the organizer has ana's answer", || {
        organizer.has_text_from(ana.id, "I will be there")
    })
    .await;

    // A committee: ana and kwame meet through it (a bundle fetched with the
    // access key the organizer sent along), a post, an alert.
    let (committee, channel) = committee_with_channel(
        &organizer.client,
        &[(&ana.client, ana.id), (&kwame.client, kwame.id)],
    )
    .await;
    ana.client
        .post_message(committee, channel, Draft::text("who can cover Friday?"))
        .await
        .expect("post");
    for member in [&organizer, &kwame] {
        eventually(30, "the post arrives", || async {
            member
                .channel_texts(channel)
                .await
                .iter()
                .any(|t| t == "who can cover Friday?")
        })
        .await;
    }
    let alert = organizer
        .client
        .send_alert(
            committee,
            AlertDraft {
                kind: AlertKind::EmergencyMeeting,
                scope: AlertScope::Local,
                title: "Meeting now".into(),
                text: "Management is at the gate.".into(),
                place: "North gate".into(),
                starts_at_ms: 0,
                expires_at_ms: in_an_hour(),
                answers_wanted: false,
            },
        )
        .await
        .expect("alert");
    for member in [&ana, &kwame] {
        eventually(30, "the alert arrives", || async {
            member
                .client
                .alerts()
                .await
                .is_ok_and(|all| all.iter().any(|a| a.alert_id == alert))
        })
        .await;
    }

    let after = relay.traffic();
    let sealed = after.sealed_on_anonymous - before.sealed_on_anonymous;
    assert!(
        sealed >= 6,
        "messages, changes, the post and the alert went sealed: {sealed}"
    );
    assert_eq!(
        after.sealed_on_device, before.sealed_on_device,
        "no sealed send came on a logged-in connection"
    );
    assert_eq!(
        before.sealed_on_device, 0,
        "not even the answers to first contact"
    );
    assert!(
        after.fetches_on_anonymous > before.fetches_on_anonymous,
        "members met through the committee with the access key they were sent"
    );
    assert_eq!(
        after.fetches_on_device, before.fetches_on_device,
        "no bundle of someone whose key is known is asked for as a device"
    );
}

/// A relay that restarts under a phone takes the phone's anonymous
/// connection with it, and the next sealed send opens a new one at once. It
/// used to go out on the dead one (nothing but a write could tell it was
/// dead, and a write to a socket the peer has closed can succeed) and wait
/// the request timeout, 30 s, for an answer that could not come: the chaos
/// runs saw sealed sends stall that long after every relay restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sealed_send_after_the_relay_restarts_does_not_wait_on_the_dead_connection() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("relay");
    let relay = relay::start(&data).await;
    let addr = relay.local_addr();
    let ana = OnlinePhone::start(dir.path(), "ana", &relay).await;
    let ben = OnlinePhone::start(dir.path(), "ben", &relay).await;
    introduce_online(&ana, &ben).await;
    // Ana's anonymous connection is open and warm.
    ana.client
        .send_text(ben.id, "before".into())
        .await
        .expect("send");
    eventually(20, "ben has the first", || {
        ben.has_text_from(ana.id, "before")
    })
    .await;

    relay.shutdown().await;
    let relay = relay::start_at(&data, addr).await;
    wait_connected(&ana.client).await;
    // Bounded well under the request timeout: sent means the relay holds it.
    let sent = tokio::time::timeout(
        std::time::Duration::from_secs(12),
        ana.client.send_text(ben.id, "after".into()),
    )
    .await;
    assert!(
        matches!(sent, Ok(Ok(_))),
        "the sealed send after the restart went on the dead connection: {sent:?}"
    );
    eventually(20, "ben has the second", || {
        ben.has_text_from(ana.id, "after")
    })
    .await;
    relay.shutdown().await;
}
