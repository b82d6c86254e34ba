//! `BREAKOUT_TRACE_STEPS=1`: where a launch's time goes, one line per setup step on stderr (the
//! payload's stderr once the chain has put it in place), in microseconds since `spawn` began:
//! `breakout-trace: +1234 us supervisor #7 unshare(CLONE_NEWUSER) (user-ns)`. The runtime's own
//! points (plan built, fork, exec reported, payload reaped) come from the caller's process.
//! `breakout sandbox` starts the clock in its first process instead ([`ORIGIN_ENV`], carried
//! through the sealed re-exec), so its lines include what comes before `spawn`: the process
//! starts, the re-exec, the arguments and the profile ([`point`]).
//! Off by default: nothing but one environment lookup per spawn. The lines are written after
//! fork without allocating (a stack buffer and write(2)), like the rest of the child.

use std::os::fd::RawFd;

/// The variable that switches the trace on.
pub const TRACE_ENV: &str = "BREAKOUT_TRACE_STEPS";

/// The launch's clock start (CLOCK_MONOTONIC, nanoseconds), set by [`start_launch_clock`] for
/// the processes a command line goes through before `spawn`.
pub const ORIGIN_ENV: &str = "_BREAKOUT_TRACE_ORIGIN";

/// With the trace on, start the launch's clock now unless an earlier process of this launch
/// started it (the variable is inherited through the re-exec). Call first thing in main, while
/// the process has one thread.
pub fn start_launch_clock() {
    if switched_on(TRACE_ENV) && std::env::var_os(ORIGIN_ENV).is_none() {
        std::env::set_var(ORIGIN_ENV, now_ns().to_string());
    }
}

/// One line of the caller's (`what`), on the launch's clock, when the trace is on.
pub fn point(what: &str) {
    if let Some(t) = Trace::from_env() {
        t.note("runtime", None, what, "");
    }
}

/// The start of one launch; `Copy`, so the forked processes carry it without allocating.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Trace {
    origin_ns: u64,
}

/// An environment switch of the runtime's: set, not empty, not "0".
pub(crate) fn switched_on(var: &str) -> bool {
    std::env::var_os(var).is_some_and(|v| !v.is_empty() && v != "0")
}

/// CLOCK_MONOTONIC in nanoseconds (vDSO; async-signal-safe).
fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

impl Trace {
    /// A trace starting at the launch's clock start, else now, when the environment asks for
    /// one.
    pub(crate) fn from_env() -> Option<Trace> {
        switched_on(TRACE_ENV).then(|| Trace {
            origin_ns: std::env::var(ORIGIN_ENV)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(now_ns),
        })
    }

    /// One line: the time since the origin, who, the step's index (or none) and what.
    pub(crate) fn note(self, who: &str, step: Option<usize>, what: &str, layer: &str) {
        let mut buf = [0u8; 512];
        let mut w = Writer {
            buf: &mut buf,
            len: 0,
        };
        w.put(b"breakout-trace: +");
        w.num(now_ns().saturating_sub(self.origin_ns) / 1000);
        w.put(b" us ");
        w.put(who.as_bytes());
        if let Some(i) = step {
            w.put(b" #");
            w.num(i as u64);
        }
        w.put(b" ");
        w.put(what.as_bytes());
        if !layer.is_empty() {
            w.put(b" (");
            w.put(layer.as_bytes());
            w.put(b")");
        }
        w.end();
        let len = w.len;
        write_all(2, &buf[..len]);
    }
}

/// Appends to a fixed buffer, cutting what does not fit.
struct Writer<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl Writer<'_> {
    fn put(&mut self, b: &[u8]) {
        // Keep room for the newline.
        let room = self.buf.len().saturating_sub(self.len + 1);
        let n = b.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&b[..n]);
        self.len += n;
    }

    /// The newline, in the byte `put` kept free.
    fn end(&mut self) {
        if self.len < self.buf.len() {
            self.buf[self.len] = b'\n';
            self.len += 1;
        }
    }

    fn num(&mut self, mut v: u64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.put(&digits[i..]);
    }
}

fn write_all(fd: RawFd, mut b: &[u8]) {
    while !b.is_empty() {
        // SAFETY: writing from a live slice of the given length.
        let n = unsafe { libc::write(fd, b.as_ptr().cast(), b.len()) };
        if n <= 0 {
            if n < 0 && nix::errno::Errno::last() == nix::errno::Errno::EINTR {
                continue;
            }
            return;
        }
        b = &b[n as usize..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_cut_to_the_buffer_and_ends_with_a_newline() {
        let mut buf = [0u8; 16];
        let mut w = Writer {
            buf: &mut buf,
            len: 0,
        };
        w.put(b"abc ");
        w.num(1234567);
        w.put(b" a very long tail that does not fit");
        w.end();
        assert_eq!(&buf[..], b"abc 1234567 a v\n");
    }
}
