//! Which syscall a seccomp filter killed the payload for.
//!
//! A filter kill (SECCOMP_RET_KILL_PROCESS / KILL_THREAD) ends the process with SIGSYS and leaves
//! nothing in the wait status but the signal. The kernel does record the call: every kill is an
//! audit record of type 1326 (AUDIT_SECCOMP, logged by default: kernel.seccomp.actions_logged
//! holds kill_process and kill_thread), which without an audit daemon goes to the kernel log as
//! `audit: type=1326 ... pid=N ... sig=31 arch=c000003e syscall=250 ...`. We read it back from
//! /dev/kmsg after the payload died with SIGSYS, matching the payload's pid. The alternatives
//! are worse: SECCOMP_RET_TRAP puts the number in siginfo but lets the payload catch SIGSYS and
//! carry on (not what a kill profile says), and a user-notification listener costs every launch.
//! Without the record (an audit daemon takes them, /dev/kmsg unreadable, the pid not in our pid
//! namespace) the line still says the filter is the likely cause, without a name.

use serde::{Deserialize, Serialize};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;

/// The kernel's record of one filter kill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterKill {
    /// The syscall's name for its architecture, when libseccomp knows the number.
    pub syscall: Option<String>,
    /// The number as the kernel saw it (x32 numbers carry 0x40000000).
    pub nr: i64,
    /// libseccomp's architecture token without the prefix (`X86_64`, `X86`, `X32`), or the
    /// audit value in hex when unknown.
    pub arch: String,
    /// True when the record was found; false when only the signal says it was a filter.
    pub recorded: bool,
}

impl std::fmt::Display for FilterKill {
    /// `payload killed by seccomp: syscall keyctl (layer seccomp)`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.recorded {
            return write!(
                f,
                "payload killed by SIGSYS, most likely by the seccomp filter (no kernel audit record of the syscall readable) (layer seccomp)"
            );
        }
        let native = self.arch
            == crate::seccomp::policy::native_scmp_arch().trim_start_matches("SCMP_ARCH_");
        match (&self.syscall, native) {
            (Some(name), true) => write!(f, "payload killed by seccomp: syscall {name}")?,
            (Some(name), false) => write!(
                f,
                "payload killed by seccomp: syscall {name} (architecture {}, number {})",
                self.arch, self.nr
            )?,
            (None, _) => write!(
                f,
                "payload killed by seccomp: syscall number {} (architecture {})",
                self.nr, self.arch
            )?,
        }
        write!(f, " (layer seccomp)")
    }
}

/// What to say about a payload (host pid `pid`) that died with SIGSYS under a seccomp filter:
/// the kernel's record when there is one, else an unnamed kill.
pub fn explain_sigsys(pid: i32) -> FilterKill {
    find_in_kmsg(pid).unwrap_or(FilterKill {
        syscall: None,
        nr: -1,
        arch: String::new(),
        recorded: false,
    })
}

/// For `Outcome`: the filter kill behind a SIGSYS death of the payload (`pid`), when a filter
/// was installed (`filtered`).
pub(crate) fn for_outcome(
    status: crate::outcome::ExitKind,
    pid: Option<nix::unistd::Pid>,
    filtered: bool,
) -> Option<FilterKill> {
    match (status, pid) {
        (crate::outcome::ExitKind::Signaled { signal, .. }, Some(pid))
            if filtered && signal == libc::SIGSYS =>
        {
            Some(explain_sigsys(pid.as_raw()))
        }
        _ => None,
    }
}

/// How long to wait for a kill's record to reach the kernel log. The kernel queues the audit
/// record at the kill, but without an audit daemon it is the kauditd thread that prints it, later:
/// the supervisor can reap the payload and read the log before that thread has run (seen under
/// TCG, where a deny-all workload's step lost its syscall name). The wait ends at the record, so
/// it costs only where none will come (an audit daemon takes the records).
const RECORD_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// The latest seccomp kill record for `pid` in the kernel log, waiting up to RECORD_GRACE for
/// it to be printed.
fn find_in_kmsg(pid: i32) -> Option<FilterKill> {
    let kmsg = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/kmsg")
        .ok()?;
    find_in_log(kmsg, pid, std::time::Instant::now() + RECORD_GRACE)
}

