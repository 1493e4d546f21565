//! What the core costs beyond the cryptography and the disk commit it cannot
//! avoid, on established sessions with 200-byte messages.
//!
//! - **interactive**: one message sent and received through the core (each side
//!   one durable transaction), against its floor measured in the same run: bare
//!   libsignal with in-memory stores, plus for each side one plain SQLCipher
//!   transaction with the same settings (WAL, fsync on commit) that writes the
//!   serialized session record and the message row.
//! - **catch-up**: an offline phone receives 10,000 queued envelopes through the
//!   core's batched receive, as the client does (batches of 1,000, each flushed
//!   to disk on another thread while the next is received; done when the last
//!   flush is), against bare libsignal decrypting the same number in memory.
//!
//! Criterion drives the runs. The core's runs are each followed by one run of
//! its baseline, and each ratio on the last line is the median of those
//! pairs' ratios: both sides of a pair meet the machine in the same state, so
//! the figure does not move with whatever else the machine was doing while one
//! group ran and not the other (bare libsignal alone, run 20 s after the core,
//! moved between 82 and 127 ms from one run to the next). Criterion's own
//! lines time each side alone, as before. The last line:
//! `core_vs_libsignal interactive_vs_floor=R1 catchup_ratio=R2`.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use criterion::{criterion_group, Criterion};
use libsignal_protocol::{
    message_decrypt, message_encrypt, process_prekey_bundle, CiphertextMessage, DeviceId,
    GenericSignedPreKey, IdentityKeyPair, IdentityKeyStore, InMemSignalProtocolStore, KeyPair,
    KyberPreKeyRecord, KyberPreKeyStore, PreKeyBundle, PreKeyRecord, PreKeyStore, ProtocolAddress,
    SessionStore, SignedPreKeyRecord, SignedPreKeyStore, Timestamp,
};
use rankfile_core::{Account, DatabaseKey, Inbound, Unsynced};
use rusqlite::{params, Connection};

const MESSAGE: &str = "Meeting moved to the canteen at 14:00. Bring the leaflets and the sign-up sheets; \
the stewards will hold the door. Ask the night shift by text, not by the company phone. Solidarity!!";
const CATCHUP: usize = 10_000;
const CATCHUP_BATCH: usize = 1_000;

thread_local! {
    /// Each core run beside the baseline run right after it.
    static PAIRS: RefCell<Vec<(&'static str, Duration, Duration)>> =
        const { RefCell::new(Vec::new()) };
}

fn record(name: &'static str, core: Duration, baseline: Duration) {
    PAIRS.with(|s| s.borrow_mut().push((name, core, baseline)));
}

/// What the pairs recorded under one name come to.
struct Pairs {
    count: usize,
    /// Medians of the core's times and of the baseline's, in seconds.
    core: f64,
    baseline: f64,
    /// The pairs' ratios: first quartile, median, third quartile.
    ratio: [f64; 3],
}

/// The pairs recorded under `name`; none when its group was filtered out.
fn pairs(name: &str) -> Option<Pairs> {
    let pairs: Vec<(f64, f64)> = PAIRS.with(|s| {
        s.borrow()
            .iter()
            .filter(|(n, ..)| *n == name)
            .map(|(_, c, b)| (c.as_secs_f64(), b.as_secs_f64()))
            .collect()
    });
    if pairs.is_empty() {
        return None;
    }
    let sorted = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v
    };
    let core = sorted(pairs.iter().map(|p| p.0).collect());
    let baseline = sorted(pairs.iter().map(|p| p.1).collect());
    let ratio = sorted(pairs.iter().map(|p| p.0 / p.1).collect());
    let n = pairs.len();
    Some(Pairs {
        count: n,
        core: core[n / 2],
        baseline: baseline[n / 2],
        ratio: [ratio[n / 4], ratio[n / 2], ratio[3 * n / 4]],
    })
}

fn bench_dir() -> tempfile::TempDir {
    // On the real disk, not tmpfs: fsync must cost what it costs.
    let base = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&base).expect("bench dir");
    tempfile::tempdir_in(base).expect("tempdir")
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    futures::executor::block_on(f)
}

// ---------------------------------------------------------------- core side

struct CorePair {
    alice: Account,
    bob: Account,
}

