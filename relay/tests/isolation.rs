//! One device cannot reach another's mailbox (issue 19's security invariant),
//! over the raw protocol: acknowledging Bob's envelope IDs from Alice's
//! connection, mixed with her own, deletes only hers; her account's deletion
//! leaves Bob's mail; an anonymous connection is pushed nothing; and a login
//! to Bob's mailbox with another key fails. Bob then receives everything.
//! (Bob's second device and a stranger acknowledging his first device's mail:
//! `mailbox.rs`.)

mod support;

use rankfile_proto::v1::{
    self as pb, client_frame::Body as In, error::Code, server_frame::Body as Out,
};
use support::*;

/// The IDs of the deliveries up to the next QueueEmpty.
async fn backlog_ids(c: &mut Client) -> Vec<u64> {
    c.backlog_deliveries().await.iter().map(|d| d.id).collect()
}

#[tokio::test]
async fn another_device_cannot_acknowledge_or_delete_a_mailbox() {
    let relay = TestRelay::start().await;
    let (alice, bob, carol) = (Identity::new(1), Identity::new(1), Identity::new(1));
    relay.device(&alice).await.ping().await;
    relay.device(&bob).await.ping().await;
    let mut c = relay.device(&carol).await;
    for i in 0..3u8 {
        assert_sent(c.request(send_to(&bob, &[b'b', i])).await);
    }
    assert_sent(c.request(send_to(&alice, b"for alice")).await);

    // Bob's IDs, learnt while he is connected (a live delivery), then Bob goes.
    let mut b = relay.device(&bob).await;
    let bobs = backlog_ids(&mut b).await;
    assert_eq!(bobs.len(), 3);
    drop(b);

    // Alice acknowledges her own message and all of Bob's in one frame.
    let mut a = relay.device(&alice).await;
    let mut ids = backlog_ids(&mut a).await;
    assert_eq!(ids.len(), 1);
    ids.extend(&bobs);
    a.ack(ids).await;
    a.ping().await;
    assert_eq!(relay.count("messages"), 3, "only Alice's own went");

    // Alice deletes her account: Bob's mailbox stays whole.
    let out = a
        .request(In::DeleteAccount(pb::DeleteAccount::default()))
        .await;
    assert!(matches!(out, Out::Ok(_)), "{out:?}");
    assert_eq!(relay.count("messages"), 3);

    let mut b = relay.device(&bob).await;
    assert_eq!(backlog_ids(&mut b).await, bobs);
}

#[tokio::test]
async fn nobody_else_is_pushed_a_mailbox() {
    let relay = TestRelay::start().await;
    let bob = Identity::new(1);
    let mallory = Identity::new(1);
    relay.device(&bob).await.ping().await;
    let mut anonymous = relay.client().await;
    assert!(matches!(
        anonymous.request(In::Anonymous(pb::Anonymous {})).await,
        Out::Ok(_)
    ));
    let mut m = relay.device(&mallory).await;
    assert!(m.backlog_deliveries().await.is_empty());
    let mut c = relay.device(&Identity::new(1)).await;
    assert_sent(c.request(send_to(&bob, b"for bob only")).await);

    // A login to Bob's mailbox signed by Mallory's key.
    let mut forged = relay.client().await;
    let mut auth = mallory.auth(&forged.hello.challenge);
    auth.account_id = bob.account.to_vec();
    forged.send(In::Auth(auth)).await;
    assert_eq!(
        error_codes(&forged.until_closed().await),
        vec![Code::AuthFailed]
    );

    // Neither the anonymous connection nor Mallory's was pushed Bob's mail.
    anonymous.ping().await;
    m.ping().await;
    for frames in [&anonymous.backlog, &m.backlog] {
        assert!(
            frames
                .iter()
                .all(|f| !matches!(f.body, Some(Out::Deliver(_)))),
            "{frames:?}"
        );
    }
    let mut b = relay.device(&bob).await;
    let got = b.backlog_deliveries().await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].envelope, b"for bob only");
}
