//! The one list of external runtimes breakout knows: short name, Debian package, binary, how it
//! is driven (an OCI runtime, a wrapper whose option syntax is given here, podman), its default
//! configuration and description. Adding a runtime is one entry here.

use super::cmd::{Opt, Syntax, WrapperDefault};
use super::ExternalSpec;
use crate::model::ProfileInfo;
use breakout_attacks::Layer;
use std::path::Path;

pub const PODMAN_BINARY: &str = "/usr/bin/podman";

/// How a runtime is driven.
#[derive(Debug)]
pub enum Kind {
    /// An OCI runtime: `BINARY GLOBAL_ARGS run --bundle DIR ID`, with `root_flag DIR` when the
    /// runtime needs its state directory named.
    Oci {
        global_args: &'static [&'static str],
        /// A kernel of the runtime's own between the payload and Linux (gVisor's Sentry), with
        /// what reports say of it: one item whatever the config says, which cannot be split
        /// into parts nor taken out.
        sandbox_kernel: Option<(&'static str, &'static str)>,
        /// The last capability the runtime knows, when it knows fewer than the kernel: a
        /// config naming a later one does not start (runsc 20221219 stops at CAP_AUDIT_READ and
        /// fails on CAP_PERFMON, CAP_BPF, CAP_CHECKPOINT_RESTORE).
        last_cap: Option<&'static str>,
    },
    /// A wrapper that takes the command at its end; `syntax` groups its options with their
    /// arguments and says which layer each stands for.
    Wrapper { syntax: &'static Syntax },
    /// podman run --rootfs.
    Podman,
}

/// One external runtime.
#[derive(Debug)]
pub struct Runtime {
    /// The short name on the command line (`crun`) and the prefix of `oci+NAME:` for OCI ones.
    pub name: &'static str,
    /// The Debian package that installs it.
    pub package: &'static str,
    pub binary: &'static str,
    /// Further files and directories it needs in the guest, at the same path: helpers it starts
    /// and the configuration its package installs (podman's /etc/containers, firejail's
    /// profiles). They come from the host's installed package.
    pub helpers: &'static [&'static str],
    pub kind: Kind,
    /// Seconds a launch may take beyond the probe's timeout: the runtime's own start-up, which
    /// under TCG is most of a launch for podman (about 16 s alone, over 50 s with another launch
    /// beside it) and runsc (about 20 s).
    pub startup_s: u64,
    /// What the short name runs.
    pub default: fn() -> ExternalSpec,
    pub description: &'static str,
}

impl Runtime {
    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn binary(&self) -> &'static Path {
        Path::new(self.binary)
    }

    pub fn description(&self) -> &'static str {
        self.description
    }

    /// The configuration the short name stands for.
    pub fn spec(&self) -> ExternalSpec {
        (self.default)()
    }

    pub fn profile_info(&self) -> ProfileInfo {
        let mut info = self.spec().profile_info(self.name);
        info.runtime = self.name.to_string();
        info
    }

    /// The launch's time limit: the probe's timeout and the runtime's start-up.
    pub fn launch_timeout(&self, probe_timeout: std::time::Duration) -> std::time::Duration {
        probe_timeout + std::time::Duration::from_secs(self.startup_s)
    }

    pub fn syntax(&self) -> Option<&'static Syntax> {
        match self.kind {
            Kind::Wrapper { syntax } => Some(syntax),
            _ => None,
        }
    }
}

pub fn by_name(name: &str) -> Option<&'static Runtime> {
    RUNTIMES.iter().find(|r| r.name == name)
}

/// The runtime whose binary this is (by file name: `bwrap`, `/usr/bin/bwrap`).
pub fn for_binary(program: &str) -> Option<&'static Runtime> {
    let base = Path::new(program).file_name()?.to_str()?;
    RUNTIMES
        .iter()
        .find(|r| Path::new(r.binary).file_name().and_then(|n| n.to_str()) == Some(base))
}

fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|s| s.to_string()).collect()
}

fn docker_defaults(runtime: &str) -> ExternalSpec {
    ExternalSpec::Oci {
        runtime: runtime.to_string(),
        source: "Docker's defaults".to_string(),
        config: super::crun::config(&[], None),
    }
}

