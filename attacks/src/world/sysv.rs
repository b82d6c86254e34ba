//! SysV IPC objects of the outside: a shared memory segment and a message queue with random keys,
//! mode 0600 (owner root), each holding a secret. IPC objects belong to the IPC namespace, so a
//! payload in its own (ipc-ns) cannot find them by key. Removed on Drop.

use super::{random_u32, WorldError};
use nix::errno::Errno;

/// The message type the queue's secret is sent with.
pub const SYSV_MSG_TYPE: libc::c_long = 1;

/// Size of the shared segment (the secret and a NUL fit easily).
pub const SYSV_SHM_SIZE: usize = 4096;

fn random_key() -> Result<libc::key_t, WorldError> {
    // Keys are positive and never IPC_PRIVATE (0).
    let key = (random_u32()? & 0x7fff_ffff) as libc::key_t;
    Ok(if key == 0 { 0x6272_6b6f } else { key })
}

/// A shared memory segment holding a secret.
#[derive(Debug)]
pub struct SysvShm {
    key: libc::key_t,
    id: libc::c_int,
}

impl SysvShm {
    pub(super) fn create(secret: &str) -> Result<Self, WorldError> {
        if secret.len() >= SYSV_SHM_SIZE {
            return Err(WorldError::sys(
                "secret too long for the segment",
                Errno::E2BIG,
            ));
        }
        let key = random_key()?;
        // SAFETY: shmget takes plain integers.
        let id =
            unsafe { libc::shmget(key, SYSV_SHM_SIZE, libc::IPC_CREAT | libc::IPC_EXCL | 0o600) };
        if id < 0 {
            return Err(WorldError::sys(format!("shmget({key:#x})"), Errno::last()));
        }
        let shm = SysvShm { key, id };
        // SAFETY: attaching a segment we just created at an address the kernel picks.
        let addr = unsafe { libc::shmat(id, std::ptr::null(), 0) };
        if addr as isize == -1 {
            return Err(WorldError::sys(format!("shmat({id})"), Errno::last()));
        }
        // SAFETY: the segment is SYSV_SHM_SIZE bytes, mapped writable at `addr`, and the secret
        // is shorter than that (checked above); nothing else maps it yet.
        unsafe {
            std::ptr::copy_nonoverlapping(secret.as_ptr(), addr.cast::<u8>(), secret.len());
        }
        // SAFETY: detaching the mapping made above; no reference into it outlives this line.
        if unsafe { libc::shmdt(addr) } != 0 {
            return Err(WorldError::sys("shmdt", Errno::last()));
        }
        Ok(shm)
    }

    pub fn key(&self) -> libc::key_t {
        self.key
    }
}

impl Drop for SysvShm {
    fn drop(&mut self) {
        // SAFETY: IPC_RMID takes no buffer.
        unsafe { libc::shmctl(self.id, libc::IPC_RMID, std::ptr::null_mut()) };
    }
}

#[repr(C)]
struct MsgBuf {
    mtype: libc::c_long,
    mtext: [u8; 256],
}

/// A message queue holding one message (type [`SYSV_MSG_TYPE`]) with a secret.
#[derive(Debug)]
pub struct SysvMsg {
    key: libc::key_t,
    id: libc::c_int,
}

impl SysvMsg {
    pub(super) fn create(secret: &str) -> Result<Self, WorldError> {
        let mut buf = MsgBuf {
            mtype: SYSV_MSG_TYPE,
            mtext: [0; 256],
        };
        if secret.len() > buf.mtext.len() {
            return Err(WorldError::sys(
                "secret too long for a message",
                Errno::E2BIG,
            ));
        }
        buf.mtext[..secret.len()].copy_from_slice(secret.as_bytes());
        let key = random_key()?;
        // SAFETY: msgget takes plain integers.
        let id = unsafe { libc::msgget(key, libc::IPC_CREAT | libc::IPC_EXCL | 0o600) };
        if id < 0 {
            return Err(WorldError::sys(format!("msgget({key:#x})"), Errno::last()));
        }
        let queue = SysvMsg { key, id };
        // SAFETY: `buf` is a valid msgbuf (long type, then text) of at least secret.len() text
        // bytes; the kernel copies them out before returning.
        let rc = unsafe {
            libc::msgsnd(
                id,
                (&buf as *const MsgBuf).cast(),
                secret.len(),
                libc::IPC_NOWAIT,
            )
        };
        if rc != 0 {
            return Err(WorldError::sys("msgsnd", Errno::last()));
        }
        Ok(queue)
    }

    pub fn key(&self) -> libc::key_t {
        self.key
    }
}

impl Drop for SysvMsg {
    fn drop(&mut self) {
        // SAFETY: IPC_RMID takes no buffer.
        unsafe { libc::msgctl(self.id, libc::IPC_RMID, std::ptr::null_mut()) };
    }
}
