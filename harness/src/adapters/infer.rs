//! Attribution for external runtimes from evidence only, for runs made without ablation
//! (`--no-ablation`; with ablation, `ablate` takes the user's configuration apart). Each layer
//! the runtime turned on (and the probe names as a candidate) is credited when the evidence carries that layer's signature: SIGSYS or a syscall
//! the runtime's filter denies for seccomp, ESRCH for pid-ns, EROFS for fs-hardening, and so on.
//! The result is marked `inferred`; `necessary` stays empty (only ablation can show it) and no
//! ablation runs are listed.

use crate::model::{Attribution, Evidence};
use crate::suite::attribution::{denied_calls, syscall_name};
use breakout_attacks::{Layer, Step};
use serde_json::Value;

const EPERM: i32 = libc::EPERM;
const ENOENT: i32 = libc::ENOENT;
const ESRCH: i32 = libc::ESRCH;
const EBADF: i32 = libc::EBADF;
const EAGAIN: i32 = libc::EAGAIN;
const EACCES: i32 = libc::EACCES;
const ENOTTY: i32 = libc::ENOTTY;
const EROFS: i32 = libc::EROFS;
const EMFILE: i32 = libc::EMFILE;
const EIO: i32 = libc::EIO;
const ECONNREFUSED: i32 = libc::ECONNREFUSED;
const ENETUNREACH: i32 = libc::ENETUNREACH;
const EADDRNOTAVAIL: i32 = libc::EADDRNOTAVAIL;
const ENETDOWN: i32 = libc::ENETDOWN;
const ENXIO: i32 = libc::ENXIO;
const EINVAL: i32 = libc::EINVAL;
const SIGSYS: i32 = libc::SIGSYS;

/// Does the step's text name a process's /proc entry (`/proc/<digits>`)?
fn names_proc_pid(step: &Step) -> bool {
    let text = &step.syscall;
    text.match_indices("/proc/").any(|(i, m)| {
        text[i + m.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit())
    })
}

/// Is the step a SysV IPC lookup (shmget, msgget, semget and their operations)?
fn is_sysv_ipc(step: &Step) -> bool {
    let name = syscall_name(&step.syscall);
    ["shm", "msg", "sem"].iter().any(|p| name.starts_with(p))
}

/// Does the step name a filesystem path (other than a process's /proc entry)?
fn names_path(step: &Step) -> bool {
    step.syscall.contains('/') && !names_proc_pid(step)
}

/// Whether the evidence carries a signature of `layer`.
fn signature(
    layer: Layer,
    evidence: &Evidence,
    failed: &[(&Step, i32)],
    seccomp: Option<&Value>,
) -> bool {
    let errno_in = |set: &[i32]| failed.iter().any(|(_, e)| set.contains(e));
    let nothing_failed = failed.is_empty();
    let killed_by_sigsys = matches!(
        evidence.exit,
        Some(breakout_runtime::ExitKind::Signaled { signal, .. }) if signal == SIGSYS
    ) || evidence.steps.iter().any(|s| s.signal == Some(SIGSYS));
    match layer {
        Layer::Seccomp => killed_by_sigsys || !seccomp_denied(failed, seccomp).is_empty(),
        // reboot(2) inside a PID namespace refuses everything but restart/halt with EINVAL.
        Layer::PidNs => failed.iter().any(|(s, e)| {
            *e == ESRCH
                || (*e == ENOENT && names_proc_pid(s))
                || (*e == EINVAL && syscall_name(&s.syscall) == "reboot")
        }),
        // EPERM/EACCES come from capabilities, the uid and the user namespace alike; every such
        // layer the runtime turned on is credited, the report marks it inferred.
        Layer::Caps | Layer::Uid | Layer::UserNs => failed
            .iter()
            .any(|(s, e)| (*e == EPERM || *e == EACCES) && !denied_by(s, seccomp)),
        Layer::MountNs => failed.iter().any(|(s, e)| *e == ENOENT && names_path(s)),
        Layer::NetNs => {
            errno_in(&[ECONNREFUSED, ENETUNREACH, EADDRNOTAVAIL, ENETDOWN]) || nothing_failed
        }
        Layer::IpcNs => {
            nothing_failed || failed.iter().any(|(s, e)| *e == ENOENT && is_sysv_ipc(s))
        }
        Layer::UtsNs | Layer::CgroupNs | Layer::NoNewPrivs => nothing_failed,
        Layer::FsHardening => errno_in(&[EROFS]),
        // A leaked descriptor that is simply not there leaves no failed step.
        Layer::FdHygiene => errno_in(&[EBADF]) || nothing_failed,
        // No controlling terminal: /dev/tty gives ENXIO, and TIOCSTI on a terminal that is not
        // the caller's controlling one needs CAP_SYS_ADMIN (EPERM).
        Layer::NewSession => failed.iter().any(|(s, e)| {
            [ENOTTY, EIO, ENXIO].contains(e) || (*e == EPERM && s.syscall.contains("TIOCSTI"))
        }),
        Layer::CgroupLimits => evidence
            .cgroup
            .as_ref()
            .is_some_and(|c| c.pids_max_hits > 0 || c.oom_kill > 0 || c.memory_max_hits > 0),
        Layer::Rlimits => errno_in(&[EAGAIN, EMFILE]),
        // No external runtime turns Landlock on.
        Layer::Landlock => false,
    }
}

