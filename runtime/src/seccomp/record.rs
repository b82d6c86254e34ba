//! Recording instead of denying (`breakout learn`): a filter that hands every syscall of the
//! sandbox to a listener in the runtime, which notes (architecture, number) and lets the call go
//! on unchanged.
//!
//! The method is SECCOMP_RET_USER_NOTIF answered with SECCOMP_USER_NOTIF_FLAG_CONTINUE, not
//! SECCOMP_RET_LOG read back from the kernel log: a notified syscall waits until the listener
//! has seen it, so nothing can be dropped on the way (the log path loses records to printk rate
//! limiting, the audit backlog and the log buffer, each a global setting of the machine). What
//! it costs: two context switches per syscall while learning, and root (the listener is taken
//! from the payload with pidfd_getfd, which needs ptrace rights over a process that is not
//! dumpable).
//!
//! How the listener reaches us: the payload installs the filter with
//! SECCOMP_FILTER_FLAG_NEW_LISTENER, which gives the listener to the payload itself, and every
//! syscall it makes after that waits for an answer, so it cannot send the descriptor anywhere.
//! The recorder (a thread of the runtime) finds it in /proc/PID/fd (`anon_inode:seccomp notify`)
//! and copies it with pidfd_getfd; until then the payload simply waits in its first call.
//!
//! What the runtime itself calls between the filter and execve (the rest of the setup chain) is
//! kept apart from the command's calls: the last step before execve is a marker, an invalid
//! syscall number with fixed arguments, and only what comes after it belongs to the command.
//! The command's own loader and libc start after execve, so all they call is recorded.

use crate::seccomp::kill_record::name_for;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The marker's syscall number: no architecture has a call there (the kernel answers ENOSYS
/// when it runs unrecorded), and it is recognised only with [`MARKER_ARGS`] from the payload.
pub const MARKER_NR: i64 = 0xb4e0;
/// "breakout", "learn-mk", "end-stup" as little-endian words.
pub const MARKER_ARGS: [u64; 3] = [
    u64::from_le_bytes(*b"breakout"),
    u64::from_le_bytes(*b"learn-mk"),
    u64::from_le_bytes(*b"end-stup"),
];

/// clone(2) flags that create namespaces (what strict's clone rule refuses).
pub const CLONE_NAMESPACE_FLAGS: u64 = 0x7E02_0000;

/// What the runtime itself may call after the filter is installed and before execve, with
/// every layer on (the rest of the setup chain: capability cuts, uid switch, checks, closing
/// descriptors, resetting signals). A learned profile allows these too, or the runtime could not
/// finish its setup under it; tests/record.rs checks a real recording against this list.
pub const RUNTIME_TAIL: &[&str] = &[
    "capget",
    "capset",
    "chdir",
    "close",
    "close_range",
    "execve",
    "exit_group",
    "getcwd",
    "getgroups",
    "getppid",
    "getresgid",
    "getresuid",
    "poll",
    "prctl",
    "rt_sigaction",
    "rt_sigprocmask",
    "setresgid",
    "setresuid",
    "write",
];

/// How long the recorder keeps serving after the payload ended, for processes it left behind
/// (pid-ns off) that still use the filter.
pub const GRACE: Duration = Duration::from_secs(2);

/// How long the recorder looks for the listener before it gives up and kills the payload.
const FIND_LISTENER: Duration = Duration::from_secs(30);

/// One syscall as the kernel saw it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Call {
    /// libseccomp's architecture token without the prefix (`X86_64`, `X86`, `X32`), or the
    /// audit value in hex when unknown.
    pub arch: String,
    /// The number as the kernel saw it (x32 numbers carry 0x40000000).
    pub nr: i64,
    /// The name for its architecture, when libseccomp knows the number.
    pub name: Option<String>,
}

impl Call {
    pub fn new(audit_arch: u32, nr: i64) -> Self {
        let (arch, name) = name_for(audit_arch, nr);
        Call { arch, nr, name }
    }

    /// True for the architecture this binary runs on.
    pub fn is_native(&self) -> bool {
        self.arch == crate::seccomp::policy::native_scmp_arch().trim_start_matches("SCMP_ARCH_")
    }
}

