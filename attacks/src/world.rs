//! The outside world the probes attack, built once per guest run by the outside half (under
//! /srv/breakout in the guest, or a temporary directory in tests): a per-run secret, and the
//! helpers a probe's `arrange` calls to plant per-attempt state: victims holding fresh secrets,
//! secret files outside the sandbox root, unix sockets handing out a directory fd, a TCP service
//! on the loopback, SysV IPC objects, kernel-log markers, safety cgroups for resource probes.
//!
//! Everything a helper creates is a guard that tears itself down on Drop (victims killed, servers
//! stopped, files and cgroups removed), so a probe keeps its guards in its `Arrangement::state`.

mod block;
mod cgroup;
mod keyring;
mod kmsg;
mod nudge;
mod servers;
mod sysv;
mod victim;
mod watch;

pub use block::LoopDevice;
pub use cgroup::{
    kill_and_drain as kill_cgroup, AttemptCgroup, CgroupSampler, Charge, Measured, SafetyCgroup,
    SampledCgroup, SamplerPeaks,
};
pub use keyring::{abi as keyctl_abi, UserKey};
pub use kmsg::{read_kmsg_records, KmsgCursor};
pub use nudge::{
    first_hit_then_nudge, hold_until_nudged, is_named, nudge_if_named, nudge_named, proc_pids,
    Held, NUDGE_SIGNAL,
};
pub use servers::{DirFdServer, TcpSecretServer};
pub use sysv::{SysvMsg, SysvShm, SYSV_MSG_TYPE, SYSV_SHM_SIZE};
pub use victim::{run_victim_main, Victim, VictimKind, VictimOptions};
pub use watch::{Look, Watcher};

