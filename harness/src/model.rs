//! The result data model: what the guest streams back, what reports render, what the gate
//! compares. Serialized as JSON with a versioned schema (bump SCHEMA_VERSION on any breaking
//! change and document it in docs/results-schema.md). Files of older versions are upgraded on
//! load ([`upgrade`]), never refused, so a committed baseline keeps working.

use breakout_attacks::{Step, Verdict};
use breakout_runtime::{CgroupEvidence, ExitKind, Layer, SetupFailure};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

pub mod gate;

pub const SCHEMA_VERSION: u32 = 3;

/// The oldest schema version [`upgrade`] still reads.
pub const OLDEST_SCHEMA_VERSION: u32 = 1;

/// A whole run: environment, the configurations, every (profile, probe) result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunReport {
    pub schema_version: u32,
    pub breakout_version: String,
    /// The environment of the first kernel (of the only one in a run on one kernel).
    pub environment: Environment,
    /// Every kernel's environment, in run order, when the run used more than one kernel
    /// (`run --kernel A --kernel B`); empty otherwise ([`RunReport::environments`] reads both).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kernels: Vec<Environment>,
    pub profiles: Vec<ProfileInfo>,
    /// What the run was asked to cover. `None` only in files of schema 1, which did not record
    /// it: readers then take "everything the file holds" ([`RunReport::covered`]).
    #[serde(default)]
    pub selection: Option<Selection>,
    pub results: Vec<ProbeResult>,
    /// Every (workload, profile) result: the usability half of the run.
    #[serde(default)]
    pub workloads: Vec<WorkloadResult>,
    pub timings: Timings,
    /// What went wrong on the result channel although the results came back: a second result
    /// for one job (both then distrusted: the job is inconclusive), a result for a job the
    /// guest was not given, unreadable lines, an orchestrator that did not end cleanly. Each is
    /// a sign that something in the guest other than the orchestrator wrote to the channel (a
    /// payload with the guest's root, as under `none`) or that the channel was damaged, so a
    /// run with any is not trusted: `breakout run` exits 2 and `breakout gate` refuses it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channel_problems: Vec<String>,
}

/// One workload under one configuration. `verdict`: works, broken (with the failing `step`),
/// skipped (with the reason).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkloadResult {
    pub workload: String,
    pub profile: String,
    pub verdict: breakout_attacks::workloads::WorkloadVerdict,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stderr_tail: String,
    pub duration_ms: u64,
    /// The kernel release the workload ran on (as [`ProbeResult::kernel`]); empty in files that
    /// predate it: the environment's.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kernel: String,
}

/// What a run was asked to cover: the gate judges a run only against the same part of a
/// baseline, and judges layers only when both sides were attributed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selection {
    /// The configurations run, by their `name` (a profile's `name` field, not the path typed).
    pub profiles: Vec<String>,
    /// The probes run (every registered probe when none was named).
    pub probes: Vec<String>,
    /// Blocked results were attributed by ablation (`false`: `--no-ablation`).
    pub ablation: bool,
    /// The kernel image asked for with `--kernel`; `None`: the cached Debian cloud kernel.
    pub kernel: Option<String>,
    /// The positive control `none` was added because no selected profile is without layers.
    #[serde(default)]
    pub added_positive_control: bool,
    /// Every `--kernel` given, when more than one (then `kernel` is the first).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kernels: Vec<String>,
    /// The part of the selection this file holds (`run --shard K/N`); absent for a whole run and
    /// for shards merged back together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<crate::suite::shard::Shard>,
    /// The workloads run (none: `--no-workloads`, or a file from before workloads).
    #[serde(default)]
    pub workloads: Vec<String>,
}

/// What a file covers: its recorded selection, or (schema 1) what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coverage {
    pub profiles: BTreeSet<String>,
    pub probes: BTreeSet<String>,
    /// Blocked results carry attribution (recorded, or for schema 1: some blocked result has it).
    pub ablation: bool,
    /// The selection was recorded (false: inferred from a schema-1 file's contents).
    pub recorded: bool,
}

