//! One module per isolation concern. Each turns its part of the config into prepared steps
//! (see step.rs); plan.rs strings them together in the order the child applies them.

pub mod caps;
pub mod cgroup_limits;
pub mod devices;
pub mod fd_hygiene;
pub mod fs_hardening;
pub mod landlock;
pub mod mount;
pub mod namespaces;
pub mod net;
pub mod nnp;
pub mod rlimits;
pub mod seccomp;
pub mod session;
pub mod uid;
pub mod user_ns;
