//! Scratch builds only (cargo feature `layer-mutants`, never in a release build): the layer named
//! by `BREAKOUT_MUTANT_LAYER` does nothing, its steps are left out of the chain. The suite must
//! notice: `scripts/layer-mutants` runs the probes that credit the layer and expects the
//! regression gate to fail. A layer that can be broken without the gate noticing is a layer the
//! suite does not really test.

use crate::layer::Layer;
use crate::step::Step;

/// The environment variable naming the layer that does nothing.
pub const MUTANT_ENV: &str = "BREAKOUT_MUTANT_LAYER";

/// Layers whose steps cannot be left out alone without the chain failing for another reason
/// (user-ns: the parent writes the maps of a namespace that never came; mount-ns: fs-hardening
/// would then remount the outside's own paths).
pub const NOT_MUTABLE: &[Layer] = &[Layer::UserNs, Layer::MountNs];

pub(crate) fn disable_named_layer(steps: &mut Vec<Step>) {
    let Ok(name) = std::env::var(MUTANT_ENV) else {
        return;
    };
    let Ok(layer) = name.parse::<Layer>() else {
        return;
    };
    if NOT_MUTABLE.contains(&layer) {
        return;
    }
    steps.retain(|s| s.layer != Some(layer));
}
