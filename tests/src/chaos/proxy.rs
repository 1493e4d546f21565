//! A TCP proxy between the phones and the relay on loopback that, while its
//! faults are on, delays bytes and cuts connections, each decision drawn
//! from the seed and the connection's number.
//!
//! A connection drawn to be cut is cut at a byte count or after a delay,
//! whichever comes first: the byte count catches the busy start of a
//! connection (login, the first deliveries), the delay one that has gone
//! quiet and wakes for a send later in the run.
//!
//! What it covers: connections that die mid-frame (TLS records cut short, a
//! login, an upload or a delivery lost half way, an acknowledgement that
//! never arrives) and slow links (bytes held back, so a phone's sends and the
//! relay's deliveries interleave differently). What it does not: bytes
//! reordered or altered inside a connection (TLS would refuse them, and TCP
//! never does that), or a connection that hangs without closing. Envelopes
//! reordered and redelivered come from the rest of the suite: a phone killed
//! between its commit and its acknowledgement, a relay killed and restarted,
//! several senders writing to one phone at once, and cuts here.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The share of connections cut while faults are on, in percent.
const CUT_PERCENT: u32 = 40;
/// A cut connection carries at most this many bytes (both ways) first.
const CUT_WITHIN_BYTES: u64 = 64 * 1024;
/// ... and lives at most this long, ms.
const CUT_WITHIN_MS: u64 = 3_000;
/// The share of reads held back, in percent, and for how long at most.
const DELAY_PERCENT: u32 = 20;
const DELAY_MAX_MS: u64 = 40;

struct Shared {
    seed: u64,
    target: Mutex<SocketAddr>,
    faults: AtomicBool,
    stop: AtomicBool,
    connections: AtomicU64,
    cuts: AtomicU64,
}

/// One connection's counts, shared by its two pumps.
#[derive(Default)]
struct Carried {
    /// Bytes carried, both ways together.
    bytes: AtomicU64,
    /// Cut (by either pump).
    cut: AtomicBool,
}

impl Shared {
    /// Counts a cut of a connection once, whichever pump makes it.
    fn count_cut(&self, carried: &Carried) {
        if !carried.cut.swap(true, Ordering::Relaxed) {
            self.cuts.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A running proxy; stops (and closes every connection it holds) when dropped.
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Proxy {
    /// Listens on a fresh loopback port and forwards to `target`.
    pub fn start(seed: u64, target: SocketAddr) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            seed,
            target: Mutex::new(target),
            faults: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            connections: AtomicU64::new(0),
            cuts: AtomicU64::new(0),
        });
        let s = shared.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if s.stop.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(client) = client else { continue };
                let n = s.connections.fetch_add(1, Ordering::Relaxed);
                let s = s.clone();
                std::thread::spawn(move || forward(&s, n, client));
            }
        });
        Ok(Proxy { addr, shared })
    }

    /// Where phones connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where the relay now listens.
    pub fn set_target(&self, target: SocketAddr) {
        if let Ok(mut t) = self.shared.target.lock() {
            *t = target;
        }
    }

    /// Turns delays and cuts on or off (off for the run to settle).
    pub fn set_faults(&self, on: bool) {
        self.shared.faults.store(on, Ordering::Relaxed);
    }

    /// Connections cut so far.
    pub fn cuts(&self) -> u64 {
        self.shared.cuts.load(Ordering::Relaxed)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

/// Carries connection `n` both ways until either side closes, the proxy
/// stops, or its drawn cut comes.
fn forward(s: &Arc<Shared>, n: u64, client: TcpStream) {
    let target = match s.target.lock() {
        Ok(t) => *t,
        Err(_) => return,
    };
    let Ok(relay) = TcpStream::connect(target) else {
        return;
    };
    let _ = (client.set_nodelay(true), relay.set_nodelay(true));
    let mut rng = ChaCha8Rng::seed_from_u64(s.seed ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let cut_after = (rng.random_range(0..100) < CUT_PERCENT).then(|| Cut {
        bytes: rng.random_range(1..CUT_WITHIN_BYTES),
        at: Instant::now() + Duration::from_millis(rng.random_range(50..CUT_WITHIN_MS)),
    });
    let carried = Arc::new(Carried::default());
    let (Ok(c2), Ok(r2)) = (client.try_clone(), relay.try_clone()) else {
        return;
    };
    let up = {
        let (s, carried, seed) = (s.clone(), carried.clone(), rng.random::<u64>());
        std::thread::spawn(move || pump(&s, client, relay, &carried, cut_after, seed))
    };
    pump(s, r2, c2, &carried, cut_after, rng.random::<u64>());
    let _ = up.join();
}

/// Where a connection drawn to be cut is cut.
#[derive(Clone, Copy)]
struct Cut {
    /// After this many bytes, both ways together.
    bytes: u64,
    /// Or at this time.
    at: Instant,
}

/// Copies `from` to `to`, holding reads back and cutting both when drawn.
fn pump(
    s: &Shared,
    mut from: TcpStream,
    mut to: TcpStream,
    carried: &Carried,
    cut: Option<Cut>,
    seed: u64,
) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut buf = vec![0u8; 16 * 1024];
    let _ = from.set_read_timeout(Some(Duration::from_millis(50)));
    loop {
        if s.stop.load(Ordering::Relaxed) {
            break;
        }
        let faults = s.faults.load(Ordering::Relaxed);
        if let (true, Some(c)) = (faults, cut) {
            if Instant::now() >= c.at {
                // Both pumps see it; the first to act counts it.
                s.count_cut(carried);
                break;
            }
        }
        let read = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => k,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(_) => break,
        };
        if faults && rng.random_range(0..100) < DELAY_PERCENT {
            std::thread::sleep(Duration::from_millis(rng.random_range(1..=DELAY_MAX_MS)));
        }
        let total = carried.bytes.fetch_add(read as u64, Ordering::Relaxed) + read as u64;
        if let (true, Some(c)) = (faults, cut) {
            if total >= c.bytes {
                // Forward only what came before the cut, then drop both.
                let before = (read as u64).saturating_sub(total - c.bytes) as usize;
                let _ = to.write_all(&buf[..before]);
                s.count_cut(carried);
                break;
            }
        }
        if to.write_all(&buf[..read]).is_err() {
            break;
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}