/// The latest kill record for `pid` in `log`, a non-blocking source that returns one record per
/// read as /dev/kmsg does; when the log so far holds none, wait for more until `deadline`.
fn find_in_log(
    mut log: impl Read + std::os::fd::AsFd,
    pid: i32,
    deadline: std::time::Instant,
) -> Option<FilterKill> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut last = None;
    // EAGAIN ends the log so far; EPIPE means records were overwritten while we read (go on
    // with the next).
    let mut buf = vec![0u8; 8192];
    loop {
        match log.read(&mut buf) {
            Ok(0) => return last,
            Ok(n) => {
                let rec = String::from_utf8_lossy(&buf[..n]);
                if let Some(k) = parse_record(&rec, pid) {
                    last = Some(k);
                }
            }
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && last.is_none() => {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    return None;
                }
                // Rounded up: a wait rounded down to 0 ms would give up before the deadline.
                let ms = i32::try_from(left.as_micros().div_ceil(1000)).unwrap_or(i32::MAX);
                let left = PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX);
                let mut fds = [PollFd::new(log.as_fd(), PollFlags::POLLIN)];
                match poll(&mut fds, left) {
                    Ok(0) => return None,
                    Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
                    Err(_) => return None,
                }
            }
            Err(_) => return last,
        }
    }
}

