//! The parent/child protocol over a SOCK_SEQPACKET socketpair: fixed 16-byte records, so every
//! message arrives whole or not at all. The supervisor reports the user-namespace rendezvous,
//! the payload's pid, a setup failure (step index + errno), a successful exec and the payload's
//! wait status; the parent answers `Go` once the id maps are written.
//!
//! One record has a variable length: the parent's `prepared` record after the fork (a 16-byte
//! header, then the seccomp program's instructions, none when the parent compiled nothing),
//! read by the payload process's `AwaitPrepared` step. The supervisor reads nothing from the
//! socket after `Go`, so the payload is the only reader then.

use crate::seccomp::compile::BPF_MAXINSNS;
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

/// The kind of the prepared record (after the fixed records' kinds).
const PREPARED: u32 = 7;
const HEADER: usize = 16;
/// The largest prepared record: the header and BPF_MAXINSNS instructions.
pub(crate) const PREPARED_MAX: usize = HEADER + BPF_MAXINSNS * INSN;
const INSN: usize = std::mem::size_of::<libc::sock_filter>();

/// Send the prepared record: the header (kind, instruction count) and `program`'s instructions.
pub(crate) fn send_prepared(fd: RawFd, program: &[libc::sock_filter]) -> Result<(), Errno> {
    if program.len() > BPF_MAXINSNS {
        return Err(Errno::E2BIG);
    }
    let mut buf = Vec::with_capacity(HEADER + program.len() * INSN);
    buf.extend_from_slice(&PREPARED.to_ne_bytes());
    buf.extend_from_slice(&(program.len() as u32).to_ne_bytes());
    buf.resize(HEADER, 0);
    for i in program {
        buf.extend_from_slice(&i.code.to_ne_bytes());
        buf.push(i.jt);
        buf.push(i.jf);
        buf.extend_from_slice(&i.k.to_ne_bytes());
    }
    loop {
        // SAFETY: sending a live buffer of its own length.
        let n = unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL) };
        if n < 0 {
            match Errno::last() {
                Errno::EINTR => continue,
                e => return Err(e),
            }
        }
        // A datagram socket sends a record whole or fails.
        return if n as usize == buf.len() {
            Ok(())
        } else {
            Err(Errno::EMSGSIZE)
        };
    }
}

/// Wait at most `timeout` for the prepared record and check it: the right kind, a length that is
/// the header plus whole instructions, as many as the header says, at most BPF_MAXINSNS, and a
/// program exactly when `program` asks for one. Its instructions (none without a program) go to
/// `bufs.program`. ETIMEDOUT when nothing came, EPIPE on EOF, EPROTO/EINVAL/E2BIG for a
/// malformed record.
///
/// Nothing is allocated here: the payload waits after the rlimits layer ran, when a data limit
/// may leave no room for an allocation (its failure would kill the payload with a signal, told
/// as the command's own). `bufs` was made before the chain ran ([`PreparedBuffers::new`]).
pub(crate) fn recv_prepared(
    fd: RawFd,
    timeout: Duration,
    program: bool,
    bufs: &mut PreparedBuffers,
) -> Result<(), Errno> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let r = unsafe {
            libc::poll(
                &mut pfd,
                1,
                i32::try_from(left.as_millis()).unwrap_or(i32::MAX),
            )
        };
        if r < 0 {
            match Errno::last() {
                Errno::EINTR => continue,
                e => return Err(e),
            }
        }
        if r > 0 {
            break;
        }
        if Instant::now() >= deadline {
            return Err(Errno::ETIMEDOUT);
        }
    }
    // One byte more than the largest record: MSG_TRUNC makes recv return a record's real length.
    let buf = &mut bufs.record[..];
    let n = loop {
        // SAFETY: receiving into a live buffer of its own length.
        let n = unsafe {
            libc::recv(
                fd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_TRUNC | libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            match Errno::last() {
                Errno::EINTR => continue,
                e => return Err(e),
            }
        }
        break n as usize;
    };
    let len = n.min(buf.len());
    decode_prepared(&bufs.record[..len], n, program, &mut bufs.program)
}

/// The payload's buffers for the prepared record, made before the chain runs (see
/// [`recv_prepared`]): the record, and the program taken out of it.
pub(crate) struct PreparedBuffers {
    record: Vec<u8>,
    /// The instructions of the last record received.
    pub(crate) program: Vec<libc::sock_filter>,
}

impl PreparedBuffers {
    pub(crate) fn new() -> Self {
        PreparedBuffers {
            record: vec![0u8; PREPARED_MAX + 1],
            program: Vec::with_capacity(BPF_MAXINSNS),
        }
    }
}

