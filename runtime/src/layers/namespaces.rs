//! pid-ns, mount-ns (the unshare; the new root is mount.rs), net-ns, ipc-ns, uts-ns, cgroup-ns:
//! one unshare per layer so a failure names its layer. They are created by the supervisor; the
//! new pid namespace takes effect for the payload it forks (the payload is its pid 1).

use crate::config::SandboxConfig;
use crate::layer::Layer;
use crate::step::{cstr, Op, Step};
use nix::sched::CloneFlags;

const NAMESPACES: [(Layer, CloneFlags, &str); 6] = [
    (Layer::PidNs, CloneFlags::CLONE_NEWPID, "CLONE_NEWPID"),
    (Layer::MountNs, CloneFlags::CLONE_NEWNS, "CLONE_NEWNS"),
    (Layer::NetNs, CloneFlags::CLONE_NEWNET, "CLONE_NEWNET"),
    (Layer::IpcNs, CloneFlags::CLONE_NEWIPC, "CLONE_NEWIPC"),
    (Layer::UtsNs, CloneFlags::CLONE_NEWUTS, "CLONE_NEWUTS"),
    (
        Layer::CgroupNs,
        CloneFlags::CLONE_NEWCGROUP,
        "CLONE_NEWCGROUP",
    ),
];

pub(crate) fn steps(cfg: &SandboxConfig) -> Vec<Step> {
    NAMESPACES
        .iter()
        .filter(|(l, _, _)| cfg.enabled(*l))
        .map(|(l, f, name)| Step::new(Some(*l), format!("unshare({name})"), Op::Unshare(*f)))
        .collect()
}

/// uts-ns: the sandbox's own hostname.
pub(crate) fn hostname(cfg: &SandboxConfig) -> Vec<Step> {
    vec![Step::new(
        Some(Layer::UtsNs),
        format!("sethostname({:?})", cfg.hostname),
        Op::SetHostname(cstr(cfg.hostname.as_str())),
    )]
}
