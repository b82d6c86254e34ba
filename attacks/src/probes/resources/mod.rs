//! Probes that take more than their share: processes, memory, descriptors, or the limits of their
//! own cgroup.

pub(super) mod cgroup_escape;
pub(super) mod fd_exhaustion;
pub(super) mod fork_bomb;
pub(super) mod memory_hog;