impl Coverage {
    pub fn contains(&self, profile: &str, probe: &str) -> bool {
        self.profiles.contains(profile) && self.probes.contains(probe)
    }
}

impl RunReport {
    /// The (profile, probe) pairs this file speaks for.
    pub fn covered(&self) -> Coverage {
        match &self.selection {
            Some(s) => Coverage {
                profiles: s.profiles.iter().cloned().collect(),
                probes: match s.shard {
                    Some(shard) => shard.probes_of(&s.probes).into_iter().collect(),
                    None => s.probes.iter().cloned().collect(),
                },
                ablation: s.ablation,
                recorded: true,
            },
            None => Coverage {
                profiles: self.results.iter().map(|r| r.profile.clone()).collect(),
                probes: self.results.iter().map(|r| r.probe.clone()).collect(),
                ablation: self.results.iter().any(|r| {
                    r.verdict == Verdict::Blocked
                        && r.attribution.as_ref().is_some_and(|a| !a.inferred)
                }) || !self.results.iter().any(|r| r.verdict == Verdict::Blocked),
                recorded: false,
            },
        }
    }
}

impl RunReport {
    /// Every kernel's environment, in run order (one for a run on one kernel).
    pub fn environments(&self) -> Vec<&Environment> {
        if self.kernels.is_empty() {
            vec![&self.environment]
        } else {
            self.kernels.iter().collect()
        }
    }

    /// The kernel a result was measured on: its own, or (a result built without one) the
    /// report's.
    pub fn kernel_of<'a>(&'a self, r: &'a ProbeResult) -> &'a str {
        if r.kernel.is_empty() {
            &self.environment.kernel_release
        } else {
            &r.kernel
        }
    }

    /// The kernel a workload ran on: its own, or (a result built without one) the report's.
    pub fn kernel_of_workload<'a>(&'a self, w: &'a WorkloadResult) -> &'a str {
        if w.kernel.is_empty() {
            &self.environment.kernel_release
        } else {
            &w.kernel
        }
    }

    /// The kernel releases the results were measured on, in run order (the environment's for a
    /// run without results; possibly empty when nothing recorded one).
    pub fn kernel_releases(&self) -> Vec<String> {
        let mut releases: Vec<String> = Vec::new();
        for r in &self.results {
            let k = self.kernel_of(r);
            if !releases.iter().any(|x| x == k) {
                releases.push(k.to_string());
            }
        }
        if self.results.is_empty() {
            releases = self
                .environments()
                .iter()
                .map(|e| e.kernel_release.clone())
                .collect();
            releases.dedup();
        }
        releases
    }

    /// More than one kernel: every report gets a kernel dimension.
    pub fn multi_kernel(&self) -> bool {
        self.kernel_releases().len() > 1
    }

    /// The environment of one kernel release.
    pub fn environment_of(&self, release: &str) -> Option<&Environment> {
        self.environments()
            .into_iter()
            .find(|e| e.kernel_release == release)
    }

    /// The part of the run measured on one kernel, as a run of its own (its environment, its
    /// results; `kernels` empty).
    pub fn on_kernel(&self, release: &str) -> RunReport {
        RunReport {
            schema_version: self.schema_version,
            breakout_version: self.breakout_version.clone(),
            environment: self
                .environment_of(release)
                .cloned()
                .unwrap_or_else(|| self.environment.clone()),
            kernels: Vec::new(),
            profiles: self.profiles.clone(),
            selection: self.selection.clone(),
            results: self
                .results
                .iter()
                .filter(|r| self.kernel_of(r) == release)
                .cloned()
                .collect(),
            workloads: self
                .workloads
                .iter()
                .filter(|w| self.kernel_of_workload(w) == release)
                .cloned()
                .collect(),
            timings: self.timings.clone(),
            channel_problems: self.channel_problems.clone(),
        }
    }
}

