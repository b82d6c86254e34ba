//! cgroup-limits on cgroup v2: a leaf cgroup per sandbox with memory.max (+ memory.swap.max),
//! pids.max and cpu.max, joined by the supervisor before anything else runs (the payload is in
//! it from its first instruction); afterwards memory.events, pids.events, memory.peak,
//! pids.peak and cpu.stat are read as evidence, what is left is killed (cgroup.kill) and the
//! leaf removed. Where cgroup v2 or a controller is missing the layer fails loudly, by name.
//!
//! Also the caller's outer cgroup (`Payload::outer_cgroup`): joined even with this layer off.
//!
//! The same leaf carries fs-hardening's device policy (layers/devices.rs): a BPF device program
//! can only be attached to a cgroup, so with fs-hardening on and this layer off the sandbox still
//! gets a leaf of its own, with no limits, as every Docker container does. The leaf is made
//! before the fork (the supervisor is started in it); the program is attached after the fork,
//! while the child creates its namespaces, and the payload waits for it before anything of its
//! own runs (`Op::AwaitPrepared`).

use crate::config::SandboxConfig;
use crate::layer::Layer;
use crate::layers::devices::{self, DevicesError};
use crate::outcome::CgroupEvidence;
use crate::step::{Op, Step};
use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("layer cgroup-limits: {} is not on a cgroup v2 hierarchy ({detail}); cgroup limits need cgroup v2 (switch the layer off or run in the VM)", path.display())]
    NotV2 { path: PathBuf, detail: String },
    #[error("layer cgroup-limits: cgroup v2 at {} lacks the controller(s) {missing} (cgroup.controllers: `{available}`)", path.display())]
    MissingControllers {
        path: PathBuf,
        missing: String,
        available: String,
    },
    #[error(transparent)]
    Devices(#[from] DevicesError),
    #[error("layer cgroup-limits: {op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> CgroupError + 'a {
    move |source| CgroupError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// The cgroup a sandbox runs in.
#[derive(Debug)]
pub struct CgroupHandle {
    pub dir: PathBuf,
    /// We created the leaf (remove it afterwards); false for the caller's outer cgroup.
    owned: bool,
    /// The layer the leaf exists for (joining it is that layer's step): cgroup-limits, or
    /// fs-hardening for a leaf that only carries the device policy; None for the outer cgroup.
    layer: Option<Layer>,
    /// `cgroup.procs`, opened for the supervisor to write "0" into.
    procs: OwnedFd,
    /// The directory, for clone3(CLONE_INTO_CGROUP).
    dir_fd: OwnedFd,
    /// fs-hardening's device program is to be attached ([`CgroupHandle::attach_device_policy`]).
    device_policy: bool,
}

/// Is `path` (or its nearest existing ancestor) on cgroup2?
fn check_v2(path: &Path) -> Result<(), CgroupError> {
    let mut p = path;
    while !p.exists() {
        p = p.parent().unwrap_or(Path::new("/"));
    }
    let st = nix::sys::statfs::statfs(p).map_err(|e| io("statfs", p)(e.into()))?;
    let magic = st.filesystem_type().0 as i64;
    if magic != CGROUP2_SUPER_MAGIC {
        let detail = if Path::new("/sys/fs/cgroup/unified").exists() {
            "this host mounts cgroup v1 at /sys/fs/cgroup (hybrid mode)".to_string()
        } else {
            format!("filesystem magic {magic:#x}")
        };
        return Err(CgroupError::NotV2 {
            path: path.to_path_buf(),
            detail,
        });
    }
    Ok(())
}

/// Where a leaf that only carries the device policy goes: under the caller's outer cgroup, else
/// under the config's parent, else (a hybrid host, cgroup v1 at /sys/fs/cgroup) under the v2
/// hierarchy mounted at /sys/fs/cgroup/unified. A device program needs no controller, so any v2
/// directory will do.
fn device_leaf_parent(cfg: &SandboxConfig, outer: Option<&Path>) -> Result<PathBuf, CgroupError> {
    const HYBRID: &str = "/sys/fs/cgroup/unified";
    let candidates: Vec<PathBuf> = match outer {
        Some(dir) => vec![dir.to_path_buf()],
        None => {
            let name = cfg
                .cgroup
                .parent
                .file_name()
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("breakout"));
            vec![cfg.cgroup.parent.clone(), Path::new(HYBRID).join(name)]
        }
    };
    let mut why = Vec::new();
    for parent in candidates {
        match prepare_parent(&parent, &[]) {
            Ok(()) => return Ok(parent),
            Err(CgroupError::NotV2 { path, detail }) => {
                why.push(format!("{} is not on cgroup v2 ({detail})", path.display()))
            }
            Err(e) => return Err(e),
        }
    }
    Err(DevicesError::NoCgroup2(why.join("; ")).into())
}

