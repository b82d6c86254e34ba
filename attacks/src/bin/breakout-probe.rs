//! `breakout-probe ID ARGS...`: the inside half of a probe.
fn main() {}
