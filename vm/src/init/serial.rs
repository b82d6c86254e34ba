//! Init's end of the channel: frames written to the serial port (see `crate::channel`).

use super::{io, sys, InitError};
use crate::channel::{self, FrameKind, MAX_FRAME_PAYLOAD};
use nix::sys::termios;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;

pub struct Serial {
    /// None only when init started without a console: then nothing can be reported.
    out: Option<File>,
}

impl Serial {
    /// The console the kernel gave init as stdout, for failures before /dev is mounted.
    pub fn console() -> Self {
        Serial {
            out: std::io::stdout()
                .as_fd()
                .try_clone_to_owned()
                .ok()
                .map(File::from),
        }
    }

    /// /dev/ttyS0 in raw mode (no newline translation), close-on-exec.
    pub fn open_ttys0() -> Result<Self, InitError> {
        let out = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
            .open("/dev/ttyS0")
            .map_err(io("open /dev/ttyS0"))?;
        let mut t = termios::tcgetattr(&out).map_err(sys("tcgetattr /dev/ttyS0"))?;
        termios::cfmakeraw(&mut t);
        termios::tcsetattr(&out, termios::SetArg::TCSANOW, &t)
            .map_err(sys("tcsetattr /dev/ttyS0"))?;
        Ok(Serial { out: Some(out) })
    }

    /// Sends one frame, or several for long output (`Stdout`/`Stderr` only are split; a
    /// result line always travels whole).
    pub fn send(&mut self, kind: FrameKind, payload: &[u8]) -> std::io::Result<()> {
        let Some(out) = self.out.as_mut() else {
            return Err(std::io::Error::from_raw_os_error(libc::ENODEV));
        };
        match kind {
            FrameKind::Stdout | FrameKind::Stderr => {
                for chunk in payload.chunks(MAX_FRAME_PAYLOAD) {
                    out.write_all(&channel::encode(kind, chunk))?;
                }
                Ok(())
            }
            _ => out.write_all(&channel::encode(kind, payload)),
        }
    }

    /// Waits until every byte left the UART: a power-off would drop what is still queued.
    pub fn drain(&self) {
        if let Some(out) = &self.out {
            let _ = termios::tcdrain(out);
        }
    }
}
