//! The wire between the guest's init and the host: framed lines on a serial port of their own.
//!
//! # Design
//!
//! The guest has two 8250 UARTs, both driven by the cloud kernel's built-in driver (no
//! modules): **ttyS0**, the kernel console, and **ttyS1**, the data port. `-M microvm` brings
//! ttyS0; QEMU adds ttyS1 as `-device isa-serial` at the second legacy address (0x2f8), where
//! the kernel finds it through PNP. On the host, QEMU's stdout is ttyS0 and a pipe handed to
//! QEMU as fd [`DATA_FD`] is ttyS1 (see `crate::qemu`).
//!
//! * **Why two.** The kernel writes its console from any CPU between any two bytes a process
//!   writes to the same UART, so a frame on ttyS0 can be torn by kernel text. Cutting the
//!   console to `KERN_EMERG` (`/proc/sys/kernel/printk` = 1) is not enough: SysRq raises the
//!   console level for its own message, and the sysrq-trigger probe makes it print its help
//!   during a run. Measured on the single-port channel: 40 result lines of 10 KB, each followed
//!   by `echo h > /proc/sysrq-trigger`, came back as 31 and 25 in two runs (the help text
//!   landed inside the others' frames, which then failed their checksum and were dropped as
//!   console text). The kernel never writes to ttyS1 (it is not a console and nothing runs a
//!   getty on it), so nothing can tear a frame there: the same test now brings back all 40.
//! * **Frames.** Everything init sends is one line
//!   `@@BKO2 <seq> <kind> <len> <base64 payload> <fnv1a-32 hex>\n`. `seq` counts every frame
//!   init sends, from 0; the checksum covers the sequence number, the kind and the payload.
//!   Init moves to the data port before its first frame (only a failure before /dev is mounted
//!   is reported on the console port), so one run's frames travel on one port, in order, and
//!   the two ports' relative timing does not matter. The host checks that every frame arrives
//!   once and in order: a gap, a repeat, or a line that starts like a frame but does not
//!   decode is a *loss*, and a run with a loss fails with `VmError::ChannelLoss` (exit 248)
//!   naming the frames (number, kind and size when the header survived). So a result cannot
//!   go missing silently; the ways left to lose one (a kernel without a second UART, a root
//!   process in the guest writing to ttyS1) are reported as such.
//! * **The console port** still carries kernel text (boot messages, panics) and, before
//!   `/dev` is mounted, init's own failure frame. When the kernel has no ttyS1 (a `--kernel`
//!   built without legacy ports), init falls back to ttyS0 and says so in a `K` frame; the
//!   console is then cut to emergencies as before and a torn frame is detected, not prevented.
//!   Either way kernel log records of warning level or worse are read by init from
//!   `/dev/kmsg` and forwarded as `K` frames; records of that level written to `/dev/kmsg` from
//!   user space (facility not 0) travel as `U` frames, which the host shows and never reads
//!   for panics or OOM kills.
//! * **Whose text is it.** Root in the guest (the payload under `none`) can write anything to
//!   `/dev/kmsg`, `/dev/console` and the ports themselves. Kernel log records are told apart by
//!   their facility (above). Console text cannot be: a "Kernel panic" line on the console port
//!   is taken as a panic only while nothing shows the guest alive; init sends an `A` frame
//!   every 2 s while the command runs, and a frame that arrives well after the line withdraws
//!   it (a panicked kernel runs nothing).
//!
//! The ports are put in raw mode by init, so bytes are not translated; the host accepts
//! `\r\n` as well since the kernel's own console writes use it.
//!
//! Frames, in the order a run sends them: `R` (init ready, JSON timings), `S` (command
//! started), any number of `O` (stdout bytes), `E` (stderr bytes), `J` (one result line, no
//! newline), `K` (kernel log record), `U` (user-space log record), `A` (init alive, empty),
//! then `X` (command ended, JSON [`ExitReport`]) or `F`
//! (init failed, text). After `X` or `F` init waits until the port drained and powers off; QEMU
//! exits (`-no-reboot`).