pub static RUNTIMES: &[Runtime] = &[
    Runtime {
        name: "bwrap",
        package: "bubblewrap",
        binary: "/usr/bin/bwrap",
        helpers: &[],
        kind: Kind::Wrapper { syntax: &BWRAP },
        startup_s: 0,
        default: || ExternalSpec::Cmd {
            argv: argv(&[
                "/usr/bin/bwrap",
                "--unshare-all",
                "--die-with-parent",
                "--new-session",
                "--ro-bind-try",
                "/usr",
                "/usr",
                "--ro-bind-try",
                "/bin",
                "/bin",
                "--ro-bind-try",
                "/sbin",
                "/sbin",
                "--ro-bind-try",
                "/lib",
                "/lib",
                "--ro-bind-try",
                "/lib64",
                "/lib64",
                "--ro-bind-try",
                "/etc",
                "/etc",
                "--proc",
                "/proc",
                "--dev",
                "/dev",
                "--tmpfs",
                "/tmp",
            ]),
        },
        description: "bubblewrap --unshare-all --die-with-parent --new-session, root of read-only \
binds of /usr /bin /sbin /lib /lib64 /etc, fresh /proc, /dev and /tmp. As root it keeps all \
capabilities inside its user namespace (uid 0 mapped to 0), sets no_new_privs, makes /proc/sys \
read-only but masks nothing else, and passes inherited descriptors on; no seccomp, no cgroup or \
rlimits.",
    },
    Runtime {
        name: "crun",
        package: "crun",
        binary: "/usr/bin/crun",
        helpers: &[],
        kind: Kind::Oci {
            global_args: &[],
            sandbox_kernel: None,
            last_cap: None,
        },
        startup_s: 0,
        default: || docker_defaults("crun"),
        description: "crun with the OCI config `docker run` asks for by default: pid, network, \
ipc, uts, mount and cgroup namespaces (no user namespace), root with Docker's 14 default \
capabilities, Docker's seccomp profile, masked and read-only /proc and /sys paths, the device \
allowlist, a read-only bind of / as the root filesystem with /srv hidden; only descriptors 0, 1, \
2 passed on; no no_new_privs, no limits.",
    },
    Runtime {
        name: "runc",
        package: "runc",
        binary: "/usr/sbin/runc",
        helpers: &[],
        kind: Kind::Oci {
            global_args: &[],
            sandbox_kernel: None,
            last_cap: None,
        },
        startup_s: 0,
        default: || docker_defaults("runc"),
        description: "runc (Docker's own runtime) with the same OCI config as `crun`: what \
`docker run` asks for by default.",
    },
    Runtime {
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
        },
        startup_s: 40,
        default: || docker_defaults("runsc"),
        description: "gVisor's runsc (platform ptrace, no network, no cgroups) with the OCI \
config of `docker run`'s defaults: the payload's syscalls go to the Sentry, a kernel in user \
space, not to Linux. Attribution counts the Sentry as one item that cannot be split nor taken \
out: a block that holds with every other candidate item out reads `blocked: gVisor Sentry`.",
    },
    Runtime {
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
    },
    Runtime {
        name: "firejail",
        package: "firejail",
        binary: "/usr/bin/firejail",
        // Its profiles and firejail.config, the helpers it starts (fseccomp, fcopy, ...) and
        // the file it reads UID_MIN from.
        helpers: &[
            "/etc/firejail",
            "/usr/lib/x86_64-linux-gnu/firejail",
            "/etc/login.defs",
        ],
        kind: Kind::Wrapper { syntax: &FIREJAIL },
        startup_s: 0,
        default: || ExternalSpec::Cmd {
            argv: argv(&["/usr/bin/firejail", "--quiet"]),
        },
        description: "firejail with its default profile (as root: seccomp, capabilities \
dropped, no_new_privs, private /dev and /tmp where the profile says so).",
    },
    Runtime {
        name: "unshare",
        package: "util-linux",
        binary: "/usr/bin/unshare",
        helpers: &[],
        kind: Kind::Wrapper { syntax: &UNSHARE },
        startup_s: 0,
        default: || ExternalSpec::Cmd {
            argv: argv(&[
                "/usr/bin/unshare",
                "--user",
                "--map-root-user",
                "--pid",
                "--fork",
                "--kill-child",
                "--mount",
                "--mount-proc",
                "--net",
                "--ipc",
                "--uts",
                "--cgroup",
                "--",
            ]),
        },
        description: "unshare --user --map-root-user --pid --fork --kill-child --mount \
--mount-proc --net --ipc --uts --cgroup: new namespaces only. The mount namespace has no \
pivot_root, so the outside's files stay reachable; root keeps its capabilities inside the user \
namespace; no seccomp, no_new_privs, new session or descriptor closing.",
    },
];

