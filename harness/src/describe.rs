//! The text that describes probes and layers: each layer's summary and description, the probes'
//! metadata, and the explanation `breakout explain` prints (what a probe does, why it works on a
//! bare Linux process, how the outside oracle proves an escape, which layers stop it and how; for
//! a layer, what it does and which probes it stops; with results, what a real run measured).

use crate::model::RunReport;
use crate::report::cell::cell_text;
use breakout_attacks::{Layer, ProbeMeta};
use std::fmt::Write;

/// Every probe's metadata, in registry order.
pub fn probe_metas() -> Vec<&'static ProbeMeta> {
    breakout_attacks::all_probes()
        .into_iter()
        .map(|p| p.meta())
        .collect()
}

/// One probe's metadata.
pub fn probe_meta(id: &str) -> Option<&'static ProbeMeta> {
    breakout_attacks::probe(id).map(|p| p.meta())
}

/// One line per layer: how it stops probes.
pub fn layer_summary(layer: Layer) -> &'static str {
    match layer {
        Layer::UserNs => "own user namespace: inside-root has no capabilities over anything outside",
        Layer::PidNs => "own PID namespace: outside processes cannot be named, signalled or traced",
        Layer::MountNs => "own mount namespace and pivot_root into a sandbox root: outside paths unreachable",
        Layer::NetNs => "own network namespace with only loopback: outside listeners and abstract sockets unreachable",
        Layer::IpcNs => "own IPC namespace: outside SysV shm, message queues, semaphores invisible",
        Layer::UtsNs => "own UTS namespace: hostname changes stay inside",
        Layer::CgroupNs => "own cgroup namespace: cgroup paths and parent groups hidden",
        Layer::Uid => "runs as unprivileged uid/gid 1000: no capabilities, same-uid rules apply",
        Layer::Caps => "capability sets cut to the kept list: privileged operations fail with EPERM",
        Layer::NoNewPrivs => "no_new_privs: exec cannot gain privileges (setuid bits, file capabilities ignored)",
        Layer::Seccomp => "seccomp filter: denied system calls fail with an errno or SIGSYS",
        Layer::CgroupLimits => "cgroup v2 leaf with memory, pids and cpu limits",
        Layer::Rlimits => "resource limits (processes, open files, ...) per process",
        Layer::FsHardening => "read-only root, masked and read-only /proc and /sys paths, nosuid, nodev",
        Layer::FdHygiene => "only stdin, stdout, stderr reach the payload; working directory checked",
        Layer::NewSession => "new session: no controlling terminal to inject keystrokes into",
        Layer::Landlock => "Landlock ruleset: files outside the sandbox's binds, /tmp and work directory refused (EACCES); TCP (ABI 4) and abstract sockets and signals (ABI 6) where the kernel has them",
    }
}

