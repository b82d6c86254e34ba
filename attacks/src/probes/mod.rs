//! The suite's own probes, one file each: the owner's seven first, then catalog rows taken by
//! attacks-core (see the id lists at the top of `catalog/mod.rs`).

use crate::Probe;

/// The probes of this module, in a stable order.
pub fn probes() -> Vec<&'static dyn Probe> {
    Vec::new()
}
