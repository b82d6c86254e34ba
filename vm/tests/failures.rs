//! The host's handling of every way a run can end, driven by stand-ins for QEMU (shell
//! scripts that print what a guest would and then behave as QEMU might). No boot needed, so
//! these are fast and exact; vm_run.rs has the same failures with real boots.

use breakout_vm::channel::{encode, ExitReport, FrameKind, ReadyReport, StartReport};
use breakout_vm::{CollectSink, VmConfig, VmError};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        // Enough of a bzImage for the kernel check: the "HdrS" boot header magic.
        let mut kernel = vec![0u8; 0x400];
        kernel[0x202..0x206].copy_from_slice(b"HdrS");
        std::fs::write(dir.path().join("vmlinuz"), kernel).unwrap();
        Fixture { dir }
    }

    /// A fake QEMU: the script gets QEMU's arguments and plays a guest on stdout.
    fn qemu(&self, script: &str) -> PathBuf {
        let p = self.dir.path().join("qemu");
        let mut f = std::fs::File::create(&p).unwrap();
        writeln!(f, "#!/bin/sh\n{script}").unwrap();
        drop(f);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    fn config(&self, qemu: PathBuf) -> VmConfig {
        VmConfig {
            kernel: Some(self.dir.path().join("vmlinuz")),
            accel: breakout_vm::Accel::Tcg,
            init: Some(PathBuf::from(env!("CARGO_BIN_EXE_breakout-init"))),
            cache_dir: Some(self.dir.path().join("cache")),
            qemu: Some(qemu),
            boot_timeout: Duration::from_secs(20),
            ..VmConfig::default()
        }
    }

    fn run(
        &self,
        script: &str,
        tweak: impl FnOnce(&mut VmConfig),
    ) -> (Result<i32, VmError>, CollectSink) {
        let mut cfg = self.config(self.qemu(script));
        tweak(&mut cfg);
        let mut sink = CollectSink::default();
        let r = breakout_vm::run(&cfg, &["/bin/true".into()], &mut sink).map(|o| o.exit_code);
        (r, sink)
    }
}