fn core_pair(dir: &Path) -> CorePair {
    let mut alice =
        Account::create(&dir.join("alice.db"), &DatabaseKey::generate()).expect("alice");
    let mut bob = Account::create(&dir.join("bob.db"), &DatabaseKey::generate()).expect("bob");
    let bundle = bob.prekey_bundle().expect("bundle");
    alice.add_contact("bob", &bundle).expect("contact");
    // Establish both directions so every message is a plain SignalMessage.
    let e = alice.send_text(&bob.id(), "hi").expect("send");
    bob.receive(&e.bytes).expect("recv");
    let r = bob.send_text(&alice.id(), "hi").expect("send");
    alice.receive(&r.bytes).expect("recv");
    CorePair { alice, bob }
}

// ---------------------------------------------------------------- floor side

struct BarePair {
    alice: InMemSignalProtocolStore,
    bob: InMemSignalProtocolStore,
    alice_addr: ProtocolAddress,
    bob_addr: ProtocolAddress,
}

fn bare_store() -> InMemSignalProtocolStore {
    let mut rng = rand::rng();
    let identity = IdentityKeyPair::generate(&mut rng);
    InMemSignalProtocolStore::new(identity, 1234).expect("store")
}

fn bare_pair() -> BarePair {
    let mut rng = rand::rng();
    let mut alice = bare_store();
    let mut bob = bare_store();
    let device = DeviceId::new(1).expect("device");
    let alice_addr = ProtocolAddress::new("alice".into(), device);
    let bob_addr = ProtocolAddress::new("bob".into(), device);

    let identity = block_on(bob.get_identity_key_pair()).expect("identity");
    let pre = KeyPair::generate(&mut rng);
    let signed = KeyPair::generate(&mut rng);
    let signed_sig = identity
        .private_key()
        .calculate_signature(&signed.public_key.serialize(), &mut rng)
        .expect("sign");
    let kyber = KyberPreKeyRecord::generate(
        libsignal_protocol::kem::KeyType::Kyber1024,
        1.into(),
        identity.private_key(),
    )
    .expect("kyber");
    block_on(bob.save_pre_key(1.into(), &PreKeyRecord::new(1.into(), &pre))).expect("save");
    block_on(bob.save_signed_pre_key(
        1.into(),
        &SignedPreKeyRecord::new(
            1.into(),
            Timestamp::from_epoch_millis(0),
            &signed,
            &signed_sig,
        ),
    ))
    .expect("save");
    block_on(bob.save_kyber_pre_key(1.into(), &kyber)).expect("save");
    let bundle = PreKeyBundle::new(
        1234,
        device,
        Some((1.into(), pre.public_key)),
        1.into(),
        signed.public_key,
        signed_sig.to_vec(),
        1.into(),
        kyber.public_key().expect("kyber public"),
        kyber.signature().expect("kyber sig"),
        *identity.identity_key(),
    )
    .expect("bundle");
    block_on(process_prekey_bundle(
        &bob_addr,
        &mut alice.session_store,
        &mut alice.identity_store,
        &bundle,
        SystemTime::now(),
        &mut rng,
    ))
    .expect("pqxdh");
    let mut pair = BarePair {
        alice,
        bob,
        alice_addr,
        bob_addr,
    };
    let m = bare_encrypt(&mut pair.alice, &pair.bob_addr, b"hi");
    bare_decrypt(&mut pair.bob, &pair.alice_addr, &m);
    let r = bare_encrypt(&mut pair.bob, &pair.alice_addr, b"hi");
    bare_decrypt(&mut pair.alice, &pair.bob_addr, &r);
    pair
}

fn bare_encrypt(
    store: &mut InMemSignalProtocolStore,
    to: &ProtocolAddress,
    m: &[u8],
) -> CiphertextMessage {
    block_on(message_encrypt(
        m,
        to,
        &mut store.session_store,
        &mut store.identity_store,
        SystemTime::now(),
        &mut rand::rng(),
    ))
    .expect("encrypt")
}

fn bare_decrypt(
    store: &mut InMemSignalProtocolStore,
    from: &ProtocolAddress,
    c: &CiphertextMessage,
) -> Vec<u8> {
    block_on(message_decrypt(
        c,
        from,
        &mut store.session_store,
        &mut store.identity_store,
        &mut store.pre_key_store,
        &store.signed_pre_key_store,
        &mut store.kyber_pre_key_store,
        &mut rand::rng(),
    ))
    .expect("decrypt")
}

