//! seccomp: load the compiled filter. It is installed before the uid switch and the capability
//! cut, while the process still holds CAP_SYS_ADMIN (in its namespace), so it works without
//! no-new-privs; the few syscalls that follow (capset, prctl, setresuid, close_range, execve)
//! must be allowed by the profile, which both builtin profiles do.

use crate::config::SandboxConfig;
use crate::layer::Layer;
use crate::seccomp::{ResolveContext, SeccompError};
use crate::step::{Op, Step};

pub(crate) fn steps(cfg: &SandboxConfig) -> Result<Vec<Step>, SeccompError> {
    let Some(profile) = cfg.seccomp_profile() else {
        return Ok(Vec::new());
    };
    let bpf = profile
        .resolve(&ResolveContext::native(cfg.effective_caps()))
        .compile()?;
    Ok(vec![Step::new(
        Some(Layer::Seccomp),
        format!(
            "seccomp(SECCOMP_SET_MODE_FILTER, {} instructions from {})",
            bpf.len(),
            profile.origin
        ),
        Op::Seccomp(bpf),
    )])
}
