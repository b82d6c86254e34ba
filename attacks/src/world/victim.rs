//! Victim processes: a child of the outside (the `breakout-probe --victim` mode) holding a secret
//! in a heap buffer and in its environment, running as root or as the sandbox uid. The outside
//! holds a pidfd, so "the victim died" is an observation no pid reuse can fake.

use super::{WorldError, SANDBOX_GID, SANDBOX_UID};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The environment variable that carries the secret into the victim (it stays in its environ).
pub const VICTIM_SECRET_ENV: &str = "BREAKOUT_VICTIM_SECRET";

/// Who the victim runs as. The kernel's rules differ: a signal or ptrace between equal uids needs
/// no capability, so against a same-uid victim only a namespace (or seccomp) helps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VictimKind {
    /// uid 0 outside.
    Root,
    /// The uid the `uid` layer runs the payload as, seen from outside (101000).
    SandboxUid,
}

impl VictimKind {
    pub fn name(self) -> &'static str {
        match self {
            VictimKind::Root => "root",
            VictimKind::SandboxUid => "sandbox-uid",
        }
    }
}

/// Extra things a victim holds.
#[derive(Debug, Clone, Default)]
pub struct VictimOptions {
    /// Make the victim hold its own mount and UTS namespaces (root victims only): a tmpfs on this
    /// directory with a file `secret` holding the secret exists only in its mount namespace, and
    /// its hostname is `bv-<secret>`. The setns probe's oracle.
    pub ns_holder: Option<PathBuf>,
}

/// A running victim; killed and reaped on Drop.
#[derive(Debug)]
pub struct Victim {
    child: Child,
    pidfd: OwnedFd,
    kind: VictimKind,
    secret_addr: u64,
    secret_len: usize,
}

impl Victim {
    pub(super) fn spawn(
        probe_bin: &Path,
        kind: VictimKind,
        secret: &str,
        options: &VictimOptions,
    ) -> Result<Victim, WorldError> {
        let mut cmd = Command::new(probe_bin);
        cmd.arg("--victim");
        if let Some(dir) = &options.ns_holder {
            if kind != VictimKind::Root {
                return Err(WorldError::Victim(
                    "a namespace-holding victim must run as root".into(),
                ));
            }
            cmd.arg("--ns-holder").arg(dir);
        }
        cmd.env_clear()
            .env(VICTIM_SECRET_ENV, secret)
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if kind == VictimKind::SandboxUid {
            // std drops supplementary groups (setgroups(0)) when root sets a uid.
            cmd.uid(SANDBOX_UID).gid(SANDBOX_GID);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| WorldError::io("starting the victim (probe binary)", probe_bin, e))?;
        let mut line = String::new();
        let read = match child.stdout.take() {
            Some(stdout) => BufReader::new(stdout).read_line(&mut line),
            None => Ok(0),
        };
        let ready = match read {
            Ok(0) | Err(_) => None,
            Ok(_) => parse_ready(&line),
        };
        let Some((secret_addr, secret_len)) = ready else {
            let _ = child.kill();
            let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
            return Err(WorldError::Victim(format!(
                "{} victim did not report ready (got {:?}, {status})",
                kind.name(),
                line.trim()
            )));
        };
        let pidfd = match pidfd_open(child.id() as i32) {
            Ok(fd) => fd,
            Err(errno) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(WorldError::sys("pidfd_open(victim)", errno));
            }
        };
        Ok(Victim {
            child,
            pidfd,
            kind,
            secret_addr,
            secret_len,
        })
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn kind(&self) -> VictimKind {
        self.kind
    }

    /// Where the secret lies in the victim's memory, and its length.
    pub fn secret_addr(&self) -> u64 {
        self.secret_addr
    }

    pub fn secret_len(&self) -> usize {
        self.secret_len
    }

    /// True while the victim has not exited (the pidfd is not readable).
    pub fn is_alive(&self) -> bool {
        !self.wait_dead(Duration::ZERO)
    }

    /// Whether a SIGKILL is pending for the victim (sent, not yet acted on, as on a slow guest),
    /// from the SigPnd/ShdPnd masks of `/proc/<pid>/status`; `None` when the status cannot be
    /// read or parsed, which tells nothing either way.
    ///
    /// A SIGKILL sent with kill(2) stays visible here from the moment kill() returns until the
    /// victim is dead: the sender queues it on the shared pending set and, in the same locked
    /// section, marks the group exiting and queues it on every thread (complete_signal); the
    /// victim takes it off only its own thread's set (get_signal), and the shared set is flushed
    /// when the victim is reaped (__exit_signal), which the outside does only on Drop.
    pub fn kill_pending(&self) -> Option<bool> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        sigkill_in_masks(&status)
    }

    /// Waits up to `timeout` for the victim to die; true when it did.
    pub fn wait_dead(&self, timeout: Duration) -> bool {
        let ms = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(self.pidfd.as_fd(), PollFlags::POLLIN)];
        loop {
            match poll(&mut fds, PollTimeout::from(ms)) {
                Ok(n) => return n > 0,
                Err(Errno::EINTR) => continue,
                // A pidfd that cannot be polled tells nothing: report alive (never a false kill).
                Err(_) => return false,
            }
        }
    }
}