thread_local! {
    /// The number the next frame gets, as init numbers them (each test runs on its own thread
    /// and starts its script with [`boot_frames`], which starts the count at 0).
    static NEXT_SEQ: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// The next frame line, numbered.
fn frame_line(kind: FrameKind, payload: &[u8]) -> String {
    let seq = NEXT_SEQ.with(|n| n.replace(n.get() + 1));
    String::from_utf8(encode(seq, kind, payload))
        .unwrap()
        .trim_end()
        .to_string()
}

/// A shell `printf` of the next frame line on the console port (QEMU's stdout).
fn frame(kind: FrameKind, payload: &[u8]) -> String {
    format!("printf '%s\\n' '{}'\n", frame_line(kind, payload))
}

/// The same on the data port (the pipe QEMU gets as fd 3).
fn data_frame(kind: FrameKind, payload: &[u8]) -> String {
    format!("printf '%s\\n' '{}' >&3\n", frame_line(kind, payload))
}

fn json(v: impl serde::Serialize) -> Vec<u8> {
    serde_json::to_vec(&v).unwrap()
}

/// Init's first two frames on the console port (as without a data port).
fn boot_frames() -> String {
    boot_frames_with(frame)
}

/// The same on the data port: init opens it before its first frame, so a run's frames are all
/// on one port.
fn data_boot_frames() -> String {
    boot_frames_with(data_frame)
}

fn boot_frames_with(frame: fn(FrameKind, &[u8]) -> String) -> String {
    NEXT_SEQ.with(|n| n.set(0));
    frame(
        FrameKind::Ready,
        &json(ReadyReport {
            init_start_ms: 900,
            init_ready_ms: 950,
        }),
    ) + &frame(
        FrameKind::Started,
        &json(StartReport {
            pid: 50,
            uptime_ms: 960,
        }),
    )
}

fn exit_frame(code: i32, oom: bool) -> String {
    frame(
        FrameKind::Exit,
        &json(ExitReport {
            code,
            signal: oom.then_some(9),
            global_oom_kill: oom,
            uptime_ms: 1000,
        }),
    )
}

/// Live processes whose command line contains `needle`.
fn processes_with(needle: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter(|e| {
            let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            let zombie = stat
                .rfind(')')
                .is_some_and(|i| stat[i + 2..].starts_with('Z'));
            !zombie
                && std::fs::read(e.path().join("cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains(needle))
        })
        .count()
}

/// A `sleep` with a unique duration, to find it in /proc afterwards.
fn unique_sleep() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("1000.{:09}", nanos.max(1))
}

#[test]
fn a_complete_run_gives_the_exit_code_and_the_streams() {
    let fx = Fixture::new();
    let script = boot_frames()
        + &frame(FrameKind::Stdout, b"out\n")
        + &frame(FrameKind::Stderr, b"err\n")
        + &frame(FrameKind::Result, b"{\"r\":1}")
        + "echo '[    1.1] a kernel line'\n"
        + &exit_frame(7, false);
    let (r, sink) = fx.run(&script, |_| {});
    assert_eq!(r.unwrap(), 7);
    assert_eq!(sink.stdout, b"out\n");
    assert_eq!(sink.stderr, b"err\n");
    assert_eq!(sink.results, vec!["{\"r\":1}"]);
    assert!(sink.console.iter().any(|l| l.contains("a kernel line")));
}

#[test]
fn qemu_failing_to_start_is_a_crash_quoting_qemu() {
    let fx = Fixture::new();
    let (r, _) = fx.run(
        "echo 'qemu-system-x86_64: -kernel: could not load kernel' >&2; exit 1",
        |_| {},
    );
    let e = r.unwrap_err();
    assert_eq!(e.exit_code(), 247, "{e}");
    assert!(e.to_string().contains("could not load kernel"), "{e}");
    assert!(e.to_string().contains("exit status: 1"), "{e}");
}

#[test]
fn kvm_internal_error_is_caught_at_once_and_qemu_killed() {
    let fx = Fixture::new();
    let sleep = unique_sleep();
    let t = Instant::now();
    // QEMU prints the error and then waits forever with the guest stopped.
    let (r, _) = fx.run(
        &format!("echo 'KVM internal error. Suberror: 1' >&2; sleep {sleep}"),
        |_| {},
    );
    let e = r.unwrap_err();
    assert_eq!(e.exit_code(), 247, "{e}");
    assert!(e.to_string().contains("KVM internal error"), "{e}");
    assert!(t.elapsed() < Duration::from_secs(15), "{:?}", t.elapsed());
    assert_eq!(processes_with(&sleep), 0, "the stand-in's sleep is left");
}

#[test]
fn boot_timeout_names_the_wait_and_leaves_nothing() {
    let fx = Fixture::new();
    let sleep = unique_sleep();
    let t = Instant::now();
    let (r, _) = fx.run(
        &format!("echo '[    0.1] Linux version 6.1 booting'; sleep {sleep}"),
        |c| c.boot_timeout = Duration::from_secs(2),
    );
    let e = r.unwrap_err();
    assert_eq!(e.exit_code(), 243, "{e}");
    assert!(e.to_string().contains("Linux version 6.1 booting"), "{e}");
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert_eq!(processes_with(&sleep), 0, "the stand-in's sleep is left");
}

#[test]
fn command_timeout_counts_from_the_command_start() {
    let fx = Fixture::new();
    let sleep = unique_sleep();
    let script = format!("{}sleep {sleep}", boot_frames());
    let t = Instant::now();
    let (r, _) = fx.run(&script, |c| c.timeout = Some(Duration::from_secs(2)));
    let e = r.unwrap_err();
    assert_eq!(e.exit_code(), 244, "{e}");
    assert!(t.elapsed() >= Duration::from_secs(2));
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert_eq!(processes_with(&sleep), 0);
}

#[test]
fn panic_text_becomes_a_kernel_panic() {
    let fx = Fixture::new();
    let script = boot_frames()
        + "echo '[    2.0] sysrq: Trigger a crash'\n"
        + "echo '[    2.0] Kernel panic - not syncing: sysrq triggered crash'\n";
    let (r, _) = fx.run(&script, |_| {});
    let e = r.unwrap_err();
    assert_eq!(e.exit_code(), 245, "{e}");
    assert!(e.to_string().contains("sysrq triggered crash"));
    assert!(e.to_string().contains("sysrq: Trigger a crash"));
}

#[test]
fn a_panicked_guest_that_does_not_reboot_is_killed_after_a_grace() {
    let fx = Fixture::new();
    let sleep = unique_sleep();
    let script = boot_frames()
        + "echo '[    2.0] Kernel panic - not syncing: sysrq triggered crash'\n"
        + &format!("sleep {sleep}\n");
    let t = Instant::now();
    let (r, _) = fx.run(&script, |_| {});
    let e = r.unwrap_err();
    assert_eq!(e.exit_code(), 245, "{e}");
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
    assert_eq!(processes_with(&sleep), 0);
}

/// Root in the guest can write a panic line to /dev/console. Init keeps sending frames (its
/// `A` frames every 2 s), which a panicked kernel could not: the run goes on past the grace a
/// real panic gets (10 s) and ends with the command's own exit code.
#[test]
fn a_panic_line_followed_by_frames_from_a_living_init_is_not_a_panic() {
    let fx = Fixture::new();
    let script = boot_frames()
        + "echo '[    2.0] Kernel panic - not syncing: forged'\n"
        + "sleep 4\n"
        + &frame(FrameKind::Alive, b"")
        + "sleep 8\n"
        + &frame(FrameKind::Stdout, b"still here\n")
        + &exit_frame(0, false);
    let (r, sink) = fx.run(&script, |_| {});
    assert_eq!(r.unwrap(), 0);
    assert_eq!(sink.stdout, b"still here\n");
    assert!(sink.console.iter().any(|l| l.contains("forged")));
}

/// What a payload's `echo "<4>Kernel panic - not syncing: forged" > /dev/kmsg` becomes: a
/// user-space record, shown and never taken for a panic, however long the run goes on.
#[test]
fn a_user_space_log_record_claiming_a_panic_does_not_end_the_run() {
    let fx = Fixture::new();
    let script = boot_frames()
        + &frame(FrameKind::UserLog, b"Kernel panic - not syncing: forged")
        + "sleep 11\n"
        + &exit_frame(0, false);
    let (r, sink) = fx.run(&script, |_| {});
    assert_eq!(r.unwrap(), 0);
    assert!(sink
        .console
        .iter()
        .any(|l| l == "(user space) Kernel panic - not syncing: forged"));
}

#[test]
fn global_oom_kill_of_the_command_is_guest_oom() {
    let fx = Fixture::new();
    let script = boot_frames()
        + &frame(
            FrameKind::Kernel,
            b"Out of memory: Killed process 50 (hog) total-vm:900000kB",
        )
        + &exit_frame(137, true);
    let (r, _) = fx.run(&script, |_| {});
    let e = r.unwrap_err();
    assert_eq!(e.exit_code(), 246, "{e}");
    assert!(e.to_string().contains("Killed process 50 (hog)"), "{e}");
}

#[test]
fn oom_panic_is_guest_oom_not_a_plain_panic() {
    let fx = Fixture::new();
    let script = boot_frames()
        + "echo '[    9.0] Kernel panic - not syncing: System is deadlocked on memory'\n"
        + "echo '[    9.0] Out of memory and no killable processes...'\n";
    let (r, _) = fx.run(&script, |_| {});
    assert_eq!(r.unwrap_err().exit_code(), 246);
}

#[test]
fn init_failure_is_reported_with_its_step() {
    let fx = Fixture::new();
    let script = frame(
        FrameKind::Failed,
        b"mount cgroup2 on /sys/fs/cgroup: ENODEV",
    );
    let (r, _) = fx.run(&script, |_| {});
    let e = r.unwrap_err();
    assert_eq!(e.exit_code(), 248, "{e}");
    assert!(e
        .to_string()
        .contains("mount cgroup2 on /sys/fs/cgroup: ENODEV"));
}

#[test]
fn qemu_dying_mid_run_is_a_crash() {
    let fx = Fixture::new();
    let script = boot_frames() + &frame(FrameKind::Stdout, b"partial") + "kill -SEGV $$\n";
    let (r, sink) = fx.run(&script, |_| {});
    let e = r.unwrap_err();
    assert_eq!(e.exit_code(), 247, "{e}");
    assert!(e.to_string().contains("SIGSEGV"), "{e}");
    assert_eq!(sink.stdout, b"partial");
}

#[test]
fn a_torn_frame_never_reaches_the_sink_and_fails_the_run_naming_it() {
    let fx = Fixture::new();
    let mut script = boot_frames(); // frames 0 and 1
    let good = frame_line(FrameKind::Stdout, b"this must not arrive"); // frame 2
    let torn = format!("{}[ 3.0] oops{}", &good[..15], &good[15..]);
    script += &format!("printf '%s\\n' '{torn}'\n");
    script += &exit_frame(0, false);
    let (r, sink) = fx.run(&script, |_| {});
    let e = r.unwrap_err();
    assert_eq!(e.exit_code(), 248, "{e}");
    assert!(
        e.to_string().contains(
            "the channel from the guest lost data: frame 2 lost (arrived torn: 2 O of 20 bytes)"
        ),
        "{e}"
    );
    assert!(sink.stdout.is_empty());
    assert!(sink.console.iter().any(|l| l.contains("oops")));
}

#[test]
fn frames_on_the_data_port_are_untouched_by_console_text() {
    let fx = Fixture::new();
    let result = format!("{{\"pad\":\"{}\"}}", "r".repeat(10_000));
    let mut script = data_boot_frames();
    for _ in 0..5 {
        script += "printf '[    4.1] sysrq: HELP : loglevel(0-9)'\n";
        script += &data_frame(FrameKind::Result, result.as_bytes());
        script += &data_frame(FrameKind::Stdout, b"out\n");
        script += "echo\n";
    }
    script += &data_frame(
        FrameKind::Exit,
        &json(ExitReport {
            code: 3,
            signal: None,
            global_oom_kill: false,
            uptime_ms: 1000,
        }),
    );
    let (r, sink) = fx.run(&script, |_| {});
    assert_eq!(r.unwrap(), 3);
    assert_eq!(sink.results, vec![result; 5]);
    assert_eq!(sink.stdout, b"out\n".repeat(5));
    assert_eq!(
        sink.console
            .iter()
            .filter(|l| l.contains("sysrq: HELP"))
            .count(),
        5
    );
}

#[test]
fn a_frame_missing_from_the_data_port_is_named() {
    let fx = Fixture::new();
    let mut script = data_boot_frames(); // 0, 1
    script += &data_frame(FrameKind::Result, b"{\"a\":1}"); // 2
    let _lost = frame_line(FrameKind::Result, b"{\"b\":2}"); // 3, never sent
    script += &data_frame(FrameKind::Result, b"{\"c\":3}"); // 4
    script += &data_frame(
        FrameKind::Exit,
        &json(ExitReport {
            code: 0,
            signal: None,
            global_oom_kill: false,
            uptime_ms: 1000,
        }),
    );
    let (r, sink) = fx.run(&script, |_| {});
    let e = r.unwrap_err();
    assert_eq!(e.exit_code(), 248, "{e}");
    assert!(e.to_string().contains("frame 3 never arrived"), "{e}");
    assert_eq!(sink.results, vec!["{\"a\":1}", "{\"c\":3}"]);
}

#[test]
fn missing_init_binary_is_a_config_error() {
    let fx = Fixture::new();
    let (r, _) = fx.run("exit 0", |c| {
        c.init = Some(Path::new("/nonexistent/init").into())
    });
    let e = r.unwrap_err();
    assert_eq!(e.exit_code(), 242, "{e}");
    assert!(e.to_string().contains("/nonexistent/init"), "{e}");
}
