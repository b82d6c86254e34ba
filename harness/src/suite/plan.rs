//! The run plan: which configurations (our profiles, or external runtimes through adapters) and
//! which probes, as (probe, configuration) jobs; how they are split into VMs; and the plan file the
//! guest orchestrator reads (`breakout guest-exec --plan FILE`).
//!
//! Everything the user named is checked here, on the host, before any VM boots.

use crate::model::{ProfileInfo, TrialRecord};
use breakout_attacks::{Layer, ProbeClass};
use breakout_runtime::config::SandboxConfig;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The profiles `breakout run` uses when none is named.
pub const DEFAULT_PROFILES: [&str; 4] = ["none", "namespaces", "docker-default", "strict"];

/// Where the plan file is placed in the guest.
pub const GUEST_PLAN_PATH: &str = "/etc/breakout/plan.json";

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("unknown probe `{id}`{}", hint(.near, .known))]
    UnknownProbe {
        id: String,
        near: Vec<String>,
        known: Vec<String>,
    },
    #[error("profile `{name}`: {message}")]
    Profile { name: String, message: String },
    #[error("configuration `{0}` is named twice")]
    DuplicateConfiguration(String),
    #[error("profiles {first} and {second} are both named `{name}` (a profile is known by its `name` field; rename one)")]
    DuplicateProfileName {
        name: String,
        first: String,
        second: String,
    },
    #[error("the plan is empty: no probe matches{0}")]
    Empty(String),
    /// A runtime spec that cannot run (the message names the spec).
    #[error("{0}")]
    Spec(String),
    #[error("plan file {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("unknown workload `{id}` (known workloads: {known})")]
    UnknownWorkload { id: String, known: String },
}

fn hint(near: &[String], known: &[String]) -> String {
    if near.is_empty() {
        format!(" (known probes: {})", known.join(", "))
    } else {
        format!(
            " (did you mean {}? `breakout list probes` shows all)",
            near.join(", ")
        )
    }
}

/// One configuration under test.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Configuration {
    pub name: String,
    #[serde(flatten)]
    pub kind: ConfigurationKind,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "runtime", rename_all = "kebab-case")]
pub enum ConfigurationKind {
    /// Our runtime with this configuration: full attribution by ablation.
    Breakout { config: SandboxConfig },
    /// An external runtime (`crun`, `oci:PATH`, `cmd:'bwrap ...'`, `podman:'...'`): `spec` is
    /// what the guest runs and ablates item by item; `adapter` names the runtime for reports;
    /// `layers` are what its items stand for.
    Adapter {
        adapter: String,
        layers: Vec<Layer>,
        spec: crate::adapters::ExternalSpec,
    },
}

impl Configuration {
    /// What a configuration name stands for: a runtime spec (`oci:PATH`, `cmd:'...'`,
    /// `podman:'...'`, a runtime's short name) or one of our profiles.
    pub fn named(name: &str) -> Result<Configuration, PlanError> {
        let spec =
            crate::adapters::spec::parse(name).map_err(|e| PlanError::Spec(e.to_string()))?;
        let Some(spec) = spec else {
            return Configuration::profile(name).map_err(|e| match e {
                PlanError::Profile { name, message } if !name.contains('/') && !name.ends_with(".toml") => {
                    PlanError::Profile {
                        message: format!(
                            "{message} (nor is it a runtime: {}; or oci:PATH, oci+runc:PATH, oci+runsc:PATH, cmd:'WRAPPER ARGS', podman:'FLAGS')",
                            crate::adapters::names().join(", ")
                        ),
                        name,
                    }
                }
                other => other,
            });
        };
        Ok(Configuration {
            name: name.to_string(),
            kind: ConfigurationKind::Adapter {
                // A short name is reported as itself (reports show its description); a user's
                // spec as `oci+crun`, `cmd:bwrap`, ...
                adapter: match crate::adapters::by_name(name) {
                    Some(runtime) => runtime.name.to_string(),
                    None => spec.runtime_label(),
                },
                layers: spec.layers(),
                spec,
            },
        })
    }

