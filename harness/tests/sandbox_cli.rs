//! `breakout sandbox` as a user meets it: bad input gives one clear line naming the file and the
//! field and exit 125 (never a panic); the payload's status comes back as 126, 127, 128+N or its
//! own code.

use rstest::rstest;
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

/// stderr without the configuration warnings (`breakout: warning: ...`) printed before the run.
fn errors(o: &Output) -> String {
    stderr(o)
        .lines()
        .filter(|l| !l.starts_with("breakout: warning: "))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Exit 125 with exactly one line on stderr, containing every `want`.
fn assert_bad_input(o: &Output, want: &[&str]) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(125), "stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err:?}");
    assert!(err.starts_with("breakout: "), "{err}");
    for w in want {
        assert!(err.contains(w), "missing {w:?} in {err:?}");
    }
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

#[rstest]
#[case::malformed_toml("bad.toml", "[layers\nuid = true\n", &["bad.toml", "malformed sandbox config", "line 1"])]
#[case::unknown_layer("layer.toml", "[layers]\nuser-ns = true\nteleport-ns = true\n", &["layer.toml", "line 3", "unknown variant `teleport-ns`"])]
#[case::unknown_field("field.toml", "[mount]\nbindz = []\n", &["field.toml", "unknown field `bindz`"])]
#[case::unknown_cap("cap.toml", "[caps]\nkeep = [\"CAP_MAGIC\"]\n", &["cap.toml", "field `caps.keep[0]`", "CAP_MAGIC"])]
#[case::dependency("dep.toml", "[layers]\nfs-hardening = true\n", &["dep.toml", "`fs-hardening` needs layer `mount-ns`"])]
#[case::settings_of_an_off_layer("off.toml", "[layers]\npid-ns = true\n[rlimits]\nnofile = 64\n", &["off.toml", "field `rlimits`", "`rlimits` while that layer is off"])]
#[case::missing_bind("bind.toml", "[layers]\nmount-ns = true\n[mount]\nbinds = [\"/no/such/dir\"]\n", &["bind.toml", "mount.binds[0]", "/no/such/dir", "does not exist"])]
fn bad_config_files(#[case] name: &str, #[case] text: &str, #[case] want: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), name, text);
    assert_bad_input(&breakout(&["--config", &path, "--", "/bin/true"]), want);
}

#[test]
fn unknown_syscall_in_seccomp_profile_names_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "sc.toml",
        "default_action = \"errno\"\n[[rule]]\naction = \"allow\"\nnames = [\"read\", \"wirte\"]\n",
    );
    let cfg = write(
        dir.path(),
        "p.toml",
        "[layers]\nseccomp = true\n[seccomp]\nprofile = \"sc.toml\"\n",
    );
    assert_bad_input(
        &breakout(&["--config", &cfg, "--", "/bin/true"]),
        &[
            "sc.toml",
            "field `rule[0].names[1]`",
            "unknown syscall `wirte`",
        ],
    );
}

#[test]
fn seccomp_profile_by_builtin_name() {
    let o = Command::new(env!("CARGO_BIN_EXE_breakout"))
        .args([
            "sandbox",
            "--profile",
            "none",
            "--seccomp-profile",
            "strict",
            "--",
        ])
        .args(["/bin/sh", "-c", "grep '^Seccomp:' /proc/self/status"])
        .output()
        .expect("run breakout");
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(out.contains("Seccomp:\t2"), "{out}");
}

#[test]
fn unreadable_seccomp_json() {
    assert_bad_input(
        &breakout(&[
            "--profile",
            "none",
            "--seccomp-profile",
            "/nonexistent/default.json",
            "--",
            "/bin/true",
        ]),
        &["/nonexistent/default.json", "cannot read seccomp profile"],
    );
    let dir = tempfile::tempdir().unwrap();
    let bad = write(dir.path(), "broken.json", "{\"defaultAction\": ");
    assert_bad_input(
        &breakout(&[
            "--profile",
            "none",
            "--seccomp-profile",
            &bad,
            "--",
            "/bin/true",
        ]),
        &["broken.json", "malformed seccomp profile"],
    );
}

#[rstest]
#[case::enable(&["--profile", "none", "--enable", "pid_ns", "--", "/bin/true"], &["--enable", "unknown layer `pid_ns`", "known layers"])]
#[case::disable(&["--profile", "none", "--disable", "everything", "--", "/bin/true"], &["--disable", "unknown layer `everything`"])]
#[case::profile(&["--profile", "paranoid", "--", "/bin/true"], &["unknown profile `paranoid`", "strict"])]
#[case::no_profile(&["--", "/bin/true"], &["--profile NAME or --config FILE"])]
#[case::no_command(&["--profile", "none"], &["no command given"])]
#[case::missing_config(&["--config", "/nonexistent/p.toml", "--", "/bin/true"], &["/nonexistent/p.toml", "cannot read sandbox config"])]
fn bad_flags(#[case] args: &[&str], #[case] want: &[&str]) {
    assert_bad_input(&breakout(args), want);
}

