//! `spawn`: prepare the chain, fork the supervisor, answer its handshake, and hand back a
//! `Sandbox` to wait for or kill.
//!
//! The parent's slow preparations run after the fork, while the child creates its namespaces
//! (two cores: the parent would otherwise sit idle): compiling the seccomp policy (libseccomp,
//! unless this process compiled it before) and attaching fs-hardening's device program to the
//! leaf (the verifier, once per process). One record then carries the program to the payload,
//! whose `AwaitPrepared` step waits for it before the filter is loaded and before anything of
//! the payload's runs. Before the fork stays what the child needs to start: the checks, the
//! cgroup leaf (the supervisor is born in it) and the chain.

use crate::config::{ConfigError, SandboxConfig};
use crate::handshake::{self, Msg, Recv};
use crate::layer::Layer;
use crate::layers::cgroup_limits::{CgroupError, CgroupHandle};
use crate::layers::landlock::LandlockEvidence;
use crate::layers::user_ns;
use crate::outcome::{ExitKind, Outcome, SetupFailure};
use crate::plan::{self, PlanError, PlanInput};
use crate::seccomp::record::Recorder;
use crate::seccomp::Recording;
use crate::step::failure_exit_code;
use crate::trace::Trace;
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::ffi::{CString, OsString};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::Duration;

