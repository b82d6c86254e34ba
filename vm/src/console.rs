//! The host's view of the guest's two serial ports: a state machine fed line by line (from
//! the console port with [`Console::feed`], from the data port with [`Console::feed_data`])
//! that separates frames from console text, tracks the run's phase, checks the frames'
//! numbering so that no frame goes missing unnoticed, remembers the last lines for error
//! messages and notices kernel panics and the global OOM killer.
//!
//! Root in the guest can write text where the kernel's appears (see `crate::channel`): log
//! records from user space arrive as their own frame kind and are never read for a panic or an
//! OOM kill; a message counts only where the kernel starts it, not inside text it quotes; and a
//! panic claimed on the console is withdrawn when init is seen alive after it
//! ([`Console::withdraw_panic`]).

use crate::channel::{self, ExitReport, FrameHeader, FrameKind, ReadyReport, StartReport};
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
    /// A log record written to /dev/kmsg from user space (facility not 0).
    UserLog(String),
    /// Init said it is alive.
    Alive,
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
    numbering: Numbering,
    /// Frames delivered so far (whole, in order).
    frames: u64,
}

/// How many damaged lines a loss report names one by one.
const NAMED_DAMAGE: usize = 8;

/// The frames' sequence numbers as they arrived: what never came, came twice, or came torn.
#[derive(Debug, Default)]
struct Numbering {
    /// The number the next frame should carry.
    next: u64,
    /// Numbers that were skipped, as ranges `[from, to)`.
    gaps: Vec<(u64, u64)>,
    /// Numbers that arrived again (or out of order) and were not delivered.
    repeated: Vec<u64>,
    /// Headers of frame lines that arrived damaged (the first [`NAMED_DAMAGE`]).
    damaged: Vec<FrameHeader>,
    /// Damaged lines whose header was unreadable too, and lines on the data port that were
    /// not frames at all.
    unreadable: usize,
    damaged_total: usize,
}

impl Numbering {
    /// Whether a frame with this number is the next one and should be delivered.
    fn arrived(&mut self, seq: u64) -> bool {
        if seq < self.next {
            self.repeated.push(seq);
            return false;
        }
        if seq > self.next {
            self.gaps.push((self.next, seq));
        }
        self.next = seq + 1;
        true
    }

    fn damaged(&mut self, header: Option<FrameHeader>) {
        self.damaged_total += 1;
        match header {
            Some(h) if self.damaged.len() < NAMED_DAMAGE => self.damaged.push(h),
            Some(_) => {}
            None => self.unreadable += 1,
        }
    }

    fn is_clean(&self) -> bool {
        self.gaps.is_empty() && self.repeated.is_empty() && self.damaged_total == 0
    }

