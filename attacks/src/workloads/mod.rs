//! Workloads: benign programs run beside the probes, the usability half of every verdict. A
//! profile that blocks every probe by killing every process is useless; a workload shows what
//! still works under it.
//!
//! Each workload is a command line and an outside check: the outside picks a fresh word (the
//! nonce) for every attempt, passes it to the program, computes on its own what the program must
//! print for it, and compares. The exit code alone never decides (it must be 0 *and* the output
//! must be the expected one). A workload that does not work is `broken` with the failing step:
//! the syscall the filter killed (the runtime's audit record, `Outcome::seccomp_kill`), the
//! sandbox's own setup failure, or the program's own account of its failing syscall and errno
//! (the C programs print `FAIL <syscall>: <ERRNO>`; Python's last traceback line; git's and the
//! shell's last error line).
//!
//! Their files (Python 3 and its standard library, git, the C programs of `workload.c`) are not
//! in the guest's first image: [`bundle`] says what the second image holds, and the harness loads
//! it only when workloads run.

use crate::{LaunchRequest, Launcher, Limits};
use breakout_runtime::{ExitKind, Outcome};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::{Duration, Instant};

mod checks;
pub use checks::expected;

/// The dynamically linked C workload program in the guest.
pub const C_PROGRAM: &str = "/usr/libexec/breakout-workloads/workload";
/// The same source linked statically.
pub const STATIC_PROGRAM: &str = "/usr/libexec/breakout-workloads/workload-static";
/// Debian's Python 3.11 interpreter (bookworm's python3.11-minimal).
pub const PYTHON: &str = "/usr/bin/python3.11";
/// Debian's git.
pub const GIT: &str = "/usr/bin/git";
/// busybox's shell (in the first image).
pub const SHELL: &str = "/bin/sh";

/// The C source of every C workload (one binary, one mode per workload).
pub const C_SOURCE: &str = include_str!("workload.c");

/// Memory the memory workload touches when the profile sets no limit.
pub const DEFAULT_MEMORY_BYTES: u64 = 64 << 20;
/// Live processes the processes workload starts when the profile sets no pids limit.
pub const DEFAULT_PROCESSES: u64 = 32;

/// A workload's verdict under one profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WorkloadVerdict {
    /// The outside check passed: the expected output and exit 0.
    Works,
    /// It ran and did not do its job; the failing step says where.
    Broken,
    /// It could not be tried here (the reason says why).
    Skipped,
}

impl WorkloadVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadVerdict::Works => "works",
            WorkloadVerdict::Broken => "broken",
            WorkloadVerdict::Skipped => "skipped",
        }
    }
}

/// What a workload is, for `list workloads` and reports.
#[derive(Debug, Clone, Copy)]
pub struct WorkloadMeta {
    pub id: &'static str,
    pub title: &'static str,
    /// What the program does.
    pub what: &'static str,
    /// How the outside checks it.
    pub check: &'static str,
    /// Guest files it needs (the program first).
    pub needs: &'static [&'static str],
}

/// What the outside chose for one attempt.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub nonce: String,
    /// Bytes for the memory workload: half the profile's memory.max, or the default.
    pub memory_bytes: u64,
    /// Processes for the processes workload: half the profile's pids.max, or the default.
    pub processes: u64,
}

impl Attempt {
    pub fn new(nonce: String, limits: &Limits) -> Self {
        Attempt {
            nonce,
            memory_bytes: limits.memory_max.map_or(DEFAULT_MEMORY_BYTES, |m| m / 2),
            processes: limits.pids_max.map_or(DEFAULT_PROCESSES, |p| p / 2),
        }
    }
}

/// One workload.
pub struct Workload {
    pub meta: WorkloadMeta,
    /// The command line for an attempt.
    pub argv: fn(&Attempt) -> Vec<String>,
}

/// The result of one attempt.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkloadRun {
    pub verdict: WorkloadVerdict,
    /// One line: what the check saw.
    pub reason: String,
    /// For `broken`: the failing step ("seccomp killed clone3", "socket: EPERM", "timed out").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stderr_tail: String,
    pub duration_ms: u64,
}

/// How much of a workload's stderr a result keeps.
const STDERR_TAIL: usize = 1024;

/// Every workload, in a stable order.
pub fn workloads() -> Vec<&'static Workload> {
    checks::ALL.iter().collect()
}

/// The workload with this id.
pub fn workload(id: &str) -> Option<&'static Workload> {
    checks::ALL.iter().find(|w| w.meta.id == id)
}

