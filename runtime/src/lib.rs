//! breakout-runtime: a small Linux sandbox in which every isolation layer can be switched on and
//! off on its own. It knows nothing about probes.
//!
//! Public contract used by the harness (other crates rely on these names):
//! - [`Layer`]: the layer names; [`requires`]: the real dependencies between layers.
//! - [`SandboxConfig`] (module `config`): serde/TOML; `load(path)`, `builtin(name)` for the
//!   profiles embedded from profiles/, `enabled(layer)`, `set_enabled(layer, on)`,
//!   `enabled_layers()`, `validate()`, `caps.keep`/`keep_cap()`, the limit accessors and
//!   `seccomp_denies()`.
//! - [`spawn`]`(&SandboxConfig, Payload) -> Result<Sandbox, SpawnError>`; `Sandbox::wait()`,
//!   `wait_timeout()`, `kill()`; the [`Outcome`] with exit status and the evidence the layers left.
//!
//! How a sandbox starts (see plan.rs for the exact chain): the runtime forks a supervisor,
//! which joins the cgroup, creates the user namespace (the parent writes its id maps) and the
//! other namespaces, then forks the payload process; that one builds the new root, applies
//! limits, session, no-new-privs, seccomp, capabilities and the uid switch, closes descriptors
//! and execs. A failing step travels back as step + syscall + errno.
//!
//! A program that embeds the runtime calls [`sealed_exe::reexec_sealed`] first, so that its
//! processes run from a read-only view of its binary (a read-only overlay, or a sealed memfd
//! copy) that a payload cannot overwrite (CVE-2019-5736).

mod child;
pub mod config;
mod handshake;
pub mod layer;
pub mod layers;
#[cfg(feature = "layer-mutants")]
pub mod mutant;
pub mod outcome;
pub mod plan;
pub mod sealed_exe;
pub mod seccomp;
mod spawn;
pub mod step;
pub mod trace;

pub use config::{builtin_names, ConfigError, SandboxConfig};
pub use layer::{requires, Layer, LayerFacts, UnknownLayer};
pub use layers::landlock::{Enforcement as LandlockEnforcement, LandlockEvidence};
pub use outcome::{CgroupEvidence, ExitKind, Outcome, SetupFailure};
pub use spawn::{spawn, Payload, Sandbox, SpawnError};
pub use trace::TRACE_ENV;