/// What the verdicts depend on, read in the guest.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Environment {
    /// `uname -s -r -v` of the guest, e.g. "Linux 6.1.0-56-cloud-amd64 #1 SMP ... Debian 6.1.192-2".
    pub kernel: String,
    /// `uname -r` alone, e.g. "6.1.0-56-cloud-amd64": what the gate compares.
    #[serde(default)]
    pub kernel_release: String,
    pub arch: String,
    pub cpus: usize,
    pub accel: String,
    /// /sys/devices/system/cpu/vulnerabilities/*
    pub vulnerabilities: BTreeMap<String, String>,
    /// /sys/kernel/security/lsm
    pub lsms: Vec<String>,
    /// kptr_restrict, dmesg_restrict, perf_event_paranoid, yama ptrace_scope, ... ("absent" when
    /// the kernel lacks the knob)
    pub sysctls: BTreeMap<String, String>,
    /// The probes of the run that came from files (`--probes DIR`), not from the suite.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub external_probes: Vec<String>,
}

/// One configuration under test: one of our profiles or an external runtime.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProfileInfo {
    pub name: String,
    /// "breakout" for our runtime; "bwrap", "crun", "unshare" for adapters.
    pub runtime: String,
    /// The layers switched on (for external runtimes: what the adapter's flags turn on).
    pub layers: Vec<Layer>,
    /// True when attribution comes from evidence only (external runtimes).
    pub inferred: bool,
}

/// The verdict of one probe under one profile, with evidence and attribution.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProbeResult {
    pub probe: String,
    pub profile: String,
    /// The kernel release (`uname -r`) the result was measured on: with `--kernel A --kernel B`
    /// one run holds each (probe, profile) once per kernel.
    #[serde(default)]
    pub kernel: String,
    pub verdict: Verdict,
    /// One line from the oracle.
    pub reason: String,
    pub evidence: Evidence,
    /// Present for `blocked` results of our runtime.
    pub attribution: Option<Attribution>,
    pub duration_ms: u64,
}