    /// One of our profiles: a built-in name, or a path to a TOML profile. The configuration is
    /// named by the profile's `name` field, so `profiles/x.toml`, `./profiles/x.toml` and its
    /// absolute path are one profile to the reports and the gate.
    pub fn profile(name: &str) -> Result<Configuration, PlanError> {
        let looks_like_path = name.contains('/') || name.ends_with(".toml");
        let mut config = if looks_like_path {
            SandboxConfig::load(Path::new(name))
        } else {
            SandboxConfig::builtin(name)
        }
        .map_err(|e| PlanError::Profile {
            name: name.to_string(),
            message: e.to_string(),
        })?;
        // A seccomp profile given as a path travels to the guest at its absolute host path (see
        // `guest_files`); a builtin name needs nothing.
        let spec = config.seccomp.profile.clone();
        if looks_like_path
            && (spec.contains('/') || spec.contains('.'))
            && Path::new(&spec).is_relative()
        {
            let dir = Path::new(name).parent().unwrap_or(Path::new("."));
            let absolute =
                std::path::absolute(dir.join(&spec)).map_err(|e| PlanError::Profile {
                    name: name.to_string(),
                    message: format!("seccomp profile {spec}: {e}"),
                })?;
            config.seccomp.profile = absolute.display().to_string();
        }
        config.validate().map_err(|e| PlanError::Profile {
            name: name.to_string(),
            message: e.to_string(),
        })?;
        if config.name.trim().is_empty() {
            return Err(PlanError::Profile {
                name: name.to_string(),
                message: "the `name` field is empty (reports and the gate know a profile by it)"
                    .to_string(),
            });
        }
        Ok(Configuration {
            name: config.name.clone(),
            kind: ConfigurationKind::Breakout { config },
        })
    }

    /// Host files the guest needs at the same path to load this configuration (a seccomp profile
    /// given as a path).
    pub fn guest_files(&self) -> Vec<PathBuf> {
        match &self.kind {
            ConfigurationKind::Breakout { config } => {
                let spec = &config.seccomp.profile;
                if Path::new(spec).is_absolute() {
                    vec![PathBuf::from(spec)]
                } else {
                    Vec::new()
                }
            }
            ConfigurationKind::Adapter { spec, .. } => spec.binaries(),
        }
    }

    pub fn info(&self) -> ProfileInfo {
        match &self.kind {
            ConfigurationKind::Breakout { config } => ProfileInfo {
                name: self.name.clone(),
                runtime: "breakout".to_string(),
                layers: config.enabled_layers().into_iter().collect(),
                inferred: false,
            },
            ConfigurationKind::Adapter {
                adapter, layers, ..
            } => ProfileInfo {
                name: self.name.clone(),
                runtime: adapter.clone(),
                layers: layers.clone(),
                // Ablated item by item; a --no-ablation run marks each attribution inferred.
                inferred: false,
            },
        }
    }
}

/// One (probe, configuration) pair.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Job {
    pub probe: String,
    pub profile: String,
}

impl Job {
    /// The name the escape suite gives the trial: `probe::profile`.
    pub fn name(&self) -> String {
        format!("{}::{}", self.probe, self.profile)
    }
}

/// One (workload, configuration) pair.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct WorkloadJob {
    pub workload: String,
    pub profile: String,
}

/// Check workload ids against the registry; every workload when `ids` is empty.
pub fn workload_ids(ids: &[String]) -> Result<Vec<String>, PlanError> {
    let known: Vec<String> = breakout_attacks::workloads::workloads()
        .iter()
        .map(|w| w.meta.id.to_string())
        .collect();
    if ids.is_empty() {
        return Ok(known);
    }
    let mut out: Vec<String> = Vec::new();
    for id in ids {
        if !known.contains(id) {
            return Err(PlanError::UnknownWorkload {
                id: id.clone(),
                known: known.join(", "),
            });
        }
        if !out.contains(id) {
            out.push(id.clone());
        }
    }
    Ok(out)
}