use base64::Engine;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Every frame line starts with this (the digit is the format's version).
pub const FRAME_PREFIX: &str = "@@BKO2 ";

/// The guest's data port: frames only, never kernel text.
pub const DATA_PORT: &str = "/dev/ttyS1";

/// The guest's console port: kernel text; frames only before /dev exists or without a data port.
pub const CONSOLE_PORT: &str = "/dev/ttyS0";

/// The descriptor QEMU gets the data port's pipe on (`-chardev file,path=/dev/fd/3`).
pub const DATA_FD: i32 = 3;

/// The largest payload init puts in one frame (bytes before base64).
pub const MAX_FRAME_PAYLOAD: usize = 3072;

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// Init finished its setup; payload: JSON [`ReadyReport`].
    Ready,
    /// The command was started; payload: JSON [`StartReport`].
    Started,
    /// Bytes the command wrote to stdout.
    Stdout,
    /// Bytes the command wrote to stderr.
    Stderr,
    /// One structured result line (JSON), without its newline.
    Result,
    /// One kernel log record (text): facility 0, the kernel's own.
    Kernel,
    /// One log record written to /dev/kmsg from user space (text): shown, never read for a
    /// panic or an OOM kill.
    UserLog,
    /// Init is alive (no payload): sent while the command runs, so that a "Kernel panic" line a
    /// process wrote to the console cannot pass for the kernel's.
    Alive,
    /// The command ended; payload: JSON [`ExitReport`].
    Exit,
    /// Init could not do its job; payload: text.
    Failed,
}

impl FrameKind {
    pub fn letter(self) -> char {
        match self {
            FrameKind::Ready => 'R',
            FrameKind::Started => 'S',
            FrameKind::Stdout => 'O',
            FrameKind::Stderr => 'E',
            FrameKind::Result => 'J',
            FrameKind::Kernel => 'K',
            FrameKind::UserLog => 'U',
            FrameKind::Alive => 'A',
            FrameKind::Exit => 'X',
            FrameKind::Failed => 'F',
        }
    }

    pub fn from_letter(c: char) -> Option<Self> {
        Some(match c {
            'R' => FrameKind::Ready,
            'S' => FrameKind::Started,
            'O' => FrameKind::Stdout,
            'E' => FrameKind::Stderr,
            'J' => FrameKind::Result,
            'K' => FrameKind::Kernel,
            'U' => FrameKind::UserLog,
            'A' => FrameKind::Alive,
            'X' => FrameKind::Exit,
            'F' => FrameKind::Failed,
            _ => return None,
        })
    }
}

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Its place among every frame init sent, from 0.
    pub seq: u64,
    pub kind: FrameKind,
    pub payload: Vec<u8>,
}

/// What can be read from the front of a frame line even when the rest is damaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub seq: u64,
    pub kind: FrameKind,
    /// Payload bytes the frame announced.
    pub len: usize,
}

/// Payload of `R`: guest clock readings (CLOCK_BOOTTIME, ms) when init started and when it was
/// ready to run the command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadyReport {
    pub init_start_ms: u64,
    pub init_ready_ms: u64,
}

/// Payload of `S`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartReport {
    pub pid: i32,
    pub uptime_ms: u64,
}

/// Payload of `X`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitReport {
    /// Exit code, or 128+N when killed by signal N.
    pub code: i32,
    /// The signal that killed the command, if one did.
    pub signal: Option<i32>,
    /// The kernel's global OOM killer killed the command's own process.
    pub global_oom_kill: bool,
    pub uptime_ms: u64,
}