use nix::errno::Errno;
use std::collections::HashSet;
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The uid and gid the `uid` layer runs the payload as, seen from outside the sandbox (the
/// runtime's default `[user]` range; same-uid victims run as it).
pub const SANDBOX_UID: u32 = breakout_runtime::config::DEFAULT_OUTSIDE_UID;
pub const SANDBOX_GID: u32 = breakout_runtime::config::DEFAULT_OUTSIDE_UID;

/// The uid/gid the `uid` layer switches to inside a user namespace (the offset in the default
/// range): what a probe drops to inside the sandbox to act as that payload would.
pub const SANDBOX_INSIDE_UID: u32 =
    breakout_runtime::config::DEFAULT_OUTSIDE_UID - breakout_runtime::config::DEFAULT_ID_BASE;

/// Where the guest keeps the world (not bound into sandboxes).
pub const GUEST_WORLD_DIR: &str = "/srv/breakout";

/// A directory of the guest that sandboxes see (mount-ns binds /usr): setuid helpers go there.
pub const GUEST_SHARED_DIR: &str = "/usr/lib/breakout-shared";

/// How long an attempt waits for a machine-wide resource another attempt holds (see
/// [`World::exclusive`]) before it gives up as inconclusive: several attempts' worth, so only a
/// holder that is stuck makes it give up.
pub const EXCLUSIVE_WAIT: Duration = Duration::from_secs(300);

/// The cgroup v2 mount point in the guest.
pub const CGROUP2_ROOT: &str = "/sys/fs/cgroup";

/// The cgroup (under the cgroup2 root) in which resource probes run, above any profile limit.
pub const SAFETY_CGROUP: &str = "breakout-safety";

/// The cgroup (under the cgroup2 root) holding one cgroup per attempt (see [`AttemptCgroup`]).
pub const ATTEMPT_CGROUP: &str = "breakout-attempts";

#[derive(Debug, thiserror::Error)]
pub enum WorldError {
    #[error("world: {what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("world: {what}: {errno} ({})", errno.desc())]
    Sys { what: String, errno: Errno },
    #[error("world: reading the kernel's random source failed: {0}")]
    Random(String),
    #[error("world: victim: {0}")]
    Victim(String),
    /// A lock of the world was poisoned by a panic in another thread.
    #[error("world: {0} is poisoned (a thread panicked holding it)")]
    Poisoned(&'static str),
    #[error("world: {resource} still held by another attempt after {waited:?}")]
    Busy { resource: String, waited: Duration },
    /// The guest lacks what the helper needs (no cgroup v2, no /dev/kmsg): the probe is skipped.
    #[error("world: unsupported here: {0}")]
    Unsupported(String),
    /// Processes of a cgroup still there after cgroup.kill and the wait for them.
    #[error("world: cgroup {} still holds processes ({pids}) {waited:?} after cgroup.kill", path.display())]
    Survivors {
        path: PathBuf,
        waited: Duration,
        pids: String,
    },
}

impl WorldError {
    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        WorldError::Io {
            what,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn sys(what: impl Into<String>, errno: Errno) -> Self {
        WorldError::Sys {
            what: what.into(),
            errno,
        }
    }
}

/// Handle on the world built in the guest.
#[derive(Debug)]
pub struct World {
    dir: PathBuf,
    probe_bin: PathBuf,
    shared_dir: PathBuf,
    secret: String,
    counter: AtomicU64,
    exclusive: Arc<ExclusiveSet>,
    /// Where attempt cgroups go (`<cgroup2 root>/breakout-attempts`), when the world makes them
    /// (see [`World::with_attempt_cgroups`]).
    attempt_cgroups: Option<PathBuf>,
}

/// Names of machine-wide resources held by an attempt (see [`World::exclusive`]).
#[derive(Debug, Default)]
struct ExclusiveSet {
    held: Mutex<HashSet<String>>,
    freed: Condvar,
}

/// Holds a machine-wide resource (the hostname, the clock, a sysctl) for one attempt, from
/// `arrange` until the arrangement is dropped after `judge`; released on Drop.
#[derive(Debug)]
pub struct ExclusiveGuard {
    name: String,
    set: Arc<ExclusiveSet>,
}

impl Drop for ExclusiveGuard {
    fn drop(&mut self) {
        // A poisoned lock means a panic elsewhere; still release so other attempts go on.
        let mut held = match self.set.held.lock() {
            Ok(h) => h,
            Err(poisoned) => poisoned.into_inner(),
        };
        held.remove(&self.name);
        self.set.freed.notify_all();
    }
}

/// A fresh 128-bit secret as 32 lowercase hex digits, from the kernel's random source.
pub fn fresh_secret() -> Result<String, WorldError> {
    let mut bytes = [0u8; 16];
    kernel_random(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A random u32 (SysV keys, socket names).
pub(crate) fn random_u32() -> Result<u32, WorldError> {
    let mut bytes = [0u8; 4];
    kernel_random(&mut bytes)?;
    Ok(u32::from_ne_bytes(bytes))
}

/// Fills `buf` with getrandom(2), which waits until the kernel's generator is seeded and, since
/// Linux 5.18, seeds it from CPU timing jitter while it waits. Not the getrandom crate: it finds
/// glibc's getrandom with dlsym, which in a static executable finds nothing, and then falls back
/// to the path meant for kernels before 3.17, poll(2) on /dev/random before reading
/// /dev/urandom. That poll waits for the seed without producing it: in a TCG guest (no hardware
/// random source, hardly any interrupts) nothing else seeds the generator, and a static
/// orchestrator waited there forever, building its world.
fn kernel_random(buf: &mut [u8]) -> Result<(), WorldError> {
    let mut filled = 0;
    while filled < buf.len() {
        let rest = &mut buf[filled..];
        // SAFETY: the pointer and length describe `rest`, which getrandom writes at most
        // `rest.len()` bytes of; flags 0 (the blocking urandom source).
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(WorldError::Random(format!("getrandom: {e}")));
        }
        filled += n as usize;
    }
    Ok(())
}

impl World {
    /// Builds the world under `dir` (created 0755 when missing). `probe_bin` is the
    /// `breakout-probe` binary: victims run its hidden `--victim` mode, and the driver starts the
    /// inside half from it. The shared directory (see [`World::with_shared_dir`]) is
    /// [`GUEST_SHARED_DIR`] for the guest's world ([`GUEST_WORLD_DIR`]), else `<dir>/shared`.
    pub fn build(dir: &Path, probe_bin: &Path) -> Result<World, WorldError> {
        make_dir_0755(dir)?;
        let shared_dir = if dir == Path::new(GUEST_WORLD_DIR) {
            PathBuf::from(GUEST_SHARED_DIR)
        } else {
            dir.join("shared")
        };
        make_dir_0755(&shared_dir)?;
        let meta = fs::metadata(probe_bin)
            .map_err(|e| WorldError::io("finding the probe binary", probe_bin, e))?;
        if !meta.is_file() {
            return Err(WorldError::io(
                "the probe binary is not a regular file:",
                probe_bin,
                io::Error::from(io::ErrorKind::InvalidInput),
            ));
        }
        Ok(World {
            dir: dir.to_path_buf(),
            probe_bin: probe_bin.to_path_buf(),
            shared_dir,
            secret: fresh_secret()?,
            counter: AtomicU64::new(0),
            exclusive: Arc::new(ExclusiveSet::default()),
            attempt_cgroups: None,
        })
    }

    /// Uses `dir` (created 0755) as the directory that sandboxes can see (in the guest
    /// [`GUEST_SHARED_DIR`], under /usr which mount-ns binds): the setuid probe plants its helper
    /// there. Per-attempt contents are removed after each attempt.
    pub fn with_shared_dir(mut self, dir: &Path) -> Result<World, WorldError> {
        make_dir_0755(dir)?;
        self.shared_dir = dir.to_path_buf();
        Ok(self)
    }

    /// Gives every attempt a cgroup of its own under `<root>/breakout-attempts`, killed once it
    /// is judged (see [`AttemptCgroup`]): the guest's orchestrator, where payloads are hostile
    /// and attempts follow one another in one machine. Fails when `root` is not cgroup v2 or the
    /// kernel has no cgroup.kill, rather than run attempts that can reach later ones.
    pub fn with_attempt_cgroups(mut self, root: &Path) -> Result<World, WorldError> {
        self.attempt_cgroups = Some(AttemptCgroup::prepare_parent(root)?);
        Ok(self)
    }

    /// A fresh cgroup for one attempt, when the world makes them ([`World::with_attempt_cgroups`]).
    pub fn attempt_cgroup(&self) -> Result<Option<AttemptCgroup>, WorldError> {
        match &self.attempt_cgroups {
            Some(parent) => AttemptCgroup::create(parent, &self.unique("attempt")).map(Some),
            None => Ok(None),
        }
    }

    /// The directory visible inside sandboxes (see [`World::with_shared_dir`]).
    pub fn shared_dir(&self) -> &Path {
        &self.shared_dir
    }

    /// Creates a fresh directory `<shared>/<base>-<n>` (mode 0755), removed on Drop.
    pub fn shared_scratch_dir(&self, base: &str) -> Result<Planted, WorldError> {
        let path = self.shared_dir.join(self.unique(base));
        fs::DirBuilder::new()
            .mode(0o755)
            .create(&path)
            .map_err(|e| WorldError::io("creating", &path, e))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755))
            .map_err(|e| WorldError::io("chmod 0755 of", &path, e))?;
        Ok(Planted { path })
    }

    /// The world's base directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The `breakout-probe` binary as the outside sees it.
    pub fn probe_bin(&self) -> &Path {
        &self.probe_bin
    }

    /// The per-run secret (fresh per guest run, never derivable from inside).
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// A fresh secret for one attempt.
    pub fn fresh_secret(&self) -> Result<String, WorldError> {
        fresh_secret()
    }

    /// Waits (up to `timeout`, [`EXCLUSIVE_WAIT`] in the probes) until no other attempt holds the
    /// machine-wide resource `name`, then holds it until the guard is dropped. Attempts run in
    /// parallel (several workers, overlapping ablation runs): a probe that changes or watches
    /// global state and judges it from outside (the hostname, the clock, a sysctl, SysRq output
    /// in the kernel log, the module list) keeps the guard in its arrangement's state, so that
    /// attempts needing the same resource run one at a time and cannot overwrite or see each
    /// other's evidence. The one lock for machine-wide state: name the resource, not the probe,
    /// so that two probes touching the same one (a file probe's sysctl oracle and core-pattern)
    /// exclude each other.
    pub fn exclusive(&self, name: &str, timeout: Duration) -> Result<ExclusiveGuard, WorldError> {
        let deadline = Instant::now() + timeout;
        let mut held = self
            .exclusive
            .held
            .lock()
            .map_err(|_| WorldError::Poisoned("the exclusive-resource table"))?;
        while held.contains(name) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(WorldError::Busy {
                    resource: name.to_string(),
                    waited: timeout,
                });
            }
            held = self
                .exclusive
                .freed
                .wait_timeout(held, left)
                .map_err(|_| WorldError::Poisoned("the exclusive-resource table"))?
                .0;
        }
        held.insert(name.to_string());
        Ok(ExclusiveGuard {
            name: name.to_string(),
            set: self.exclusive.clone(),
        })
    }

    /// A name unique within this world: `<base>-<counter>`.
    pub fn unique(&self, base: &str) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        format!("{base}-{n}")
    }

    /// Creates a fresh directory `<world>/<base>-<n>` (mode 0755), removed on Drop.
    pub fn scratch_dir(&self, base: &str) -> Result<Planted, WorldError> {
        let path = self.dir.join(self.unique(base));
        fs::DirBuilder::new()
            .mode(0o755)
            .create(&path)
            .map_err(|e| WorldError::io("creating", &path, e))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755))
            .map_err(|e| WorldError::io("chmod 0755 of", &path, e))?;
        Ok(Planted { path })
    }

    /// Writes `content` to a fresh file `<world>/<base>-<n>` owned by root with `mode`, removed on
    /// Drop. The path is outside any sandbox root.
    pub fn secret_file(&self, base: &str, content: &str, mode: u32) -> Result<Planted, WorldError> {
        let path = self.dir.join(self.unique(base));
        write_new_file(&path, content, mode)?;
        Ok(Planted { path })
    }

    /// Spawns a victim process holding `secret` in its memory and its environment.
    pub fn spawn_victim(
        &self,
        kind: VictimKind,
        secret: &str,
        options: &VictimOptions,
    ) -> Result<Victim, WorldError> {
        Victim::spawn(&self.probe_bin, kind, secret, options)
    }

    /// A unix socket server on a pathname under the world directory (mode 0777) that hands every
    /// client an O_RDONLY descriptor of `dir` by SCM_RIGHTS.
    pub fn serve_dir_fd_path(&self, dir: &Path) -> Result<DirFdServer, WorldError> {
        let path = self.dir.join(format!("{}.sock", self.unique("dirfd")));
        DirFdServer::bind_path(&path, dir)
    }

    /// The same on an abstract socket `@breakout-<random>` (abstract names belong to the network
    /// namespace, not the filesystem).
    pub fn serve_dir_fd_abstract(&self, dir: &Path) -> Result<DirFdServer, WorldError> {
        let name = format!("breakout-{}-{:08x}", self.unique("dirfd"), random_u32()?);
        DirFdServer::bind_abstract(&name, dir)
    }

    /// A TCP service on 127.0.0.1 (ephemeral port) that writes `secret` and a newline to every
    /// client.
    pub fn serve_secret_tcp(&self, secret: &str) -> Result<TcpSecretServer, WorldError> {
        TcpSecretServer::bind(secret)
    }

    /// A SysV shared memory segment with a random key, mode 0600 (owner root), holding `secret`.
    pub fn sysv_shm(&self, secret: &str) -> Result<SysvShm, WorldError> {
        SysvShm::create(secret)
    }

    /// A SysV message queue with a random key, mode 0600, holding one message with `secret`.
    pub fn sysv_msg(&self, secret: &str) -> Result<SysvMsg, WorldError> {
        SysvMsg::create(secret)
    }

    /// A "user" key holding `secret` in the caller's (root's) user keyring, readable by uid 0
    /// and by possessors.
    pub fn user_key(&self, secret: &str) -> Result<UserKey, WorldError> {
        UserKey::add(secret)
    }

    /// Writes `marker` into the kernel log.
    pub fn kmsg_write(&self, marker: &str) -> Result<(), WorldError> {
        kmsg::write(marker)
    }

    /// The whole kernel log ring as the outside reads it.
    pub fn kmsg_read_all(&self) -> Result<String, WorldError> {
        kmsg::read_all()
    }

    /// A read-only loop device over a fresh file `<world>/<base>-<n>` (mode 0600) holding
    /// `content`: a disk of the outside, detached and removed on Drop. Unsupported when there is
    /// no loop driver.
    pub fn loop_device(&self, base: &str, content: &str) -> Result<LoopDevice, WorldError> {
        LoopDevice::attach(self.secret_file(base, content, 0o600)?)
    }

    /// A fresh cgroup `breakout-safety/<base>-<n>` under the cgroup v2 root with the given
    /// pids.max and memory.max (which must lie well above the profile's limits so that the guest
    /// survives even under `none`). Unsupported when the cgroup root is not cgroup v2.
    pub fn safety_cgroup(
        &self,
        base: &str,
        pids_max: Option<u64>,
        memory_max: Option<u64>,
    ) -> Result<SafetyCgroup, WorldError> {
        SafetyCgroup::create(
            Path::new(CGROUP2_ROOT),
            &self.unique(base),
            pids_max,
            memory_max,
        )
    }
}

