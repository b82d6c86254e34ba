//! Probes that reach the outside's network: its loopback services, its ports, its traffic.

pub(super) mod host_loopback;
pub(super) mod port_bind;
pub(super) mod raw_socket;
