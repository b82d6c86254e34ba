//! The suite's own probes, one file each: the owner's seven first, then catalog rows taken by
//! attacks-core (see the id lists at the top of `catalog/mod.rs`).

mod cgroup_path_leak;
mod fd_exhaustion;
mod fork_bomb;
mod host_loopback;
mod hostname;
mod keyring;
mod leaked_fds;
mod memory_hog;
mod port_bind;
mod ptrace_outside;
mod ptrace_same_uid;
mod scm_rights_abstract;
mod scm_rights_import;
mod setns_outside;
mod setuid_gain;
mod signal_outside;
mod signal_same_uid;
mod sysv_ipc;
mod tiocsti;

pub use setuid_gain::{run_setuid_helper, HELPER_FLAG as SETUID_HELPER_FLAG};

use crate::{Args, InsideReport, Probe, Steps};

/// The probes of this module, in a stable order.
pub fn probes() -> Vec<&'static dyn Probe> {
    vec![
        &ptrace_outside::PtraceOutside,
        &ptrace_same_uid::PtraceSameUid,
        &scm_rights_import::ScmRightsImport,
        &scm_rights_abstract::ScmRightsAbstract,
        &signal_outside::SignalOutside,
        &signal_same_uid::SignalSameUid,
        &setns_outside::SetnsOutside,
        &fork_bomb::ForkBomb,
        &memory_hog::MemoryHog,
        &port_bind::PortBind,
        &leaked_fds::LeakedFds,
        &tiocsti::Tiocsti,
        &setuid_gain::SetuidGain,
        &sysv_ipc::SysvIpc,
        &host_loopback::HostLoopback,
        &hostname::Hostname,
        &cgroup_path_leak::CgroupPathLeak,
        &fd_exhaustion::FdExhaustion,
        &keyring::Keyring,
    ]
}

/// Parses the inside's arguments; on error the returned report says what is wrong.
pub(crate) fn inside_args(probe: &str, words: &[String]) -> Result<(Args, Steps), InsideReport> {
    let mut steps = Steps::new(probe);
    match Args::parse(words) {
        Ok(args) => Ok((args, steps)),
        Err(e) => {
            steps.bad_args(e.to_string());
            Err(steps.finish())
        }
    }
}

/// Like [`inside_args`], then runs `attempt`; a missing or malformed argument ends the attempt
/// with a report naming it.
pub(crate) fn with_args(
    probe: &str,
    words: &[String],
    attempt: impl FnOnce(&Args, &mut Steps) -> Result<(), crate::ArgError>,
) -> InsideReport {
    let (args, mut steps) = match inside_args(probe, words) {
        Ok(x) => x,
        Err(report) => return report,
    };
    if let Err(e) = attempt(&args, &mut steps) {
        steps.bad_args(e.to_string());
    }
    steps.finish()
}

/// The judge's answer when `arrange` stored a state of another type (a bug, never a verdict).
pub(crate) fn wrong_state(probe: &str) -> crate::Judgement {
    crate::Judgement::inconclusive(format!(
        "{probe}: internal error: the arrangement's state is not this probe's"
    ))
}
