//! Relay load benchmark.
fn main() {}
