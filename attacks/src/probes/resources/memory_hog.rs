//! memory-hog: touch far more memory than the profile allows, inside a safety cgroup that keeps
//! the guest alive even with no sandbox.

use crate::kit::{with_args, wrong_state};
use crate::world::{Charge, Measured, SampledCgroup, World};
use crate::{
    kv, Arrangement, InsideReport, Judgement, Layer, Limits, Probe, ProbeClass, ProbeError,
    ProbeMeta, RunObservation,
};
use nix::sys::mman::{mmap_anonymous, munmap, MapFlags, ProtFlags};
use std::num::NonZeroUsize;
use std::time::Duration;

pub struct MemoryHog;

const MIB: u64 = 1024 * 1024;

/// The memory judged an escape when the profile sets no limit of its own.
pub const FLOOR_WITHOUT_LIMIT: u64 = 64 * MIB;

/// How far past the limit the payload tries to go.
const OVERSHOOT: u64 = 32 * MIB;

/// Room the safety cgroup leaves above the attempt.
const SAFETY_HEADROOM: u64 = 64 * MIB;

/// Memory in the safety cgroup that is not the payload's heap (binary, page tables, a runtime).
const RUNTIME_SLACK: u64 = 8 * MIB;

/// How long the inside holds its memory so the outside's sampler sees it, where the kernel keeps
/// no high-water mark (memory.peak, Linux 5.19+).
const HOLD_MS: u64 = 300;

static META: ProbeMeta = ProbeMeta {
    id: "memory-hog",
    title: "use more memory than the limit",
    technique: "The payload maps anonymous memory well past the profile's limit and writes to \
        every page so that it is really allocated. Unbounded, this pushes the host into its OOM \
        killer, which may pick any process; here the attempt is bounded and runs in a safety \
        cgroup. A cgroup memory.max makes the kernel reclaim or OOM-kill inside the sandbox \
        only.",
    oracle: "The outside reads memory.peak (and samples memory.current) of the cgroup the payload \
        runs in: escaped when it passed the profile's memory limit (or 64 MiB when the profile \
        sets none).",
    layers: &[Layer::CgroupLimits, Layer::Seccomp],
    references: &[
        "runtime-tools linux_cgroups_memory",
        "cgroup v2 memory controller (memory.max, memory.peak)",
    ],
    class: ProbeClass::Resource,
};

impl Probe for MemoryHog {
    fn meta(&self) -> &'static ProbeMeta {
        &META
    }

    fn arrange(&self, world: &World, limits: &Limits) -> Result<Arrangement, ProbeError> {
        let threshold = limits.memory_max.unwrap_or(FLOOR_WITHOUT_LIMIT);
        let target = threshold + OVERSHOOT;
        // A limit the guest cannot even reach would turn the attempt into a guest-wide OOM.
        let available = crate::world::mem_available().map_err(ProbeError::world(META.id))?;
        if target + SAFETY_HEADROOM > available / 10 * 6 {
            return Err(ProbeError::Unsupported {
                probe: META.id,
                reason: format!(
                    "the profile's memory limit ({} MiB) is too close to this guest's available memory ({} MiB) to pass it safely; give the VM more memory",
                    threshold / MIB,
                    available / MIB
                ),
            });
        }
        let cgroup = world
            .safety_cgroup("memory-hog", None, Some(target + SAFETY_HEADROOM))
            .map_err(ProbeError::world(META.id))?;
        let hold_ms = SampledCgroup::hold_ms(&cgroup, Charge::Memory, HOLD_MS);
        let args = vec![kv("bytes", target), kv("hold_ms", hold_ms)];
        Ok(Arrangement::sampled(
            args,
            SampledCgroup::start(threshold, cgroup, Duration::from_millis(10)),
        ))
    }

    fn attempt(&self, args: &[String]) -> InsideReport {
        with_args(META.id, args, |args, steps| {
            let bytes: usize = args.get("bytes")?;
            let hold_ms: u64 = args.get("hold_ms")?;
            let Some(len) = NonZeroUsize::new(bytes) else {
                steps.bad_args("bytes must be positive");
                return Ok(());
            };
            // SAFETY: a fresh private anonymous mapping; no existing memory is affected.
            let map = steps.call(
                "map the memory",
                format!("mmap(NULL, {bytes}, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS)"),
                || unsafe {
                    mmap_anonymous(
                        None,
                        len,
                        ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                        MapFlags::MAP_PRIVATE | MapFlags::MAP_NORESERVE,
                    )
                    .map(Mapped)
                },
            );
            let Some(Mapped(ptr)) = map else {
                return Ok(());
            };
            let page = 4096usize;
            let base = ptr.as_ptr().cast::<u8>();
            let mut touched = 0usize;
            while touched < bytes {
                // SAFETY: `touched < bytes`, inside the mapping of `bytes` bytes made above,
                // which nothing else references.
                unsafe { base.add(touched).write_volatile(1) };
                touched += page;
            }
            steps.note(
                "touch every page",
                format!("{} MiB written", bytes as u64 / MIB),
            );
            std::thread::sleep(Duration::from_millis(hold_ms));
            // SAFETY: unmapping exactly the mapping made above; no reference into it remains.
            steps.call("unmap", format!("munmap({bytes})"), || unsafe {
                munmap(ptr, bytes)
            });
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
            kernel_peak,
            samples,
            cgroup,
        } = state.finish(Charge::Memory);
        let ooms = cgroup.read_key("memory.events", "oom_kill").unwrap_or(0);
        let runtime_ooms = run
            .outcome
            .and_then(|o| o.cgroup.as_ref())
            .map_or(0, |c| c.oom_kill);
        if peak > threshold + RUNTIME_SLACK {
            Judgement::escaped(format!(
                "{} MiB charged to the sandbox's cgroup, past the limit {} MiB",
                peak / MIB,
                threshold / MIB
            ))
        } else if samples == 0 && kernel_peak == 0 {
            Judgement::inconclusive("the outside could read neither memory.peak nor memory.current")
        } else if peak == 0 {
            // Nothing was ever charged where the outside measures: the sandbox ran elsewhere.
            Judgement::inconclusive(
                "nothing was ever charged to the cgroup the outside samples: the sandbox ran elsewhere, unmeasured",
            )
        } else {
            Judgement::blocked(format!(
                "at most {} MiB (limit {} MiB); OOM kills: {} in the profile's cgroup, {ooms} in the safety cgroup",
                peak / MIB,
                threshold / MIB,
                runtime_ooms
            ))
        }
    }
}

struct Mapped(std::ptr::NonNull<std::ffi::c_void>);

impl crate::report::StepValue for Mapped {
    fn step_value(&self) -> i64 {
        self.0.as_ptr() as i64
    }
}