impl ProbeResult {
    /// An inconclusive verdict the oracle reached with a complete run: the payload ran, reported
    /// its steps and exited in time, and the oracle still cannot decide under this configuration
    /// (setuid-gain under `namespaces`: the payload cannot drop to uid 1000 first, so a gain
    /// cannot be told apart). It repeats on every run, unlike a timeout, a crash or a guest that
    /// went down, which say the run itself went wrong.
    pub fn structurally_inconclusive(&self) -> bool {
        self.verdict == Verdict::Inconclusive
            && !self.evidence.timed_out
            && self.evidence.setup_failure.is_none()
            && !self.evidence.steps.is_empty()
            && matches!(self.evidence.exit, Some(ExitKind::Exited { .. }))
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Evidence {
    pub steps: Vec<Step>,
    pub exit: Option<ExitKind>,
    pub cgroup: Option<CgroupEvidence>,
    pub setup_failure: Option<SetupFailure>,
    pub timed_out: bool,
    pub stderr_tail: String,
    /// The landlock layer's ABI and enforcement (full or partial) when it was on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub landlock: Option<breakout_runtime::LandlockEvidence>,
}

/// Which layers blocked the probe, found by ablation (design.md, "Attribution").
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Attribution {
    /// L such that the probe escapes under E without L.
    pub necessary: Vec<Layer>,
    /// L such that the probe is blocked with L alone over the minimum.
    pub sufficient: Vec<Layer>,
    /// The fewest layers that must be switched off for an escape, as far as the ablation runs
    /// measured it, so it cannot overstate: 1 = a single layer off lets it escape (`necessary`
    /// is not empty), 2 = no single layer off does (two or more must go), 0 = not established
    /// (the candidates do not explain the block, or nothing was attributed). See [`depth`].
    pub depth: usize,
    /// The probe's candidate layers the profile enabled: what ablation switched on and off.
    #[serde(default)]
    pub candidates: Vec<Layer>,
    /// The run with every candidate layer off escaped, so the candidate list explains the block.
    pub candidates_complete: bool,
    /// For `caps`: the capabilities that, kept alone, let the probe through.
    pub caps_detail: Vec<String>,
    /// For `seccomp`: the syscalls the filter denied on the probe's path.
    pub seccomp_denied: Vec<String>,
    /// Attribution from evidence only (no ablation possible).
    pub inferred: bool,
    pub ablation_runs: Vec<AblationRun>,
    /// For an external configuration ablated item by item: the items in the user's terms
    /// (`linux.namespaces[pid]`, `--unshare-pid`). The layer lists above are what those items
    /// stand for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<ItemAttribution>,
}

/// Attribution of an external configuration by ablating its items, named as the user wrote
/// them; capabilities and seccomp carry their drill-down:
/// `process.capabilities(CAP_SYS_PTRACE)`, `linux.seccomp(keyctl)`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ItemAttribution {
    /// Items without which the probe escapes.
    pub necessary: Vec<String>,
    /// Items that still block it with every other candidate item taken out.
    pub sufficient: Vec<String>,
    /// Items kept in every run: options breakout does not know, what the runtime always does.
    pub not_ablated: Vec<String>,
}

/// The depth of a block from what ablation measured (the definition is on
/// [`Attribution::depth`] and in docs/results-schema.md).
pub fn depth(
    sufficient: &[Layer],
    necessary: &[Layer],
    candidates_complete: bool,
    inferred: bool,
) -> usize {
    if inferred {
        // Evidence names what stopped the first attempt; nothing was switched off.
        return sufficient.len().min(2);
    }
    if !necessary.is_empty() {
        1
    } else if candidates_complete {
        2
    } else {
        0
    }
}

impl Attribution {
    /// The candidate layers: recorded, or (schema 1) read back from the runs' descriptions
    /// ("strict without pid-ns", "pid-ns alone").
    pub fn candidate_layers(&self) -> Vec<Layer> {
        if !self.candidates.is_empty() {
            return self.candidates.clone();
        }
        let mut found: Vec<Layer> = Vec::new();
        for run in &self.ablation_runs {
            let named = run
                .description
                .split_once(" without ")
                .map(|(_, rest)| rest)
                .or_else(|| run.description.strip_suffix(" alone"))
                .or_else(|| run.description.split_once(" alone (with ").map(|(l, _)| l));
            let Some(name) = named else { continue };
            let name = name.split(" (").next().unwrap_or(name);
            if let Some(layer) = Layer::ALL.into_iter().find(|l| l.name() == name) {
                if !found.contains(&layer) {
                    found.push(layer);
                }
            }
        }
        found.sort();
        found
    }

    /// The whole combination a block rests on when no single layer suffices: the necessary
    /// layers, and the other candidates when ablation shows the necessary ones do not hold
    /// alone (`partners`: the block held with all of them and survived losing any one).
    pub fn combination(&self) -> Combination {
        let candidates = self.candidate_layers();
        let others: Vec<Layer> = candidates
            .iter()
            .copied()
            .filter(|l| !self.necessary.contains(l))
            .collect();
        // A blocked run whose candidate layers are exactly the necessary ones shows they hold
        // without the others ("strict without seccomp" when seccomp was the only other).
        let necessary_alone_blocks = self.ablation_runs.iter().any(|run| {
            run.verdict == Verdict::Blocked
                && run.layers.iter().all(|l| !others.contains(l))
                && self.necessary.iter().all(|l| run.layers.contains(l))
        });
        Combination {
            required: self.necessary.clone(),
            partners: if necessary_alone_blocks {
                Vec::new()
            } else {
                others
            },
        }
    }
}

/// See [`Attribution::combination`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Combination {
    pub required: Vec<Layer>,
    pub partners: Vec<Layer>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AblationRun {
    /// e.g. "strict without pid-ns", "pid-ns alone", "strict keeping CAP_SYS_PTRACE"
    pub description: String,
    pub layers: Vec<Layer>,
    pub verdict: Verdict,
    /// The outside's reason for the verdict, which names the step that failed when the probe
    /// was blocked ("open(/srv/...) = EACCES"): why the layer is or is not credited.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Timings {
    pub boot_ms: u64,
    pub probes_ms: u64,
    pub ablation_ms: u64,
    /// The workloads' runs (host wall time).
    #[serde(default)]
    pub workloads_ms: u64,
    pub total_ms: u64,
    /// The median launch of each phase, measured in the guest (absent in older results).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launches: Option<LaunchTimings>,
}

/// Median launches of the two phases of a run, so a launch that got slower shows, and where.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LaunchTimings {
    pub probes: LaunchMedians,
    pub ablation: LaunchMedians,
}

