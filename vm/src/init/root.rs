//! Moves the initramfs onto a real tmpfs mount and makes it the root, as busybox switch_root
//! does. On the initial rootfs pivot_root fails with EINVAL (rootfs has no parent mount), so
//! without this the runtime's mount namespace layer could not pivot in the guest.

use super::{io, sys, InitError};
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use nix::unistd::{chdir, chroot, fchownat, Gid, Uid};
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

const NEW_ROOT: &str = "/newroot";

pub fn switch_to_tmpfs() -> Result<(), InitError> {
    fs::create_dir(NEW_ROOT).map_err(io(format!("mkdir {NEW_ROOT}")))?;
    mount(
        Some("tmpfs"),
        NEW_ROOT,
        Some("tmpfs"),
        MsFlags::empty(),
        Some("mode=0755"),
    )
    .map_err(sys(format!("mount tmpfs on {NEW_ROOT}")))?;
    let entries = fs::read_dir("/").map_err(io("read /"))?;
    for entry in entries {
        let entry = entry.map_err(io("read /"))?;
        let name = entry.file_name();
        if name == "newroot" {
            continue;
        }
        let from = Path::new("/").join(&name);
        move_tree(&from, &Path::new(NEW_ROOT).join(&name))?;
    }
    chdir(NEW_ROOT).map_err(sys(format!("chdir {NEW_ROOT}")))?;
    mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
        .map_err(sys("mount --move /newroot /"))?;
    chroot(".").map_err(sys("chroot /newroot"))?;
    chdir("/").map_err(sys("chdir /"))?;
    Ok(())
}

/// Copies one entry (recursively) to the new root and removes it from the old one, so the
/// memory of the initramfs is not held twice.
fn move_tree(from: &Path, to: &Path) -> Result<(), InitError> {
    let shown = from.display().to_string();
    let meta = fs::symlink_metadata(from).map_err(io(format!("lstat {shown}")))?;
    let ft = meta.file_type();
    if ft.is_dir() {
        fs::create_dir(to).map_err(io(format!("mkdir {}", to.display())))?;
        for child in fs::read_dir(from).map_err(io(format!("read {shown}")))? {
            let child = child.map_err(io(format!("read {shown}")))?;
            move_tree(&child.path(), &to.join(child.file_name()))?;
        }
        fs::set_permissions(to, fs::Permissions::from_mode(meta.mode() & 0o7777))
            .map_err(io(format!("chmod {}", to.display())))?;
        fs::remove_dir(from).map_err(io(format!("rmdir {shown}")))?;
    } else if ft.is_symlink() {
        let target = fs::read_link(from).map_err(io(format!("readlink {shown}")))?;
        std::os::unix::fs::symlink(&target, to).map_err(io(format!("symlink {}", to.display())))?;
        fs::remove_file(from).map_err(io(format!("unlink {shown}")))?;
    } else if ft.is_file() {
        fs::copy(from, to).map_err(io(format!("copy {shown}")))?;
        fs::set_permissions(to, fs::Permissions::from_mode(meta.mode() & 0o7777))
            .map_err(io(format!("chmod {}", to.display())))?;
        fs::remove_file(from).map_err(io(format!("unlink {shown}")))?;
    } else if ft.is_char_device() || ft.is_block_device() {
        let kind = if ft.is_char_device() {
            SFlag::S_IFCHR
        } else {
            SFlag::S_IFBLK
        };
        let rdev = meta.rdev();
        let (major, minor) = (libc::major(rdev), libc::minor(rdev));
        mknod(
            to,
            kind,
            Mode::from_bits_truncate(meta.mode() & 0o7777),
            makedev(major.into(), minor.into()),
        )
        .map_err(sys(format!("mknod {}", to.display())))?;
        fs::remove_file(from).map_err(io(format!("unlink {shown}")))?;
    } else {
        // FIFOs and sockets cannot come from a cpio we wrote; leave anything else behind.
        return Ok(());
    }
    if meta.uid() != 0 || meta.gid() != 0 {
        fchownat(
            None,
            to,
            Some(Uid::from_raw(meta.uid())),
            Some(Gid::from_raw(meta.gid())),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(sys(format!("chown {}", to.display())))?;
    }
    Ok(())
}
