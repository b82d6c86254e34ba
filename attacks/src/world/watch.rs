//! The outside watching while the payload runs: one thread that looks at some state (a cgroup's
//! counters, the kernel's BPF programs, a port) at a fixed interval and keeps what it saw. Needed
//! where the evidence lives only as long as the payload (a listener, a BPF program, a peak).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// What one look tells the watcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Look {
    /// Look again after the interval.
    Again,
    /// Seen enough: the thread ends and keeps what it saw.
    Enough,
}

/// A thread that calls `look` on what it has seen so far every `interval` until it is finished
/// (or `look` says [`Look::Enough`]), then hands back what it saw. Stopped and joined on Drop too,
/// so a judge that never runs leaves no thread behind.
#[derive(Debug)]
pub struct Watcher<T: Send + 'static> {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<T>>,
}

impl<T: Send + 'static> Watcher<T> {
    pub fn start(
        interval: Duration,
        mut seen: T,
        mut look: impl FnMut(&mut T) -> Look + Send + 'static,
    ) -> Watcher<T> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || loop {
            // One last look after the stop flag, so what happened just before the end counts.
            let last = stopped.load(Ordering::Relaxed);
            if look(&mut seen) == Look::Enough || last {
                return seen;
            }
            // Parked rather than asleep, so finish() wakes it at once for its last look.
            std::thread::park_timeout(interval);
        });
        Watcher {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops the thread after its last look and returns what it saw; None when a look panicked
    /// (the caller judges that as "the outside saw nothing it can vouch for").
    pub fn finish(mut self) -> Option<T> {
        self.stop_thread().and_then(|t| t.join().ok())
    }
}

impl Watcher<Option<String>> {
    /// A watcher that keeps the first thing `look` finds and stops there.
    pub fn first_hit(
        interval: Duration,
        mut look: impl FnMut() -> Option<String> + Send + 'static,
    ) -> Watcher<Option<String>> {
        Watcher::start(interval, None, move |seen| {
            *seen = look();
            if seen.is_some() {
                Look::Enough
            } else {
                Look::Again
            }
        })
    }
}

impl<T: Send + 'static> Watcher<T> {
    /// Sets the stop flag and wakes the thread; the handle to join, unless already taken.
    fn stop_thread(&mut self) -> Option<JoinHandle<T>> {
        self.stop.store(true, Ordering::Relaxed);
        let thread = self.thread.take()?;
        thread.thread().unpark();
        Some(thread)
    }
}

impl<T: Send + 'static> Drop for Watcher<T> {
    fn drop(&mut self) {
        if let Some(t) = self.stop_thread() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How long a test waits for the watcher thread's looks (a loaded machine may not run it
    /// for a while; the tests wait for the looks themselves, never for a fixed time).
    const LOOKS_WAIT: Duration = Duration::from_secs(60);

    #[test]
    fn first_hit_keeps_what_it_saw() {
        let (looked, third) = std::sync::mpsc::channel();
        let mut n = 0;
        let w = Watcher::first_hit(Duration::from_millis(1), move || {
            n += 1;
            let hit = (n == 3).then(|| "third look".to_string());
            if hit.is_some() {
                let _ = looked.send(());
            }
            hit
        });
        third
            .recv_timeout(LOOKS_WAIT)
            .expect("the watcher's third look");
        assert_eq!(w.finish().flatten(), Some("third look".into()));
        let w = Watcher::first_hit(Duration::from_millis(1), || None);
        assert_eq!(w.finish().flatten(), None);
    }

    #[test]
    fn a_watcher_accumulates_until_finished_and_looks_once_more() {
        let (looked, first) = std::sync::mpsc::channel();
        let w = Watcher::start(Duration::from_secs(3600), 0u32, move |n| {
            *n += 1;
            let _ = looked.send(());
            Look::Again
        });
        // The first look happens at once; the interval is an hour, so only the last look after
        // the stop flag can add the second.
        first
            .recv_timeout(LOOKS_WAIT)
            .expect("the watcher's first look");
        assert_eq!(w.finish(), Some(2));
    }

    #[test]
    fn a_panicking_look_gives_none() {
        let w = Watcher::start(Duration::from_millis(1), (), |_| panic!("look failed"));
        assert_eq!(w.finish(), None);
    }
}
