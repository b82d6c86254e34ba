//! breakout-attacks: the probes.
//!
//! A probe has two halves. The inside half (`Probe::attempt`) runs inside the sandbox, started by
//! the `breakout-probe ID ARGS...` binary, and prints one [`InsideReport`] as JSON on stdout. It
//! takes everything it needs to know about the world from its arguments, so the same binary runs
//! unchanged under bubblewrap or crun. The outside half arranges the world before the run
//! (`Probe::arrange`) and judges after it (`Probe::judge`) from what the outside can observe: a
//! probe's claim of success (a return code, a step that "worked") is never proof of an escape.
//! Proof is a state change the outside sees (a victim dead through its pidfd, its own hostname
//! changed, a listener it reached, a cgroup counter past the limit) or a fresh per-attempt secret
//! in the report that the inside could only have obtained by escaping.
//!
//! Layers, lowest first (tests/layering.rs checks the first two): [`world`] (what the outside
//! plants and watches, the lock for machine-wide state), `kit` (what the probes share: inside
//! arguments, verdicts, canaries, sysctls, device nodes), [`probes`] (one file each, grouped by
//! what they attack). Beside them: [`driver`] (one attempt start to finish, and
//! [`DirectLauncher`], the unsandboxed positive control), [`report::Steps`] (the inside's step
//! recorder), [`args`] (`key=value` arguments), and the registry [`all_probes`]/[`probe`].

pub mod args;
pub mod driver;
pub mod external;
pub(crate) mod kit;
pub mod pipe;
pub mod probes;
pub mod report;
pub mod workloads;
pub mod world;

pub use args::{kv, ArgError, Args};
pub use breakout_runtime::Layer;
pub use driver::{run_probe, DirectLauncher, Phases, ProbeRun};
pub use report::{InsideReport, Step, Steps};

use breakout_runtime::Outcome;
use serde::{Deserialize, Serialize};
use std::any::Any;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

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
    /// The outside's private state for `judge` (expected secret, victim pidfd, ...). Guards in it
    /// (victims, servers, cgroups) are torn down when the arrangement is dropped after `judge`.
    pub state: Box<dyn Any + Send>,
    /// Run the payload in this cgroup (a safety cgroup for resource probes); the driver passes it
    /// in `LaunchRequest::cgroup`. It is the attempt's own: torn down with the arrangement, and
    /// killed by the driver after `judge` if still there. Without one, the driver runs the
    /// payload in a fresh attempt cgroup when the world makes them.
    pub cgroup: Option<PathBuf>,
    /// A terminal slave the launcher makes the payload's stdin and controlling terminal (the
    /// outside keeps the master in `state`).
    pub controlling_tty: Option<OwnedFd>,
    /// The inside's end of a socket pair the launcher makes the payload's stdin; the outside
    /// keeps the other end in `state` (`kit::sync`: a channel that carries timing, never a
    /// verdict). Not together with `controlling_tty`, which is stdin too.
    pub stdin: Option<OwnedFd>,
}

impl Arrangement {
    pub fn new(args: Vec<String>, state: impl Any + Send) -> Self {
        Arrangement {
            args,
            state: Box::new(state),
            cgroup: None,
            controlling_tty: None,
            stdin: None,
        }
    }

    /// Runs the payload in the cgroup of `sampled`, which stays the state for the judge (the
    /// resource probes' arrangement).
    pub fn sampled(args: Vec<String>, sampled: world::SampledCgroup) -> Self {
        let path = sampled.cgroup.path().to_path_buf();
        Arrangement::new(args, sampled).with_cgroup(path)
    }

    pub fn with_cgroup(mut self, cgroup: PathBuf) -> Self {
        self.cgroup = Some(cgroup);
        self
    }

    pub fn with_controlling_tty(mut self, tty: OwnedFd) -> Self {
        self.controlling_tty = Some(tty);
        self
    }

    pub fn with_stdin(mut self, fd: OwnedFd) -> Self {
        self.stdin = Some(fd);
        self
    }