/// Make `parent` usable: exists, on cgroup v2, with the needed controllers delegated to its
/// children.
fn prepare_parent(parent: &Path, needed: &[&str]) -> Result<(), CgroupError> {
    check_v2(parent)?;
    if !parent.exists() {
        fs::create_dir_all(parent).map_err(io("mkdir", parent))?;
    }
    let ctl = parent.join("cgroup.controllers");
    let available = fs::read_to_string(&ctl).map_err(io("read", &ctl))?;
    let have: Vec<&str> = available.split_whitespace().collect();
    let missing: Vec<&str> = needed
        .iter()
        .copied()
        .filter(|c| !have.contains(c))
        .collect();
    if !missing.is_empty() {
        return Err(CgroupError::MissingControllers {
            path: parent.to_path_buf(),
            missing: missing.join(", "),
            available: available.trim().to_string(),
        });
    }
    let sub = parent.join("cgroup.subtree_control");
    let enabled = fs::read_to_string(&sub).map_err(io("read", &sub))?;
    let want: Vec<String> = needed
        .iter()
        .filter(|c| !enabled.split_whitespace().any(|e| e == **c))
        .map(|c| format!("+{c}"))
        .collect();
    if !want.is_empty() {
        fs::write(&sub, want.join(" ")).map_err(io("write", &sub))?;
    }
    Ok(())
}

fn open_procs(dir: &Path) -> Result<OwnedFd, CgroupError> {
    let p = dir.join("cgroup.procs");
    let f = fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .map_err(io("open", &p))?;
    Ok(OwnedFd::from(f))
}

/// The cgroup's directory, read-only (std opens close-on-exec).
fn open_dir(dir: &Path) -> Result<OwnedFd, CgroupError> {
    Ok(OwnedFd::from(fs::File::open(dir).map_err(io("open", dir))?))
}