/// The launches of one phase: how many, and the median of each part in milliseconds (guest
/// clock, one decimal). Answers taken from an earlier identical launch are not counted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LaunchMedians {
    pub launches: usize,
    /// The outside's preparation (victims, secrets, listeners).
    pub arrange_ms: f64,
    /// Start of the sandbox to the payload's end and its output read.
    pub launch_ms: f64,
    /// The outside's judgement, including any wait for a late effect.
    pub judge_ms: f64,
    /// The whole attempt.
    pub total_ms: f64,
}

impl LaunchMedians {
    /// Medians over `phases` (arrange, launch, judge of each launch).
    pub fn of(phases: &[breakout_attacks::Phases]) -> LaunchMedians {
        fn median(mut v: Vec<f64>) -> f64 {
            if v.is_empty() {
                return 0.0;
            }
            v.sort_by(f64::total_cmp);
            let m = if v.len() % 2 == 1 {
                v[v.len() / 2]
            } else {
                (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
            };
            (m * 10.0).round() / 10.0
        }
        let ms = |f: &dyn Fn(&breakout_attacks::Phases) -> std::time::Duration| {
            median(phases.iter().map(|p| f(p).as_secs_f64() * 1e3).collect())
        };
        LaunchMedians {
            launches: phases.len(),
            arrange_ms: ms(&|p| p.arrange),
            launch_ms: ms(&|p| p.launch),
            judge_ms: ms(&|p| p.judge),
            total_ms: ms(&|p| p.arrange + p.launch + p.judge),
        }
    }

    /// "176 launches, median 152.3 ms (arrange 1.2, launch 148.0, judge 0.4)".
    pub fn summary(&self) -> String {
        if self.launches == 0 {
            return "no launches".to_string();
        }
        format!(
            "{} launches, median {:.1} ms (arrange {:.1}, launch {:.1}, judge {:.1})",
            self.launches, self.total_ms, self.arrange_ms, self.launch_ms, self.judge_ms
        )
    }
}

/// One line on the guest's result channel.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum GuestEvent {
    Plan {
        total: usize,
        profiles: Vec<ProfileInfo>,
    },
    Environment(Environment),
    Started {
        probe: String,
        profile: String,
    },
    Result(ProbeResult),
    /// The probes and their ablation are done; the workloads start (the host times the phase).
    WorkloadsStarted {
        total: usize,
    },
    Workload(WorkloadResult),
    Done {
        probes_ms: u64,
        ablation_ms: u64,
        /// Absent from guests of older builds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        launches: Option<LaunchTimings>,
    },
    Error {
        message: String,
    },
    /// A launch is about to start (sent only by guests whose probes may end the guest: if the
    /// guest goes down, the host knows which launch did it).
    TrialStarted {
        key: String,
        probe: String,
        description: String,
    },
    /// The launch announced by `TrialStarted` came back; the host seeds a restarted guest with it.
    TrialFinished {
        key: String,
        record: TrialRecord,
    },
}

/// One launch of a probe under one configuration: the run under the profile or an ablation run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrialRecord {
    pub verdict: Verdict,
    pub reason: String,
    pub evidence: Evidence,
    pub duration_ms: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    #[error("missing the integer field `schema_version`")]
    NoVersion,
    #[error("results schema version {found}; this breakout reads versions {OLDEST_SCHEMA_VERSION} to {SCHEMA_VERSION} (see docs/results-schema.md)")]
    Version { found: u64 },
    #[error("{0}")]
    Json(#[from] serde_json::Error),
}

