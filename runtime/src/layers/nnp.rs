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
