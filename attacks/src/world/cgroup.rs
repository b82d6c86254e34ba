//! Safety cgroups for resource probes: a fresh cgroup v2 directory under
//! `<root>/breakout-safety/` with limits well above the profile's, so that a fork bomb or a memory
//! hog cannot take the guest down even under `none`, and a sampler that records the peaks the
//! outside saw (pids.peak is missing on older kernels). Killed and removed on Drop.
//!
//! Attempt cgroups for every other attempt: a fresh, limitless cgroup v2 directory under
//! `<root>/breakout-attempts/` that the payload is launched in (`LaunchRequest::cgroup`; our
//! runtime nests its own leaf below it) and that the driver kills with cgroup.kill once the attempt
//! is judged. Without it a process the payload daemonized outlives the attempt whenever the
//! launch has neither a pid namespace nor a cgroup leaf of its own (`none`, "uid alone"), and goes
//! on acting on later attempts (a daemon signalling every payload of uid 101000 made later blocks
//! look like seccomp's).

use super::watch::{Look, Watcher};
use super::{WorldError, ATTEMPT_CGROUP, SAFETY_CGROUP};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Controllers the safety cgroup limits with.
const REQUIRED_CONTROLLERS: &[&str] = &["pids", "memory"];

/// Controllers passed on to a runtime's own leaf when the guest has them.
const OPTIONAL_CONTROLLERS: &[&str] = &["cpu", "io", "cpuset"];

/// How long Drop waits for a killed cgroup to empty before removing it.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub struct SafetyCgroup {
    path: PathBuf,
}