/// Checks one prepared record of `len` bytes (`rec` holds what fit in the buffer) and puts its
/// instructions into `out`, within the room it has (never more than BPF_MAXINSNS: checked).
fn decode_prepared(
    rec: &[u8],
    len: usize,
    program: bool,
    out: &mut Vec<libc::sock_filter>,
) -> Result<(), Errno> {
    out.clear();
    if len == 0 {
        return Err(Errno::EPIPE); // EOF: the parent is gone
    }
    if len > PREPARED_MAX {
        return Err(Errno::E2BIG);
    }
    if len < HEADER || !(len - HEADER).is_multiple_of(INSN) {
        return Err(Errno::EINVAL);
    }
    let word = |i: usize| u32::from_ne_bytes([rec[i], rec[i + 1], rec[i + 2], rec[i + 3]]);
    if word(0) != PREPARED {
        return Err(Errno::EPROTO);
    }
    let count = word(4) as usize;
    if count != (len - HEADER) / INSN || (count > 0) != program {
        return Err(Errno::EINVAL);
    }
    if count > out.capacity() {
        return Err(Errno::E2BIG);
    }
    out.extend(
        rec[HEADER..len]
            .chunks_exact(INSN)
            .map(|c| libc::sock_filter {
                code: u16::from_ne_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
            }),
    );
    Ok(())
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

    /// recv_prepared with fresh buffers: the instructions received.
    fn recv(fd: RawFd, timeout: Duration, program: bool) -> Result<Vec<libc::sock_filter>, Errno> {
        let mut bufs = PreparedBuffers::new();
        recv_prepared(fd, timeout, program, &mut bufs).map(|()| bufs.program)
    }

    fn pair() -> (std::os::fd::OwnedFd, std::os::fd::OwnedFd) {
        use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
        socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .unwrap()
    }

    fn insn(k: u32) -> libc::sock_filter {
        libc::sock_filter {
            code: 0x06,
            jt: 1,
            jf: 2,
            k,
        }
    }

    #[test]
    fn the_prepared_record_carries_the_program_whole() {
        use std::os::fd::AsRawFd;
        let (a, b) = pair();
        let prog: Vec<_> = (0..BPF_MAXINSNS as u32).map(insn).collect();
        send_prepared(a.as_raw_fd(), &prog).unwrap();
        let got = recv(b.as_raw_fd(), Duration::from_secs(5), true).unwrap();
        assert_eq!(got.len(), prog.len());
        assert!(got
            .iter()
            .zip(&prog)
            .all(|(x, y)| (x.code, x.jt, x.jf, x.k) == (y.code, y.jt, y.jf, y.k)));
        // Nothing to carry: an empty record, and a program where none was expected is refused.
        send_prepared(a.as_raw_fd(), &[]).unwrap();
        assert!(recv(b.as_raw_fd(), Duration::from_secs(5), false)
            .unwrap()
            .is_empty());
        send_prepared(a.as_raw_fd(), &prog[..3]).unwrap();
        assert!(matches!(
            recv(b.as_raw_fd(), Duration::from_secs(5), false),
            Err(Errno::EINVAL)
        ));
        let too_long = vec![insn(0); BPF_MAXINSNS + 1];
        assert_eq!(send_prepared(a.as_raw_fd(), &too_long), Err(Errno::E2BIG));
    }

    #[test]
    fn a_prepared_record_that_never_comes_or_is_malformed_is_an_error() {
        use std::os::fd::AsRawFd;
        let (a, b) = pair();
        let t = Duration::from_millis(50);
        let started = Instant::now();
        assert!(matches!(
            recv(b.as_raw_fd(), t, true),
            Err(Errno::ETIMEDOUT)
        ));
        assert!(started.elapsed() >= t);
        let raw = |bytes: &[u8]| {
            // SAFETY: sending a live buffer of its own length.
            let n = unsafe { libc::send(a.as_raw_fd(), bytes.as_ptr().cast(), bytes.len(), 0) };
            assert_eq!(n, bytes.len() as isize);
        };
        let header = |kind: u32, count: u32| {
            let mut h = [0u8; HEADER];
            h[..4].copy_from_slice(&kind.to_ne_bytes());
            h[4..8].copy_from_slice(&count.to_ne_bytes());
            h
        };
        // Not a whole number of instructions.
        let mut rec = header(PREPARED, 1).to_vec();
        rec.extend_from_slice(&[0u8; 7]);
        raw(&rec);
        assert!(matches!(recv(b.as_raw_fd(), t, true), Err(Errno::EINVAL)));
        // A count that does not match the length.
        let mut rec = header(PREPARED, 2).to_vec();
        rec.extend_from_slice(&[0u8; 8]);
        raw(&rec);
        assert!(matches!(recv(b.as_raw_fd(), t, true), Err(Errno::EINVAL)));
        // Another kind of record.
        raw(&Msg::Go.encode());
        assert!(matches!(recv(b.as_raw_fd(), t, false), Err(Errno::EPROTO)));
        // More than BPF_MAXINSNS instructions.
        let mut rec = header(PREPARED, BPF_MAXINSNS as u32 + 1).to_vec();
        rec.resize(HEADER + (BPF_MAXINSNS + 1) * INSN, 0);
        raw(&rec);
        assert!(matches!(recv(b.as_raw_fd(), t, true), Err(Errno::E2BIG)));
        // The parent gone: EOF.
        drop(a);
        assert!(matches!(recv(b.as_raw_fd(), t, true), Err(Errno::EPIPE)));
    }
}
