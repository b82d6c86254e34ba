//! fork-bomb: fork a bounded number of children past the profile's process limit, inside a
//! safety cgroup that keeps the guest alive even with no sandbox.

use crate::kit::{with_args, wrong_state};
use crate::world::{Charge, Measured, SampledCgroup, World};
use crate::{
    kv, Arrangement, InsideReport, Judgement, Layer, Limits, Probe, ProbeClass, ProbeError,
    ProbeMeta, RunObservation,
};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::{fork, ForkResult, Pid};
use std::time::Duration;

pub struct ForkBomb;

/// The process count judged an escape when the profile sets no limit of its own.
pub const CEILING_WITHOUT_LIMIT: u64 = 200;

/// How far past the limit the payload tries to go.
const OVERSHOOT: u64 = 50;

/// Room the safety cgroup leaves above the attempt (the runtime's own helpers may sit in it).
const SAFETY_HEADROOM: u64 = 64;

/// Processes in the safety cgroup that are not the payload's: a runtime's init or supervisor.
const RUNTIME_SLACK: u64 = 4;

/// The most processes the probe ever forks (a guest of 1 GiB holds this many sleepers easily).
const MAX_TARGET: u64 = 4096;

/// How long the inside holds its children so the outside's sampler sees the peak, where the
/// kernel keeps no high-water mark (pids.peak; older kernels lack it).
const HOLD_MS: u64 = 500;

static META: ProbeMeta = ProbeMeta {
    id: "fork-bomb",
    title: "fork past the process limit",
    technique: "The payload forks children that sleep, one after another, until a fork fails or \
        it holds more processes than the profile allows. Unbounded, this starves the host of \
        pids and memory; here the loop is bounded and runs in a safety cgroup. A cgroup pids.max \
        caps the sandbox's whole tree; RLIMIT_NPROC caps the uid's processes but does not bind \
        root, so it only helps together with a uid change.",
    oracle: "The outside samples pids.current of the cgroup the payload runs in (and pids.peak \
        where the kernel has it): escaped when the count passed the profile's pids limit (or \
        200 when the profile sets none).",
    layers: &[Layer::CgroupLimits, Layer::Rlimits, Layer::Seccomp],
    references: &[
        "runtime-tools linux_cgroups_pids",
        "cgroup v2 pids controller",
        "setrlimit(2) RLIMIT_NPROC",
    ],
    class: ProbeClass::Resource,
};

/// The process count above which the run is an escape.
fn threshold(limits: &Limits) -> u64 {
    match (limits.pids_max, limits.nproc) {
        (Some(a), Some(b)) => a.min(b),
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => CEILING_WITHOUT_LIMIT,
    }
}

impl Probe for ForkBomb {
    fn meta(&self) -> &'static ProbeMeta {
        &META
    }

    fn arrange(&self, world: &World, limits: &Limits) -> Result<Arrangement, ProbeError> {
        let threshold = threshold(limits);
        let target = threshold + OVERSHOOT;
        if target > MAX_TARGET {
            return Err(ProbeError::Unsupported {
                probe: META.id,
                reason: format!(
                    "the profile's process limit {threshold} is above what this probe forks ({MAX_TARGET}) without risking the guest"
                ),
            });
        }
        let cgroup = world
            .safety_cgroup("fork-bomb", Some(target + SAFETY_HEADROOM), None)
            .map_err(ProbeError::world(META.id))?;
        let hold_ms = SampledCgroup::hold_ms(&cgroup, Charge::Pids, HOLD_MS);
        let args = vec![kv("count", target), kv("hold_ms", hold_ms)];
        Ok(Arrangement::sampled(
            args,
            SampledCgroup::start(threshold, cgroup, Duration::from_millis(5)),
        ))
    }

    fn attempt(&self, args: &[String]) -> InsideReport {
        with_args(META.id, args, |args, steps| {
            let count: u64 = args.get("count")?;
            let hold_ms: u64 = args.get("hold_ms")?;
            let mut children: Vec<Pid> = Vec::new();
            let mut failure = None;
            for _ in 0..count {
                // SAFETY: the child only calls pause(), which is async-signal-safe, and never
                // returns into Rust code that could touch state shared with other threads.
                match unsafe { fork() } {
                    Ok(ForkResult::Child) => loop {
                        nix::unistd::pause();
                    },
                    Ok(ForkResult::Parent { child }) => children.push(child),
                    Err(errno) => {
                        failure = Some(errno);
                        break;
                    }
                }
            }
            steps.call(
                "fork until refused",
                format!("fork() x {count}"),
                // The refusal is the evidence; the count goes into the data.
                || match failure {
                    Some(errno) => Err(errno),
                    None => Ok(children.len()),
                },
            );
            steps.data(match failure {
                Some(errno) => format!("{} children, then fork failed: {errno:?}", children.len()),
                None => format!("{} children, no fork refused", children.len()),
            });
            std::thread::sleep(Duration::from_millis(hold_ms));
            for child in &children {
                let _ = kill(*child, Signal::SIGKILL);
            }
            for child in &children {
                let _ = waitpid(*child, None);
            }
            Ok(())
        })
    }

    fn judge(&self, _world: &World, arrangement: Arrangement, run: &RunObservation) -> Judgement {
        let Ok(state) = arrangement.state.downcast::<SampledCgroup>() else {
            return wrong_state(META.id);
        };
        let Measured {
            threshold,
            peak,
            samples,
            cgroup,
            ..
        } = state.finish(Charge::Pids);
        let refused = cgroup.read_key("pids.events", "max").unwrap_or(0);
        let profile_refused = run
            .outcome
            .and_then(|o| o.cgroup.as_ref())
            .map_or(0, |c| c.pids_max_hits);
        let inside = run.inside.map(|r| r.failures()).unwrap_or_default();
        if peak > threshold + RUNTIME_SLACK {
            Judgement::escaped(format!(
                "{peak} processes in the sandbox's cgroup, past the limit {threshold} ({} samples)",
                samples
            ))
        } else if samples == 0 {
            Judgement::inconclusive("the outside's sampler took no sample")
        } else if peak == 0 {
            // Nothing of the sandbox ever ran where the outside counts: the count cannot decide
            // (a runtime that never joins its cgroup must not read as a fork bomb stopped).
            Judgement::inconclusive(
                "no process of the sandbox was ever seen in the cgroup the outside samples: it ran elsewhere, uncounted",
            )
        } else {
            Judgement::blocked(format!(
                "at most {peak} processes (limit {threshold}); forks refused by pids.max: {profile_refused} in the profile's cgroup, {refused} in the safety cgroup; {inside}"
            ))
        }
    }
}
