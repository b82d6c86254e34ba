//! What runs after fork: the supervisor walks the chain up to the `Fork` step, forks the payload
//! process, which walks the rest and execs. A failure is reported as (step index, errno) and the
//! process exits; nothing here panics or allocates on purpose (all data was prepared before
//! fork; `fork()` is glibc's, which keeps malloc usable in the child anyway, and a raw clone3
//! happens only in a single-threaded caller). The one exception is the seccomp program the
//! parent compiles after the fork: `AwaitPrepared` receives it into buffers of its own, made
//! when the payload process starts, before the rlimits layer can leave no room for them.

use crate::handshake::{self, Msg};
use crate::step::{failure_exit_code, Op, Step};
use crate::trace::Trace;
use nix::errno::Errno;
use nix::mount::{mount, umount2, MsFlags};
use nix::sys::stat::Mode;
use std::os::fd::RawFd;

/// Descriptors the chain needs: the socket to the parent; the step trace when asked for.
pub(crate) struct Ctx {
    pub sock: RawFd,
    pub trace: Option<Trace>,
    /// The parent started this process in the sandbox's cgroup (`Op::JoinCgroup` is done).
    pub in_cgroup: bool,
}

/// What the payload process's steps need besides the op: how to tell its parent (the supervisor)
/// is still the one that forked it.
#[derive(Clone, Copy)]
struct PayloadCtx {
    /// getppid() while the supervisor lives: its pid, or 0 in a new pid namespace (the parent is
    /// outside it).
    parent: libc::pid_t,
    /// The write end of the pipe whose read end only the supervisor holds: POLLERR once it died
    /// (also visible from inside a pid namespace, where getppid() says 0 either way).
    report: RawFd,
    /// The socket to the runtime: the supervisor reads nothing from it after `Go`, so the
    /// payload's `AwaitPrepared` step is the only reader of the record that follows.
    sock: RawFd,
    trace: Option<Trace>,
}

/// Run the supervisor's part, fork, and become either the supervisor loop or the payload.
/// Never returns.
pub(crate) fn run(steps: &[Step], ctx: &Ctx) -> ! {
    let fork_at = steps.iter().position(Step::is_fork).unwrap_or(steps.len());
    for (i, step) in steps[..fork_at].iter().enumerate() {
        if let Some(t) = ctx.trace {
            t.note("supervisor", Some(i), &step.call, step.owner());
        }
        if let Err(e) = perform(&step.op, ctx) {
            handshake::send(
                ctx.sock,
                Msg::Failure {
                    step: i as u32,
                    errno: e as i32,
                },
            );
            exit(125);
        }
    }
    // The payload reports its own setup failure through this pipe; a clean EOF (close-on-exec)
    // means execve succeeded.
    let (exec_r, exec_w) = match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
        Ok(p) => p,
        Err(e) => {
            handshake::send(
                ctx.sock,
                Msg::Failure {
                    step: fork_at as u32,
                    errno: e as i32,
                },
            );
            exit(125);
        }
    };
    use std::os::fd::IntoRawFd;
    let (exec_r, exec_w) = (exec_r.into_raw_fd(), exec_w.into_raw_fd());
    let supervisor = nix::unistd::getpid().as_raw();
    // SAFETY: this process is single-threaded (it is itself a fork child).
    match unsafe { libc::fork() } {
        -1 => {
            handshake::send(
                ctx.sock,
                Msg::Failure {
                    step: fork_at as u32,
                    errno: Errno::last() as i32,
                },
            );
            exit(125);
        }
        0 => {
            close(exec_r);
            // In a new pid namespace the parent is outside it: getppid() is 0 from the start.
            // Otherwise it is the supervisor's pid, unless it already died (then the reaper's).
            let parent = match nix::unistd::getppid().as_raw() {
                0 => 0,
                _ => supervisor,
            };
            payload(
                steps,
                fork_at + 1,
                PayloadCtx {
                    parent,
                    report: exec_w,
                    sock: ctx.sock,
                    trace: ctx.trace,
                },
            )
        }
        pid => {
            close(exec_w);
            supervise(pid, exec_r, ctx.sock)
        }
    }
}

