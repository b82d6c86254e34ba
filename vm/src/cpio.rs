//! A writer for the cpio "newc" format, the one the kernel unpacks as an initramfs.
//!
//! Small enough to own (the format is 110 bytes of ASCII hex per header), and owning it lets
//! file contents stream from disk without a temporary copy. Every entry gets its own inode
//! number and nlink 1 (2 for directories), so the kernel never links entries together; mtimes
//! are 0 so the same inputs give the same bytes.

use std::io::{self, Read, Write};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum CpioError {
    #[error("cpio entry name {0:?} is empty, absolute or contains a NUL byte")]
    BadName(String),
    #[error("cpio entry {name:?} is {size} bytes, more than newc's 4 GiB limit")]
    TooLarge { name: String, size: u64 },
    #[error("cpio entry {name:?}: the source gave {got} bytes, {want} were announced")]
    ShortRead { name: String, got: u64, want: u64 },
    #[error("writing the cpio archive: {0}")]
    Io(#[from] io::Error),
}

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;

/// Owner and permission bits of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// Permission bits (e.g. 0o755); the file type is set by the writer.
    pub perm: u32,
    pub uid: u32,
    pub gid: u32,
}

impl Meta {
    pub fn root(perm: u32) -> Self {
        Meta {
            perm,
            uid: 0,
            gid: 0,
        }
    }
}

/// Writes entries one by one; call [`CpioWriter::finish`] to add the trailer.
pub struct CpioWriter<W: Write> {
    out: W,
    next_ino: u32,
    written: u64,
}

struct Header<'a> {
    name: &'a str,
    mode: u32,
    meta: Meta,
    nlink: u32,
    size: u32,
    rdev: (u32, u32),
}

impl<W: Write> CpioWriter<W> {
    pub fn new(out: W) -> Self {
        CpioWriter {
            out,
            next_ino: 1,
            written: 0,
        }
    }

    pub fn dir(&mut self, name: &str, meta: Meta) -> Result<(), CpioError> {
        self.header(Header {
            name,
            mode: S_IFDIR | (meta.perm & 0o7777),
            meta,
            nlink: 2,
            size: 0,
            rdev: (0, 0),
        })
    }

    pub fn symlink(&mut self, name: &str, target: &str, meta: Meta) -> Result<(), CpioError> {
        let size = checked_size(name, target.len() as u64)?;
        self.header(Header {
            name,
            mode: S_IFLNK | 0o777,
            meta,
            nlink: 1,
            size,
            rdev: (0, 0),
        })?;
        self.write_all(target.as_bytes())?;
        self.pad()
    }

    pub fn char_device(
        &mut self,
        name: &str,
        major: u32,
        minor: u32,
        meta: Meta,
    ) -> Result<(), CpioError> {
        self.header(Header {
            name,
            mode: S_IFCHR | (meta.perm & 0o7777),
            meta,
            nlink: 1,
            size: 0,
            rdev: (major, minor),
        })
    }

    /// A regular file of exactly `size` bytes read from `data`.
    pub fn file(
        &mut self,
        name: &str,
        size: u64,
        data: &mut dyn Read,
        meta: Meta,
    ) -> Result<(), CpioError> {
        let size32 = checked_size(name, size)?;
        self.header(Header {
            name,
            mode: S_IFREG | (meta.perm & 0o7777),
            meta,
            nlink: 1,
            size: size32,
            rdev: (0, 0),
        })?;
        let got = io::copy(&mut data.take(size), &mut self.out)?;
        self.written += got;
        if got != size {
            return Err(CpioError::ShortRead {
                name: name.to_string(),
                got,
                want: size,
            });
        }
        self.pad()
    }

