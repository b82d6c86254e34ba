//! Init's end of the channel: numbered frames written to a serial port (see `crate::channel`).

use super::{io, sys, InitError};
use crate::channel::{self, FrameKind, CONSOLE_PORT, DATA_PORT, MAX_FRAME_PAYLOAD};
use nix::sys::termios;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;

pub struct Serial {
    /// None only when init started without a console: then nothing can be reported.
    out: Option<File>,
    /// The number the next frame gets; it carries over when the port changes, so the host
    /// sees one numbering for the whole run.
    next_seq: u64,
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
            next_seq: 0,
        }
    }

    /// Moves the channel to the data port, which the kernel never writes to. A kernel
    /// without a second UART (opening it fails: ENOENT, or EIO for a port with no UART
    /// behind it) leaves the channel on the console port; the returned note says so, for
    /// the host to see.
    pub fn open_data_port(&mut self) -> Result<Option<String>, InitError> {
        match open_raw(DATA_PORT) {
            Ok(out) => {
                self.out = Some(out);
                Ok(None)
            }
            Err(e) => {
                self.out = Some(open_raw(CONSOLE_PORT)?);
                Ok(Some(format!(
                    "breakout-init: no data port ({e}); frames share {CONSOLE_PORT} with the \
                     kernel console, where kernel text can tear them (the host detects that)"
                )))
            }
        }
    }

    /// Sends one frame, or several for long output (`Stdout`/`Stderr` only are split; a
    /// result line always travels whole).
    pub fn send(&mut self, kind: FrameKind, payload: &[u8]) -> std::io::Result<()> {
        let Some(out) = self.out.as_mut() else {
            return Err(std::io::Error::from_raw_os_error(libc::ENODEV));
        };
        let chunks: Vec<&[u8]> = match kind {
            FrameKind::Stdout | FrameKind::Stderr => payload.chunks(MAX_FRAME_PAYLOAD).collect(),
            _ => vec![payload],
        };
        for chunk in chunks {
            // The number is used up even when the write fails: the host then sees the gap.
            let seq = self.next_seq;
            self.next_seq += 1;
            out.write_all(&channel::encode(seq, kind, chunk))?;
        }
        Ok(())
    }

    /// Waits until every byte left the UART: a power-off would drop what is still queued.
    pub fn drain(&self) {
        if let Some(out) = &self.out {
            let _ = termios::tcdrain(out);
        }
    }
}

/// A serial port in raw mode (no newline translation), close-on-exec.
fn open_raw(path: &str) -> Result<File, InitError> {
    let out = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)
        .map_err(io(format!("open {path}")))?;
    let mut t = termios::tcgetattr(&out).map_err(sys(format!("tcgetattr {path}")))?;
    termios::cfmakeraw(&mut t);
    termios::tcsetattr(&out, termios::SetArg::TCSANOW, &t)
        .map_err(sys(format!("tcsetattr {path}")))?;
    Ok(out)
}
