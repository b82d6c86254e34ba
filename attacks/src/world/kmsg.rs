//! The kernel log: the outside writes markers and reads the whole ring, a cursor reads what came
//! after it, and [`read_kmsg_records`] is the one parser of its records, used by the outside and
//! by the inside halves that reach /dev/kmsg alike, so they agree on what a message is.

use super::WorldError;
use std::fs;
use std::io::{self, ErrorKind, Read, Seek, SeekFrom, Write};
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
    read_kmsg_records(&mut f).map_err(|e| WorldError::io("reading", KMSG, e))
}

fn unsupported_or_io(what: &'static str, e: std::io::Error) -> WorldError {
    if e.kind() == ErrorKind::NotFound {
        WorldError::Unsupported(format!("{KMSG} is missing"))
    } else {
        WorldError::io(what, KMSG, e)
    }
}

/// A reader of /dev/kmsg positioned at the end of the ring when created: `read_new` returns only
/// the records written since (sysrq output, kernel messages caused by the attempt).
pub struct KmsgCursor {
    file: fs::File,
}

impl KmsgCursor {
    pub fn at_end() -> io::Result<KmsgCursor> {
        let mut file = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(KMSG)?;
        file.seek(SeekFrom::End(0))?;
        Ok(KmsgCursor { file })
    }

    /// The messages (text after `;`) of every record written since the last read.
    pub fn read_new(&mut self) -> io::Result<String> {
        read_kmsg_records(&mut self.file)
    }
}

/// Reads every available record from an O_NONBLOCK /dev/kmsg descriptor, one message per line
/// (a record is "prio,seq,time,flags;message\n").
pub fn read_kmsg_records(file: &mut fs::File) -> io::Result<String> {
    let mut out = String::new();
    let mut record = vec![0u8; 8192];
    loop {
        match file.read(&mut record) {
            Ok(0) => break,
            Ok(n) => {
                let text = String::from_utf8_lossy(&record[..n]);
                let message = text.split_once(';').map(|(_, m)| m).unwrap_or(&text);
                out.push_str(message.lines().next().unwrap_or(""));
                out.push('\n');
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            // EPIPE: the record under the cursor was overwritten; the next read goes on.
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}
