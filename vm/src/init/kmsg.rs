//! Kernel log records read from /dev/kmsg while the command runs: forwarded to the host
//! (the console itself is quieted to emergencies) and checked for the global OOM killer.

use super::{io, InitError};
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;

/// Records of this level or more severe are forwarded (4 = warning).
const FORWARD_LEVEL: u8 = 4;

pub struct Kmsg {
    file: File,
}

/// One record: its level and its text (first line only, no dictionary).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub level: u8,
    pub text: String,
}

impl Record {
    pub fn forwarded(&self) -> bool {
        self.level <= FORWARD_LEVEL
    }

    /// The pid the global OOM killer killed, from "Out of memory: Killed process N (name)".
    /// A memory cgroup's OOM ("Memory cgroup out of memory: ...") does not count.
    pub fn global_oom_victim(&self) -> Option<i32> {
        let rest = self.text.strip_prefix("Out of memory: Killed process ")?;
        rest.split_whitespace().next()?.parse().ok()
    }
}

/// Parses "prio,seq,usec,flags;text\n key=value..." into a record.
pub fn parse(raw: &str) -> Option<Record> {
    let (header, body) = raw.split_once(';')?;
    let prio: u32 = header.split(',').next()?.parse().ok()?;
    let text = body.lines().next().unwrap_or("").to_string();
    Some(Record {
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
        assert!(r.forwarded());
        assert_eq!(r.global_oom_victim(), Some(77));
        let info = parse("6,1,2,-;eth0: link up\n").unwrap();
        assert!(!info.forwarded());
        // facility bits above the level are ignored
        assert_eq!(parse("12,1,2,-;user warning\n").unwrap().level, 4);
        assert_eq!(parse("garbage"), None);
    }

    #[test]
    fn cgroup_oom_is_not_a_global_oom() {
        let r = parse("3,5,6,-;Memory cgroup out of memory: Killed process 9 (x)\n").unwrap();
        assert_eq!(r.global_oom_victim(), None);
    }
}