/// Why a sandbox could not be started (the payload never ran). Setup failures inside the child
/// are not errors here: they come back in `Outcome::setup_failure`.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("payload: {0}")]
    Payload(String),
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error("layer user-ns: writing {path}: {source}")]
    IdMap {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("sandbox setup: {what}: {errno}")]
    Os { what: &'static str, errno: Errno },
    #[error(transparent)]
    Landlock(#[from] crate::layers::landlock::LandlockError),
    #[error("recording syscalls: {0}")]
    Record(String),
    #[error("the sandbox supervisor (pid {pid}) ended during setup without a report: {status}")]
    SupervisorDied { pid: i32, status: String },
    #[error("refusing to start the sandbox: {0}")]
    HostUnsafe(String),
}

fn os(what: &'static str) -> impl FnOnce(Errno) -> SpawnError {
    move |errno| SpawnError::Os { what, errno }
}

/// What to run in the sandbox and with which descriptors.
#[derive(Debug, Default)]
pub struct Payload {
    /// argv[0] is looked up in the payload's PATH inside the sandbox unless it contains '/'.
    pub argv: Vec<OsString>,
    /// The payload's whole environment (nothing is inherited).
    pub env: Vec<(OsString, OsString)>,
    /// None = /dev/null.
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
    /// Working directory inside the sandbox (default: "/" with mount-ns, else the caller's).
    pub cwd: Option<PathBuf>,
    /// Give the payload a pseudo-terminal the runtime owns (`Sandbox::pty_master`).
    pub tty: bool,
    /// A cgroup v2 directory owned by the caller: the sandbox runs in it (or in a leaf under it
    /// with cgroup-limits on).
    pub outer_cgroup: Option<PathBuf>,
    /// A terminal whose master the caller holds: made the payload's stdin and controlling
    /// terminal before any layer (new-session then takes it away again).
    pub controlling_tty: Option<OwnedFd>,
}

impl Payload {
    /// A payload with the given argv and a minimal environment (PATH, HOME=/).
    pub fn new<I, S>(argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        Payload {
            argv: argv.into_iter().map(Into::into).collect(),
            env: vec![
                ("PATH".into(), plan::DEFAULT_PATH.into()),
                ("HOME".into(), "/".into()),
            ],
            ..Default::default()
        }
    }
}

/// A running sandbox.
pub struct Sandbox {
    supervisor: Pid,
    payload: Option<Pid>,
    /// A pidfd of the payload, opened when its pid arrived and checked to be the supervisor's
    /// child: kill() signals through it, never through a pid that may have been reused.
    payload_fd: Option<OwnedFd>,
    /// The user namespace's maps, when user-ns is on.
    id_maps: Option<(String, String)>,
    sock: OwnedFd,
    /// (owner, call, is_exec) per step, to describe a failure.
    steps: Vec<(&'static str, String, bool)>,
    cgroup: Option<CgroupHandle>,
    /// The failed step and whether it was the execve (exit 126/127 instead of 125).
    failure: Option<(SetupFailure, bool)>,
    pty_master: Option<OwnedFd>,
    reaped: bool,
    landlock: Option<LandlockEvidence>,
    /// Recording the payload's syscalls (`SandboxConfig::set_record_syscalls`).
    records: bool,
    recorder: Option<Recorder>,
    trace: Option<Trace>,
}

fn cstring(what: &str, s: &[u8]) -> Result<CString, SpawnError> {
    CString::new(s).map_err(|_| {
        SpawnError::Payload(format!(
            "{what} contains a NUL byte: {:?}",
            String::from_utf8_lossy(s)
        ))
    })
}

/// A close-on-exec duplicate at 3 or above (so dup2 onto 0..2 never clobbers a source).
fn dup_high(fd: BorrowedFd<'_>) -> Result<OwnedFd, SpawnError> {
    let raw = fcntl(fd.as_raw_fd(), FcntlArg::F_DUPFD_CLOEXEC(3))
        .map_err(os("fcntl(F_DUPFD_CLOEXEC)"))?;
    // SAFETY: fcntl just returned this new descriptor; we are its only owner.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

fn dev_null() -> Result<OwnedFd, SpawnError> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| SpawnError::Os {
            what: "open(/dev/null)",
            errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        })?;
    dup_high(OwnedFd::from(f).as_fd())
}

/// Start `payload` in a sandbox configured by `cfg`.
pub fn spawn(cfg: &SandboxConfig, payload: Payload) -> Result<Sandbox, SpawnError> {
    let trace = Trace::from_env();
    cfg.validate()?;
    // A kernel without Landlock fails the launch here, by name, before anything forks.
    let landlock = if cfg.enabled(Layer::Landlock) {
        Some(crate::layers::landlock::evidence()?)
    } else {
        None
    };
    if payload.argv.is_empty() {
        return Err(SpawnError::Payload("empty command line".into()));
    }
    if cfg.records_syscalls() {
        // The recorder copies the listener out of a payload that is not dumpable.
        if !nix::unistd::geteuid().is_root() {
            return Err(SpawnError::Record(
                "needs root (the listener is taken from the payload with pidfd_getfd)".into(),
            ));
        }
        crate::seccomp::record::check_kernel().map_err(SpawnError::Record)?;
    }
    let argv = payload
        .argv
        .iter()
        .map(|a| cstring("an argument", a.as_bytes()))
        .collect::<Result<Vec<_>, _>>()?;
    let env = payload
        .env
        .iter()
        .map(|(k, v)| {
            if k.is_empty() || k.as_bytes().contains(&b'=') {
                return Err(SpawnError::Payload(format!(
                    "bad environment variable name {k:?}"
                )));
            }
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            cstring("an environment variable", &kv)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let cwd = match &payload.cwd {
        Some(p) => Some(cstring("the working directory", p.as_os_str().as_bytes())?),
        None if cfg.enabled(Layer::MountNs) => Some(CString::from(c"/")),
        None => None,
    };

    // Descriptors the child dups into place; all close-on-exec and >= 3.
    let stdio = [
        match &payload.stdin {
            Some(fd) => dup_high(fd.as_fd())?,
            None => dev_null()?,
        },
        match &payload.stdout {
            Some(fd) => dup_high(fd.as_fd())?,
            None => dev_null()?,
        },
        match &payload.stderr {
            Some(fd) => dup_high(fd.as_fd())?,
            None => dev_null()?,
        },
    ];
    let ctty = payload
        .controlling_tty
        .as_ref()
        .map(|fd| dup_high(fd.as_fd()))
        .transpose()?;
    let pty = if payload.tty {
        let p = nix::pty::openpty(None, None).map_err(os("openpty"))?;
        fcntl(p.master.as_raw_fd(), FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))
            .map_err(os("fcntl(FD_CLOEXEC)"))?;
        let slave = dup_high(p.slave.as_fd())?;
        Some((p.master, slave))
    } else {
        None
    };

    if let Some(t) = trace {
        t.note(
            "runtime",
            None,
            "checks, landlock probed, descriptors ready",
            "",
        );
    }
    let cgroup = CgroupHandle::prepare(cfg, payload.outer_cgroup.as_deref())?;
    if let Some(t) = trace {
        t.note("runtime", None, "cgroup leaf ready", "");
    }
    let ids = user_ns::id_plan_for_caller(cfg);
    let exec = plan::exec_for(&argv, &env);
    let plan::Plan {
        steps,
        compile,
        devices,
    } = plan::build(
        cfg,
        PlanInput {
            parent: nix::unistd::getpid().as_raw(),
            caller_is_root: nix::unistd::geteuid().is_root(),
            stdio: [
                stdio[0].as_raw_fd(),
                stdio[1].as_raw_fd(),
                stdio[2].as_raw_fd(),
            ],
            controlling_tty: ctty.as_ref().map(|f| f.as_raw_fd()),
            pty_slave: pty.as_ref().map(|(_, s)| s.as_raw_fd()),
            pty_name: pty
                .as_ref()
                .and_then(|(_, s)| nix::unistd::ttyname(s.as_fd()).ok()),
            cgroup: cgroup.as_ref(),
            ids: &ids,
            exec,
            cwd,
            prepared_timeout: prepared_timeout(),
        },
    )
    .inspect_err(|_| {
        if let Some(cg) = &cgroup {
            let _ = cg.remove();
        }
    })?;

    if let Some(why) = crate::layers::session::suid_dumpable_refusal(
        &steps,
        crate::layers::session::host_suid_dumpable(),
    ) {
        if let Some(cg) = &cgroup {
            let _ = cg.remove();
        }
        return Err(SpawnError::HostUnsafe(why));
    }
    if let Some(t) = trace {
        t.note("runtime", None, "plan built", "");
    }
    let (parent_sock, child_sock) = nix::sys::socket::socketpair(
        nix::sys::socket::AddressFamily::Unix,
        nix::sys::socket::SockType::SeqPacket,
        None,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
    )
    .map_err(os("socketpair"))
    .inspect_err(|_| {
        if let Some(cg) = &cgroup {
            let _ = cg.remove();
        }
    })?;

    let into_cgroup = steps.iter().find_map(|s| match s.op {
        crate::step::Op::JoinCgroup { dir, .. } => Some(dir),
        _ => None,
    });
    let (pid, in_cgroup) = match into_cgroup.and_then(clone_into_cgroup) {
        Some(pid) => (pid, true),
        // SAFETY: the child only runs the prepared chain (child.rs) and never returns into the
        // caller's code; glibc's fork keeps malloc consistent in the child even if other
        // threads held its locks.
        None => (unsafe { libc::fork() }, false),
    };
    if pid < 0 {
        if let Some(cg) = &cgroup {
            let _ = cg.remove();
        }
        return Err(SpawnError::Os {
            what: "fork",
            errno: Errno::last(),
        });
    }
    if pid == 0 {
        drop(parent_sock);
        crate::child::run(
            &steps,
            &crate::child::Ctx {
                sock: child_sock.as_raw_fd(),
                trace,
                in_cgroup,
            },
        );
    }
    if let Some(t) = trace {
        t.note("runtime", None, "forked the supervisor", "");
    }
    #[cfg(test)]
    tests::LAST_SUPERVISOR.with(|p| p.set(pid));
    drop(child_sock);
    drop(stdio);
    drop(ctty);
    let pty_master = pty.map(|(m, _slave)| m);

    let mut sb = Sandbox {
        supervisor: Pid::from_raw(pid),
        payload: None,
        payload_fd: None,
        id_maps: cfg
            .enabled(Layer::UserNs)
            .then(|| (ids.uid_map.clone(), ids.gid_map.clone())),
        sock: parent_sock,
        steps: steps
            .iter()
            .map(|s| (s.owner(), s.call.clone(), s.is_exec()))
            .collect(),
        cgroup,
        failure: None,
        pty_master,
        reaped: false,
        landlock,
        records: cfg.records_syscalls(),
        recorder: None,
        trace,
    };
    // The supervisor asks for its id maps right after unshare(CLONE_NEWUSER): answer that first,
    // then prepare while it creates the other namespaces. Without a user namespace nothing
    // comes before, so prepare now.
    let maps_first = steps
        .iter()
        .any(|s| matches!(s.op, crate::step::Op::AwaitIdMaps));
    drop(steps);
    let mut owed = (compile.is_some() || devices).then_some(AfterFork { compile, devices });
    if !maps_first {
        if let Some(work) = owed.take() {
            sb.prepare_after_fork(work)?;
        }
    }
    sb.await_exec(&ids, owed)?;
    Ok(sb)
}

/// The parent's work after the fork (plan::Plan's `compile` and `devices`).
struct AfterFork {
    compile: Option<crate::seccomp::Resolved>,
    devices: bool,
}

/// How long the payload waits for the prepared record (a test shortens it).
fn prepared_timeout() -> Duration {
    #[cfg(test)]
    if let Some(t) = tests::PREPARED_TIMEOUT.with(|t| t.get()) {
        return t;
    }
    plan::PREPARED_TIMEOUT
}

impl Sandbox {
    /// Attach the device program, compile the filter, send the prepared record. A failure is the
    /// error the same failure before the fork gave; the Sandbox it leaves behind is dropped on
    /// the way out of `spawn`, which kills and reaps the child and removes the leaf.
    fn prepare_after_fork(&mut self, work: AfterFork) -> Result<(), SpawnError> {
        if work.devices {
            if let Some(cg) = &self.cgroup {
                if let Err(e) = cg.attach_device_policy() {
                    return Err(e.into());
                }
                self.note("device program attached to the leaf");
            }
        }
        let program = match work.compile.as_ref().map(|r| r.compile()) {
            Some(Ok(bpf)) => {
                self.note("seccomp program compiled");
                Some(bpf)
            }
            Some(Err(e)) => return Err(PlanError::from(e).into()),
            None => None,
        };
        #[cfg(test)]
        if tests::SKIP_PREPARED.with(|s| s.get()) {
            return Ok(());
        }
        let insns = program.as_ref().map(|b| b.0.as_slice()).unwrap_or_default();
        match handshake::send_prepared(self.sock.as_raw_fd(), insns) {
            Ok(()) => {
                self.note("prepared record sent");
                Ok(())
            }
            // The child is gone (a setup failure before, or killed): its report or EOF follows.
            Err(Errno::EPIPE | Errno::ECONNRESET) => Ok(()),
            Err(errno) => Err(SpawnError::Os {
                what: "send(the prepared record)",
                errno,
            }),
        }
    }

    /// Answer the handshake until the payload is running (or setup failed); `owed`: the work
    /// to do once the id maps are written.
    fn await_exec(
        &mut self,
        ids: &user_ns::IdPlan,
        mut owed: Option<AfterFork>,
    ) -> Result<(), SpawnError> {
        loop {
            match handshake::recv_timeout(self.sock.as_raw_fd(), None) {
                Recv::Msg(Msg::UserNsReady) => {
                    if let Err((path, source)) = user_ns::write_maps(self.supervisor.as_raw(), ids)
                    {
                        self.kill();
                        return Err(SpawnError::IdMap { path, source });
                    }
                    handshake::send(self.sock.as_raw_fd(), Msg::Go);
                    if let Some(work) = owed.take() {
                        self.prepare_after_fork(work)?;
                    }
                }
                Recv::Msg(Msg::PayloadPid(p)) => {
                    self.payload = Some(Pid::from_raw(p));
                    self.payload_fd = pidfd_of_child(p, self.supervisor.as_raw());
                    // The payload waits in its first call after the recording filter until
                    // the recorder answers: start it now, before the exec is reported.
                    if self.records {
                        if let Some(fd) = self.payload_fd.as_ref().and_then(|f| f.try_clone().ok())
                        {
                            self.recorder = Some(Recorder::start(p, fd));
                        }
                    }
                }
                Recv::Msg(Msg::ExecOk) => {
                    self.note("the payload's execve succeeded (reported)");
                    return Ok(());
                }
                Recv::Msg(Msg::Failure { step, errno }) => {
                    let is_exec = self.steps.get(step as usize).is_some_and(|s| s.2);
                    self.failure = Some((self.describe(step, errno), is_exec));
                    return Ok(());
                }
                Recv::Msg(other) => {
                    self.kill();
                    return Err(SpawnError::Payload(format!(
                        "unexpected handshake message {other:?}"
                    )));
                }
                Recv::Closed | Recv::TimedOut => {
                    let status = self
                        .reap()
                        .map(|s| format!("{s:?}"))
                        .unwrap_or_else(|e| e.to_string());
                    return Err(SpawnError::SupervisorDied {
                        pid: self.supervisor.as_raw(),
                        status,
                    });
                }
            }
        }
    }

    fn note(&self, what: &str) {
        if let Some(t) = self.trace {
            t.note("runtime", None, what, "");
        }
    }

    fn describe(&self, step: u32, errno: i32) -> SetupFailure {
        match self.steps.get(step as usize) {
            Some((owner, call, _)) => SetupFailure {
                step: (*owner).to_string(),
                syscall: call.clone(),
                errno,
            },
            None => SetupFailure {
                step: "runtime".into(),
                syscall: format!("step #{step}"),
                errno,
            },
        }
    }

    /// The payload's pid as seen from the caller (the supervisor's until the payload exists).
    pub fn pid(&self) -> i32 {
        self.payload.unwrap_or(self.supervisor).as_raw()
    }

    /// The user namespace's id maps as written (uid_map, gid_map), when user-ns is on.
    pub fn id_maps(&self) -> Option<(&str, &str)> {
        self.id_maps.as_ref().map(|(u, g)| (u.as_str(), g.as_str()))
    }

    /// The supervisor process (outside the sandbox's pid namespace).
    pub fn supervisor_pid(&self) -> i32 {
        self.supervisor.as_raw()
    }

    /// The cgroup the payload runs in (the leaf, else the caller's outer cgroup).
    pub fn cgroup_dir(&self) -> Option<&std::path::Path> {
        self.cgroup.as_ref().map(|c| c.dir.as_path())
    }

    /// What the landlock layer enforces on this kernel (None when the layer is off).
    pub fn landlock(&self) -> Option<&LandlockEvidence> {
        self.landlock.as_ref()
    }

    /// The master side of the runtime's pty (`Payload::tty`).
    pub fn pty_master(&self) -> Option<BorrowedFd<'_>> {
        self.pty_master.as_ref().map(|f| f.as_fd())
    }

    /// Wait for the payload to end.
    pub fn wait(mut self) -> Result<Outcome, SpawnError> {
        match self.wait_inner(None)? {
            Some(o) => Ok(o),
            None => unreachable_timeout(),
        }
    }

    /// Wait at most `timeout`; `Ok(None)` if the payload is still running.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<Option<Outcome>, SpawnError> {
        self.wait_inner(Some(timeout))
    }

    fn wait_inner(&mut self, timeout: Option<Duration>) -> Result<Option<Outcome>, SpawnError> {
        if self.reaped {
            return Err(SpawnError::Payload(
                "the sandbox was already waited for".into(),
            ));
        }
        if let Some((f, is_exec)) = self.failure.clone() {
            self.reap()?;
            let cgroup = self.finish_cgroup()?;
            return Ok(Some(Outcome {
                status: ExitKind::Exited {
                    code: failure_exit_code(is_exec, f.errno),
                },
                cgroup,
                setup_failure: Some(f),
                landlock: self.landlock.clone(),
                seccomp_kill: None,
                recording: self.take_recording(),
            }));
        }
        let status = match handshake::recv_timeout(self.sock.as_raw_fd(), timeout) {
            Recv::TimedOut => return Ok(None),
            Recv::Msg(Msg::Exited(raw)) => {
                self.note("the payload exited (reported)");
                self.reap()?;
                self.note("the supervisor reaped");
                decode_status(raw)
            }
            // The supervisor died without reporting (killed): its own status stands in.
            Recv::Msg(_) | Recv::Closed => self.reap()?,
        };
        let cgroup = self.finish_cgroup()?;
        let filtered = self.steps.iter().any(|s| s.0 == "seccomp");
        Ok(Some(Outcome {
            status,
            cgroup,
            setup_failure: None,
            landlock: self.landlock.clone(),
            seccomp_kill: crate::seccomp::kill_record::for_outcome(status, self.payload, filtered),
            recording: self.take_recording(),
        }))
    }

    /// The recording, once the payload ended (None when not recording).
    fn take_recording(&mut self) -> Option<Recording> {
        if !self.records {
            return None;
        }
        Some(match self.recorder.take() {
            Some(r) => r.finish(),
            None => Recording {
                error: self.payload.is_some().then(|| {
                    "no pidfd of the payload: its calls could not be recorded".to_string()
                }),
                ..Default::default()
            },
        })
    }

    fn finish_cgroup(&mut self) -> Result<Option<crate::outcome::CgroupEvidence>, SpawnError> {
        let Some(cg) = self.cgroup.take() else {
            return Ok(None);
        };
        let ev = cg.evidence();
        self.note("the cgroup's counters read");
        cg.remove()?;
        self.note("the cgroup leaf removed");
        Ok(Some(ev))
    }

    fn reap(&mut self) -> Result<ExitKind, SpawnError> {
        let mut status = 0;
        loop {
            // SAFETY: waiting for our own child; status is a valid out pointer.
            let r = unsafe { libc::waitpid(self.supervisor.as_raw(), &mut status, 0) };
            if r == self.supervisor.as_raw() {
                self.reaped = true;
                return Ok(decode_status(status));
            }
            let e = Errno::last();
            if r < 0 && e != Errno::EINTR {
                self.reaped = true;
                return Err(SpawnError::Os {
                    what: "waitpid",
                    errno: e,
                });
            }
        }
    }

    /// Kill the whole sandbox: its cgroup when it has one, and the payload (the pid namespace's
    /// init when pid-ns is on, which takes every process in it along).
    pub fn kill(&mut self) {
        if self.reaped {
            return;
        }
        if let Some(cg) = &self.cgroup {
            let _ = cg.kill();
        }
        match &self.payload_fd {
            Some(fd) => {
                // SAFETY: pidfd_send_signal on our pidfd, no siginfo.
                unsafe {
                    libc::syscall(
                        libc::SYS_pidfd_send_signal,
                        fd.as_raw_fd(),
                        libc::SIGKILL,
                        std::ptr::null::<libc::siginfo_t>(),
                        0u32,
                    )
                };
            }
            // No pidfd (the payload was already gone, or not yet forked): the supervisor is our
            // unreaped child, so its pid cannot be reused; the payload dies with it.
            None => {
                let _ = kill(self.supervisor, Signal::SIGKILL);
            }
        }
    }
}

