//! Probes that take something the outside holds through a channel between processes: descriptors
//! over unix sockets or inherited, SysV objects, abstract sockets, the kernel keyring.

pub(super) mod abstract_socket;
pub(super) mod keyring;
pub(super) mod leaked_fds;
pub(super) mod scm_rights_abstract;
pub(super) mod scm_rights_import;
pub(super) mod sysv_ipc;
