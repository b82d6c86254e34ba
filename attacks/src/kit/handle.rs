//! File handles: name_to_handle_at(2) and open_by_handle_at(2), which reach a file by its
//! filesystem's handle (inode and generation) instead of a path.

use nix::errno::Errno;
use std::ffi::CString;
use std::fs;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// MAX_HANDLE_SZ of the kernel.
pub(crate) const MAX_HANDLE_BYTES: usize = 128;

/// AT_HANDLE_FID (Linux 6.5): a handle that identifies the file without promising it can be
/// opened, which overlayfs gives where it has no exportable handle.
pub(crate) const AT_HANDLE_FID: libc::c_int = 0x200;

/// A file handle as the kernel returns it: its type and opaque bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Handle {
    pub handle_type: i32,
    pub bytes: Vec<u8>,
}

/// struct file_handle with room for MAX_HANDLE_SZ bytes.
#[repr(C)]
struct RawHandle {
    handle_bytes: u32,
    handle_type: i32,
    f_handle: [u8; MAX_HANDLE_BYTES],
}

/// The handle of `path` (relative to the working directory), or of `dir` itself with an empty
/// path and AT_EMPTY_PATH in `flags`.
pub(crate) fn name_to_handle(
    dir: Option<BorrowedFd<'_>>,
    path: &Path,
    flags: libc::c_int,
) -> Result<Handle, Errno> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    let mut raw = RawHandle {
        handle_bytes: MAX_HANDLE_BYTES as u32,
        handle_type: 0,
        f_handle: [0; MAX_HANDLE_BYTES],
    };
    let mut mount_id: libc::c_int = 0;
    let dirfd = dir.map_or(libc::AT_FDCWD, |d| d.as_raw_fd());
    // SAFETY: c is a NUL-terminated path, raw has room for handle_bytes bytes after its header,
    // mount_id is a valid int to write; dirfd is borrowed for the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_name_to_handle_at,
            dirfd,
            c.as_ptr(),
            &mut raw as *mut RawHandle,
            &mut mount_id as *mut libc::c_int,
            flags,
        )
    };
    Errno::result(r)?;
    let len = (raw.handle_bytes as usize).min(MAX_HANDLE_BYTES);
    Ok(Handle {
        handle_type: raw.handle_type,
        bytes: raw.f_handle[..len].to_vec(),
    })
}

/// The file `handle` names, on the filesystem `mount_fd` lies on, opened with `flags`
/// (O_CLOEXEC added).
pub(crate) fn open_by_handle(
    mount_fd: BorrowedFd<'_>,
    handle: &Handle,
    flags: libc::c_int,
) -> Result<fs::File, Errno> {
    if handle.bytes.len() > MAX_HANDLE_BYTES {
        return Err(Errno::EINVAL);
    }
    let mut raw = RawHandle {
        handle_bytes: handle.bytes.len() as u32,
        handle_type: handle.handle_type,
        f_handle: [0; MAX_HANDLE_BYTES],
    };
    raw.f_handle[..handle.bytes.len()].copy_from_slice(&handle.bytes);
    // SAFETY: raw is a valid file_handle whose handle_bytes does not exceed its buffer.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_by_handle_at,
            mount_fd.as_raw_fd(),
            &mut raw as *mut RawHandle,
            flags | libc::O_CLOEXEC,
        )
    };
    let fd = Errno::result(fd)? as i32;
    // SAFETY: a fresh descriptor the kernel just returned, owned by nobody else.
    Ok(unsafe { fs::File::from_raw_fd(fd) })
}

/// overlayfs's handle types (fs/overlayfs/overlayfs.h: OVL_FILEID_V0, OVL_FILEID_V1).
const OVL_FILEID_V0: i32 = 0xfb;
const OVL_FILEID_V1: i32 = 0xf8;

/// The handle of the file underneath, when `h` is an overlayfs handle: overlayfs wraps the
/// real layer's own handle (struct ovl_fb: version, magic 0xfb, length, flags, the inner
/// handle's type, the layer's uuid, then the inner handle's bytes). The V1 wire format puts
/// three bytes of alignment padding in front (struct ovl_fh).
pub(crate) fn overlay_inner(h: &Handle) -> Option<Handle> {
    const HEADER: usize = 5 + 16;
    let fb = match h.handle_type {
        OVL_FILEID_V0 => &h.bytes[..],
        OVL_FILEID_V1 => h.bytes.get(3..)?,
        _ => return None,
    };
    if fb.len() < HEADER || fb[1] != 0xfb {
        return None;
    }
    let len = (fb[2] as usize).min(fb.len());
    (len > HEADER).then(|| Handle {
        handle_type: fb[4] as i32,
        bytes: fb[HEADER..len].to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kit::{hex, unhex};

    #[test]
    fn an_overlay_handle_gives_the_inner_one() {
        // As Linux 6.12 gave it for a file on tmpfs (V1: padding, then struct ovl_fb).
        let wire = unhex(
            "wire",
            "00000000fb210001403bac0586c142129e403f677d21d8a1bf1511d71a01000000000000",
        )
        .unwrap();
        let inner = overlay_inner(&Handle {
            handle_type: OVL_FILEID_V1,
            bytes: wire,
        })
        .unwrap();
        assert_eq!(inner.handle_type, 1);
        assert_eq!(hex(&inner.bytes), "bf1511d71a01000000000000");
        let mut bytes = vec![0u8, 0xfb, 0, 0, 1];
        bytes.extend([7u8; 16]);
        bytes.extend([1, 2, 3, 4, 5, 6, 7, 8]);
        bytes[2] = bytes.len() as u8;
        let inner = overlay_inner(&Handle {
            handle_type: OVL_FILEID_V0,
            bytes: bytes.clone(),
        })
        .unwrap();
        assert_eq!(inner.bytes, vec![1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(
            overlay_inner(&Handle {
                handle_type: 1,
                bytes
            }),
            None
        );
    }
}
