//! Multi-recipient sealed sender: one upload built by libsignal, fanned out by the
//! relay, and decrypted on each recipient with libsignal — proving the bytes the
//! relay stores per recipient are exactly what `sealed_sender_decrypt` accepts.

mod support;

use std::time::SystemTime;

use libsignal_protocol::{
    create_sender_key_distribution_message, group_decrypt, group_encrypt, kem, message_encrypt,
    process_prekey_bundle, process_sender_key_distribution_message, sealed_sender_decrypt,
    sealed_sender_decrypt_to_usmc, sealed_sender_multi_recipient_encrypt, Aci,
    CiphertextMessageType, ContentHint, DeviceId, GenericSignedPreKey, IdentityKey,
    InMemSignalProtocolStore, KeyPair, KyberPreKeyId, KyberPreKeyRecord, KyberPreKeyStore,
    PreKeyBundle, PreKeyId, PreKeyRecord, PreKeyStore, ProtocolAddress, PublicKey,
    SenderCertificate, ServiceId, SessionStore, SignedPreKeyId, SignedPreKeyRecord,
    SignedPreKeyStore, Timestamp, UnidentifiedSenderMessageContent,
};
use rankfile_proto::v1::{
    self as pb, client_frame::Body as In, error::Code, server_frame::Body as Out,
};
use support::*;

/// One phone: its identity on the relay and its libsignal stores.
struct Phone {
    id: Identity,
    store: InMemSignalProtocolStore,
    access_key: [u8; 16],
}

fn address(id: &Identity) -> ProtocolAddress {
    ProtocolAddress::new(rankfile_relay::aci_string(&id.account), device(id.device))
}

fn device(d: u32) -> DeviceId {
    DeviceId::new(d as u8).expect("device id")
}

fn now() -> Timestamp {
    Timestamp::from_epoch_millis(rankfile_relay::now_ms())
}

impl Phone {
    fn new(id: Identity, access_key: [u8; 16]) -> Phone {
        let store = InMemSignalProtocolStore::new(id.pair, 1000 + id.device).expect("store");
        Phone {
            id,
            store,
            access_key,
        }
    }

    /// Makes prekeys, keeps the private halves, returns the upload.
    async fn make_prekeys(&mut self) -> pb::UploadPreKeys {
        let mut rng = rand::rng();
        let private = self.id.pair.private_key();
        let signed = KeyPair::generate(&mut rng);
        let signed_sig = private
            .calculate_signature(&signed.public_key.serialize(), &mut rng)
            .expect("sign");
        let signed_rec =
            SignedPreKeyRecord::new(SignedPreKeyId::from(1), now(), &signed, &signed_sig);
        self.store
            .save_signed_pre_key(SignedPreKeyId::from(1), &signed_rec)
            .await
            .expect("save");
        let kyber =
            KyberPreKeyRecord::generate(kem::KeyType::Kyber1024, KyberPreKeyId::from(5), private)
                .expect("kyber");
        self.store
            .save_kyber_pre_key(KyberPreKeyId::from(5), &kyber)
            .await
            .expect("save");
        let one = KeyPair::generate(&mut rng);
        self.store
            .save_pre_key(
                PreKeyId::from(7),
                &PreKeyRecord::new(PreKeyId::from(7), &one),
            )
            .await
            .expect("save");
        pb::UploadPreKeys {
            registration_id: 1000 + self.id.device,
            signed_prekey: Some(pb::SignedPreKey {
                id: 1,
                public_key: signed.public_key.serialize().to_vec(),
                signature: signed_sig.to_vec(),
            }),
            kyber_last_resort: Some(pb::SignedPreKey {
                id: 5,
                public_key: kyber.public_key().expect("pk").serialize().to_vec(),
                signature: kyber.signature().expect("sig"),
            }),
            one_time_prekeys: vec![pb::OneTimePreKey {
                id: 7,
                public_key: one.public_key.serialize().to_vec(),
            }],
            one_time_kyber_prekeys: vec![],
        }
    }

