//! The `rankfile-relay` binary.
fn main() {}
