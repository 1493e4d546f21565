//! Panic wipe: destroy a database's files beyond recovery.
//!
//! The files are SQLCipher ciphertext already, so what matters is that the key
//! cannot be had and that no readable page survives. Each file (database, WAL,
//! shared memory, rollback journal) is overwritten in place with random bytes,
//! flushed to disk, truncated and unlinked. The caller then deletes its copy of
//! the database key from the OS keystore: on flash storage an overwrite may land
//! on fresh cells, and it is the lost key that makes old cells unreadable.

use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use rand::RngCore;

use crate::error::Result;

/// Bytes written per overwrite call.
const CHUNK: usize = 64 * 1024;

pub(super) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Overwrites, syncs and removes the database at `path` and its companions.
pub(super) fn destroy_database_files(path: &Path) -> Result<()> {
    for suffix in ["-wal", "-shm", "-journal", ""] {
        let file = with_suffix(path, suffix);
        if file.exists() {
            overwrite_and_remove(&file)?;
        }
    }
    if let Some(dir) = path.parent() {
        // Make the unlinks durable too.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

fn overwrite_and_remove(file: &Path) -> Result<()> {
    let mut f = OpenOptions::new().write(true).open(file)?;
    let len = f.metadata()?.len();
    let mut rng = rand::rng();
    let mut buf = vec![0u8; CHUNK];
    f.seek(SeekFrom::Start(0))?;
    let mut left = len;
    while left > 0 {
        let n = usize::try_from(left.min(CHUNK as u64)).unwrap_or(CHUNK);
        rng.fill_bytes(&mut buf[..n]);
        f.write_all(&buf[..n])?;
        left -= n as u64;
    }
    f.sync_all()?;
    f.set_len(0)?;
    f.sync_all()?;
    drop(f);
    std::fs::remove_file(file)?;
    Ok(())
}