    /// One sentence naming every frame that was lost, or None when nothing was.
    fn describe(&self) -> Option<String> {
        if self.is_clean() {
            return None;
        }
        let name = |h: &FrameHeader| format!("{} of {} bytes", h.kind.letter(), h.len);
        let mut parts: Vec<String> = Vec::new();
        for &(from, to) in &self.gaps {
            let torn: Vec<String> = self
                .damaged
                .iter()
                .filter(|h| (from..to).contains(&h.seq))
                .map(|h| format!("{} {}", h.seq, name(h)))
                .collect();
            let range = if to - from == 1 {
                format!("frame {from}")
            } else {
                format!("frames {from}-{}", to - 1)
            };
            parts.push(if torn.is_empty() {
                format!("{range} never arrived")
            } else {
                format!("{range} lost (arrived torn: {})", torn.join(", "))
            });
        }
        // A damaged frame whose number no later frame skipped: the last ones of the run.
        for h in &self.damaged {
            if !self.gaps.iter().any(|&(f, t)| (f..t).contains(&h.seq)) {
                parts.push(format!("frame {} ({}) arrived torn", h.seq, name(h)));
            }
        }
        let unnamed = self.damaged_total - self.damaged.len() - self.unreadable;
        let unreadable = self.unreadable + unnamed;
        if unreadable > 0 {
            parts.push(format!(
                "{unreadable} damaged line(s) that could not be told apart"
            ));
        }
        if !self.repeated.is_empty() {
            let shown: Vec<String> = self
                .repeated
                .iter()
                .take(NAMED_DAMAGE)
                .map(u64::to_string)
                .collect();
            parts.push(format!(
                "frame(s) {} arrived again or out of order and were dropped",
                shown.join(", ")
            ));
        }
        Some(parts.join("; "))
    }
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
            numbering: Numbering::default(),
            frames: 0,
        }
    }

    /// What the channel lost, in one sentence naming the frames (number, kind and size when
    /// their header survived); None when every frame arrived whole, once and in order.
    pub fn loss(&self) -> Option<String> {
        self.numbering.describe()
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The kernel's panic reason, once a panic was seen.
    pub fn panic(&self) -> Option<&str> {
        self.panic.as_deref()
    }

    /// Forgets the panic the console claimed, because a frame showed init still running after
    /// the claim: a panicked kernel runs nothing, so a process in the guest wrote that line
    /// (root can write to /dev/console). The tail keeps the line and says why it was dropped;
    /// a later claim is taken again.
    pub fn withdraw_panic(&mut self) {
        if let Some(reason) = self.panic.take() {
            self.remember(&format!(
                "(not a kernel panic: init sent frames after the line claiming one ({reason:.120}), \
                 so a process in the guest wrote it)"
            ));
        }
    }

    /// How many frames were delivered so far: one more means init was running when it sent it.
    pub fn frames(&self) -> u64 {
        self.frames
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

    /// Feeds one line from the console port (its `\n` and any `\r` already removed):
    /// kernel text, or a frame init sent before the data port was open (or without one).
    pub fn feed(&mut self, line: &str) -> ConsoleEvent {
        match channel::decode(line) {
            None => self.kernel_text(line),
            Some(decoded) => self.frame(line, decoded),
        }
    }

    /// Feeds one line from the data port. Nothing but init writes there, so a line that is
    /// not a frame is damage, not console text.
    pub fn feed_data(&mut self, line: &str) -> ConsoleEvent {
        match channel::decode(line) {
            None => {
                self.numbering.damaged(None);
                self.remember(&format!("(not a frame, on the data port) {line:.200}"));
                ConsoleEvent::Garbled(line.to_string())
            }
            Some(decoded) => self.frame(line, decoded),
        }
    }

    fn frame(
        &mut self,
        line: &str,
        decoded: Result<channel::Frame, channel::FrameError>,
    ) -> ConsoleEvent {
        let frame = match decoded {
            Err(e) => {
                self.numbering.damaged(channel::peek_header(line));
                self.remember(&format!("(garbled frame: {e}) {line:.200}"));
                return ConsoleEvent::Garbled(line.to_string());
            }
            Ok(frame) => frame,
        };
        if !self.numbering.arrived(frame.seq) {
            self.remember(&format!(
                "(frame {} arrived again or out of order, dropped) {line:.200}",
                frame.seq
            ));
            return ConsoleEvent::Garbled(line.to_string());
        }
        self.frames += 1;
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
            FrameKind::UserLog => {
                let t = text();
                self.remember(&format!("(user-space log record, not the kernel's) {t}"));
                ConsoleEvent::UserLog(t)
            }
            FrameKind::Alive => ConsoleEvent::Alive,
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
        const PANIC: &str = "Kernel panic - not syncing:";
        let message = message(line);
        if self.panic.is_none() {
            let reason = message.strip_prefix(PANIC).or_else(|| {
                message
                    .strip_prefix("---[ end ")
                    .and_then(|m| m.strip_prefix(PANIC))
            });
            if let Some(reason) = reason {
                self.panic = Some(reason.trim().trim_end_matches(" ]---").to_string());
            }
        }
        if self.oom.is_none()
            && (message.starts_with("Out of memory: Killed process")
                || message.starts_with("Out of memory and no killable processes"))
        {
            self.oom = Some(message.to_string());
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

/// The kernel's message in a line: `[    1.234567] text` and `[    1.234567][    T1] text` (a
/// caller id) -> `text`. Messages are recognised only at its start: kernel messages quote text
/// a process chose (execve of a file named "Kernel panic - not syncing: x" with an empty argv
/// is warned about with the path).
fn message(line: &str) -> &str {
    let mut t = line.trim_start();
    for _ in 0..2 {
        match t.strip_prefix('[').and_then(|r| r.split_once(']')) {
            Some((_, rest)) => t = rest.trim_start(),
            None => break,
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::encode;

    /// Frames numbered as init numbers them.
    #[derive(Default)]
    struct Init {
        seq: u64,
    }

    impl Init {
        fn frame(&mut self, kind: FrameKind, payload: &[u8]) -> String {
            let line = frame_numbered(self.seq, kind, payload);
            self.seq += 1;
            line
        }
    }

    fn frame_numbered(seq: u64, kind: FrameKind, payload: &[u8]) -> String {
        String::from_utf8(encode(seq, kind, payload))
            .unwrap()
            .trim_end()
            .to_string()
    }

    fn frame(kind: FrameKind, payload: &[u8]) -> String {
        frame_numbered(0, kind, payload)
    }

    fn json(v: impl serde::Serialize) -> Vec<u8> {
        serde_json::to_vec(&v).unwrap()
    }

    #[test]
    fn a_normal_run_walks_the_phases() {
        let mut c = Console::new();
        let mut init = Init::default();
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
            c.feed_data(&init.frame(FrameKind::Ready, &json(ready))),
            ConsoleEvent::Ready(ready)
        );
        let start = StartReport {
            pid: 42,
            uptime_ms: 1351,
        };
        c.feed_data(&init.frame(FrameKind::Started, &json(start)));
        assert_eq!(c.phase(), Phase::Running);
        assert_eq!(
            c.feed_data(&init.frame(FrameKind::Stdout, b"hi\n")),
            ConsoleEvent::Stdout(b"hi\n".to_vec())
        );
        assert_eq!(
            c.feed_data(&init.frame(FrameKind::Result, b"{\"a\":1}")),
            ConsoleEvent::Result("{\"a\":1}".into())
        );
        let exit = ExitReport {
            code: 7,
            signal: None,
            global_oom_kill: false,
            uptime_ms: 1400,
        };
        c.feed_data(&init.frame(FrameKind::Exit, &json(exit)));
        assert_eq!(c.phase(), Phase::Exited);
        assert_eq!(c.exit(), Some(exit));
        assert!(c.panic().is_none());
        assert_eq!(c.loss(), None);
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
    fn a_panic_is_recognised_behind_a_caller_id_and_at_its_end_marker() {
        let mut c = Console::new();
        c.feed("[    2.1][    T1] Kernel panic - not syncing: Attempted to kill init!");
        assert_eq!(c.panic(), Some("Attempted to kill init!"));
        let mut c = Console::new();
        c.feed("[    2.2] ---[ end Kernel panic - not syncing: sysrq triggered crash ]---");
        assert_eq!(c.panic(), Some("sysrq triggered crash"));
    }

    /// `echo "<4>Kernel panic - not syncing: forged" > /dev/kmsg` as root in the guest: init
    /// forwards the record as a user-space one, which is shown and never read for a panic.
    #[test]
    fn a_user_space_log_record_is_never_a_panic_or_an_oom() {
        let mut c = Console::new();
        let mut init = Init::default();
        let forged = init.frame(FrameKind::UserLog, b"Kernel panic - not syncing: forged");
        assert_eq!(
            c.feed_data(&forged),
            ConsoleEvent::UserLog("Kernel panic - not syncing: forged".into())
        );
        c.feed_data(&init.frame(
            FrameKind::UserLog,
            b"Out of memory: Killed process 1 (init)",
        ));
        assert_eq!(c.panic(), None);
        assert_eq!(c.oom(), None);
        assert!(c
            .tail()
            .to_string()
            .contains("(user-space log record, not the kernel's) Kernel panic"));
    }

    /// The kernel's own records quote text a process chose: fs/exec.c warns "process '%s'
    /// launched '%s' with NULL argv" with the path the payload passed to execve.
    #[test]
    fn a_kernel_message_quoting_panic_text_is_not_a_panic() {
        let mut c = Console::new();
        let mut init = Init::default();
        c.feed_data(&init.frame(
            FrameKind::Kernel,
            b"process 'probe' launched '/tmp/Kernel panic - not syncing: forged' with NULL argv: \
              empty string added",
        ));
        c.feed_data(&init.frame(
            FrameKind::Kernel,
            b"process 'probe' launched '/tmp/Out of memory: Killed process 1 (init)' with NULL \
              argv: empty string added",
        ));
        c.feed("[    3.0] process 'p' launched '/Kernel panic - not syncing: x' with NULL argv");
        assert_eq!(c.panic(), None);
        assert_eq!(c.oom(), None);
    }

    #[test]
    fn a_withdrawn_panic_is_forgotten_and_said_so_and_a_later_one_counts() {
        let mut c = Console::new();
        let mut init = Init::default();
        c.feed("Kernel panic - not syncing: forged");
        assert_eq!(c.panic(), Some("forged"));
        let before = c.frames();
        assert_eq!(
            c.feed_data(&init.frame(FrameKind::Alive, b"")),
            ConsoleEvent::Alive
        );
        assert_eq!(c.frames(), before + 1);
        c.withdraw_panic();
        assert_eq!(c.panic(), None);
        assert!(c.tail().to_string().contains("not a kernel panic"));
        c.feed("[    9.0] Kernel panic - not syncing: sysrq triggered crash");
        assert_eq!(c.panic(), Some("sysrq triggered crash"));
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

    /// A result line as big as the largest the harness sends (a cell with its ablation runs).
    fn big_result(n: usize) -> Vec<u8> {
        format!("{{\"n\":{n},\"pad\":\"{}\"}}", "a".repeat(10_000)).into_bytes()
    }

    const SYSRQ_HELP: &str = "[    4.132586] sysrq: HELP : loglevel(0-9) reboot(b) crash(c)";

    #[test]
    fn kernel_text_on_the_console_does_not_touch_frames_on_the_data_port() {
        let mut c = Console::new();
        let mut init = Init::default();
        let mut results = Vec::new();
        for n in 0..20 {
            // The two ports' lines reach the host interleaved in any order.
            c.feed(SYSRQ_HELP);
            if let ConsoleEvent::Result(r) =
                c.feed_data(&init.frame(FrameKind::Result, &big_result(n)))
            {
                results.push(r);
            }
            c.feed("[    4.2] a KERN_EMERG line from /dev/kmsg");
        }
        assert_eq!(results.len(), 20);
        assert_eq!(results[19].as_bytes(), big_result(19));
        assert_eq!(c.loss(), None);
    }

    #[test]
    fn a_result_torn_by_kernel_text_is_named_by_number_kind_and_size() {
        // Without a data port, frames share the console: what the single-port channel lost.
        let mut c = Console::new();
        let mut init = Init::default();
        c.feed(&init.frame(FrameKind::Result, &big_result(0)));
        let torn = init.frame(FrameKind::Result, &big_result(1));
        // The kernel's text lands inside the frame and ends with its own newline, so the host
        // sees the frame's front plus the kernel text, then the frame's rest as another line.
        let (front, rest) = torn.split_at(2400);
        assert!(matches!(
            c.feed(&format!("{front}{SYSRQ_HELP}")),
            ConsoleEvent::Garbled(_)
        ));
        assert!(matches!(c.feed(rest), ConsoleEvent::Kernel(_)));
        assert_eq!(
            c.feed(&init.frame(FrameKind::Result, b"{}")),
            ConsoleEvent::Result("{}".into())
        );
        assert_eq!(
            c.loss().as_deref(),
            Some("frame 1 lost (arrived torn: 1 J of 10016 bytes)")
        );
    }

    #[test]
    fn the_last_frame_torn_is_named_too() {
        let mut c = Console::new();
        let mut init = Init::default();
        c.feed_data(&init.frame(
            FrameKind::Ready,
            &json(ReadyReport {
                init_start_ms: 1,
                init_ready_ms: 2,
            }),
        ));
        let exit = init.frame(FrameKind::Exit, b"{\"code\":0}");
        c.feed(&format!("{}[ 9.0] oops{}", &exit[..20], &exit[20..]));
        assert_eq!(c.exit(), None);
        assert_eq!(
            c.loss().as_deref(),
            Some("frame 1 (X of 10 bytes) arrived torn")
        );
    }

    #[test]
    fn a_frame_that_never_arrived_and_a_repeat_are_reported() {
        let mut c = Console::new();
        let mut init = Init::default();
        c.feed_data(&init.frame(FrameKind::Stdout, b"a"));
        init.seq += 3; // frames 1, 2, 3 lost without a trace
        let four = init.frame(FrameKind::Stdout, b"b");
        assert_eq!(c.feed_data(&four), ConsoleEvent::Stdout(b"b".to_vec()));
        // The same frame again is not delivered twice.
        assert!(matches!(c.feed_data(&four), ConsoleEvent::Garbled(_)));
        assert_eq!(
            c.loss().as_deref(),
            Some(
                "frames 1-3 never arrived; frame(s) 4 arrived again or out of order and were \
                 dropped"
            )
        );
    }

    #[test]
    fn text_on_the_data_port_is_damage_not_console_text() {
        let mut c = Console::new();
        assert!(matches!(
            c.feed_data("[ 1.0] a stray line"),
            ConsoleEvent::Garbled(_)
        ));
        assert_eq!(
            c.loss().as_deref(),
            Some("1 damaged line(s) that could not be told apart")
        );
        assert!(c
            .tail()
            .to_string()
            .contains("not a frame, on the data port"));
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