/// One kmsg record (`6,1234,5678,-;audit: type=1326 audit(...): ... pid=N ... sig=31
/// arch=c000003e syscall=250 compat=0 ...`) if it is a SIGSYS kill of `pid`.
pub fn parse_record(rec: &str, pid: i32) -> Option<FilterKill> {
    let (prefix, msg) = rec.split_once(';')?;
    // The kernel's own records have facility 0 (a syslog value below 8); anything written into
    // /dev/kmsg from user space, a payload's forged "type=1326" line included, has more.
    let syslog: u32 = prefix.split(',').next()?.parse().ok()?;
    if syslog >= 8 {
        return None;
    }
    let msg = msg.lines().next()?;
    if !msg.contains("type=1326 ") {
        return None;
    }
    let field = |key: &str| {
        msg.split_whitespace()
            .find_map(|w| w.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
    };
    if field("pid")?.parse::<i32>().ok()? != pid || field("sig")? != libc::SIGSYS.to_string() {
        return None;
    }
    let audit_arch = u32::from_str_radix(field("arch")?, 16).ok()?;
    let nr: i64 = field("syscall")?.parse().ok()?;
    let (arch, syscall) = name_for(audit_arch, nr);
    Some(FilterKill {
        syscall,
        nr,
        arch,
        recorded: true,
    })
}

/// The audit architecture (AUDIT_ARCH_*, the same values as libseccomp's tokens) and number
/// as libseccomp names them.
pub(crate) fn name_for(audit_arch: u32, nr: i64) -> (String, Option<String>) {
    const X32_BIT: i64 = 0x4000_0000;
    let token = match audit_arch {
        0xc000_003e if nr & X32_BIT != 0 => Some("SCMP_ARCH_X32"),
        0xc000_003e => Some("SCMP_ARCH_X86_64"),
        0x4000_0003 => Some("SCMP_ARCH_X86"),
        0xc000_00b7 => Some("SCMP_ARCH_AARCH64"),
        0x4000_0028 => Some("SCMP_ARCH_ARM"),
        0xc000_00f3 => Some("SCMP_ARCH_RISCV64"),
        0x8000_0016 => Some("SCMP_ARCH_S390X"),
        0xc000_0015 => Some("SCMP_ARCH_PPC64LE"),
        _ => None,
    };
    let Some(token) = token else {
        return (format!("{audit_arch:#x}"), None);
    };
    let name = token.parse::<libseccomp::ScmpArch>().ok().and_then(|a| {
        let nr = i32::try_from(nr).ok()?;
        libseccomp::ScmpSyscall::from(nr).get_name_by_arch(a).ok()
    });
    (token.trim_start_matches("SCMP_ARCH_").to_string(), name)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REC: &str = "5,812,273844065,-;audit: type=1326 audit(1796137163.887:2): auid=4294967295 uid=0 gid=0 ses=4294967295 pid=15190 comm=\"sh\" exe=\"/usr/bin/dash\" sig=31 arch=c000003e syscall=250 compat=0 ip=0x7f420360e4f7 code=0x80000000\n SUBSYSTEM=x\n";

    #[test]
    fn a_kill_record_names_the_syscall() {
        let k = parse_record(REC, 15190).unwrap();
        assert_eq!(k.syscall.as_deref(), Some("keyctl"));
        assert_eq!((k.nr, k.arch.as_str(), k.recorded), (250, "X86_64", true));
        assert_eq!(
            k.to_string(),
            "payload killed by seccomp: syscall keyctl (layer seccomp)"
        );
    }

    #[test]
    fn other_pids_signals_and_record_types_do_not_match() {
        assert!(parse_record(REC, 1519).is_none());
        assert!(parse_record(&REC.replace("sig=31", "sig=0"), 15190).is_none());
        assert!(parse_record(&REC.replace("type=1326", "type=1300"), 15190).is_none());
        assert!(parse_record("6,1,2,-;random text pid=15190", 15190).is_none());
        // Written from user space (facility user): not the kernel's record.
        assert!(parse_record(&REC.replacen("5,", "13,", 1), 15190).is_none());
    }

    #[test]
    fn compat_and_x32_calls_are_named_for_their_abi() {
        // int 0x80 from a 64-bit process: i386 numbering (102 is socketcall there).
        let i386 = REC.replace("arch=c000003e syscall=250", "arch=40000003 syscall=102");
        let k = parse_record(&i386, 15190).unwrap();
        assert_eq!(
            (k.arch.as_str(), k.syscall.as_deref()),
            ("X86", Some("socketcall"))
        );
        assert!(k
            .to_string()
            .contains("socketcall (architecture X86, number 102)"));
        // x32: the x86_64 audit arch with bit 30 in the number (0x40000000 + 101 = ptrace).
        let x32 = REC.replace("syscall=250", "syscall=1073741925");
        let k = parse_record(&x32, 15190).unwrap();
        assert_eq!(k.arch, "X32");
    }

    #[test]
    fn without_a_record_the_line_still_points_at_the_filter() {
        let k = explain_sigsys(i32::MAX);
        assert!(!k.recorded);
        assert!(k.to_string().contains("SIGSYS") && k.to_string().ends_with("(layer seccomp)"));
    }

    /// A seqpacket pair stands in for /dev/kmsg: one record per read, EAGAIN when empty (the
    /// UnixStream wrapper only lends it read()).
    fn log_pair() -> (std::os::unix::net::UnixStream, std::os::fd::OwnedFd) {
        use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
        let (reader, writer) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        )
        .unwrap();
        (std::os::unix::net::UnixStream::from(reader), writer)
    }

    #[test]
    fn a_record_printed_after_the_reap_is_still_found() {
        let (reader, writer) = log_pair();
        nix::unistd::write(&writer, b"6,1,2,-;unrelated").unwrap();
        let late = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(200));
            nix::unistd::write(&writer, REC.as_bytes()).unwrap();
            writer
        });
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let k = find_in_log(&reader, 15190, deadline).expect("the late record");
        assert_eq!(k.syscall.as_deref(), Some("keyctl"));
        drop(late.join());
    }

    #[test]
    fn without_the_record_the_wait_ends_at_the_deadline() {
        let (reader, _writer) = log_pair();
        let start = std::time::Instant::now();
        let deadline = start + std::time::Duration::from_millis(100);
        assert!(find_in_log(&reader, 15190, deadline).is_none());
        assert!(start.elapsed() >= std::time::Duration::from_millis(100));
    }
}
