//! fd-hygiene: only 0, 1 and 2 reach the payload (close_range, with a fallback that closes what
//! /proc/self/fd lists when close_range answers ENOSYS), and the working directory must lie
//! inside the sandbox root.
//!
//! The fallback matters because ENOSYS is not only an old kernel's answer: a seccomp profile can
//! give it too, and by the time fd-hygiene runs the rlimits layer may have lowered
//! RLIMIT_NOFILE below descriptors the caller left open. Closing "up to the limit" would then
//! stop short (an inherited fd 2000 reached the payload under nofile = 256), so the fallback
//! closes by listing, and without /proc up to the highest limit the process ever had.

use crate::layer::Layer;
use crate::step::{Op, Step};
use nix::errno::Errno;
use std::sync::atomic::{AtomicU64, Ordering};

pub(crate) fn steps() -> Vec<Step> {
    let l = Some(Layer::FdHygiene);
    vec![
        Step::new(l, "close_range(3, ~0)", Op::CloseFrom { keep: -1 }),
        Step::new(
            l,
            "getcwd() (working directory inside the root)",
            Op::CheckCwd,
        ),
    ]
}

/// RLIMIT_NOFILE's hard limit as the payload process inherited it, before the rlimits layer
/// lowered it: no inherited descriptor can lie above the larger of it and the current limit
/// (a descriptor's number is below the limit in force when it was created, and only root can
/// raise a hard limit again, which the runtime does not do after this point).
static INHERITED_NOFILE: AtomicU64 = AtomicU64::new(0);

/// Remember the inherited descriptor limit; called first thing in the payload process.
pub(crate) fn note_inherited_limit() {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one struct rlimit we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } == 0 {
        INHERITED_NOFILE.store(rl.rlim_cur.max(rl.rlim_max), Ordering::Relaxed);
    }
}

/// Close every descriptor in `first..=last` without close_range: the numbers /proc/self/fd
/// lists (its own descriptor excepted), or, when /proc cannot be listed, every number up to
/// the highest descriptor limit this process had.
pub(crate) fn close_without_close_range(first: u32, last: u32) -> Result<(), Errno> {
    if first > last {
        return Ok(());
    }
    match close_listed(first, last) {
        Ok(()) => Ok(()),
        Err(_) => {
            close_by_number(first, last.min(ceiling()));
            Ok(())
        }
    }
}

/// One above the highest descriptor number that can exist in this process.
fn ceiling() -> u32 {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one struct rlimit we own.
    let now = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } == 0 {
        rl.rlim_cur.max(rl.rlim_max)
    } else {
        0
    };
    let top = now.max(INHERITED_NOFILE.load(Ordering::Relaxed)).max(1024);
    // RLIM_INFINITY or a value past the fd table's real bound: the kernel's fs.nr_open cannot
    // exceed INT_MAX rounded down, so no descriptor number is larger.
    u32::try_from(top.min(i32::MAX as u64)).unwrap_or(i32::MAX as u32)
}

fn close_by_number(first: u32, end: u32) {
    for fd in first..end.max(first) {
        // SAFETY: closing descriptors by number; EBADF for unused numbers is expected.
        unsafe { libc::close(fd as i32) };
    }
}

