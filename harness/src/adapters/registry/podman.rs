//! podman run --rootfs with podman's defaults.

use super::{Kind, Runtime, PODMAN_BINARY};
use crate::adapters::ExternalSpec;

pub static RUNTIME: Runtime = Runtime {
    name: "podman",
    package: "podman",
    binary: PODMAN_BINARY,
    helpers: &[
        "/usr/bin/conmon",
        "/usr/bin/crun",
        // containers.conf, seccomp.json (golang-github-containers-common), policy.json,
        // registries.conf (golang-github-containers-image).
        "/etc/containers",
        "/usr/share/containers",
    ],
    kind: Kind::Podman,
    startup_s: 60,
    default: || ExternalSpec::Podman { flags: Vec::new() },
    description: "podman run --rootfs with podman's defaults (seccomp profile, 11 \
capabilities, masked paths, device cgroup, pid, ipc, uts and mount namespaces), the guest's \
root read-only as the root file system, no network, no image registry.",
};
