//! The outside world the probes attack, built once per guest run by the outside half: victims
//! holding fresh secrets, secret files outside the sandbox root, unix sockets, listeners, SysV IPC
//! objects, a kernel-log marker. (Owned by the probe suite; filled in there.)

/// Handle on the world built in the guest.
pub struct World {}
