//! breakout-harness as a library: the pieces the `breakout` binary and the escape suite (tests/)
//! share: the result model, the run plan, attribution by ablation, the regression gate.

pub mod attribution;
pub mod gate;
pub mod model;
