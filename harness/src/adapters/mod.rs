//! External runtimes as configurations for `breakout compare`: bubblewrap, crun (with an OCI
//! bundle we generate) and util-linux unshare. Each implements breakout_attacks::Launcher, so
//! the guest orchestrator runs probes through them exactly as through our runtime, and declares
//! which layers its flags turn on (ProfileInfo.layers, inferred = true). They cannot be ablated,
//! so their attribution comes from the evidence alone (`infer`).
//!
//! Contract with the guest orchestrator: a configuration name is either a built-in profile or
//! an adapter name ([`NAMES`]); for an adapter it calls [`launcher_for`] and [`profile_info`],
//! and for each blocked result [`infer::for_adapter`]. The host adds [`guest_files`] to the VM
//! image (binaries only; the VM crate adds their shared libraries).

pub mod bwrap;
pub mod crun;
pub mod infer;
pub mod launch;
pub mod unshare;

use crate::model::ProfileInfo;
use breakout_attacks::{LaunchRequest, Launcher};
use std::path::{Path, PathBuf};

/// An external runtime we can drive.
pub trait Adapter: Launcher + Sync {
    /// The configuration name on the command line and in reports.
    fn name(&self) -> &'static str;
    /// The runtime's binary, at the same path on the host and in the guest.
    fn binary(&self) -> &'static Path;
    /// What the adapter's command line does, for `list profiles` and reports.
    fn description(&self) -> &'static str;
    /// The configuration as reports show it: the layers its flags turn on, inferred = true.
    fn profile_info(&self) -> ProfileInfo;
}

/// The adapters' names, in the order `list profiles` shows them.
pub const NAMES: [&str; 3] = ["bwrap", "crun", "unshare"];

static BWRAP: bwrap::Bwrap = bwrap::Bwrap;
static CRUN: crun::Crun = crun::Crun;
static UNSHARE: unshare::Unshare = unshare::Unshare;

pub fn all() -> [&'static dyn Adapter; 3] {
    [&BWRAP, &CRUN, &UNSHARE]
}

pub fn by_name(name: &str) -> Option<&'static dyn Adapter> {
    all().into_iter().find(|a| a.name() == name)
}

/// The launcher for an adapter name, as the guest orchestrator asks for it.
pub fn launcher_for(name: &str) -> Result<Box<dyn Launcher>, String> {
    match name {
        "bwrap" => Ok(Box::new(bwrap::Bwrap)),
        "crun" => Ok(Box::new(crun::Crun)),
        "unshare" => Ok(Box::new(unshare::Unshare)),
        other => Err(format!(
            "`{other}` is not an external runtime breakout can drive ({})",
            NAMES.join(", ")
        )),
    }
}

/// The configuration an adapter name stands for (None: not an adapter).
pub fn profile_info(name: &str) -> Option<ProfileInfo> {
    by_name(name).map(|a| a.profile_info())
}

/// The adapters' binaries that exist on this host, for the VM image (same path in the guest).
pub fn guest_files() -> Vec<PathBuf> {
    all()
        .into_iter()
        .map(|a| a.binary().to_path_buf())
        .filter(|p| p.exists())
        .collect()
}

/// Where a launch makes its cgroup: under the request's cgroup (a safety cgroup the outside
/// watches; limits and counters there are hierarchical) or under our own base.
fn cgroup_base(request: &LaunchRequest) -> PathBuf {
    request
        .cgroup
        .clone()
        .unwrap_or_else(|| PathBuf::from(launch::DEFAULT_CGROUP_BASE))
}
