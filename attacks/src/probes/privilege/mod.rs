//! Probes that gain privilege: a setuid binary, file capabilities, cgroup v1's release_agent.

pub(super) mod caps_inheritable;
pub(super) mod cgroup_release_agent;
pub(super) mod setuid_gain;
