//! Probes that reach another process: signal it, trace it, join its namespaces, read its
//! environment, root or executable through /proc, or type into its terminal.

pub(super) mod cgroup_path_leak;
pub(super) mod proc_environ;
pub(super) mod proc_root;
pub(super) mod proc_self_exe;
pub(super) mod ptrace_outside;
pub(super) mod ptrace_same_uid;
pub(super) mod runtime_setup_root;
pub(super) mod setns_outside;
pub(super) mod signal_outside;
pub(super) mod signal_same_uid;
pub(super) mod tiocsti;
