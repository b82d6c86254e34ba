//! breakout-harness as a library: the pieces the `breakout` binary and the escape suite (tests/)
//! share: the result model, the run plan, attribution by ablation, the regression gate, the
//! environment block, and the host side of a run in the VM.

pub mod adapters;
pub mod attribution;
pub mod environment;
pub mod exit_codes;
pub mod explain;
pub mod file_probes;
pub mod gate;
pub mod lab;
pub mod list;
pub mod model;
pub mod plan;
pub mod report;
pub mod run;
pub mod svg;
pub mod workloads;
