//! The kernel log as the outside sees it: write a marker, read the whole ring.

use super::WorldError;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::OpenOptionsExt;

const KMSG: &str = "/dev/kmsg";

pub(super) fn write(marker: &str) -> Result<(), WorldError> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(KMSG)
        .map_err(|e| unsupported_or_io("opening for writing", e))?;
    f.write_all(format!("breakout: {marker}\n").as_bytes())
        .map_err(|e| WorldError::io("writing", KMSG, e))
}

/// Every record currently in the ring, one message per line.
pub(super) fn read_all() -> Result<String, WorldError> {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(KMSG)
        .map_err(|e| unsupported_or_io("opening for reading", e))?;
    let mut out = String::new();
    let mut record = vec![0u8; 8192];
    loop {
        match f.read(&mut record) {
            Ok(0) => break,
            Ok(n) => {
                // "prio,seq,time,flags;message\n"
                let text = String::from_utf8_lossy(&record[..n]);
                let message = text.split_once(';').map(|(_, m)| m).unwrap_or(&text);
                out.push_str(message.lines().next().unwrap_or(""));
                out.push('\n');
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            // EPIPE: records were overwritten while reading; go on with the next one.
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(WorldError::io("reading", KMSG, e)),
        }
    }
    Ok(out)
}

fn unsupported_or_io(what: &'static str, e: std::io::Error) -> WorldError {
    if e.kind() == ErrorKind::NotFound {
        WorldError::Unsupported(format!("{KMSG} is missing"))
    } else {
        WorldError::io(what, KMSG, e)
    }
}