/// Read a results document of any supported schema version into the current model. Versions 1
/// and 2 lack `results[].kernel` (taken from the environment's release). Version 1
/// lacks `selection` (left `None`: "everything the file holds"), `environment.kernel_release`
/// (taken from `kernel`), `attribution.candidates` (read back from the ablation runs), and
/// counted `depth` as the number of sufficient layers (recomputed).
pub fn upgrade(text: &str) -> Result<RunReport, UpgradeError> {
    let value: serde_json::Value = serde_json::from_str(text)?;
    let found = value
        .get("schema_version")
        .and_then(|v| v.as_u64())
        .ok_or(UpgradeError::NoVersion)?;
    if !(u64::from(OLDEST_SCHEMA_VERSION)..=u64::from(SCHEMA_VERSION)).contains(&found) {
        return Err(UpgradeError::Version { found });
    }
    // Parsed from the text (not from `value`) so a wrong field is reported with its line.
    let mut report: RunReport = serde_json::from_str(text)?;
    if found < 3 {
        // Versions 1 and 2 hold one kernel, named in the environment.
        let release = match report.environment.kernel_release.as_str() {
            "" => release_of(&report.environment.kernel),
            r => r.to_string(),
        };
        for r in &mut report.results {
            r.kernel = release.clone();
        }
        report.kernels.clear();
    }
    if found < 2 {
        report.selection = None;
        for r in &mut report.results {
            if let Some(a) = &mut r.attribution {
                if !a.inferred {
                    a.candidates = a.candidate_layers();
                }
                a.depth = depth(
                    &a.sufficient,
                    &a.necessary,
                    a.candidates_complete,
                    a.inferred,
                );
            }
        }
    }
    if report.environment.kernel_release.is_empty() {
        report.environment.kernel_release = release_of(&report.environment.kernel);
    }
    Ok(report)
}

/// "6.1.0-56-cloud-amd64" from "Linux 6.1.0-56-cloud-amd64 #1 SMP ..." (or the text itself).
pub fn release_of(uname: &str) -> String {
    let mut words = uname.split_whitespace();
    match (words.next(), words.next()) {
        (Some("Linux"), Some(release)) => release.to_string(),
        (Some(first), _) => first.to_string(),
        _ => String::new(),
    }
}

/// The verdict's name as the JSON spells it; every text output writes it so.
pub fn verdict_name(v: Verdict) -> &'static str {
    match v {
        Verdict::Escaped => "escaped",
        Verdict::Blocked => "blocked",
        Verdict::Inconclusive => "inconclusive",
        Verdict::Skipped => "skipped",
    }
}