/// Runs one attempt through `launcher` and checks it from outside.
pub fn run_workload(
    workload: &Workload,
    launcher: &dyn Launcher,
    limits: &Limits,
    timeout: Duration,
) -> WorkloadRun {
    let start = Instant::now();
    let done = |verdict, reason: String, step: Option<String>, stderr: &str| WorkloadRun {
        verdict,
        reason,
        step,
        stderr_tail: tail(stderr, STDERR_TAIL),
        duration_ms: start.elapsed().as_millis() as u64,
    };
    if let Some(missing) = workload.meta.needs.iter().find(|p| !Path::new(p).exists()) {
        return done(
            WorkloadVerdict::Skipped,
            format!(
                "{missing} is not in this guest (the workloads' image was not loaded, or is built without it)"
            ),
            None,
            "",
        );
    }
    let nonce = match crate::world::fresh_secret() {
        Ok(s) => format!("w{s}"),
        Err(e) => {
            return done(
                WorkloadVerdict::Skipped,
                format!("no fresh nonce: {e}"),
                None,
                "",
            )
        }
    };
    let attempt = Attempt::new(nonce, limits);
    let request = LaunchRequest {
        argv: (workload.argv)(&attempt),
        cgroup: None,
        timeout,
        controlling_tty: None,
        stdin: None,
    };
    let launched = match launcher.launch(&request) {
        Ok(l) => l,
        Err(e) => {
            return done(
                WorkloadVerdict::Broken,
                format!("the sandbox did not start it: {e}"),
                Some("launch".into()),
                "",
            )
        }
    };
    let stdout = String::from_utf8_lossy(&launched.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&launched.stderr).into_owned();
    let want = expected(workload.meta.id, &attempt);
    let (verdict, reason, step) = judge(
        &want,
        &stdout,
        &stderr,
        launched.outcome.as_ref(),
        launched.timed_out,
        timeout,
    );
    done(verdict, reason, step, &stderr)
}

/// The outside check of one attempt: the expected output and exit 0 make `works`; anything
/// else is `broken` with the most precise failing step the evidence gives.
pub fn judge(
    want: &str,
    stdout: &str,
    stderr: &str,
    outcome: Option<&Outcome>,
    timed_out: bool,
    timeout: Duration,
) -> (WorkloadVerdict, String, Option<String>) {
    let broken = |reason: String, step: String| (WorkloadVerdict::Broken, reason, Some(step));
    if timed_out {
        let step = failing_line(stderr).unwrap_or_else(|| "timeout".into());
        return broken(
            format!(
                "timed out after {:.1} s (killed by the harness){}",
                timeout.as_secs_f64(),
                output_so_far(want, stdout)
            ),
            step,
        );
    }
    if let Some(f) = outcome.and_then(|o| o.setup_failure.as_ref()) {
        return broken(
            format!(
                "the sandbox could not start it: setup failed at {} ({}: {})",
                f.step,
                f.syscall,
                f.errno_name()
            ),
            format!("{}: {}", f.syscall, f.errno_name()),
        );
    }
    if let Some(kill) = outcome.and_then(|o| o.seccomp_kill.as_ref()) {
        let step = match &kill.syscall {
            Some(name) if kill.recorded => format!("{name}: killed by seccomp"),
            _ => "killed by SIGSYS (seccomp)".to_string(),
        };
        return broken(format!("{kill}{}", output_so_far(want, stdout)), step);
    }
    let status = outcome.map(|o| o.status);
    let same = stdout == want;
    match status {
        Some(ExitKind::Exited { code: 0 }) if same => (
            WorkloadVerdict::Works,
            "the expected output for this attempt's nonce, exit 0".into(),
            None,
        ),
        Some(ExitKind::Exited { code }) if same => broken(
            format!("the expected output, but exit {code}"),
            failing_line(stderr).unwrap_or_else(|| format!("exit {code}")),
        ),
        Some(ExitKind::Signaled { signal, .. }) => broken(
            format!(
                "killed by signal {signal} ({}){}",
                signal_name(signal),
                output_so_far(want, stdout)
            ),
            failing_line(stderr).unwrap_or_else(|| format!("signal {}", signal_name(signal))),
        ),
        Some(ExitKind::Exited { code }) => broken(
            format!("exit {code}{}", output_so_far(want, stdout)),
            failing_line(stderr).unwrap_or_else(|| first_difference(want, stdout)),
        ),
        None => broken(
            format!("no exit status{}", output_so_far(want, stdout)),
            failing_line(stderr).unwrap_or_else(|| first_difference(want, stdout)),
        ),
    }
}