const fn opt(name: &'static str, args: usize, layer: Option<Layer>) -> Opt {
    Opt {
        name,
        args,
        layer,
        ablate: layer.is_some(),
        group: None,
    }
}

/// An option that is set-up, not a protection: kept in every run, never listed.
const fn setup(name: &'static str, args: usize) -> Opt {
    Opt {
        name,
        args,
        layer: None,
        ablate: false,
        group: None,
    }
}

/// Options that only make sense together are ablated together, named by the group.
const fn grouped(name: &'static str, args: usize, layer: Layer, group: &'static str) -> Opt {
    Opt {
        name,
        args,
        layer: Some(layer),
        ablate: true,
        group: Some(group),
    }
}

/// bubblewrap 0.8's options (bwrap(1), `bwrap --help`) with their argument counts, and 0.9's
/// --argv0 and --level-prefix.
static BWRAP: Syntax = Syntax {
    options: &[
        opt("--unshare-user", 0, Some(Layer::UserNs)),
        opt("--unshare-user-try", 0, Some(Layer::UserNs)),
        opt("--unshare-ipc", 0, Some(Layer::IpcNs)),
        opt("--unshare-pid", 0, Some(Layer::PidNs)),
        opt("--unshare-net", 0, Some(Layer::NetNs)),
        opt("--unshare-uts", 0, Some(Layer::UtsNs)),
        opt("--unshare-cgroup", 0, Some(Layer::CgroupNs)),
        opt("--unshare-cgroup-try", 0, Some(Layer::CgroupNs)),
        opt("--new-session", 0, Some(Layer::NewSession)),
        opt("--cap-drop", 1, Some(Layer::Caps)),
        opt("--uid", 1, Some(Layer::Uid)),
        opt("--gid", 1, Some(Layer::Uid)),
        opt("--remount-ro", 1, Some(Layer::FsHardening)),
        opt("--disable-userns", 0, Some(Layer::UserNs)),
        opt("--assert-userns-disabled", 0, Some(Layer::UserNs)),
        Opt {
            name: "--seccomp",
            args: 1,
            layer: Some(Layer::Seccomp),
            ablate: false,
            group: None,
        },
        Opt {
            name: "--add-seccomp-fd",
            args: 1,
            layer: Some(Layer::Seccomp),
            ablate: false,
            group: None,
        },
        setup("--unshare-all", 0),
        setup("--share-net", 0),
        setup("--cap-add", 1),
        setup("--args", 1),
        setup("--argv0", 1),
        setup("--userns", 1),
        setup("--userns2", 1),
        setup("--pidns", 1),
        setup("--hostname", 1),
        setup("--chdir", 1),
        setup("--clearenv", 0),
        setup("--setenv", 2),
        setup("--unsetenv", 1),
        setup("--lock-file", 1),
        setup("--sync-fd", 1),
        setup("--die-with-parent", 0),
        setup("--as-pid-1", 0),
        setup("--exec-label", 1),
        setup("--file-label", 1),
        setup("--bind", 2),
        setup("--bind-try", 2),
        setup("--dev-bind", 2),
        setup("--dev-bind-try", 2),
        setup("--ro-bind", 2),
        setup("--ro-bind-try", 2),
        setup("--proc", 1),
        setup("--dev", 1),
        setup("--tmpfs", 1),
        setup("--mqueue", 1),
        setup("--dir", 1),
        setup("--file", 2),
        setup("--bind-data", 2),
        setup("--ro-bind-data", 2),
        setup("--symlink", 2),
        setup("--chmod", 2),
        setup("--perms", 1),
        setup("--size", 1),
        setup("--block-fd", 1),
        setup("--userns-block-fd", 1),
        setup("--info-fd", 1),
        setup("--json-status-fd", 1),
        setup("--level-prefix", 0),
        setup("--bind-fd", 2),
        setup("--ro-bind-fd", 2),
        setup("--help", 0),
        setup("--version", 0),
    ],
    // --unshare-all is every namespace at once: each is ablated on its own by writing the
    // others out.
    expands: &[(
        "--unshare-all",
        &[
            "--unshare-user-try",
            "--unshare-ipc",
            "--unshare-pid",
            "--unshare-net",
            "--unshare-uts",
            "--unshare-cgroup-try",
        ],
    )],
    implicit: &[(
        "no_new_privs (bwrap always sets it)",
        Layer::NoNewPrivs,
        "bwrap has no option to leave it off",
    )],
    end_of_options: Some("--"),
    joined_values: false,
    complete: Some("bubblewrap 0.8"),
    defaults: &[],
};

