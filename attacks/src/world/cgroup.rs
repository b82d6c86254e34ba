//! Safety cgroups for resource probes: a fresh cgroup v2 directory under
//! `<root>/breakout-safety/` with limits well above the profile's, so that a fork bomb or a memory
//! hog cannot take the guest down even under `none`, and a sampler that records the peaks the
//! outside saw (pids.peak is missing on older kernels). Killed and removed on Drop.

use super::watch::{Look, Watcher};
use super::{WorldError, SAFETY_CGROUP};
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
        let parent = root.join(SAFETY_CGROUP);
        if !parent.is_dir() {
            fs::create_dir(&parent)
                .or_else(|e| {
                    if e.kind() == std::io::ErrorKind::AlreadyExists {
                        Ok(())
                    } else {
                        Err(e)
                    }
                })
                .map_err(|e| WorldError::io("creating safety cgroup", &parent, e))?;
        }
        let available = fs::read_to_string(parent.join("cgroup.controllers"))
            .map_err(|e| WorldError::io("reading", parent.join("cgroup.controllers"), e))?;
        let has = |controller: &str| available.split_whitespace().any(|c| c == controller);
        for controller in REQUIRED_CONTROLLERS {
            if !has(controller) {
                return Err(WorldError::Unsupported(format!(
                    "controller {controller} is not enabled for {} (enable it in the root's cgroup.subtree_control)",
                    parent.display()
                )));
            }
        }
        // A runtime nesting its own leaf (with its own limits) under the safety cgroup needs
        // every controller it limits to be available there.
        let enable: Vec<String> = REQUIRED_CONTROLLERS
            .iter()
            .chain(OPTIONAL_CONTROLLERS)
            .filter(|c| has(c))
            .map(|c| format!("+{c}"))
            .collect();
        write_file(&parent.join("cgroup.subtree_control"), &enable.join(" "))?;
        // A runtime with cgroup-limits on makes its leaf below this cgroup and needs cpu there
        // too (cpu.max); enable it where the kernel offers it.
        if available.split_whitespace().any(|c| c == "cpu") {
            write_file(&parent.join("cgroup.subtree_control"), "+cpu")?;
        }
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
        let _ = fs::write(self.path.join("cgroup.kill"), "1");
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        while Instant::now() < deadline {
            let populated = fs::read_to_string(self.path.join("cgroup.events"))
                .map(|t| t.lines().any(|l| l.trim() == "populated 1"))
                .unwrap_or(false);
            if !populated {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
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