/// Start the supervisor in the cgroup whose directory is `dir` (clone3 with CLONE_INTO_CGROUP,
/// Linux 5.7+): a process moved into a cgroup afterwards waits for an RCU grace period, the
/// largest single step of a launch in a TCG guest. Only when this process has one thread: a raw
/// clone3 skips glibc's fork handlers, which a multi-threaded caller needs (another thread may
/// hold a malloc lock the child would then wait for forever); with one thread no lock is held
/// by anyone else. None (use fork and the join step) when not single-threaded or refused.
fn clone_into_cgroup(dir: RawFd) -> Option<libc::pid_t> {
    if !single_threaded() {
        return None;
    }
    /// struct clone_args up to `cgroup` (CLONE_ARGS_SIZE_VER2).
    #[repr(C)]
    #[derive(Default)]
    struct CloneArgs {
        flags: u64,
        pidfd: u64,
        child_tid: u64,
        parent_tid: u64,
        exit_signal: u64,
        stack: u64,
        stack_size: u64,
        tls: u64,
        set_tid: u64,
        set_tid_size: u64,
        cgroup: u64,
    }
    const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
    let mut args = CloneArgs {
        flags: CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: dir as u64,
        ..Default::default()
    };
    // SAFETY: like fork(): no stack given, so the child continues on a copy of this stack; the
    // process has one thread, so the child's copy of every lock is free; the child only runs
    // the prepared chain and never returns into the caller's code.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    (r >= 0).then_some(r as libc::pid_t)
}

