//! uid: run the payload as an unprivileged uid/gid with no supplementary groups (and, in a user
//! namespace, setgroups denied by the id-map step): outside it is `[user] base + uid`, an id of
//! the sandbox's own range that no account uses (with user-ns on, the switch is to the inside
//! `uid`, which the map sends there). Also the rootless start: drop to that outside id before any
//! namespace is created. The switch is read back before execve (`verify`).

use crate::layer::Layer;
use crate::layers::user_ns::IdPlan;
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

/// Rootless started by an unprivileged user: the self-mapping writes /proc/self/uid_map as that
/// user, which needs /proc/self owned by it: a uid change made by the caller before it started us
/// leaves the process non-dumpable and /proc/self root-owned. The process holds nothing but that
/// user's own resources; not dumpable again right after the maps are written (plan.rs). Never
/// used when root starts the sandbox: the parent writes the maps then.
pub(crate) fn dumpable_for_self_map() -> Step {
    Step::new(
        None,
        "prctl(PR_SET_DUMPABLE, 1) (to write own id maps)",
        Op::Dumpable,
    )
}

/// Just before execve: the switch took effect (a seccomp rule answering 0 makes setresuid a
/// silent no-op).
pub(crate) fn verify(uid: u32, gid: u32) -> Step {
    Step::new(
        Some(Layer::Uid),
        format!(
            "getresuid/getresgid/getgroups: all {uid}/{gid}, no groups (checked before execve)"
        ),
        Op::VerifyIds { uid, gid },
    )
}

/// Rootless started by root: become the unprivileged outside user before creating anything
/// (the caller's descriptors are closed and its session left before this, plan.rs).
pub(crate) fn become_unprivileged(ids: &IdPlan) -> Vec<Step> {
    let (u, g) = (ids.outside_uid, ids.outside_gid);
    vec![
        Step::new(None, "setgroups(0, [])", Op::SetGroupsEmpty),
        Step::new(None, format!("setresgid({g}, {g}, {g})"), Op::SetResGid(g)),
        Step::new(None, format!("setresuid({u}, {u}, {u})"), Op::SetResUid(u)),
    ]
}
