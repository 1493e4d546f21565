//! Failpoints: named places where a test can make the process die on purpose,
//! to prove what survives a crash (e.g. between decrypting a batch and
//! committing it). Set `RANKFILE_FAILPOINT=<name>`; unset, they do nothing.

use std::sync::OnceLock;

/// Aborts the process at the named point when `RANKFILE_FAILPOINT` names it.
pub(crate) fn failpoint(name: &str) {
    static ARMED: OnceLock<Option<String>> = OnceLock::new();
    let armed = ARMED.get_or_init(|| std::env::var("RANKFILE_FAILPOINT").ok());
    if armed.as_deref() == Some(name) {
        // No unwinding, no destructors, no commit: as if the phone died here.
        std::process::abort();
    }
}