impl std::fmt::Display for Call {
    /// `getppid`, `socketcall (X86)`, `number 999 (X86_64)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.name, self.is_native()) {
            (Some(n), true) => write!(f, "{n}"),
            (Some(n), false) => write!(f, "{n} ({})", self.arch),
            (None, _) => write!(f, "number {} ({})", self.nr, self.arch),
        }
    }
}

/// What one recorded sandbox called.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recording {
    /// The filter was installed and its listener taken; false when the setup ended before the
    /// seccomp step.
    pub installed: bool,
    /// The marker right before execve was seen: everything in `calls` is the command's.
    pub marker_seen: bool,
    /// Every distinct call the command and its descendants made, from its execve on.
    pub calls: BTreeSet<Call>,
    /// What the runtime's own setup called between the filter and the marker.
    pub runtime: BTreeSet<Call>,
    /// Notifications answered: every syscall made under the filter.
    pub notifications: u64,
    /// A clone(2) of the command asked for a new namespace.
    pub clone_namespaces: bool,
    /// Why the recording may be incomplete; None when nothing can be missing.
    pub error: Option<String>,
}

impl Recording {
    /// The command's calls on the native architecture, by name (numbers libseccomp cannot name
    /// are left out: they are in `calls` and `foreign_or_unnamed`).
    pub fn native_names(&self) -> BTreeSet<String> {
        self.calls
            .iter()
            .filter(|c| c.is_native())
            .filter_map(|c| c.name.clone())
            .collect()
    }

    /// Calls a native-only allowlist cannot express: other ABIs, unnamed numbers.
    pub fn foreign_or_unnamed(&self) -> Vec<&Call> {
        self.calls
            .iter()
            .filter(|c| !c.is_native() || c.name.is_none())
            .collect()
    }

    /// Merge another recording of the same kind (several workloads into one profile).
    pub fn merge(&mut self, other: &Recording) {
        self.installed &= other.installed;
        self.marker_seen &= other.marker_seen;
        self.calls.extend(other.calls.iter().cloned());
        self.runtime.extend(other.runtime.iter().cloned());
        self.notifications += other.notifications;
        self.clone_namespaces |= other.clone_namespaces;
        if let Some(e) = &other.error {
            self.error.get_or_insert_with(|| e.clone());
        }
    }
}

/// The recording filter: one instruction, every call of every architecture to the listener.
pub fn filter_program() -> Vec<libc::sock_filter> {
    vec![libc::sock_filter {
        code: (libc::BPF_RET | libc::BPF_K) as u16,
        jt: 0,
        jf: 0,
        k: libc::SECCOMP_RET_USER_NOTIF,
    }]
}

/// The kernel can do this: seccomp user notification exists and its structures are the size
/// this build knows (the kernel writes its own size into our buffer).
pub fn check_kernel() -> Result<(), String> {
    let mut sizes = libc::seccomp_notif_sizes {
        seccomp_notif: 0,
        seccomp_notif_resp: 0,
        seccomp_data: 0,
    };
    // SAFETY: SECCOMP_GET_NOTIF_SIZES writes one seccomp_notif_sizes to the pointer.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_GET_NOTIF_SIZES,
            0u32,
            &mut sizes as *mut libc::seccomp_notif_sizes,
        )
    };
    if r != 0 {
        return Err(format!(
            "this kernel has no seccomp user notification (seccomp(SECCOMP_GET_NOTIF_SIZES): {})",
            nix::errno::Errno::last()
        ));
    }
    let ours = std::mem::size_of::<libc::seccomp_notif>();
    if usize::from(sizes.seccomp_notif) > ours
        || usize::from(sizes.seccomp_notif_resp) > std::mem::size_of::<libc::seccomp_notif_resp>()
    {
        return Err(format!(
            "the kernel's struct seccomp_notif is {} bytes, this build knows {ours}",
            sizes.seccomp_notif
        ));
    }
    Ok(())
}

/// The runtime's side: a thread that finds the listener and answers every notification.
pub(crate) struct Recorder {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Recording>>,
}

impl Recorder {
    /// Start recording the payload `pid` (held by `pidfd`).
    pub(crate) fn start(pid: libc::pid_t, pidfd: OwnedFd) -> Recorder {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("seccomp-recorder".into())
            .spawn(move || record(pid, &pidfd, &flag));
        match thread {
            Ok(t) => Recorder {
                stop,
                thread: Some(t),
            },
            Err(_) => Recorder { stop, thread: None },
        }
    }

