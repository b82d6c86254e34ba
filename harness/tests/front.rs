//! `breakout` is the runtime and the front door (src/front.rs): every subcommand but `sandbox`
//! is `breakout-harness`, executed from beside it with the arguments as they came.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output};

fn run(bin: &Path, args: &[&str]) -> Output {
    Command::new(bin)
        .args(args)
        .output()
        .expect("start the binary")
}

fn front() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_breakout"))
}

fn harness() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_breakout-harness"))
}

/// Every other subcommand, help and version answer through the front exactly as the tool
/// answers them: the same output, the same exit code (argv[0] included: usage says `breakout`).
#[rstest::rstest]
#[case(&["--version"])]
#[case(&["--help"])]
#[case(&["list", "profiles"])]
#[case(&["explain", "no-such-probe"])]
#[case(&["gate", "--baseline", "/nonexistent/baseline.json", "/nonexistent/results.json"])]
#[case(&["no-such-subcommand"])]
fn other_subcommands_are_the_tool_beside_it(#[case] args: &[&str]) {
    let through_front = run(front(), args);
    let mut direct = Command::new(harness());
    direct.arg0(front()).args(args);
    let direct = direct.output().unwrap();
    assert_eq!(
        through_front.status.code(),
        direct.status.code(),
        "{args:?}: {}",
        String::from_utf8_lossy(&through_front.stderr)
    );
    assert_eq!(through_front.stdout, direct.stdout, "{args:?}");
    assert_eq!(through_front.stderr, direct.stderr, "{args:?}");
}

/// Alone in a directory, `breakout` still runs a sandbox (the runtime needs nothing beside it)
/// and names the missing tool for everything else, with exit 2.
#[test]
fn a_front_without_the_tool_names_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("breakout");
    std::fs::copy(front(), &bin).unwrap();
    let o = run(&bin, &["list", "probes"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    let missing = dir.path().join("breakout-harness");
    assert!(
        err.contains(&format!("cannot start the tool {}", missing.display())),
        "{err}"
    );
    assert!(err.contains("build every binary together"), "{err}");
    if nix::unistd::geteuid().is_root() {
        let o = run(&bin, &["sandbox", "--profile", "none", "--", "/bin/true"]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

/// The tool refuses a front of another build (a stale `breakout` beside a new tool), by name.
#[test]
fn the_tool_refuses_a_front_of_another_build() {
    let o = Command::new(harness())
        .args(["list", "profiles"])
        .env(breakout_harness::front::FRONT_ENV, "0.0.0-0000000000000000")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("of another build"), "{err}");
    assert!(o.stdout.is_empty());
}