/// A plain SQLCipher database with the core's settings and the two tables
/// the floor writes.
fn floor_db(path: &Path) -> Connection {
    let conn = Connection::open(path).expect("open");
    conn.pragma_update(None, "key", format!("x'{}'", "5a".repeat(32)))
        .expect("key");
    conn.pragma_update(None, "cipher_hmac_algorithm", "HMAC_SHA256")
        .expect("hmac");
    conn.pragma_update(None, "secure_delete", "ON")
        .expect("pragma");
    conn.pragma_update(None, "temp_store", "MEMORY")
        .expect("pragma");
    let _: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .expect("wal");
    conn.pragma_update(None, "synchronous", "FULL")
        .expect("pragma");
    conn.execute_batch(
        "CREATE TABLE sessions (address TEXT PRIMARY KEY, record BLOB NOT NULL) WITHOUT ROWID;
         CREATE TABLE messages (id INTEGER PRIMARY KEY, envelope_id BLOB NOT NULL UNIQUE,
             peer BLOB NOT NULL, outgoing INTEGER NOT NULL, body TEXT NOT NULL,
             sent_at INTEGER NOT NULL, stored_at INTEGER NOT NULL, state INTEGER NOT NULL DEFAULT 0);",
    )
    .expect("schema");
    conn
}

fn floor_commit(
    conn: &mut Connection,
    address: &ProtocolAddress,
    store: &InMemSignalProtocolStore,
    body: &str,
) {
    let record = block_on(store.session_store.load_session(address))
        .expect("load")
        .expect("session");
    let id: [u8; 16] = rand::random();
    let tx = conn.transaction().expect("tx");
    tx.prepare_cached("INSERT OR REPLACE INTO sessions (address, record) VALUES (?1, ?2)")
        .expect("prepare")
        .execute(params![
            address.to_string(),
            record.serialize().expect("serialize")
        ])
        .expect("session row");
    tx.prepare_cached(
        "INSERT INTO messages (envelope_id, peer, outgoing, body, sent_at, stored_at) VALUES (?1, ?2, 0, ?3, 0, 0)",
    )
    .expect("prepare")
    .execute(params![&id[..], address.name(), body])
    .expect("message row");
    tx.commit().expect("commit");
}

// ---------------------------------------------------------------- benches

fn interactive(c: &mut Criterion) {
    let dir = bench_dir();
    let mut core = core_pair(dir.path());
    let mut bare = bare_pair();
    let mut alice_db = floor_db(&dir.path().join("floor-alice.db"));
    let mut bob_db = floor_db(&dir.path().join("floor-bob.db"));
    let bob_id = core.bob.id();

    let mut core_once = || {
        let t = Instant::now();
        let e = core.alice.send_text(&bob_id, MESSAGE).expect("send");
        core.bob.receive(&e.bytes).expect("recv");
        t.elapsed()
    };
    let mut floor_once = || {
        let t = Instant::now();
        let m = bare_encrypt(&mut bare.alice, &bare.bob_addr, MESSAGE.as_bytes());
        floor_commit(&mut alice_db, &bare.bob_addr, &bare.alice, MESSAGE);
        let p = bare_decrypt(&mut bare.bob, &bare.alice_addr, &m);
        floor_commit(&mut bob_db, &bare.alice_addr, &bare.bob, MESSAGE);
        let d = t.elapsed();
        assert_eq!(p.len(), MESSAGE.len());
        d
    };

    let mut group = c.benchmark_group("interactive");
    group
        .sample_size(60)
        .measurement_time(Duration::from_secs(8));
    group.bench_function("core", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let d = core_once();
                record("interactive", d, floor_once());
                total += d;
            }
            total
        })
    });
    group.bench_function("floor", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| floor_once()).sum())
    });
    group.finish();
}

fn copy_store(from: &Path, to: &Path) {
    for suffix in ["", "-wal"] {
        let src = PathBuf::from(format!("{}{suffix}", from.display()));
        let dst = PathBuf::from(format!("{}{suffix}", to.display()));
        let _ = std::fs::remove_file(&dst);
        if src.exists() {
            std::fs::copy(&src, &dst).expect("copy");
            // On disk before the clock starts, as a phone's store is: left
            // dirty, its writeback would land inside the timed run (ext4's
            // fsync of the WAL waits for it), and the run would time the copy.
            std::fs::File::open(&dst)
                .and_then(|f| f.sync_all())
                .expect("sync copy");
        }
    }
    let _ = std::fs::remove_file(format!("{}-shm", to.display()));
}