    /// Registers on the relay: login, prekeys, access key.
    async fn register(&mut self, relay: &TestRelay) {
        let upload = self.make_prekeys().await;
        let mut c = relay.device(&self.id).await;
        assert!(matches!(
            c.request(In::UploadPrekeys(upload)).await,
            Out::Ok(_)
        ));
        let key = In::SetAccessKey(pb::SetAccessKey {
            access_key: self.access_key.to_vec(),
        });
        assert!(matches!(c.request(key).await, Out::Ok(_)));
    }
}

fn to_libsignal(b: &pb::PreKeyBundle) -> PreKeyBundle {
    PreKeyBundle::new(
        b.registration_id,
        device(b.device_id),
        b.one_time_prekey_id.map(|id| {
            (
                PreKeyId::from(id),
                PublicKey::deserialize(&b.one_time_prekey).expect("ec"),
            )
        }),
        SignedPreKeyId::from(b.signed_prekey_id),
        PublicKey::deserialize(&b.signed_prekey).expect("signed"),
        b.signed_prekey_signature.clone(),
        KyberPreKeyId::from(b.kyber_prekey_id),
        kem::PublicKey::deserialize(&b.kyber_prekey).expect("kyber"),
        b.kyber_prekey_signature.clone(),
        IdentityKey::decode(&b.identity_key).expect("identity"),
    )
    .expect("bundle")
}

/// Alice opens a session with `to` from a bundle fetched through the relay.
async fn open_session(alice: &mut Phone, c: &mut Client, to: &Identity) {
    let req = In::FetchBundle(pb::FetchBundle {
        account_id: to.account.to_vec(),
        device_id: to.device,
        ..Default::default()
    });
    let Out::Bundle(b) = c.request(req).await else {
        panic!("bundle")
    };
    let s = &mut alice.store;
    process_prekey_bundle(
        &address(to),
        &mut s.session_store,
        &mut s.identity_store,
        &to_libsignal(&b),
        SystemTime::now(),
        &mut rand::rng(),
    )
    .await
    .expect("session");
}

fn xor(keys: &[[u8; 16]]) -> Vec<u8> {
    let mut out = [0u8; 16];
    for k in keys {
        for (o, b) in out.iter_mut().zip(k) {
            *o ^= b;
        }
    }
    out.to_vec()
}

