//! fd-exhaustion: hold more open descriptors than the profile's RLIMIT_NOFILE, raising the limit
//! first where the process may.

use crate::kit::{with_args, wrong_state};
use crate::world::{
    hold_until_nudged, is_named, nudge_if_named, Look, SafetyCgroup, Watcher, World,
};
use crate::{
    kv, Arrangement, InsideReport, Judgement, Layer, Limits, Probe, ProbeClass, ProbeError,
    ProbeMeta, RunObservation,
};
use nix::sys::resource::{getrlimit, setrlimit, Resource};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub struct FdExhaustion;

/// The descriptor count judged an escape when the profile sets no limit (the kernel's default
/// hard RLIMIT_NOFILE).
pub const CEILING_WITHOUT_LIMIT: u64 = 4096;

const OVERSHOOT: u64 = 256;

/// How long the inside holds its descriptors when it cannot tell the outside it is holding them
/// (the signal mask or the name cannot be set): the sampler's interval many times over.
const HOLD_MS: u64 = 500;

/// The longest the inside, once it has told the outside it holds its descriptors, waits for the
/// outside to count them. The outside answers after its next sample, so this bound is reached
/// only when the outside never saw the process (it ran outside the sampled cgroup), or a loaded
/// guest starves the sampler for this long.
const COUNTED_WAIT_MS: u64 = 5000;

/// The name (comm) the payload takes once it holds every descriptor it will get and waits for
/// the outside's nudge (`world::hold_until_nudged`): the outside counts a process of that name,
/// then nudges it. Set only after the duplication loop, so a count under this name is the
/// payload's peak. The sampler looks only at the processes in its attempt's cgroup, so one name
/// serves every attempt.
const HOLDING_COMM: &std::ffi::CStr = c"bo-fds-holding";

/// Descriptors a process has that the payload did not open (stdio, a runtime's leftovers).
const SLACK: u64 = 8;

static META: ProbeMeta = ProbeMeta {
    id: "fd-exhaustion",
    title: "hold more open files than the limit",
    technique: "Every open descriptor pins kernel memory, and the system-wide file table is \
        shared by everyone, so a sandbox caps descriptors with RLIMIT_NOFILE. The payload first \
        raises its soft limit to the hard one and tries to raise the hard limit (allowed with \
        CAP_SYS_RESOURCE), then duplicates a descriptor until refused or past the limit. A \
        root payload with its capabilities simply raises the limit, so rlimits bind only together \
        with dropped capabilities.",
    oracle: "The outside counts the entries of /proc/<pid>/fd of every process in the payload's \
        cgroup while it runs: escaped when one process held more descriptors than the profile's \
        RLIMIT_NOFILE (or 4096 when the profile sets none).",
    layers: &[
        Layer::Rlimits,
        Layer::Caps,
        Layer::Uid,
        Layer::UserNs,
        Layer::Seccomp,
    ],
    references: &[
        "runtime-tools process_rlimits",
        "setrlimit(2) RLIMIT_NOFILE",
        "capabilities(7) CAP_SYS_RESOURCE",
    ],
    class: ProbeClass::Resource,
};

fn pids_in(tree: &Path, out: &mut Vec<String>) {
    if let Ok(text) = std::fs::read_to_string(tree.join("cgroup.procs")) {
        out.extend(text.lines().map(str::to_string));
    }
    if let Ok(entries) = std::fs::read_dir(tree) {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                pids_in(&e.path(), out);
            }
        }
    }
}

/// The largest descriptor count of any process in the tree, and how many samples were taken.
#[derive(Debug, Default)]
struct FdPeak {
    peak: u64,
    samples: u64,
    /// Counts taken of a payload that said it was holding (and then told to go on).
    counted_holding: u64,
}

/// Samples the descriptor counts of the processes in a cgroup tree until finished. A process
/// that says it is holding ([`HOLDING_COMM`]) is counted and then nudged, so the payload holds
/// exactly as long as the outside needs to see its peak.
fn sample_fds(tree: PathBuf) -> Watcher<FdPeak> {
    Watcher::start(Duration::from_millis(20), FdPeak::default(), move |seen| {
        let mut pids = Vec::new();
        pids_in(&tree, &mut pids);
        for pid in pids.iter().filter_map(|p| p.parse::<i32>().ok()) {
            // The name first: read as holding, the count that follows is the held peak.
            let holding = is_named(pid, HOLDING_COMM);
            if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
                seen.peak = seen.peak.max(dir.count() as u64);
                // The pid comes from the cgroup made for this attempt; a nudge lost to an exit
                // in between ends nothing but the payload's wait.
                if holding && nudge_if_named(pid, HOLDING_COMM) {
                    seen.counted_holding += 1;
                }
            }
        }
        seen.samples += 1;
        Look::Again
    })
}

