//! Every compiled-in probe, one file each, grouped by what it attacks: other processes
//! (`processes/`), channels between processes (`ipc/`), the outside's files (`filesystem/`), the
//! kernel and its machine-wide state (`kernel/`), shared resources (`resources/`), the network
//! (`network/`) and privilege (`privilege/`). Helpers the probes share are in [`crate::kit`].

mod filesystem;
mod ipc;
mod kernel;
mod network;
mod privilege;
mod processes;
mod resources;

pub use privilege::setuid_gain::{run_setuid_helper, HELPER_FLAG as SETUID_HELPER_FLAG};

use crate::Probe;

/// The compiled-in probes in their stable order (the order of `breakout list probes`, reports
/// and the README).
pub fn probes() -> Vec<&'static dyn Probe> {
    vec![
        &processes::ptrace_outside::PtraceOutside,
        &processes::ptrace_same_uid::PtraceSameUid,
        &ipc::scm_rights_import::ScmRightsImport,
        &ipc::scm_rights_abstract::ScmRightsAbstract,
        &processes::signal_outside::SignalOutside,
        &processes::signal_same_uid::SignalSameUid,
        &processes::setns_outside::SetnsOutside,
        &resources::fork_bomb::ForkBomb,
        &resources::memory_hog::MemoryHog,
        &network::port_bind::PortBind,
        &ipc::leaked_fds::LeakedFds,
        &processes::tiocsti::Tiocsti,
        &privilege::setuid_gain::SetuidGain,
        &ipc::sysv_ipc::SysvIpc,
        &network::host_loopback::HostLoopback,
        &kernel::hostname::Hostname,
        &processes::cgroup_path_leak::CgroupPathLeak,
        &resources::fd_exhaustion::FdExhaustion,
        &ipc::keyring::Keyring,
        &filesystem::mount::MountProbe,
        &network::raw_socket::RawSocket,
        &kernel::kernel_log::KernelLog,
        &kernel::clock::Clock,
        &filesystem::open_by_handle::OpenByHandle,
        &kernel::masked_paths::MaskedPaths,
        &kernel::sysrq_trigger::SysrqTrigger,
        &kernel::core_pattern::CorePattern,
        &filesystem::mknod_device::MknodDevice,
        &filesystem::chroot_escape::ChrootEscape,
        &processes::proc_root::ProcRoot,
        &processes::proc_environ::ProcEnviron,
        &ipc::abstract_socket::AbstractSocket,
        &kernel::reboot::Reboot,
        &kernel::bpf::Bpf,
        &kernel::userfaultfd::Userfaultfd,
        &privilege::cgroup_release_agent::CgroupReleaseAgent,
        &resources::cgroup_escape::CgroupEscape,
        &privilege::caps_inheritable::CapsInheritable,
        &kernel::kernel_module::KernelModule,
        &processes::proc_self_exe::ProcSelfExe,
        &processes::runtime_setup_root::RuntimeSetupRoot,
        &kernel::io_uring::IoUring,
        &filesystem::block_device::BlockDevice,
        &filesystem::root_owned_file::RootOwnedFile,
        &filesystem::outside_file::OutsideFile,
    ]
}