fn close_listed(first: u32, last: u32) -> Result<(), Errno> {
    // SAFETY: a NUL-terminated literal path; the descriptor is ours and closed below.
    let dir = unsafe {
        libc::open(
            c"/proc/self/fd".as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if dir < 0 {
        return Err(Errno::last());
    }
    let res = close_listed_in(dir, first, last);
    // SAFETY: closing the directory descriptor opened above.
    unsafe { libc::close(dir) };
    res
}

/// Reads the listing with raw getdents64 into a stack buffer (no allocation between fork and
/// exec) and closes what it names; repeats from the start until a pass closes nothing, so
/// closing while the kernel walks the table cannot hide an entry.
fn close_listed_in(dir: i32, first: u32, last: u32) -> Result<(), Errno> {
    let mut buf = [0u8; 4096];
    loop {
        let mut closed = false;
        // SAFETY: rewinding a directory descriptor we own.
        if unsafe { libc::lseek(dir, 0, libc::SEEK_SET) } < 0 {
            return Err(Errno::last());
        }
        loop {
            // SAFETY: the kernel writes at most buf.len() bytes of dirent64 records into buf.
            let n =
                unsafe { libc::syscall(libc::SYS_getdents64, dir, buf.as_mut_ptr(), buf.len()) };
            if n < 0 {
                return Err(Errno::last());
            }
            if n == 0 {
                break;
            }
            for fd in dirent_numbers(&buf[..n as usize]) {
                if fd != dir && (first..=last).contains(&(fd as u32)) {
                    // SAFETY: closing a descriptor the listing named; not the listing's own.
                    unsafe { libc::close(fd) };
                    closed = true;
                }
            }
        }
        if !closed {
            return Ok(());
        }
    }
}

/// The descriptor numbers in a getdents64 buffer (`.` and `..` are not numbers and drop out).
/// Layout: d_ino u64, d_off i64, d_reclen u16, d_type u8, then the NUL-terminated name.
fn dirent_numbers(buf: &[u8]) -> impl Iterator<Item = i32> + '_ {
    let mut off = 0usize;
    std::iter::from_fn(move || {
        while off + 19 <= buf.len() {
            let reclen = u16::from_ne_bytes([buf[off + 16], buf[off + 17]]) as usize;
            if reclen == 0 || off + reclen > buf.len() {
                return None;
            }
            let name = &buf[off + 19..off + reclen];
            off += reclen;
            let name = &name[..name.iter().position(|b| *b == 0).unwrap_or(name.len())];
            if !name.is_empty() && name.iter().all(u8::is_ascii_digit) && name.len() <= 10 {
                let v = name
                    .iter()
                    .fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0'));
                if let Ok(fd) = i32::try_from(v) {
                    return Some(fd);
                }
            }
        }
        None
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str) -> Vec<u8> {
        let mut r = vec![0u8; 19];
        r.extend_from_slice(name.as_bytes());
        r.push(0);
        while r.len() % 8 != 0 {
            r.push(0);
        }
        let len = r.len() as u16;
        r[16..18].copy_from_slice(&len.to_ne_bytes());
        r
    }

    #[test]
    fn dirent_numbers_reads_names_and_skips_dots() {
        let mut buf = Vec::new();
        for n in [".", "..", "0", "2000", "x1", "2147483648"] {
            buf.extend(record(n));
        }
        assert_eq!(dirent_numbers(&buf).collect::<Vec<_>>(), vec![0, 2000]);
        // A truncated record ends the walk instead of reading past the buffer.
        let cut = &buf[..buf.len() - 3];
        assert_eq!(dirent_numbers(cut).collect::<Vec<_>>(), vec![0, 2000]);
    }

    /// In this (multi-threaded test) process only descriptors it opened itself are touched.
    #[test]
    fn listing_closes_the_range_and_nothing_else() {
        let open = || {
            // SAFETY: opening /dev/null; the descriptor is closed by the code under test or below.
            unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY) }
        };
        // SAFETY: dup2 onto numbers far above what the test harness uses.
        let (a, b, keep) = unsafe {
            let f = open();
            let r = (
                libc::dup2(f, 1500),
                libc::dup2(f, 1501),
                libc::dup2(f, 1502),
            );
            libc::close(f);
            r
        };
        assert_eq!((a, b, keep), (1500, 1501, 1502));
        close_without_close_range(1500, 1501).unwrap();
        let alive = |fd| {
            // SAFETY: F_GETFD only queries the descriptor.
            unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
        };
        assert!(!alive(1500) && !alive(1501));
        assert!(alive(1502), "outside the range");
        // SAFETY: closing the descriptor this test kept.
        unsafe { libc::close(1502) };
    }
}
