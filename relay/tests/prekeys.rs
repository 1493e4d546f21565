//! The prekey directory: upload checks, bundles, one-time keys handed out once
//! even to concurrent fetchers, last-resort fallback, the fetch rate limit.

mod support;

use std::collections::HashSet;

use rankfile_proto::v1::{
    self as pb, client_frame::Body as In, error::Code, server_frame::Body as Out,
};
use support::*;

fn fetch(of: &Identity) -> In {
    In::FetchBundle(pb::FetchBundle {
        account_id: of.account.to_vec(),
        device_id: of.device,
        ..Default::default()
    })
}

async fn counts(c: &mut Client) -> (u32, u32) {
    match c.request(In::PrekeyCount(pb::PreKeyCountRequest {})).await {
        Out::PrekeyCount(p) => (p.one_time_prekeys, p.one_time_kyber_prekeys),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn upload_then_fetch_a_bundle_that_libsignal_accepts() {
    let relay = TestRelay::start().await;
    let bob = Identity::new(2);
    let alice = Identity::new(1);
    let mut b = relay.device(&bob).await;
    let upload = bob.prekeys(100, 3);
    assert!(matches!(
        b.request(In::UploadPrekeys(upload.clone())).await,
        Out::Ok(_)
    ));
    assert_eq!(counts(&mut b).await, (3, 3));

    let mut a = relay.device(&alice).await;
    let Out::Bundle(bundle) = a.request(fetch(&bob)).await else {
        panic!("expected a bundle")
    };
    assert_eq!(bundle.account_id, bob.account.to_vec());
    assert_eq!(
        bundle.identity_key,
        bob.pair.identity_key().serialize().to_vec()
    );
    assert_eq!(bundle.device_id, 2);
    assert_eq!(bundle.registration_id, 77);
    assert_eq!(bundle.one_time_prekey_id, Some(100));
    assert_eq!(bundle.kyber_prekey_id, 100);
    let signed = upload.signed_prekey.expect("signed");
    assert_eq!(
        (
            bundle.signed_prekey_id,
            &bundle.signed_prekey,
            &bundle.signed_prekey_signature
        ),
        (signed.id, &signed.public_key, &signed.signature)
    );
    let key = bob.pair.identity_key();
    assert!(key
        .public_key()
        .verify_signature(&bundle.kyber_prekey, &bundle.kyber_prekey_signature));
    assert_eq!(counts(&mut b).await, (2, 2));

    // Unknown device: NOT_FOUND; malformed target: MALFORMED.
    assert_eq!(
        error_code(&a.request(fetch(&Identity::new(1))).await),
        Code::NotFound
    );
    let bad = In::FetchBundle(pb::FetchBundle {
        account_id: vec![1; 3],
        device_id: 1,
        ..Default::default()
    });
    assert_eq!(error_code(&a.request(bad).await), Code::Malformed);
}

#[tokio::test]
async fn bad_uploads_are_refused_and_change_nothing() {
    let relay = TestRelay::start().await;
    let bob = Identity::new(1);
    let mut b = relay.device(&bob).await;
    let mut forged = bob.prekeys(1, 2);
    if let Some(k) = forged.signed_prekey.as_mut() {
        k.signature[5] ^= 1;
    }
    assert_eq!(
        error_code(&b.request(In::UploadPrekeys(forged)).await),
        Code::Malformed
    );
    let mut forged = bob.prekeys(1, 2);
    forged.one_time_kyber_prekeys[1].signature = forged.one_time_kyber_prekeys[0].signature.clone();
    assert_eq!(
        error_code(&b.request(In::UploadPrekeys(forged)).await),
        Code::Malformed
    );
    let mut garbage = bob.prekeys(1, 2);
    garbage.one_time_prekeys[0].public_key = vec![5; 7];
    assert_eq!(
        error_code(&b.request(In::UploadPrekeys(garbage)).await),
        Code::Malformed
    );
    // Keys signed by someone else's identity.
    let mallory = Identity::new(1);
    assert_eq!(
        error_code(&b.request(In::UploadPrekeys(mallory.prekeys(1, 1))).await),
        Code::Malformed
    );
    assert_eq!(counts(&mut b).await, (0, 0));
    assert_eq!(relay.count("signed_prekeys"), 0);
    let mut too_many = bob.prekeys(1, 1);
    let one = too_many.one_time_prekeys[0].clone();
    too_many.one_time_prekeys = (0..201)
        .map(|id| pb::OneTimePreKey { id, ..one.clone() })
        .collect();
    assert_eq!(
        error_code(&b.request(In::UploadPrekeys(too_many)).await),
        Code::TooLarge
    );
}

#[tokio::test]
async fn concurrent_fetchers_never_share_a_one_time_key_and_fall_back_to_last_resort() {
    let relay = TestRelay::start().await;
    let bob = Identity::new(1);
    let mut b = relay.device(&bob).await;
    assert!(matches!(
        b.request(In::UploadPrekeys(bob.prekeys(1, 6))).await,
        Out::Ok(_)
    ));

    // Eight fetchers at once, six one-time keys of each kind.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let addr = relay.addr();
        let fp = relay.fingerprint();
        let target = (bob.account, bob.device);
        tasks.push(tokio::spawn(async move {
            let mut c = Client::connect(addr, &fp).await;
            c.auth(&Identity::new(1)).await;
            let req = In::FetchBundle(pb::FetchBundle {
                account_id: target.0.to_vec(),
                device_id: target.1,
                ..Default::default()
            });
            match c.request(req).await {
                Out::Bundle(b) => b,
                other => panic!("{other:?}"),
            }
        }));
    }
    let mut bundles = Vec::new();
    for t in tasks {
        bundles.push(t.await.expect("task"));
    }
    let ec: Vec<u32> = bundles
        .iter()
        .filter_map(|b| b.one_time_prekey_id)
        .collect();
    assert_eq!(
        ec.len(),
        6,
        "six bundles got a one-time EC key, two got none"
    );
    assert_eq!(
        ec.iter().collect::<HashSet<_>>().len(),
        6,
        "no EC key handed out twice"
    );
    assert!(bundles
        .iter()
        .filter(|b| b.one_time_prekey_id.is_none())
        .all(|b| b.one_time_prekey.is_empty()));
    let kyber: Vec<u32> = bundles.iter().map(|b| b.kyber_prekey_id).collect();
    let one_time_kyber: Vec<u32> = kyber.iter().copied().filter(|id| *id != 9999).collect();
    assert_eq!(one_time_kyber.len(), 6);
    assert_eq!(
        one_time_kyber.iter().collect::<HashSet<_>>().len(),
        6,
        "no Kyber key handed out twice"
    );
    assert_eq!(
        kyber.iter().filter(|id| **id == 9999).count(),
        2,
        "then the last-resort key"
    );
    assert_eq!(counts(&mut b).await, (0, 0));
}

#[tokio::test]
async fn bundle_fetches_are_rate_limited_per_device() {
    let relay = TestRelay::start_with(|c| {
        c.fetch_burst = 3;
        c.fetch_per_minute = 1;
    })
    .await;
    let bob = Identity::new(1);
    let mut b = relay.device(&bob).await;
    b.request(In::UploadPrekeys(bob.prekeys(1, 10))).await;
    let mut a = relay.device(&Identity::new(1)).await;
    for _ in 0..3 {
        assert!(matches!(a.request(fetch(&bob)).await, Out::Bundle(_)));
    }
    match a.request(fetch(&bob)).await {
        Out::Error(e) => {
            assert_eq!(e.code, Code::RateLimited as i32);
            assert!(e.retry_after_ms > 0);
        }
        other => panic!("{other:?}"),
    }
    // Another device is not limited by the first one's fetches.
    let mut c = relay.device(&Identity::new(1)).await;
    assert!(matches!(c.request(fetch(&bob)).await, Out::Bundle(_)));
    assert_eq!(
        counts(&mut b).await,
        (6, 6),
        "the refused fetch consumed nothing"
    );
}

/// Anonymously, a bundle comes only with its owner's access key: without it,
/// or with a wrong one, or for a device that does not exist, the same
/// refusal, so an anonymous asker learns nothing of who has an account.
#[tokio::test]
async fn an_anonymous_fetch_needs_the_target_s_access_key() {
    let relay = TestRelay::start().await;
    let bob = Identity::new(2);
    let mut b = relay.device(&bob).await;
    assert!(matches!(
        b.request(In::UploadPrekeys(bob.prekeys(100, 3))).await,
        Out::Ok(_)
    ));
    let key = vec![7u8; 16];
    assert!(matches!(
        b.request(In::SetAccessKey(pb::SetAccessKey {
            access_key: key.clone()
        }))
        .await,
        Out::Ok(_)
    ));
    let mut anon = relay.client().await;
    assert!(matches!(
        anon.request(In::Anonymous(pb::Anonymous {})).await,
        Out::Ok(_)
    ));
    let with = |of: &Identity, key: &[u8]| {
        In::FetchBundle(pb::FetchBundle {
            account_id: of.account.to_vec(),
            device_id: of.device,
            access_key: key.to_vec(),
        })
    };
    for refused in [
        with(&bob, &[]),
        with(&bob, &[8u8; 16]),
        with(&bob, &key[..15]),
        with(&Identity::new(3), &key),
    ] {
        assert_eq!(error_code(&anon.request(refused).await), Code::Unauthorized);
    }
    let Out::Bundle(bundle) = anon.request(with(&bob, &key)).await else {
        panic!("expected a bundle")
    };
    assert_eq!(bundle.account_id, bob.account.to_vec());
    assert_eq!(bundle.one_time_prekey_id, Some(100));
}
