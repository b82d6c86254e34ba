//! What `breakout sandbox` tells its user beyond the exit status: the syscall a seccomp filter
//! killed the payload for, and the layer combinations that quietly weaken another layer.
//! Root tests (the sandbox needs root), like the rest of the CLI tests.

use std::path::Path;
use std::process::{Command, Output};

fn breakout(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_breakout"))
        .arg("sandbox")
        .args(args)
        .output()
        .expect("run breakout")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

/// Issue 14 item 6: a payload killed by the filter ended with 159 (128 + SIGSYS) and no word
/// about why. One line names the syscall and the layer.
#[test]
fn payload_killed_by_the_filter_gets_one_line_naming_the_syscall() {
    let dir = tempfile::tempdir().unwrap();
    let kill = write(
        dir.path(),
        "kill.toml",
        "default_action = \"allow\"\n[[rule]]\naction = \"kill-process\"\nnames = [\"keyctl\"]\n",
    );
    // keyctl is 250 on x86_64; perl's syscall() makes exactly that call and nothing else odd.
    let o = breakout(&[
        "--profile",
        "strict",
        "--disable",
        "cgroup-limits",
        "--seccomp-profile",
        &kill,
        "--",
        "/usr/bin/perl",
        "-e",
        "syscall(250, 0, 0, 0, 0, 0); print \"survived\\n\"",
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(128 + libc::SIGSYS), "{err}");
    assert!(!String::from_utf8_lossy(&o.stdout).contains("survived"));
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("seccomp")).collect();
    assert_eq!(lines.len(), 1, "one line about the kill: {err:?}");
    assert!(
        lines[0].starts_with("breakout: ")
            && lines[0].contains("killed by seccomp: syscall keyctl")
            && lines[0].contains("(layer seccomp)"),
        "{err:?}"
    );
}

/// The same status without the filter (the payload kills itself with SIGSYS): no seccomp line.
#[test]
fn sigsys_from_elsewhere_is_not_blamed_on_the_filter() {
    let o = breakout(&[
        "--profile",
        "strict",
        "--disable",
        "cgroup-limits",
        "--disable",
        "seccomp",
        // Not pid 1 of a namespace, which ignores signals it has no handler for.
        "--disable",
        "pid-ns",
        "--",
        "/bin/sh",
        "-c",
        "kill -SYS $$",
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(128 + libc::SIGSYS), "{err}");
    assert!(!err.contains("killed by seccomp"), "{err:?}");
}

/// Issue 14 item 9: a combination that quietly weakens another layer gets one line before the
/// run; the full strict profile gets none.
#[test]
fn weakening_combinations_are_said_once_before_the_run() {
    let o = breakout(&[
        "--profile",
        "strict",
        "--disable",
        "cgroup-limits",
        "--disable",
        "pid-ns",
        "--",
        "/bin/true",
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let proc_lines = err
        .lines()
        .filter(|l| l.starts_with("breakout: warning: pid-ns off with mount-ns on"))
        .count();
    assert_eq!(proc_lines, 1, "{err:?}");
    let o = breakout(&[
        "--profile",
        "strict",
        "--disable",
        "cgroup-limits",
        "--",
        "/bin/true",
    ]);
    assert!(!stderr(&o).contains("pid-ns off"), "{:?}", stderr(&o));
}
