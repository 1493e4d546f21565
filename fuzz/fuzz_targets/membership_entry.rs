//! Fuzz target: a membership-log entry (`SignedCommitteeEntry`) as a
//! committee update carries it: decoded, parsed, and inserted into the
//! committee's log, which checks the signature, the parents and the author's
//! right to make the change.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rankfile_core::committee::{CommitteeLog, SignedEntry};
use std::sync::OnceLock;

static LOG: OnceLock<CommitteeLog> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    if let Ok(signed) = SignedEntry::decode(data) {
        let _ = signed.parse();
    }
    let mut log = LOG.get_or_init(rankfile_fuzz::committee).clone();
    let heads = log.heads();
    let state = log.state().clone();
    if log.insert(data).is_err() {
        // An entry refused as an error is never stored.
        assert!(heads == log.heads(), "a refused entry changed the heads");
        assert_eq!(&state, log.state(), "a refused entry changed the state");
    }
});