#[rstest]
#[case::own_code(&["/bin/sh", "-c", "exit 7"], 7)]
#[case::signal(&["/bin/sh", "-c", "kill -TERM $$"], 128 + 15)]
#[case::not_found(&["/no/such/cmd"], 127)]
#[case::not_found_in_path(&["no-such-cmd-anywhere"], 127)]
#[case::not_executable(&["/etc/passwd"], 126)]
fn exit_status_conventions(#[case] cmd: &[&str], #[case] code: i32) {
    let mut args = vec!["--profile", "none", "--"];
    args.extend_from_slice(cmd);
    let o = breakout(&args);
    assert_eq!(o.status.code(), Some(code), "stderr: {}", stderr(&o));
    if code == 126 || code == 127 {
        let err = errors(&o);
        assert!(
            err.starts_with("breakout: sandbox setup failed at execve("),
            "{err}"
        );
    }
}

#[test]
fn strict_runs_as_uid_1000_with_nothing_left() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root (CI runs as root)"
    );
    let o = breakout(&[
        "--profile",
        "strict",
        "--disable",
        "cgroup-limits",
        "--",
        "/bin/sh",
        "-c",
        "id -u; grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status",
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(out.starts_with("1000\n"), "{out}");
    assert!(out.contains("CapEff:\t0000000000000000"), "{out}");
    assert!(
        out.contains("NoNewPrivs:\t1") && out.contains("Seccomp:\t2"),
        "{out}"
    );
}

#[test]
fn setup_failure_is_one_line_with_step_syscall_errno() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root (CI runs as root)"
    );
    let dir = tempfile::tempdir().unwrap();
    // A root directory without /proc to mount on fails in the parent; an rlimit above
    // fs.nr_open fails in the child, at its step.
    let cfg = write(
        dir.path(),
        "r.toml",
        "[layers]\nrlimits = true\n[rlimits]\nnofile = 4294967295\n",
    );
    let o = breakout(&["--config", &cfg, "--", "/bin/true"]);
    let err = errors(&o);
    assert_eq!(o.status.code(), Some(125), "{err}");
    assert!(
        err.starts_with("breakout: sandbox setup failed at setrlimit(RLIMIT_NOFILE, 4294967295): EPERM (layer rlimits)"),
        "{err}"
    );
}

/// `--tty`: the payload gets a terminal the runtime owns (its name inside the sandbox is
/// /dev/console), in a session of its own; output is relayed and the exit status comes back.
#[test]
fn tty_gives_the_payload_a_runtime_owned_terminal() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root (CI runs as root)"
    );
    let pty = nix::pty::openpty(None, None).unwrap();
    let slave = std::fs::File::from(pty.slave);
    let mut child = Command::new(env!("CARGO_BIN_EXE_breakout"))
        .args([
            "sandbox",
            "--profile",
            "strict",
            "--disable",
            "cgroup-limits",
            "--tty",
            "--",
        ])
        .args([
            "/bin/sh",
            "-c",
            "tty; test -t 0 && echo interactive; exit 5",
        ])
        .stdin(slave.try_clone().unwrap())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave)
        .spawn()
        .unwrap();
    let mut out = Vec::new();
    let mut master = std::fs::File::from(pty.master);
    let mut buf = [0u8; 1024];
    // Read until the last holder of the slave (our child) exits: EIO.
    loop {
        match std::io::Read::read(&mut master, &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
        if out.windows(11).any(|w| w == b"interactive") {
            break;
        }
    }
    let status = child.wait().unwrap();
    let text = String::from_utf8_lossy(&out);
    assert_eq!(status.code(), Some(5), "{text}");
    assert!(text.contains("/dev/console"), "{text}");
    assert!(text.contains("interactive"), "{text}");
}

/// The cgroup leaves (`sandbox-PID-N`) a runtime process `pid` left under the default parents.
fn leaves_of(pid: u32) -> Vec<String> {
    let prefix = format!("sandbox-{pid}-");
    ["/sys/fs/cgroup/breakout", "/sys/fs/cgroup/unified/breakout"]
        .iter()
        .filter_map(|p| std::fs::read_dir(p).ok())
        .flat_map(|d| d.flatten())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&prefix))
        .collect()
}

/// stderr is a pipe nobody reads (`breakout sandbox ... 2>&1 | head -1` once head has exited):
/// with the step trace on, the supervisor dies of SIGPIPE during setup. The launch fails with
/// the runtime's exit code, not a panic of the message it cannot print, and leaves no cgroup
/// leaf (strict's device policy makes one) to collide with a later process of the same pid.
#[test]
fn a_supervisor_dying_in_setup_leaves_no_leaf_and_no_panic() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("NOT RUN: needs root");
        return;
    }
    let (read_end, write_end) = nix::unistd::pipe().unwrap();
    drop(read_end);
    let mut child = Command::new(env!("CARGO_BIN_EXE_breakout"))
        .args([
            "sandbox",
            "--profile",
            "strict",
            "--disable",
            "cgroup-limits",
        ])
        .args(["--", "/bin/true"])
        .env("BREAKOUT_TRACE_STEPS", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::from(write_end))
        .spawn()
        .unwrap();
    let pid = child.id();
    let status = child.wait().unwrap();
    let left = leaves_of(pid);
    for leaf in &left {
        for p in ["/sys/fs/cgroup/breakout", "/sys/fs/cgroup/unified/breakout"] {
            let _ = std::fs::remove_dir(Path::new(p).join(leaf));
        }
    }
    assert_eq!(status.code(), Some(125), "{status:?}");
    assert_eq!(left, Vec::<String>::new(), "leaves left behind");
}

