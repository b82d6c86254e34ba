//! new-session (setsid: the payload has no controlling terminal, so TIOCSTI cannot reach the
//! caller's terminal), the runtime-owned terminal of `--tty`, the caller's controlling terminal
//! handed in by the harness, and the runtime's own hygiene: die with the parent, not dumpable.

use crate::layer::Layer;
use crate::step::{Op, Step};
use std::os::fd::RawFd;

/// Die with the parent (re-armed after every credential change, which clears it).
pub(crate) fn die_with_parent(parent: libc::pid_t) -> Step {
    Step::new(
        None,
        "prctl(PR_SET_PDEATHSIG, SIGKILL)",
        Op::DieWithParent { parent },
    )
}

/// Runtime helpers cannot be ptraced or have their memory read by the payload.
pub(crate) fn not_dumpable() -> Step {
    Step::new(None, "prctl(PR_SET_DUMPABLE, 0)", Op::NotDumpable)
}

/// Why the sandbox must not start on a host whose `fs.suid_dumpable` is `setting`, if it must
/// not. The kernel resets a process's dumpable flag to that setting at every change of its
/// uids or gids (commit_creds), so with 1 ("debug", documented as insecure) each setresuid or
/// setresgid of the chain leaves the runtime's process dumpable until its next not-dumpable
/// step. In that moment the owner of its user namespace (the host's uid 0, any process of it,
/// whatever capabilities it lacks) or a process of the ids it switched to passes the ptrace
/// access check: an attacker review read the host's files through /proc/PID/root of a held
/// supervisor and opened /proc/PID/mem of a rootless one. No order of steps closes that, so the
/// runtime refuses; 0 (the default) and 2 set the flag to not dumpable and to root-only, and a
/// chain without a uid or gid change (`none`, `docker-default`) is unaffected.
pub(crate) fn suid_dumpable_refusal(steps: &[Step], setting: Option<u32>) -> Option<String> {
    if setting != Some(1) {
        return None;
    }
    let changes: Vec<&str> = steps
        .iter()
        .filter(|s| matches!(s.op, Op::SetResGid(_) | Op::SetResUid(_)))
        .map(|s| s.call.as_str())
        .collect();
    if changes.is_empty() {
        return None;
    }
    Some(format!(
        "fs.suid_dumpable is 1: every uid or gid change of this sandbox's setup ({}) would leave \
         the runtime's process dumpable until its next step, open to ptrace from the host's root \
         or the sandbox's ids; set it to 0 (the default) or 2 (sysctl fs.suid_dumpable=0)",
        changes.join(", ")
    ))
}

/// The host's `fs.suid_dumpable`, None when it cannot be read.
pub(crate) fn host_suid_dumpable() -> Option<u32> {
    std::fs::read_to_string("/proc/sys/fs/suid_dumpable")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Rootless started by root, before the drop: a session of our own, so the unprivileged process
/// is no member of the caller's session nor has its terminal (the caller's terminal, if handed
/// in, stays the payload's stdin but is no controlling terminal).
pub(crate) fn leave_callers_session() -> Step {
    Step::new(
        None,
        "setsid() (leave the caller's session before dropping to the outside user)",
        Op::Setsid,
    )
}

/// The runtime's own close-on-exec descriptors are closed before anything else runs in the
/// supervisor (`keep`: the runtime pty's slave the payload needs later).
pub(crate) fn close_runtime_fds(keep: Vec<RawFd>) -> Step {
    Step::new(
        None,
        "close the runtime's close-on-exec descriptors",
        Op::CloseRuntimeFds { keep },
    )
}

/// Before any layer: make the caller's terminal our stdin and controlling terminal.
pub(crate) fn adopt_controlling_tty(fd: RawFd) -> Vec<Step> {
    vec![
        Step::new(
            None,
            "setsid() (to adopt the caller's terminal)",
            Op::Setsid,
        ),
        Step::new(
            None,
            format!("ioctl({fd}, TIOCSCTTY, 0)"),
            Op::SetControllingTty { fd },
        ),
        Step::new(None, format!("dup2({fd}, 0)"), Op::Dup2 { from: fd, to: 0 }),
    ]
}

/// The payload's session. With `pty` (the runtime's own terminal) the payload gets a new session
/// whose controlling terminal is that pty, whatever the layer says: the pty is the isolation.
pub(crate) fn steps(new_session: bool, pty: Option<RawFd>) -> Vec<Step> {
    let l = Some(Layer::NewSession);
    match pty {
        Some(fd) => vec![
            Step::new(l.filter(|_| new_session), "setsid()", Op::Setsid),
            Step::new(
                None,
                format!("ioctl({fd}, TIOCSCTTY, 0) (runtime pty)"),
                Op::SetControllingTty { fd },
            ),
        ],
        None if new_session => vec![Step::new(l, "setsid()", Op::Setsid)],
        None => Vec::new(),
    }
}
