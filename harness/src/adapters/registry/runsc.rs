//! gVisor's runsc: an OCI runtime with a kernel of its own in user space (the Sentry).

use super::{docker_defaults, Kind, Runtime};

pub static RUNTIME: Runtime = Runtime {
    name: "runsc",
    package: "runsc",
    binary: "/usr/bin/runsc",
    helpers: &[],
    kind: Kind::Oci {
        global_args: &["--network=none", "--platform=ptrace", "--ignore-cgroups"],
        sandbox_kernel: Some((
            "gVisor Sentry",
            "a kernel in user space between the payload and Linux: one item, it cannot be \
split into parts nor taken out",
        )),
        last_cap: Some("CAP_AUDIT_READ"),
        preserve_fds: false,
    },
    startup_s: 40,
    default: || docker_defaults("runsc"),
    description: "gVisor's runsc (platform ptrace, no network, no cgroups) with the OCI \
config of `docker run`'s defaults: the payload's syscalls go to the Sentry, a kernel in user \
space, not to Linux. Attribution counts the Sentry as one item that cannot be split nor taken \
out: a block that holds with every other candidate item out reads `blocked: gVisor Sentry`.",
};
