//! Probes that read files of the outside: by path, through a mount, a chroot, a file handle, or a
//! device node of one of its disks.

pub(super) mod block_device;
pub(super) mod chroot_escape;
pub(super) mod mknod_device;
pub(super) mod mount;
pub(super) mod open_by_handle;
pub(super) mod outside_file;
pub(super) mod root_owned_file;