/// What the user asked for, checked.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunPlan {
    pub configurations: Vec<Configuration>,
    pub jobs: Vec<Job>,
    /// Workloads under every configuration (the usability half of the run).
    #[serde(default)]
    pub workloads: Vec<WorkloadJob>,
    /// The name of the positive control added by [`RunPlan::add_positive_control`].
    #[serde(default)]
    pub added_positive_control: Option<String>,
}

/// The ids of every registered probe.
pub fn known_probe_ids() -> Vec<String> {
    breakout_attacks::all_probes()
        .iter()
        .map(|p| p.meta().id.to_string())
        .collect()
}

/// Check a probe id against the registry.
pub fn check_probe(id: &str) -> Result<(), PlanError> {
    if breakout_attacks::probe(id).is_some() {
        return Ok(());
    }
    let known = known_probe_ids();
    let near = known
        .iter()
        .filter(|k| k.contains(id) || id.contains(k.as_str()) || common_prefix(k, id) >= 4)
        .cloned()
        .collect();
    Err(PlanError::UnknownProbe {
        id: id.to_string(),
        near,
        known,
    })
}

fn common_prefix(a: &str, b: &str) -> usize {
    a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count()
}

impl RunPlan {
    /// Every probe in `probes` (all when empty) under every configuration.
    pub fn new(
        configurations: Vec<Configuration>,
        probes: &[String],
    ) -> Result<RunPlan, PlanError> {
        let mut seen = BTreeSet::new();
        for c in &configurations {
            if !seen.insert(c.name.clone()) {
                return Err(PlanError::DuplicateConfiguration(c.name.clone()));
            }
        }
        let probe_ids: Vec<String> = if probes.is_empty() {
            known_probe_ids()
        } else {
            let mut ids: Vec<String> = Vec::new();
            for id in probes {
                check_probe(id)?;
                if !ids.contains(id) {
                    ids.push(id.clone());
                }
            }
            ids
        };
        let jobs = probe_ids
            .iter()
            .flat_map(|probe| {
                configurations.iter().map(move |c| Job {
                    probe: probe.clone(),
                    profile: c.name.clone(),
                })
            })
            .collect();
        Ok(RunPlan {
            configurations,
            jobs,
            workloads: Vec::new(),
            added_positive_control: None,
        })
    }

    /// The plan of `breakout run`: the named profiles (default: none, namespaces,
    /// docker-default, strict) and probes (default: all).
    pub fn from_names(profiles: &[String], probes: &[String]) -> Result<RunPlan, PlanError> {
        let names: Vec<String> = if profiles.is_empty() {
            DEFAULT_PROFILES.iter().map(|s| s.to_string()).collect()
        } else {
            profiles.to_vec()
        };
        let configurations = names
            .iter()
            .map(|n| Configuration::named(n))
            .collect::<Result<Vec<_>, _>>()?;
        // Two sources with one `name` would be one column, one baseline entry: refuse them.
        for (i, c) in configurations.iter().enumerate() {
            if let Some(j) = configurations[..i].iter().position(|o| o.name == c.name) {
                return Err(if names[i] == names[j] {
                    PlanError::DuplicateConfiguration(names[i].clone())
                } else {
                    PlanError::DuplicateProfileName {
                        name: c.name.clone(),
                        first: format!("`{}`", names[j]),
                        second: format!("`{}`", names[i]),
                    }
                });
            }
        }
        RunPlan::new(configurations, probes)
    }

    /// Runs the workloads `ids` (checked) under every configuration of the plan.
    pub fn set_workloads(&mut self, ids: &[String]) -> Result<(), PlanError> {
        let ids = workload_ids(ids)?;
        self.workloads = ids
            .iter()
            .flat_map(|w| {
                self.configurations.iter().map(move |c| WorkloadJob {
                    workload: w.clone(),
                    profile: c.name.clone(),
                })
            })
            .collect();
        Ok(())
    }