/// Whether the filter denies a call the step names unconditionally.
fn denied_by(step: &Step, seccomp: Option<&Value>) -> bool {
    seccomp
        .is_some_and(|f| !denied_calls([step], &|call| super::crun::oci_denies(f, call)).is_empty())
}

/// The calls of the failed steps the filter denies, sorted: any errno counts here, since the
/// errno a rule returns is the rule's own.
fn seccomp_denied(failed: &[(&Step, i32)], seccomp: Option<&Value>) -> Vec<String> {
    let Some(filter) = seccomp else {
        return Vec::new();
    };
    let mut names = denied_calls(failed.iter().map(|(s, _)| *s), &|call| {
        super::crun::oci_denies(filter, call)
    });
    names.sort_unstable();
    names
}

/// The attribution of a blocked result under an external runtime that turned on `enabled`
/// layers (its ProfileInfo) for a probe with `candidates` (its metadata). `seccomp` is the
/// runtime's OCI filter when it installs one (crun), so denied syscalls can be named.
pub fn attribution(
    candidates: &[Layer],
    enabled: &[Layer],
    evidence: &Evidence,
    seccomp: Option<&Value>,
) -> Attribution {
    let failed: Vec<(&Step, i32)> = evidence
        .steps
        .iter()
        .filter_map(|s| s.errno.map(|e| (s, e)))
        .collect();
    let sufficient: Vec<Layer> = candidates
        .iter()
        .copied()
        .filter(|l| enabled.contains(l))
        .filter(|l| signature(*l, evidence, &failed, seccomp))
        .collect();
    let seccomp_names = if sufficient.contains(&Layer::Seccomp) {
        seccomp_denied(&failed, seccomp)
    } else {
        Vec::new()
    };
    Attribution {
        necessary: Vec::new(),
        depth: crate::model::depth(&sufficient, &[], false, true),
        candidates: Vec::new(),
        sufficient,
        candidates_complete: false,
        caps_detail: Vec::new(),
        seccomp_denied: seccomp_names,
        inferred: true,
        ablation_runs: Vec::new(),
        items: None,
    }
}

/// The attribution for a blocked result under an external spec, from evidence only (the run
/// was made without ablation).
pub fn for_spec(
    spec: &super::ExternalSpec,
    candidates: &[Layer],
    evidence: &Evidence,
) -> Attribution {
    attribution(candidates, &spec.layers(), evidence, spec.oci_seccomp())
}

/// The attribution for a blocked result under the runtime short name `name`.
pub fn for_adapter(name: &str, candidates: &[Layer], evidence: &Evidence) -> Option<Attribution> {
    super::by_name(name).map(|rt| for_spec(&rt.spec(), candidates, evidence))
}