impl CgroupHandle {
    /// The cgroup for one sandbox: a fresh leaf when the layer is on (under `outer` if given,
    /// else under the config's parent), else the outer cgroup, else none.
    /// With fs-hardening's device policy (see [`devices::wanted`]) the leaf is to get the BPF
    /// device program ([`CgroupHandle::attach_device_policy`], after the fork), and a leaf is
    /// made for it even with this layer off.
    pub fn prepare(cfg: &SandboxConfig, outer: Option<&Path>) -> Result<Option<Self>, CgroupError> {
        let device_policy = devices::wanted(cfg);
        if !cfg.enabled(Layer::CgroupLimits) {
            if device_policy {
                let parent = device_leaf_parent(cfg, outer)?;
                let mut handle = Self::leaf(&parent, Layer::FsHardening)?;
                handle.device_policy = true;
                return Ok(Some(handle));
            }
            return match outer {
                Some(dir) => {
                    check_v2(dir)?;
                    Ok(Some(CgroupHandle {
                        dir: dir.to_path_buf(),
                        owned: false,
                        layer: None,
                        procs: open_procs(dir)?,
                        dir_fd: open_dir(dir)?,
                        device_policy: false,
                    }))
                }
                None => Ok(None),
            };
        }
        let parent = outer
            .map(Path::to_path_buf)
            .unwrap_or_else(|| cfg.cgroup.parent.clone());
        let mut needed = Vec::new();
        if cfg.cgroup.memory_max.is_some() {
            needed.push("memory");
        }
        if cfg.cgroup.pids_max.is_some() {
            needed.push("pids");
        }
        if cfg.cgroup.cpu_max.is_some() {
            needed.push("cpu");
        }
        prepare_parent(&parent, &needed)?;
        let mut handle = Self::leaf(&parent, Layer::CgroupLimits)?;
        handle.device_policy = device_policy;
        let mut writes: Vec<(&str, String)> = Vec::new();
        if let Some(m) = cfg.cgroup.memory_max {
            writes.push(("memory.max", m.0.to_string()));
            writes.push(("memory.swap.max", cfg.cgroup.memory_swap_max.0.to_string()));
        }
        if let Some(p) = cfg.cgroup.pids_max {
            writes.push(("pids.max", p.to_string()));
        }
        if let Some(c) = &cfg.cgroup.cpu_max {
            writes.push(("cpu.max", c.clone()));
        }
        for (file, value) in writes {
            let p = handle.dir.join(file);
            // memory.swap.max is absent without swap accounting: that is no swap to limit.
            if file == "memory.swap.max" && !p.exists() {
                continue;
            }
            if let Err(e) = fs::write(&p, &value) {
                // The leaf is ours and nothing is in it yet: it goes with the error.
                let _ = handle.remove();
                return Err(io("write", &p)(e));
            }
        }
        Ok(Some(handle))
    }

    /// Attaches fs-hardening's device program to the leaf when the sandbox has the device policy
    /// (else nothing). Called after the fork: a program attached to a cgroup governs the
    /// processes already in it from their next open or mknod on.
    pub fn attach_device_policy(&self) -> Result<(), CgroupError> {
        if !self.device_policy {
            return Ok(());
        }
        #[cfg(test)]
        if tests::FAIL_DEVICE_POLICY.with(|f| f.get()) {
            return Err(DevicesError::Attach {
                path: self.dir.clone(),
                errno: nix::errno::Errno::EPERM,
            }
            .into());
        }
        devices::install(&self.dir, devices::DOCKER_DEFAULT)?;
        Ok(())
    }

    /// Whether the leaf is to get the device program after the fork.
    pub fn device_policy(&self) -> bool {
        self.device_policy
    }

    /// A handle on no cgroup (its descriptors are /dev/null) for the chain's tests.
    #[cfg(test)]
    pub(crate) fn for_plan_tests(device_policy: bool) -> Self {
        let null = || OwnedFd::from(fs::File::open("/dev/null").unwrap());
        CgroupHandle {
            dir: PathBuf::from("/nonexistent/breakout-plan-test"),
            owned: false,
            layer: Some(Layer::FsHardening),
            procs: null(),
            dir_fd: null(),
            device_policy,
        }
    }

    /// A fresh leaf `sandbox-<pid>-<n>` under `parent` (which must be ready), made for `layer`.
    fn leaf(parent: &Path, layer: Layer) -> Result<Self, CgroupError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        // A leaf of an earlier process with this pid (one that was killed before it removed its
        // leaf) may hold the name: take the next number, a bounded number of times.
        let mut tries = 0;
        let leaf = loop {
            let leaf = parent.join(format!(
                "sandbox-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            match fs::create_dir(&leaf) {
                Ok(()) => break leaf,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && tries < 16 => tries += 1,
                Err(e) => return Err(io("mkdir", &leaf)(e)),
            }
        };
        Ok(CgroupHandle {
            procs: match open_procs(&leaf) {
                Ok(fd) => fd,
                Err(e) => {
                    let _ = fs::remove_dir(&leaf);
                    return Err(e);
                }
            },
            dir_fd: match open_dir(&leaf) {
                Ok(fd) => fd,
                Err(e) => {
                    let _ = fs::remove_dir(&leaf);
                    return Err(e);
                }
            },
            dir: leaf,
            owned: true,
            layer: Some(layer),
            device_policy: false,
        })
    }

