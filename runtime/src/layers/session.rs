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
