//! runc, Docker's own OCI runtime, with the same config as crun.

use super::{docker_defaults, Kind, Runtime};

pub static RUNTIME: Runtime = Runtime {
    name: "runc",
    package: "runc",
    binary: "/usr/sbin/runc",
    helpers: &[],
    kind: Kind::Oci {
        global_args: &[],
        sandbox_kernel: None,
        last_cap: None,
        preserve_fds: true,
    },
    startup_s: 0,
    default: || docker_defaults("runc"),
    description: "runc (Docker's own runtime) with the same OCI config as `crun`: what \
`docker run` asks for by default.",
};
