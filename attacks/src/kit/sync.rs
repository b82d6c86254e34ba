//! A channel between the outside and the inside half that carries timing only, never a verdict.
//!
//! A blocked network attempt used to be a fixed window in which nothing happened: the inside
//! listened or sniffed for seconds, waiting for an outside that could not reach it. With this
//! channel the inside says when what it set up can be tried ("ready"); the outside then makes
//! attempts whose result the kernel fixes at once (a loopback connect is accepted or refused; a
//! datagram the outside got back has passed every tap of its network namespace) and releases
//! the inside. The verdict still comes only from the outside's oracle: a payload that lies on
//! the channel changes when the outside looks, not what it sees, and an outside that never
//! releases leaves the inside to the launch's timeout (inconclusive), never to "blocked".
//!
//! The channel is a unix stream socket pair. The inside's end reaches the payload as its stdin
//! ([`crate::Arrangement::with_stdin`]), because stdin is the one descriptor every launcher
//! passes (our runtime's fd-hygiene closes the rest); external launchers also put it at fd 3
//! for runtimes that copy stdin through a pipe of their own but pass extra descriptors on
//! (`runc run --preserve-fds 1`, `podman run --preserve-fds=1`). The inside's arguments name
//! the socket's inode, and the inside uses fd 0 or fd 3 only when it is that very socket: a
//! runtime that passes neither leaves the inside on its old fixed window, and no other socket
//! that happens to sit there is ever taken for the channel.

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{recv, send, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// What the inside sends once it can be tried.
const READY: u8 = b'R';
/// What the outside sends to end the inside's wait.
const GO: u8 = b'G';

/// The argument that names the channel's inode to the inside half.
pub(crate) const ARG: &str = "sync";

/// Where the inside looks for the channel: stdin, then the first descriptor a runtime's
/// `--preserve-fds` passes.
const PLACES: [RawFd; 2] = [0, 3];

/// The outside's end.
#[derive(Debug)]
pub(crate) struct Outside {
    fd: OwnedFd,
    /// The inode of the inside's end, which the inside's argument names.
    inode: u64,
    ready: bool,
    released: bool,
}

impl Outside {
    /// The outside's end, and the inside's end for [`crate::Arrangement::with_stdin`]. Both are
    /// close-on-exec: only the launcher's dup onto the payload's stdin reaches a payload.
    pub(crate) fn pair() -> std::io::Result<(Outside, OwnedFd)> {
        let (outside, inside) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )?;
        let inode = nix::sys::stat::fstat(inside.as_raw_fd())?.st_ino;
        Ok((
            Outside {
                fd: outside,
                inode,
                ready: false,
                released: false,
            },
            inside,
        ))
    }

    /// The inside half's argument (`sync=INODE`).
    pub(crate) fn arg(&self) -> String {
        crate::kv(ARG, self.inode)
    }

    /// Whether the inside has said it is ready; never blocks. An inside that ended without
    /// saying so (its end closed) is not ready.
    pub(crate) fn ready(&mut self) -> bool {
        if !self.ready {
            let mut buf = [0u8; 16];
            if let Ok(n) = recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
                self.ready = buf[..n].contains(&READY);
            }
        }
        self.ready
    }

    /// Waits at most `ms` for the inside's ready (a thread that would sleep that long anyway);
    /// takes the whole `ms` when the answer is no, also when the inside's end is closed (poll
    /// then returns at once).
    pub(crate) fn wait_ready(&mut self, ms: u16) -> bool {
        let until = Instant::now() + Duration::from_millis(ms.into());
        if !self.ready {
            let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
            // A failed or interrupted poll only shortens the wait; ready() below decides.
            let _ = poll(&mut fds, PollTimeout::from(ms));
        }
        if !self.ready() {
            std::thread::sleep(until.saturating_duration_since(Instant::now()));
        }
        self.ready
    }

    /// Ends the inside's wait (once). An inside that is gone makes this a no-op: MSG_NOSIGNAL
    /// turns the closed peer into EPIPE instead of a SIGPIPE.
    pub(crate) fn release(&mut self) {
        if !self.released {
            let _ = send(
                self.fd.as_raw_fd(),
                &[GO],
                MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL,
            );
            self.released = true;
        }
    }
}

/// The inside's end, after it told the outside it is ready.
#[derive(Debug)]
pub(crate) struct Inside {
    fd: RawFd,
}

impl Inside {
    /// Tells the outside over the channel (the socket with inode `inode` at fd 0 or 3) that the
    /// attempt can be tried now. None when neither is that socket or the write fails: the
    /// caller keeps its fixed window.
    pub(crate) fn announce(inode: u64) -> Option<Inside> {
        let fd = PLACES.into_iter().find(|&fd| {
            nix::sys::stat::fstat(fd).is_ok_and(|stat| {
                stat.st_mode & libc::S_IFMT == libc::S_IFSOCK && stat.st_ino == inode
            })
        })?;
        match send(fd, &[READY], MsgFlags::MSG_NOSIGNAL) {
            Ok(1) => Some(Inside { fd }),
            _ => None,
        }
    }

    /// The descriptor to poll: readable (or hung up) once the outside released the inside.
    pub(crate) fn as_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: `announce` found the channel open at this number, and nothing in the inside
        // half closes fd 0 or 3; the borrow lives no longer than `self`.
        unsafe { BorrowedFd::borrow_raw(self.fd) }
    }

    /// True when `revents` of a poll on [`Inside::as_fd`] say the wait is over.
    pub(crate) fn released_by(revents: Option<PollFlags>) -> bool {
        revents.is_some_and(|r| !r.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_and_release_cross_the_pair() {
        let (mut outside, inside) = Outside::pair().unwrap();
        assert!(!outside.ready());
        assert!(!outside.wait_ready(10));
        send(inside.as_raw_fd(), &[READY], MsgFlags::MSG_NOSIGNAL).unwrap();
        assert!(outside.wait_ready(1000));
        outside.release();
        let mut buf = [0u8; 4];
        assert_eq!(recv(inside.as_raw_fd(), &mut buf, MsgFlags::empty()), Ok(1));
        assert_eq!(buf[0], GO);
        // A second release sends nothing more; a release after the inside is gone is harmless.
        outside.release();
        drop(inside);
        let (mut outside, inside) = Outside::pair().unwrap();
        drop(inside);
        assert!(!outside.ready());
        // A closed end makes poll return at once; the wait still takes its time.
        let started = Instant::now();
        assert!(!outside.wait_ready(50));
        assert!(started.elapsed() >= Duration::from_millis(50));
        outside.release();
    }
}
