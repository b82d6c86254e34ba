//! breakout-attacks: the probes.
//!
//! A probe has two halves. The inside half (`Probe::attempt`) runs inside the sandbox, started by
//! the `breakout-probe ID ARGS...` binary, and prints one [`InsideReport`] as JSON on stdout. It
//! takes everything it needs to know about the world from its arguments, so the same binary runs
//! unchanged under bubblewrap or crun. The outside half arranges the world before the run
//! (`Probe::arrange`) and judges after it (`Probe::judge`) from what the outside can observe: a
//! probe's own report is never proof of an escape.

pub mod report;
pub mod world;

pub use breakout_runtime::Layer;
pub use report::{InsideReport, Step};

use breakout_runtime::Outcome;
use serde::{Deserialize, Serialize};
use std::any::Any;

/// How a probe must be scheduled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProbeClass {
    /// Runs anywhere, one after another.
    Plain,
    /// Eats a resource (pids, memory, cpu, fds): runs under the harness's safety cgroup.
    Resource,
    /// Its escape ends the guest (reboot, kexec, panic): runs in a VM of its own.
    EndsGuest,
}

/// What a probe is, for `list`, `explain`, reports and cheap ablation.
#[derive(Debug, Clone, Copy)]
pub struct ProbeMeta {
    pub id: &'static str,
    pub title: &'static str,
    /// Two or three sentences for a student: what the attempt does and why it works on a bare
    /// Linux process.
    pub technique: &'static str,
    /// How the outside proves an escape.
    pub oracle: &'static str,
    /// The layers that could stop it (the candidates ablation tests).
    pub layers: &'static [Layer],
    /// CVEs, public tools, test suites.
    pub references: &'static [&'static str],
    pub class: ProbeClass,
}

/// The four verdicts of design.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Escaped,
    Blocked,
    Inconclusive,
    Skipped,
}

/// What the outside prepared for one attempt.
pub struct Arrangement {
    /// Arguments for `breakout-probe ID ARGS...`.
    pub args: Vec<String>,
    /// The outside's private state for `judge` (expected secret, victim pidfd, ...).
    pub state: Box<dyn Any + Send>,
}

/// What the limits of the sandbox are, so resource probes judge against the profile's numbers.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Limits {
    pub pids_max: Option<u64>,
    pub memory_max: Option<u64>,
    pub nproc: Option<u64>,
    pub nofile: Option<u64>,
}

/// What the outside saw of the run.
pub struct RunObservation<'a> {
    /// How the payload ended and the cgroup evidence (external runtimes leave `cgroup` empty).
    pub outcome: Option<&'a Outcome>,
    /// The inside half's report, if it printed one that parsed.
    pub inside: Option<&'a InsideReport>,
    /// The payload's stderr (tail), for diagnosis.
    pub stderr: &'a str,
    /// The harness killed the payload at the per-probe timeout.
    pub timed_out: bool,
    pub limits: &'a Limits,
}

/// The outside's judgement of one attempt.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Judgement {
    pub verdict: Verdict,
    /// One line: what the oracle saw ("victim pid 812 still alive", "secret read through fd 5").
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("probe {probe}: arranging the world failed at {step}: {source}")]
    Arrange {
        probe: &'static str,
        step: String,
        #[source]
        source: std::io::Error,
    },
    #[error("probe {probe}: feature missing: {reason}")]
    Unsupported { probe: &'static str, reason: String },
}

/// One probe. Implementations live in `probes/`, one file each.
pub trait Probe: Send + Sync {
    fn meta(&self) -> &'static ProbeMeta;
    /// Outside, before the run: plant victims, canaries, listeners; return the inside's args.
    fn arrange(&self, world: &world::World, limits: &Limits) -> Result<Arrangement, ProbeError>;
    /// Inside: the attempt. Must not panic; every step goes into the report.
    fn attempt(&self, args: &[String]) -> InsideReport;
    /// Outside, after the run: judge from outside observation only.
    fn judge(&self, world: &world::World, arrangement: Arrangement, run: &RunObservation) -> Judgement;
}

/// The output of one sandboxed launch of `breakout-probe`, whatever runtime started it.
pub struct Launched {
    /// Our runtime's outcome; external runtimes fill `status` only (cgroup evidence empty).
    pub outcome: Option<Outcome>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub timed_out: bool,
}

/// What the outside asks of a launch, beyond the argv.
pub struct LaunchRequest {
    /// `breakout-probe ID ARGS...` (argv[0] is the probe binary's path as seen by the sandbox).
    pub argv: Vec<String>,
    /// Run the payload in this cgroup v2 directory (a safety cgroup for resource probes, or a
    /// cgroup the outside watches). Our runtime passes it as `Payload::outer_cgroup`.
    pub cgroup: Option<std::path::PathBuf>,
    /// Kill the payload (its whole cgroup / pid namespace) after this long; `timed_out` is set.
    pub timeout: std::time::Duration,
    /// A terminal the outside holds the master of: the launcher makes it the payload's stdin and
    /// its controlling terminal before the sandbox's own layers run (the tiocsti probe's world).
    pub controlling_tty: Option<std::os::fd::RawFd>,
}

/// Starts `breakout-probe ARGS...` in some sandbox (our runtime under a profile, bwrap, crun, or
/// no sandbox for development) and waits for it, killing it at its timeout.
pub trait Launcher {
    fn launch(&self, request: &LaunchRequest) -> Result<Launched, String>;
}
