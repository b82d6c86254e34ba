//! Starting an external runtime (bwrap, crun, unshare) with `breakout-probe` as its payload:
//! stdout and stderr captured, the controlling terminal handed over, everything placed in a
//! cgroup v2 directory of our own so that a timeout kills the whole tree at once (cgroup.kill),
//! whatever the runtime does with its children.

use breakout_attacks::{LaunchRequest, Launched};
use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Where adapter launches get their cgroups when the request names none.
pub const DEFAULT_CGROUP_BASE: &str = "/sys/fs/cgroup/breakout-adapters";

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("cgroup {path}: {action} failed: {source}")]
    Cgroup {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("waiting for {program} failed: {source}")]
    Wait {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {action} failed: {source}")]
    File {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("duplicating the payload's stdin (fd {fd}) failed: {source}")]
    Stdin {
        fd: i32,
        #[source]
        source: std::io::Error,
    },
}

/// A cgroup directory made for one launch: `runtime/` holds the runtime process (and, for
/// bwrap and unshare, the payload), `payload/` is free for a runtime that makes its own cgroup
/// (crun). Killed and removed on drop.
pub struct LaunchCgroup {
    pub dir: PathBuf,
}

static NEXT_LAUNCH: AtomicU64 = AtomicU64::new(0);

impl LaunchCgroup {
    pub fn create(base: &Path, adapter: &str) -> Result<LaunchCgroup, LaunchError> {
        let n = NEXT_LAUNCH.fetch_add(1, Ordering::Relaxed);
        let dir = base.join(format!("{adapter}-{}-{n}", std::process::id()));
        for d in [&dir, &dir.join("runtime")] {
            fs::create_dir_all(d).map_err(|source| LaunchError::Cgroup {
                path: d.clone(),
                action: "mkdir",
                source,
            })?;
        }
        Ok(LaunchCgroup { dir })
    }

    /// The payload cgroup path relative to the cgroup2 mount at /sys/fs/cgroup, as OCI's
    /// `linux.cgroupsPath` wants it.
    pub fn payload_path_for_oci(&self) -> Option<String> {
        self.dir
            .join("payload")
            .strip_prefix("/sys/fs/cgroup")
            .ok()
            .map(|p| format!("/{}", p.display()))
    }

    /// Kills every process in the tree (cgroup.kill is recursive).
    pub fn kill(&self) -> Result<(), LaunchError> {
        let path = self.dir.join("cgroup.kill");
        fs::write(&path, "1").map_err(|source| LaunchError::Cgroup {
            path,
            action: "write 1 to cgroup.kill",
            source,
        })
    }
}

impl Drop for LaunchCgroup {
    fn drop(&mut self) {
        // Best effort: the processes are gone by now (waited for), a kill covers stragglers, and
        // the directories are removed children first. A failure leaves an empty cgroup behind,
        // which the guest discards at power-off.
        let _ = self.kill();
        for _ in 0..50 {
            let children_gone = ["payload", "runtime"]
                .iter()
                .all(|c| remove_cgroup_tree(&self.dir.join(c)));
            if children_gone && fs::remove_dir(&self.dir).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Removes a cgroup directory and its child cgroups; true when it is gone.
fn remove_cgroup_tree(dir: &Path) -> bool {
    if !dir.exists() {
        return true;
    }
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup_tree(&entry.path());
            }
        }
    }
    fs::remove_dir(dir).is_ok()
}

/// Where the request's `stdin` (the probes' timing channel) goes in the runtime's process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StdinAt {
    /// The runtime's stdin, which it hands to the payload as it is (bwrap, unshare, firejail).
    Stdin,
    /// Fd 3, with /dev/null as stdin: for a runtime started with `--preserve-fds 1` that copies
    /// stdin through a pipe of its own (runc, conmon), which would read the channel itself.
    Fd3,
}

/// Starts `argv` (the runtime's command line) for `request` inside `cgroup/runtime`, waits at
/// most `timeout` (the request's, plus the runtime's start-up), kills the tree when it
/// overruns. The request's stdin goes to the runtime's stdin.
pub fn run(
    argv: &[String],
    request: &LaunchRequest,
    timeout: Duration,
    cgroup: &LaunchCgroup,
) -> Result<Launched, LaunchError> {
    run_with(argv, request, timeout, cgroup, StdinAt::Stdin)
}

