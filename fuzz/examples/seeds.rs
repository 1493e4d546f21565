//! Writes the fuzz fixtures and the seed corpora from real encodings: two
//! phones (the fixture receiver and a sender) exchanging identified and sealed
//! messages, a relay's sealed-sender keys, a committee with an invite, an
//! alert, and one content message of every kind.
//!
//! `cargo run --manifest-path fuzz/Cargo.toml --example seeds` (from the
//! repository's root) replaces `fuzz/fixtures/` and adds to `fuzz/corpus/`;
//! the corpora are then minimised with `cargo fuzz cmin`. Fixtures and seeds
//! belong together: regenerating the fixtures makes older seeds that need them
//! (envelopes, entries) fall back to exercising only the refusals.

use std::path::Path;

use libsignal_protocol::{
    DeviceId, IdentityKey, IdentityKeyPair, KeyPair, SenderCertificate, ServerCertificate,
    Timestamp,
};
use prost::Message as _;
use rankfile_core::committee::{
    ChannelKind, CommitteeMeta, InviteToken, JoinRequest, Op, Role, SignedEntry,
};
use rankfile_core::{Account, DatabaseKey, OutgoingEnvelope};
use rankfile_fuzz::{CHALLENGE, FIXTURES, FOUNDER, GENESIS, INVITE, RECEIVER_STORE, STORE_KEY};
use rankfile_proto::v1 as pb;

