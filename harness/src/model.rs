//! The result data model: what the guest streams back, what reports render, what the gate
//! compares. Serialized as JSON with a versioned schema (bump SCHEMA_VERSION on any breaking
//! change and document it in docs/results-schema.md).

use breakout_attacks::{Step, Verdict};
use breakout_runtime::{CgroupEvidence, ExitKind, Layer, SetupFailure};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const SCHEMA_VERSION: u32 = 1;

/// A whole run: environment, the configurations, every (profile, probe) result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunReport {
    pub schema_version: u32,
    pub breakout_version: String,
    pub environment: Environment,
    pub profiles: Vec<ProfileInfo>,
    pub results: Vec<ProbeResult>,
    pub timings: Timings,
}

/// What the verdicts depend on, read in the guest.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Environment {
    pub kernel: String,
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
    pub verdict: Verdict,
    /// One line from the oracle.
    pub reason: String,
    pub evidence: Evidence,
    /// Present for `blocked` results of our runtime.
    pub attribution: Option<Attribution>,
    pub duration_ms: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Evidence {
    pub steps: Vec<Step>,
    pub exit: Option<ExitKind>,
    pub cgroup: Option<CgroupEvidence>,
    pub setup_failure: Option<SetupFailure>,
    pub timed_out: bool,
    pub stderr_tail: String,
}

/// Which layers blocked the probe, found by ablation (design.md, "Attribution").
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Attribution {
    /// L such that the probe escapes under E without L.
    pub necessary: Vec<Layer>,
    /// L such that the probe is blocked with L alone over the minimum.
    pub sufficient: Vec<Layer>,
    /// Number of sufficient layers; 1 means one mistake away from an escape.
    pub depth: usize,
    /// The run with every candidate layer off escaped, so the candidate list explains the block.
    pub candidates_complete: bool,
    /// For `caps`: the capabilities that, kept alone, let the probe through.
    pub caps_detail: Vec<String>,
    /// For `seccomp`: the syscalls the filter denied on the probe's path.
    pub seccomp_denied: Vec<String>,
    /// Attribution from evidence only (no ablation possible).
    pub inferred: bool,
    pub ablation_runs: Vec<AblationRun>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AblationRun {
    /// e.g. "strict without pid-ns", "pid-ns alone", "strict keeping CAP_SYS_PTRACE"
    pub description: String,
    pub layers: Vec<Layer>,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Timings {
    pub boot_ms: u64,
    pub probes_ms: u64,
    pub ablation_ms: u64,
    pub total_ms: u64,
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
    Done {
        probes_ms: u64,
        ablation_ms: u64,
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