fn payload(steps: &[Step], from: usize, pctx: PayloadCtx) -> ! {
    let report = pctx.report;
    crate::layers::fd_hygiene::note_inherited_limit();
    // The buffers for the parent's record after the fork (`AwaitPrepared`), made now: the
    // rlimits layer runs before the wait, and a data limit may leave no room to allocate then.
    let mut prepared = steps[from..]
        .iter()
        .any(|s| matches!(s.op, Op::AwaitPrepared { .. }))
        .then(handshake::PreparedBuffers::new);
    // Whether `prepared` holds the seccomp program the parent compiled after the fork.
    let mut received = false;
    for (i, step) in steps.iter().enumerate().skip(from) {
        if let Some(t) = pctx.trace {
            t.note("payload", Some(i), &step.call, step.owner());
        }
        let res = match &step.op {
            Op::CloseFrom { .. } => close_from(report),
            Op::DieWithParent { parent: 0 } => die_with_supervisor(pctx),
            Op::AwaitPrepared {
                program,
                timeout_ms,
            } => match prepared.as_mut() {
                Some(bufs) => handshake::recv_prepared(
                    pctx.sock,
                    std::time::Duration::from_millis(u64::from(*timeout_ms)),
                    *program,
                    bufs,
                )
                .map(|()| received = *program),
                None => Err(Errno::EINVAL),
            },
            // No program received (the wait step missing): refuse rather than run unfiltered.
            Op::Seccomp(None) => match prepared.as_ref().filter(|_| received) {
                Some(bufs) => load_filter(&bufs.program),
                None => Err(Errno::ENOEXEC),
            },
            op => perform(
                op,
                &Ctx {
                    sock: -1,
                    trace: None,
                    in_cgroup: false,
                },
            ),
        };
        if let Err(e) = res {
            let mut buf = [0u8; 8];
            buf[..4].copy_from_slice(&(i as u32).to_ne_bytes());
            buf[4..].copy_from_slice(&(e as i32).to_ne_bytes());
            // SAFETY: writing a stack buffer to a descriptor we own.
            unsafe { libc::write(report, buf.as_ptr().cast(), buf.len()) };
            exit(failure_exit_code(step.is_exec(), e as i32));
        }
    }
    // The chain always ends with Exec, which only returns on failure.
    exit(125)
}

/// The supervisor: holds nothing of the payload's, relays its exec result and exit status.
fn supervise(payload: libc::pid_t, exec_r: RawFd, sock: RawFd) -> ! {
    close_all_but(&[exec_r, sock]);
    handshake::send(sock, Msg::PayloadPid(payload));
    let mut buf = [0u8; 8];
    let n = loop {
        // SAFETY: reading into a stack buffer of the given length.
        let n = unsafe { libc::read(exec_r, buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 && Errno::last() == Errno::EINTR {
            continue;
        }
        break n;
    };
    if n == 8 {
        let step = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]);
        let errno = i32::from_ne_bytes([buf[4], buf[5], buf[6], buf[7]]);
        handshake::send(sock, Msg::Failure { step, errno });
    } else {
        handshake::send(sock, Msg::ExecOk);
    }
    close(exec_r);
    let mut status = 0;
    loop {
        // SAFETY: waiting for our own child; status is a valid out pointer.
        let r = unsafe { libc::waitpid(payload, &mut status, 0) };
        if r == payload {
            break;
        }
        if r < 0 && Errno::last() != Errno::EINTR {
            status = 125 << 8;
            break;
        }
    }
    handshake::send(sock, Msg::Exited(status));
    exit(0)
}

fn exit(code: i32) -> ! {
    // SAFETY: _exit skips atexit handlers and stdio flushing that belong to the parent's image.
    unsafe { libc::_exit(code) }
}

fn close(fd: RawFd) {
    // SAFETY: closing a descriptor this process owns; errors are irrelevant here.
    unsafe { libc::close(fd) };
}

fn close_range(first: u32, last: u32) -> Result<(), Errno> {
    if first > last {
        return Ok(());
    }
    // SAFETY: close_range only closes descriptors; no memory is passed.
    let r = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0u32) };
    if r == 0 {
        return Ok(());
    }
    let e = Errno::last();
    if e != Errno::ENOSYS {
        return Err(e);
    }
    // Kernels before 5.9, or a seccomp profile answering ENOSYS.
    crate::layers::fd_hygiene::close_without_close_range(first, last)
}

