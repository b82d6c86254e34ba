//! breakout-runtime: a small Linux sandbox in which every isolation layer can be switched on and
//! off on its own. It knows nothing about probes.
//!
//! Public contract used by the harness (other crates rely on these names):
//! - [`Layer`]: the layer names.
//! - `SandboxConfig` (module `config`): serde/TOML; `load(path)`, `builtin(name)` for the
//!   profiles embedded from profiles/, `enabled(layer)`, `set_enabled(layer, on)`,
//!   `enabled_layers()`, `validate()`.
//! - `spawn(&SandboxConfig, Payload) -> Result<Sandbox, SpawnError>`; `Sandbox::wait()`,
//!   `wait_timeout()`, `kill()`; the [`Outcome`] with exit status and the evidence the layers left.

pub mod layer;
pub mod outcome;

pub use layer::{Layer, UnknownLayer};
pub use outcome::{CgroupEvidence, ExitKind, Outcome, SetupFailure};
