//! Panic wipe: destroy a store beyond recovery, with no key and no open store.
//!
//! The files are SQLCipher ciphertext already, so what matters first is that
//! the key cannot be had: the unlock material (on the desktop the salt and
//! the key-derivation parameters, on a phone the wrapped key file) goes
//! first, so that a wipe cut short (the phone snatched, the battery pulled)
//! has already made the rest unreadable. Then no readable page may survive:
//! the WAL (which holds recent pages), the shared memory, the rollback
//! journal, then the database. Each file is overwritten in place with random
//! bytes, flushed to disk, truncated and unlinked, and each directory is
//! flushed so the unlinks are durable. On flash storage an overwrite may land
//! on fresh cells; it is the destroyed unlock material (and the key deleted
//! from the OS keystore, the app's part) that makes the old cells useless.
//!
//! A wipe goes on past a file it cannot destroy, destroys all it can, and
//! then reports the first failure.

use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use rand::RngCore;

use crate::error::Result;

/// Bytes written per overwrite call.
const CHUNK: usize = 64 * 1024;

/// The database's companion files, in the order they are destroyed: the WAL
/// first (the newest pages), the database file last.
const DATABASE_SUFFIXES: [&str; 4] = ["-wal", "-shm", "-journal", ""];

pub(super) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Panic wipe of a store that is not open, and need not be openable: no key,
/// no passphrase, a locked or corrupt database all the same. Destroys every
/// file of `unlock_material` first (what turns a passphrase or the keystore
/// into the key: a salt, a parameters file, a wrapped key), then the database
/// at `database` with its WAL, shared memory and journal. Files already gone
/// are skipped. Destroys everything it can before returning the first error.
///
/// An [`Account`](crate::Account) that is open is wiped with
/// [`Account::wipe`](crate::Account::wipe) instead, which closes it first.
pub fn panic_wipe(database: &Path, unlock_material: &[&Path]) -> Result<()> {
    let mut first_error = None;
    let mut dirs: Vec<PathBuf> = Vec::new();
    let files = unlock_material
        .iter()
        .map(|p| p.to_path_buf())
        .chain(DATABASE_SUFFIXES.iter().map(|s| with_suffix(database, s)));
    for file in files {
        if let Err(e) = destroy(&file) {
            first_error.get_or_insert(e);
        }
        if let Some(dir) = file.parent() {
            if !dirs.iter().any(|d| d == dir) {
                dirs.push(dir.to_path_buf());
            }
        }
    }
    for dir in dirs {
        sync_dir(&dir);
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Overwrites, syncs and removes the database at `path` and its companions
/// (the store is closed; its key is the caller's to forget).
pub(super) fn destroy_database_files(path: &Path) -> Result<()> {
    panic_wipe(path, &[])
}

/// Destroys one file if it is there. A link is unlinked, never followed: a
/// wipe must not overwrite a file outside the store.
fn destroy(file: &Path) -> Result<()> {
    let meta = match std::fs::symlink_metadata(file) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    if meta.file_type().is_file() {
        // Still unlinked below if the overwrite fails (say, a read-only
        // file): gone from the directory is better than left in place.
        let overwritten = overwrite(file, meta.len());
        let removed = std::fs::remove_file(file);
        overwritten?;
        removed?;
    } else {
        std::fs::remove_file(file)?;
    }
    Ok(())
}

fn overwrite(file: &Path, len: u64) -> Result<()> {
    let mut f = match OpenOptions::new().write(true).open(file) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            // Our own file made read-only: make it writable and go on.
            let mut perms = std::fs::metadata(file)?.permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            perms.set_readonly(false);
            std::fs::set_permissions(file, perms)?;
            OpenOptions::new().write(true).open(file)?
        }
        Err(e) => return Err(e.into()),
    };
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
    Ok(())
}

/// Makes a directory's unlinks durable. Best effort: not every platform
/// lets a directory be opened and flushed.
fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, bytes: &[u8]) {
        std::fs::write(path, bytes).expect("write");
    }

    /// A locked store (no key at hand) and a corrupt one are wiped alike:
    /// unlock material and every database file are gone.
    #[test]
    fn a_store_nobody_can_open_is_wiped_with_its_unlock_material() {
        let dir = tempfile::tempdir().expect("dir");
        let db = dir.path().join("account.db");
        let salt = dir.path().join("salt");
        let wrapped = dir.path().join("key.wrapped");
        write(&db, b"not a database at all");
        write(&with_suffix(&db, "-wal"), &[0x55; 9000]);
        write(&with_suffix(&db, "-shm"), &[1; 100]);
        write(&salt, &[9; 16]);
        write(&wrapped, &[3; 60]);
        panic_wipe(&db, &[&salt, &wrapped]).expect("wipe");
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert!(left.is_empty(), "left behind: {left:?}");
    }

    #[test]
    fn missing_files_are_skipped_and_links_are_not_followed() {
        let dir = tempfile::tempdir().expect("dir");
        let outside = dir.path().join("outside");
        write(&outside, b"keep me");
        let link = dir.path().join("salt");
        std::os::unix::fs::symlink(&outside, &link).expect("link");
        panic_wipe(
            &dir.path().join("none.db"),
            &[&link, &dir.path().join("gone")],
        )
        .expect("wipe");
        assert!(
            std::fs::symlink_metadata(&link).is_err(),
            "the link is gone"
        );
        assert_eq!(std::fs::read(&outside).expect("read"), b"keep me");
    }

    #[test]
    fn a_read_only_file_is_still_destroyed() {
        let dir = tempfile::tempdir().expect("dir");
        let salt = dir.path().join("salt");
        write(&salt, &[9; 16]);
        let mut perms = std::fs::metadata(&salt).expect("meta").permissions();
        perms.set_readonly(true);
        std::fs::set_permissions(&salt, perms).expect("chmod");
        panic_wipe(&dir.path().join("none.db"), &[&salt]).expect("wipe");
        assert!(!salt.exists());
    }
}