/// [`run`], with the request's stdin where `stdin_at` says.
pub fn run_with(
    argv: &[String],
    request: &LaunchRequest,
    timeout: Duration,
    cgroup: &LaunchCgroup,
    stdin_at: StdinAt,
) -> Result<Launched, LaunchError> {
    let program = argv[0].clone();
    let procs_path = cgroup.dir.join("runtime/cgroup.procs");
    let procs = fs::OpenOptions::new()
        .write(true)
        .open(&procs_path)
        .map_err(|source| LaunchError::Cgroup {
            path: procs_path.clone(),
            action: "open cgroup.procs",
            source,
        })?;
    let procs_fd = procs.as_raw_fd();

    let mut command = Command::new(&argv[0]);
    command
        .args(&argv[1..])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let tty_fd = request.controlling_tty;
    // SAFETY (both borrows): the caller keeps the descriptors open for the whole launch (they
    // are the request's `controlling_tty` and `stdin`); we only borrow them to duplicate them.
    let dup = |fd| {
        unsafe { BorrowedFd::borrow_raw(fd) }
            .try_clone_to_owned()
            .map_err(|source| LaunchError::Stdin { fd, source })
    };
    let channel: Option<OwnedFd> = match (tty_fd, request.stdin) {
        (None, Some(fd)) => Some(dup(fd)?),
        _ => None,
    };
    // The terminal, else the channel when the runtime passes its stdin on as it is.
    let (stdin, channel_fd) = match (tty_fd, channel, stdin_at) {
        (Some(fd), _, _) => (Some(dup(fd)?), None),
        (None, Some(channel), StdinAt::Stdin) => (Some(channel), None),
        (None, Some(channel), StdinAt::Fd3) => (None, Some(channel)),
        (None, None, _) => (None, None),
    };
    match stdin {
        Some(owned) => command.stdin(Stdio::from(owned)),
        None => command.stdin(Stdio::null()),
    };
    // Close-on-exec in the child too (Rust opens every descriptor so); pre_exec moves it to 3.
    let channel_raw = channel_fd.as_ref().map(|fd| fd.as_raw_fd());
    // SAFETY: the closure runs in the forked child before exec and calls only async-signal-safe
    // functions (write, setsid, ioctl, dup2, fcntl) on descriptors that are open in the child:
    // `procs_fd` and `channel_raw` are kept open by `procs` and `channel_fd` in the parent until
    // spawn returns, and stdin was set up by std before pre_exec closures run. No allocation, no
    // locks.
    unsafe {
        command.pre_exec(move || {
            // Join the launch cgroup before exec, so no child of the runtime can start outside it.
            if libc::write(procs_fd, b"0".as_ptr().cast(), 1) != 1 {
                return Err(std::io::Error::last_os_error());
            }
            // A session of its own, so the runtime never inherits the caller's terminal; the
            // requested one (already its stdin) becomes its controlling terminal.
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if tty_fd.is_some() && libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The channel at fd 3, after the cgroup write, which may have used fd 3. Whatever
            // else sits at 3 is close-on-exec (every descriptor of ours is) and would close at
            // exec anyway; should it be std's exec-error pipe, an exec failure reads as an exit
            // without output (inconclusive), never as a verdict.
            if let Some(fd) = channel_raw {
                let placed = if fd == 3 {
                    // dup2 onto itself would keep close-on-exec.
                    libc::fcntl(3, libc::F_SETFD, 0)
                } else {
                    libc::dup2(fd, 3)
                };
                if placed < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let mut child = command.spawn().map_err(|source| LaunchError::Spawn {
        program: program.clone(),
        source,
    })?;
    drop(procs);
    drop(channel_fd);

    let stdout = reader(child.stdout.take());
    let stderr = reader(child.stderr.take());
    let (status, timed_out) = wait(&mut child, timeout, cgroup, &program)?;
    // The launch is over when the runtime is: whatever it left behind in the tree goes now, so
    // the pipes close. The grace period covers anything that got out of the tree.
    cgroup.kill()?;
    let deadline = Instant::now() + PIPE_GRACE;
    let stdout = collect(&stdout, deadline);
    let stderr = collect(&stderr, deadline);
    let code = match (status.code(), status.signal()) {
        (Some(code), _) => breakout_runtime::ExitKind::Exited { code },
        (None, Some(signal)) => breakout_runtime::ExitKind::Signaled {
            signal,
            core_dumped: status.core_dumped(),
        },
        (None, None) => breakout_runtime::ExitKind::Exited { code: -1 },
    };
    Ok(Launched {
        outcome: Some(breakout_runtime::Outcome {
            status: code,
            cgroup: None,
            setup_failure: None,
            landlock: None,
            seccomp_kill: None,
            recording: None,
        }),
        stdout,
        stderr,
        timed_out,
    })
}

/// Reads a pipe to its end on a thread of its own; the result comes back on a channel.
fn reader<R: Read + Send + 'static>(pipe: Option<R>) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut buf);
        }
        let _ = tx.send(buf);
    });
    rx
}

/// How long the pipes may stay open after the runtime is gone: a process that left the launch
/// cgroup and kept them open must not hang the whole run; its output is then dropped.
const PIPE_GRACE: Duration = Duration::from_secs(2);

fn collect(rx: &mpsc::Receiver<Vec<u8>>, deadline: Instant) -> Vec<u8> {
    let left = deadline.saturating_duration_since(Instant::now());
    rx.recv_timeout(left).unwrap_or_default()
}

fn wait(
    child: &mut Child,
    timeout: Duration,
    cgroup: &LaunchCgroup,
    program: &str,
) -> Result<(std::process::ExitStatus, bool), LaunchError> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().map_err(|source| LaunchError::Wait {
            program: program.to_string(),
            source,
        })? {
            return Ok((status, false));
        }
        if Instant::now() >= deadline {
            cgroup.kill()?;
            let status = child.wait().map_err(|source| LaunchError::Wait {
                program: program.to_string(),
                source,
            })?;
            return Ok((status, true));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Writes a file the runtime reads (an OCI config), with a clear error.
pub fn write_file(path: &Path, contents: &[u8]) -> Result<(), LaunchError> {
    let mut f = fs::File::create(path).map_err(|source| LaunchError::File {
        path: path.to_path_buf(),
        action: "create",
        source,
    })?;
    f.write_all(contents).map_err(|source| LaunchError::File {
        path: path.to_path_buf(),
        action: "write",
        source,
    })
}
