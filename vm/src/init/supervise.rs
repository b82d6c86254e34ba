//! Runs the command and relays everything until it ends: stdout/stderr pipes, the result
//! FIFO and kernel log records go out as frames, with an `A` frame every [`ALIVE_EVERY`]
//! while the command runs; SIGCHLD (through a signalfd) reaps the command and any orphan
//! reparented to PID 1.

use super::kmsg::Kmsg;
use super::serial::Serial;
use super::{io, sys, uptime_ms, InitError};
use crate::channel::{ExitReport, FrameKind, StartReport};
use crate::cmdline::GuestCommand;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// After the command ended: stop relaying once its pipes are quiet this long...
const QUIET_AFTER_EXIT: Duration = Duration::from_millis(50);
/// ...or at the latest this long after (a grandchild may hold the pipes open).
const MAX_DRAIN_AFTER_EXIT: Duration = Duration::from_secs(2);

/// While the command runs, init says it is alive at least this often. A panicked kernel runs
/// nothing, so the host takes a frame sent after a "Kernel panic" line on the console as proof
/// that a process in the guest wrote that line (root can write to /dev/console), not the kernel.
/// Well under the host's grace after a panic line (10 s), so a quiet command still proves it.
const ALIVE_EVERY: Duration = Duration::from_secs(2);

const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A pipe end being relayed; None once it reached EOF.
struct Relay {
    kind: FrameKind,
    fd: Option<File>,
}

impl Relay {
    fn new(kind: FrameKind, fd: Option<OwnedFd>) -> Result<Self, InitError> {
        if let Some(fd) = &fd {
            set_nonblocking(fd)?;
        }
        Ok(Relay {
            kind,
            fd: fd.map(File::from),
        })
    }

    /// Reads what is there and sends it; returns whether anything came.
    fn pump(&mut self, serial: &mut Serial) -> Result<bool, InitError> {
        let mut any = false;
        let mut buf = vec![0u8; crate::channel::MAX_FRAME_PAYLOAD];
        while let Some(f) = self.fd.as_mut() {
            match f.read(&mut buf) {
                Ok(0) => self.fd = None,
                Ok(n) => {
                    any = true;
                    serial
                        .send(self.kind, &buf[..n])
                        .map_err(io("write to the serial channel"))?;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io("read the command's output")(e)),
            }
        }
        Ok(any)
    }
}

fn set_nonblocking(fd: &impl AsRawFd) -> Result<(), InitError> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL).map_err(sys("fcntl(F_GETFL)"))?;
    let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
    fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(flags)).map_err(sys("fcntl(F_SETFL, O_NONBLOCK)"))?;
    Ok(())
}

/// Splits FIFO bytes into lines and sends each complete line as a result frame.
struct ResultLines {
    fifo: File,
    pending: Vec<u8>,
}

impl ResultLines {
    fn pump(&mut self, serial: &mut Serial) -> Result<(), InitError> {
        let mut buf = vec![0u8; 65536];
        loop {
            match self.fifo.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io("read the result FIFO")(e)),
            }
        }
        while let Some(nl) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=nl).collect();
            serial
                .send(FrameKind::Result, &line[..line.len() - 1])
                .map_err(io("write to the serial channel"))?;
        }
        Ok(())
    }
}

fn exit_code_for_spawn_error(e: &std::io::Error) -> i32 {
    match e.kind() {
        std::io::ErrorKind::NotFound => 127,
        _ => 126,
    }
}

