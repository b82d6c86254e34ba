//! A key in root's user keyring holding a secret, readable by its owner uid (user perms
//! view/read/search) and by possessors. Keys are found by a global serial number or by
//! description in the user keyring, which is per uid and per user namespace. Invalidated on Drop.

use super::{random_u32, WorldError};
use nix::errno::Errno;
use std::ffi::CString;

/// keyctl(2) operations and constants (linux/keyctl.h, a stable ABI).
pub mod abi {
    pub const KEY_SPEC_USER_KEYRING: libc::c_long = -4;
    pub const KEYCTL_SETPERM: libc::c_long = 5;
    pub const KEYCTL_SEARCH: libc::c_long = 10;
    pub const KEYCTL_READ: libc::c_long = 11;
    pub const KEYCTL_INVALIDATE: libc::c_long = 21;
    pub const KEY_POS_ALL: u32 = 0x3f00_0000;
    pub const KEY_USR_VIEW: u32 = 0x0001_0000;
    pub const KEY_USR_READ: u32 = 0x0002_0000;
    pub const KEY_USR_SEARCH: u32 = 0x0008_0000;
}

#[derive(Debug)]
pub struct UserKey {
    serial: i32,
    description: String,
}

impl UserKey {
    pub(super) fn add(secret: &str) -> Result<Self, WorldError> {
        let description = format!("breakout:{:08x}", random_u32()?);
        let ktype = c"user";
        let desc = CString::new(description.clone())
            .map_err(|_| WorldError::sys("key description with a NUL byte", Errno::EINVAL))?;
        // SAFETY: type and description are NUL-terminated strings that outlive the call; the
        // payload pointer and length describe `secret`'s bytes.
        let serial = unsafe {
            libc::syscall(
                libc::SYS_add_key,
                ktype.as_ptr(),
                desc.as_ptr(),
                secret.as_ptr(),
                secret.len(),
                abi::KEY_SPEC_USER_KEYRING,
            )
        };
        if serial < 0 {
            let errno = Errno::last();
            return Err(if errno == Errno::ENOSYS {
                WorldError::Unsupported("the kernel has no keyrings (add_key: ENOSYS)".into())
            } else {
                WorldError::sys("add_key(user, @u)", errno)
            });
        }
        let serial =
            i32::try_from(serial).map_err(|_| WorldError::sys("add_key", Errno::ERANGE))?;
        let key = UserKey {
            serial,
            description,
        };
        let perm = abi::KEY_POS_ALL | abi::KEY_USR_VIEW | abi::KEY_USR_READ | abi::KEY_USR_SEARCH;
        // SAFETY: KEYCTL_SETPERM takes a serial and a permission mask, no memory.
        let rc = unsafe { libc::syscall(libc::SYS_keyctl, abi::KEYCTL_SETPERM, serial, perm) };
        if rc < 0 {
            return Err(WorldError::sys("keyctl(KEYCTL_SETPERM)", Errno::last()));
        }
        Ok(key)
    }

    pub fn serial(&self) -> i32 {
        self.serial
    }

    pub fn description(&self) -> &str {
        &self.description
    }
}

impl Drop for UserKey {
    fn drop(&mut self) {
        // SAFETY: KEYCTL_INVALIDATE takes a serial, no memory.
        unsafe { libc::syscall(libc::SYS_keyctl, abi::KEYCTL_INVALIDATE, self.serial) };
    }
}