/// A paragraph per layer: what it does in the kernel and why that stops attacks.
pub fn layer_description(layer: Layer) -> &'static str {
    match layer {
        Layer::UserNs => "Starts the payload in a new user namespace (CLONE_NEWUSER) with a uid/gid map. \
The kernel checks a capability against the user namespace that owns the object being acted on (a \
process, a mount, a network or UTS namespace, a keyring), so root inside the sandbox holds its \
capabilities only over objects its own namespace owns: ptrace, signals to other users' processes, \
setns into outside namespaces, sethostname and mounts that affect the outside all fail with EPERM. \
The price is kernel surface: inside-root may create further namespaces and mount some filesystems, \
which is why strict profiles pair it with seccomp and caps.",
        Layer::PidNs => "Starts the payload in a new PID namespace (CLONE_NEWPID), where it is pid 1 of a \
tree of its own. Processes outside that tree have no pid inside it, so kill(2), ptrace(2), \
pidfd_open(2), setns via /proc/<pid>/ns and /proc/<pid>/{root,environ,mem} of outside processes \
fail with ESRCH or ENOENT: the payload cannot even name its target. When the mount namespace is on \
too, a fresh /proc shows only the sandbox's processes; when the namespace's init exits, the kernel \
kills everything left in it.",
        Layer::MountNs => "Starts the payload in a new mount namespace and pivot_roots into a sandbox root \
assembled from read-only binds of the system directories, then detaches the old root. Files \
outside that root (secret files, unix socket paths, the outside's world under /srv/breakout) are not \
reachable by any path, and mounts made inside do not propagate out. pivot_root, not chroot: \
chroot only changes one process's path lookup root and is escaped by chrooting again into a \
subdirectory and walking `..` (the chroot-escape probe), so the runtime never falls back to it.",
        Layer::NetNs => "Starts the payload in a new network namespace with only a loopback interface, \
brought up. Every socket lives in that namespace: TCP services on the outside's 127.0.0.1, ports \
the payload binds, and abstract unix sockets (their names are scoped per network namespace) are \
separate from the outside's, and raw or packet sockets see no outside traffic.",
        Layer::IpcNs => "Starts the payload in a new IPC namespace. System V shared memory segments, \
message queues and semaphore sets (and POSIX message queues) are per namespace, so a segment the \
outside created under a known key does not exist inside: shmget/msgget with that key fail with \
ENOENT.",
        Layer::UtsNs => "Starts the payload in a new UTS namespace, a private copy of the host name and \
NIS domain name: sethostname and setdomainname succeed inside but the outside's `uname -n` does \
not change.",
        Layer::CgroupNs => "Starts the payload in a new cgroup namespace rooted at its own cgroup: \
/proc/self/cgroup reads `0::/`, and a cgroup filesystem mounted inside shows only the sandbox's \
subtree. The outside's cgroup paths (which can carry names and secrets) and the parent groups one \
could try to move a process into are out of sight.",
        Layer::Uid => "Runs the payload as the unprivileged uid and gid 1000 (seen from outside), with \
supplementary groups dropped and setgroups denied. Leaving uid 0 clears the permitted and effective \
capability sets, and the kernel's ordinary permission rules then apply: no signals to or ptrace of \
root's processes, no reading root's 0400 files, no /proc/<pid>/environ or /proc/<pid>/root of other \
users. It does not protect other processes of the same uid.",
        Layer::Caps => "Cuts the bounding, permitted, effective, inheritable and ambient capability sets \
to the profile's kept list. Without CAP_SYS_ADMIN root cannot mount, setns or use most of the \
namespace and BPF interfaces; without CAP_SYS_PTRACE it cannot trace processes it does not own; \
without CAP_KILL it cannot signal them; without CAP_NET_RAW no raw sockets; without CAP_SYS_MODULE no \
module loading; without CAP_DAC_READ_SEARCH no open_by_handle_at; without CAP_MKNOD no device nodes. \
With empty inheritable and ambient sets and a cut bounding set, exec of a file carrying file \
capabilities gains nothing beyond the kept list. The report's drill-down names the single capability that, kept, lets \
a probe through, e.g. caps(CAP_SYS_PTRACE).",
        Layer::NoNewPrivs => "Sets PR_SET_NO_NEW_PRIVS: from then on execve cannot grant privileges, so \
setuid and setgid bits and file capabilities are ignored (a setuid-root helper runs with the \
caller's ids) and LSM transitions on exec are refused. It is inherited by every descendant and \
cannot be cleared; it is also what allows an unprivileged process to install a seccomp filter.",
        Layer::Seccomp => "Installs a seccomp-BPF filter (built with libseccomp) that checks every system \
call number, and some arguments, before the kernel runs it: a denied call fails with the profile's \
errno, or the process is killed with SIGSYS. Profiles are our own allowlists or Docker/OCI JSON \
profiles loaded as they are. Filters only stack, each new one can only restrict further, so the \
payload cannot loosen its own. The report's drill-down names the syscall the filter denied on the \
probe's path, e.g. seccomp(keyctl).",
        Layer::CgroupLimits => "Places the sandbox in a cgroup v2 leaf of its own with memory.max (and \
memory.swap.max), pids.max and cpu.max. Past pids.max fork fails with EAGAIN; past memory.max the \
kernel reclaims, then the OOM killer acts inside the group only; cpu.max throttles. The counters in \
memory.events, pids.events and cpu.stat are the evidence; the leaf is killed with cgroup.kill and \
removed afterwards.",
        Layer::Rlimits => "Sets resource limits with setrlimit before exec: RLIMIT_NPROC (processes per real \
uid), RLIMIT_NOFILE (open descriptors), RLIMIT_CORE and friends. They are per process or per uid, \
cruder than cgroup limits: RLIMIT_NPROC counts every process of the uid, and the kernel does not \
enforce it for root of the initial user namespace or a holder of CAP_SYS_RESOURCE or CAP_SYS_ADMIN.",
        Layer::FsHardening => "Hardens the filesystem view: the sandbox root is read-only; /proc and /sys are \
mounted nosuid, nodev, noexec; sensitive kernel files are masked (/proc/kcore, /proc/keys, \
/proc/timer_list, /proc/sched_debug, /sys/firmware, ...) and /proc/sys, /proc/sysrq-trigger, \
/proc/bus, /proc/fs, /proc/irq are remounted read-only, so writes to core_pattern or sysrq-trigger \
fail with EROFS; other mounts get nosuid and nodev, so planted setuid binaries and device nodes do \
nothing.",
        Layer::FdHygiene => "Closes every descriptor except 0, 1 and 2 before exec (close_range) and checks \
the working directory lies inside the sandbox root. A directory descriptor leaked from the launcher \
is a way out of any root: openat(fd, \"..\") or fchdir(fd) walks from it to the outside's files \
(CVE-2024-21626 in runc); a leaked socket or file hands over whatever it points to.",
        Layer::NewSession => "Calls setsid() so the payload runs in a new session without a controlling \
terminal. Without it, a payload sharing the outside's terminal can push bytes into that terminal's \
input queue with the TIOCSTI ioctl, and the outside's shell reads them as typed commands \
(CVE-2017-5226 in bubblewrap); terminal job-control signals stop reaching across too.",
        Layer::Landlock => "Enforces a Landlock ruleset on the payload (landlock_create_ruleset, \
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
    }
}

