//! Multi-recipient sends under pressure: one recipient's full mailbox does not
//! stop the others getting the message (and a resend reaches only those it
//! missed), and a huge anonymous upload is refused before the relay copies
//! anything for its recipients.

mod support;

use std::collections::HashMap;
use std::time::SystemTime;

use async_trait::async_trait;
use libsignal_protocol::{
    kem, process_prekey_bundle, sealed_sender_multi_recipient_encrypt, Aci, CiphertextMessageType,
    ContentHint, DeviceId, Direction, GenericSignedPreKey, IdentityChange, IdentityKey,
    IdentityKeyPair, IdentityKeyStore, InMemSignalProtocolStore, KeyPair, KyberPreKeyId,
    KyberPreKeyRecord, PreKeyBundle, ProtocolAddress, SenderCertificate, ServiceId, SessionRecord,
    SessionStore, SignalProtocolError, SignedPreKeyId, UnidentifiedSenderMessageContent,
};
use rankfile_proto::v1::{
    self as pb, client_frame::Body as In, error::Code, server_frame::Body as Out,
};
use support::*;

/// Answers every recipient's identity with one key: the payloads here are
/// for the relay to split, not for anyone to read.
struct AnyIdentity {
    own: IdentityKeyPair,
    theirs: IdentityKey,
}

#[async_trait(?Send)]
impl IdentityKeyStore for AnyIdentity {
    async fn get_identity_key_pair(&self) -> Result<IdentityKeyPair, SignalProtocolError> {
        Ok(self.own)
    }
    async fn get_local_registration_id(&self) -> Result<u32, SignalProtocolError> {
        Ok(1)
    }
    async fn save_identity(
        &mut self,
        _: &ProtocolAddress,
        _: &IdentityKey,
    ) -> Result<IdentityChange, SignalProtocolError> {
        Ok(IdentityChange::NewOrUnchanged)
    }
    async fn is_trusted_identity(
        &self,
        _: &ProtocolAddress,
        _: &IdentityKey,
        _: Direction,
    ) -> Result<bool, SignalProtocolError> {
        Ok(true)
    }
    async fn get_identity(
        &self,
        _: &ProtocolAddress,
    ) -> Result<Option<IdentityKey>, SignalProtocolError> {
        Ok(Some(self.theirs))
    }
}

