//! The guest's PID 1.
fn main() {}
