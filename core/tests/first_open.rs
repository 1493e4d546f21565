//! The first stores a process opens, opened at the same moment from several
//! threads, must all open.
//!
//! SQLite marks itself initialized before it runs SQLCipher's process-wide
//! set-up, so a connection keyed by another thread inside that window used to
//! fail with SQLCipher's "error with PRAGMA key". Only a fresh process has the
//! window, so each round runs in a child process: this test binary again.

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Barrier};

use rankfile_core::{DatabaseKey, Store};

/// Set in the child: the directory to create its stores in.
const CHILD_DIR: &str = "RANKFILE_FIRST_OPEN_DIR";
/// Fresh processes started; each one opens `THREADS` stores at once.
const ROUNDS: usize = 60;
const THREADS: usize = 8;

#[test]
fn stores_opened_at_once_in_a_fresh_process_all_open() {
    if let Some(dir) = std::env::var_os(CHILD_DIR) {
        open_at_once(Path::new(&dir));
        return;
    }
    let exe = std::env::current_exe().expect("test binary");
    for round in 0..ROUNDS {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = Command::new(&exe)
            .args([
                "--exact",
                "stores_opened_at_once_in_a_fresh_process_all_open",
                "--test-threads=1",
            ])
            .env(CHILD_DIR, dir.path())
            .output()
            .expect("child runs");
        assert!(
            out.status.success(),
            "round {round}: a store failed to open:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let made = std::fs::read_dir(dir.path())
            .expect("child's dir")
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".db"))
            })
            .count();
        assert_eq!(made, THREADS, "round {round}: the child made every store");
    }
}

/// The child's whole work: `THREADS` threads released together, each creating
/// one store (the first SQLite calls this process makes).
fn open_at_once(dir: &Path) {
    let start = Arc::new(Barrier::new(THREADS));
    let threads: Vec<_> = (0..THREADS)
        .map(|i| {
            let start = Arc::clone(&start);
            let path = dir.join(format!("{i}.db"));
            std::thread::spawn(move || {
                let key = DatabaseKey::generate();
                start.wait();
                Store::create(&path, &key).map(drop)
            })
        })
        .collect();
    for (i, t) in threads.into_iter().enumerate() {
        if let Err(e) = t.join().expect("thread") {
            panic!("store {i}: {e}");
        }
    }
}