/// util-linux unshare(1): options that only work together form one item (the user namespace
/// and its mappings; the mount namespace and the /proc it mounts).
static UNSHARE: Syntax = Syntax {
    options: &[
        grouped("--user", 0, Layer::UserNs, "--user"),
        grouped("-U", 0, Layer::UserNs, "--user"),
        grouped("--map-root-user", 0, Layer::UserNs, "--user"),
        grouped("-r", 0, Layer::UserNs, "--user"),
        grouped("--map-current-user", 0, Layer::UserNs, "--user"),
        grouped("--map-user", 1, Layer::UserNs, "--user"),
        grouped("--map-group", 1, Layer::UserNs, "--user"),
        grouped("--setgroups", 1, Layer::UserNs, "--user"),
        grouped("--pid", 0, Layer::PidNs, "--pid"),
        grouped("-p", 0, Layer::PidNs, "--pid"),
        grouped("--mount", 0, Layer::MountNs, "--mount"),
        grouped("-m", 0, Layer::MountNs, "--mount"),
        grouped("--mount-proc", 0, Layer::MountNs, "--mount"),
        grouped("--propagation", 1, Layer::MountNs, "--mount"),
        opt("--net", 0, Some(Layer::NetNs)),
        opt("-n", 0, Some(Layer::NetNs)),
        opt("--ipc", 0, Some(Layer::IpcNs)),
        opt("-i", 0, Some(Layer::IpcNs)),
        opt("--uts", 0, Some(Layer::UtsNs)),
        opt("-u", 0, Some(Layer::UtsNs)),
        opt("--cgroup", 0, Some(Layer::CgroupNs)),
        opt("-C", 0, Some(Layer::CgroupNs)),
        setup("--fork", 0),
        setup("-f", 0),
        setup("--kill-child", 0),
        setup("--time", 0),
        setup("-T", 0),
        setup("--root", 1),
        setup("--wd", 1),
    ],
    expands: &[],
    implicit: &[],
    end_of_options: Some("--"),
    joined_values: true,
    complete: None,
    defaults: &[],
};

/// firejail(1): every option is one word (`--name` or `--name=value`).
static FIREJAIL: Syntax = Syntax {
    options: &[
        opt("--noroot", 0, Some(Layer::UserNs)),
        opt("--caps", 0, Some(Layer::Caps)),
        opt("--caps.drop", 0, Some(Layer::Caps)),
        opt("--caps.keep", 0, Some(Layer::Caps)),
        opt("--seccomp", 0, Some(Layer::Seccomp)),
        opt("--seccomp.drop", 0, Some(Layer::Seccomp)),
        opt("--seccomp.block-secondary", 0, Some(Layer::Seccomp)),
        opt("--memory-deny-write-execute", 0, Some(Layer::Seccomp)),
        opt("--nonewprivs", 0, Some(Layer::NoNewPrivs)),
        opt("--net", 0, Some(Layer::NetNs)),
        opt("--ipc-namespace", 0, Some(Layer::IpcNs)),
        opt("--private", 0, Some(Layer::MountNs)),
        opt("--private-tmp", 0, Some(Layer::MountNs)),
        opt("--private-dev", 0, Some(Layer::MountNs)),
        opt("--read-only", 0, Some(Layer::FsHardening)),
        opt("--rlimit-nofile", 0, Some(Layer::Rlimits)),
        opt("--rlimit-nproc", 0, Some(Layer::Rlimits)),
        opt("--rlimit-as", 0, Some(Layer::Rlimits)),
        opt("--nogroups", 0, Some(Layer::Uid)),
        setup("--quiet", 0),
        setup("--noprofile", 0),
        setup("--profile", 0),
        setup("--whitelist", 0),
        setup("--env", 0),
    ],
    expands: &[],
    implicit: &[(
        "firejail's pid namespace",
        Layer::PidNs,
        "firejail always sandboxes in a pid namespace of its own",
    )],
    end_of_options: Some("--"),
    joined_values: true,
    complete: None,
    // Its default profile (server.profile for root, default.profile otherwise) is most of what
    // firejail does: capabilities, seccomp, no_new_privs, private /dev and /tmp, blacklists.
    defaults: &[WrapperDefault {
        name: "firejail's default profile",
        layer: None,
        off: &["--noprofile"],
        absent_if: &["--noprofile", "--profile"],
    }],
};
