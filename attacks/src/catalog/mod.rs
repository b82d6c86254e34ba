//! The catalog probes (issue 4, rows of probe-catalog.md beyond the owner's seven).
//!
//! OWNERSHIP: this file now belongs to the helper "attacks-catalog". attacks-core created it as a
//! placeholder so that `lib.rs` (which declares `pub mod catalog;` and adds these probes to the
//! registry in `all_probes()`) builds. Keep the signature of `probes()`.
//!
//! Probe ids taken by attacks-core (in attacks/src/probes/), do not take these:
//! ptrace-outside, ptrace-same-uid, scm-rights-import, scm-rights-abstract, signal-outside,
//! signal-same-uid, setns-outside, fork-bomb, memory-hog, port-bind, leaked-fds, tiocsti,
//! setuid-gain, sysv-ipc, host-loopback, hostname, cgroup-path-leak, fd-exhaustion
//!
//! Probe ids taken by attacks-catalog (write them here before you start one):

use crate::Probe;

/// The catalog's probes, in a stable order.
pub fn probes() -> Vec<&'static dyn Probe> {
    Vec::new()
}