fn close_all_but(keep: &[RawFd]) {
    let mut keep_sorted = [0i32; 2];
    let n = keep.len().min(2);
    keep_sorted[..n].copy_from_slice(&keep[..n]);
    keep_sorted[..n].sort_unstable();
    let mut next = 0u32;
    for &k in &keep_sorted[..n] {
        if k as u32 > next {
            let _ = close_range(next, k as u32 - 1);
        }
        next = k as u32 + 1;
    }
    let _ = close_range(next, u32::MAX);
}

/// fd-hygiene: close everything from 3 up but the error pipe (close-on-exec itself).
fn close_from(keep: RawFd) -> Result<(), Errno> {
    if keep >= 3 {
        close_range(3, keep as u32 - 1)?;
        close_range(keep as u32 + 1, u32::MAX)
    } else {
        close_range(3, u32::MAX)
    }
}

/// PR_SET_PDEATHSIG, then make sure the supervisor did not die before it took effect: the
/// parent is still the expected one and the supervisor's end of the report pipe is open.
fn die_with_supervisor(p: PayloadCtx) -> Result<(), Errno> {
    // SAFETY: PR_SET_PDEATHSIG takes a signal number.
    Errno::result(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) })?;
    if nix::unistd::getppid().as_raw() != p.parent {
        return Err(Errno::ESRCH);
    }
    let mut pfd = libc::pollfd {
        fd: p.report,
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one valid pollfd, no wait.
    let r = unsafe { libc::poll(&mut pfd, 1, 0) };
    if r > 0 && pfd.revents & (libc::POLLERR | libc::POLLHUP) != 0 {
        return Err(Errno::ESRCH);
    }
    Ok(())
}

/// Close every close-on-exec descriptor from 3 up except `keep` and `sock`: what the runtime
/// opened for itself. Descriptors without the flag were left for the payload by the caller.
fn close_runtime_fds(keep: &[RawFd], sock: RawFd) -> Result<(), Errno> {
    let mut fds = [0 as RawFd; 256];
    loop {
        let n = list_fds(&mut fds)?;
        let mut closed = 0;
        for &fd in &fds[..n] {
            if fd < 3 || fd == sock || keep.contains(&fd) {
                continue;
            }
            // SAFETY: F_GETFD on a descriptor number; EBADF for a closed one is harmless.
            let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
            if flags >= 0 && flags & libc::FD_CLOEXEC != 0 {
                close(fd);
                closed += 1;
            }
        }
        // A full buffer may have left descriptors unlisted: list again until none is closed.
        if n < fds.len() || closed == 0 {
            return Ok(());
        }
    }
}

/// The open descriptor numbers from /proc/self/fd (getdents64 into a stack buffer, no
/// allocation), at most `out.len()`; without /proc, every number up to the soft RLIMIT_NOFILE
/// (capped) that F_GETFD accepts.
fn list_fds(out: &mut [RawFd]) -> Result<usize, Errno> {
    // SAFETY: a NUL-terminated path; the descriptor is closed below.
    let dir = unsafe {
        libc::open(
            c"/proc/self/fd".as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    let mut n = 0;
    if dir < 0 {
        let (soft, _) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)?;
        for fd in 3..soft.min(1 << 16) as RawFd {
            // SAFETY: F_GETFD on a descriptor number.
            if unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0 {
                if n == out.len() {
                    break;
                }
                out[n] = fd;
                n += 1;
            }
        }
        return Ok(n);
    }
    let mut buf = [0u8; 4096];
    'outer: loop {
        // SAFETY: buf is writable for its length.
        let got = unsafe { libc::syscall(libc::SYS_getdents64, dir, buf.as_mut_ptr(), buf.len()) };
        if got < 0 {
            let e = Errno::last();
            close(dir);
            return Err(e);
        }
        if got == 0 {
            break;
        }
        let mut off = 0usize;
        while off < got as usize {
            // struct linux_dirent64: d_ino u64, d_off i64, d_reclen u16, d_type u8, d_name.
            let reclen = u16::from_ne_bytes([buf[off + 16], buf[off + 17]]) as usize;
            let name = &buf[off + 19..off + reclen];
            let name = &name[..name.iter().position(|b| *b == 0).unwrap_or(name.len())];
            let mut fd: i64 = 0;
            let numeric = !name.is_empty() && name.iter().all(|b| b.is_ascii_digit());
            if numeric {
                for b in name {
                    fd = fd * 10 + i64::from(b - b'0');
                }
                if fd as RawFd != dir {
                    if n == out.len() {
                        break 'outer;
                    }
                    out[n] = fd as RawFd;
                    n += 1;
                }
            }
            off += reclen.max(1);
        }
    }
    close(dir);
    Ok(n)
}