/// This process has exactly one thread (/proc/self/status).
fn single_threaded() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Threads:"))
            .is_some_and(|n| n.trim() == "1")
    })
}

/// A pidfd for `pid` if it is (still) the child of `supervisor`: opened first, then the parent
/// read from /proc, then the pidfd checked not to have exited in between, so the /proc answer was
/// about the process the pidfd holds.
fn pidfd_of_child(pid: libc::pid_t, supervisor: libc::pid_t) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags.
    let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0u32) };
    if raw < 0 {
        return None;
    }
    // SAFETY: pidfd_open returned a new descriptor we own.
    let fd = unsafe { OwnedFd::from_raw_fd(raw as i32) };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let ppid: libc::pid_t = stat
        .rsplit(')')
        .next()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, no wait; a pidfd polls readable once the process exited.
    let exited = unsafe { libc::poll(&mut pfd, 1, 0) } != 0;
    (ppid == supervisor && !exited).then_some(fd)
}

fn unreachable_timeout() -> Result<Outcome, SpawnError> {
    Err(SpawnError::Payload(
        "wait without timeout returned no outcome".into(),
    ))
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if !self.reaped {
            self.kill();
            let _ = kill(self.supervisor, Signal::SIGKILL);
            let _ = self.reap();
        }
        // A leaf still held (the launch failed or was abandoned before `finish_cgroup` took it,
        // reaped or not) goes too: left behind, it would hold the name a later process of the
        // same pid asks for.
        if let Some(cg) = self.cgroup.take() {
            let _ = cg.remove();
        }
    }
}

