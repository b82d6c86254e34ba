//! The parent/child protocol over a SOCK_SEQPACKET socketpair: fixed 16-byte records, so every
//! message arrives whole or not at all. The supervisor reports the user-namespace rendezvous,
//! the payload's pid, a setup failure (step index + errno), a successful exec and the payload's
//! wait status; the parent answers `Go` once the id maps are written.

use nix::errno::Errno;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Msg {
    UserNsReady,
    Go,
    PayloadPid(libc::pid_t),
    Failure {
        step: u32,
        errno: i32,
    },
    ExecOk,
    /// The raw wait status of the payload.
    Exited(i32),
}

impl Msg {
    fn encode(self) -> [u8; 16] {
        let (kind, a, b): (u32, i32, i32) = match self {
            Msg::UserNsReady => (1, 0, 0),
            Msg::Go => (2, 0, 0),
            Msg::PayloadPid(p) => (3, p, 0),
            Msg::Failure { step, errno } => (4, step as i32, errno),
            Msg::ExecOk => (5, 0, 0),
            Msg::Exited(s) => (6, s, 0),
        };
        let mut buf = [0u8; 16];
        buf[..4].copy_from_slice(&kind.to_ne_bytes());
        buf[4..8].copy_from_slice(&a.to_ne_bytes());
        buf[8..12].copy_from_slice(&b.to_ne_bytes());
        buf
    }

    fn decode(buf: &[u8; 16]) -> Option<Msg> {
        let word = |i: usize| i32::from_ne_bytes([buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]);
        let (kind, a, b) = (word(0), word(4), word(8));
        Some(match kind {
            1 => Msg::UserNsReady,
            2 => Msg::Go,
            3 => Msg::PayloadPid(a),
            4 => Msg::Failure {
                step: a as u32,
                errno: b,
            },
            5 => Msg::ExecOk,
            6 => Msg::Exited(a),
            _ => return None,
        })
    }
}

/// Send one record; errors are ignored by design in the child (the parent notices EOF).
pub(crate) fn send(fd: RawFd, msg: Msg) -> bool {
    let buf = msg.encode();
    loop {
        // SAFETY: sending a stack buffer of its own length.
        let n = unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL) };
        if n < 0 && Errno::last() == Errno::EINTR {
            continue;
        }
        return n == buf.len() as isize;
    }
}

/// Receive one record, blocking. `None` on EOF or error.
pub(crate) fn recv_blocking(fd: RawFd) -> Option<Msg> {
    let mut buf = [0u8; 16];
    loop {
        // SAFETY: receiving into a stack buffer of its own length.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 && Errno::last() == Errno::EINTR {
            continue;
        }
        if n != buf.len() as isize {
            return None;
        }
        return Msg::decode(&buf);
    }
}

/// What waiting for a record gave.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Recv {
    Msg(Msg),
    /// The other side closed (or sent garbage).
    Closed,
    TimedOut,
}

/// Receive one record within `timeout` (`None`: wait forever).
pub(crate) fn recv_timeout(fd: RawFd, timeout: Option<Duration>) -> Recv {
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        let wait_ms: i32 = match deadline {
            None => -1,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                i32::try_from(left.as_millis()).unwrap_or(i32::MAX)
            }
        };
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, wait_ms) };
        if r < 0 {
            if Errno::last() == Errno::EINTR {
                continue;
            }
            return Recv::Closed;
        }
        if r == 0 {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Recv::TimedOut;
            }
            continue;
        }
        return match recv_blocking(fd) {
            Some(m) => Recv::Msg(m),
            None => Recv::Closed,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        for m in [
            Msg::UserNsReady,
            Msg::Go,
            Msg::PayloadPid(4242),
            Msg::Failure { step: 7, errno: 22 },
            Msg::ExecOk,
            Msg::Exited(0x0900),
        ] {
            assert_eq!(Msg::decode(&m.encode()), Some(m));
        }
        assert_eq!(Msg::decode(&[0xff; 16]), None);
    }
}