fn is_cgroup2(path: &Path) -> bool {
    nix::sys::statfs::statfs(path)
        .map(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
        .unwrap_or(false)
}

fn write_file(path: &Path, value: &str) -> Result<(), WorldError> {
    fs::write(path, value).map_err(|e| WorldError::io("writing cgroup file", path, e))
}

impl SafetyCgroup {
    pub(super) fn create(
        root: &Path,
        name: &str,
        pids_max: Option<u64>,
        memory_max: Option<u64>,
    ) -> Result<Self, WorldError> {
        if !is_cgroup2(root) {
            return Err(WorldError::Unsupported(format!(
                "{} is not a cgroup v2 mount (safety cgroups need cgroup v2)",
                root.display()
            )));
        }
        let parent = delegating_parent(root, SAFETY_CGROUP, REQUIRED_CONTROLLERS)?;
        let path = parent.join(name);
        fs::create_dir(&path).map_err(|e| WorldError::io("creating cgroup", &path, e))?;
        let cg = SafetyCgroup { path };
        if let Some(max) = pids_max {
            write_file(&cg.path.join("pids.max"), &max.to_string())?;
        }
        if let Some(max) = memory_max {
            write_file(&cg.path.join("memory.max"), &max.to_string())?;
            // No swap escape hatch, and an OOM kills the whole attempt, not one thread of it.
            let swap = cg.path.join("memory.swap.max");
            if swap.exists() {
                write_file(&swap, "0")?;
            }
            write_file(&cg.path.join("memory.oom.group"), "1")?;
        }
        Ok(cg)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A single-number cgroup file (pids.current, memory.peak, ...); None when absent or "max".
    pub fn read_u64(&self, file: &str) -> Option<u64> {
        read_u64(&self.path.join(file))
    }

    /// A flat-keyed cgroup file (memory.events, pids.events): the value of `key`.
    pub fn read_key(&self, file: &str, key: &str) -> Option<u64> {
        let text = fs::read_to_string(self.path.join(file)).ok()?;
        text.lines().find_map(|line| {
            let (k, v) = line.split_once(' ')?;
            (k == key).then(|| v.trim().parse().ok()).flatten()
        })
    }

    /// Samples pids.current and memory.current every `interval` until the sampler is finished.
    pub fn start_sampler(&self, interval: Duration) -> CgroupSampler {
        CgroupSampler::start(self.path.clone(), interval)
    }

    /// Kills everything in the cgroup (cgroup.kill) and waits until it is empty.
    pub fn kill_all(&self) {
        let _ = kill_and_drain(&self.path);
    }
}

/// `<root>/<name>`, created when missing, on cgroup v2, with `required` controllers available
/// and every controller a runtime's leaf below its children may limit (memory, pids, cpu, and
/// io and cpuset where the kernel has them) enabled for its children: a runtime nesting its own
/// leaf under one of them (with cgroup-limits on) needs each controller it limits there.
fn delegating_parent(root: &Path, name: &str, required: &[&str]) -> Result<PathBuf, WorldError> {
    if !is_cgroup2(root) {
        return Err(WorldError::Unsupported(format!(
            "{} is not a cgroup v2 mount (the world's cgroups need cgroup v2)",
            root.display()
        )));
    }
    let parent = root.join(name);
    match fs::create_dir(&parent) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(WorldError::io("creating cgroup", &parent, e)),
    }
    let available = fs::read_to_string(parent.join("cgroup.controllers"))
        .map_err(|e| WorldError::io("reading", parent.join("cgroup.controllers"), e))?;
    let has = |controller: &str| available.split_whitespace().any(|c| c == controller);
    for controller in required {
        if !has(controller) {
            return Err(WorldError::Unsupported(format!(
                "controller {controller} is not enabled for {} (enable it in the root's cgroup.subtree_control)",
                parent.display()
            )));
        }
    }
    let enable: Vec<String> = REQUIRED_CONTROLLERS
        .iter()
        .chain(OPTIONAL_CONTROLLERS)
        .filter(|c| has(c))
        .map(|c| format!("+{c}"))
        .collect();
    if !enable.is_empty() {
        write_file(&parent.join("cgroup.subtree_control"), &enable.join(" "))?;
    }
    Ok(parent)
}

/// Writes cgroup.kill (which takes the cgroups below along, and processes forked while it
/// runs) and waits up to [`DRAIN_TIMEOUT`] until cgroup.events says `populated 0`. Err names
/// what is still there; a missing cgroup counts as empty.
pub fn kill_and_drain(path: &Path) -> Result<(), WorldError> {
    if !path.exists() {
        return Ok(());
    }
    let kill = path.join("cgroup.kill");
    if let Err(e) = fs::write(&kill, "1") {
        if path.exists() {
            return Err(WorldError::io("writing 1 to", kill, e));
        }
        return Ok(());
    }
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    loop {
        let populated = fs::read_to_string(path.join("cgroup.events"))
            .map(|t| t.lines().any(|l| l.trim() == "populated 1"))
            .unwrap_or(false);
        if !populated {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(WorldError::Survivors {
                path: path.to_path_buf(),
                waited: DRAIN_TIMEOUT,
                pids: fs::read_to_string(path.join("cgroup.procs"))
                    .unwrap_or_default()
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" "),
            });
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The cgroup of one attempt (see the module's comment): the payload and everything it starts
/// run in it, and [`AttemptCgroup::finish`] kills them all and removes it. Drop does the same,
/// best effort, for an attempt that ends on another path.
#[derive(Debug)]
pub struct AttemptCgroup {
    path: PathBuf,
    finished: bool,
}

impl AttemptCgroup {
    /// Makes `<root>/breakout-attempts` ready for attempt cgroups (no limits of its own; the
    /// controllers a runtime's leaf may limit are enabled for its children), and checks the
    /// kernel has cgroup.kill (5.14+): without it nothing would end what an attempt left.
    pub(super) fn prepare_parent(root: &Path) -> Result<PathBuf, WorldError> {
        let parent = delegating_parent(root, ATTEMPT_CGROUP, &[])?;
        if !parent.join("cgroup.kill").exists() {
            return Err(WorldError::Unsupported(format!(
                "{} has no cgroup.kill (Linux 5.14+): what an attempt leaves behind could not be killed",
                parent.display()
            )));
        }
        Ok(parent)
    }

    /// A fresh cgroup `<parent>/<name>`.
    pub(super) fn create(parent: &Path, name: &str) -> Result<Self, WorldError> {
        let path = parent.join(name);
        fs::create_dir(&path).map_err(|e| WorldError::io("creating cgroup", &path, e))?;
        Ok(AttemptCgroup {
            path,
            finished: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Kills every process of the attempt (cgroup.kill), waits until none is left and removes
    /// the cgroup. Err when processes survived the kill for [`DRAIN_TIMEOUT`]; they may still
    /// act on later attempts.
    pub fn finish(mut self) -> Result<(), WorldError> {
        self.finished = true;
        let drained = kill_and_drain(&self.path);
        // Only control files and the cgroups of a runtime that did not clean up are left.
        remove_tree(&self.path);
        drained
    }
}

impl Drop for AttemptCgroup {
    fn drop(&mut self) {
        if !self.finished {
            let _ = kill_and_drain(&self.path);
            remove_tree(&self.path);
        }
    }
}

impl Drop for SafetyCgroup {
    fn drop(&mut self) {
        self.kill_all();
        remove_tree(&self.path);
    }
}

/// rmdir a cgroup and the cgroups below it, deepest first (cgroup dirs hold only control files).
fn remove_tree(path: &Path) {
    if let Ok(entries) = fs::read_dir(path) {
        for entry in entries.flatten() {
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_tree(&entry.path());
            }
        }
    }
    let _ = fs::remove_dir(path);
}

fn read_u64(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The maxima a [`CgroupSampler`] saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SamplerPeaks {
    pub pids: u64,
    pub memory: u64,
    pub samples: u64,
}

/// A thread reading pids.current and memory.current of a cgroup at a fixed interval.
#[derive(Debug)]
pub struct CgroupSampler {
    watcher: Watcher<SamplerPeaks>,
}

impl CgroupSampler {
    fn start(path: PathBuf, interval: Duration) -> Self {
        let watcher = Watcher::start(interval, SamplerPeaks::default(), move |peaks| {
            if let Some(v) = read_u64(&path.join("pids.current")) {
                peaks.pids = peaks.pids.max(v);
            }
            if let Some(v) = read_u64(&path.join("memory.current")) {
                peaks.memory = peaks.memory.max(v);
            }
            peaks.samples += 1;
            Look::Again
        });
        CgroupSampler { watcher }
    }

    /// Stops sampling and returns the peaks (none, with no samples, if the sampler failed).
    pub fn finish(self) -> SamplerPeaks {
        self.watcher.finish().unwrap_or_default()
    }
}

/// A safety cgroup with a sampler started on it, and the threshold its peak is judged against:
/// the arrangement state of the resource probes (fork-bomb, memory-hog), which set it up and
/// hand it to the harness the same way. Fields drop in this order: the sampler stops before the
/// cgroup is killed and removed.
pub struct SampledCgroup {
    pub threshold: u64,
    pub sampler: CgroupSampler,
    pub cgroup: SafetyCgroup,
}

/// What a resource probe drives up in its safety cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charge {
    Pids,
    Memory,
}

impl Charge {
    /// The kernel's own high-water mark of the charge, raised at every fork or page charged.
    fn peak_file(self) -> &'static str {
        match self {
            Charge::Pids => "pids.peak",
            Charge::Memory => "memory.peak",
        }
    }
}

/// What the outside measured once a [`SampledCgroup`]'s attempt ended.
#[derive(Debug)]
pub struct Measured {
    /// The profile's limit the probe judges against.
    pub threshold: u64,
    /// The larger of the kernel's high-water mark and the sampler's maximum.
    pub peak: u64,
    /// The kernel's high-water mark (0 when the file is missing).
    pub kernel_peak: u64,
    /// How many samples the sampler took.
    pub samples: u64,
    pub cgroup: SafetyCgroup,
}

impl SampledCgroup {
    /// Starts sampling `cgroup` every `interval`.
    pub fn start(threshold: u64, cgroup: SafetyCgroup, interval: Duration) -> SampledCgroup {
        let sampler = cgroup.start_sampler(interval);
        SampledCgroup {
            threshold,
            sampler,
            cgroup,
        }
    }

    /// How long the payload must hold its peak for the outside to see it: not at all where the
    /// kernel keeps the high-water mark of this fresh cgroup (it is recorded when charged),
    /// else `sampled_hold_ms`, for the sampler.
    pub fn hold_ms(cgroup: &SafetyCgroup, charge: Charge, sampled_hold_ms: u64) -> u64 {
        if cgroup.read_u64(charge.peak_file()).is_some() {
            0
        } else {
            sampled_hold_ms
        }
    }

    /// Stops sampling and reads the kernel's mark.
    pub fn finish(self, charge: Charge) -> Measured {
        let sampled = self.sampler.finish();
        let kernel_peak = self.cgroup.read_u64(charge.peak_file()).unwrap_or(0);
        let sampled_peak = match charge {
            Charge::Pids => sampled.pids,
            Charge::Memory => sampled.memory,
        };
        Measured {
            threshold: self.threshold,
            peak: sampled_peak.max(kernel_peak),
            kernel_peak,
            samples: sampled.samples,
            cgroup: self.cgroup,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_cgroup2_root_is_unsupported() {
        let tmp = tempfile::tempdir().unwrap();
        let err = SafetyCgroup::create(tmp.path(), "x", Some(10), None).unwrap_err();
        assert!(matches!(err, WorldError::Unsupported(_)), "{err}");
    }
}
