//! Root tests of the syscall recorder (`breakout learn`): programs whose calls we know run under
//! the recording filter, and what comes back must contain those calls, only after execve, with
//! the runtime's own setup calls kept apart.

mod common;

use breakout_runtime::seccomp::record::RUNTIME_TAIL;
use breakout_runtime::{ExitKind, Layer, SandboxConfig};
use common::*;
use libtest_mimic::{Arguments, Failed, Trial};
use std::collections::BTreeSet;

type R = Result<(), Failed>;

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+).into());
        }
    };
}

fn recording(
    cfg: &SandboxConfig,
    argv: Vec<String>,
) -> Result<(Run, breakout_runtime::seccomp::Recording), Failed> {
    require_root()?;
    let mut cfg = cfg.clone();
    cfg.set_record_syscalls(true);
    let r = run(&cfg, argv)?;
    let rec = r
        .outcome
        .recording
        .clone()
        .ok_or("no recording in the outcome")?;
    ensure!(rec.error.is_none(), "recording incomplete: {:?}", rec.error);
    ensure!(
        rec.installed && rec.marker_seen,
        "filter installed {}, marker seen {}",
        rec.installed,
        rec.marker_seen
    );
    Ok((r, rec))
}

/// The self-probe calls keyctl (or ptrace) once with arguments the kernel rejects: exactly that
/// one appears, next to execve and what the loader and Rust's runtime call.
fn a_known_call_is_recorded(call: &'static str, absent: &'static str) -> R {
    let (r, rec) = recording(&config_with(&[]), probe(&["syscall", call]))?;
    ensure!(
        r.outcome.status == ExitKind::Exited { code: 0 },
        "probe: {:?} {}",
        r.outcome.status,
        r.stderr
    );
    // The probe really ran (the kernel's answer, not the recorder's).
    ensure!(r.stdout.trim() != "errno 0", "probe output {:?}", r.stdout);
    let names = rec.native_names();
    for want in [call, "execve", "mmap", "exit_group"] {
        ensure!(names.contains(want), "{want} missing from {names:?}");
    }
    ensure!(
        !names.contains(absent),
        "{absent} recorded but never called: {names:?}"
    );
    ensure!(
        rec.foreign_or_unnamed().is_empty(),
        "unexpected calls {:?}",
        rec.foreign_or_unnamed()
    );
    Ok(())
}

/// A shell forks and runs uname and a child shell's getppid: calls of descendants are recorded.
fn descendants_are_recorded() -> R {
    let (r, rec) = recording(
        &config_with(&[]),
        vec![
            "/bin/sh".into(),
            "-c".into(),
            "uname -r; cat /proc/self/stat >/dev/null".into(),
        ],
    )?;
    ensure!(
        r.outcome.status.code() == 0,
        "sh: {:?} {}",
        r.outcome.status,
        r.stderr
    );
    ensure!(!r.stdout.trim().is_empty(), "uname printed nothing");
    let names = rec.native_names();
    for want in ["uname", "wait4", "execve", "openat"] {
        ensure!(names.contains(want), "{want} missing from {names:?}");
    }
    ensure!(
        names.contains("clone")
            || names.contains("fork")
            || names.contains("vfork")
            || names.contains("clone3"),
        "no process creation in {names:?}"
    );
    Ok(())
}

/// With every layer that has steps after the filter (strict without cgroup-limits), the calls of
/// those steps are the runtime's, not the command's, and all of them are in RUNTIME_TAIL (what a
/// learned profile adds so the runtime can finish its setup under it).
fn the_runtime_tail_is_kept_apart() -> R {
    let mut cfg = SandboxConfig::builtin("strict")?;
    cfg.set_enabled(Layer::CgroupLimits, false);
    cfg.set_enabled(Layer::Seccomp, false);
    let (r, rec) = recording(&cfg, probe(&["syscall", "read"]))?;
    ensure!(
        r.outcome.status.code() == 0,
        "probe: {:?} {} {:?}",
        r.outcome.status,
        r.stderr,
        r.outcome.setup_failure
    );
    let runtime: BTreeSet<String> = rec.runtime.iter().filter_map(|c| c.name.clone()).collect();
    for want in ["capset", "setresuid", "close_range", "prctl"] {
        ensure!(
            runtime.contains(want),
            "{want} not among the runtime's calls {runtime:?}"
        );
    }
    let tail: BTreeSet<String> = RUNTIME_TAIL.iter().map(|s| s.to_string()).collect();
    let extra: Vec<&String> = runtime.difference(&tail).collect();
    ensure!(
        extra.is_empty(),
        "runtime calls missing from RUNTIME_TAIL: {extra:?} (all: {runtime:?})"
    );
    let names = rec.native_names();
    for not in ["capset", "setresuid", "close_range"] {
        ensure!(
            !names.contains(not),
            "{not} counted as the command's: {names:?}"
        );
    }
    Ok(())
}

/// The seccomp layer and recording exclude each other; a recording of a command that is not
/// there still comes back (the execve attempts are the command's), with exit 127.
fn bad_combinations_are_refused() -> R {
    require_root()?;
    let mut cfg = SandboxConfig::builtin("strict")?;
    cfg.set_record_syscalls(true);
    let e = match breakout_runtime::spawn(&cfg, breakout_runtime::Payload::new(["/bin/true"])) {
        Ok(_) => return Err("spawn with the seccomp layer on and recording succeeded".into()),
        Err(e) => e.to_string(),
    };
    ensure!(
        e.contains("recording syscalls replaces the seccomp layer's filter"),
        "{e}"
    );
    let (r, rec) = recording(&config_with(&[]), vec!["/nonexistent/cmd".into()])?;
    ensure!(
        r.outcome.status.code() == 127,
        "status {:?}",
        r.outcome.status
    );
    ensure!(
        rec.native_names().contains("execve"),
        "{:?}",
        rec.native_names()
    );
    Ok(())
}

fn main() {
    let args = std::env::args().collect::<Vec<_>>();
    if args.get(1).map(String::as_str) == Some("__probe") {
        probe_main(&args[2..]);
    }
    let args = Arguments::from_args();
    let trials = vec![
        Trial::test("record::keyctl_is_recorded", || {
            a_known_call_is_recorded("keyctl", "ptrace")
        }),
        Trial::test("record::ptrace_is_recorded", || {
            a_known_call_is_recorded("ptrace", "keyctl")
        }),
        Trial::test("record::descendants_are_recorded", descendants_are_recorded),
        Trial::test(
            "record::the_runtime_tail_is_kept_apart",
            the_runtime_tail_is_kept_apart,
        ),
        Trial::test(
            "record::bad_combinations_are_refused",
            bad_combinations_are_refused,
        ),
    ];
    libtest_mimic::run(&args, trials).exit();
}
