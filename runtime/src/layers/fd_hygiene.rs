//! fd-hygiene: only 0, 1 and 2 reach the payload (close_range, with a close-by-number fallback
//! before Linux 5.9), and the working directory must lie inside the sandbox root.

use crate::layer::Layer;
use crate::step::{Op, Step};

pub(crate) fn steps() -> Vec<Step> {
    let l = Some(Layer::FdHygiene);
    vec![
        Step::new(l, "close_range(3, ~0)", Op::CloseFrom { keep: -1 }),
        Step::new(
            l,
            "getcwd() (working directory inside the root)",
            Op::CheckCwd,
        ),
    ]
}