    /// Whether a configuration of ours switches no layer on (a positive control).
    pub fn has_positive_control(&self) -> bool {
        self.configurations.iter().any(|c| {
            matches!(&c.kind, ConfigurationKind::Breakout { config } if config.enabled_layers().is_empty())
        })
    }

    /// Without a configuration that switches no layer on, a broken probe would read as a block:
    /// add the built-in `none` (named `positive-control` if a profile with layers took `none`)
    /// and run every probe of the plan under it too. Returns the name added, if any.
    pub fn add_positive_control(&mut self) -> Result<Option<String>, PlanError> {
        if self.has_positive_control() {
            return Ok(None);
        }
        let mut control = Configuration::profile("none")?;
        if self.configurations.iter().any(|c| c.name == control.name) {
            control.name = "positive-control".to_string();
        }
        let mut probes: Vec<String> = Vec::new();
        for job in &self.jobs {
            if !probes.contains(&job.probe) {
                probes.push(job.probe.clone());
            }
        }
        let name = control.name.clone();
        self.jobs.extend(probes.into_iter().map(|probe| Job {
            probe,
            profile: name.clone(),
        }));
        // Workloads need their positive control as much as probes do.
        let mut workloads: Vec<String> = Vec::new();
        for job in &self.workloads {
            if !workloads.contains(&job.workload) {
                workloads.push(job.workload.clone());
            }
        }
        self.workloads
            .extend(workloads.into_iter().map(|workload| WorkloadJob {
                workload,
                profile: name.clone(),
            }));
        self.configurations.insert(0, control);
        self.added_positive_control = Some(name.clone());
        Ok(Some(name))
    }

    /// Keep only the jobs `keep` accepts (the escape suite's name filter); configurations no job
    /// uses are dropped.
    pub fn retain(&mut self, keep: impl Fn(&Job) -> bool) {
        self.jobs.retain(|j| keep(j));
        let used: BTreeSet<&str> = self
            .jobs
            .iter()
            .map(|j| j.profile.as_str())
            .chain(self.workloads.iter().map(|w| w.profile.as_str()))
            .collect();
        self.configurations
            .retain(|c| used.contains(c.name.as_str()));
    }

    pub fn profiles(&self) -> Vec<ProfileInfo> {
        self.configurations
            .iter()
            .map(Configuration::info)
            .collect()
    }

    /// Split into VMs: everything in one, except probes whose escape ends the guest, which get a
    /// VM each (and a restart after every launch that takes the guest down).
    pub fn vm_groups(&self) -> Vec<VmGroup> {
        let mut shared = Vec::new();
        let mut own: Vec<VmGroup> = Vec::new();
        for job in &self.jobs {
            let ends_guest = breakout_attacks::probe(&job.probe)
                .is_some_and(|p| p.meta().class == ProbeClass::EndsGuest);
            if !ends_guest {
                shared.push(job.clone());
            } else if let Some(group) = own.iter_mut().find(|g| g.label == job.probe) {
                group.jobs.push(job.clone());
            } else {
                own.push(VmGroup {
                    label: job.probe.clone(),
                    jobs: vec![job.clone()],
                    ends_guest: true,
                    workloads: Vec::new(),
                });
            }
        }
        let mut groups = Vec::new();
        if !shared.is_empty() || !self.workloads.is_empty() {
            groups.push(VmGroup {
                label: "main".to_string(),
                jobs: shared,
                ends_guest: false,
                workloads: self.workloads.clone(),
            });
        }
        groups.extend(own);
        groups
    }
}

/// The jobs one VM runs.
#[derive(Debug, Clone)]
pub struct VmGroup {
    pub label: String,
    pub jobs: Vec<Job>,
    /// The probes may take the guest down: one launch at a time, every launch announced.
    pub ends_guest: bool,
    /// The workloads this VM runs (all in the main group): their files come as a second image.
    pub workloads: Vec<WorkloadJob>,
}

