//! `breakout learn --here` as a user meets it (root, no VM): a learned profile that the sandbox
//! loads and that runs the command it was learned from, and one clear line with exit 125 for a
//! command that is not there, one that fails under `none`, an unwritable --out and an unknown
//! workload.

use std::process::{Command, Output};

fn learn(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_breakout"))
        .arg("learn")
        .args(args)
        .output()
        .expect("run breakout")
}

fn root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Exit 125, one line on stderr starting `breakout learn: `, containing every `want`.
fn assert_bad_input(o: &Output, want: &[&str]) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(125), "stderr: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err:?}");
    assert!(err.starts_with("breakout learn: "), "{err}");
    for w in want {
        assert!(err.contains(w), "missing {w:?} in {err:?}");
    }
    assert!(o.stdout.is_empty(), "no profile on stdout");
}

#[test]
fn bad_input_is_one_line() {
    assert!(root(), "this test needs root (CI runs it as root)");
    assert_bad_input(
        &learn(&["--here", "--", "/nonexistent/cmd"]),
        &[
            "`/nonexistent/cmd` does not exist on this machine",
            "ENOENT",
        ],
    );
    assert_bad_input(
        &learn(&["--here", "--", "/bin/sh", "-c", "exit 3"]),
        &["failed under `none`", "exit 3"],
    );
    assert_bad_input(
        &learn(&[
            "--here",
            "--out",
            "/nonexistent/dir/p.toml",
            "--",
            "/bin/true",
        ]),
        &["--out /nonexistent/dir/p.toml"],
    );
    assert_bad_input(
        &learn(&["--here", "--workload", "nosuch"]),
        &["--workload nosuch: no such workload"],
    );
}

/// Learned from `sh -c 'uname; ...'`, the profile names uname, loads in `breakout sandbox` and
/// runs the same command under strict's other layers; a call it never saw is denied.
#[test]
fn a_learned_profile_runs_its_command_and_nothing_else() {
    assert!(root(), "this test needs root (CI runs it as root)");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("learned.toml");
    let cmd = ["/bin/sh", "-c", "uname -s; cat /proc/self/stat >/dev/null"];
    let mut args = vec!["--here", "--out", out.to_str().unwrap(), "--"];
    args.extend(cmd);
    let o = learn(&args);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(
        text.contains("\"uname\"") && text.contains("\"execve\""),
        "{text}"
    );
    let sandbox = |cmd: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_breakout"))
            .args([
                "sandbox",
                "--profile",
                "strict",
                "--disable",
                "cgroup-limits",
            ])
            .args(["--seccomp-profile", out.to_str().unwrap(), "--"])
            .args(cmd)
            .output()
            .unwrap()
    };
    let ran = sandbox(&cmd);
    assert_eq!(
        ran.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&ran.stdout).trim(), "Linux");
    // mkdir was never recorded: EPERM from the filter.
    let denied = sandbox(&["/bin/sh", "-c", "mkdir /tmp/x"]);
    assert_ne!(denied.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&denied.stderr).contains("Operation not permitted"),
        "{}",
        String::from_utf8_lossy(&denied.stderr)
    );
}