/// The program's own account of its failing step: a C workload's `FAIL syscall: ERRNO` line,
/// Python's last traceback line, else the last line of stderr that reads like an error.
fn failing_line(stderr: &str) -> Option<String> {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if let Some(l) = lines.iter().rev().find_map(|l| l.strip_prefix("FAIL ")) {
        return Some(l.to_string());
    }
    lines
        .iter()
        .rev()
        .find(|l| {
            let low = l.to_ascii_lowercase();
            [
                "error",
                "fatal",
                "denied",
                "not permitted",
                "cannot",
                "can't",
                "failed",
                "no such",
            ]
            .iter()
            .any(|w| low.contains(w))
        })
        .or(lines.last())
        .map(|l| l.chars().take(200).collect())
}

fn output_so_far(want: &str, stdout: &str) -> String {
    if stdout == want {
        String::new()
    } else {
        format!("; {}", first_difference(want, stdout))
    }
}

/// The first line where the output differs from the expected one.
fn first_difference(want: &str, got: &str) -> String {
    let w: Vec<&str> = want.lines().collect();
    let g: Vec<&str> = got.lines().collect();
    for i in 0..w.len().max(g.len()) {
        match (w.get(i), g.get(i)) {
            (Some(a), Some(b)) if a == b => continue,
            (Some(a), Some(b)) => {
                return format!("output line {} is {b:?}, expected {a:?}", i + 1);
            }
            (Some(a), None) => {
                return format!("output ends before line {} (expected {a:?})", i + 1);
            }
            (None, Some(b)) => return format!("unexpected output line {}: {b:?}", i + 1),
            (None, None) => break,
        }
    }
    "output differs (line endings)".into()
}

fn signal_name(signal: i32) -> String {
    nix::sys::signal::Signal::try_from(signal)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| format!("signal {signal}"))
}

fn tail(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].to_string()
}

/// What the second guest image must hold for the workloads: Debian packages (by name; fetched
/// for the host's release) and the paths kept from them, plus the C programs.
pub mod bundle {
    /// Debian packages: Python 3.11 with its standard library, git, and the libraries they load
    /// that the first image does not hold.
    pub const PACKAGES: &[&str] = &[
        "python3.11-minimal",
        "libpython3.11-minimal",
        "libpython3.11-stdlib",
        "libsqlite3-0",
        "libexpat1",
        "zlib1g",
        "git",
        "libpcre2-8-0",
    ];
    /// Paths kept from the unpacked packages (libraries come by the binaries' ELF headers).
    pub const KEEP: &[&str] = &[
        "/usr/bin/python3.11",
        "/usr/lib/python3.11",
        "/usr/bin/git",
        "/usr/share/git-core/templates",
    ];
    /// Left out of what is kept (text prefixes): tests, documentation data, what only
    /// development needs, and the packages and extension modules that bring large libraries
    /// (OpenSSL, Berkeley DB, ncurses, readline, libmpdec, liblzma) or serve nothing an ordinary
    /// script of the workloads' kind needs (asyncio, email, xml, http). Every byte here is unpacked
    /// and copied at every boot that runs workloads under TCG.
    pub const DROP: &[&str] = &[
        "/usr/lib/python3.11/test",
        "/usr/lib/python3.11/pydoc_data",
        "/usr/lib/python3.11/ensurepip",
        "/usr/lib/python3.11/idlelib",
        "/usr/lib/python3.11/tkinter",
        "/usr/lib/python3.11/turtledemo",
        "/usr/lib/python3.11/lib2to3",
        "/usr/lib/python3.11/config-3.11-x86_64-linux-gnu",
        "/usr/lib/python3.11/asyncio",
        "/usr/lib/python3.11/email",
        "/usr/lib/python3.11/xml",
        "/usr/lib/python3.11/xmlrpc",
        "/usr/lib/python3.11/http",
        "/usr/lib/python3.11/unittest",
        "/usr/lib/python3.11/distutils",
        "/usr/lib/python3.11/wsgiref",
        "/usr/lib/python3.11/dbm",
        "/usr/lib/python3.11/curses",
        "/usr/lib/python3.11/venv",
        "/usr/lib/python3.11/lib-dynload/_test",
        "/usr/lib/python3.11/lib-dynload/_ctypes",
        "/usr/lib/python3.11/lib-dynload/xxlimited",
        "/usr/lib/python3.11/lib-dynload/_ssl",
        "/usr/lib/python3.11/lib-dynload/_hashlib",
        "/usr/lib/python3.11/lib-dynload/_dbm",
        "/usr/lib/python3.11/lib-dynload/_gdbm",
        "/usr/lib/python3.11/lib-dynload/_curses",
        "/usr/lib/python3.11/lib-dynload/readline",
        "/usr/lib/python3.11/lib-dynload/_decimal",
        "/usr/lib/python3.11/lib-dynload/_lzma",
        "/usr/lib/python3.11/lib-dynload/_bz2",
        "/usr/lib/python3.11/lib-dynload/_codecs_",
        "/usr/lib/python3.11/lib-dynload/_uuid",
        "/usr/lib/python3.11/lib-dynload/nis",
        "/usr/lib/python3.11/lib-dynload/_crypt",
        "/usr/lib/python3.11/lib-dynload/audioop",
        "/usr/lib/python3.11/lib-dynload/ossaudiodev",
    ];
    /// The C programs: (guest path, cc flags).
    pub const PROGRAMS: &[(&str, &[&str])] = &[
        (super::C_PROGRAM, &["-O2", "-pthread"]),
        (super::STATIC_PROGRAM, &["-O2", "-pthread", "-static"]),
    ];
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DirectLauncher;
    use std::process::Command;

