//! util-linux unshare: new namespaces only; its option syntax below.

use super::{argv, grouped, opt, setup, Kind, Runtime, Syntax};
use crate::adapters::ExternalSpec;
use breakout_attacks::Layer;

pub static RUNTIME: Runtime = Runtime {
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
    cap_options: None,
};
