//! Reading a payload's stdout or stderr: the one pipe drain every launcher uses (the direct
//! launcher, our runtime's in the harness, a file probe's inside half), with one limit and one
//! timeout.

use std::io::Read;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// The most of one pipe a drain keeps; the rest is read and dropped so the payload never blocks
/// on a full pipe.
pub const OUTPUT_LIMIT: usize = 1 << 20;

/// How long [`Drain::collect`] waits for the pipe to close once the payload is gone. Another
/// process may still hold a write end: a descendant that left the payload's process group,
/// cgroup or pid namespace, a script's background child, or the supervisor of a launch started in
/// parallel, forked while this launch's pipes were open. The reader is then abandoned and what it
/// read so far is kept (the inside's report is complete once the payload has exited).
pub const PIPE_DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// A pipe read to its end on a thread of its own, keeping at most [`OUTPUT_LIMIT`] bytes.
pub struct Drain {
    kept: Arc<Mutex<Vec<u8>>>,
    done: mpsc::Receiver<()>,
}

/// Starts reading `pipe` (nothing to read when None) on a thread of its own.
pub fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> Drain {
    let (tx, done) = mpsc::channel();
    let kept = Arc::new(Mutex::new(Vec::new()));
    let shared = Arc::clone(&kept);
    std::thread::spawn(move || {
        if let Some(mut pipe) = pipe {
            let mut chunk = [0u8; 8192];
            loop {
                match pipe.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => {
                        let mut kept = shared.lock().unwrap_or_else(|p| p.into_inner());
                        let room = OUTPUT_LIMIT.saturating_sub(kept.len());
                        kept.extend_from_slice(&chunk[..n.min(room)]);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                }
            }
        }
        let _ = tx.send(());
    });
    Drain { kept, done }
}

impl Drain {
    /// Everything read once the pipe closed, or what was read by [`PIPE_DRAIN_TIMEOUT`] if it
    /// did not: a report the payload did print is never lost to a straggler holding the pipe.
    pub fn collect(self) -> Vec<u8> {
        self.collect_within(PIPE_DRAIN_TIMEOUT)
    }

    fn collect_within(self, timeout: Duration) -> Vec<u8> {
        let _ = self.done.recv_timeout(timeout);
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::take(&mut *kept)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::OwnedFd;

    fn pipe() -> (std::fs::File, std::fs::File) {
        let (read, write): (OwnedFd, OwnedFd) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        (read.into(), write.into())
    }

    #[test]
    fn a_pipe_held_open_elsewhere_keeps_what_was_read() {
        let (read, mut writer) = pipe();
        writer.write_all(b"{\"probe\":\"x\"}\n").unwrap();
        // `writer` stays open, as a straggler would hold it: no EOF comes.
        let got = drain(Some(read)).collect_within(Duration::from_millis(300));
        assert_eq!(got, b"{\"probe\":\"x\"}\n");
        drop(writer);
    }

    #[test]
    fn a_closed_pipe_gives_everything() {
        let (read, mut writer) = pipe();
        writer.write_all(&[7u8; 20000]).unwrap();
        drop(writer);
        assert_eq!(
            drain(Some(read))
                .collect_within(Duration::from_secs(5))
                .len(),
            20000
        );
    }

    #[test]
    fn output_past_the_limit_is_read_and_dropped() {
        let (read, mut writer) = pipe();
        let reader = drain(Some(read));
        let chunk = vec![b'x'; 64 * 1024];
        // More than the limit: the writer would block forever if the drain stopped reading.
        for _ in 0..(OUTPUT_LIMIT / chunk.len() + 4) {
            writer.write_all(&chunk).unwrap();
        }
        drop(writer);
        assert_eq!(
            reader.collect_within(Duration::from_secs(5)).len(),
            OUTPUT_LIMIT
        );
    }

    #[test]
    fn no_pipe_gives_nothing() {
        assert!(drain(None::<std::fs::File>).collect().is_empty());
    }
}
