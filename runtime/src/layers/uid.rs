//! uid: run the payload as an unprivileged uid/gid with no supplementary groups (and, in a user
//! namespace, setgroups denied by the id-map step). Also the rootless start: drop to the
//! outside ids before any namespace is created.

use crate::config::SandboxConfig;
use crate::layer::Layer;
use crate::step::{Op, Step};

/// Before the user namespace: clear supplementary groups while still privileged.
pub(crate) fn clear_groups() -> Vec<Step> {
    vec![Step::new(
        Some(Layer::Uid),
        "setgroups(0, [])",
        Op::SetGroupsEmpty,
    )]
}

/// The switch itself (gid first: after setresuid we could no longer change it).
pub(crate) fn switch(uid: u32, gid: u32) -> Vec<Step> {
    let l = Some(Layer::Uid);
    vec![
        Step::new(
            l,
            format!("setresgid({gid}, {gid}, {gid})"),
            Op::SetResGid(gid),
        ),
        Step::new(
            l,
            format!("setresuid({uid}, {uid}, {uid})"),
            Op::SetResUid(uid),
        ),
    ]
}

/// Rootless: the self-mapping writes /proc/self/uid_map as the unprivileged user, which needs
/// /proc/self owned by that user: a uid change (ours, or the caller's before it started us)
/// leaves the process non-dumpable and /proc/self root-owned. Not dumpable again right after the
/// maps are written (plan.rs).
pub(crate) fn dumpable_for_self_map() -> Step {
    Step::new(
        None,
        "prctl(PR_SET_DUMPABLE, 1) (to write own id maps)",
        Op::Dumpable,
    )
}

/// Rootless: become the unprivileged outside user before creating anything.
pub(crate) fn become_unprivileged(cfg: &SandboxConfig) -> Vec<Step> {
    let (u, g) = (cfg.user.uid, cfg.user.gid);
    vec![
        Step::new(None, "setgroups(0, [])", Op::SetGroupsEmpty),
        Step::new(None, format!("setresgid({g}, {g}, {g})"), Op::SetResGid(g)),
        Step::new(None, format!("setresuid({u}, {u}, {u})"), Op::SetResUid(u)),
    ]
}