    /// The payload ended: serve what is left (at most [`GRACE`]) and hand back the recording.
    pub(crate) fn finish(mut self) -> Recording {
        self.stop.store(true, Ordering::SeqCst);
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Recording {
                error: Some("the recorder thread panicked".into()),
                ..Default::default()
            },
            None => Recording {
                error: Some("the recorder thread could not be started".into()),
                ..Default::default()
            },
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        // Not joined: a sandbox dropped without wait is being killed anyway.
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn record(pid: libc::pid_t, pidfd: &OwnedFd, stop: &AtomicBool) -> Recording {
    let mut rec = Recording::default();
    let listener = match find_listener(pid, pidfd, stop) {
        Ok(Some(fd)) => fd,
        Ok(None) => return rec,
        Err(e) => {
            // The payload waits in its first call for an answer that will not come.
            kill(pidfd);
            rec.error = Some(e);
            return rec;
        }
    };
    rec.installed = true;
    serve(pid, &listener, stop, &mut rec);
    rec
}

/// Look for the payload's listener until it appears, the payload ends or the sandbox is done.
fn find_listener(
    pid: libc::pid_t,
    pidfd: &OwnedFd,
    stop: &AtomicBool,
) -> Result<Option<OwnedFd>, String> {
    let start = Instant::now();
    let dir = format!("/proc/{pid}/fd");
    loop {
        if stop.load(Ordering::SeqCst) || exited(pidfd) {
            return Ok(None);
        }
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                let is_listener = std::fs::read_link(e.path())
                    .is_ok_and(|l| l.as_os_str() == "anon_inode:seccomp notify");
                let Some(n) = e.file_name().to_str().and_then(|s| s.parse::<RawFd>().ok()) else {
                    continue;
                };
                if !is_listener {
                    continue;
                }
                // SAFETY: pidfd_getfd takes a pidfd, a descriptor number and flags (0).
                let fd = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), n, 0) };
                if fd < 0 {
                    return Err(format!(
                        "pidfd_getfd(payload {pid}, {n}) for the seccomp listener: {}",
                        nix::errno::Errno::last()
                    ));
                }
                // SAFETY: pidfd_getfd returned a new close-on-exec descriptor that we own.
                let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
                let ours = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()));
                if ours.is_ok_and(|l| l.as_os_str() == "anon_inode:seccomp notify") {
                    return Ok(Some(fd));
                }
            }
        }
        if start.elapsed() > FIND_LISTENER {
            return Err(format!(
                "the payload's seccomp listener did not appear in {dir} within {}s",
                FIND_LISTENER.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn exited(pidfd: &OwnedFd) -> bool {
    let mut pfd = libc::pollfd {
        fd: pidfd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, no wait; a pidfd polls readable once the process exited.
    unsafe { libc::poll(&mut pfd, 1, 0) != 0 }
}

fn kill(pidfd: &OwnedFd) {
    // SAFETY: pidfd_send_signal on our pidfd, no siginfo.
    unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            libc::SIGKILL,
            std::ptr::null::<libc::siginfo_t>(),
            0u32,
        )
    };
}

/// Answer notifications until no task uses the filter any more (POLLHUP), or [`GRACE`] after
/// the sandbox was reported done.
fn serve(pid: libc::pid_t, listener: &OwnedFd, stop: &AtomicBool, rec: &mut Recording) {
    let mut stopped_at: Option<Instant> = None;
    loop {
        let mut pfd = libc::pollfd {
            fd: listener.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, 50) };
        if r < 0 {
            let e = nix::errno::Errno::last();
            if e == nix::errno::Errno::EINTR {
                continue;
            }
            rec.error = Some(format!("poll on the seccomp listener: {e}"));
            return;
        }
        if r > 0 && pfd.revents & libc::POLLIN != 0 {
            if let Err(e) = answer_one(pid, listener, rec) {
                rec.error = Some(e);
                return;
            }
            continue;
        }
        if r > 0 && pfd.revents & (libc::POLLHUP | libc::POLLERR) != 0 {
            return;
        }
        if stop.load(Ordering::SeqCst) {
            let since = *stopped_at.get_or_insert_with(Instant::now);
            if since.elapsed() > GRACE {
                rec.error = Some(format!(
                    "processes of the sandbox still used the filter {}s after the payload ended: what they call later is not recorded",
                    GRACE.as_secs()
                ));
                return;
            }
        }
    }
}

/// One notification from a seccomp listener (SECCOMP_IOCTL_NOTIF_RECV; it blocks until one
/// comes). The caller makes sure of the kernel's structure size first ([`check_kernel`]).
pub fn receive_notification(listener: &OwnedFd) -> Result<libc::seccomp_notif, nix::errno::Errno> {
    // SAFETY: an all-zero seccomp_notif is valid (plain integers) and the kernel requires it.
    let mut n: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    // SAFETY: RECV writes one seccomp_notif (of the size check_kernel compared).
    let r = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_RECV,
            &mut n as *mut libc::seccomp_notif,
        )
    };
    if r < 0 {
        return Err(nix::errno::Errno::last());
    }
    Ok(n)
}

