//! External runtimes as configurations: the user's own OCI config.json under crun, runc or runsc
//! (`oci:PATH`, `oci+runc:PATH`, `oci+runsc:PATH`), any wrapper command that takes the command
//! at its end (`cmd:'bwrap --unshare-pid ...'`), podman with the user's flags
//! (`podman:'FLAGS'`), and short names for each runtime's defaults (`crun`, `bwrap`, ...; the one
//! list is [`registry::RUNTIMES`]).
//!
//! A spec is parsed and checked on the host ([`spec::parse`]) into an [`ExternalSpec`], which
//! travels to the guest inside the plan. The guest launches it ([`launcher_for`]) and, when a
//! probe is blocked, ablates it item by item in the user's terms ([`ablate`]):
//! `linux.namespaces[pid]`, `process.capabilities(CAP_SYS_PTRACE)`, `--unshare-pid`. Without
//! ablation (`--no-ablation`) the attribution is inferred from evidence ([`infer`]), marked `~`.
//!
//! The host adds every spec's binaries to the VM image ([`ExternalSpec::binaries`]; the VM crate
//! adds their shared libraries). A runtime that is not installed gives `skipped` cells naming
//! the Debian package to install.

pub mod ablate;
pub mod cmd;
pub mod crun;
pub mod infer;
pub mod launch;
pub mod oci;
pub mod podman;
pub mod registry;
pub mod spec;

use crate::model::ProfileInfo;
use breakout_attacks::{LaunchRequest, Launcher, Layer};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

pub use registry::{by_name, Runtime, RUNTIMES};

/// What an external configuration runs: everything the guest needs, checked on the host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ExternalSpec {
    /// An OCI runtime config (config.json) run by `runtime` (a registry name: crun, runc,
    /// runsc). `source` says where it came from, for reports.
    Oci {
        runtime: String,
        source: String,
        config: serde_json::Value,
    },
    /// A wrapper command line; the payload is appended at its end. `argv[0]` is an absolute
    /// path.
    Cmd { argv: Vec<String> },
    /// `podman run --rootfs` (a read-only bind of the guest's `/`) with these flags (podman's own defaults apply).
    Podman { flags: Vec<String> },
}

/// One piece of a configuration, named in the user's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// `linux.namespaces[pid]`, `process.capabilities`, `--unshare-pid`, `--ro-bind / /`.
    pub name: String,
    /// The layer it stands for; a probe whose candidates do not include it is not ablated over
    /// it. None: unknown (an option of a wrapper breakout does not know): always a candidate.
    pub layer: Option<Layer>,
    /// Whether ablation can take it out (false: kept in every run and listed as not ablated).
    pub ablatable: bool,
    /// Why it is not ablated, when it is not.
    pub note: Option<&'static str>,
    /// What the runtime always does, kept in every run, which may block on its own (gVisor's
    /// Sentry, firejail's pid namespace): when the run without every other candidate still
    /// blocks, the block is credited to it ([`ablate::attribute`]).
    pub whole: bool,
}

impl Item {
    pub fn ablatable(name: impl Into<String>, layer: Option<Layer>) -> Item {
        Item {
            name: name.into(),
            layer,
            ablatable: true,
            note: None,
            whole: false,
        }
    }

    pub fn kept(name: impl Into<String>, layer: Option<Layer>, note: &'static str) -> Item {
        Item {
            name: name.into(),
            layer,
            ablatable: false,
            note: Some(note),
            whole: false,
        }
    }

    /// What the runtime always does and no option turns off (gVisor's Sentry, firejail's pid
    /// namespace, bwrap's no_new_privs): kept in every run, credited when the run without every
    /// other candidate still blocks. `layer` None: a candidate for every probe.
    pub fn whole(name: impl Into<String>, layer: Option<Layer>, note: &'static str) -> Item {
        Item {
            whole: true,
            ..Item::kept(name, layer, note)
        }
    }
}

