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