pub fn run(
    command: &GuestCommand,
    serial: &mut Serial,
    fifo: File,
    mut kmsg: Kmsg,
) -> Result<(), InitError> {
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None)
        .map_err(sys("sigprocmask(SIG_BLOCK, SIGCHLD)"))?;
    let sigfd = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .map_err(sys("signalfd(SIGCHLD)"))?;

    let cwd = command
        .cwd
        .as_deref()
        .filter(|c| std::path::Path::new(c).is_dir())
        .unwrap_or("/");
    let mut cmd = Command::new(&command.argv[0]);
    cmd.args(&command.argv[1..])
        .env_clear()
        .env("PATH", PATH)
        .env("HOME", "/root")
        .env("TERM", "dumb")
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for kv in &command.env {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    // Set last so nothing passed in can override it.
    cmd.env(crate::guest::IN_VM_ENV, "1");
    // std's spawn resets the signal mask and dispositions in the child.
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let msg = format!("breakout-init: cannot run {}: {e}\n", command.argv[0]);
            let start = StartReport {
                pid: 0,
                uptime_ms: uptime_ms(),
            };
            send_json(serial, FrameKind::Started, &start)?;
            serial
                .send(FrameKind::Stderr, msg.as_bytes())
                .map_err(io("write to the serial channel"))?;
            let report = ExitReport {
                code: exit_code_for_spawn_error(&e),
                signal: None,
                global_oom_kill: false,
                uptime_ms: uptime_ms(),
            };
            return send_json(serial, FrameKind::Exit, &report);
        }
    };
    let pid = Pid::from_raw(child.id() as i32);
    send_json(
        serial,
        FrameKind::Started,
        &StartReport {
            pid: pid.as_raw(),
            uptime_ms: uptime_ms(),
        },
    )?;
    // Init protects itself from the OOM killer only now, so the command (which inherits the
    // value at fork) keeps the default.
    std::fs::write("/proc/self/oom_score_adj", "-1000")
        .map_err(io("write /proc/self/oom_score_adj"))?;

    let mut out = Relay::new(FrameKind::Stdout, child.stdout.take().map(OwnedFd::from))?;
    let mut err = Relay::new(FrameKind::Stderr, child.stderr.take().map(OwnedFd::from))?;
    let mut results = ResultLines {
        fifo,
        pending: Vec::new(),
    };
    let mut status: Option<WaitStatus> = None;
    let mut exited_at: Option<Instant> = None;
    let mut oom_victims: Vec<i32> = Vec::new();
    let mut alive_at = Instant::now();

    loop {
        let timeout = if exited_at.is_some() {
            PollTimeout::from(QUIET_AFTER_EXIT.as_millis() as u16)
        } else {
            let left = ALIVE_EVERY.saturating_sub(alive_at.elapsed());
            PollTimeout::from(left.as_millis() as u16)
        };
        let ready = {
            let mut fds = vec![
                PollFd::new(sigfd.as_fd(), PollFlags::POLLIN),
                PollFd::new(results.fifo.as_fd(), PollFlags::POLLIN),
                PollFd::new(kmsg.file().as_fd(), PollFlags::POLLIN),
            ];
            if let Some(f) = &out.fd {
                fds.push(PollFd::new(f.as_fd(), PollFlags::POLLIN));
            }
            if let Some(f) = &err.fd {
                fds.push(PollFd::new(f.as_fd(), PollFlags::POLLIN));
            }
            match poll(&mut fds, timeout) {
                Ok(n) => n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(sys("poll")(e)),
            }
        };
        // Drain everything each round: cheap, and keeps the order simple.
        while let Ok(Some(_)) = sigfd.read_signal() {}
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(ws) => {
                    if ws.pid() == Some(pid) {
                        status = Some(ws);
                        exited_at = Some(Instant::now());
                    }
                }
            }
        }
        let got_out = out.pump(serial)?;
        let got_err = err.pump(serial)?;
        results.pump(serial)?;
        forward_kmsg(&mut kmsg, serial, &mut oom_victims)?;
        if exited_at.is_none() && alive_at.elapsed() >= ALIVE_EVERY {
            serial
                .send(FrameKind::Alive, b"")
                .map_err(io("write to the serial channel"))?;
            alive_at = Instant::now();
        }
        if let Some(t) = exited_at {
            let pipes_closed = out.fd.is_none() && err.fd.is_none();
            let quiet = ready == 0 || !(got_out || got_err);
            if pipes_closed || (quiet && ready == 0) || t.elapsed() > MAX_DRAIN_AFTER_EXIT {
                break;
            }
        }
    }
    results.pump(serial)?;
    forward_kmsg(&mut kmsg, serial, &mut oom_victims)?;

    let (code, signal) = match status {
        Some(WaitStatus::Exited(_, code)) => (code, None),
        Some(WaitStatus::Signaled(_, sig, _)) => (128 + sig as i32, Some(sig as i32)),
        other => {
            return Err(InitError::Io {
                step: "waitpid".into(),
                source: std::io::Error::other(format!("unexpected wait status {other:?}")),
            })
        }
    };
    let report = ExitReport {
        code,
        signal,
        global_oom_kill: signal == Some(libc::SIGKILL) && oom_victims.contains(&pid.as_raw()),
        uptime_ms: uptime_ms(),
    };
    send_json(serial, FrameKind::Exit, &report)
}

fn forward_kmsg(
    kmsg: &mut Kmsg,
    serial: &mut Serial,
    oom_victims: &mut Vec<i32>,
) -> Result<(), InitError> {
    for record in kmsg.read_available() {
        if let Some(victim) = record.global_oom_victim() {
            oom_victims.push(victim);
        }
        if let Some(kind) = record.frame_kind() {
            serial
                .send(kind, record.text.as_bytes())
                .map_err(io("write to the serial channel"))?;
        }
    }
    Ok(())
}

fn send_json<T: serde::Serialize>(
    serial: &mut Serial,
    kind: FrameKind,
    value: &T,
) -> Result<(), InitError> {
    let bytes = serde_json::to_vec(value).map_err(|e| InitError::Io {
        step: "encode a report".into(),
        source: std::io::Error::other(e),
    })?;
    serial
        .send(kind, &bytes)
        .map_err(io("write to the serial channel"))
}