    /// Runs every workload whose program the host has with no sandbox (C programs built from
    /// `workload.c` into a temporary directory, busybox's sh with its applets first on PATH
    /// through the launcher's argv) and checks it with the outside's own expectation.
    #[test]
    fn every_workload_the_host_can_run_works_unsandboxed() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("workload.c");
        std::fs::write(&src, C_SOURCE).unwrap();
        let mut built = std::collections::HashMap::new();
        for (guest, flags) in bundle::PROGRAMS {
            let out = dir.path().join(Path::new(guest).file_name().unwrap());
            let ok = Command::new("cc")
                .args(*flags)
                .arg("-o")
                .arg(&out)
                .arg(&src)
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            assert!(ok, "cc {flags:?} failed for {guest}");
            built.insert(*guest, out);
        }
        let limits = Limits {
            pids_max: Some(16),
            memory_max: Some(32 << 20),
            ..Limits::default()
        };
        let mut ran = 0;
        for w in workloads() {
            let attempt = Attempt::new(
                format!("w{}", crate::world::fresh_secret().unwrap()),
                &limits,
            );
            let mut argv = (w.argv)(&attempt);
            if let Some(local) = built.get(argv[0].as_str()) {
                argv[0] = local.display().to_string();
            } else if !Path::new(&argv[0]).exists() {
                continue;
            }
            let launched = DirectLauncher
                .launch(&LaunchRequest {
                    argv,
                    cgroup: None,
                    timeout: Duration::from_secs(60),
                    controlling_tty: None,
                    stdin: None,
                })
                .unwrap();
            let stdout = String::from_utf8_lossy(&launched.stdout);
            let stderr = String::from_utf8_lossy(&launched.stderr);
            let (verdict, reason, step) = judge(
                &expected(w.meta.id, &attempt),
                &stdout,
                &stderr,
                launched.outcome.as_ref(),
                launched.timed_out,
                Duration::from_secs(60),
            );
            assert_eq!(
                verdict,
                WorkloadVerdict::Works,
                "{}: {reason} (step {step:?}); stdout {stdout:?} stderr {stderr:?}",
                w.meta.id
            );
            ran += 1;
        }
        assert!(ran >= 10, "only {ran} workloads could run on this host");
    }

    #[test]
    fn a_program_missing_from_the_guest_is_one_line_and_skipped_not_run() {
        static MISSING: Workload = Workload {
            meta: WorkloadMeta {
                id: "missing",
                title: "missing",
                what: "",
                check: "",
                needs: &["/nonexistent/breakout-workload"],
            },
            argv: |_| vec!["/nonexistent/breakout-workload".into()],
        };
        let run = run_workload(
            &MISSING,
            &DirectLauncher,
            &Limits::default(),
            Duration::from_secs(5),
        );
        assert_eq!(run.verdict, WorkloadVerdict::Skipped);
        assert!(!run.reason.contains('\n'));
        assert!(
            run.reason
                .starts_with("/nonexistent/breakout-workload is not in this guest"),
            "{}",
            run.reason
        );
    }

    #[test]
    fn a_workload_past_its_timeout_is_broken_at_timeout_in_one_line() {
        static SLOW: Workload = Workload {
            meta: WorkloadMeta {
                id: "slow",
                title: "slow",
                what: "",
                check: "",
                needs: &["/bin/sh"],
            },
            argv: |_| vec!["/bin/sh".into(), "-c".into(), "sleep 30".into()],
        };
        let run = run_workload(
            &SLOW,
            &DirectLauncher,
            &Limits::default(),
            Duration::from_millis(300),
        );
        assert_eq!(run.verdict, WorkloadVerdict::Broken);
        assert_eq!(run.step.as_deref(), Some("timeout"));
        assert!(!run.reason.contains('\n'), "{}", run.reason);
        assert!(
            run.reason.starts_with("timed out after 0.3 s"),
            "{}",
            run.reason
        );
    }

    #[test]
    fn twelve_workloads_with_unique_ids_and_an_expectation_each() {
        let all = workloads();
        assert_eq!(all.len(), 12);
        let ids: std::collections::BTreeSet<_> = all.iter().map(|w| w.meta.id).collect();
        assert_eq!(ids.len(), 12);
        let a = Attempt::new("wabc".into(), &Limits::default());
        for w in all {
            assert!(!expected(w.meta.id, &a).is_empty(), "{}", w.meta.id);
            assert!(workload(w.meta.id).is_some());
        }
    }

    #[test]
    fn half_the_limits_or_the_defaults() {
        let a = Attempt::new("n".into(), &Limits::default());
        assert_eq!(
            (a.memory_bytes, a.processes),
            (DEFAULT_MEMORY_BYTES, DEFAULT_PROCESSES)
        );
        let l = Limits {
            pids_max: Some(64),
            memory_max: Some(256 << 20),
            ..Limits::default()
        };
        let a = Attempt::new("n".into(), &l);
        assert_eq!((a.memory_bytes, a.processes), (128 << 20, 32));
    }

    fn exited(code: i32) -> Outcome {
        Outcome {
            status: ExitKind::Exited { code },
            cgroup: None,
            setup_failure: None,
            landlock: None,
            seccomp_kill: None,
            recording: None,
        }
    }

    #[test]
    fn the_failing_step_comes_from_the_best_evidence() {
        let t = Duration::from_secs(5);
        let (v, _, step) = judge(
            "x\n",
            "",
            "FAIL socket: EPERM\n",
            Some(&exited(1)),
            false,
            t,
        );
        assert_eq!(
            (v, step.as_deref()),
            (WorkloadVerdict::Broken, Some("socket: EPERM"))
        );
        let tb = "Traceback (most recent call last):\n  File \"<string>\", line 1\nPermissionError: [Errno 1] Operation not permitted\n";
        let (_, _, step) = judge("x\n", "", tb, Some(&exited(1)), false, t);
        assert_eq!(
            step.as_deref(),
            Some("PermissionError: [Errno 1] Operation not permitted")
        );
        let mut killed = exited(0);
        killed.status = ExitKind::Signaled {
            signal: libc::SIGSYS,
            core_dumped: false,
        };
        killed.seccomp_kill = Some(breakout_runtime::seccomp::FilterKill {
            syscall: Some("clone3".into()),
            nr: 435,
            arch: "X86_64".into(),
            recorded: true,
        });
        let (v, reason, step) = judge("x\n", "", "", Some(&killed), false, t);
        assert_eq!(
            (v, step.as_deref()),
            (WorkloadVerdict::Broken, Some("clone3: killed by seccomp"))
        );
        assert!(reason.contains("clone3"), "{reason}");
        let (v, reason, step) = judge("x\n", "x\n", "", Some(&exited(0)), true, t);
        assert_eq!(
            (v, step.as_deref()),
            (WorkloadVerdict::Broken, Some("timeout"))
        );
        assert!(reason.starts_with("timed out after 5.0 s"), "{reason}");
    }

    #[test]
    fn output_alone_or_exit_code_alone_is_not_enough() {
        let t = Duration::from_secs(5);
        assert_eq!(
            judge("a\n", "a\n", "", Some(&exited(0)), false, t).0,
            WorkloadVerdict::Works
        );
        let (v, reason, _) = judge("a\n", "b\n", "", Some(&exited(0)), false, t);
        assert_eq!(v, WorkloadVerdict::Broken);
        assert!(
            reason.contains("output line 1 is \"b\", expected \"a\""),
            "{reason}"
        );
        assert_eq!(
            judge("a\n", "a\n", "", Some(&exited(3)), false, t).0,
            WorkloadVerdict::Broken
        );
    }
}