    /// Writes the trailer and returns the inner writer.
    pub fn finish(mut self) -> Result<W, CpioError> {
        self.header_unchecked(Header {
            name: "TRAILER!!!",
            mode: 0,
            meta: Meta::root(0),
            nlink: 1,
            size: 0,
            rdev: (0, 0),
        })?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn header(&mut self, h: Header<'_>) -> Result<(), CpioError> {
        if h.name.is_empty() || h.name.starts_with('/') || h.name.contains('\0') {
            return Err(CpioError::BadName(h.name.to_string()));
        }
        self.header_unchecked(h)
    }

    fn header_unchecked(&mut self, h: Header<'_>) -> Result<(), CpioError> {
        let ino = if h.name == "TRAILER!!!" {
            0
        } else {
            self.next_ino += 1;
            self.next_ino
        };
        let namesize = h.name.len() + 1;
        let text = format!(
            "070701{ino:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{namesize:08x}{:08x}",
            h.mode, h.meta.uid, h.meta.gid, h.nlink, 0, h.size, 0, 0, h.rdev.0, h.rdev.1, 0
        );
        self.write_all(text.as_bytes())?;
        self.write_all(h.name.as_bytes())?;
        self.write_all(&[0])?;
        self.pad()
    }

    fn write_all(&mut self, bytes: &[u8]) -> Result<(), CpioError> {
        self.out.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// newc aligns every header and every file body to 4 bytes.
    fn pad(&mut self) -> Result<(), CpioError> {
        let n = (4 - (self.written % 4) as usize) % 4;
        self.write_all(&[0u8; 3][..n])
    }
}

fn checked_size(name: &str, size: u64) -> Result<u32, CpioError> {
    u32::try_from(size).map_err(|_| CpioError::TooLarge {
        name: name.to_string(),
        size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    fn sample() -> Vec<u8> {
        let mut w = CpioWriter::new(Vec::new());
        w.dir("etc", Meta::root(0o755)).unwrap();
        let body = b"root:x:0:0:root:/root:/bin/sh\n";
        w.file(
            "etc/passwd",
            body.len() as u64,
            &mut &body[..],
            Meta::root(0o644),
        )
        .unwrap();
        w.symlink("etc/link", "passwd", Meta::root(0o777)).unwrap();
        w.dir("dev", Meta::root(0o755)).unwrap();
        w.char_device("dev/console", 5, 1, Meta::root(0o600))
            .unwrap();
        w.file(
            "odd",
            3,
            &mut &b"abc"[..],
            Meta {
                perm: 0o4711,
                uid: 1000,
                gid: 1000,
            },
        )
        .unwrap();
        w.finish().unwrap()
    }

    #[test]
    fn headers_are_aligned_and_well_formed() {
        let bytes = sample();
        assert_eq!(bytes.len() % 4, 0);
        assert!(bytes.starts_with(b"070701"));
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("TRAILER!!!"));
        // Second field of the first header is the mode: a directory 0755.
        assert_eq!(&bytes[14..22], b"000041ed");
    }

    #[test]
    fn gnu_cpio_lists_what_we_wrote() {
        let bytes = sample();
        let mut child = Command::new("cpio")
            .args(["-t", "-v", "--numeric-uid-gid", "--quiet"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("GNU cpio (Debian package cpio) is needed for this test");
        child.stdin.take().unwrap().write_all(&bytes).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        let listing = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = listing.lines().collect();
        assert_eq!(lines.len(), 6, "{listing}");
        assert!(lines[0].starts_with("drwxr-xr-x") && lines[0].ends_with(" etc"));
        assert!(lines[1].starts_with("-rw-r--r--") && lines[1].ends_with(" etc/passwd"));
        assert!(lines[2].starts_with("lrwxrwxrwx") && lines[2].ends_with("etc/link -> passwd"));
        assert!(lines[4].starts_with("crw-------") && lines[4].contains("5,"));
        assert!(
            lines[5].starts_with("-rws--x--x") && lines[5].contains("1000"),
            "{listing}"
        );
    }

    #[test]
    fn gnu_cpio_extracts_the_same_bytes() {
        let bytes = sample();
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new("cpio")
            .args([
                "-i",
                "--quiet",
                "--make-directories",
                "--no-absolute-filenames",
            ])
            .current_dir(dir.path())
            .stdin(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&bytes).unwrap();
        child.wait().unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("etc/passwd")).unwrap(),
            b"root:x:0:0:root:/root:/bin/sh\n"
        );
        assert_eq!(
            std::fs::read_link(dir.path().join("etc/link")).unwrap(),
            std::path::Path::new("passwd")
        );
        assert_eq!(std::fs::read(dir.path().join("odd")).unwrap(), b"abc");
    }

    #[test]
    fn bad_names_and_short_sources_are_errors() {
        let mut w = CpioWriter::new(Vec::new());
        assert!(matches!(
            w.dir("/abs", Meta::root(0o755)),
            Err(CpioError::BadName(_))
        ));
        assert!(matches!(
            w.dir("", Meta::root(0o755)),
            Err(CpioError::BadName(_))
        ));
        assert!(matches!(
            w.file("f", 10, &mut &b"abc"[..], Meta::root(0o644)),
            Err(CpioError::ShortRead {
                got: 3,
                want: 10,
                ..
            })
        ));
    }
}