fn perform(op: &Op, ctx: &Ctx) -> Result<(), Errno> {
    match op {
        Op::ResetSignals => reset_signals(),
        Op::Dup2 { from, to } => {
            // SAFETY: dup2 on descriptors; no memory involved.
            Errno::result(unsafe { libc::dup2(*from, *to) }).map(drop)
        }
        Op::Setsid => nix::unistd::setsid().map(drop),
        Op::SetControllingTty { fd } => {
            // SAFETY: TIOCSCTTY takes an integer argument (0: do not steal).
            Errno::result(unsafe { libc::ioctl(*fd, libc::TIOCSCTTY, 0) }).map(drop)
        }
        Op::DieWithParent { parent } => {
            // SAFETY: PR_SET_PDEATHSIG takes a signal number.
            Errno::result(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) })?;
            // The parent may have died before the setting took effect.
            if *parent != 0 && nix::unistd::getppid().as_raw() != *parent {
                return Err(Errno::ESRCH);
            }
            Ok(())
        }
        Op::CloseRuntimeFds { keep } => close_runtime_fds(keep, ctx.sock),
        Op::NotDumpable => {
            // SAFETY: PR_SET_DUMPABLE takes an integer.
            Errno::result(unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) }).map(drop)
        }
        Op::Dumpable => {
            // SAFETY: PR_SET_DUMPABLE takes an integer.
            Errno::result(unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0) }).map(drop)
        }
        // Moving a process between cgroups waits for an RCU grace period (tens of ms in a TCG
        // guest); a process started in the cgroup has nothing to move.
        Op::JoinCgroup { .. } if ctx.in_cgroup => Ok(()),
        Op::JoinCgroup { procs, .. } => write_all(*procs, b"0"),
        Op::WriteFile { path, data } => {
            // SAFETY: path is a valid NUL-terminated string.
            let fd = Errno::result(unsafe {
                libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC)
            })?;
            let r = write_all(fd, data);
            close(fd);
            r
        }
        Op::SetGroupsEmpty => {
            // SAFETY: an empty list: size 0, null pointer.
            Errno::result(unsafe { libc::setgroups(0, std::ptr::null()) }).map(drop)
        }
        Op::SetResGid(g) => {
            let g = nix::unistd::Gid::from_raw(*g);
            nix::unistd::setresgid(g, g, g)
        }
        Op::SetResUid(u) => {
            let u = nix::unistd::Uid::from_raw(*u);
            nix::unistd::setresuid(u, u, u)
        }
        Op::Unshare(flags) => nix::sched::unshare(*flags),
        Op::AwaitIdMaps => {
            handshake::send(ctx.sock, Msg::UserNsReady);
            match handshake::recv_blocking(ctx.sock) {
                Some(Msg::Go) => Ok(()),
                _ => Err(Errno::EPIPE),
            }
        }
        Op::LoopbackUp => crate::layers::net::loopback_up(),
        Op::SetHostname(name) => {
            // SAFETY: name points to len bytes.
            Errno::result(unsafe { libc::sethostname(name.as_ptr(), name.as_bytes().len()) })
                .map(drop)
        }
        Op::Fork => Ok(()),
        Op::Mount {
            src,
            target,
            fstype,
            flags,
            data,
        } => mount(
            src.as_deref(),
            target.as_c_str(),
            fstype.as_deref(),
            *flags,
            data.as_deref(),
        ),
        Op::BindFrom {
            src,
            kind,
            target,
            flags,
            pin_target,
        } => bind_from(src, *kind, target, *flags, *pin_target),
        Op::MountOnto {
            src,
            target,
            fstype,
            flags,
            data,
        } => with_pinned_dir(target, |t| {
            mount(
                src.as_deref(),
                t,
                fstype.as_deref(),
                *flags,
                data.as_deref(),
            )
        }),
        Op::ReadOnlyBelow { path, attrs } => read_only_below(path, *attrs),
        Op::Mkdir { path, mode } => {
            match nix::unistd::mkdir(path.as_c_str(), Mode::from_bits_truncate(*mode)) {
                Ok(()) | Err(Errno::EEXIST) => Ok(()),
                Err(e) => Err(e),
            }
        }
        Op::CreateFile { path } => {
            // SAFETY: path is NUL-terminated.
            let fd = unsafe {
                libc::open(
                    path.as_ptr(),
                    libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                    0o644,
                )
            };
            Errno::result(fd).map(close)
        }
        Op::Symlink { target, link } => {
            nix::unistd::symlinkat(target.as_c_str(), None, link.as_c_str())
        }
        Op::Chdir(p) => nix::unistd::chdir(p.as_c_str()),
        Op::PivotRoot => nix::unistd::pivot_root(c".", c"."),
        Op::Umount { target, flags } => umount2(target.as_c_str(), *flags),
        Op::MaskPath { path } => mask_path(path),
        Op::ReadOnlyPath { path, locked } => match mount(
            Some(path.as_c_str()),
            path.as_c_str(),
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        ) {
            Err(Errno::ENOENT) => Ok(()),
            Err(e) => Err(e),
            Ok(()) => {
                mount(
                    None::<&str>,
                    path.as_c_str(),
                    None::<&str>,
                    MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | *locked,
                    None::<&str>,
                )?;
                read_only_below(path, crate::step::MOUNT_ATTR_RDONLY)
            }
        },
        Op::SetRlimit { resource, value } => {
            nix::sys::resource::setrlimit(*resource, *value, *value)
        }
        Op::NoNewPrivs => {
            // SAFETY: PR_SET_NO_NEW_PRIVS takes integers.
            Errno::result(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) }).map(drop)
        }
        Op::Landlock(rules) => rules.apply(),
        Op::Seccomp(Some(bpf)) => load_filter(&bpf.0),
        // Only the payload process waits for the parent's record and keeps its program (see
        // `payload`): anywhere else these steps are misplaced.
        Op::Seccomp(None) | Op::AwaitPrepared { .. } => Err(Errno::EINVAL),
        Op::SeccompRecord(bpf) => {
            let len = u16::try_from(bpf.len()).map_err(|_| Errno::E2BIG)?;
            let prog = libc::sock_fprog {
                len,
                filter: bpf.0.as_ptr() as *mut libc::sock_filter,
            };
            // The listener this returns stays here (close-on-exec, or closed by fd-hygiene): the
            // recorder copies it with pidfd_getfd while this process waits in its next call.
            // WAIT_KILLABLE_RECV (Linux 5.19): once the recorder has received a call, a signal
            // no longer interrupts it (the interrupted call would return EINTR where the kernel
            // alone would have restarted it); older kernels refuse the flag, then without it.
            let install = |flags: libc::c_ulong| {
                // SAFETY: prog points to a valid program that outlives the call (the kernel
                // copies it).
                Errno::result(unsafe {
                    libc::syscall(
                        libc::SYS_seccomp,
                        libc::SECCOMP_SET_MODE_FILTER,
                        flags as u32,
                        &prog as *const libc::sock_fprog,
                    )
                })
            };
            match install(
                libc::SECCOMP_FILTER_FLAG_NEW_LISTENER
                    | libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
            ) {
                Err(Errno::EINVAL) => install(libc::SECCOMP_FILTER_FLAG_NEW_LISTENER).map(drop),
                r => r.map(drop),
            }
        }
        Op::RecordMarker => {
            let [a, b, c] = crate::seccomp::record::MARKER_ARGS;
            // SAFETY: a syscall number no kernel has, with integer arguments: the recorder answers
            // it (0); unrecorded the kernel says ENOSYS. The result does not matter.
            unsafe { libc::syscall(crate::seccomp::record::MARKER_NR, a, b, c) };
            Ok(())
        }
        Op::DropBounding(list) => {
            for c in list {
                caps::drop(None, caps::CapSet::Bounding, *c).map_err(|_| Errno::last())?;
            }
            Ok(())
        }
        Op::SetCaps { eff_prm } => {
            crate::layers::caps::capset(*eff_prm, 0)?;
            // SAFETY: PR_CAP_AMBIENT_CLEAR_ALL takes integers.
            Errno::result(unsafe {
                libc::prctl(
                    libc::PR_CAP_AMBIENT,
                    libc::PR_CAP_AMBIENT_CLEAR_ALL,
                    0,
                    0,
                    0,
                )
            })
            .map(drop)
        }
        Op::VerifyIds { uid, gid } => verify_ids(*uid, *gid),
        Op::VerifyCaps { eff_prm, bounding } => verify_caps(*eff_prm, *bounding),
        Op::VerifyNoNewPrivs => {
            // SAFETY: PR_GET_NO_NEW_PRIVS takes integers.
            let r = Errno::result(unsafe { libc::prctl(libc::PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) })?;
            if r == 1 {
                Ok(())
            } else {
                Err(Errno::EPERM)
            }
        }
        Op::CloseFrom { keep } => close_from(*keep),
        Op::CheckCwd => {
            let mut buf = [0u8; 4096];
            // SAFETY: buf is writable for its length.
            let r = unsafe { libc::syscall(libc::SYS_getcwd, buf.as_mut_ptr(), buf.len()) };
            Errno::result(r)?;
            // The kernel answers "(unreachable)/..." for a directory outside our root (and
            // ENOENT for a deleted one): only an absolute path is inside.
            if buf[0] == b'/' {
                Ok(())
            } else {
                Err(Errno::ENOENT)
            }
        }
        Op::Exec(x) => {
            let mut err = Errno::ENOENT;
            for path in &x.candidates {
                // SAFETY: path, argv and envp are NUL-terminated and the arrays null-terminated;
                // they live in the plan which outlives this call.
                unsafe { libc::execve(path.as_ptr(), x.argv_ptrs.as_ptr(), x.envp_ptrs.as_ptr()) };
                match Errno::last() {
                    Errno::ENOENT | Errno::ENOTDIR => {}
                    Errno::EACCES => err = Errno::EACCES,
                    other => return Err(other),
                }
            }
            Err(err)
        }
    }
}