    pub(crate) fn join_step(&self) -> Step {
        Step::new(
            self.layer,
            format!("write({}/cgroup.procs, \"0\")", self.dir.display()),
            Op::JoinCgroup {
                procs: self.procs.as_raw_fd(),
                dir: self.dir_fd.as_raw_fd(),
            },
        )
    }

    /// The counters the sandbox left (missing files read as zero / None).
    pub fn evidence(&self) -> CgroupEvidence {
        let kv = |file: &str| -> Vec<(String, u64)> {
            fs::read_to_string(self.dir.join(file))
                .unwrap_or_default()
                .lines()
                .filter_map(|l| {
                    let mut it = l.split_whitespace();
                    Some((it.next()?.to_string(), it.next()?.parse().ok()?))
                })
                .collect()
        };
        let get = |v: &[(String, u64)], k: &str| {
            v.iter().find(|(n, _)| n == k).map(|(_, x)| *x).unwrap_or(0)
        };
        let single = |file: &str| {
            fs::read_to_string(self.dir.join(file))
                .ok()
                .and_then(|s| s.trim().parse().ok())
        };
        let mem = kv("memory.events");
        let pids = kv("pids.events");
        let cpu = kv("cpu.stat");
        CgroupEvidence {
            oom: get(&mem, "oom"),
            oom_kill: get(&mem, "oom_kill"),
            memory_max_hits: get(&mem, "max"),
            pids_max_hits: get(&pids, "max"),
            memory_peak: single("memory.peak"),
            pids_peak: single("pids.peak"),
            cpu_nr_throttled: get(&cpu, "nr_throttled"),
            cpu_throttled_usec: get(&cpu, "throttled_usec"),
        }
    }

    /// Kill every process in the cgroup (cgroup.kill, or one by one before Linux 5.14). Never
    /// the cgroup the runtime itself runs in (a caller's outer cgroup could be its own).
    pub fn kill(&self) -> Result<(), CgroupError> {
        if !self.owned && self.holds_us() {
            return Ok(());
        }
        let k = self.dir.join("cgroup.kill");
        if k.exists() {
            return fs::write(&k, "1").map_err(io("write", &k));
        }
        let procs = self.dir.join("cgroup.procs");
        for _ in 0..10 {
            let list = fs::read_to_string(&procs).map_err(io("read", &procs))?;
            let pids: Vec<i32> = list.lines().filter_map(|l| l.trim().parse().ok()).collect();
            if pids.is_empty() {
                break;
            }
            for pid in pids {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }

    /// Kill what is left and remove the leaf (the outer cgroup stays).
    pub fn remove(&self) -> Result<(), CgroupError> {
        if !self.owned {
            return Ok(());
        }
        self.kill()?;
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            match fs::remove_dir(&self.dir) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) if Instant::now() >= deadline => return Err(io("rmdir", &self.dir)(e)),
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    }

    /// Is the calling process itself in this cgroup?
    fn holds_us(&self) -> bool {
        let ours = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        ours.lines()
            .filter_map(|l| l.strip_prefix("0::"))
            .any(|rel| {
                self.dir.ends_with(rel.trim_start_matches('/'))
                    && !rel.trim_start_matches('/').is_empty()
            })
    }

    /// Whether this is a leaf the runtime created.
    pub fn is_leaf(&self) -> bool {
        self.owned
    }
}

#[cfg(test)]
pub(crate) mod tests {
    thread_local! {
        /// Makes `attach_device_policy` fail on this thread: the test double for a device
        /// program the kernel refuses after the fork (spawn.rs's tests).
        pub(crate) static FAIL_DEVICE_POLICY: std::cell::Cell<bool> =
            const { std::cell::Cell::new(false) };
    }
}
