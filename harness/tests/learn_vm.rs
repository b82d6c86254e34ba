//! `breakout learn` end to end in a disposable VM: a busybox command's calls come back as a
//! profile naming uname (what `uname -a` calls) that our loader reads; a command the guest does
//! not have is one line and exit 125. Needs root and QEMU (the guest kernel is cached).

use std::process::Command;

fn learn(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_breakout"))
        .arg("learn")
        .args(args)
        .output()
        .expect("running breakout learn")
}

#[test]
fn a_command_in_the_guest_becomes_a_profile() {
    let o = learn(&[
        "--",
        "/bin/busybox",
        "sh",
        "-c",
        "uname -a; ls / >/dev/null",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    // The command's own output went to stderr, the profile to stdout.
    assert!(err.contains("Linux breakout-vm"), "{err}");
    let text = String::from_utf8_lossy(&o.stdout);
    for call in ["\"uname\"", "\"execve\"", "\"getdents64\"", "\"wait4\""] {
        assert!(text.contains(call), "{call} missing:\n{text}");
    }
    let p = breakout_runtime::seccomp::allowlist::parse(&text, std::path::Path::new("learned"))
        .expect("the learned profile loads");
    assert!(p.rules.iter().any(|r| r.names.iter().any(|n| n == "uname")));

    let o = learn(&["--", "/no/such/program"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(125), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].contains("`/no/such/program` does not exist in the guest"),
        "{err}"
    );
}
