//! The wire between the guest's init and the host: framed lines on the serial console.
//!
//! # Design
//!
//! The cloud kernel has exactly one transport that works without modules: the 8250 UART ttyS0
//! (virtio-console and virtio-mmio are modules there, and `-M microvm` has one ISA serial port).
//! So everything shares ttyS0, and the guest init keeps the two kinds of traffic apart:
//!
//! * Kernel console output is cut down to emergencies: init writes `1` to
//!   `/proc/sys/kernel/printk` (only `KERN_EMERG`; a panic raises the level itself and prints
//!   in full). Kernel log records of warning level or worse are read by init from `/dev/kmsg`
//!   and forwarded as `K` frames, so they arrive whole and never split a frame.
//! * Everything init sends is a *frame*: one line
//!   `@@BKO1 <kind> <len> <base64 payload> <fnv1a-32 hex>\n`. The length and checksum make a
//!   frame that was torn by interleaved kernel text (possible only during a panic) detectable;
//!   such a line is treated as console text, never as data.
//! * Anything that is not a frame is a console line (boot messages, panic text).
//!
//! The serial line is put in raw mode by init, so bytes are not translated; the host accepts
//! `\r\n` as well since the kernel's own console writes use it.
//!
//! Frames, in the order a run sends them: `R` (init ready, JSON timings), `S` (command
//! started), any number of `O` (stdout bytes), `E` (stderr bytes), `J` (one result line, no
//! newline), `K` (kernel log record), then `X` (command ended, JSON [`ExitReport`]) or `F`
//! (init failed, text). After `X` or `F` init reboots and QEMU exits (`-no-reboot`).

use base64::Engine;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Every frame line starts with this.
pub const FRAME_PREFIX: &str = "@@BKO1 ";

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
    /// One kernel log record (text).
    Kernel,
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
            'X' => FrameKind::Exit,
            'F' => FrameKind::Failed,
            _ => return None,
        })
    }
}

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub kind: FrameKind,
    pub payload: Vec<u8>,
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
    #[error("frame has {0} fields, expected 4 after the prefix")]
    FieldCount(usize),
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

/// Encodes one frame as a complete line, newline included.
pub fn encode(kind: FrameKind, payload: &[u8]) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD.encode(payload);
    format!(
        "{FRAME_PREFIX}{} {} {} {:08x}\n",
        kind.letter(),
        payload.len(),
        b64,
        fnv1a32(payload)
    )
    .into_bytes()
}

/// Decodes a line (without its line ending). `None`: not a frame at all (console text);
/// `Some(Err)`: a frame that was damaged.
pub fn decode(line: &str) -> Option<Result<Frame, FrameError>> {
    let rest = line.strip_prefix(FRAME_PREFIX)?;
    Some(decode_fields(rest))
}

fn decode_fields(rest: &str) -> Result<Frame, FrameError> {
    let fields: Vec<&str> = rest.split(' ').collect();
    if fields.len() != 4 {
        return Err(FrameError::FieldCount(fields.len()));
    }
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
    let got = fnv1a32(&payload);
    if format!("{got:08x}") != fields[3] {
        return Err(FrameError::Checksum {
            got,
            want: fields[3].to_string(),
        });
    }
    Ok(Frame { kind, payload })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_all_kinds_and_binary_payloads() {
        let kinds = [
            FrameKind::Ready,
            FrameKind::Started,
            FrameKind::Stdout,
            FrameKind::Stderr,
            FrameKind::Result,
            FrameKind::Kernel,
            FrameKind::Exit,
            FrameKind::Failed,
        ];
        let payload: Vec<u8> = (0..=255u8).chain([b'\n', b'\r', 0]).collect();
        for kind in kinds {
            let line = encode(kind, &payload);
            assert_eq!(line.last(), Some(&b'\n'));
            let text = std::str::from_utf8(&line[..line.len() - 1]).unwrap();
            assert!(!text.contains('\n'));
            let frame = decode(text).unwrap().unwrap();
            assert_eq!(frame.kind, kind);
            assert_eq!(frame.payload, payload);
        }
    }

    #[test]
    fn empty_payload_round_trips() {
        let line = encode(FrameKind::Stdout, b"");
        let text = std::str::from_utf8(&line).unwrap().trim_end();
        assert_eq!(decode(text).unwrap().unwrap().payload, b"");
    }

    #[test]
    fn console_text_is_not_a_frame() {
        assert!(decode("[    1.23] Kernel panic - not syncing: x").is_none());
        assert!(decode("@@BKO2 O 1 YQ== 00000000").is_none());
    }

    #[test]
    fn torn_frame_is_detected() {
        let line = encode(FrameKind::Stdout, b"hello world, a longer payload");
        let text = std::str::from_utf8(&line).unwrap().trim_end().to_string();
        // Kernel text landing in the middle of the base64 field.
        let (a, b) = text.split_at(20);
        let torn = format!("{a}[ 3.1] sysrq: Trigger a crash{b}");
        assert!(decode(&torn).unwrap().is_err());
        // A few base64 characters lost.
        let lost = format!("{}{}", &text[..20], &text[24..]);
        assert!(decode(&lost).unwrap().is_err());
        // Checksum changed.
        let mut bad = text.clone();
        bad.replace_range(bad.len() - 1.., "x");
        assert!(matches!(
            decode(&bad).unwrap(),
            Err(FrameError::Checksum { .. })
        ));
    }

    #[test]
    fn unknown_kind_is_an_error() {
        assert_eq!(
            decode("@@BKO1 Q 0  811c9dc5").unwrap(),
            Err(FrameError::Kind("Q".into()))
        );
    }
}