/// seccomp(SECCOMP_SET_MODE_FILTER) with `prog`.
fn load_filter(prog: &[libc::sock_filter]) -> Result<(), Errno> {
    // The kernel's length field is 16 bits: a longer program must not be cut short.
    let len = u16::try_from(prog.len()).map_err(|_| Errno::E2BIG)?;
    let fprog = libc::sock_fprog {
        len,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: fprog points to `len` instructions that outlive the call (the kernel copies them).
    Errno::result(unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0u32,
            &fprog as *const libc::sock_fprog,
        )
    })
    .map(drop)
}

/// Real, effective and saved ids all `uid`/`gid`, no supplementary group. The out values start at
/// -1 so a call that "succeeds" without writing them cannot pass. A mismatch is EPERM.
fn verify_ids(uid: u32, gid: u32) -> Result<(), Errno> {
    let (mut r, mut e, mut s) = (u32::MAX, u32::MAX, u32::MAX);
    // SAFETY: three valid out pointers.
    Errno::result(unsafe { libc::getresuid(&mut r, &mut e, &mut s) })?;
    if [r, e, s] != [uid; 3] {
        return Err(Errno::EPERM);
    }
    let (mut r, mut e, mut s) = (u32::MAX, u32::MAX, u32::MAX);
    // SAFETY: three valid out pointers.
    Errno::result(unsafe { libc::getresgid(&mut r, &mut e, &mut s) })?;
    if [r, e, s] != [gid; 3] {
        return Err(Errno::EPERM);
    }
    // SAFETY: size 0 asks for the count only; no memory is written.
    let groups = Errno::result(unsafe { libc::getgroups(0, std::ptr::null_mut()) })?;
    if groups != 0 {
        return Err(Errno::EPERM);
    }
    Ok(())
}

