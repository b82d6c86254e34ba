//! The kernel log as the outside sees it: write a marker, read the whole ring.

use super::WorldError;
use std::io::{ErrorKind, Write};
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
    // The same record parsing as the catalog's kernel-log cursor, so the outside and the probes
    // agree on what a message is.
    crate::kit::read_kmsg_records(&mut f).map_err(|e| WorldError::io("reading", KMSG, e))
}

fn unsupported_or_io(what: &'static str, e: std::io::Error) -> WorldError {
    if e.kind() == ErrorKind::NotFound {
        WorldError::Unsupported(format!("{KMSG} is missing"))
    } else {
        WorldError::io(what, KMSG, e)
    }
}
