//! The isolation layers. The same kebab-case names appear in profiles, on the command line and in
//! every report (see design.md, "The isolation layers").

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// One isolation layer of the sandbox. Each can be switched on and off on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layer {
    UserNs,
    PidNs,
    MountNs,
    NetNs,
    IpcNs,
    UtsNs,
    CgroupNs,
    Uid,
    Caps,
    NoNewPrivs,
    Seccomp,
    CgroupLimits,
    Rlimits,
    FsHardening,
    FdHygiene,
    NewSession,
    Landlock,
}

impl Layer {
    /// Every layer, in the order the child applies them.
    pub const ALL: [Layer; 17] = [
        Layer::UserNs,
        Layer::PidNs,
        Layer::MountNs,
        Layer::NetNs,
        Layer::IpcNs,
        Layer::UtsNs,
        Layer::CgroupNs,
        Layer::Uid,
        Layer::Caps,
        Layer::NoNewPrivs,
        Layer::Seccomp,
        Layer::CgroupLimits,
        Layer::Rlimits,
        Layer::FsHardening,
        Layer::FdHygiene,
        Layer::NewSession,
        Layer::Landlock,
    ];

    /// The kebab-case name (profiles, command line, reports).
    pub fn name(self) -> &'static str {
        self.facts().name
    }

    /// One line: how the layer stops probes.
    pub fn summary(self) -> &'static str {
        self.facts().summary
    }

    /// A paragraph: what the layer does in the kernel and why that stops attacks.
    pub fn description(self) -> &'static str {
        self.facts().description
    }

    /// The table of layer facts: one entry per layer, used by the runtime's checks, `explain`,
    /// `list layers` (and through it the README), and attribution. The match is exhaustive, so a
    /// new layer does not compile until it has its entry.
    pub fn facts(self) -> &'static LayerFacts {
        match self {
            Layer::UserNs => &LayerFacts {
                name: "user-ns",
                summary: "own user namespace: inside-root has no capabilities over anything outside",
                description: "Starts the payload in a new user namespace (CLONE_NEWUSER) with a uid/gid map. \
The kernel checks a capability against the user namespace that owns the object being acted on (a \
process, a mount, a network or UTS namespace, a keyring), so root inside the sandbox holds its \
capabilities only over objects its own namespace owns: ptrace, signals to other users' processes, \
setns into outside namespaces, sethostname and mounts that affect the outside all fail with EPERM. \
The price is kernel surface: inside-root may create further namespaces and mount some filesystems, \
which is why strict profiles pair it with seccomp and caps.",
                requires: &[],
                requirement_reason: "",
            },
            Layer::PidNs => &LayerFacts {
                name: "pid-ns",
                summary: "own PID namespace: outside processes cannot be named, signalled or traced",
                description: "Starts the payload in a new PID namespace (CLONE_NEWPID), where it is pid 1 of a \
tree of its own. Processes outside that tree have no pid inside it, so kill(2), ptrace(2), \
pidfd_open(2), setns via /proc/<pid>/ns and /proc/<pid>/{root,environ,mem} of outside processes \
fail with ESRCH or ENOENT: the payload cannot even name its target. When the mount namespace is on \
too, a fresh /proc shows only the sandbox's processes; when the namespace's init exits, the kernel \
kills everything left in it.",
                requires: &[],
                requirement_reason: "",
            },
            Layer::MountNs => &LayerFacts {
                name: "mount-ns",
                summary: "own mount namespace and pivot_root into a sandbox root: outside paths unreachable",
                description: "Starts the payload in a new mount namespace and pivot_roots into a sandbox root \
assembled from read-only binds of the system directories, then detaches the old root. Files \
outside that root (secret files, unix socket paths, the outside's world under /srv/breakout) are not \
reachable by any path, and mounts made inside do not propagate out. pivot_root, not chroot: \
chroot only changes one process's path lookup root and is escaped by chrooting again into a \
subdirectory and walking `..` (the chroot-escape probe), so the runtime never falls back to it.",
                requires: &[],
                requirement_reason: "",
            },
            Layer::NetNs => &LayerFacts {
                name: "net-ns",
                summary: "own network namespace with only loopback: outside listeners and abstract sockets unreachable",
                description: "Starts the payload in a new network namespace with only a loopback interface, \
brought up. Every socket lives in that namespace: TCP services on the outside's 127.0.0.1, ports \
the payload binds, and abstract unix sockets (their names are scoped per network namespace) are \
separate from the outside's, and raw or packet sockets see no outside traffic.",
                requires: &[],
                requirement_reason: "",
            },
            Layer::IpcNs => &LayerFacts {
                name: "ipc-ns",
                summary: "own IPC namespace: outside SysV shm, message queues, semaphores invisible",
                description: "Starts the payload in a new IPC namespace. System V shared memory segments, \
message queues and semaphore sets (and POSIX message queues) are per namespace, so a segment the \
outside created under a known key does not exist inside: shmget/msgget with that key fail with \
ENOENT.",
                requires: &[],
                requirement_reason: "",
            },
            Layer::UtsNs => &LayerFacts {
                name: "uts-ns",
                summary: "own UTS namespace: hostname changes stay inside",
                description: "Starts the payload in a new UTS namespace, a private copy of the host name and \
NIS domain name: sethostname and setdomainname succeed inside but the outside's `uname -n` does \
not change.",
                requires: &[],
                requirement_reason: "",
            },
            Layer::CgroupNs => &LayerFacts {
                name: "cgroup-ns",
                summary: "own cgroup namespace: cgroup paths and parent groups hidden",
                description: "Starts the payload in a new cgroup namespace rooted at its own cgroup: \
/proc/self/cgroup reads `0::/`, and a cgroup filesystem mounted inside shows only the sandbox's \
subtree. The outside's cgroup paths (which can carry names and secrets) and the parent groups one \
could try to move a process into are out of sight.",
                requires: &[],
                requirement_reason: "",
            },
            Layer::Uid => &LayerFacts {
                name: "uid",
                summary: "runs as unprivileged uid/gid 1000: no capabilities, same-uid rules apply",
                description: "Runs the payload as the unprivileged uid and gid 1000 (seen from outside), with \
supplementary groups dropped and setgroups denied. Leaving uid 0 clears the permitted and effective \
capability sets, and the kernel's ordinary permission rules then apply: no signals to or ptrace of \
root's processes, no reading root's 0400 files, no /proc/<pid>/environ or /proc/<pid>/root of other \
users. It does not protect other processes of the same uid.",
                requires: &[],
                requirement_reason: "",
            },
            Layer::Caps => &LayerFacts {
                name: "caps",
                summary: "capability sets cut to the kept list: privileged operations fail with EPERM",
                description: "Cuts the bounding, permitted, effective, inheritable and ambient capability sets \
to the profile's kept list. Without CAP_SYS_ADMIN root cannot mount, setns or use most of the \
namespace and BPF interfaces; without CAP_SYS_PTRACE it cannot trace processes it does not own; \
without CAP_KILL it cannot signal them; without CAP_NET_RAW no raw sockets; without CAP_SYS_MODULE no \
module loading; without CAP_DAC_READ_SEARCH no open_by_handle_at; without CAP_MKNOD no device nodes. \
With empty inheritable and ambient sets and a cut bounding set, exec of a file carrying file \
capabilities gains nothing beyond the kept list. The report's drill-down names the single capability that, kept, lets \
a probe through, e.g. caps(CAP_SYS_PTRACE).",
                requires: &[],
                requirement_reason: "",
            },
            Layer::NoNewPrivs => &LayerFacts {
                name: "no-new-privs",
                summary: "no_new_privs: exec cannot gain privileges (setuid bits, file capabilities ignored)",
                description: "Sets PR_SET_NO_NEW_PRIVS: from then on execve cannot grant privileges, so \
setuid and setgid bits and file capabilities are ignored (a setuid-root helper runs with the \
caller's ids) and LSM transitions on exec are refused. It is inherited by every descendant and \
cannot be cleared; it is also what allows an unprivileged process to install a seccomp filter.",
                requires: &[],
                requirement_reason: "",
            },
            Layer::Seccomp => &LayerFacts {
                name: "seccomp",
                summary: "seccomp filter: denied system calls fail with an errno or SIGSYS",
                description: "Installs a seccomp-BPF filter (built with libseccomp) that checks every system \
call number, and some arguments, before the kernel runs it: a denied call fails with the profile's \
errno, or the process is killed with SIGSYS. Profiles are our own allowlists or Docker/OCI JSON \
profiles loaded as they are. Filters only stack, each new one can only restrict further, so the \
payload cannot loosen its own. The report's drill-down names the syscall the filter denied on the \
probe's path, e.g. seccomp(keyctl).",
                requires: &[],
                requirement_reason: "",
            },
            Layer::CgroupLimits => &LayerFacts {
                name: "cgroup-limits",
                summary: "cgroup v2 leaf with memory, pids and cpu limits",
                description: "Places the sandbox in a cgroup v2 leaf of its own with memory.max (and \
memory.swap.max), pids.max and cpu.max. Past pids.max fork fails with EAGAIN; past memory.max the \
kernel reclaims, then the OOM killer acts inside the group only; cpu.max throttles. The counters in \
memory.events, pids.events and cpu.stat are the evidence; the leaf is killed with cgroup.kill and \
removed afterwards.",
                requires: &[],
                requirement_reason: "",
            },
            Layer::Rlimits => &LayerFacts {
                name: "rlimits",
                summary: "resource limits (processes, open files, ...) per process",
                description: "Sets resource limits with setrlimit before exec: RLIMIT_NPROC (processes per real \
uid), RLIMIT_NOFILE (open descriptors), RLIMIT_CORE and friends. They are per process or per uid, \
cruder than cgroup limits: RLIMIT_NPROC counts every process of the uid, and the kernel does not \
enforce it for root of the initial user namespace or a holder of CAP_SYS_RESOURCE or CAP_SYS_ADMIN.",
                requires: &[],
                requirement_reason: "",
            },
            Layer::FsHardening => &LayerFacts {
                name: "fs-hardening",
                summary: "read-only root, masked and read-only /proc and /sys paths, nosuid, nodev",
                description: "Hardens the filesystem view: the sandbox root is read-only; /proc and /sys are \
mounted nosuid, nodev, noexec; sensitive kernel files are masked (/proc/kcore, /proc/keys, \
/proc/timer_list, /proc/sched_debug, /sys/firmware, ...) and /proc/sys, /proc/sysrq-trigger, \
/proc/bus, /proc/fs, /proc/irq are remounted read-only, so writes to core_pattern or sysrq-trigger \
fail with EROFS; other mounts get nosuid and nodev, so planted setuid binaries and device nodes do \
nothing.",
                requires: &[Layer::MountNs],
                requirement_reason: "without a private mount namespace its masks and read-only remounts would change the host's mounts",
            },
            Layer::FdHygiene => &LayerFacts {
                name: "fd-hygiene",
                summary: "only stdin, stdout, stderr reach the payload; working directory checked",
                description: "Closes every descriptor except 0, 1 and 2 before exec (close_range) and checks \
the working directory lies inside the sandbox root. A directory descriptor leaked from the launcher \
is a way out of any root: openat(fd, \"..\") or fchdir(fd) walks from it to the outside's files \
(CVE-2024-21626 in runc); a leaked socket or file hands over whatever it points to.",
                requires: &[],
                requirement_reason: "",
            },
            Layer::NewSession => &LayerFacts {
                name: "new-session",
                summary: "new session: no controlling terminal to inject keystrokes into",
                description: "Calls setsid() so the payload runs in a new session without a controlling \
terminal. Without it, a payload sharing the outside's terminal can push bytes into that terminal's \
input queue with the TIOCSTI ioctl, and the outside's shell reads them as typed commands \
(CVE-2017-5226 in bubblewrap); terminal job-control signals stop reaching across too.",
                requires: &[],
                requirement_reason: "",
            },
            Layer::Landlock => &LayerFacts {
                name: "landlock",
                summary: "Landlock ruleset: files outside the sandbox's binds, /tmp and work directory refused (EACCES); TCP (ABI 4) and abstract sockets and signals (ABI 6) where the kernel has them",
                description: "Enforces a Landlock ruleset on the payload (landlock_create_ruleset, \
landlock_add_rule, landlock_restrict_self), an access control that any process may put on itself \
and that it and its descendants can never lift. Filesystem: read and execute beneath the \
sandbox's read-only binds (/usr /bin /sbin /lib /lib64 /etc), read and write beneath its /tmp and \
work directory, read and write without ioctl on /dev/null, zero, full, random and urandom, listing \
(no file opened) beneath /dev, read \
only beneath /proc (a process's view of itself; writes to /proc/sys and sysrq-trigger refused), nothing \
else: opening, creating, renaming or executing any other file fails with EACCES, by whatever road \
the path is reached (a leaked directory descriptor's `..`, /proc/<pid>/root, io_uring, \
open_by_handle_at), because the check walks the file's real place in the mount tree. A Landlock \
domain may not mount or pivot_root either, nor ptrace processes outside it (so no \
/proc/<pid>/mem, environ, root or ns of them). Where the kernel's ABI has them: TCP bind and connect \
refused on every port (ABI 4, Linux 6.7), device ioctls on files opened later refused (ABI 5), \
connecting to abstract unix sockets and signalling processes outside the domain refused (ABI 6, \
Linux 6.12). Debian 12's 6.1 has ABI 2 (filesystem only: the layer is partially enforced, and every \
result and `breakout sandbox` say so); Debian 13's 6.12 has ABI 6. What it cannot stop: chroot \
(Landlock does not restrict it; the rules still hold after it, being attached to the real file \
tree), descriptors opened before the ruleset (an inherited file, socket or directory descriptor \
keeps the access it was opened with: fd-hygiene's job), UDP and raw or packet sockets, pathname \
unix sockets before ABI 9 (connect(2) to a socket file is not a file open), SysV IPC, the \
kernel-wide calls that touch no file (sethostname, clock_settime, keyctl, bpf, syslog), and anything in the kernel's own attack surface. The layer asks for \
ABI 6's rights without no-new-privs (it runs while the payload still holds CAP_SYS_ADMIN in its \
namespace), so it never switches on the no-new-privs layer behind your back. On a kernel without \
Landlock a launch with the layer on fails by name before anything runs.",
                requires: &[],
                requirement_reason: "",
            },
        }
    }
}