/// The names closest to `id` among `known`: small edit distance, or one contains the other.
pub fn near_matches<'a>(id: &str, known: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let id = id.to_ascii_lowercase();
    let mut scored: Vec<(usize, &str)> = known
        .into_iter()
        .filter_map(|name| {
            let distance = strsim::levenshtein(&id, name);
            let related = id.len() >= 3 && (name.contains(&id) || id.contains(name));
            let close = distance <= 2.max(name.len() / 4);
            (related || close).then_some((distance, name))
        })
        .collect();
    scored.sort();
    scored
        .into_iter()
        .take(5)
        .map(|(_, n)| n.to_string())
        .collect()
}

/// Wraps a paragraph at 96 columns with an indent.
fn wrap(text: &str, indent: &str) -> String {
    let mut out = String::new();
    let mut line = String::from(indent);
    for word in text.split_whitespace() {
        if line.len() > indent.len() && line.len() + 1 + word.len() > 96 {
            out.push_str(&line);
            out.push('\n');
            line = String::from(indent);
        }
        if line.len() > indent.len() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if line.len() > indent.len() {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

pub fn explain_probe(meta: &ProbeMeta, results: Option<&RunReport>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}: {}\n", meta.id, meta.title);
    out.push_str("What it does, and why it works on a bare Linux process:\n");
    out.push_str(&wrap(meta.technique, "  "));
    out.push_str("\nHow the outside proves an escape (the probe's own word is never proof):\n");
    out.push_str(&wrap(meta.oracle, "  "));
    out.push_str("\nLayers that can stop it, and how:\n");
    let width = meta
        .layers
        .iter()
        .map(|l| l.name().len())
        .max()
        .unwrap_or(0);
    for layer in meta.layers {
        let _ = writeln!(out, "  {:width$}  {}", layer.name(), layer_summary(*layer));
    }
    if !meta.references.is_empty() {
        out.push_str("\nReferences:\n");
        for r in meta.references {
            let _ = writeln!(out, "  {r}");
        }
    }
    if let Some(report) = results {
        let rows: Vec<_> = report
            .results
            .iter()
            .filter(|r| r.probe == meta.id)
            .collect();
        out.push_str("\nMeasured (--results):\n");
        if rows.is_empty() {
            out.push_str("  this probe is not in the results file\n");
        }
        for r in rows {
            let _ = writeln!(out, "  {:14}  {}", r.profile, cell_text(r));
            let _ = writeln!(out, "  {:14}  oracle: {}", "", r.reason);
            if let Some(a) = &r.attribution {
                out.push_str(&ablation_story(&r.profile, a));
            }
        }
    }
    let _ = writeln!(
        out,
        "\n`breakout explain LAYER` describes a layer; `breakout run --probe {}` measures it{}.",
        meta.id,
        if results.is_none() {
            "; `--results FILE` (a results.json or baseline) shows what a run measured"
        } else {
            ""
        }
    );
    out
}

/// The ablation runs behind a cell and, per candidate layer, why it is credited or not.
fn ablation_story(profile: &str, a: &crate::model::Attribution) -> String {
    let mut out = String::new();
    let pad = format!("  {:14}  ", "");
    let _ = writeln!(
        out,
        "{pad}depth {}: {}",
        a.depth,
        match a.depth {
            1 => "one layer switched off lets it escape",
            2 => "no single layer switched off lets it escape",
            _ if a.inferred => "inferred from evidence, nothing was switched off",
            _ => "not established (the candidates do not explain the block)",
        }
    );
    if a.ablation_runs.is_empty() {
        return out;
    }
    let _ = writeln!(out, "{pad}ablation runs:");
    for run in &a.ablation_runs {
        let _ = writeln!(
            out,
            "{pad}  {:12} {}",
            crate::model::verdict_name(run.verdict),
            run.description
        );
        // What the outside saw: for a block, the step that failed.
        if !run.reason.is_empty() {
            let _ = writeln!(out, "{pad}  {:12}   {}", "", one_line(&run.reason, 160));
        }
    }
    let verdict_of = |prefix: &str| {
        a.ablation_runs
            .iter()
            .find(|run| {
                run.description == prefix || run.description.starts_with(&format!("{prefix} ("))
            })
            .map(|run| crate::model::verdict_name(run.verdict))
    };
    let _ = writeln!(out, "{pad}why:");
    for layer in a.candidate_layers() {
        let name = layer.name();
        let alone = format!("{name} alone");
        let without = format!("{profile} without {name}");
        let sufficient = if a.sufficient.contains(&layer) {
            format!("sufficient ({alone}: blocked)")
        } else {
            match verdict_of(&alone) {
                Some(v) => format!("not sufficient ({alone}: {v})"),
                None => "not sufficient (its minimum blocks on its own, so it is not credited)"
                    .to_string(),
            }
        };
        let necessary = match (a.necessary.contains(&layer), verdict_of(&without)) {
            (true, _) => format!("necessary ({without}: escaped)"),
            (false, Some(v)) => format!("not necessary ({without}: {v})"),
            (false, None) => "not necessary".to_string(),
        };
        let _ = writeln!(out, "{pad}  {name}: {sufficient}; {necessary}");
    }
    out
}

pub fn explain_layer(layer: Layer, results: Option<&RunReport>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}: {}\n", layer.name(), layer_summary(layer));
    out.push_str(&wrap(layer_description(layer), "  "));
    let metas = probe_metas();
    let stops: Vec<&ProbeMeta> = metas
        .iter()
        .copied()
        .filter(|m| m.layers.contains(&layer))
        .collect();
    out.push_str("\nProbes it can stop (it is among their candidate layers):\n");
    if stops.is_empty() {
        out.push_str("  none in this suite\n");
    }
    let width = stops.iter().map(|m| m.id.len()).max().unwrap_or(0);
    for m in &stops {
        let _ = writeln!(out, "  {:width$}  {}", m.id, m.title);
    }
    if let Some(report) = results {
        out.push_str("\nMeasured (--results): where it alone still blocks the probe:\n");
        let mut any = false;
        for r in &report.results {
            if let Some(a) = &r.attribution {
                if a.sufficient.contains(&layer) {
                    any = true;
                    let _ = writeln!(
                        out,
                        "  {} under {}{}{}",
                        r.probe,
                        r.profile,
                        if a.necessary.contains(&layer) {
                            " (and without it, it escapes: depth 1)"
                        } else {
                            ""
                        },
                        if a.inferred { " (inferred)" } else { "" }
                    );
                }
            }
        }
        if !any {
            out.push_str("  nowhere in this results file\n");
        }
    }
    out
}

/// The first line of `text`, cut at `max` characters (on a char boundary).
fn one_line(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or_default();
    match line.char_indices().nth(max) {
        Some((i, _)) => format!("{}...", &line[..i]),
        None => line.to_string(),
    }
}