/// How the guest runs its jobs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GuestOptions {
    /// Kill a launch after this long (the result is inconclusive).
    pub probe_timeout_ms: u64,
    /// Attribute blocked results by ablation.
    pub ablate: bool,
    /// Launches run at once (resource probes always run alone).
    pub workers: usize,
    /// Announce every launch (TrialStarted/TrialFinished) and run one at a time.
    pub announce_trials: bool,
    /// Kill a workload after this long (it is then broken, step "timeout").
    #[serde(default = "default_workload_timeout_ms")]
    pub workload_timeout_ms: u64,
}

fn default_workload_timeout_ms() -> u64 {
    120_000
}

impl Default for GuestOptions {
    fn default() -> Self {
        GuestOptions {
            probe_timeout_ms: 20_000,
            ablate: true,
            workers: 2,
            announce_trials: false,
            workload_timeout_ms: default_workload_timeout_ms(),
        }
    }
}

/// A launch whose record the host already has (from a guest that went down).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KnownTrial {
    pub key: String,
    pub record: TrialRecord,
}

/// The plan file the guest orchestrator reads.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GuestPlan {
    pub configurations: Vec<Configuration>,
    pub jobs: Vec<Job>,
    pub options: GuestOptions,
    #[serde(default)]
    pub known_trials: Vec<KnownTrial>,
    #[serde(default)]
    pub workloads: Vec<WorkloadJob>,
}