struct State {
    threshold: u64,
    sampler: Watcher<FdPeak>,
    _cgroup: SafetyCgroup,
}

impl Probe for FdExhaustion {
    fn meta(&self) -> &'static ProbeMeta {
        &META
    }

    fn arrange(&self, world: &World, limits: &Limits) -> Result<Arrangement, ProbeError> {
        let threshold = limits.nofile.unwrap_or(CEILING_WITHOUT_LIMIT);
        let target = threshold + OVERSHOOT;
        let cgroup = world
            .safety_cgroup("fd-exhaustion", Some(64), None)
            .map_err(ProbeError::world(META.id))?;
        let sampler = sample_fds(cgroup.path().to_path_buf());
        let path = cgroup.path().to_path_buf();
        Ok(Arrangement::new(
            vec![
                kv("count", target),
                kv("hold_ms", HOLD_MS),
                kv("counted_wait_ms", COUNTED_WAIT_MS),
            ],
            State {
                threshold,
                sampler,
                _cgroup: cgroup,
            },
        )
        .with_cgroup(path))
    }

    fn attempt(&self, args: &[String]) -> InsideReport {
        with_args(META.id, args, |args, steps| {
            let count: u64 = args.get("count")?;
            let hold_ms: u64 = args.get("hold_ms")?;
            let counted_wait_ms: u64 = args.get("counted_wait_ms")?;
            let limits = steps.call("read the limit", "getrlimit(RLIMIT_NOFILE)", || {
                getrlimit(Resource::RLIMIT_NOFILE)
                    .map(|(soft, hard)| format!("soft {soft} hard {hard}"))
            });
            if let Some(text) = limits {
                steps.data(text);
            }
            let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap_or((0, 0));
            let want = count + 16;
            if hard < want {
                steps.call(
                    "raise the hard limit (CAP_SYS_RESOURCE)",
                    format!("setrlimit(RLIMIT_NOFILE, {want}, {want})"),
                    || setrlimit(Resource::RLIMIT_NOFILE, want, want),
                );
            }
            let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap_or((0, 0));
            steps.call(
                "raise the soft limit to the hard one",
                format!("setrlimit(RLIMIT_NOFILE, {hard}, {hard})"),
                || setrlimit(Resource::RLIMIT_NOFILE, hard, hard),
            );
            let mut held: Vec<OwnedFd> = Vec::new();
            let mut failure = None;
            let base =
                match std::fs::File::open("/proc/self/exe").or_else(|_| std::fs::File::open("/")) {
                    Ok(f) => OwnedFd::from(f),
                    Err(e) => {
                        steps.note("open a descriptor to duplicate", e.to_string());
                        return Ok(());
                    }
                };
            while (held.len() as u64) < count {
                match base.try_clone() {
                    Ok(fd) => held.push(fd),
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
            steps.call(
                "duplicate until refused",
                format!("fcntl(F_DUPFD_CLOEXEC) x {count}"),
                // The refusal is the evidence; the count goes into the data.
                || match &failure {
                    Some(e) => Err(nix::errno::Errno::from_raw(
                        e.raw_os_error().unwrap_or(libc::EIO),
                    )),
                    None => Ok(held.len()),
                },
            );
            steps.data(match &failure {
                Some(e) => format!("{} descriptors, then: {e}", held.len()),
                None => format!("{} descriptors, none refused", held.len()),
            });
            hold_until_nudged(
                HOLDING_COMM,
                Duration::from_millis(hold_ms),
                Duration::from_millis(counted_wait_ms),
            );
            Ok(())
        })
    }

    fn judge(&self, _world: &World, arrangement: Arrangement, run: &RunObservation) -> Judgement {
        let Ok(state) = arrangement.state.downcast::<State>() else {
            return wrong_state(META.id);
        };
        let State {
            threshold, sampler, ..
        } = *state;
        let FdPeak {
            peak,
            samples,
            counted_holding,
        } = sampler.finish().unwrap_or_default();
        let inside = run.inside.map(|r| r.failures()).unwrap_or_default();
        if peak > threshold + SLACK {
            Judgement::escaped(format!(
                "a process in the sandbox held {peak} descriptors, past the limit {threshold}"
            ))
        } else if samples == 0 {
            Judgement::inconclusive("the outside's sampler took no sample")
        } else if peak == 0 {
            // Every process holds at least one descriptor: none seen means the sandbox ran
            // outside the cgroup the outside samples, uncounted.
            Judgement::inconclusive(
                "no process of the sandbox was ever seen in the cgroup the outside samples: it ran elsewhere, uncounted",
            )
        } else {
            let when = if counted_holding > 0 {
                "counted while the payload held them"
            } else {
                "the payload never said it was holding; sampled during a fixed hold"
            };
            Judgement::blocked(format!(
                "at most {peak} descriptors in one process (limit {threshold}; {when}); {inside}"
            ))
        }
    }
}