/// The step trace of `breakout sandbox` starts in its first process: the lines before `spawn`
/// (the start, the sealed re-exec, the arguments, the profile) come first, in order, on one
/// clock. (After the fork, lines of three processes interleave.)
#[test]
fn the_step_trace_covers_the_launch_from_its_first_process() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("NOT RUN: needs root");
        return;
    }
    let o = Command::new(env!("CARGO_BIN_EXE_breakout"))
        .args(["sandbox", "--profile", "none", "--", "/bin/true"])
        .env("BREAKOUT_TRACE_STEPS", "1")
        .env_remove(breakout_runtime::trace::ORIGIN_ENV)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let lines: Vec<(u64, String)> = stderr(&o)
        .lines()
        .filter_map(|l| l.strip_prefix("breakout-trace: +"))
        .filter_map(|l| {
            let (us, rest) = l.split_once(" us ")?;
            Some((us.parse().ok()?, rest.to_string()))
        })
        .collect();
    let at = |what: &str| {
        lines
            .iter()
            .position(|(_, l)| l.contains(what))
            .unwrap_or_else(|| panic!("no trace line with {what:?}: {lines:?}"))
    };
    // `none` is sealed (sealed_exe::seal_decision): the first process reads its command line
    // and profile to decide, re-executes, and the sealed one reads them again.
    let order = [
        at("runtime started"),
        at("arguments parsed"),
        at("profile loaded"),
        at("re-executing"),
        at("runtime re-executed"),
        at("running sealed"),
        at("forked the supervisor"),
    ];
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{lines:?}");
    assert!(
        order.windows(2).all(|w| lines[w[0]].0 <= lines[w[1]].0),
        "{lines:?}"
    );
    assert!(
        lines[0].0 < 1_000_000,
        "the clock starts in the first process: {lines:?}"
    );
}

/// A static x86-64 program that calls exit_group(0) and maps nothing writable, so it starts
/// under any RLIMIT_DATA (a dynamic /bin/true needs writable mappings at execve); in a
/// directory everyone may enter (a user namespace's root is outside 100000).
#[cfg(target_arch = "x86_64")]
fn exit_zero_program(dir: &Path) -> String {
    use std::os::unix::fs::PermissionsExt;
    const BASE: u64 = 0x40_0000;
    let code: [u8; 12] = [
        0xbf, 0, 0, 0, 0, // mov edi, 0
        0xb8, 0xe7, 0, 0, 0, // mov eax, 231 (exit_group)
        0x0f, 0x05, // syscall
    ];
    let size = 64 + 56 + code.len() as u64;
    let mut elf = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    elf.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    elf.extend_from_slice(&0x3eu16.to_le_bytes()); // EM_X86_64
    elf.extend_from_slice(&1u32.to_le_bytes()); // EV_CURRENT
    for v in [BASE + 64 + 56, 64, 0] {
        elf.extend_from_slice(&v.to_le_bytes()); // entry, program headers, no sections
    }
    elf.extend_from_slice(&0u32.to_le_bytes()); // flags
    for v in [64u16, 56, 1, 0, 0, 0] {
        elf.extend_from_slice(&v.to_le_bytes()); // sizes, one program header
    }
    elf.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    elf.extend_from_slice(&5u32.to_le_bytes()); // read + execute, nothing writable
    for v in [0, BASE, BASE, size, size, 0x1000u64] {
        elf.extend_from_slice(&v.to_le_bytes());
    }
    elf.extend_from_slice(&code);
    let path = dir.join("exit-zero");
    std::fs::write(&path, &elf).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.to_string_lossy().into_owned()
}

/// The payload waits for the parent's seccomp program (compiled after the fork) after the
/// rlimits layer ran: a data limit the command itself lives with must not kill the runtime's
/// wait. It allocated its 32 KB buffer there, died of the failed allocation ("memory allocation
/// of 32785 bytes failed"), and the death came back as the command's own signal (exit 139).
#[cfg(target_arch = "x86_64")]
#[test]
fn a_data_limit_the_command_lives_with_does_not_kill_the_runtime_first() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root (CI runs as root)"
    );
    let dir = tempfile::tempdir().unwrap();
    let program = exit_zero_program(dir.path());
    let cfg = write(
        dir.path(),
        "data.toml",
        "[layers]\nuser-ns = true\nseccomp = true\nrlimits = true\n[seccomp]\nprofile = \"strict\"\n[rlimits]\ndata = 4096\n",
    );
    let o = breakout(&["--config", &cfg, "--", &program]);
    let err = errors(&o);
    assert!(!err.contains("memory allocation"), "{err}");
    assert_eq!(o.status.code(), Some(0), "{err}");
}
