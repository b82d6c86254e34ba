//! Probes that act on the kernel itself or its machine-wide state: the log, the clock, sysctls,
//! SysRq, reboot, BPF, modules, kernel memory, the hostname, io_uring, userfaultfd.

pub(super) mod bpf;
pub(super) mod clock;
pub(super) mod core_pattern;
pub(super) mod hostname;
pub(super) mod io_uring;
pub(super) mod kernel_log;
pub(super) mod kernel_module;
pub(super) mod masked_paths;
pub(super) mod reboot;
pub(super) mod sysrq_trigger;
pub(super) mod userfaultfd;
