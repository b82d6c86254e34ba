//! The host's view of the serial console: a state machine fed line by line that separates
//! frames from console text, tracks the run's phase, remembers the last lines for error
//! messages and notices kernel panics and the global OOM killer.

use crate::channel::{self, ExitReport, FrameKind, ReadyReport, StartReport};
use crate::error::ConsoleTail;
use std::collections::VecDeque;

/// How many console lines error messages quote.
pub const TAIL_LINES: usize = 25;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Kernel booting, init not ready yet.
    Booting,
    /// Init set up the guest.
    Ready,
    /// The command runs.
    Running,
    /// The command ended and its exit report arrived.
    Exited,
    /// Init reported a failure.
    Failed,
}

/// What one line meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsoleEvent {
    Ready(ReadyReport),
    Started(StartReport),
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    Result(String),
    Exit(ExitReport),
    InitFailed(String),
    /// Kernel text: a console line, or a log record init forwarded.
    Kernel(String),
    /// A frame that did not decode, or that made no sense in this phase.
    Garbled(String),
}

#[derive(Debug)]
pub struct Console {
    phase: Phase,
    tail: VecDeque<String>,
    panic: Option<String>,
    oom: Option<String>,
    exit: Option<ExitReport>,
    failure: Option<String>,
}

impl Default for Console {
    fn default() -> Self {
        Console::new()
    }
}