/// The five capability sets against the plan. A mismatch is EPERM.
fn verify_caps(eff_prm: u64, bounding: u64) -> Result<(), Errno> {
    use crate::layers::caps::{capget, prctl_mask};
    let bnd = prctl_mask(|c| {
        // SAFETY: PR_CAPBSET_READ takes a capability number.
        unsafe { libc::prctl(libc::PR_CAPBSET_READ, c, 0, 0, 0) }.into()
    })?;
    let amb = prctl_mask(|c| {
        // SAFETY: PR_CAP_AMBIENT_IS_SET takes a capability number.
        unsafe { libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_IS_SET, c, 0, 0) }.into()
    })?;
    let (eff, prm, inh) = capget()?;
    // Bits past the kernel's last capability: capget leaves them 0, our sentinel does not.
    if eff != eff_prm || prm != eff_prm || inh != 0 || amb != 0 || bnd != bounding {
        return Err(Errno::EPERM);
    }
    Ok(())
}

fn write_all(fd: RawFd, data: &[u8]) -> Result<(), Errno> {
    let mut off = 0;
    while off < data.len() {
        // SAFETY: writing from a valid slice.
        let n = unsafe { libc::write(fd, data[off..].as_ptr().cast(), data.len() - off) };
        if n < 0 {
            let e = Errno::last();
            if e == Errno::EINTR {
                continue;
            }
            return Err(e);
        }
        off += n as usize;
    }
    Ok(())
}