/// A file or directory the world planted; removed on Drop.
#[derive(Debug)]
pub struct Planted {
    path: PathBuf,
}

impl Planted {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Planted {
    fn drop(&mut self) {
        // Best effort: a leftover under the world directory harms no later attempt (names are
        // unique), and Drop cannot report.
        let _ = if self.path.is_dir() {
            fs::remove_dir_all(&self.path)
        } else {
            fs::remove_file(&self.path)
        };
    }
}

/// MemAvailable from /proc/meminfo, in bytes: what resource probes may safely take.
pub fn mem_available() -> Result<u64, WorldError> {
    let path = Path::new("/proc/meminfo");
    let text = fs::read_to_string(path).map_err(|e| WorldError::io("reading", path, e))?;
    parse_mem_available(&text).ok_or_else(|| {
        WorldError::io(
            "no MemAvailable line in",
            path,
            io::Error::from(io::ErrorKind::InvalidData),
        )
    })
}

fn parse_mem_available(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// mkdir -p with mode 0755 (and chmod 0755 when it existed): victims running as the sandbox uid
/// and payloads under `uid` must be able to walk in.
fn make_dir_0755(dir: &Path) -> Result<(), WorldError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .map_err(|e| WorldError::io("creating directory", dir, e))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755))
        .map_err(|e| WorldError::io("chmod 0755 of", dir, e))
}

