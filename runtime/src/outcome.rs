//! What a finished sandbox leaves behind: how the payload ended and the evidence the layers left.

use serde::{Deserialize, Serialize};

/// How the payload process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum ExitKind {
    Exited { code: i32 },
    Signaled { signal: i32, core_dumped: bool },
}

impl ExitKind {
    /// The shell convention: the exit code, or 128+N for a signal.
    pub fn code(self) -> i32 {
        match self {
            ExitKind::Exited { code } => code,
            ExitKind::Signaled { signal, .. } => 128 + signal,
        }
    }
}

/// Counters read from the sandbox's leaf cgroup after the payload ended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupEvidence {
    /// memory.events `oom`
    pub oom: u64,
    /// memory.events `oom_kill`
    pub oom_kill: u64,
    /// memory.events `max`: times usage hit memory.max
    pub memory_max_hits: u64,
    /// pids.events `max`: forks refused by pids.max
    pub pids_max_hits: u64,
    /// memory.peak in bytes, when the kernel has it
    pub memory_peak: Option<u64>,
    /// pids.peak, when the kernel has it
    pub pids_peak: Option<u64>,
    /// cpu.stat `nr_throttled`
    pub cpu_nr_throttled: u64,
    /// cpu.stat `throttled_usec`
    pub cpu_throttled_usec: u64,
}

/// A setup step in the child that failed before the payload ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetupFailure {
    /// The step, e.g. "mount-ns: pivot_root".
    pub step: String,
    /// The syscall with its key arguments, e.g. "pivot_root(\".\", \".\")".
    pub syscall: String,
    pub errno: i32,
}

impl SetupFailure {
    /// The errno's symbolic name ("EINVAL").
    pub fn errno_name(&self) -> String {
        format!("{:?}", nix::errno::Errno::from_raw(self.errno))
    }
}

impl std::fmt::Display for SetupFailure {
    /// `sandbox setup failed at pivot_root(".", "."): EINVAL (layer mount-ns)`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "sandbox setup failed at {}: {}",
            self.syscall,
            self.errno_name()
        )?;
        if self.step != "runtime" {
            write!(f, " (layer {})", self.step)?;
        }
        Ok(())
    }
}

/// Everything `Sandbox::wait` returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub status: ExitKind,
    /// Present when the cgroup-limits layer (or an outer cgroup given by the caller) was used.
    pub cgroup: Option<CgroupEvidence>,
    /// Present when the payload never ran because setup failed (status is then 125).
    pub setup_failure: Option<SetupFailure>,
    /// Present when the landlock layer was on: the kernel's ABI and whether the ruleset was
    /// fully or only partially enforced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub landlock: Option<crate::layers::landlock::LandlockEvidence>,
    /// Present when the payload died of SIGSYS under a seccomp filter: the syscall, from the
    /// kernel's audit record when readable. Its Display is the one line to show the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seccomp_kill: Option<crate::seccomp::FilterKill>,
    /// Present when the sandbox recorded its syscalls (`SandboxConfig::set_record_syscalls`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording: Option<crate::seccomp::Recording>,
}