/// Whether the report knows `profile` as a configuration of our runtime with no layer on.
pub fn configuration_without_layers(report: &RunReport, profile: &str) -> bool {
    report
        .profiles
        .iter()
        .any(|p| p.name == profile && p.runtime == "breakout" && p.layers.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use Layer::*;

    #[test]
    fn launch_medians_take_each_part_on_its_own_and_round_to_a_tenth() {
        let ms = std::time::Duration::from_micros;
        let p = |a, l, j| breakout_attacks::Phases {
            arrange: ms(a),
            launch: ms(l),
            judge: ms(j),
        };
        let m = LaunchMedians::of(&[
            p(1_000, 100_000, 3_000_000),
            p(2_000, 150_040, 0),
            p(9_000, 90_000, 0),
        ]);
        assert_eq!(
            m,
            LaunchMedians {
                launches: 3,
                arrange_ms: 2.0,
                launch_ms: 100.0,
                judge_ms: 0.0,
                total_ms: 152.0,
            }
        );
        assert_eq!(LaunchMedians::of(&[]).total_ms, 0.0);
        // Older results without the block still load; new ones round-trip it.
        let t: Timings =
            serde_json::from_str(r#"{"boot_ms":1,"probes_ms":2,"ablation_ms":3,"total_ms":6}"#)
                .unwrap();
        assert!(t.launches.is_none());
    }

    #[test]
    fn depth_never_counts_past_what_was_measured() {
        // signal-same-uid under strict: three layers each block alone, yet strict without
        // pid-ns escapes: one layer from an escape.
        assert_eq!(depth(&[UserNs, PidNs, Caps], &[PidNs], true, false), 1);
        // No single layer off lets it escape: two or more must go.
        assert_eq!(depth(&[UserNs], &[], true, false), 2);
        assert_eq!(depth(&[], &[], true, false), 2);
        // tiocsti under strict: no layer alone suffices, new-session off escapes.
        assert_eq!(depth(&[], &[NewSession], true, false), 1);
        assert_eq!(depth(&[UserNs], &[], false, false), 0);
    }

    #[test]
    fn releases_come_out_of_uname_lines() {
        assert_eq!(
            release_of("Linux 6.1.0-56-cloud-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.1.192-2"),
            "6.1.0-56-cloud-amd64"
        );
        assert_eq!(release_of("6.1.0-57-cloud-amd64"), "6.1.0-57-cloud-amd64");
        assert_eq!(release_of(""), "");
    }

    fn run(description: &str, layers: &[Layer], verdict: Verdict) -> AblationRun {
        AblationRun {
            description: description.to_string(),
            layers: layers.to_vec(),
            verdict,
            reason: String::new(),
        }
    }

    #[test]
    fn a_combination_names_its_partners_unless_the_necessary_layers_hold_alone() {
        // tiocsti under strict (schema 1: candidates read back from the runs).
        let tiocsti = Attribution {
            necessary: vec![NewSession],
            candidates_complete: true,
            ablation_runs: vec![
                run("user-ns alone", &[UserNs], Verdict::Escaped),
                run("new-session alone", &[NewSession], Verdict::Escaped),
                run(
                    "strict without uid",
                    &[UserNs, Caps, Seccomp, NewSession],
                    Verdict::Blocked,
                ),
                run(
                    "strict without user-ns",
                    &[Uid, Caps, Seccomp, NewSession],
                    Verdict::Blocked,
                ),
                run(
                    "strict without caps",
                    &[UserNs, Uid, Seccomp, NewSession],
                    Verdict::Blocked,
                ),
                run(
                    "strict without seccomp",
                    &[UserNs, Uid, Caps, NewSession],
                    Verdict::Blocked,
                ),
                run(
                    "strict without new-session",
                    &[UserNs, Uid, Caps, Seccomp],
                    Verdict::Escaped,
                ),
            ],
            ..Attribution::default()
        };
        assert_eq!(
            tiocsti.candidate_layers(),
            vec![UserNs, Uid, Caps, Seccomp, NewSession]
        );
        assert_eq!(
            tiocsti.combination(),
            Combination {
                required: vec![NewSession],
                partners: vec![UserNs, Uid, Caps, Seccomp]
            }
        );
        // sysrq-trigger under docker-default: seccomp is the only other candidate and the
        // profile without it still blocks, so the three necessary layers are the whole story.
        let sysrq = Attribution {
            necessary: vec![MountNs, Caps, FsHardening],
            candidates_complete: true,
            ablation_runs: vec![
                run("mount-ns alone", &[MountNs], Verdict::Escaped),
                run(
                    "fs-hardening alone (with mount-ns, which it requires)",
                    &[MountNs, FsHardening],
                    Verdict::Escaped,
                ),
                run(
                    "docker-default without caps",
                    &[PidNs, MountNs, Seccomp, FsHardening],
                    Verdict::Escaped,
                ),
                run(
                    "docker-default without seccomp",
                    &[PidNs, MountNs, Caps, FsHardening],
                    Verdict::Blocked,
                ),
            ],
            ..Attribution::default()
        };
        assert_eq!(
            sysrq.candidate_layers(),
            vec![MountNs, Caps, Seccomp, FsHardening]
        );
        assert_eq!(sysrq.combination().partners, Vec::<Layer>::new());
    }
}
