//! The child's setup as data: each step is one prepared syscall (all paths and buffers built in
//! the parent before fork) with the layer it belongs to and a printable form for errors. The
//! child only walks the list (see child.rs); tests can read the list without running it.

use crate::layer::Layer;
use crate::seccomp::Bpf;
use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;
use std::ffi::{c_char, CString};
use std::os::fd::RawFd;

/// mount_setattr(2) attributes (<linux/mount.h>).
pub(crate) const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub(crate) const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub(crate) const MOUNT_ATTR_NODEV: u64 = 0x4;

/// One prepared operation. `run` performs it in the child.
pub(crate) enum Op {
    /// Reset signal mask and dispositions (the caller may block or ignore signals, e.g. Rust
    /// ignores SIGPIPE; an exec'd payload must not inherit that).
    ResetSignals,
    Dup2 {
        from: RawFd,
        to: RawFd,
    },
    Setsid,
    /// ioctl(fd, TIOCSCTTY, 0): make `fd` the controlling terminal of this session.
    SetControllingTty {
        fd: RawFd,
    },
    /// PR_SET_PDEATHSIG(SIGKILL), then check the parent did not die before it took effect.
    DieWithParent {
        parent: libc::pid_t,
    },
    NotDumpable,
    /// Close every close-on-exec descriptor from 3 up but `keep` and the socket to the parent:
    /// the runtime's own (its pipes, files, sockets) never reach the processes that follow,
    /// while what the caller left inheritable stays for the payload (fd-hygiene's business).
    CloseRuntimeFds {
        keep: Vec<RawFd>,
    },
    /// PR_SET_DUMPABLE 1: after a uid change the kernel makes /proc/self root-owned, and the
    /// rootless self-mapping must write /proc/self/uid_map as the new uid.
    Dumpable,
    /// Joining the sandbox's cgroup: write "0" to its cgroup.procs (`procs`), unless the parent
    /// started the supervisor in it already (clone3 with CLONE_INTO_CGROUP and the cgroup's
    /// directory `dir`; spawn.rs).
    JoinCgroup {
        procs: RawFd,
        dir: RawFd,
    },
    /// open(path, O_WRONLY) + write: the rootless self-mapping of ids.
    WriteFile {
        path: CString,
        data: Vec<u8>,
    },
    SetGroupsEmpty,
    SetResGid(u32),
    SetResUid(u32),
    Unshare(CloneFlags),
    /// Tell the parent the user namespace exists and wait until it has written the id maps.
    AwaitIdMaps,
    LoopbackUp,
    SetHostname(CString),
    /// The point where the supervisor forks the payload process.
    Fork,
    Mount {
        src: Option<CString>,
        target: CString,
        fstype: Option<CString>,
        flags: MsFlags,
        data: Option<CString>,
    },
    /// A bind mount from a descriptor: `src` is opened once (O_PATH, no symbolic link in any
    /// component), checked to be still of the file type the parent saw (`kind`, an S_IFMT
    /// value), and /proc/self/fd/N is mounted: what is bound is what was checked, even if the
    /// path is swapped for a symlink meanwhile. Opened in the child because a descriptor from
    /// the parent's mount namespace cannot be a bind source in a new one.
    BindFrom {
        src: CString,
        kind: libc::mode_t,
        target: CString,
        flags: MsFlags,
        /// The target is a directory inside a configured root: opened the same way (see
        /// `Op::MountOnto`).
        pin_target: bool,
    },
    /// mount() onto a directory opened first without following a symbolic link in any
    /// component, through /proc/self/fd/N: a mount point inside a configured root that someone
    /// swaps for a symlink fails the setup instead of taking the mount elsewhere (the
    /// CVE-2021-30465 class).
    MountOnto {
        src: Option<CString>,
        target: CString,
        fstype: Option<CString>,
        flags: MsFlags,
        data: Option<CString>,
    },
    /// Every mount below `path` (not `path` itself, already remounted with its locked flags)
    /// gets `attrs` (MOUNT_ATTR_RDONLY, _NOSUID, _NODEV): a remount changes only the top mount
    /// of a recursive bind, and a filesystem mounted under a bound directory would stay
    /// writable. mount_setattr(AT_RECURSIVE) since Linux 5.12, else one remount per submount.
    ReadOnlyBelow {
        path: CString,
        attrs: u64,
    },
    Mkdir {
        path: CString,
        mode: u32,
    },
    CreateFile {
        path: CString,
    },
    Symlink {
        target: CString,
        link: CString,
    },
    Chdir(CString),
    /// pivot_root(".", ".") in the new root: the old root ends up stacked on top, unmounted next.
    PivotRoot,
    Umount {
        target: CString,
        flags: MntFlags,
    },
    /// Hide a path: /dev/null over a file, an empty read-only tmpfs over a directory; absent
    /// paths are skipped (not every kernel has every /proc file).
    MaskPath {
        path: CString,
    },
    /// Bind a path over itself read-only (absent paths are skipped).
    ReadOnlyPath {
        path: CString,
        locked: MsFlags,
    },
    SetRlimit {
        resource: nix::sys::resource::Resource,
        value: u64,
    },
    NoNewPrivs,
    /// Build and enforce the Landlock ruleset (layers/landlock.rs).
    Landlock(Box<crate::layers::landlock::Rules>),
    /// Wait for the one record the parent sends after the fork, once the work it does while the
    /// child sets up is done (spawn.rs): fs-hardening's device program attached to the leaf, and
    /// the seccomp program compiled when `program` (the record then carries it; the payload
    /// keeps it for `Seccomp(None)`). No record within `timeout_ms`, or EOF, fails the setup.
    AwaitPrepared {
        program: bool,
        timeout_ms: u32,
    },
    /// Load a seccomp program: the one given, or with None the one `AwaitPrepared` received.
    Seccomp(Option<Bpf>),
    /// The recording filter (`breakout learn`), installed with a new listener that the
    /// runtime's recorder takes from this process (seccomp/record.rs).
    SeccompRecord(Bpf),
    /// The last step before execve when recording: the marker call that separates the
    /// runtime's own calls from the command's.
    RecordMarker,
    DropBounding(Vec<caps::Capability>),
    /// One capset: effective = permitted = `eff_prm` (a bit mask), inheritable empty; then the
    /// ambient set cleared.
    SetCaps {
        eff_prm: u64,
    },
    /// The drops took effect: getresuid, getresgid are all `uid`/`gid` and there is no
    /// supplementary group (a seccomp rule can turn setresuid into a silent no-op).
    VerifyIds {
        uid: u32,
        gid: u32,
    },
    /// Effective = permitted = `eff_prm`, inheritable and ambient empty, bounding = `bounding`
    /// (masks), read back with capget, PR_CAPBSET_READ and PR_CAP_AMBIENT_IS_SET.
    VerifyCaps {
        eff_prm: u64,
        bounding: u64,
    },
    /// PR_GET_NO_NEW_PRIVS answers 1.
    VerifyNoNewPrivs,
    /// Close every descriptor from 3 up except `keep` (the error pipe, close-on-exec).
    CloseFrom {
        keep: RawFd,
    },
    /// getcwd must succeed: a working directory outside the root would be an escape hatch.
    CheckCwd,
    Exec(Exec),
}

