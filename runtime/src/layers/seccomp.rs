//! seccomp: load the compiled filter. It is installed before the uid switch and the capability
//! cut, while the process still holds CAP_SYS_ADMIN (in its namespace), so it works without
//! no-new-privs; the few syscalls that follow (capset, prctl, setresuid, close_range, execve)
//! must be allowed by the profile, which both builtin profiles do.

use crate::config::SandboxConfig;
use crate::layer::Layer;
use crate::seccomp::{ResolveContext, Resolved, SeccompError};
use crate::step::{Op, Step};

/// The seccomp step, and the policy the parent still has to compile: when this process compiled
/// the policy before (the orchestrator's ~1100 launches of a few profiles), the step carries the
/// program; otherwise the parent compiles it after the fork, while the child creates its
/// namespaces, and the step loads what the runtime's `AwaitPrepared` step received.
pub(crate) fn steps(cfg: &SandboxConfig) -> Result<(Vec<Step>, Option<Resolved>), SeccompError> {
    let Some(profile) = cfg.seccomp_profile() else {
        return Ok((Vec::new(), None));
    };
    let resolved = profile.resolve(&ResolveContext::native(cfg.effective_caps()));
    Ok(match resolved.cached() {
        Some(bpf) => (
            vec![Step::new(
                Some(Layer::Seccomp),
                format!(
                    "seccomp(SECCOMP_SET_MODE_FILTER, {} instructions from {})",
                    bpf.len(),
                    profile.origin
                ),
                Op::Seccomp(Some(bpf)),
            )],
            None,
        ),
        None => (
            vec![Step::new(
                Some(Layer::Seccomp),
                format!(
                    "seccomp(SECCOMP_SET_MODE_FILTER, the program from {} compiled after the fork)",
                    profile.origin
                ),
                Op::Seccomp(None),
            )],
            Some(resolved),
        ),
    })
}

/// Recording instead of a policy (`breakout learn`, seccomp/record.rs): the filter that hands
/// every call to the runtime's recorder, at the place the policy's filter would be, so the calls
/// of the rest of the setup are recorded as the runtime's own.
pub(crate) fn record_steps() -> Vec<Step> {
    let bpf = crate::seccomp::Bpf(std::sync::Arc::new(crate::seccomp::record::filter_program()));
    vec![Step::new(
        Some(Layer::Seccomp),
        "seccomp(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, record every call)",
        Op::SeccompRecord(bpf),
    )]
}

/// The marker right before execve: what the recorder sees after it is the command's.
pub(crate) fn marker_step() -> Step {
    Step::new(
        Some(Layer::Seccomp),
        format!(
            "syscall({:#x}) (marker: the command starts)",
            crate::seccomp::record::MARKER_NR
        ),
        Op::RecordMarker,
    )
}
