//! firejail: a wrapper whose default profile is most of what it does; its option syntax below.

use super::{argv, opt, setup, Kind, Runtime, Syntax, WrapperDefault};
use crate::adapters::ExternalSpec;
use breakout_attacks::Layer;

pub static RUNTIME: Runtime = Runtime {
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
    cap_options: None,
};
