//! The disk reserve: free space on the data directory's filesystem, looked at
//! no more than once a second, so new work (sends, uploads, registrations)
//! is refused with INSUFFICIENT_STORAGE while commits can still succeed,
//! instead of the store's commits failing halfway through a disk that is full.
//! Acknowledgements, fetches and deletions, which free space, always go.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rankfile_proto::v1::error::Code;

use crate::frame::Refusal;

/// How often free space is looked at again: a `statvfs` is cheap, but not
/// worth making on every send; in a second a relay writes far less than any
/// sensible reserve.
pub const DISK_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// Whether the data directory's filesystem has more than the reserve free.
#[derive(Debug)]
pub struct DiskReserve {
    dir: PathBuf,
    reserve: u64,
    base: Instant,
    /// Milliseconds after `base` of the last look, plus one (0: never).
    checked: AtomicU64,
    room: AtomicBool,
}

impl DiskReserve {
    /// Keeps `reserve` bytes free on the filesystem holding `dir`.
    pub fn new(dir: PathBuf, reserve: u64) -> Self {
        DiskReserve {
            dir,
            reserve,
            base: Instant::now(),
            checked: AtomicU64::new(0),
            room: AtomicBool::new(true),
        }
    }

    /// Refuses new work while free space is at or below the reserve.
    pub fn check(&self) -> Result<(), Refusal> {
        if self.reserve == 0 {
            return Ok(());
        }
        let now = u64::try_from(self.base.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        let last = self.checked.load(Ordering::Relaxed);
        let interval = u64::try_from(DISK_CHECK_INTERVAL.as_millis()).unwrap_or(u64::MAX);
        // One caller per interval looks; the others use what it saw.
        if (last == 0 || now.saturating_sub(last) >= interval)
            && self
                .checked
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let room = match free_bytes(&self.dir) {
                Some(free) => free > self.reserve,
                // Unknown: do not refuse on a guess; the commits will say.
                None => true,
            };
            if !room {
                tracing::warn!("disk reserve reached: refusing new work");
            }
            self.room.store(room, Ordering::Relaxed);
        }
        if self.room.load(Ordering::Relaxed) {
            Ok(())
        } else {
            Err(Refusal::new(
                Code::InsufficientStorage,
                "the relay is low on storage",
            ))
        }
    }
}

/// Bytes an unprivileged process may still write on `dir`'s filesystem.
fn free_bytes(dir: &std::path::Path) -> Option<u64> {
    let s = rustix::fs::statvfs(dir).ok()?;
    Some(s.f_bavail.saturating_mul(s.f_frsize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_larger_than_the_disk_refuses_and_zero_never_does() {
        let dir = tempfile::tempdir().expect("tempdir");
        let free = free_bytes(dir.path()).expect("statvfs");
        let full = DiskReserve::new(dir.path().into(), free.saturating_mul(2));
        assert_eq!(
            full.check().map_err(|r| r.code),
            Err(Code::InsufficientStorage)
        );
        let off = DiskReserve::new(dir.path().into(), 0);
        assert!(off.check().is_ok());
        let small = DiskReserve::new(dir.path().into(), 1);
        assert!(small.check().is_ok());
    }
}
