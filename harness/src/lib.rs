//! breakout-harness: the `breakout` command line and everything under it, as a library the binary
//! and the escape suite (tests/) share.
//!
//! - [`cli`]: one module per verb, arguments and printing only;
//! - [`suite`]: the engine: the run plan, the host side of a run, the orchestrator in the guest,
//!   the launcher on our runtime, attribution by ablation, the regression gate;
//! - [`describe`]: the text that describes probes and layers;
//! - [`front`]: `breakout`, the runtime that executes the whole tool for every other verb;
//! - [`model`]: the result data model every other part reads or writes;
//! - [`report`]: the renderings of a run (table, Markdown, HTML, JUnit, JSON, pictures);
//! - [`adapters`]: external runtimes (bwrap, crun, podman...) behind the same launcher;
//! - [`workloads`]: the workloads' second guest image and the numbers reports print for them.

pub mod adapters;
pub mod cli;
pub mod describe;
pub mod front;
pub mod model;
pub mod report;
pub mod suite;
pub mod workloads;

/// This build's identity (harness/build.rs): the same in `breakout` and `breakout-harness` when
/// they were built from the same sources.
pub const BUILD_ID: &str = env!("BREAKOUT_BUILD_ID");

/// The runtime binary (`breakout`, the front: src/front.rs) that `breakout-harness sandbox` runs
/// from a sealed view of, when it lies beside the tool.
pub const SANDBOX_BIN: &str = "breakout";
