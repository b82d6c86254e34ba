//! Reaching a device the sandbox's /dev leaves out: the inside makes a node for it in a directory
//! it may write, opens it, reads, and removes the node (block-device, mknod-device).

use super::scratch::scratch_name;
use crate::report::Steps;
use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use std::fs;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// A device node the inside makes, and how its steps are named in the report.
pub struct DeviceNode {
    /// Base of the node's scratch name (attempts side by side may share the directory).
    pub name: &'static str,
    /// `S_IFBLK` or `S_IFCHR`.
    pub kind: SFlag,
    pub major: u64,
    pub minor: u64,
    /// The step that makes the node ("create a block device node").
    pub create: &'static str,
    /// The step that opens it ("open the disk").
    pub open: &'static str,
    /// open(2) flags beyond O_RDONLY (O_NONBLOCK for the kernel log).
    pub flags: libc::c_int,
}

impl DeviceNode {
    /// Tries each directory of `dirs` (comma-separated) in turn: makes the node there, opens it,
    /// hands the open device to `read`, removes the node. Stops at the first directory where the
    /// device opened (another directory would reach the same device).
    pub fn read_through(
        &self,
        steps: &mut Steps,
        dirs: &str,
        mut read: impl FnMut(&mut Steps, fs::File),
    ) {
        for dir in dirs.split(',').filter(|d| !d.is_empty()) {
            if self.try_in(steps, Path::new(dir), &mut read) {
                break;
            }
        }
    }

    /// One directory: true when the device opened.
    fn try_in(
        &self,
        steps: &mut Steps,
        dir: &Path,
        read: &mut impl FnMut(&mut Steps, fs::File),
    ) -> bool {
        let node = dir.join(scratch_name(self.name));
        let kind = if self.kind == SFlag::S_IFBLK {
            "S_IFBLK"
        } else {
            "S_IFCHR"
        };
        let made = steps
            .call(
                self.create,
                format!(
                    "mknod({}, {kind}|0600, {}:{})",
                    node.display(),
                    self.major,
                    self.minor
                ),
                || {
                    mknod(
                        &node,
                        self.kind,
                        Mode::from_bits_truncate(0o600),
                        makedev(self.major, self.minor),
                    )
                },
            )
            .is_some();
        if !made {
            return false;
        }
        let flags = if self.flags & libc::O_NONBLOCK != 0 {
            "O_RDONLY|O_NONBLOCK"
        } else {
            "O_RDONLY"
        };
        let opened = steps.io(
            self.open,
            format!("open({}, {flags})", node.display()),
            || {
                fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(self.flags)
                    .open(&node)
            },
        );
        let opened_ok = opened.is_some();
        if let Some(device) = opened {
            read(steps, device);
        }
        steps.io(
            "remove the node",
            format!("unlink({})", node.display()),
            || fs::remove_file(&node),
        );
        opened_ok
    }
}