/// Every signal back to its default disposition and an empty mask. Raw rt_sigaction, because
/// glibc refuses to touch the two signals it reserves (32, 33), which an ignoring ancestor can
/// still leave ignored, and ignored dispositions survive execve. An all-zero kernel sigaction is
/// SIG_DFL with no flags, no restorer and an empty mask whatever the architecture's field order.
fn reset_signals() -> Result<(), Errno> {
    nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&nix::sys::signal::SigSet::empty()),
        None,
    )?;
    let dfl = [0u64; 8];
    // The kernel's sigset size: 64 signals on every architecture we build for.
    const SIGSET_BYTES: usize = 8;
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: dfl is a zeroed buffer at least as large as the kernel's struct sigaction; the
        // old action is not asked for.
        let r = unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                dfl.as_ptr(),
                std::ptr::null_mut::<u64>(),
                SIGSET_BYTES,
            )
        };
        if r < 0 {
            let e = Errno::last();
            // Past the kernel's last signal.
            if e == Errno::EINVAL && sig > 31 {
                break;
            }
            return Err(e);
        }
    }
    Ok(())
}

/// Opens `path` as an O_PATH descriptor without following a symbolic link in any component
/// (openat2 RESOLVE_NO_SYMLINKS); before Linux 5.6, O_NOFOLLOW (the last component only).
fn open_no_symlinks(path: &std::ffi::CStr) -> Result<RawFd, Errno> {
    /// struct open_how of <linux/openat2.h>.
    #[repr(C)]
    struct OpenHow {
        flags: u64,
        mode: u64,
        resolve: u64,
    }
    const RESOLVE_NO_SYMLINKS: u64 = 0x04;
    let flags = libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    let how = OpenHow {
        flags: flags as u64,
        mode: 0,
        resolve: RESOLVE_NO_SYMLINKS,
    };
    // SAFETY: path is NUL-terminated and `how` is a valid open_how of the size passed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            libc::AT_FDCWD,
            path.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    match Errno::result(r) {
        Ok(fd) => Ok(fd as RawFd),
        Err(Errno::ENOSYS) => {
            // SAFETY: path is NUL-terminated.
            Errno::result(unsafe { libc::open(path.as_ptr(), flags) })
        }
        Err(e) => Err(e),
    }
}

/// "/proc/self/fd/N" in `buf`, NUL-terminated, without allocating (the child of a fork).
fn fd_path(fd: RawFd, buf: &mut [u8; 32]) -> &std::ffi::CStr {
    const PREFIX: &[u8] = b"/proc/self/fd/";
    buf[..PREFIX.len()].copy_from_slice(PREFIX);
    let mut digits = [0u8; 10];
    let (mut n, mut len) = (fd.unsigned_abs(), 0);
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for i in 0..len {
        buf[PREFIX.len() + i] = digits[len - 1 - i];
    }
    buf[PREFIX.len() + len] = 0;
    // The buffer holds exactly one NUL, just written.
    std::ffi::CStr::from_bytes_until_nul(&buf[..]).unwrap_or(c"/proc/self/fd/")
}

/// Runs `f` with /proc/self/fd/N of the directory `path`, opened without following symlinks.
fn with_pinned_dir(
    path: &std::ffi::CStr,
    f: impl FnOnce(&std::ffi::CStr) -> Result<(), Errno>,
) -> Result<(), Errno> {
    let fd = open_no_symlinks(path)?;
    let r = (|| {
        let got = nix::sys::stat::fstat(fd)?.st_mode & libc::S_IFMT;
        if got != libc::S_IFDIR {
            return Err(if got == libc::S_IFLNK {
                Errno::ELOOP
            } else {
                Errno::ENOTDIR
            });
        }
        let mut buf = [0u8; 32];
        f(fd_path(fd, &mut buf))
    })();
    close(fd);
    r
}

