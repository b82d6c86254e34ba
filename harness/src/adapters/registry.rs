//! The one list of external runtimes breakout knows. Each is one file in `registry/` holding its
//! [`Runtime`]: short name, Debian package, binary, how it is driven (an OCI runtime, a wrapper
//! with its option syntax, podman), its default configuration and description. Adding a runtime
//! is that file, its `mod` line and its line in [`RUNTIMES`].

use super::cmd::{Opt, Syntax, WrapperDefault};
use super::ExternalSpec;
use crate::model::ProfileInfo;
use breakout_attacks::Layer;
use std::path::Path;

pub const PODMAN_BINARY: &str = "/usr/bin/podman";

/// How a runtime is driven.
#[derive(Debug)]
pub enum Kind {
    /// An OCI runtime: `BINARY GLOBAL_ARGS run --bundle DIR ID`, with `root_flag DIR` when the
    /// runtime needs its state directory named.
    Oci {
        global_args: &'static [&'static str],
        /// A kernel of the runtime's own between the payload and Linux (gVisor's Sentry), with
        /// what reports say of it: one item whatever the config says, which cannot be split
        /// into parts nor taken out.
        sandbox_kernel: Option<(&'static str, &'static str)>,
        /// The last capability the runtime knows, when it knows fewer than the kernel: a
        /// config naming a later one does not start (runsc 20221219 stops at CAP_AUDIT_READ and
        /// fails on CAP_PERFMON, CAP_BPF, CAP_CHECKPOINT_RESTORE).
        last_cap: Option<&'static str>,
        /// `run` takes `--preserve-fds N`: the probes' timing channel reaches the payload as
        /// fd 3 even where the runtime copies stdin through a pipe of its own (runc).
        preserve_fds: bool,
    },
    /// A wrapper that takes the command at its end; `syntax` groups its options with their
    /// arguments and says which layer each stands for.
    Wrapper { syntax: &'static Syntax },
    /// podman run --rootfs.
    Podman,
}

/// One external runtime.
#[derive(Debug)]
pub struct Runtime {
    /// The short name on the command line (`crun`) and the prefix of `oci+NAME:` for OCI ones.
    pub name: &'static str,
    /// The Debian package that installs it.
    pub package: &'static str,
    pub binary: &'static str,
    /// Further files and directories it needs in the guest, at the same path: helpers it starts
    /// and the configuration its package installs (podman's /etc/containers, firejail's
    /// profiles). They come from the host's installed package.
    pub helpers: &'static [&'static str],
    pub kind: Kind,
    /// Seconds a launch may take beyond the probe's timeout: the runtime's own start-up, which
    /// under TCG is most of a launch for podman (about 16 s alone, over 50 s with another launch
    /// beside it) and runsc (about 20 s).
    pub startup_s: u64,
    /// What the short name runs.
    pub default: fn() -> ExternalSpec,
    pub description: &'static str,
}

impl Runtime {
    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn binary(&self) -> &'static Path {
        Path::new(self.binary)
    }

    pub fn description(&self) -> &'static str {
        self.description
    }

    /// The configuration the short name stands for.
    pub fn spec(&self) -> ExternalSpec {
        (self.default)()
    }

    pub fn profile_info(&self) -> ProfileInfo {
        let mut info = self.spec().profile_info(self.name);
        info.runtime = self.name.to_string();
        info
    }

    /// The launch's time limit: the probe's timeout and the runtime's start-up.
    pub fn launch_timeout(&self, probe_timeout: std::time::Duration) -> std::time::Duration {
        probe_timeout + std::time::Duration::from_secs(self.startup_s)
    }

    /// Whether `run` takes `--preserve-fds` (an OCI runtime that says so).
    pub fn preserves_fds(&self) -> bool {
        matches!(
            self.kind,
            Kind::Oci {
                preserve_fds: true,
                ..
            }
        )
    }

    pub fn syntax(&self) -> Option<&'static Syntax> {
        match self.kind {
            Kind::Wrapper { syntax } => Some(syntax),
            _ => None,
        }
    }
}

pub fn by_name(name: &str) -> Option<&'static Runtime> {
    RUNTIMES.iter().copied().find(|r| r.name == name)
}

/// The runtime `podman:` specs run (the one driven as [`Kind::Podman`]).
pub fn podman() -> Option<&'static Runtime> {
    RUNTIMES
        .iter()
        .copied()
        .find(|r| matches!(r.kind, Kind::Podman))
}

/// The runtime whose binary this is (by file name: `bwrap`, `/usr/bin/bwrap`).
pub fn for_binary(program: &str) -> Option<&'static Runtime> {
    let base = Path::new(program).file_name()?.to_str()?;
    RUNTIMES
        .iter()
        .copied()
        .find(|r| Path::new(r.binary).file_name().and_then(|n| n.to_str()) == Some(base))
}

fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|s| s.to_string()).collect()
}

fn docker_defaults(runtime: &str) -> ExternalSpec {
    ExternalSpec::Oci {
        runtime: runtime.to_string(),
        source: "Docker's defaults".to_string(),
        config: super::crun::config(&[], None),
    }
}

mod bwrap;
mod crun;
mod firejail;
mod podman;
mod runc;
mod runsc;
mod unshare;

/// Every runtime, in the order `list profiles` shows them.
pub static RUNTIMES: &[&Runtime] = &[
    &bwrap::RUNTIME,
    &crun::RUNTIME,
    &runc::RUNTIME,
    &runsc::RUNTIME,
    &podman::RUNTIME,
    &firejail::RUNTIME,
    &unshare::RUNTIME,
];

const fn opt(name: &'static str, args: usize, layer: Option<Layer>) -> Opt {
    Opt {
        name,
        args,
        layer,
        ablate: layer.is_some(),
        group: None,
    }
}

/// An option that is set-up, not a protection: kept in every run, never listed.
const fn setup(name: &'static str, args: usize) -> Opt {
    Opt {
        name,
        args,
        layer: None,
        ablate: false,
        group: None,
    }
}

/// Options that only make sense together are ablated together, named by the group.
const fn grouped(name: &'static str, args: usize, layer: Layer, group: &'static str) -> Opt {
    Opt {
        name,
        args,
        layer: Some(layer),
        ablate: true,
        group: Some(group),
    }
}