/// Receive one notification, note it, and let the call go on.
fn answer_one(pid: libc::pid_t, listener: &OwnedFd, rec: &mut Recording) -> Result<(), String> {
    let n = match receive_notification(listener) {
        Ok(n) => n,
        // Interrupted, or the caller died before we got it: there is nothing to record
        // (a call a signal interrupted is notified again when it restarts).
        Err(nix::errno::Errno::EINTR | nix::errno::Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(format!("SECCOMP_IOCTL_NOTIF_RECV: {e}")),
    };
    rec.notifications += 1;
    let nr = i64::from(n.data.nr);
    let marker = nr == MARKER_NR
        && n.pid as libc::pid_t == pid
        && n.data.args[..3] == MARKER_ARGS
        && !rec.marker_seen;
    let mut resp = libc::seccomp_notif_resp {
        id: n.id,
        val: 0,
        error: 0,
        flags: libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32,
    };
    if marker {
        rec.marker_seen = true;
        // Answered here (0), never run.
        resp.flags = 0;
    } else {
        let call = Call::new(n.data.arch, nr);
        if rec.marker_seen {
            if call.name.as_deref() == Some("clone")
                && call.is_native()
                && n.data.args[0] & CLONE_NAMESPACE_FLAGS != 0
            {
                rec.clone_namespaces = true;
            }
            rec.calls.insert(call);
        } else {
            rec.runtime.insert(call);
        }
    }
    // SAFETY: SEND reads one seccomp_notif_resp.
    let r = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_SEND,
            &mut resp as *mut libc::seccomp_notif_resp,
        )
    };
    if r < 0 {
        return match nix::errno::Errno::last() {
            // The caller was interrupted or killed meanwhile; the call was recorded anyway.
            nix::errno::Errno::ENOENT | nix::errno::Errno::EINTR => Ok(()),
            e => Err(format!("SECCOMP_IOCTL_NOTIF_SEND: {e}")),
        };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_named_for_their_abi() {
        let c = Call::new(0xc000_003e, 110);
        if crate::seccomp::policy::native_scmp_arch() == "SCMP_ARCH_X86_64" {
            assert_eq!(c.to_string(), "getppid");
            assert_eq!(Call::new(0x4000_0003, 102).to_string(), "socketcall (X86)");
        }
        assert!(Call::new(0xc000_003e, MARKER_NR).name.is_none());
    }

    #[test]
    fn the_filter_is_one_return() {
        let p = filter_program();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].k, libc::SECCOMP_RET_USER_NOTIF);
    }

    #[test]
    fn merge_keeps_errors_and_unions_calls() {
        let mut a = Recording {
            installed: true,
            marker_seen: true,
            calls: [Call::new(0xc000_003e, 0)].into(),
            ..Default::default()
        };
        let b = Recording {
            installed: true,
            marker_seen: true,
            calls: [Call::new(0xc000_003e, 1)].into(),
            error: Some("x".into()),
            ..Default::default()
        };
        a.merge(&b);
        assert_eq!(a.calls.len(), 2);
        assert_eq!(a.error.as_deref(), Some("x"));
    }
}
