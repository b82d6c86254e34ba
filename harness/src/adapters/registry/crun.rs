//! crun: an OCI runtime, run with the config `docker run` asks for by default.

use super::{docker_defaults, Kind, Runtime};

pub static RUNTIME: Runtime = Runtime {
    name: "crun",
    package: "crun",
    binary: "/usr/bin/crun",
    helpers: &[],
    kind: Kind::Oci {
        global_args: &[],
        sandbox_kernel: None,
        last_cap: None,
        preserve_fds: true,
    },
    startup_s: 0,
    default: || docker_defaults("crun"),
    description: "crun with the OCI config `docker run` asks for by default: pid, network, \
ipc, uts, mount and cgroup namespaces (no user namespace), root with Docker's 14 default \
capabilities, Docker's seccomp profile, masked and read-only /proc and /sys paths, the device \
allowlist, a read-only bind of / as the root filesystem with /srv hidden; only descriptors 0, 1, \
2 passed on; no no_new_privs, no limits.",
};