/// What the project knows about one layer.
#[derive(Debug)]
pub struct LayerFacts {
    /// The kebab-case name of profiles, the command line and every report.
    pub name: &'static str,
    /// One line: how it stops probes.
    pub summary: &'static str,
    /// A paragraph: what it does in the kernel and why that stops attacks.
    pub description: &'static str,
    /// The layers that must also be on for it to work.
    pub requires: &'static [Layer],
    /// Why it needs them (for error messages); empty when it needs none.
    pub requirement_reason: &'static str,
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The layers that must also be on for `layer` to work. Empty for all but one: every layer was
/// built to work alone.
///
/// - `fs-hardening` needs `mount-ns`: masking /proc paths and remounting read-only outside a
///   private mount namespace would change the host's own mounts.
pub fn requires(layer: Layer) -> &'static [Layer] {
    layer.facts().requires
}

/// Why `layer` needs `needs` (for error messages).
pub fn requirement_reason(layer: Layer, needs: Layer) -> &'static str {
    let facts = layer.facts();
    if facts.requires.contains(&needs) && !facts.requirement_reason.is_empty() {
        facts.requirement_reason
    } else {
        "it depends on it"
    }
}

/// An unknown layer name, with the list of the known ones so the user can fix the typo.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown layer `{0}` (known layers: {known})", known = Layer::ALL.map(Layer::name).join(", "))]
pub struct UnknownLayer(pub String);

impl FromStr for Layer {
    type Err = UnknownLayer;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Layer::ALL
            .iter()
            .copied()
            .find(|l| l.name() == s)
            .ok_or_else(|| UnknownLayer(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for layer in Layer::ALL {
            assert_eq!(layer.name().parse::<Layer>(), Ok(layer));
            let json = serde_json::to_string(&layer).unwrap();
            assert_eq!(json, format!("\"{}\"", layer.name()));
        }
        assert!("pid_ns".parse::<Layer>().is_err());
    }

    #[test]
    fn the_table_is_complete_and_names_are_unique() {
        let names: std::collections::BTreeSet<&str> = Layer::ALL.map(Layer::name).into();
        assert_eq!(names.len(), Layer::ALL.len());
        for layer in Layer::ALL {
            let facts = layer.facts();
            assert!(
                !facts.summary.is_empty() && !facts.description.is_empty(),
                "{layer}"
            );
            assert_eq!(
                facts.requires.is_empty(),
                facts.requirement_reason.is_empty(),
                "{layer}"
            );
        }
        let message = "x".parse::<Layer>().unwrap_err().to_string();
        for layer in Layer::ALL {
            assert!(message.contains(layer.name()), "{message}");
        }
    }
}