/// A line that looks like a frame but does not decode.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("frame has {0} fields, expected 5 after the prefix")]
    FieldCount(usize),
    #[error("bad sequence number {0:?}")]
    Seq(String),
    #[error("unknown frame kind {0:?}")]
    Kind(String),
    #[error("bad frame length field {0:?}")]
    Length(String),
    #[error("bad base64 payload: {0}")]
    Base64(String),
    #[error("payload is {got} bytes, the frame says {want}")]
    LengthMismatch { got: usize, want: usize },
    #[error("checksum {got:08x} does not match the frame's {want}")]
    Checksum { got: u32, want: String },
}

/// FNV-1a, 32 bit: enough to notice a torn line, not a security measure.
pub fn fnv1a32(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in bytes {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// The checksum of a frame: FNV-1a over the sequence number (8 bytes, little endian), the
/// kind's letter and the payload, so a damaged number or kind is noticed as well.
pub fn frame_checksum(seq: u64, kind: FrameKind, payload: &[u8]) -> u32 {
    let mut bytes = Vec::with_capacity(9 + payload.len());
    bytes.extend_from_slice(&seq.to_le_bytes());
    bytes.push(kind.letter() as u8);
    bytes.extend_from_slice(payload);
    fnv1a32(&bytes)
}

/// Encodes one frame as a complete line, newline included.
pub fn encode(seq: u64, kind: FrameKind, payload: &[u8]) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD.encode(payload);
    format!(
        "{FRAME_PREFIX}{seq} {} {} {} {:08x}\n",
        kind.letter(),
        payload.len(),
        b64,
        frame_checksum(seq, kind, payload)
    )
    .into_bytes()
}

/// The sequence number, kind and length of a frame line whose front survived, however damaged
/// its end is (for naming a lost frame). `None` when the line is not a frame or its header is
/// unreadable too.
pub fn peek_header(line: &str) -> Option<FrameHeader> {
    let mut fields = line.strip_prefix(FRAME_PREFIX)?.splitn(4, ' ');
    let seq = fields.next()?.parse().ok()?;
    let mut letters = fields.next()?.chars();
    let kind = match (letters.next(), letters.next()) {
        (Some(c), None) => FrameKind::from_letter(c)?,
        _ => return None,
    };
    let len = fields.next()?.parse().ok()?;
    Some(FrameHeader { seq, kind, len })
}

/// Decodes a line (without its line ending). `None`: not a frame at all (console text);
/// `Some(Err)`: a frame that was damaged.
pub fn decode(line: &str) -> Option<Result<Frame, FrameError>> {
    let rest = line.strip_prefix(FRAME_PREFIX)?;
    Some(decode_fields(rest))
}

fn decode_fields(rest: &str) -> Result<Frame, FrameError> {
    let fields: Vec<&str> = rest.split(' ').collect();
    if fields.len() != 5 {
        return Err(FrameError::FieldCount(fields.len()));
    }
    let seq: u64 = fields[0]
        .parse()
        .map_err(|_| FrameError::Seq(fields[0].to_string()))?;
    let fields = &fields[1..];
    let mut letters = fields[0].chars();
    let kind = match (letters.next(), letters.next()) {
        (Some(c), None) => FrameKind::from_letter(c),
        _ => None,
    }
    .ok_or_else(|| FrameError::Kind(fields[0].to_string()))?;
    let want: usize = fields[1]
        .parse()
        .map_err(|_| FrameError::Length(fields[1].to_string()))?;
    let payload = base64::engine::general_purpose::STANDARD
        .decode(fields[2])
        .map_err(|e| FrameError::Base64(e.to_string()))?;
    if payload.len() != want {
        return Err(FrameError::LengthMismatch {
            got: payload.len(),
            want,
        });
    }
    let got = frame_checksum(seq, kind, &payload);
    if format!("{got:08x}") != fields[3] {
        return Err(FrameError::Checksum {
            got,
            want: fields[3].to_string(),
        });
    }
    Ok(Frame { seq, kind, payload })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(seq: u64, kind: FrameKind, payload: &[u8]) -> String {
        String::from_utf8(encode(seq, kind, payload))
            .unwrap()
            .trim_end()
            .to_string()
    }

    #[test]
    fn round_trip_all_kinds_and_binary_payloads() {
        let kinds = [
            FrameKind::Ready,
            FrameKind::Started,
            FrameKind::Stdout,
            FrameKind::Stderr,
            FrameKind::Result,
            FrameKind::Kernel,
            FrameKind::UserLog,
            FrameKind::Alive,
            FrameKind::Exit,
            FrameKind::Failed,
        ];
        let payload: Vec<u8> = (0..=255u8).chain([b'\n', b'\r', 0]).collect();
        for (seq, kind) in kinds.into_iter().enumerate() {
            let seq = seq as u64 * 1_000_000_007;
            let bytes = encode(seq, kind, &payload);
            assert_eq!(bytes.last(), Some(&b'\n'));
            let text = std::str::from_utf8(&bytes[..bytes.len() - 1]).unwrap();
            assert!(!text.contains('\n'));
            let frame = decode(text).unwrap().unwrap();
            assert_eq!(frame.seq, seq);
            assert_eq!(frame.kind, kind);
            assert_eq!(frame.payload, payload);
        }
    }

    #[test]
    fn empty_payload_round_trips() {
        assert_eq!(
            decode(&line(0, FrameKind::Stdout, b""))
                .unwrap()
                .unwrap()
                .payload,
            b""
        );
    }

    #[test]
    fn console_text_is_not_a_frame() {
        assert!(decode("[    1.23] Kernel panic - not syncing: x").is_none());
        assert!(decode("@@BKO1 O 1 YQ== 00000000").is_none());
        assert!(peek_header("[ 1.0] sysrq: HELP : loglevel(0-9)").is_none());
    }

    #[test]
    fn torn_frame_is_detected() {
        let text = line(7, FrameKind::Stdout, b"hello world, a longer payload");
        // Kernel text landing in the middle of the base64 field.
        let (a, b) = text.split_at(24);
        let torn = format!("{a}[ 3.1] sysrq: Trigger a crash{b}");
        assert!(decode(&torn).unwrap().is_err());
        // A few base64 characters lost.
        let lost = format!("{}{}", &text[..24], &text[28..]);
        assert!(decode(&lost).unwrap().is_err());
        // Checksum changed.
        let mut bad = text.clone();
        bad.replace_range(bad.len() - 1.., "x");
        assert!(matches!(
            decode(&bad).unwrap(),
            Err(FrameError::Checksum { .. })
        ));
        // The front survived: the lost frame can still be named.
        let header = peek_header(&torn).unwrap();
        assert_eq!(
            header,
            FrameHeader {
                seq: 7,
                kind: FrameKind::Stdout,
                len: 29
            }
        );
        // A frame cut before its length field has no readable header.
        assert!(peek_header(&text[..10]).is_none());
    }

    #[test]
    fn the_checksum_covers_the_sequence_number_and_the_kind() {
        let text = line(12, FrameKind::Result, b"{}");
        // The same payload under another number or kind, checksum kept: refused.
        let renumbered = text.replacen("@@BKO2 12 ", "@@BKO2 13 ", 1);
        assert!(matches!(
            decode(&renumbered).unwrap(),
            Err(FrameError::Checksum { .. })
        ));
        let rekinded = text.replacen(" J ", " O ", 1);
        assert!(matches!(
            decode(&rekinded).unwrap(),
            Err(FrameError::Checksum { .. })
        ));
        assert_eq!(
            decode("@@BKO2 x J 0  00000000").unwrap(),
            Err(FrameError::Seq("x".into()))
        );
    }

    #[test]
    fn unknown_kind_is_an_error() {
        assert_eq!(
            decode("@@BKO2 0 Q 0  811c9dc5").unwrap(),
            Err(FrameError::Kind("Q".into()))
        );
    }
}
