//! What `PRAGMA cipher_memory_security = ON` costs a receive commit, measured
//! A then B in one process: SQLCipher's switch is process-wide and cannot be
//! turned off, so the runs without it come first, on fresh stores each.
//!
//! Each batch is what a receive batch does to the store: 256 envelope IDs
//! claimed at random places, 256 message rows of 200 bytes, one session
//! record of 6 KB rewritten once, committed without waiting for the disk
//! (as the client's batched receive does). The store is keyed, paged and
//! sized as the core's (`store/open.rs`); the cryptography of the messages,
//! which memory security does not touch, is left out, so the ratio printed
//! is an upper bound on what the switch adds to a whole receive. SQLCipher is
//! built as the core ships it: without its per-allocation `mlock`
//! (`OMIT_MEMLOCK` in `.cargo/config.toml`), which alone cost 25-40% here.
//!
//! `cargo xtask cargo run --release -p rankfile-core --example memory_security_cost`

use std::time::{Duration, Instant};

use rand::RngCore;
use rusqlite::{params, Connection};

const BATCHES: usize = 40;
const BATCH: usize = 256;
const ROUNDS: usize = 9;

fn open(path: &std::path::Path, memory_security: bool) -> Connection {
    let conn = Connection::open(path).expect("open");
    conn.pragma_update(None, "cipher_log_level", "NONE")
        .expect("log level");
    if memory_security {
        conn.pragma_update(None, "cipher_memory_security", "ON")
            .expect("memory security");
    }
    conn.execute_batch(&format!("PRAGMA key = \"x'{}'\"", "2a".repeat(32)))
        .expect("key");
    conn.pragma_update(None, "cipher_hmac_algorithm", "HMAC_SHA256")
        .expect("hmac");
    conn.execute_batch(
        "PRAGMA secure_delete = ON; PRAGMA temp_store = MEMORY;
         PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
         PRAGMA cache_size = -16384;
         CREATE TABLE received_envelopes (envelope_id BLOB PRIMARY KEY, received_day INTEGER NOT NULL) WITHOUT ROWID;
         CREATE TABLE messages (id INTEGER PRIMARY KEY, envelope_id BLOB, peer BLOB, body TEXT, sent_at INTEGER);
         CREATE TABLE sessions (id INTEGER PRIMARY KEY, address TEXT UNIQUE, record BLOB);
         INSERT INTO sessions (address, record) VALUES ('peer.1', zeroblob(6000));",
    )
    .expect("schema");
    conn
}

/// Time for all batches on a fresh store.
fn run(memory_security: bool) -> Duration {
    let dir = tempfile::tempdir().expect("dir");
    let mut conn = open(&dir.path().join("s.db"), memory_security);
    let mut rng = rand::rng();
    let body = "x".repeat(200);
    let mut record = vec![0u8; 6000];
    let started = Instant::now();
    for _ in 0..BATCHES {
        let tx = conn.transaction().expect("begin");
        for _ in 0..BATCH {
            let mut id = [0u8; 16];
            rng.fill_bytes(&mut id);
            tx.prepare_cached(
                "INSERT OR IGNORE INTO received_envelopes (envelope_id, received_day) VALUES (?1, ?2)",
            )
            .and_then(|mut s| s.execute(params![&id[..], 20_000]))
            .expect("claim");
            tx.prepare_cached(
                "INSERT INTO messages (envelope_id, peer, body, sent_at) VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut s| s.execute(params![&id[..], &[7u8; 20][..], &body, 1]))
            .expect("message");
        }
        // The core writes each session changed by a batch once, before
        // the commit.
        rng.fill_bytes(&mut record[..64]);
        tx.prepare_cached("UPDATE sessions SET record = ?1 WHERE address = 'peer.1'")
            .and_then(|mut s| s.execute([&record]))
            .expect("session");
        tx.commit().expect("commit");
    }
    started.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    // Warm the allocator, the page tables and the disk's cache first.
    run(false);
    let off = median((0..ROUNDS).map(|_| run(false)).collect());
    let on = median((0..ROUNDS).map(|_| run(true)).collect());
    let per = |d: Duration| d.as_secs_f64() * 1e6 / (BATCHES * BATCH) as f64;
    println!(
        "memory_security_cost envelopes={} off_us_per_envelope={:.2} on_us_per_envelope={:.2} ratio={:.3}",
        BATCHES * BATCH,
        per(off),
        per(on),
        on.as_secs_f64() / off.as_secs_f64()
    );
}
