//! `breakout sandbox` runs from a sealed memfd (CVE-2019-5736): a copy of `breakout-sandbox`
//! when it lies next to `breakout`, else a copy of `breakout` itself; either way the runtime's
//! processes hold nothing a payload can write through /proc/PID/exe. Root tests, like the rest
//! of the CLI tests (`none` needs no namespaces: the payload sees its supervisor).

use std::path::Path;
use std::process::{Command, Output};

/// Under `none`, the payload's parent is the supervisor: what its exe link names, its size, and
/// whether the payload (real root, every capability) can append to it.
const PROBE: &str = "readlink /proc/$PPID/exe; stat -L -c %s /proc/$PPID/exe; \
                     if printf x >> /proc/$PPID/exe; then echo WRITTEN; else echo refused; fi";

fn sandbox(breakout: &Path) -> Output {
    Command::new(breakout)
        .args(["sandbox", "--profile", "none", "--", "/bin/sh", "-c", PROBE])
        .output()
        .expect("run breakout")
}

fn size(p: &Path) -> u64 {
    std::fs::metadata(p).unwrap().len()
}

/// `breakout sandbox` started from `breakout` ran its supervisor from a memfd of `sealed_size`
/// bytes, and the payload's append to that executable was refused.
fn runs_sealed_copy_of(breakout: &Path, sealed_size: u64) {
    let o = sandbox(breakout);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{out} {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "/memfd:breakout (deleted)", "{out}");
    assert_eq!(
        lines[1],
        sealed_size.to_string(),
        "the sealed copy's size: {out}"
    );
    assert_eq!(lines[2], "refused", "{out}");
}

#[test]
fn the_supervisor_runs_from_a_sealed_copy_of_breakout_sandbox() {
    let small = Path::new(env!("CARGO_BIN_EXE_breakout-sandbox"));
    let before = std::fs::read(small).unwrap();
    runs_sealed_copy_of(Path::new(env!("CARGO_BIN_EXE_breakout")), size(small));
    assert_eq!(std::fs::read(small).unwrap(), before);
}

#[test]
fn without_breakout_sandbox_beside_it_breakout_seals_itself() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("breakout");
    std::fs::copy(env!("CARGO_BIN_EXE_breakout"), &copy).unwrap();
    runs_sealed_copy_of(&copy, size(&copy));
}

/// A sealed program started with another build's marker refuses to run (a stale
/// breakout-sandbox next to a new breakout), with exit 125 and one line saying why.
#[test]
fn a_runtime_of_another_build_refuses_to_start() {
    let o = Command::new(env!("CARGO_BIN_EXE_breakout-sandbox"))
        .args(["sandbox", "--profile", "none", "--", "/bin/true"])
        .env(
            breakout_runtime::sealed_exe::MARKER_ENV,
            "0.0.0-0000000000000000",
        )
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(125), "{err}");
    assert!(err.contains("another build"), "{err}");
}