fn catchup(c: &mut Criterion) {
    let dir = bench_dir();
    // Core: Bob is offline while Alice writes 10,000 messages.
    let alice_path = dir.path().join("alice.db");
    let bob_path = dir.path().join("bob.db");
    let bob_key = DatabaseKey::generate();
    let mut alice = Account::create(&alice_path, &DatabaseKey::generate()).expect("alice");
    let mut bob = Account::create(&bob_path, &bob_key).expect("bob");
    alice
        .add_contact("bob", &bob.prekey_bundle().expect("bundle"))
        .expect("contact");
    let e = alice.send_text(&bob.id(), "hi").expect("send");
    bob.receive(&e.bytes).expect("recv");
    let r = bob.send_text(&alice.id(), "hi").expect("send");
    alice.receive(&r.bytes).expect("recv");
    let bob_id = bob.id();
    let queued: Vec<Vec<u8>> = (0..CATCHUP)
        .map(|_| alice.send_text(&bob_id, MESSAGE).expect("send").bytes)
        .collect();
    drop(bob);
    let snapshot = dir.path().join("bob-snapshot.db");
    copy_store(&bob_path, &snapshot);

    // Bare: the same number of ciphertexts on an established in-memory pair.
    let mut bare = bare_pair();
    let bare_bob = bare.bob.clone();
    let bare_queued: Vec<CiphertextMessage> = (0..CATCHUP)
        .map(|_| bare_encrypt(&mut bare.alice, &bare.bob_addr, MESSAGE.as_bytes()))
        .collect();

    let core_once = || {
        copy_store(&snapshot, &bob_path);
        let mut bob = Account::open(&bob_path, &bob_key).expect("open");
        let t = Instant::now();
        // As the client does: each batch is flushed to disk (and would be
        // acknowledged) on another thread while the account goes on with the
        // next; done when the last flush is.
        let (to_sync, synced) = std::sync::mpsc::channel::<Unsynced>();
        let syncer = std::thread::spawn(move || {
            for unsynced in synced {
                unsynced.sync().expect("sync");
            }
        });
        let inbound: Vec<Inbound<'_>> = queued.iter().map(|e| Inbound::Envelope(e)).collect();
        bob.receive_backlog(&inbound, CATCHUP_BATCH, &mut |_, results, unsynced| {
            assert!(results.iter().all(|r| r.is_ok()));
            to_sync.send(unsynced).expect("syncer");
        })
        .expect("backlog");
        drop(to_sync);
        syncer.join().expect("syncer");
        let d = t.elapsed();
        assert_eq!(bob.message_count().expect("count") as usize, CATCHUP + 2);
        d
    };
    let bare_once = || {
        let mut store = bare_bob.clone();
        let t = Instant::now();
        for m in &bare_queued {
            bare_decrypt(&mut store, &bare.alice_addr, m);
        }
        t.elapsed()
    };

    let mut group = c.benchmark_group("catchup_10000");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    group.bench_function("core", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let d = core_once();
                record("catchup", d, bare_once());
                total += d;
            }
            total
        })
    });
    group.bench_function("bare_libsignal", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| bare_once()).sum())
    });
    group.finish();
}

criterion_group!(benches, interactive, catchup);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    let interactive = pairs("interactive");
    let catchup = pairs("catchup");
    let show = |what: &str, p: &Option<Pairs>, unit: f64, unit_name: &str| {
        if let Some(p) = p {
            println!(
                "{what}: {} pairs; medians: core {:.1} {unit_name}, baseline {:.1} {unit_name}; \
                 ratio quartiles {:.2} / {:.2} / {:.2}",
                p.count,
                p.core * unit,
                p.baseline * unit,
                p.ratio[0],
                p.ratio[1],
                p.ratio[2]
            );
        }
    };
    show("interactive (floor)", &interactive, 1e6, "µs");
    show("catch-up of 10,000 (bare libsignal)", &catchup, 1e3, "ms");
    // Each ratio is the median of its pairs' ratios.
    let ratio = |p: &Option<Pairs>| {
        p.as_ref()
            .map_or("-".to_string(), |p| format!("{:.2}", p.ratio[1]))
    };
    println!(
        "core_vs_libsignal interactive_vs_floor={} catchup_ratio={}",
        ratio(&interactive),
        ratio(&catchup)
    );
}