fn aci(id: &Identity) -> [u8; 16] {
    id.account[..16].try_into().expect("16")
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

/// A session with a phone that exists only here, reused for every recipient.
async fn a_session(own: IdentityKeyPair) -> (SessionRecord, IdentityKey) {
    let mut rng = rand::rng();
    let theirs = IdentityKeyPair::generate(&mut rng);
    let signed = KeyPair::generate(&mut rng);
    let signed_sig = theirs
        .private_key()
        .calculate_signature(&signed.public_key.serialize(), &mut rng)
        .expect("sign");
    let kyber = KyberPreKeyRecord::generate(
        kem::KeyType::Kyber1024,
        KyberPreKeyId::from(5),
        theirs.private_key(),
    )
    .expect("kyber");
    let bundle = PreKeyBundle::new(
        77,
        DeviceId::new(1).expect("device"),
        None,
        SignedPreKeyId::from(1),
        signed.public_key,
        signed_sig.to_vec(),
        KyberPreKeyId::from(5),
        kyber.public_key().expect("pk"),
        kyber.signature().expect("sig"),
        *theirs.identity_key(),
    )
    .expect("bundle");
    let mut store = InMemSignalProtocolStore::new(own, 1).expect("store");
    let them = ProtocolAddress::new("them".into(), DeviceId::new(1).expect("device"));
    process_prekey_bundle(
        &them,
        &mut store.session_store,
        &mut store.identity_store,
        &bundle,
        SystemTime::now(),
        &mut rng,
    )
    .await
    .expect("session");
    let record = store
        .load_session(&them)
        .await
        .expect("load")
        .expect("session");
    (record, *theirs.identity_key())
}

/// A multi-recipient payload for `to` (ACI, devices), carrying `body` bytes.
async fn payload(
    sender: &Identity,
    cert: SenderCertificate,
    to: &[([u8; 16], &[u32])],
    body: usize,
) -> Vec<u8> {
    let (session, theirs) = a_session(sender.pair).await;
    let usmc = UnidentifiedSenderMessageContent::new(
        CiphertextMessageType::SenderKey,
        cert,
        vec![0x5a; body],
        ContentHint::Resendable,
        Some(vec![1, 2, 3]),
    )
    .expect("usmc");
    let addresses: Vec<ProtocolAddress> = to
        .iter()
        .flat_map(|(aci, devices)| {
            devices.iter().map(move |d| {
                ProtocolAddress::new(
                    Aci::from_uuid_bytes(*aci).service_id_string(),
                    DeviceId::new(*d as u8).expect("device"),
                )
            })
        })
        .collect();
    let sessions: Vec<&SessionRecord> = addresses.iter().map(|_| &session).collect();
    let identities = AnyIdentity {
        own: sender.pair,
        theirs,
    };
    sealed_sender_multi_recipient_encrypt(
        &addresses.iter().collect::<Vec<_>>(),
        &sessions,
        Vec::<ServiceId>::new(),
        &usmc,
        &identities,
        &mut rand::rng(),
    )
    .await
    .expect("multi encrypt")
}

async fn certificate(c: &mut Client) -> SenderCertificate {
    let Out::SenderCertificate(cert) = c
        .request(In::SenderCertificate(pb::SenderCertificateRequest {}))
        .await
    else {
        panic!("certificate")
    };
    SenderCertificate::deserialize(&cert.certificate).expect("cert")
}

/// Logs `id` in and gives it `key` as its access key.
async fn register(relay: &TestRelay, id: &Identity, key: [u8; 16]) -> Client {
    let mut c = relay.device(id).await;
    let set = In::SetAccessKey(pb::SetAccessKey {
        access_key: key.to_vec(),
    });
    assert!(matches!(c.request(set).await, Out::Ok(_)));
    c
}

fn queued(relay: &TestRelay, id: &Identity) -> HashMap<u32, i64> {
    let db = relay.db();
    let mut stmt = db
        .prepare(
            "SELECT device_id, COUNT(*) FROM messages WHERE account_id = ?1 GROUP BY device_id",
        )
        .expect("prepare");
    stmt.query_map([&id.account[..]], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

#[tokio::test]
async fn a_full_mailbox_gets_what_it_missed_later_and_no_one_twice() {
    let relay = TestRelay::start_with(|c| c.mailbox_quota = 2).await;
    let alice = Identity::new(1);
    let carol = Identity::new(1);
    let dave1 = Identity::new(1);
    let dave2 = dave1.other_device(2);
    let erin = Identity::new(1);
    let mut a = register(&relay, &alice, [1; 16]).await;
    let (kc, kd, ke) = ([3; 16], [4; 16], [5; 16]);
    register(&relay, &carol, kc).await.close().await;
    register(&relay, &dave1, kd).await.close().await;
    register(&relay, &dave2, kd).await.close().await;
    register(&relay, &erin, ke).await.close().await;
    // Dave's second phone is off, and its mailbox fills.
    for n in 0..2u8 {
        assert_sent(a.request(send_to(&dave2, &[n; 10])).await);
    }
    assert_eq!(
        error_code(&a.request(send_to(&dave2, &[9; 10])).await),
        Code::QuotaExceeded
    );

    let cert = certificate(&mut a).await;
    let to: [([u8; 16], &[u32]); 3] = [
        (aci(&carol), &[1]),
        (aci(&dave1), &[1, 2]),
        (aci(&erin), &[1]),
    ];
    let payload = payload(&alice, cert, &to, 200).await;
    let send = |only: Vec<Vec<u8>>, key: Vec<u8>| {
        In::SendMultiSealed(pb::SendMultiSealed {
            payload: payload.clone(),
            access_key: key,
            priority: 0,
            only_recipients: only,
        })
    };
    let result = assert_sent(a.request(send(vec![], xor(&[kc, kd, ke]))).await);
    assert!(result.unknown_recipients.is_empty());
    assert_eq!(result.full_recipients, vec![aci(&dave1).to_vec()]);
    // Everyone else has it; neither of Dave's phones does (so a resend to
    // Dave gives no phone a second copy).
    assert_eq!(queued(&relay, &carol), HashMap::from([(1, 1)]));
    assert_eq!(queued(&relay, &erin), HashMap::from([(1, 1)]));
    assert_eq!(queued(&relay, &dave1), HashMap::from([(2, 2)]));

    // Dave's phone drains its mailbox.
    let mut d2 = relay.device(&dave2).await;
    let backlog = d2.backlog_deliveries().await;
    assert_eq!(backlog.len(), 2);
    d2.ack(backlog.iter().map(|d| d.id).collect()).await;
    d2.ping().await;

    // A resend naming Dave must carry his key alone.
    let only = vec![aci(&dave1).to_vec()];
    assert_eq!(
        error_code(&a.request(send(only.clone(), xor(&[kc, kd, ke]))).await),
        Code::Unauthorized
    );
    let result = assert_sent(a.request(send(only, xor(&[kd]))).await);
    assert!(result.full_recipients.is_empty() && result.unknown_recipients.is_empty());
    assert_eq!(queued(&relay, &dave1), HashMap::from([(1, 1), (2, 1)]));
    assert_eq!(queued(&relay, &carol), HashMap::from([(1, 1)]));
    assert_eq!(queued(&relay, &erin), HashMap::from([(1, 1)]));
}

/// Resident and peak resident memory of this process, bytes.
fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .expect("field")
            * 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

#[tokio::test]
async fn a_two_thousand_recipient_anonymous_upload_is_refused_before_any_copy() {
    const RECIPIENTS: usize = 2000;
    let relay = TestRelay::start().await;
    let alice = Identity::new(1);
    let carol = Identity::new(1);
    let mut a = register(&relay, &alice, [1; 16]).await;
    register(&relay, &carol, [3; 16]).await.close().await;
    let cert = certificate(&mut a).await;
    // Recipients the relay does not know, and a body that fills the frame:
    // copied for each, it would be about 200 MB.
    let acis: Vec<[u8; 16]> = (0..RECIPIENTS)
        .map(|i| {
            let mut b = [0u8; 16];
            b[..8].copy_from_slice(&(i as u64 + 1).to_be_bytes());
            b[6] = (b[6] & 0x0f) | 0x40;
            b[8] = (b[8] & 0x3f) | 0x80;
            b
        })
        .collect();
    let to: Vec<([u8; 16], &[u32])> = acis.iter().map(|a| (*a, &[1u32][..])).collect();
    let body = 100 * 1024;
    let big = payload(&alice, cert.clone(), &to, body).await;
    let frame = In::SendMultiSealed(pb::SendMultiSealed {
        payload: big,
        access_key: vec![0; 16],
        priority: 0,
        only_recipients: vec![],
    });
    let mut anon = relay.client().await;
    anon.request(In::Anonymous(pb::Anonymous {})).await;

    // Peak resident memory from here on (writing 5 resets the high-water mark).
    std::fs::write("/proc/self/clear_refs", "5").expect("reset peak memory");
    let (before, _) = memory();
    let refused = anon.request(frame).await;
    let (_, peak) = memory();
    let grew = peak.saturating_sub(before);
    assert!(
        grew < 16 * 1024 * 1024,
        "the relay's memory grew by {} KiB",
        grew / 1024
    );
    assert_eq!(error_code(&refused), Code::TooLarge);

    // Others keep being served, the refused connection too.
    let small = payload(&alice, cert, &[(aci(&carol), &[1])], 100).await;
    let ok = anon
        .request(In::SendMultiSealed(pb::SendMultiSealed {
            payload: small,
            access_key: vec![3; 16],
            priority: 0,
            only_recipients: vec![],
        }))
        .await;
    assert!(assert_sent(ok).full_recipients.is_empty());
    let mut c = relay.device(&carol).await;
    assert!(c.delivery().await.sealed);
}
