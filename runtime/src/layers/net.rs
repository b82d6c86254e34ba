//! net-ns: a new network namespace has only `lo`, down; bring it up so local services work.

use crate::layer::Layer;
use crate::step::{Op, Step};
use nix::errno::Errno;

pub(crate) fn steps() -> Vec<Step> {
    vec![Step::new(
        Some(Layer::NetNs),
        "ioctl(SIOCSIFFLAGS, \"lo\", IFF_UP)",
        Op::LoopbackUp,
    )]
}

/// Set IFF_UP on `lo` (child side).
pub(crate) fn loopback_up() -> Result<(), Errno> {
    // SAFETY: plain socket creation.
    let sock = Errno::result(unsafe {
        libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0)
    })?;
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in ifr.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write the ifreq we own.
    let res =
        Errno::result(unsafe { libc::ioctl(sock, libc::SIOCGIFFLAGS, &mut ifr) }).and_then(|_| {
            // SAFETY: the union member ifru_flags is the one SIOCGIFFLAGS filled.
            unsafe {
                ifr.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short
            };
            // SAFETY: as above.
            Errno::result(unsafe { libc::ioctl(sock, libc::SIOCSIFFLAGS, &ifr) })
        });
    // SAFETY: closing our own socket.
    unsafe { libc::close(sock) };
    res.map(drop)
}