fn decode_status(raw: i32) -> ExitKind {
    if libc::WIFSIGNALED(raw) {
        ExitKind::Signaled {
            signal: libc::WTERMSIG(raw),
            core_dumped: libc::WCOREDUMP(raw),
        }
    } else {
        ExitKind::Exited {
            code: libc::WEXITSTATUS(raw),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::cell::Cell;
    use std::sync::Mutex;

    thread_local! {
        /// The last supervisor `spawn` forked on this thread (to check it was reaped).
        pub(crate) static LAST_SUPERVISOR: Cell<libc::pid_t> = const { Cell::new(0) };
        /// The payload's wait for the prepared record, shortened.
        pub(crate) static PREPARED_TIMEOUT: Cell<Option<Duration>> = const { Cell::new(None) };
        /// The parent prepares but never sends the record (a child left waiting).
        pub(crate) static SKIP_PREPARED: Cell<bool> = const { Cell::new(false) };
    }

    /// One launch at a time: the checks below look at this process's children and leaves.
    static ONE: Mutex<()> = Mutex::new(());

    fn root() -> bool {
        if nix::unistd::geteuid().is_root() {
            return true;
        }
        eprintln!("NOT RUN: needs root (namespaces, seccomp without no-new-privs, cgroups)");
        false
    }

    /// A seccomp allowlist of its own (a path no other test compiles, so never cached here):
    /// `ioctl_values` compared values make it as long as wanted (about one instruction each).
    fn profile(dir: &std::path::Path, ioctl_values: usize) -> String {
        let args = (0..ioctl_values)
            .map(|v| format!("{{ index = 1, op = \"eq\", value = {v} }}"))
            .collect::<Vec<_>>()
            .join(", ");
        let text = format!(
            "default_action = \"errno\"\n[[rule]]\naction = \"allow\"\nnames = [\"read\", \"write\", \"close\", \"exit\", \"exit_group\", \"execve\", \"brk\", \"mmap\", \"munmap\", \"mprotect\", \"arch_prctl\", \"rt_sigaction\", \"rt_sigprocmask\", \"prctl\", \"close_range\", \"getpid\", \"fstat\", \"newfstatat\", \"openat\", \"access\", \"pread64\", \"set_tid_address\", \"set_robust_list\", \"rseq\", \"prlimit64\", \"getrandom\", \"uname\", \"chdir\", \"getcwd\", \"getppid\", \"poll\", \"fcntl\", \"dup2\", \"lseek\", \"getdents64\", \"statx\", \"readlink\", \"futex\", \"sigaltstack\", \"getuid\", \"geteuid\", \"getgid\", \"getegid\"]\n[[rule]]\naction = \"allow\"\nnames = [\"ioctl\"]\nargs = [{args}]\n"
        );
        let path = dir.join(format!("overlap-{ioctl_values}.toml"));
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    }

    fn config(layers: &[Layer], seccomp: Option<&str>) -> SandboxConfig {
        let mut cfg = SandboxConfig::builtin("none").unwrap();
        for l in layers {
            cfg.set_enabled(*l, true);
        }
        if let Some(p) = seccomp {
            cfg.set_enabled(Layer::Seccomp, true);
            cfg.set_seccomp_profile(p).unwrap();
        }
        cfg
    }

    /// A cgroup parent of the test's own, so that a leftover leaf is seen; removed (with any
    /// empty leaf) when the guard goes, also when an assertion failed first.
    struct OwnParent(Vec<PathBuf>);

    impl Drop for OwnParent {
        fn drop(&mut self) {
            for dir in &self.0 {
                if let Ok(entries) = std::fs::read_dir(dir) {
                    for e in entries.flatten() {
                        if e.file_type().is_ok_and(|t| t.is_dir()) {
                            let _ = std::fs::remove_dir(e.path());
                        }
                    }
                }
                let _ = std::fs::remove_dir(dir);
            }
        }
    }

    /// The parent the device policy's leaf goes under: cgroup v2 at /sys/fs/cgroup, or the
    /// hybrid host's /sys/fs/cgroup/unified (both candidates are watched).
    fn own_cgroup_parent(cfg: &mut SandboxConfig, name: &str) -> OwnParent {
        let dir = format!("breakout-test-{name}-{}", std::process::id());
        cfg.cgroup.parent = Path::new("/sys/fs/cgroup").join(&dir);
        OwnParent(vec![
            cfg.cgroup.parent.clone(),
            Path::new("/sys/fs/cgroup/unified").join(&dir),
        ])
    }

    /// The leaves left under the parent.
    fn leftover_leaves(parent: &OwnParent) -> Vec<String> {
        let mut left = Vec::new();
        for dir in &parent.0 {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    left.push(e.path().display().to_string());
                }
            }
        }
        left
    }

    /// The supervisor of the last launch was reaped: waitpid says it is no child of ours.
    fn supervisor_reaped() -> bool {
        let pid = LAST_SUPERVISOR.with(|p| p.replace(0));
        assert!(pid > 0, "no supervisor was forked");
        let mut status = 0;
        // SAFETY: waitpid with a valid out pointer, not blocking.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        r < 0 && Errno::last() == Errno::ECHILD
    }

    use std::path::Path;

    /// libseccomp's program longer than the kernel takes: refused after the fork, with the
    /// message it had before the fork; the child killed and reaped, the leaf removed.
    #[test]
    fn a_policy_refused_after_the_fork_ends_the_launch_cleanly() {
        let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
        if !root() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let spec = profile(dir.path(), 6000);
        let mut cfg = config(&[Layer::MountNs, Layer::FsHardening], Some(&spec));
        let parent = own_cgroup_parent(&mut cfg, "compile");
        // What the compile said when it ran before the fork, as plan::build reported it.
        let before = SpawnError::from(PlanError::from(
            cfg.seccomp_profile()
                .unwrap()
                .resolve(&crate::seccomp::ResolveContext::native(
                    cfg.effective_caps(),
                ))
                .compile()
                .unwrap_err(),
        ))
        .to_string();
        let e = match spawn(&cfg, Payload::new(["/bin/true"])) {
            Err(e) => e,
            Ok(_) => panic!("the oversized policy was accepted"),
        };
        assert!(
            matches!(e, SpawnError::Plan(PlanError::Seccomp(_))),
            "{e:?}"
        );
        assert_eq!(e.to_string(), before);
        assert!(
            e.to_string().contains("the kernel takes at most 4096"),
            "{e}"
        );
        assert!(supervisor_reaped(), "the supervisor is still a child");
        assert_eq!(leftover_leaves(&parent), Vec::<String>::new());
    }

    /// The device program refused after the fork (a test double: the kernel's refusals cannot
    /// be provoked here): the same error as before the fork, nothing left behind.
    #[test]
    fn a_device_program_refused_after_the_fork_ends_the_launch_cleanly() {
        let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
        if !root() {
            return;
        }
        let mut cfg = config(&[Layer::MountNs, Layer::FsHardening], None);
        let parent = own_cgroup_parent(&mut cfg, "devices");
        crate::layers::cgroup_limits::tests::FAIL_DEVICE_POLICY.with(|f| f.set(true));
        let r = spawn(&cfg, Payload::new(["/bin/true"]));
        crate::layers::cgroup_limits::tests::FAIL_DEVICE_POLICY.with(|f| f.set(false));
        let e = match r {
            Err(e) => e,
            Ok(_) => panic!("the refused device program was not reported"),
        };
        let text = e.to_string();
        assert!(
            text.starts_with("layer fs-hardening: attaching the device policy to ")
                && text.contains("bpf(BPF_PROG_ATTACH, BPF_CGROUP_DEVICE): EPERM"),
            "{text}"
        );
        assert!(supervisor_reaped(), "the supervisor is still a child");
        assert_eq!(leftover_leaves(&parent), Vec::<String>::new());
    }

    /// A payload that never gets the record fails its setup at the wait (no hang), reported
    /// like every other step.
    #[test]
    fn a_child_left_without_the_record_fails_its_setup() {
        let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
        if !root() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let spec = profile(dir.path(), 1);
        let cfg = config(&[Layer::UserNs, Layer::PidNs], Some(&spec));
        SKIP_PREPARED.with(|s| s.set(true));
        PREPARED_TIMEOUT.with(|t| t.set(Some(Duration::from_millis(300))));
        let started = std::time::Instant::now();
        let r = spawn(&cfg, Payload::new(["/bin/true"]));
        SKIP_PREPARED.with(|s| s.set(false));
        PREPARED_TIMEOUT.with(|t| t.set(None));
        let out = r.unwrap().wait().unwrap();
        let f = out.setup_failure.expect("a setup failure");
        assert_eq!(f.step, "runtime");
        assert!(
            f.syscall
                .starts_with("recv(the parent's record after the fork"),
            "{f:?}"
        );
        assert_eq!(f.errno, libc::ETIMEDOUT);
        assert_eq!(out.status, ExitKind::Exited { code: 125 });
        assert!(started.elapsed() < Duration::from_secs(30));
        assert!(supervisor_reaped(), "the supervisor is still a child");
    }

    /// The usual path: compiled after the fork, received, loaded; and the next launch of the
    /// same policy takes the cached program before the fork.
    #[test]
    fn the_program_compiled_after_the_fork_is_loaded() {
        let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
        if !root() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let spec = profile(dir.path(), 2);
        let mut cfg = config(
            &[Layer::UserNs, Layer::MountNs, Layer::FsHardening],
            Some(&spec),
        );
        let parent = own_cgroup_parent(&mut cfg, "loaded");
        for _ in 0..2 {
            let out = spawn(&cfg, Payload::new(["/bin/true"]))
                .unwrap()
                .wait()
                .unwrap();
            assert_eq!(out.setup_failure, None);
            assert_eq!(out.status, ExitKind::Exited { code: 0 });
            assert!(supervisor_reaped());
        }
        // The filter is in force in the payload (grep exits 1 on no match, 2 on an error).
        let out = spawn(
            &cfg,
            Payload::new([
                "/bin/grep",
                "-q",
                "^Seccomp:[[:space:]]*2",
                "/proc/self/status",
            ]),
        )
        .unwrap()
        .wait()
        .unwrap();
        assert_eq!(out.status, ExitKind::Exited { code: 0 }, "{out:?}");
        assert_eq!(leftover_leaves(&parent), Vec::<String>::new());
    }
}
