//! Fixtures shared by the fuzz targets and the seed generator: the receiving
//! phone's store (a real SQLCipher store, committed under `fixtures/`, copied
//! to a temporary directory once per fuzzing process), the committee whose log
//! membership entries are inserted into, and the fixed login challenge.
//!
//! The fixtures are files rather than keys made at start-up so that the seeds,
//! real envelopes and entries written by `examples/seeds.rs`, decrypt and
//! verify in every fuzzing process, and the fuzzer starts deep in the paths.

use std::path::{Path, PathBuf};

use libsignal_protocol::IdentityKeyPair;
use rankfile_core::committee::{CommitteeLog, SignedEntry};
use rankfile_core::{Account, AccountOptions, DatabaseKey};

/// The fixtures' directory.
pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");
/// The receiving phone's store, under [`FIXTURES`].
pub const RECEIVER_STORE: &str = "receiver.store";
/// The committee's genesis entry (`SignedCommitteeEntry`), under [`FIXTURES`].
pub const GENESIS: &str = "genesis.entry";
/// The founder's invite entry, under [`FIXTURES`]: join requests redeem it.
pub const INVITE: &str = "invite.entry";
/// The founder's identity key pair (a test key), under [`FIXTURES`]: the
/// organizer's device that checks join requests.
pub const FOUNDER: &str = "founder.key";
/// The key of the fixture store: a test key, committed with it on purpose.
pub const STORE_KEY: [u8; 32] = [0x5a; 32];
/// The login challenge the relay's frame target checks `Auth` against.
pub const CHALLENGE: [u8; 32] = [7; 32];
/// One-time prekeys in the fixture store: few, so it stays small.
pub const ONE_TIME_PREKEYS: u32 = 4;

/// A fixture's bytes.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(FIXTURES).join(name);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "fixture {} missing ({e}): run `cargo run --manifest-path fuzz/Cargo.toml --example seeds`",
            path.display()
        )
    })
}

/// The options the fixture store is made and opened with.
pub fn options() -> AccountOptions {
    AccountOptions::simulated(ONE_TIME_PREKEYS, 2048, 0)
}

/// The receiving phone, opened from a fresh copy of the fixture store in a
/// directory of its own (`$TMPDIR/rankfile-fuzz-<pid>-<what>`). Directories
/// left by earlier processes that are gone are removed first.
pub fn receiver(what: &str) -> Account {
    sweep_stale_dirs();
    let dir = std::env::temp_dir().join(format!("rankfile-fuzz-{}-{what}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temporary directory");
    let path = dir.join(RECEIVER_STORE);
    std::fs::write(&path, fixture(RECEIVER_STORE)).expect("copy the fixture store");
    Account::open_with(&path, &DatabaseKey::new(STORE_KEY), &options())
        .expect("the fixture store opens")
}

/// The committee's log: its genesis and one open invite.
pub fn committee() -> CommitteeLog {
    let entries = [GENESIS, INVITE]
        .map(|name| SignedEntry::decode(&fixture(name)).expect("fixture entry decodes"));
    CommitteeLog::from_entries(entries).expect("fixture entries verify")
}

/// The founder, the committee's organizer.
pub fn founder() -> IdentityKeyPair {
    IdentityKeyPair::try_from(fixture(FOUNDER).as_slice()).expect("fixture key")
}

fn sweep_stale_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("rankfile-fuzz-")
            .and_then(|rest| rest.split('-').next())
        else {
            continue;
        };
        if !PathBuf::from("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}