impl ExternalSpec {
    /// The registry entry of the runtime this spec runs.
    pub fn runtime(&self) -> Option<&'static Runtime> {
        match self {
            ExternalSpec::Oci { runtime, .. } => by_name(runtime),
            ExternalSpec::Cmd { argv } => registry::for_binary(&argv[0]),
            ExternalSpec::Podman { .. } => registry::podman(),
        }
    }

    /// The name reports give the runtime of a user's spec: `oci+crun`, `cmd:bwrap`, `podman:`
    /// (a short name's configuration is reported under the short name itself).
    pub fn runtime_label(&self) -> String {
        match self {
            ExternalSpec::Oci { runtime, .. } => format!("oci+{runtime}"),
            ExternalSpec::Cmd { argv } => format!(
                "cmd:{}",
                Path::new(&argv[0])
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| argv[0].clone())
            ),
            ExternalSpec::Podman { .. } => "podman:".to_string(),
        }
    }

    /// The program started for a launch (it must exist in the guest).
    pub fn program(&self) -> PathBuf {
        match self {
            ExternalSpec::Oci { runtime, .. } => by_name(runtime)
                .map(|r| PathBuf::from(r.binary))
                .unwrap_or_else(|| PathBuf::from(runtime)),
            ExternalSpec::Cmd { argv } => PathBuf::from(&argv[0]),
            ExternalSpec::Podman { .. } => PathBuf::from(registry::PODMAN_BINARY),
        }
    }

    /// Host files the guest needs at the same path: the runtime's binary (the VM crate adds its
    /// shared libraries). Only those that exist on the host: a missing runtime gives `skipped`.
    pub fn binaries(&self) -> Vec<PathBuf> {
        let mut files = vec![self.program()];
        if let Some(rt) = self.runtime() {
            files.extend(rt.helpers.iter().map(PathBuf::from));
        }
        files.retain(|p| p.exists());
        files
    }

    /// Why this spec cannot run here (its runtime is not installed), naming the package.
    pub fn missing(&self) -> Option<String> {
        let program = self.program();
        if program.exists() {
            return None;
        }
        Some(match self.runtime() {
            Some(rt) => format!(
                "{} is not installed ({} is missing; Debian package: {})",
                rt.name,
                program.display(),
                rt.package
            ),
            None => format!("{} is missing", program.display()),
        })
    }

    /// Every item of the configuration, in the order the user wrote them.
    pub fn items(&self) -> Vec<Item> {
        match self {
            ExternalSpec::Oci {
                runtime, config, ..
            } => oci::items(config, runtime),
            ExternalSpec::Cmd { argv } => cmd::items(argv),
            ExternalSpec::Podman { flags } => podman::items(flags),
        }
    }

    /// The same configuration without the named items (names as [`ExternalSpec::items`] gives
    /// them).
    pub fn without(&self, names: &BTreeSet<String>) -> ExternalSpec {
        match self {
            ExternalSpec::Oci {
                runtime,
                source,
                config,
            } => ExternalSpec::Oci {
                runtime: runtime.clone(),
                source: source.clone(),
                config: oci::without(config, runtime, names),
            },
            ExternalSpec::Cmd { argv } => ExternalSpec::Cmd {
                argv: cmd::without(argv, names),
            },
            ExternalSpec::Podman { flags } => ExternalSpec::Podman {
                flags: podman::without(flags, names),
            },
        }
    }

    /// Capabilities the configuration withholds (the ones the caps drill-down may give back),
    /// with the item that withholds them. None: this spec cannot say.
    pub fn withheld_caps(&self) -> Option<(String, Vec<String>)> {
        match self {
            ExternalSpec::Oci {
                runtime, config, ..
            } => oci::withheld_caps(config, runtime),
            ExternalSpec::Cmd { argv } => cmd::withheld_caps(argv),
            ExternalSpec::Podman { flags } => podman::withheld_caps(flags),
        }
    }

    /// The same configuration keeping these capabilities too.
    pub fn with_caps(&self, extra: &[String]) -> ExternalSpec {
        match self {
            ExternalSpec::Oci {
                runtime,
                source,
                config,
            } => ExternalSpec::Oci {
                runtime: runtime.clone(),
                source: source.clone(),
                config: oci::with_caps(config, extra),
            },
            ExternalSpec::Cmd { argv } => ExternalSpec::Cmd {
                argv: cmd::with_caps(argv, extra),
            },
            ExternalSpec::Podman { flags } => ExternalSpec::Podman {
                flags: podman::with_caps(flags, extra),
            },
        }
    }

    /// The OCI seccomp filter, when the spec carries one (to name the syscalls it denies).
    pub fn oci_seccomp(&self) -> Option<&serde_json::Value> {
        match self {
            ExternalSpec::Oci { config, .. } => config.pointer("/linux/seccomp"),
            _ => None,
        }
    }

    /// The layers its items stand for, in the order of [`Layer::ALL`].
    pub fn layers(&self) -> Vec<Layer> {
        let present: BTreeSet<Layer> = self.items().iter().filter_map(|i| i.layer).collect();
        Layer::ALL
            .into_iter()
            .filter(|l| present.contains(l))
            .collect()
    }

    /// The configuration as reports show it: the layers its items stand for.
    pub fn profile_info(&self, name: &str) -> ProfileInfo {
        ProfileInfo {
            name: name.to_string(),
            runtime: self.runtime_label(),
            layers: self.layers(),
            // Attributed by ablating its items (a run with --no-ablation marks each attribution
            // inferred instead).
            inferred: false,
        }
    }

    /// A stable text identifying what a launch runs (for reusing identical launches).
    pub fn identity(&self) -> String {
        serde_json::to_string(self).expect("specs serialize")
    }
}