impl Console {
    pub fn new() -> Self {
        Console {
            phase: Phase::Booting,
            tail: VecDeque::with_capacity(TAIL_LINES),
            panic: None,
            oom: None,
            exit: None,
            failure: None,
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The kernel's panic reason, once a panic was seen.
    pub fn panic(&self) -> Option<&str> {
        self.panic.as_deref()
    }

    /// The global OOM killer's message, once one was seen.
    pub fn oom(&self) -> Option<&str> {
        self.oom.as_deref()
    }

    pub fn exit(&self) -> Option<ExitReport> {
        self.exit
    }

    pub fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }

    pub fn tail(&self) -> ConsoleTail {
        ConsoleTail(self.tail.iter().cloned().collect())
    }

    /// Feeds one line (its `\n` and any `\r` already removed).
    pub fn feed(&mut self, line: &str) -> ConsoleEvent {
        let frame = match channel::decode(line) {
            None => return self.kernel_text(line),
            Some(Err(e)) => {
                self.remember(&format!("(garbled frame: {e}) {line}"));
                return ConsoleEvent::Garbled(line.to_string());
            }
            Some(Ok(frame)) => frame,
        };
        let text = || String::from_utf8_lossy(&frame.payload).into_owned();
        let garbled = |me: &mut Self, why: &str| {
            me.remember(&format!("(unexpected frame: {why})"));
            ConsoleEvent::Garbled(line.to_string())
        };
        match frame.kind {
            FrameKind::Ready => match serde_json::from_slice(&frame.payload) {
                Ok(r) if self.phase == Phase::Booting => {
                    self.phase = Phase::Ready;
                    ConsoleEvent::Ready(r)
                }
                _ => garbled(self, "ready report"),
            },
            FrameKind::Started => match serde_json::from_slice(&frame.payload) {
                Ok(s) if self.phase == Phase::Ready => {
                    self.phase = Phase::Running;
                    ConsoleEvent::Started(s)
                }
                _ => garbled(self, "start report"),
            },
            FrameKind::Exit => match serde_json::from_slice::<ExitReport>(&frame.payload) {
                Ok(x) if self.phase == Phase::Running => {
                    self.phase = Phase::Exited;
                    self.exit = Some(x);
                    ConsoleEvent::Exit(x)
                }
                _ => garbled(self, "exit report"),
            },
            FrameKind::Stdout => ConsoleEvent::Stdout(frame.payload),
            FrameKind::Stderr => ConsoleEvent::Stderr(frame.payload),
            FrameKind::Result => ConsoleEvent::Result(text()),
            FrameKind::Kernel => {
                let t = text();
                self.kernel_text(&t);
                ConsoleEvent::Kernel(t)
            }
            FrameKind::Failed => {
                let t = text();
                self.remember(&format!("init: {t}"));
                self.phase = Phase::Failed;
                self.failure = Some(t.clone());
                ConsoleEvent::InitFailed(t)
            }
        }
    }

    fn kernel_text(&mut self, line: &str) -> ConsoleEvent {
        if self.panic.is_none() {
            if let Some(i) = line.find("Kernel panic - not syncing:") {
                let reason = line[i + "Kernel panic - not syncing:".len()..].trim();
                self.panic = Some(reason.trim_end_matches(" ]---").to_string());
            }
        }
        if self.oom.is_none()
            && (line.contains("Out of memory: Killed process")
                || line.contains("Out of memory and no killable processes"))
        {
            self.oom = Some(strip_timestamp(line).to_string());
        }
        self.remember(line);
        ConsoleEvent::Kernel(line.to_string())
    }

    fn remember(&mut self, line: &str) {
        if line.trim().is_empty() {
            return;
        }
        if self.tail.len() == TAIL_LINES {
            self.tail.pop_front();
        }
        self.tail.push_back(line.to_string());
    }
}

/// `[    1.234567] text` -> `text`
fn strip_timestamp(line: &str) -> &str {
    let t = line.trim_start();
    if t.starts_with('[') {
        if let Some(i) = t.find(']') {
            return t[i + 1..].trim_start();
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::encode;

    fn frame(kind: FrameKind, payload: &[u8]) -> String {
        String::from_utf8(encode(kind, payload))
            .unwrap()
            .trim_end()
            .to_string()
    }

    fn json(v: impl serde::Serialize) -> Vec<u8> {
        serde_json::to_vec(&v).unwrap()
    }

    #[test]
    fn a_normal_run_walks_the_phases() {
        let mut c = Console::new();
        assert_eq!(c.phase(), Phase::Booting);
        assert!(matches!(
            c.feed("[    0.000000] Linux version 6.1"),
            ConsoleEvent::Kernel(_)
        ));
        let ready = ReadyReport {
            init_start_ms: 1300,
            init_ready_ms: 1350,
        };
        assert_eq!(
            c.feed(&frame(FrameKind::Ready, &json(ready))),
            ConsoleEvent::Ready(ready)
        );
        let start = StartReport {
            pid: 42,
            uptime_ms: 1351,
        };
        c.feed(&frame(FrameKind::Started, &json(start)));
        assert_eq!(c.phase(), Phase::Running);
        assert_eq!(
            c.feed(&frame(FrameKind::Stdout, b"hi\n")),
            ConsoleEvent::Stdout(b"hi\n".to_vec())
        );
        assert_eq!(
            c.feed(&frame(FrameKind::Result, b"{\"a\":1}")),
            ConsoleEvent::Result("{\"a\":1}".into())
        );
        let exit = ExitReport {
            code: 7,
            signal: None,
            global_oom_kill: false,
            uptime_ms: 1400,
        };
        c.feed(&frame(FrameKind::Exit, &json(exit)));
        assert_eq!(c.phase(), Phase::Exited);
        assert_eq!(c.exit(), Some(exit));
        assert!(c.panic().is_none());
    }

    #[test]
    fn panic_is_detected_with_its_reason() {
        let mut c = Console::new();
        c.feed("[    2.1] sysrq: Trigger a crash");
        c.feed("[    2.1] Kernel panic - not syncing: sysrq triggered crash");
        assert_eq!(c.panic(), Some("sysrq triggered crash"));
        let tail = c.tail().0;
        assert_eq!(tail.len(), 2);
        assert!(tail[0].contains("sysrq: Trigger a crash"));
    }

    #[test]
    fn oom_is_detected_from_forwarded_kernel_records() {
        let mut c = Console::new();
        c.feed(&frame(
            FrameKind::Kernel,
            b"Out of memory: Killed process 77 (hog) total-vm:2000kB",
        ));
        assert_eq!(
            c.oom(),
            Some("Out of memory: Killed process 77 (hog) total-vm:2000kB")
        );
        let mut c = Console::new();
        c.feed("[ 5.0] Memory cgroup out of memory: Killed process 9 (x)");
        assert!(c.oom().is_none(), "a cgroup OOM is not the guest's OOM");
    }

    #[test]
    fn frames_out_of_order_and_torn_frames_are_garbled() {
        let mut c = Console::new();
        let exit = ExitReport {
            code: 0,
            signal: None,
            global_oom_kill: false,
            uptime_ms: 1,
        };
        assert!(matches!(
            c.feed(&frame(FrameKind::Exit, &json(exit))),
            ConsoleEvent::Garbled(_)
        ));
        assert_eq!(c.phase(), Phase::Booting);
        let good = frame(FrameKind::Stdout, b"data");
        let torn = format!("{}[ 1.0] oops{}", &good[..12], &good[12..]);
        assert!(matches!(c.feed(&torn), ConsoleEvent::Garbled(_)));
    }

    #[test]
    fn init_failure_is_remembered() {
        let mut c = Console::new();
        c.feed(&frame(FrameKind::Failed, b"mount /proc: EPERM"));
        assert_eq!(c.phase(), Phase::Failed);
        assert_eq!(c.failure(), Some("mount /proc: EPERM"));
        assert!(c.tail().to_string().contains("mount /proc: EPERM"));
    }

    #[test]
    fn tail_keeps_the_last_lines_only() {
        let mut c = Console::new();
        for i in 0..100 {
            c.feed(&format!("line {i}"));
        }
        let tail = c.tail().0;
        assert_eq!(tail.len(), TAIL_LINES);
        assert_eq!(tail.last().unwrap(), "line 99");
    }
}