impl Drop for Victim {
    fn drop(&mut self) {
        // The child is unreaped until wait(), so its pid cannot have been reused.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether SIGKILL is in the SigPnd or ShdPnd mask of a `/proc/<pid>/status` text; `None` when
/// either mask is missing or unreadable.
fn sigkill_in_masks(status: &str) -> Option<bool> {
    let sigkill_bit = 1u64 << (libc::SIGKILL - 1);
    let mask = |key: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(key))
            .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
    };
    let (thread, shared) = (mask("SigPnd:")?, mask("ShdPnd:")?);
    Some((thread | shared) & sigkill_bit != 0)
}

fn parse_ready(line: &str) -> Option<(u64, usize)> {
    let mut parts = line.split_whitespace();
    if parts.next()? != "ready" {
        return None;
    }
    let addr = u64::from_str_radix(parts.next()?.trim_start_matches("0x"), 16).ok()?;
    let len = parts.next()?.parse().ok()?;
    Some((addr, len))
}

fn pidfd_open(pid: i32) -> Result<OwnedFd, Errno> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1; no memory is
    // passed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(Errno::last());
    }
    let fd = i32::try_from(fd).map_err(|_| Errno::EBADF)?;
    // SAFETY: the kernel just returned this descriptor to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The victim's side, run by `breakout-probe --victim [--ns-holder DIR]`: prints
/// `ready <addr> <len>` and sleeps until killed. Returns only on a setup error (exit code).
pub fn run_victim_main(args: &[String]) -> i32 {
    let secret = match std::env::var(VICTIM_SECRET_ENV) {
        Ok(s) if !s.is_empty() => s,
        _ => {
            eprintln!("breakout-probe --victim: {VICTIM_SECRET_ENV} is not set");
            return 2;
        }
    };
    let ns_holder = match args {
        [] => None,
        [flag, dir] if flag == "--ns-holder" => Some(PathBuf::from(dir)),
        other => {
            eprintln!("breakout-probe --victim: unexpected arguments {other:?} (expected nothing or --ns-holder DIR)");
            return 2;
        }
    };
    if let Some(dir) = ns_holder {
        if let Err(e) = hold_namespaces(&dir, &secret) {
            eprintln!("breakout-probe --victim --ns-holder {}: {e}", dir.display());
            return 1;
        }
    }
    // The secret lives in a heap buffer that stays put until the process dies.
    let buffer: &'static [u8] = Box::leak(secret.into_bytes().into_boxed_slice());
    let mut out = std::io::stdout().lock();
    if writeln!(
        out,
        "ready {:#x} {}",
        buffer.as_ptr() as usize,
        buffer.len()
    )
    .and_then(|_| out.flush())
    .is_err()
    {
        return 1;
    }
    drop(out);
    loop {
        nix::unistd::pause();
        // Keep the buffer observably alive.
        std::hint::black_box(buffer);
    }
}

fn hold_namespaces(dir: &Path, secret: &str) -> Result<(), String> {
    use nix::mount::{mount, MsFlags};
    use nix::sched::{unshare, CloneFlags};
    unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUTS)
        .map_err(|e| format!("unshare(CLONE_NEWNS|CLONE_NEWUTS): {e}"))?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| format!("mount(/, MS_REC|MS_PRIVATE): {e}"))?;
    std::fs::create_dir_all(dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
    mount(
        Some("tmpfs"),
        dir,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("size=64k,mode=0755"),
    )
    .map_err(|e| format!("mount(tmpfs, {}): {e}", dir.display()))?;
    let file = dir.join("secret");
    std::fs::write(&file, secret).map_err(|e| format!("write {}: {e}", file.display()))?;
    nix::unistd::sethostname(format!("bv-{secret}")).map_err(|e| format!("sethostname: {e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_line_parses() {
        assert_eq!(parse_ready("ready 0x55d0 32\n"), Some((0x55d0, 32)));
        assert_eq!(parse_ready("hello"), None);
        assert_eq!(parse_ready("ready zz 1"), None);
    }

    #[test]
    fn sigkill_is_read_from_either_pending_mask() {
        let status = |thread: &str, shared: &str| {
            format!("Name:\tx\nSigPnd:\t{thread}\nShdPnd:\t{shared}\nSigBlk:\t0000000000000000\n")
        };
        let none = "0000000000000000";
        let kill = "0000000000000100";
        assert_eq!(sigkill_in_masks(&status(none, none)), Some(false));
        assert_eq!(sigkill_in_masks(&status(kill, none)), Some(true));
        assert_eq!(sigkill_in_masks(&status(none, kill)), Some(true));
        // SIGTERM (bit 15) is not SIGKILL.
        assert_eq!(
            sigkill_in_masks(&status(none, "0000000000004000")),
            Some(false)
        );
        assert_eq!(sigkill_in_masks("Name:\tx\nSigPnd:\t0\n"), None);
        assert_eq!(sigkill_in_masks(&status("zz", none)), None);
    }
}
