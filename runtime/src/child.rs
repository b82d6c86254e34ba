//! What runs after fork: the supervisor walks the chain up to the `Fork` step, forks the payload
//! process, which walks the rest and execs. A failure is reported as (step index, errno) and the
//! process exits; nothing here panics or allocates on purpose (all data was prepared before
//! fork; `fork()` is glibc's, which keeps malloc usable in the child anyway).

use crate::handshake::{self, Msg};
use crate::step::{failure_exit_code, Op, Step};
use nix::errno::Errno;
use nix::mount::{mount, umount2, MsFlags};
use nix::sys::stat::Mode;
use std::os::fd::RawFd;

/// Descriptors the chain needs: the socket to the parent.
pub(crate) struct Ctx {
    pub sock: RawFd,
}

/// Run the supervisor's part, fork, and become either the supervisor loop or the payload.
/// Never returns.
pub(crate) fn run(steps: &[Step], ctx: &Ctx) -> ! {
    let fork_at = steps.iter().position(Step::is_fork).unwrap_or(steps.len());
    for (i, step) in steps[..fork_at].iter().enumerate() {
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
            payload(steps, fork_at + 1, exec_w)
        }
        pid => {
            close(exec_w);
            supervise(pid, exec_r, ctx.sock)
        }
    }
}

fn payload(steps: &[Step], from: usize, report: RawFd) -> ! {
    crate::layers::fd_hygiene::note_inherited_limit();
    for (i, step) in steps.iter().enumerate().skip(from) {
        let res = match &step.op {
            Op::CloseFrom { .. } => close_from(report),
            op => perform(op, &Ctx { sock: -1 }),
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
        Op::NotDumpable => {
            // SAFETY: PR_SET_DUMPABLE takes an integer.
            Errno::result(unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) }).map(drop)
        }
        Op::Dumpable => {
            // SAFETY: PR_SET_DUMPABLE takes an integer.
            Errno::result(unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0) }).map(drop)
        }
        Op::WriteFd { fd, data } => write_all(*fd, data),
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
            Ok(()) => mount(
                None::<&str>,
                path.as_c_str(),
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | *locked,
                None::<&str>,
            ),
        },
        Op::SetRlimit { resource, value } => {
            nix::sys::resource::setrlimit(*resource, *value, *value)
        }
        Op::NoNewPrivs => {
            // SAFETY: PR_SET_NO_NEW_PRIVS takes integers.
            Errno::result(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) }).map(drop)
        }
        Op::Seccomp(bpf) => {
            let prog = libc::sock_fprog {
                len: bpf.len() as u16,
                filter: bpf.0.as_ptr() as *mut libc::sock_filter,
            };
            // SAFETY: prog points to a valid program that outlives the call (the kernel copies it).
            Errno::result(unsafe {
                libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER,
                    0u32,
                    &prog as *const libc::sock_fprog,
                )
            })
            .map(drop)
        }
        Op::DropBounding(list) => {
            for c in list {
                caps::drop(None, caps::CapSet::Bounding, *c).map_err(|_| Errno::last())?;
            }
            Ok(())
        }
        Op::KeepCaps => {
            // SAFETY: PR_SET_KEEPCAPS takes an integer.
            Errno::result(unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) }).map(drop)
        }
        Op::SetCaps(keep) => {
            use caps::CapSet;
            caps::set(None, CapSet::Effective, keep).map_err(|_| Errno::last())?;
            caps::set(None, CapSet::Permitted, keep).map_err(|_| Errno::last())?;
            caps::set(None, CapSet::Inheritable, keep).map_err(|_| Errno::last())?;
            caps::clear(None, CapSet::Ambient).map_err(|_| Errno::last())?;
            for c in keep {
                caps::raise(None, CapSet::Ambient, *c).map_err(|_| Errno::last())?;
            }
            Ok(())
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

fn reset_signals() -> Result<(), Errno> {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&SigSet::empty()),
        None,
    )?;
    let dfl = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for sig in Signal::iterator() {
        if matches!(sig, Signal::SIGKILL | Signal::SIGSTOP) {
            continue;
        }
        // SAFETY: installing the default disposition is always sound.
        unsafe { sigaction(sig, &dfl) }?;
    }
    Ok(())
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
