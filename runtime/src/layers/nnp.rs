//! no-new-privs: execve can no longer grant privileges (setuid bits, file capabilities).

use crate::layer::Layer;
use crate::step::{Op, Step};

pub(crate) fn steps() -> Vec<Step> {
    vec![Step::new(
        Some(Layer::NoNewPrivs),
        "prctl(PR_SET_NO_NEW_PRIVS, 1)",
        Op::NoNewPrivs,
    )]
}

/// Just before execve: the bit is really set (a seccomp rule answering 0 makes the prctl a
/// silent no-op).
pub(crate) fn verify() -> Step {
    Step::new(
        Some(Layer::NoNewPrivs),
        "prctl(PR_GET_NO_NEW_PRIVS) = 1 (checked before execve)",
        Op::VerifyNoNewPrivs,
    )
}