/// Far enough ahead that the fixture's certificates and invite never expire.
const FAR_FUTURE_MS: u64 = 4_102_444_800_000; // 2100-01-01
/// When the relay stored the delivered seeds (2027-01-15).
const STORED_AT_MS: u64 = 1_800_000_000_000;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let corpus = root.join("corpus");
    let work = tempfile::tempdir().expect("temporary directory");
    let key = DatabaseKey::new(STORE_KEY);

    // The relay's sealed-sender keys.
    let mut rng = rand::rng();
    let trust_root = KeyPair::generate(&mut rng);
    let server = KeyPair::generate(&mut rng);
    let server_cert =
        ServerCertificate::new(1, server.public_key, &trust_root.private_key, &mut rng)
            .expect("server certificate");
    let certify = |a: &mut Account| -> Vec<u8> {
        a.set_relay_trust_root(&trust_root.public_key.serialize())
            .expect("trust root");
        let identity = IdentityKey::decode(&a.identity_key()).expect("identity key");
        let cert = SenderCertificate::new(
            rankfile_core::service_uuid(&a.id()).to_string(),
            None,
            *identity.public_key(),
            DeviceId::new(1).expect("device"),
            Timestamp::from_epoch_millis(FAR_FUTURE_MS),
            server_cert.clone(),
            &server.private_key,
            &mut rand::rng(),
        )
        .expect("sender certificate");
        let bytes = cert.serialized().expect("bytes").to_vec();
        a.set_sender_certificate(&bytes).expect("certificate");
        bytes
    };

    // The receiver (the fixture) and a sender.
    let receiver_path = work.path().join("receiver.db");
    let mut bob =
        Account::create_with(&receiver_path, &key, &rankfile_fuzz::options()).expect("receiver");
    let mut alice = Account::create_with(
        &work.path().join("sender.db"),
        &key,
        &rankfile_fuzz::options(),
    )
    .expect("sender");
    let bob_cert = certify(&mut bob);
    certify(&mut alice);
    let bob_bundle = bob.prekey_bundle().expect("bundle");
    let alice_bundle = alice.prekey_bundle().expect("bundle");
    let upload = bob.prekeys_for_upload().expect("upload");
    let auth = bob.sign_relay_challenge(&CHALLENGE).expect("auth");
    let bob_id = bob.add_contact("Alice", &alice_bundle).expect("contact");
    let alice_id = alice.add_contact("Bob", &bob_bundle).expect("contact");
    debug_assert_ne!(bob_id, alice_id);

    // Alice's first message opens a session (identified: she has no access
    // key for Bob yet); Bob's answer gives her his access key, so what she
    // sends after is sealed.
    let first = alice
        .send_text(&bob.id(), "first, from Alice")
        .expect("send");
    let answer = bob.send_text(&alice.id(), "hello Alice").expect("send");
    alice.receive(&answer.bytes).expect("receive the answer");
    let sealed: Vec<OutgoingEnvelope> = ["sealed one", "sealed two, a little longer"]
        .iter()
        .map(|t| alice.send_text(&bob.id(), t).expect("send"))
        .collect();
    assert!(!first.sealed && sealed.iter().all(|e| e.sealed));

    // The fixture store: Bob as he is now, before receiving anything of
    // Alice's. Closing the account checkpoints its WAL into the file.
    drop(bob);
    std::fs::create_dir_all(FIXTURES).expect("fixtures directory");
    std::fs::copy(&receiver_path, Path::new(FIXTURES).join(RECEIVER_STORE)).expect("copy");

    // The committee: a founder, its genesis and one open invite.
    let founder = IdentityKeyPair::generate(&mut rand::rng());
    let meta = CommitteeMeta {
        name: "Depot 4 committee".into(),
        workplace: "Depot 4".into(),
        industry: "Logistics".into(),
        region: "North".into(),
    };
    let (mut log, genesis) =
        rankfile_core::committee::CommitteeLog::genesis(&founder, meta.clone()).expect("genesis");
    let (invite, token) = log
        .create_invite(&founder, [9; 16], FAR_FUTURE_MS, 1_000)
        .expect("invite");
    write(Path::new(FIXTURES), FOUNDER, &founder.serialize());
    write(Path::new(FIXTURES), GENESIS, &genesis.encode());
    write(Path::new(FIXTURES), INVITE, &invite.encode());

    // ---- corpora
    let newcomer = IdentityKeyPair::generate(&mut rand::rng());
    let mut seeds = Seeds::new(&corpus);

    // receive: the mode byte, then the envelope.
    seeds.add("receive", "identified-prekey", &[&[0], &first.bytes]);
    for (i, e) in sealed.iter().enumerate() {
        seeds.add("receive", &format!("sealed-{i}"), &[&[1], &e.bytes]);
        seeds.add(
            "receive",
            &format!("delivered-{i}"),
            &[&[2], &STORED_AT_MS.to_be_bytes(), &e.bytes],
        );
    }

    // envelope: identified envelopes as they arrive.
    seeds.add("envelope", "identified-prekey", &[&first.bytes]);
    seeds.add("envelope", "identified-answer", &[&answer.bytes]);

    // server_frame: what the relay sends a phone.
    let server_frame = |body| {
        pb::ServerFrame {
            request_id: 0,
            body: Some(body),
        }
        .encode_to_vec()
    };
    use pb::server_frame::Body as Out;
    seeds.add(
        "server_frame",
        "hello",
        &[&server_frame(Out::Hello(pb::Hello {
            version: 1,
            challenge: CHALLENGE.to_vec(),
            server_time_ms: 1_800_000_000_000,
            trust_root: trust_root.public_key.serialize().to_vec(),
        }))],
    );
    seeds.add(
        "server_frame",
        "certificate",
        &[&server_frame(Out::SenderCertificate(
            pb::SenderCertificate {
                certificate: bob_cert,
                expires_at_ms: FAR_FUTURE_MS,
            },
        ))],
    );
    seeds.add(
        "server_frame",
        "bundle",
        &[&server_frame(Out::Bundle(
            pb::PreKeyBundle::decode(alice_bundle.as_slice()).expect("bundle"),
        ))],
    );
    for (i, e) in std::iter::once(&first).chain(&sealed).enumerate() {
        seeds.add(
            "server_frame",
            &format!("deliver-{i}"),
            &[&server_frame(Out::Deliver(pb::Deliver {
                id: i as u64 + 1,
                envelope: e.bytes.clone(),
                priority: pb::Priority::Normal as i32,
                sealed: e.sealed,
                stored_at_ms: STORED_AT_MS,
            }))],
        );
    }
    seeds.add(
        "server_frame",
        "error",
        &[&server_frame(Out::Error(pb::Error {
            code: pb::error::Code::RateLimited as i32,
            message: "too many requests".into(),
            retry_after_ms: 500,
        }))],
    );

    // client_frame: what a phone sends the relay.
    let client_frame = |body| {
        pb::ClientFrame {
            version: rankfile_relay::PROTOCOL_VERSION,
            request_id: 7,
            body: Some(body),
        }
        .encode_to_vec()
    };
    use pb::client_frame::Body as In;
    let frames = [
        ("auth", In::Auth(auth)),
        ("upload-prekeys", In::UploadPrekeys(upload)),
        (
            "send",
            In::Send(pb::SendMessage {
                recipient_account_id: first.recipient.as_bytes().to_vec(),
                recipient_device_id: 1,
                envelope: first.bytes.clone(),
                priority: pb::Priority::Normal as i32,
            }),
        ),
        (
            "send-sealed",
            In::SendSealed(pb::SendSealed {
                recipient_account_id: sealed[0].recipient.as_bytes().to_vec(),
                recipient_device_id: 1,
                access_key: sealed[0].access_key.map(|k| k.to_vec()).unwrap_or_default(),
                envelope: sealed[0].bytes.clone(),
                priority: pb::Priority::High as i32,
            }),
        ),
        ("ping", In::Ping(pb::Ping {})),
        ("ack", In::Ack(pb::Ack { ids: vec![1, 2, 3] })),
        (
            "set-access-key",
            In::SetAccessKey(pb::SetAccessKey {
                access_key: vec![5; 16],
                ..Default::default()
            }),
        ),
    ];
    for (name, body) in frames {
        seeds.add("client_frame", name, &[&client_frame(body)]);
    }

    // prekey_bundle.
    seeds.add("prekey_bundle", "bundle", &[&alice_bundle]);

    // invite: links and QR text (mode 0) and join requests (mode 1).
    let link = token.to_link();
    seeds.add("invite", "link", &[&[0], link.as_bytes()]);
    seeds.add(
        "invite",
        "qr-upper",
        &[&[0], format!("  {}\n", link.to_uppercase()).as_bytes()],
    );
    let request = JoinRequest::new(&token, *newcomer.identity_key());
    seeds.add("invite", "join-request", &[&[1], &request.encode()]);
    let _: &InviteToken = &token;

    // membership_entry: entries against the fixture log's heads.
    seeds.add("membership_entry", "genesis", &[&genesis.encode()]);
    seeds.add("membership_entry", "invite", &[&invite.encode()]);
    let newcomer_id = rankfile_core::AccountId::from_identity_key(newcomer.identity_key());
    let ops = [
        (
            "add",
            Op::Add {
                account: newcomer_id,
                identity_key: *newcomer.identity_key(),
                role: Role::Member,
                invite: None,
            },
        ),
        (
            "create-channel",
            Op::CreateChannel {
                channel_id: [4; 16],
                kind: ChannelKind::Discussion,
            },
        ),
        (
            "rename",
            Op::Rename(CommitteeMeta {
                name: "Depots 4 and 5 committee".into(),
                ..meta
            }),
        ),
        (
            "revoke-invite",
            Op::RevokeInvite {
                invite_id: token.invite_id,
            },
        ),
    ];
    let mut update_entries: Vec<SignedEntry> = vec![genesis.clone(), invite.clone()];
    for (name, op) in ops {
        let mut fresh = rankfile_fuzz_log(&genesis, &invite);
        let entry = fresh.propose(&founder, op).expect("propose");
        seeds.add("membership_entry", name, &[&entry.encode()]);
        update_entries.push(entry);
    }
    let admitted = rankfile_fuzz_log(&genesis, &invite)
        .admit(&founder, &request)
        .expect("admit");
    seeds.add("membership_entry", "admit", &[&admitted.encode()]);

    // alert.
    let alert =
        rankfile_core::fuzzing::alert_seed(&founder, log.id().0, 1_800_000_000_000).expect("alert");
    seeds.add("alert", "rapid-response", &[&alert]);

    // attachment_pointer.
    let pointer = pb::AttachmentPointer {
        address: vec![1; 32],
        key: vec![2; 32],
        digest: vec![3; 32],
        size: 48_213,
        content_type: "image/jpeg".into(),
        file_name: "leaflet.jpg".into(),
    };
    seeds.add("attachment_pointer", "jpeg", &[&pointer.encode_to_vec()]);

    // content: one message of every kind.
    let committee_id = log.id().0.to_vec();
    let message_ref = pb::ChannelMessageRef {
        author: alice_id.as_bytes().to_vec(),
        message_id: vec![6; 16],
    };
    use pb::content::Body as C;
    let bodies = [
        (
            "text",
            C::Text(pb::Text {
                body: "meeting at 6".into(),
                expire_timer_secs: 3600,
                expire_timer_version: 1,
            }),
        ),
        (
            "conversation-timer",
            C::ConversationTimer(pb::ConversationTimer {
                expire_timer_secs: 86_400,
                version: 2,
            }),
        ),
        (
            "access-key-changed",
            C::AccessKeyChanged(pb::AccessKeyChanged {}),
        ),
        (
            "channel-text",
            C::ChannelText(pb::ChannelText {
                channel_id: vec![4; 16],
                body: "the demands, as amended".into(),
                message_id: vec![8; 16],
                reply_to: Some(message_ref.clone()),
                attachments: vec![pointer.clone()],
                expire_timer_secs: 0,
            }),
        ),
        (
            "channel-edit",
            C::ChannelEdit(pb::ChannelEdit {
                channel_id: vec![4; 16],
                target: Some(message_ref.clone()),
                body: "the demands, as ratified".into(),
                expire_timer_secs: 0,
            }),
        ),
        (
            "channel-delete",
            C::ChannelDelete(pb::ChannelDelete {
                channel_id: vec![4; 16],
                target: Some(message_ref),
            }),
        ),
        (
            "sender-key",
            C::SenderKeyDistribution(pb::SenderKeyDistribution {
                channel_id: vec![4; 16],
                distribution_id: vec![0x11; 16],
                message: vec![0x33; 80],
            }),
        ),
        (
            "committee-update",
            C::CommitteeUpdate(pb::CommitteeUpdate {
                committee_id: committee_id.clone(),
                entries: update_entries.iter().map(SignedEntry::encode).collect(),
                access_keys: vec![pb::MemberAccessKey {
                    account: alice_id.as_bytes().to_vec(),
                    access_key: vec![5; 16],
                }],
            }),
        ),
        (
            "join-request",
            C::CommitteeJoinRequest(
                pb::CommitteeJoinRequest::decode(request.encode().as_slice()).expect("request"),
            ),
        ),
        (
            "entries-request",
            C::CommitteeEntriesRequest(pb::CommitteeEntriesRequest {
                committee_id: committee_id.clone(),
                heads: vec![genesis.hash().0.to_vec()],
                missing: vec![invite.hash().0.to_vec()],
            }),
        ),
        (
            "committee-hello",
            C::CommitteeHello(pb::CommitteeHello {
                committee_id: committee_id.clone(),
                reply_wanted: true,
            }),
        ),
        (
            "alert",
            C::Alert(pb::Alert::decode(alert.as_slice()).expect("alert")),
        ),
        (
            "alert-answer",
            C::AlertAnswer(pb::AlertAnswer {
                alert_id: vec![0x21; 16],
                answer: 1,
                answered_at_ms: 1_800_000_000_000,
            }),
        ),
        (
            "link-proposal",
            C::LinkProposal(pb::LinkProposal {
                proposal_id: vec![0x44; 16],
                committee_id: committee_id.clone(),
                target_committee_id: vec![0x45; 16],
                delegates: vec![pb::LinkDelegate {
                    account: newcomer_id.as_bytes().to_vec(),
                    identity_key: newcomer.identity_key().serialize().to_vec(),
                }],
                policy: pb::LinkPolicy::Forward as i32,
                council_name: "Northern depots council".into(),
            }),
        ),
        (
            "alert-counts",
            C::AlertCounts(pb::AlertCounts {
                alert_id: vec![0x21; 16],
                counts: vec![pb::CommitteeCount {
                    committee_id: committee_id.clone(),
                    counter: alice_id.as_bytes().to_vec(),
                    version: 3,
                    reached: 40,
                    received: 31,
                    coming: 12,
                    ..Default::default()
                }],
            }),
        ),
        (
            "alert-reached-before",
            C::AlertReachedBefore(pb::AlertReachedBefore {
                alert_id: vec![0x21; 16],
            }),
        ),
    ];
    for (name, body) in bodies {
        let content = pb::Content {
            sent_at_ms: 1_800_000_000_000,
            body: Some(body),
            sender_access_key: vec![5; 16],
            padding: vec![0; 7],
            ..Default::default()
        };
        seeds.add("content", name, &[&content.encode_to_vec()]);
    }

    // The envelope seeds must be stored by a fresh copy of the fixture phone,
    // as every fuzzing process makes one, or the receive target would start
    // at the refusals.
    let mut check = rankfile_fuzz::receiver("seeds-check");
    let mut inbound = vec![rankfile_core::Inbound::Envelope(&first.bytes)];
    inbound.extend(sealed.iter().map(|e| rankfile_core::Inbound::Delivered {
        sealed: &e.bytes,
        stored_at_ms: STORED_AT_MS,
    }));
    for r in check.receive_all(&inbound).expect("receive") {
        assert!(
            matches!(r, Ok(rankfile_core::Received::Stored { .. })),
            "a seed envelope was not stored: {r:?}"
        );
    }
    drop(check);

    println!("wrote the fixtures to {FIXTURES} and {} seeds", seeds.count);
}

/// The fixture committee's log (genesis and invite), as the targets load it.
fn rankfile_fuzz_log(
    genesis: &SignedEntry,
    invite: &SignedEntry,
) -> rankfile_core::committee::CommitteeLog {
    rankfile_core::committee::CommitteeLog::from_entries([genesis.clone(), invite.clone()])
        .expect("fixture log")
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::write(dir.join(name), bytes).expect("write");
}

struct Seeds<'a> {
    corpus: &'a Path,
    count: usize,
}

impl<'a> Seeds<'a> {
    fn new(corpus: &'a Path) -> Self {
        Seeds { corpus, count: 0 }
    }

    fn add(&mut self, target: &str, name: &str, parts: &[&[u8]]) {
        let dir = self.corpus.join(target);
        std::fs::create_dir_all(&dir).expect("corpus directory");
        write(&dir, &format!("seed-{name}"), &parts.concat());
        self.count += 1;
    }
}