fn bind_from(
    src: &std::ffi::CStr,
    kind: libc::mode_t,
    target: &std::ffi::CStr,
    flags: MsFlags,
    pin_target: bool,
) -> Result<(), Errno> {
    let fd = open_no_symlinks(src)?;
    let r = (|| {
        let got = nix::sys::stat::fstat(fd)?.st_mode & libc::S_IFMT;
        if got != kind {
            // The path changed since the parent looked: never bind what it names now.
            return Err(if got == libc::S_IFLNK {
                Errno::ELOOP
            } else {
                Errno::ESTALE
            });
        }
        let mut buf = [0u8; 32];
        let source = fd_path(fd, &mut buf);
        let bind = |t: &std::ffi::CStr| mount(Some(source), t, None::<&str>, flags, None::<&str>);
        if pin_target {
            with_pinned_dir(target, bind)
        } else {
            bind(target)
        }
    })();
    close(fd);
    r
}

/// See `Op::ReadOnlyBelow`.
fn read_only_below(path: &std::ffi::CStr, attrs: u64) -> Result<(), Errno> {
    /// struct mount_attr of <linux/mount.h>.
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    const AT_RECURSIVE: libc::c_uint = 0x8000;
    let attr = MountAttr {
        attr_set: attrs,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: path is NUL-terminated and `attr` is a valid mount_attr of the size passed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            path.as_ptr(),
            AT_RECURSIVE,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    match Errno::result(r) {
        Ok(_) => Ok(()),
        Err(Errno::ENOSYS) => read_only_below_by_remount(path, attrs),
        Err(e) => Err(e),
    }
}

/// Before Linux 5.12: remount every mount point listed below `path` in /proc/self/mountinfo
/// (deepest last is fine: each remount changes one mount), keeping the flags it has.
fn read_only_below_by_remount(path: &std::ffi::CStr, attrs: u64) -> Result<(), Errno> {
    let mut add = MsFlags::MS_BIND | MsFlags::MS_REMOUNT;
    for (attr, flag) in [
        (crate::step::MOUNT_ATTR_RDONLY, MsFlags::MS_RDONLY),
        (crate::step::MOUNT_ATTR_NOSUID, MsFlags::MS_NOSUID),
        (crate::step::MOUNT_ATTR_NODEV, MsFlags::MS_NODEV),
    ] {
        if attrs & attr != 0 {
            add |= flag;
        }
    }
    let info = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
    let base = path.to_bytes();
    for line in info.lines() {
        let Some(point) = line.split(' ').nth(4) else {
            continue;
        };
        let point = unescape_mountinfo(point);
        let below = point.len() > base.len()
            && point.starts_with(base)
            && (base == b"/" || point[base.len()] == b'/');
        if !below {
            continue;
        }
        let Ok(c) = std::ffi::CString::new(point) else {
            continue;
        };
        let kept = statvfs_flags(&c)?;
        mount(
            None::<&str>,
            c.as_c_str(),
            None::<&str>,
            add | kept,
            None::<&str>,
        )?;
    }
    Ok(())
}

/// The mount flags a remount must keep (a user namespace may not clear locked ones).
fn statvfs_flags(path: &std::ffi::CStr) -> Result<MsFlags, Errno> {
    let st = nix::sys::statvfs::statvfs(path)?;
    Ok(crate::layers::mount::mount_flags_of(st.flags()))
}

/// mountinfo escapes space, tab, newline and backslash as \ooo (octal).
fn unescape_mountinfo(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

fn mask_path(path: &std::ffi::CStr) -> Result<(), Errno> {
    match nix::sys::stat::stat(path) {
        Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(e),
        Ok(st) if (st.st_mode & libc::S_IFMT) == libc::S_IFDIR => mount(
            Some(c"tmpfs"),
            path,
            Some(c"tmpfs"),
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            None::<&str>,
        ),
        Ok(_) => mount(
            Some(c"/dev/null"),
            path,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fd_paths_are_written_without_allocating() {
        let mut buf = [0u8; 32];
        assert_eq!(fd_path(0, &mut buf), c"/proc/self/fd/0");
        assert_eq!(fd_path(7, &mut buf), c"/proc/self/fd/7");
        assert_eq!(fd_path(1234567, &mut buf), c"/proc/self/fd/1234567");
        assert_eq!(
            fd_path(i32::MAX, &mut buf).to_bytes().len(),
            "/proc/self/fd/".len() + 10
        );
    }

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape_mountinfo("/a\\040b"), b"/a b");
        assert_eq!(unescape_mountinfo("/plain"), b"/plain");
        assert_eq!(unescape_mountinfo("/trailing\\04"), b"/trailing\\04");
    }
}