/// A prepared execve: candidate paths (PATH search done as a list), argv and envp. The pointer
/// arrays point into `argv` and `envp`, which this struct owns.
pub struct Exec {
    pub(crate) candidates: Vec<CString>,
    pub(crate) argv: Vec<CString>,
    pub(crate) envp: Vec<CString>,
    pub(crate) argv_ptrs: Vec<*const c_char>,
    pub(crate) envp_ptrs: Vec<*const c_char>,
}

impl Exec {
    /// The paths execve will try, in order.
    pub fn candidates(&self) -> &[CString] {
        &self.candidates
    }

    /// The payload's environment.
    pub fn env(&self) -> &[CString] {
        &self.envp
    }

    pub(crate) fn new(candidates: Vec<CString>, argv: Vec<CString>, envp: Vec<CString>) -> Self {
        let mut argv_ptrs: Vec<*const c_char> = argv.iter().map(|a| a.as_ptr()).collect();
        argv_ptrs.push(std::ptr::null());
        let mut envp_ptrs: Vec<*const c_char> = envp.iter().map(|a| a.as_ptr()).collect();
        envp_ptrs.push(std::ptr::null());
        Exec {
            candidates,
            argv,
            envp,
            argv_ptrs,
            envp_ptrs,
        }
    }
}

/// One step of the chain.
pub struct Step {
    /// The layer this step implements; `None` for the runtime's own plumbing.
    pub layer: Option<Layer>,
    /// The syscall with its key arguments, as printed in errors: `pivot_root(".", ".")`.
    pub call: String,
    pub(crate) op: Op,
}

impl Step {
    pub(crate) fn new(layer: Option<Layer>, call: impl Into<String>, op: Op) -> Self {
        Step {
            layer,
            call: call.into(),
            op,
        }
    }

    /// "mount-ns" or "runtime".
    pub fn owner(&self) -> &'static str {
        self.layer.map(Layer::name).unwrap_or("runtime")
    }

    pub(crate) fn is_fork(&self) -> bool {
        matches!(self.op, Op::Fork)
    }

    pub(crate) fn is_exec(&self) -> bool {
        matches!(self.op, Op::Exec(_))
    }
}

/// The exit code of a sandbox whose setup failed at `step` with `errno`: 127 when the payload
/// was not found, 126 when it could not be executed, 125 for every other runtime failure.
pub fn failure_exit_code(step_is_exec: bool, errno: i32) -> i32 {
    match (step_is_exec, Errno::from_raw(errno)) {
        (true, Errno::ENOENT | Errno::ENOTDIR) => 127,
        (true, _) => 126,
        (false, _) => 125,
    }
}

pub(crate) fn cstr(s: impl Into<Vec<u8>>) -> CString {
    // Paths and names here come from configs the parent validated; an interior NUL is reported
    // by the caller's own checks before this is reached, so replace rather than panic.
    CString::new(s).unwrap_or_else(|e| {
        let mut v = e.into_vec();
        v.retain(|b| *b != 0);
        CString::new(v).unwrap_or_default()
    })
}