#[tokio::test]
async fn fan_out_reaches_every_device_and_decrypts() {
    let relay = TestRelay::start().await;
    let mut alice = Phone::new(Identity::new(1), [1; 16]);
    let bob_id = Identity::new(1);
    let mut bob1 = Phone::new(bob_id.other_device(1), [2; 16]);
    let mut bob2 = Phone::new(bob_id.other_device(2), [2; 16]);
    let mut carol = Phone::new(Identity::new(1), [3; 16]);
    alice.register(&relay).await;
    for p in [&mut bob1, &mut bob2, &mut carol] {
        p.register(&relay).await;
    }
    let mut a = relay.device(&alice.id).await;
    let Out::SenderCertificate(cert) = a
        .request(In::SenderCertificate(pb::SenderCertificateRequest {}))
        .await
    else {
        panic!("certificate")
    };
    let cert = SenderCertificate::deserialize(&cert.certificate).expect("cert");
    let trust_root = PublicKey::deserialize(&a.hello.trust_root).expect("root");
    for to in [&bob1.id, &bob2.id, &carol.id] {
        open_session(&mut alice, &mut a, to).await;
    }

    // 1. One recipient, a PreKey message inside: sealed_sender_decrypt end to end.
    let carol_addr = address(&carol.id);
    let inner = {
        let s = &mut alice.store;
        message_encrypt(
            b"hello carol, plainly",
            &carol_addr,
            &mut s.session_store,
            &mut s.identity_store,
            SystemTime::now(),
            &mut rand::rng(),
        )
        .await
        .expect("encrypt")
    };
    let usmc = UnidentifiedSenderMessageContent::new(
        inner.message_type(),
        cert.clone(),
        inner.serialize().to_vec(),
        ContentHint::Default,
        None,
    )
    .expect("usmc");
    let session = alice
        .store
        .load_session(&carol_addr)
        .await
        .expect("load")
        .expect("session");
    let payload = sealed_sender_multi_recipient_encrypt(
        &[&carol_addr],
        &[&session],
        Vec::<ServiceId>::new(),
        &usmc,
        &alice.store.identity_store,
        &mut rand::rng(),
    )
    .await
    .expect("multi encrypt");
    let req = In::SendMultiSealed(pb::SendMultiSealed {
        payload,
        access_key: carol.access_key.to_vec(),
        priority: 0,
        only_recipients: Vec::new(),
    });
    assert!(assert_sent(a.request(req).await)
        .unknown_recipients
        .is_empty());
    let mut c = relay.device(&carol.id).await;
    let d = c.delivery().await;
    assert!(d.sealed);
    let s = &mut carol.store;
    let opened = sealed_sender_decrypt(
        &d.envelope,
        &trust_root,
        now(),
        None,
        rankfile_relay::aci_string(&carol.id.account),
        device(1),
        &mut s.identity_store,
        &mut s.session_store,
        &mut s.pre_key_store,
        &s.signed_pre_key_store,
        &mut s.kyber_pre_key_store,
    )
    .await
    .expect("carol decrypts her per-recipient bytes");
    assert_eq!(opened.message, b"hello carol, plainly");
    assert_eq!(
        opened.sender_uuid,
        rankfile_relay::aci_string(&alice.id.account)
    );
    c.ack(vec![d.id]).await;
    c.ping().await;

    // 2. A group message to four devices of three accounts, one unknown to the relay.
    let dave = Phone::new(Identity::new(1), [4; 16]);
    {
        // Dave has a session with Alice (made directly) but never registered.
        let mut dave = Phone::new(dave.id.other_device(1), [4; 16]);
        let upload = dave.make_prekeys().await;
        let bundle = pb::PreKeyBundle {
            identity_key: dave.id.pair.identity_key().serialize().to_vec(),
            account_id: dave.id.account.to_vec(),
            registration_id: upload.registration_id,
            device_id: 1,
            one_time_prekey_id: Some(7),
            one_time_prekey: upload.one_time_prekeys[0].public_key.clone(),
            signed_prekey_id: 1,
            signed_prekey: upload.signed_prekey.as_ref().expect("s").public_key.clone(),
            signed_prekey_signature: upload.signed_prekey.as_ref().expect("s").signature.clone(),
            kyber_prekey_id: 5,
            kyber_prekey: upload
                .kyber_last_resort
                .as_ref()
                .expect("k")
                .public_key
                .clone(),
            kyber_prekey_signature: upload
                .kyber_last_resort
                .as_ref()
                .expect("k")
                .signature
                .clone(),
        };
        let s = &mut alice.store;
        process_prekey_bundle(
            &address(&dave.id),
            &mut s.session_store,
            &mut s.identity_store,
            &to_libsignal(&bundle),
            SystemTime::now(),
            &mut rand::rng(),
        )
        .await
        .expect("session with dave");
    }
    let alice_addr = address(&alice.id);
    let distribution = uuid::Uuid::from_bytes([9; 16]);
    let skdm = create_sender_key_distribution_message(
        &alice_addr,
        distribution,
        &mut alice.store.sender_key_store,
        &mut rand::rng(),
    )
    .await
    .expect("skdm");
    for p in [&mut bob1, &mut bob2, &mut carol] {
        process_sender_key_distribution_message(&alice_addr, &skdm, &mut p.store.sender_key_store)
            .await
            .expect("process skdm");
    }
    let plaintext = b"strike vote at gate 3, 6am".to_vec();
    let skm = group_encrypt(
        &mut alice.store.sender_key_store,
        &alice_addr,
        distribution,
        &plaintext,
        &mut rand::rng(),
    )
    .await
    .expect("group encrypt");
    let usmc = UnidentifiedSenderMessageContent::new(
        CiphertextMessageType::SenderKey,
        cert,
        skm.serialized().to_vec(),
        ContentHint::Default,
        Some(vec![1, 2, 3]),
    )
    .expect("usmc");
    let addrs = [
        address(&bob1.id),
        address(&bob2.id),
        address(&carol.id),
        address(&dave.id),
    ];
    let mut sessions = Vec::new();
    for addr in &addrs {
        sessions.push(
            alice
                .store
                .load_session(addr)
                .await
                .expect("load")
                .expect("session"),
        );
    }
    let payload = sealed_sender_multi_recipient_encrypt(
        &addrs.iter().collect::<Vec<_>>(),
        &sessions.iter().collect::<Vec<_>>(),
        Vec::<ServiceId>::new(),
        &usmc,
        &alice.store.identity_store,
        &mut rand::rng(),
    )
    .await
    .expect("multi encrypt");

    // The access key must be the XOR of the known recipients' keys.
    let wrong = In::SendMultiSealed(pb::SendMultiSealed {
        payload: payload.clone(),
        access_key: xor(&[bob1.access_key]),
        priority: 1,
        only_recipients: Vec::new(),
    });
    assert_eq!(error_code(&a.request(wrong).await), Code::Unauthorized);
    assert_eq!(relay.count("messages"), 0);
    let garbage = In::SendMultiSealed(pb::SendMultiSealed {
        payload: payload[..40].to_vec(),
        access_key: vec![0; 16],
        priority: 1,
        only_recipients: Vec::new(),
    });
    assert_eq!(error_code(&a.request(garbage).await), Code::Malformed);

    let req = In::SendMultiSealed(pb::SendMultiSealed {
        payload,
        access_key: xor(&[bob1.access_key, carol.access_key]),
        priority: pb::Priority::High as i32,
        only_recipients: Vec::new(),
    });
    let result = assert_sent(a.request(req).await);
    let dave_service_id = ServiceId::from(Aci::from_uuid_bytes(
        dave.id.account[..16].try_into().expect("16"),
    ))
    .service_id_fixed_width_binary();
    assert_eq!(result.unknown_recipients, vec![dave_service_id.to_vec()]);
    assert_eq!(
        relay.count("messages"),
        3,
        "one upload, three stored copies"
    );

    for p in [&mut bob1, &mut bob2, &mut carol] {
        let mut c = relay.device(&p.id).await;
        let d = c.delivery().await;
        assert!(d.sealed);
        assert_eq!(d.priority, pb::Priority::High as i32);
        let usmc = sealed_sender_decrypt_to_usmc(&d.envelope, &p.store.identity_store)
            .await
            .expect("outer layer opens");
        assert!(usmc
            .sender()
            .expect("sender")
            .validate(&trust_root, now())
            .expect("validate"));
        assert_eq!(
            usmc.sender().expect("sender").sender_uuid().expect("uuid"),
            rankfile_relay::aci_string(&alice.id.account)
        );
        let opened = group_decrypt(
            usmc.contents().expect("contents"),
            &mut p.store.sender_key_store,
            &alice_addr,
        )
        .await
        .expect("group decrypt");
        assert_eq!(opened, plaintext);
    }

    // The database holds no plaintext and, for these sealed messages, nothing naming Alice.
    let bytes = relay.db_bytes();
    assert!(!contains(&bytes, &plaintext));
    assert!(!contains(&bytes, b"hello carol, plainly"));
    let db = relay.db();
    let mut stmt = db
        .prepare("SELECT envelope, account_id FROM messages")
        .expect("prepare");
    let rows: Vec<(Vec<u8>, Vec<u8>)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .map(|r| r.expect("row"))
        .collect();
    assert!(!rows.is_empty());
    for (envelope, account) in rows {
        assert_ne!(account, alice.id.account.to_vec());
        assert!(!contains(&envelope, &alice.id.account[..16]));
        assert!(!contains(
            &envelope,
            rankfile_relay::aci_string(&alice.id.account).as_bytes()
        ));
        assert!(!contains(
            &envelope,
            &alice.id.pair.identity_key().serialize()
        ));
    }
}
