//! io-uring: open and read an outside file through an io_uring, not through open(2)/read(2).

use crate::kit::{judge_by_secret, parse_or_report, plant_canary_file};
use crate::world::{Planted, World};
use crate::{
    kv, Arrangement, InsideReport, Judgement, Layer, Limits, Probe, ProbeClass, ProbeError,
    ProbeMeta, RunObservation, Steps,
};
use nix::errno::Errno;
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

const IORING_OP_OPENAT: u8 = 18;
const IORING_OP_READ: u8 = 22;
const IORING_ENTER_GETEVENTS: u32 = 1;
const IORING_OFF_SQ_RING: i64 = 0;
const IORING_OFF_CQ_RING: i64 = 0x800_0000;
const IORING_OFF_SQES: i64 = 0x1000_0000;
const SQE_SIZE: usize = 64;
const CQE_SIZE: usize = 16;
const ENTRIES: u32 = 4;

static META: ProbeMeta = ProbeMeta {
    id: "io-uring",
    title: "Open and read a file through io_uring",
    technique: "io_uring performs system calls' work (openat, read, connect, ...) from a shared \
        ring: the operations never pass the seccomp filter, which only sees io_uring_setup and \
        io_uring_enter. A filter that denies openat but allows io_uring is therefore no filter \
        at all, and the subsystem itself has been a rich source of kernel bugs. The inside opens \
        and reads a secret file of the outside only through ring operations.",
    oracle: "The inside reports the secret of a root-only file in the outside's world directory, \
        read through the ring.",
    layers: &[
        Layer::Seccomp,
        Layer::MountNs,
        Layer::Uid,
        Layer::UserNs,
        Layer::Landlock,
    ],
    references: &[
        "moby#46762 (Docker's default seccomp profile blocks io_uring)",
        "kernel.io_uring_disabled (6.6+); Google's 2023 io_uring restrictions",
    ],
    class: ProbeClass::Plain,
};

pub struct IoUring;

struct State {
    _file: Planted,
    secret: String,
}

impl Probe for IoUring {
    fn meta(&self) -> &'static ProbeMeta {
        &META
    }

    fn arrange(&self, world: &World, _limits: &Limits) -> Result<Arrangement, ProbeError> {
        let id = META.id;
        let (file, secret) = plant_canary_file(world, id, "io-uring-canary")?;
        Ok(Arrangement::new(
            vec![kv("path", file.path().display())],
            State {
                _file: file,
                secret,
            },
        ))
    }

    fn attempt(&self, args: &[String]) -> InsideReport {
        let mut steps = Steps::new(META.id);
        if let Some(path) = parse_or_report(&mut steps, args, |a| Ok(PathBuf::from(a.str("path")?)))
        {
            attempt(&mut steps, &path);
        }
        steps.finish()
    }

    fn judge(&self, _world: &World, arrangement: Arrangement, run: &RunObservation) -> Judgement {
        judge_by_secret(
            &arrangement,
            run,
            META.id,
            |s: &State| &s.secret,
            "the canary read through io_uring",
        )
    }
}

fn attempt(steps: &mut Steps, path: &Path) {
    let Some(ring) = steps.call(
        "set up a ring",
        format!("io_uring_setup({ENTRIES})"),
        || Ring::new(ENTRIES),
    ) else {
        return;
    };
    let Ok(c_path) = CString::new(path.as_os_str().as_bytes()) else {
        steps.bad_args("argument `path` contains a NUL byte");
        return;
    };
    let fd = steps.call(
        "open the canary through the ring",
        format!("IORING_OP_OPENAT({})", path.display()),
        || {
            let mut sqe = [0u8; SQE_SIZE];
            sqe[0] = IORING_OP_OPENAT;
            sqe[4..8].copy_from_slice(&libc::AT_FDCWD.to_ne_bytes());
            sqe[16..24].copy_from_slice(&(c_path.as_ptr() as u64).to_ne_bytes());
            sqe[28..32].copy_from_slice(&((libc::O_RDONLY | libc::O_CLOEXEC) as u32).to_ne_bytes());
            let res = ring.run(&sqe)?;
            // SAFETY: a successful OPENAT returns a fresh descriptor in our table.
            Ok(unsafe { OwnedFd::from_raw_fd(res) })
        },
    );
    let Some(fd) = fd else { return };
    let mut buf = vec![0u8; 4096];
    let read = steps.call(
        "read it through the ring",
        format!("IORING_OP_READ(fd {})", fd.as_raw_fd()),
        || {
            let mut sqe = [0u8; SQE_SIZE];
            sqe[0] = IORING_OP_READ;
            sqe[4..8].copy_from_slice(&fd.as_raw_fd().to_ne_bytes());
            sqe[16..24].copy_from_slice(&(buf.as_mut_ptr() as u64).to_ne_bytes());
            sqe[24..28].copy_from_slice(&(buf.len() as u32).to_ne_bytes());
            ring.run(&sqe)
        },
    );
    if let Some(n) = read {
        let n = (n as usize).min(buf.len());
        steps.data(String::from_utf8_lossy(&buf[..n]).trim().to_string());
    }
}

/// One mmap'ed region of the ring, unmapped on Drop.
struct Mapping {
    ptr: *mut u8,
    len: usize,
}

