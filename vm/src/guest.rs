//! The guest-side API: how a program running inside the VM sends structured results to the
//! host. Init creates a FIFO at [`RESULTS_FIFO`] (root only, mode 0600), reads it while the
//! command runs and forwards every line as a `J` frame (see [`crate::channel`]).
//!
//! A [`ResultWriter`] writes each complete line with a single write(2). Lines up to PIPE_BUF
//! (4096 bytes) are atomic even with several writers; longer lines from concurrent writers may
//! interleave, so one process should own the stream of long lines.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// The FIFO init reads results from.
pub const RESULTS_FIFO: &str = "/run/breakout/results";

/// Set to 1 in the command's environment by init.
pub const IN_VM_ENV: &str = "BREAKOUT_IN_VM";

/// True when running under our guest init.
pub fn in_vm() -> bool {
    std::env::var(IN_VM_ENV).is_ok_and(|v| v == "1")
}

/// Opens the result channel. Fails with NotFound outside the VM.
pub fn results() -> io::Result<ResultWriter> {
    ResultWriter::open(Path::new(RESULTS_FIFO))
}

/// Line-buffered writer to the result channel.
#[derive(Debug)]
pub struct ResultWriter {
    fifo: File,
    pending: Vec<u8>,
}

impl ResultWriter {
    /// Opens a result FIFO at a given path.
    pub fn open(path: &Path) -> io::Result<Self> {
        let fifo = OpenOptions::new().write(true).open(path).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "cannot open the result channel {}: {e} (is this running in `breakout vm-run`?)",
                    path.display()
                ),
            )
        })?;
        Ok(ResultWriter {
            fifo,
            pending: Vec::new(),
        })
    }

    /// Sends one line (a JSON document); it must not contain a newline.
    pub fn send(&mut self, line: &str) -> io::Result<()> {
        if line.contains('\n') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a result line must not contain a newline",
            ));
        }
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line.as_bytes());
        buf.push(b'\n');
        self.fifo.write_all(&buf)
    }

    /// Serializes `value` as JSON and sends it as one line.
    pub fn send_json<T: serde::Serialize>(&mut self, value: &T) -> io::Result<()> {
        let line = serde_json::to_string(value).map_err(io::Error::other)?;
        self.send(&line)
    }
}

impl Write for ResultWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        if let Some(last_nl) = self.pending.iter().rposition(|b| *b == b'\n') {
            let complete: Vec<u8> = self.pending.drain(..=last_nl).collect();
            // One write per line keeps short lines atomic on the FIFO.
            for line in complete.split_inclusive(|b| *b == b'\n') {
                self.fifo.write_all(line)?;
            }
        }
        Ok(buf.len())
    }

    /// Sends complete lines; a trailing partial line stays until its newline arrives.
    fn flush(&mut self) -> io::Result<()> {
        self.fifo.flush()
    }
}

impl Drop for ResultWriter {
    fn drop(&mut self) {
        if !self.pending.is_empty() {
            self.pending.push(b'\n');
            let _ = self.fifo.write_all(&self.pending);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn fifo_pair() -> (tempfile::TempDir, std::path::PathBuf, File) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results");
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        // Read side opened read-write so the open does not block, as init does.
        let reader = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        (dir, path, reader)
    }

    #[test]
    fn lines_arrive_whole_and_in_order() {
        let (_dir, path, mut reader) = fifo_pair();
        let mut w = ResultWriter::open(&path).unwrap();
        w.send("{\"a\":1}").unwrap();
        w.write_all(b"{\"b\":").unwrap();
        w.write_all(b"2}\n{\"c\":3}\n{\"d\"").unwrap();
        w.send_json(&serde_json::json!({"e": 5})).unwrap();
        drop(w); // the partial line is completed on drop
        let mut buf = vec![0u8; 4096];
        let n = reader.read(&mut buf).unwrap();
        let text = String::from_utf8_lossy(&buf[..n]);
        assert_eq!(text, "{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n{\"e\":5}\n{\"d\"\n");
    }

    #[test]
    fn newline_inside_a_result_is_refused() {
        let (_dir, path, _reader) = fifo_pair();
        let mut w = ResultWriter::open(&path).unwrap();
        assert_eq!(
            w.send("a\nb").unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
    }

    #[test]
    fn outside_the_vm_the_error_says_where() {
        let e = ResultWriter::open(Path::new("/nonexistent/results")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(e.to_string().contains("/nonexistent/results"));
    }
}