/// The launcher for a spec, as the guest orchestrator asks for it.
pub fn launcher_for(spec: &ExternalSpec) -> Result<Box<dyn Launcher>, String> {
    if let Some(reason) = spec.missing() {
        return Err(reason);
    }
    match spec {
        ExternalSpec::Oci {
            runtime, config, ..
        } => {
            let rt = by_name(runtime)
                .ok_or_else(|| format!("`{runtime}` is not an OCI runtime breakout knows"))?;
            Ok(Box::new(oci::OciLauncher {
                runtime: rt,
                config: config.clone(),
            }))
        }
        ExternalSpec::Cmd { argv } => Ok(Box::new(cmd::CmdLauncher { argv: argv.clone() })),
        ExternalSpec::Podman { flags } => Ok(Box::new(podman::PodmanLauncher {
            flags: flags.clone(),
        })),
    }
}

/// The configuration a short name stands for (None: not a runtime's short name).
pub fn profile_info(name: &str) -> Option<ProfileInfo> {
    by_name(name).map(|a| a.profile_info())
}

/// Every runtime breakout knows, in the order `list profiles` shows them.
pub fn all() -> &'static [&'static Runtime] {
    RUNTIMES
}

/// The short-named runtimes' binaries that exist on this host (same path in the guest). Each
/// configuration adds its own ([`ExternalSpec::binaries`]); this covers the short names.
pub fn guest_files() -> Vec<PathBuf> {
    RUNTIMES.iter().flat_map(|r| r.spec().binaries()).collect()
}

/// The short names, in the order `list profiles` shows them.
pub fn names() -> Vec<&'static str> {
    RUNTIMES.iter().map(|r| r.name).collect()
}

/// Where a launch makes its cgroup: under the request's cgroup (a safety cgroup the outside
/// watches; limits and counters there are hierarchical) or under our own base.
fn cgroup_base(request: &LaunchRequest) -> PathBuf {
    request
        .cgroup
        .clone()
        .unwrap_or_else(|| PathBuf::from(launch::DEFAULT_CGROUP_BASE))
}