/// Creates `path` exclusively with `mode` (umask-independent) and writes `content`.
pub fn write_new_file(path: &Path, content: &str, mode: u32) -> Result<(), WorldError> {
    use std::io::Write;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| WorldError::io("creating", path, e))?;
    file.write_all(content.as_bytes())
        .map_err(|e| WorldError::io("writing", path, e))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| WorldError::io("chmod of", path, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world(dir: &Path) -> World {
        let bin = std::env::current_exe().unwrap();
        World::build(dir, &bin).unwrap()
    }

    /// Set for the copy of this test binary that reads the secret with the device nodes replaced.
    const NO_DEVICES_CHILD: &str = "BREAKOUT_TEST_SECRET_WITHOUT_DEVICES";

    /// The secret does not depend on /dev/random or /dev/urandom: in a copy of this test binary,
    /// in a private mount namespace, a FIFO without writer is bound over both (opening it waits
    /// forever, like a poll of /dev/random before the generator is seeded), and the secret must
    /// still come. A dynamic build passed with the getrandom crate too (it finds glibc's
    /// getrandom); a static one (`-C target-feature=+crt-static`) hung in the FIFO's open.
    #[test]
    fn fresh_secret_does_not_wait_on_the_random_devices() {
        let name = "world::tests::fresh_secret_does_not_wait_on_the_random_devices";
        if std::env::var_os(NO_DEVICES_CHILD).is_some() {
            return secret_without_devices();
        }
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", name, "--nocapture", "--test-threads=1"])
            .env(NO_DEVICES_CHILD, "1")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Only a bound on the failure: a passing child answers at once.
        let deadline = Instant::now() + Duration::from_secs(60);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("fresh_secret still waiting after 60 s with /dev/random and /dev/urandom replaced by a FIFO without writer");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}");
        if stdout.contains("skipped:") {
            eprintln!(
                "{}",
                stdout.lines().find(|l| l.contains("skipped:")).unwrap()
            );
            return;
        }
        // libtest prints the child's output after "test NAME ... " on the same line.
        let words: Vec<&str> = stdout.split_whitespace().collect();
        assert!(
            words.windows(2).any(|w| w[0] == "secret"
                && w[1].len() == 32
                && w[1].bytes().all(|b| b.is_ascii_hexdigit())),
            "{stdout}"
        );
    }

    fn secret_without_devices() {
        use nix::mount::{mount, MsFlags};
        if let Err(e) = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS) {
            println!("skipped: no mount namespace ({e}; needs root)");
            return;
        }
        // Private first: the binds below must not reach the host's /dev.
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .expect("making the mount namespace private");
        let tmp = tempfile::tempdir().unwrap();
        let fifo = tmp.path().join("never-ready");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        for dev in ["/dev/random", "/dev/urandom"] {
            mount(
                Some(&fifo),
                dev,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .unwrap_or_else(|e| panic!("binding a FIFO over {dev}: {e}"));
        }
        println!("secret {}", fresh_secret().unwrap());
    }

    #[test]
    fn exclusive_resources_are_held_one_attempt_at_a_time() {
        let tmp = tempfile::tempdir().unwrap();
        let w = world(tmp.path());
        let first = w.exclusive("hostname", Duration::from_millis(10)).unwrap();
        let other = w.exclusive("clock", Duration::from_millis(10)).unwrap();
        let busy = w
            .exclusive("hostname", Duration::from_millis(50))
            .unwrap_err();
        assert!(busy.to_string().contains("hostname still held"), "{busy}");
        drop(first);
        let again = w.exclusive("hostname", Duration::from_millis(10));
        assert!(again.is_ok());
        drop(other);
    }

    #[test]
    fn mem_available_is_parsed_in_bytes() {
        let text = "MemTotal:        1000 kB\nMemAvailable:     512 kB\n";
        assert_eq!(parse_mem_available(text), Some(512 * 1024));
        assert_eq!(parse_mem_available("MemTotal: 1 kB\n"), None);
        assert!(mem_available().unwrap() > 0);
    }

    #[test]
    fn secrets_are_fresh_hex() {
        let a = fresh_secret().unwrap();
        let b = fresh_secret().unwrap();
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn build_rejects_missing_probe_binary() {
        let tmp = tempfile::tempdir().unwrap();
        let err = World::build(tmp.path(), &tmp.path().join("nope")).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }

    #[test]
    fn secret_files_are_planted_and_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let w = world(tmp.path());
        let path = {
            let f = w.secret_file("canary", "s3cret", 0o400).unwrap();
            let meta = fs::metadata(f.path()).unwrap();
            assert_eq!(meta.permissions().mode() & 0o777, 0o400);
            assert_eq!(fs::read_to_string(f.path()).unwrap(), "s3cret");
            f.path().to_path_buf()
        };
        assert!(!path.exists());
        assert_ne!(w.unique("x"), w.unique("x"));
    }
}
