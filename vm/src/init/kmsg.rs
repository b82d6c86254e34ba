//! Kernel log records read from /dev/kmsg while the command runs: forwarded to the host
//! (the console itself is quieted to emergencies) and checked for the global OOM killer.
//!
//! Anyone who can open /dev/kmsg for writing (root in the guest: the payload under `none`) adds
//! records to the same log, so a record is the kernel's only when its facility is 0: the kernel
//! gives every write from user space facility 1 (LOG_USER) unless the writer names another
//! non-zero one (`devkmsg_write`). Only the kernel's records count as kernel text; the others
//! travel to the host as user-space records, shown but never read for panics or OOM kills.

use super::{io, InitError};
use crate::channel::FrameKind;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;

/// Records of this level or more severe are forwarded (4 = warning).
const FORWARD_LEVEL: u8 = 4;

pub struct Kmsg {
    file: File,
}

/// One record: its facility, its level and its text (first line only, no dictionary).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// 0 for the kernel's own records; 1 (LOG_USER) or more for writes from user space.
    pub facility: u32,
    pub level: u8,
    pub text: String,
}

impl Record {
    /// Whether the kernel wrote this record (see the module's comment).
    pub fn by_kernel(&self) -> bool {
        self.facility == 0
    }

    /// The frame that carries this record to the host: `K` for the kernel's records, `U` for
    /// user space's; None for records below [`FORWARD_LEVEL`].
    pub fn frame_kind(&self) -> Option<FrameKind> {
        if self.level > FORWARD_LEVEL {
            None
        } else if self.by_kernel() {
            Some(FrameKind::Kernel)
        } else {
            Some(FrameKind::UserLog)
        }
    }

    /// The pid the global OOM killer killed, from the kernel's "Out of memory: Killed process
    /// N (name)". A memory cgroup's OOM ("Memory cgroup out of memory: ...") does not count,
    /// nor does the same text written to /dev/kmsg from user space.
    pub fn global_oom_victim(&self) -> Option<i32> {
        if !self.by_kernel() {
            return None;
        }
        let rest = self.text.strip_prefix("Out of memory: Killed process ")?;
        rest.split_whitespace().next()?.parse().ok()
    }
}

/// Parses "prio,seq,usec,flags;text\n key=value..." into a record (prio is facility * 8 +
/// level).
pub fn parse(raw: &str) -> Option<Record> {
    let (header, body) = raw.split_once(';')?;
    let prio: u32 = header.split(',').next()?.parse().ok()?;
    let text = body.lines().next().unwrap_or("").to_string();
    Some(Record {
        facility: prio >> 3,
        level: (prio & 7) as u8,
        text,
    })
}

impl Kmsg {
    /// Opens /dev/kmsg positioned after the records that exist now.
    pub fn open() -> Result<Self, InitError> {
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open("/dev/kmsg")
            .map_err(io("open /dev/kmsg"))?;
        nix::unistd::lseek(
            std::os::fd::AsRawFd::as_raw_fd(&file),
            0,
            nix::unistd::Whence::SeekEnd,
        )
        .map_err(super::sys("lseek /dev/kmsg"))?;
        Ok(Kmsg { file })
    }

    pub fn file(&self) -> &File {
        &self.file
    }

    /// Every record available now.
    pub fn read_available(&mut self) -> Vec<Record> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 8192];
        loop {
            match self.file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if let Some(r) = parse(&String::from_utf8_lossy(&buf[..n])) {
                        out.push(r);
                    }
                }
                // EPIPE: records were overwritten before we read them; go on with the next.
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
                Err(_) => break,
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_parse_with_level_and_first_line() {
        let r = parse(
            "3,512,1234567,-;Out of memory: Killed process 77 (hog) total-vm:10kB\n SUBSYSTEM=x\n",
        )
        .unwrap();
        assert_eq!(r.level, 3);
        assert!(r.by_kernel());
        assert_eq!(r.frame_kind(), Some(FrameKind::Kernel));
        assert_eq!(r.global_oom_victim(), Some(77));
        let info = parse("6,1,2,-;eth0: link up\n").unwrap();
        assert_eq!(info.frame_kind(), None);
        // The facility sits above the level.
        let user = parse("12,1,2,-;user warning\n").unwrap();
        assert_eq!((user.facility, user.level), (1, 4));
        assert_eq!(parse("garbage"), None);
    }

    /// `echo "<4>Kernel panic - not syncing: forged" > /dev/kmsg` as root in the guest: the
    /// kernel stores it with facility 1 (LOG_USER), prio 12. It must not travel as kernel text,
    /// or the host takes it for a panic and ends the run.
    #[test]
    fn a_record_written_from_user_space_is_not_kernel_text() {
        let forged = parse("12,900,5000,-;Kernel panic - not syncing: forged\n").unwrap();
        assert!(!forged.by_kernel());
        assert_eq!(forged.frame_kind(), Some(FrameKind::UserLog));
        // Naming facility 0 does not help: the kernel turns it into LOG_USER, and any other
        // facility is not the kernel's either.
        let local0 = parse("132,901,5001,-;Kernel panic - not syncing: forged\n").unwrap();
        assert_eq!(local0.frame_kind(), Some(FrameKind::UserLog));
        // Nor does the OOM killer's text make init believe the command was OOM-killed.
        let oom = parse("11,902,5002,-;Out of memory: Killed process 50 (hog)\n").unwrap();
        assert_eq!(oom.global_oom_victim(), None);
    }

    #[test]
    fn cgroup_oom_is_not_a_global_oom() {
        let r = parse("3,5,6,-;Memory cgroup out of memory: Killed process 9 (x)\n").unwrap();
        assert_eq!(r.global_oom_victim(), None);
    }
}