impl GuestPlan {
    pub fn load(path: &Path) -> Result<GuestPlan, PlanError> {
        let text = std::fs::read_to_string(path).map_err(|e| PlanError::File {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let plan: GuestPlan = serde_json::from_str(&text).map_err(|e| PlanError::File {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        // File probes travel in the image, not in the plan: register them before the ids are
        // checked.
        crate::suite::file_probes::register_installed().map_err(|e| PlanError::File {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        for job in &plan.jobs {
            if !plan.configurations.iter().any(|c| c.name == job.profile) {
                return Err(PlanError::File {
                    path: path.to_path_buf(),
                    message: format!("job {} names no configuration of the plan", job.name()),
                });
            }
            check_probe(&job.probe).map_err(|e| PlanError::File {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        }
        for job in &plan.workloads {
            if plan.configuration(&job.profile).is_none() {
                return Err(PlanError::File {
                    path: path.to_path_buf(),
                    message: format!(
                        "workload {} names no configuration of the plan ({})",
                        job.workload, job.profile
                    ),
                });
            }
            workload_ids(std::slice::from_ref(&job.workload)).map_err(|e| PlanError::File {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        }
        Ok(plan)
    }

    pub fn write(&self, path: &Path) -> Result<(), PlanError> {
        let text = serde_json::to_string(self).expect("the plan serializes");
        std::fs::write(path, text).map_err(|e| PlanError::File {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    pub fn configuration(&self, name: &str) -> Option<&Configuration> {
        self.configurations.iter().find(|c| c.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_plan_is_every_probe_under_the_four_profiles() {
        let plan = RunPlan::from_names(&[], &[]).unwrap();
        let names: Vec<&str> = plan
            .configurations
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(names, DEFAULT_PROFILES);
        assert_eq!(plan.jobs.len(), 4 * known_probe_ids().len());
        assert!(!plan.jobs.is_empty());
    }

    #[test]
    fn unknown_probe_and_profile_are_named_before_anything_runs() {
        let err = RunPlan::from_names(&[], &["ptrace-outsid".to_string()])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown probe `ptrace-outsid`") && err.contains("ptrace-outside"),
            "{err}"
        );
        let err = RunPlan::from_names(&["stirct".to_string()], &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("profile `stirct`"), "{err}");
        let err = RunPlan::from_names(&["strict".to_string(), "strict".to_string()], &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("named twice"), "{err}");
    }

    #[test]
    fn a_profile_is_known_by_its_name_field_and_two_sources_of_one_name_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles/strict.toml"),
        )
        .unwrap()
        .replace("name = \"strict\"", "name = \"mine\"");
        let path = dir.path().join("x.toml");
        std::fs::write(&path, &text).unwrap();
        let typed = path.display().to_string();
        let plan = RunPlan::from_names(
            std::slice::from_ref(&typed),
            &["ptrace-outside".to_string()],
        )
        .unwrap();
        assert_eq!(plan.configurations[0].name, "mine");
        assert_eq!(plan.jobs[0].profile, "mine");

        let other = format!("{}/./x.toml", dir.path().display());
        let err = RunPlan::from_names(&[typed.clone(), other.clone()], &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("both named `mine`") && err.contains(&typed) && err.contains(&other),
            "{err}"
        );
        std::fs::write(&path, text.replace("name = \"mine\"", "name = \"strict\"")).unwrap();
        let err = RunPlan::from_names(&["strict".to_string(), typed], &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("both named `strict`"), "{err}");
    }

    #[test]
    fn a_plan_without_a_layerless_profile_gets_the_positive_control() {
        let mut plan =
            RunPlan::from_names(&["strict".to_string()], &["ptrace-outside".to_string()]).unwrap();
        assert!(!plan.has_positive_control());
        assert_eq!(
            plan.add_positive_control().unwrap().as_deref(),
            Some("none")
        );
        assert_eq!(plan.configurations[0].name, "none");
        assert!(plan.jobs.contains(&Job {
            probe: "ptrace-outside".to_string(),
            profile: "none".to_string()
        }));
        assert_eq!(plan.add_positive_control().unwrap(), None, "added once");
        let mut with_none =
            RunPlan::from_names(&["none".to_string()], &["ptrace-outside".to_string()]).unwrap();
        assert_eq!(with_none.add_positive_control().unwrap(), None);
    }

    #[test]
    fn retain_shapes_the_plan_and_drops_unused_profiles() {
        let mut plan = RunPlan::from_names(&[], &[]).unwrap();
        plan.retain(|j| j.name().contains("ptrace-outside::strict"));
        assert_eq!(
            plan.jobs,
            vec![Job {
                probe: "ptrace-outside".to_string(),
                profile: "strict".to_string()
            }]
        );
        assert_eq!(plan.configurations.len(), 1);
    }

    #[test]
    fn workloads_run_under_every_configuration_and_the_positive_control_gets_them_too() {
        let mut plan =
            RunPlan::from_names(&["strict".to_string()], &["ptrace-outside".to_string()]).unwrap();
        plan.set_workloads(&["python".to_string(), "git".to_string()])
            .unwrap();
        assert_eq!(plan.workloads.len(), 2);
        plan.add_positive_control().unwrap();
        let none: Vec<&str> = plan
            .workloads
            .iter()
            .filter(|w| w.profile == "none")
            .map(|w| w.workload.as_str())
            .collect();
        assert_eq!(none, ["python", "git"]);
        let err = plan
            .set_workloads(&["pyhton".to_string()])
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("unknown workload `pyhton` (known workloads: shell-pipeline, python"),
            "{err}"
        );
        // Only workloads: one VM group still runs them.
        plan.jobs.clear();
        plan.set_workloads(&[]).unwrap();
        let groups = plan.vm_groups();
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].workloads.len(), 12 * plan.configurations.len());
    }

    #[test]
    fn guest_plan_round_trips_and_rejects_bad_files() {
        let plan =
            RunPlan::from_names(&["strict".to_string()], &["ptrace-outside".to_string()]).unwrap();
        let guest = GuestPlan {
            configurations: plan.configurations.clone(),
            jobs: plan.jobs.clone(),
            options: GuestOptions::default(),
            known_trials: vec![],
            workloads: vec![WorkloadJob {
                workload: "python".into(),
                profile: "strict".into(),
            }],
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.json");
        guest.write(&path).unwrap();
        let back = GuestPlan::load(&path).unwrap();
        assert_eq!(back.jobs, guest.jobs);
        assert_eq!(back.workloads, guest.workloads);

        std::fs::write(&path, "{").unwrap();
        let err = GuestPlan::load(&path).unwrap_err().to_string();
        assert!(err.contains("plan.json"), "{err}");
    }
}