impl Mapping {
    fn new(fd: &OwnedFd, len: usize, offset: i64) -> Result<Mapping, Errno> {
        // SAFETY: a fresh shared mapping of the ring fd at a kernel-chosen address; the kernel
        // checks length and offset against the ring it set up.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd.as_raw_fd(),
                offset,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(Errno::last());
        }
        Ok(Mapping {
            ptr: ptr.cast(),
            len,
        })
    }

    /// The u32 at byte offset `at`, as an atomic (ring heads and tails are shared with the
    /// kernel).
    fn atomic(&self, at: u32) -> Result<&AtomicU32, Errno> {
        let at = at as usize;
        if at + 4 > self.len || at % 4 != 0 {
            return Err(Errno::EFAULT);
        }
        // SAFETY: in bounds and 4-aligned (checked; mmap is page-aligned); AtomicU32 has the
        // layout of u32, and the kernel only accesses these words atomically too.
        Ok(unsafe { &*(self.ptr.add(at) as *const AtomicU32) })
    }

    fn write(&self, at: usize, bytes: &[u8]) -> Result<(), Errno> {
        if at + bytes.len() > self.len {
            return Err(Errno::EFAULT);
        }
        // SAFETY: the range is inside the mapping (checked); the kernel reads the slot only
        // after we publish it through the tail below.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.ptr.add(at), bytes.len()) };
        Ok(())
    }

    fn read_i32(&self, at: usize) -> Result<i32, Errno> {
        if at + 4 > self.len {
            return Err(Errno::EFAULT);
        }
        let mut b = [0u8; 4];
        // SAFETY: the range is inside the mapping (checked); the kernel published the CQE
        // before moving the tail we read with Acquire.
        unsafe { std::ptr::copy_nonoverlapping(self.ptr.add(at), b.as_mut_ptr(), 4) };
        Ok(i32::from_ne_bytes(b))
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what mmap returned; no reference into it outlives Drop.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

/// A minimal io_uring: one operation at a time, submitted and waited for.
struct Ring {
    sq: Mapping,
    cq: Mapping,
    sqes: Mapping,
    // Declared last: the mappings go before the descriptor.
    fd: OwnedFd,
    p: [u32; 30],
}

impl crate::report::StepValue for Ring {
    fn step_value(&self) -> i64 {
        i64::from(self.fd.as_raw_fd())
    }
}

impl Ring {
    fn new(entries: u32) -> Result<Ring, Errno> {
        // struct io_uring_params: 120 bytes of u32/u64 fields, zeroed on input.
        let mut p = [0u32; 30];
        // SAFETY: p is a writable 120-byte io_uring_params.
        let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, entries, p.as_mut_ptr()) };
        let fd = Errno::result(fd)? as i32;
        // SAFETY: a fresh descriptor the kernel just returned, owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let (sq_entries, cq_entries) = (p[0] as usize, p[1] as usize);
        // sq_off starts at u32 index 10 (byte 40), cq_off at index 20 (byte 80).
        let sq_array = p[16] as usize;
        let cqes = p[25] as usize;
        let sq = Mapping::new(&fd, sq_array + sq_entries * 4, IORING_OFF_SQ_RING)?;
        let cq = Mapping::new(&fd, cqes + cq_entries * CQE_SIZE, IORING_OFF_CQ_RING)?;
        let sqes = Mapping::new(&fd, sq_entries * SQE_SIZE, IORING_OFF_SQES)?;
        Ok(Ring {
            sq,
            cq,
            sqes,
            fd,
            p,
        })
    }

    /// Submits one SQE, waits for its completion and returns its result (negative = errno).
    fn run(&self, sqe: &[u8; SQE_SIZE]) -> Result<i32, Errno> {
        let p = &self.p;
        let (sq_tail, sq_mask, sq_array) = (p[11], p[12], p[16]);
        let (cq_head, cq_tail, cq_mask, cqes) = (p[20], p[21], p[22], p[25] as usize);
        let mask = self.sq.atomic(sq_mask)?.load(Ordering::Relaxed);
        let tail = self.sq.atomic(sq_tail)?.load(Ordering::Acquire);
        let index = tail & mask;
        self.sqes.write(index as usize * SQE_SIZE, sqe)?;
        self.sq
            .write(sq_array as usize + index as usize * 4, &index.to_ne_bytes())?;
        self.sq
            .atomic(sq_tail)?
            .store(tail.wrapping_add(1), Ordering::Release);
        // SAFETY: io_uring_enter takes integers and a null signal mask.
        let r = unsafe {
            libc::syscall(
                libc::SYS_io_uring_enter,
                self.fd.as_raw_fd(),
                1u32,
                1u32,
                IORING_ENTER_GETEVENTS,
                std::ptr::null::<libc::sigset_t>(),
                0usize,
            )
        };
        Errno::result(r)?;
        let head = self.cq.atomic(cq_head)?.load(Ordering::Acquire);
        if head == self.cq.atomic(cq_tail)?.load(Ordering::Acquire) {
            return Err(Errno::EAGAIN);
        }
        let cmask = self.cq.atomic(cq_mask)?.load(Ordering::Relaxed);
        let res = self
            .cq
            .read_i32(cqes + (head & cmask) as usize * CQE_SIZE + 8)?;
        self.cq
            .atomic(cq_head)?
            .store(head.wrapping_add(1), Ordering::Release);
        if res < 0 {
            return Err(Errno::from_raw(-res));
        }
        Ok(res)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kit::testing::{judge_needs_the_secret, temp_world};

    #[test]
    fn judge_escapes_only_with_the_secret() {
        let (_dir, world) = temp_world();
        judge_needs_the_secret(&IoUring, &world, |s: &State| s.secret.clone());
    }

    #[test]
    fn reads_a_file_through_the_ring_where_the_kernel_allows_it() {
        // io_uring reads our own temp file: harmless anywhere. Kernels without io_uring (or a
        // filter denying it) fail at setup, and then no read may be claimed.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, "ring-read-works").unwrap();
        let report = IoUring.attempt(&[format!("path={}", path.display())]);
        let setup = &report.steps[0];
        if setup.succeeded() {
            assert!(report.data_contains("ring-read-works"), "{report:?}");
        } else {
            assert!(!report.data_contains("ring-read-works"));
        }
    }
}
