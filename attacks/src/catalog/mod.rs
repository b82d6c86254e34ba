//! The catalog probes (issue 4, rows of probe-catalog.md beyond the owner's seven), one file each.
//!
//! OWNERSHIP: this directory belongs to the helper "attacks-catalog". `lib.rs` declares
//! `pub mod catalog;` and adds these probes to the registry in `all_probes()`.
//!
//! Probe ids taken by attacks-core (in attacks/src/probes/), do not take these:
//! ptrace-outside, ptrace-same-uid, scm-rights-import, scm-rights-abstract, signal-outside,
//! signal-same-uid, setns-outside, fork-bomb, memory-hog, port-bind, leaked-fds, tiocsti,
//! setuid-gain, sysv-ipc, host-loopback, hostname, cgroup-path-leak, fd-exhaustion, keyring
//!
//! Probe ids taken by attacks-catalog:
//! mount, raw-socket, kernel-log, clock, open-by-handle, masked-paths, sysrq-trigger,
//! core-pattern, mknod-device, chroot-escape, proc-root, proc-environ, abstract-socket, reboot,
//! bpf, userfaultfd, cgroup-release-agent, cgroup-escape, caps-inheritable, kernel-module,
//! proc-self-exe, io-uring, outside-file

mod abstract_socket;
mod block_device;
mod bpf;
mod caps_inheritable;
mod cgroup_escape;
mod cgroup_release_agent;
mod chroot_escape;
mod clock;
mod core_pattern;
mod io_uring;
mod kernel_log;
mod kernel_module;
mod masked_paths;
mod mknod_device;
mod mount;
mod open_by_handle;
mod outside_file;
mod proc_environ;
mod proc_root;
mod proc_self_exe;
mod raw_socket;
mod reboot;
mod root_owned_file;
mod sysrq_trigger;
mod userfaultfd;
pub(crate) mod util;

use crate::Probe;

/// The catalog's probes, in a stable order.
pub fn probes() -> Vec<&'static dyn Probe> {
    vec![
        &mount::MountProbe,
        &raw_socket::RawSocket,
        &kernel_log::KernelLog,
        &clock::Clock,
        &open_by_handle::OpenByHandle,
        &masked_paths::MaskedPaths,
        &sysrq_trigger::SysrqTrigger,
        &core_pattern::CorePattern,
        &mknod_device::MknodDevice,
        &chroot_escape::ChrootEscape,
        &proc_root::ProcRoot,
        &proc_environ::ProcEnviron,
        &abstract_socket::AbstractSocket,
        &reboot::Reboot,
        &bpf::Bpf,
        &userfaultfd::Userfaultfd,
        &cgroup_release_agent::CgroupReleaseAgent,
        &cgroup_escape::CgroupEscape,
        &caps_inheritable::CapsInheritable,
        &kernel_module::KernelModule,
        &proc_self_exe::ProcSelfExe,
        &io_uring::IoUring,
        &block_device::BlockDevice,
        &root_owned_file::RootOwnedFile,
        &outside_file::OutsideFile,
    ]
}