    /// The state `arrange` stored, by type; None when `judge` asks for the wrong type (a bug the
    /// caller reports as an inconclusive judgement rather than a panic).
    pub fn state<T: Any>(&self) -> Option<&T> {
        self.state.downcast_ref::<T>()
    }
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

impl Judgement {
    pub fn new(verdict: Verdict, reason: impl Into<String>) -> Self {
        Judgement {
            verdict,
            reason: reason.into(),
        }
    }
    pub fn escaped(reason: impl Into<String>) -> Self {
        Self::new(Verdict::Escaped, reason)
    }
    pub fn blocked(reason: impl Into<String>) -> Self {
        Self::new(Verdict::Blocked, reason)
    }
    pub fn inconclusive(reason: impl Into<String>) -> Self {
        Self::new(Verdict::Inconclusive, reason)
    }
    pub fn skipped(reason: impl Into<String>) -> Self {
        Self::new(Verdict::Skipped, reason)
    }
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
    #[error("probe {probe}: arranging the world failed: {source}")]
    World {
        probe: &'static str,
        #[source]
        source: world::WorldError,
    },
}

impl ProbeError {
    /// An arrange step that failed with an I/O error.
    pub fn arrange(probe: &'static str, step: impl Into<String>, source: std::io::Error) -> Self {
        ProbeError::Arrange {
            probe,
            step: step.into(),
            source,
        }
    }

    /// A feature the probe needs is absent here: the probe is skipped.
    pub fn unsupported(probe: &'static str, reason: impl Into<String>) -> Self {
        ProbeError::Unsupported {
            probe,
            reason: reason.into(),
        }
    }

    /// Maps a world helper's error: a missing feature becomes `Unsupported` (the probe is
    /// skipped), anything else a failed arrangement.
    pub fn world(probe: &'static str) -> impl FnOnce(world::WorldError) -> ProbeError {
        move |source| match source {
            world::WorldError::Unsupported(reason) => ProbeError::Unsupported { probe, reason },
            source => ProbeError::World { probe, source },
        }
    }
}

/// One probe. Implementations live in `probes/`, one file each, grouped by what they attack.
pub trait Probe: Send + Sync {
    fn meta(&self) -> &'static ProbeMeta;
    /// Outside, before the run: plant victims, canaries, listeners; return the inside's args.
    fn arrange(&self, world: &world::World, limits: &Limits) -> Result<Arrangement, ProbeError>;
    /// Inside: the attempt. Must not panic; every step goes into the report.
    fn attempt(&self, args: &[String]) -> InsideReport;
    /// Outside, after the run: judge from outside observation only.
    fn judge(
        &self,
        world: &world::World,
        arrangement: Arrangement,
        run: &RunObservation,
    ) -> Judgement;
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
    /// `breakout-probe ID ARGS...` (`argv[0]` is the probe binary's path as seen by the sandbox).
    pub argv: Vec<String>,
    /// Run the payload in this cgroup v2 directory (a safety cgroup for resource probes, a
    /// cgroup the outside watches, or the attempt's own cgroup the driver kills once the attempt
    /// is judged). Our runtime passes it as `Payload::outer_cgroup` (its own leaf, if any, goes
    /// below it); the adapters make their launch cgroup below it.
    pub cgroup: Option<std::path::PathBuf>,
    /// Kill the payload (its whole cgroup / pid namespace) after this long; `timed_out` is set.
    pub timeout: std::time::Duration,
    /// A terminal the outside holds the master of: the launcher makes it the payload's stdin and
    /// its controlling terminal before the sandbox's own layers run (the tiocsti probe's world).
    pub controlling_tty: Option<std::os::fd::RawFd>,
    /// A descriptor the launcher makes the payload's stdin, as it is (no terminal); None means
    /// /dev/null. The probes' timing channel (`kit::sync`): a launcher that cannot pass it gives
    /// /dev/null, and the inside then falls back to a fixed window. Never set together with
    /// `controlling_tty`.
    pub stdin: Option<std::os::fd::RawFd>,
}

/// Starts `breakout-probe ARGS...` in some sandbox (our runtime under a profile, bwrap, crun, or
/// no sandbox for development) and waits for it, killing it at its timeout.
pub trait Launcher {
    fn launch(&self, request: &LaunchRequest) -> Result<Launched, String>;
}

/// Every probe: the compiled-in ones ([`probes`]), then the file probes registered in this
/// process ([`external`]).
pub fn all_probes() -> Vec<&'static dyn Probe> {
    let mut all = all_builtin();
    all.extend(external::registered());
    all
}

/// The probes compiled in (no file probes).
pub fn all_builtin() -> Vec<&'static dyn Probe> {
    probes::probes()
}

/// The probe with this id.
pub fn probe(id: &str) -> Option<&'static dyn Probe> {
    all_probes().into_iter().find(|p| p.meta().id == id)
}
