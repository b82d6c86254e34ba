//! Real boots of the disposable VM (QEMU under TCG here, the cloud kernel from the cache).
//! Each test boots its own VM; the shell is busybox in the guest.

use breakout_vm::{Accel, CollectSink, VmConfig, VmError, VmOutcome};
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn config() -> VmConfig {
    VmConfig {
        init: Some(PathBuf::from(env!("CARGO_BIN_EXE_breakout-init"))),
        accel: std::env::var("BREAKOUT_TEST_ACCEL")
            .ok()
            .map(|a| a.parse().expect("BREAKOUT_TEST_ACCEL is auto, kvm or tcg"))
            .unwrap_or(Accel::Auto),
        // Generous: the CI machine shares two cores between several jobs.
        boot_timeout: Duration::from_secs(180),
        ..VmConfig::default()
    }
}

/// A marker unique to one run, passed in the environment: it shows up in QEMU's command
/// line (-append), which lets us look for a leftover QEMU of exactly this run.
fn marker(name: &str) -> (String, String) {
    (
        "BREAKOUT_TEST_MARKER".to_string(),
        format!("{name}-{}-{:?}", std::process::id(), Instant::now()).replace([' ', '.'], "_"),
    )
}

fn sh(script: &str) -> Vec<String> {
    vec!["/bin/sh".into(), "-c".into(), script.into()]
}

fn run_sh(cfg: &VmConfig, script: &str) -> (Result<VmOutcome, VmError>, CollectSink, Duration) {
    let mut sink = CollectSink::default();
    let t = Instant::now();
    let r = breakout_vm::run(cfg, &sh(script), &mut sink);
    (r, sink, t.elapsed())
}

/// Live processes (not zombies) whose command line contains `needle`.
fn processes_with(needle: &str) -> Vec<i32> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        if String::from_utf8_lossy(&cmdline).contains(needle) {
            found.push(pid);
        }
    }
    found
}

#[test]
fn exit_codes_come_back_exactly() {
    for code in [0, 7] {
        let (r, sink, _) = run_sh(&config(), &format!("exit {code}"));
        let out = r.unwrap_or_else(|e| panic!("exit {code}: {e}"));
        assert_eq!(out.exit_code, code, "{sink:?}");
    }
}

#[test]
fn signal_death_is_128_plus_n() {
    let (r, _, _) = run_sh(&config(), "kill -TERM $$");
    assert_eq!(r.unwrap().exit_code, 128 + 15);
}

#[test]
fn output_arrives_in_order_and_streams_stay_apart() {
    let script = "i=1; while [ $i -le 300 ]; do echo line $i; echo err $i >&2; i=$((i+1)); done; \
                  head -c 20000 /dev/zero | tr '\\0' x; echo";
    let (r, sink, _) = run_sh(&config(), script);
    assert_eq!(r.unwrap().exit_code, 0);
    let stdout = String::from_utf8(sink.stdout).unwrap();
    let stderr = String::from_utf8(sink.stderr).unwrap();
    let mut want: String = (1..=300).map(|i| format!("line {i}\n")).collect();
    want.push_str(&"x".repeat(20000));
    want.push('\n');
    assert_eq!(stdout, want);
    let want_err: String = (1..=300).map(|i| format!("err {i}\n")).collect();
    assert_eq!(stderr, want_err);
}

#[test]
fn guest_has_cgroup_v2_with_memory_and_pids_and_a_pivotable_tmpfs_root() {
    let script = "set -e; \
        grep -q '^cgroup2 /sys/fs/cgroup cgroup2' /proc/mounts; \
        echo controllers: $(cat /sys/fs/cgroup/cgroup.controllers); \
        echo subtree: $(cat /sys/fs/cgroup/cgroup.subtree_control); \
        echo parent: $(cat /sys/fs/cgroup/breakout/cgroup.subtree_control); \
        echo root: $(awk '$2 == \"/\" {print $3}' /proc/mounts); \
        echo in_vm: $BREAKOUT_IN_VM; \
        grep -q '^sandbox:x:1000:1000:' /etc/passwd; \
        mkdir /tmp/new; \
        unshare -m sh -c 'mount -t tmpfs none /tmp/new && mkdir /tmp/new/old && cd /tmp/new && pivot_root . old && echo pivot: ok'";
    let (r, sink, _) = run_sh(&config(), script);
    let stdout = String::from_utf8_lossy(&sink.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&sink.stderr).into_owned();
    assert_eq!(r.unwrap().exit_code, 0, "{stdout}{stderr}");
    let line = |key: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key} in {stdout}"))
            .to_string()
    };
    for c in ["memory", "pids", "cpu"] {
        assert!(line("controllers:").split(' ').any(|x| x == c), "{stdout}");
        assert!(line("subtree:").split(' ').any(|x| x == c), "{stdout}");
        assert!(line("parent:").split(' ').any(|x| x == c), "{stdout}");
    }
    assert_eq!(line("root:").trim(), "tmpfs");
    assert_eq!(line("in_vm:").trim(), "1");
    assert_eq!(line("pivot:").trim(), "ok");
}

#[test]
fn results_come_back_on_their_own_channel() {
    let script = "echo '{\"probe\":\"a\",\"verdict\":\"blocked\"}' > /run/breakout/results; \
                  echo not-a-result; \
                  echo '{\"probe\":\"b\"}' > /run/breakout/results";
    let (r, sink, _) = run_sh(&config(), script);
    assert_eq!(r.unwrap().exit_code, 0);
    assert_eq!(
        sink.results,
        vec![
            "{\"probe\":\"a\",\"verdict\":\"blocked\"}".to_string(),
            "{\"probe\":\"b\"}".to_string()
        ]
    );
    assert_eq!(sink.stdout, b"not-a-result\n");
}

/// The kernel writes its console from any CPU between any two bytes on ttyS0; before the data
/// had a port of its own, SysRq's help (printed whatever kernel.printk says) tore result frames
/// and 9 of these 40 results were lost.
#[test]
fn kernel_text_during_large_results_loses_nothing() {
    let script = r#"
        pad=$(head -c 10000 /dev/zero | tr '\0' a)
        out=$(head -c 5000 /dev/zero | tr '\0' o)
        i=0
        while [ $i -lt 40 ]; do
          echo "{\"n\":$i,\"pad\":\"$pad\"}" > /run/breakout/results
          echo h > /proc/sysrq-trigger
          echo "<0>breakout-test emergency $i" > /dev/kmsg
          echo "$out"
          i=$((i+1))
        done"#;
    let (r, sink, _) = run_sh(&config(), script);
    let out = r.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        out.exit_code,
        0,
        "{}",
        String::from_utf8_lossy(&sink.stderr)
    );
    let pad = "a".repeat(10_000);
    let want: Vec<String> = (0..40)
        .map(|n| format!("{{\"n\":{n},\"pad\":\"{pad}\"}}"))
        .collect();
    assert_eq!(sink.results.len(), 40, "results lost");
    assert!(sink.results == want, "results changed");
    assert_eq!(
        sink.stdout,
        format!("{}\n", "o".repeat(5000)).repeat(40).into_bytes()
    );
    // The kernel text did reach the console, while the results were in flight.
    let on_console = |needle: &str| sink.console.iter().filter(|l| l.contains(needle)).count();
    assert_eq!(on_console("sysrq: HELP"), 40, "{:?}", sink.console);
    assert!(
        on_console("breakout-test emergency") >= 40,
        "{:?}",
        sink.console
    );
}

/// A kernel without the second UART (here: QEMU without it, through a wrapper that swaps the
/// device for a debug port on the same chardev): init falls back to the console port and says
/// so, and what kernel text tears there is named, never lost silently.
#[test]
fn without_a_data_port_frames_share_the_console_and_a_loss_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let wrapper = dir.path().join("qemu-without-data-port");
    let real = std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("qemu-system-x86_64"))
                .find(|q| q.is_file())
        })
        .expect("qemu-system-x86_64 in PATH");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nfor a do\n  shift\n  case \"$a\" in\n    isa-serial,chardev=data*) \
             a=isa-debugcon,chardev=data,iobase=0x402 ;;\n  esac\n  set -- \"$@\" \"$a\"\ndone\n\
             exec {} \"$@\"\n",
            real.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let cfg = VmConfig {
        qemu: Some(wrapper),
        ..config()
    };
    let script = r#"
        pad=$(head -c 10000 /dev/zero | tr '\0' a)
        i=0
        while [ $i -lt 40 ]; do
          echo "{\"n\":$i,\"pad\":\"$pad\"}" > /run/breakout/results
          echo h > /proc/sysrq-trigger
          i=$((i+1))
        done"#;
    let (r, sink, _) = run_sh(&cfg, script);
    assert!(
        sink.console.iter().any(|l| l.contains("no data port")),
        "{:?}",
        sink.console
    );
    // What was delivered is exact, in order, whatever was lost.
    let pad = "a".repeat(10_000);
    let want: Vec<String> = (0..40)
        .map(|n| format!("{{\"n\":{n},\"pad\":\"{pad}\"}}"))
        .collect();
    let mut expected = want.iter();
    for got in &sink.results {
        assert!(
            expected.any(|w| w == got),
            "a result arrived changed or out of order"
        );
    }
    match r {
        // The kernel text happened to fall between frames every time.
        Ok(out) => {
            assert_eq!(out.exit_code, 0);
            assert_eq!(sink.results, want);
        }
        // Else the loss is the run's failure, with the frames named.
        Err(e) => {
            assert_eq!(e.exit_code(), 248, "{e}");
            let text = e.to_string();
            assert!(
                text.starts_with("the channel from the guest lost data: frame"),
                "{text}"
            );
        }
    }
}

#[test]
fn missing_command_is_127_with_a_message() {
    let mut sink = CollectSink::default();
    let out = breakout_vm::run(&config(), &["no-such-command".into()], &mut sink).unwrap();
    assert_eq!(out.exit_code, 127);
    assert!(String::from_utf8_lossy(&sink.stderr).contains("no-such-command"));
}

#[test]
fn kernel_panic_ends_fast_with_its_code_and_no_qemu_left() {
    let mut cfg = config();
    let (key, value) = marker("panic");
    cfg.env.push((key, value.clone()));
    let (r, _, took) = run_sh(&cfg, "echo c > /proc/sysrq-trigger; sleep 1000");
    let e = r.unwrap_err();
    assert_eq!(e.exit_code(), 245, "{e}");
    let msg = e.to_string();
    assert!(msg.contains("sysrq triggered crash"), "{msg}");
    assert!(msg.contains("last console lines"), "{msg}");
    assert!(processes_with(&value).is_empty(), "QEMU left behind");
    assert!(took < Duration::from_secs(180), "took {took:?}");
}

#[test]
fn command_timeout_kills_the_vm() {
    let mut cfg = config();
    cfg.timeout = Some(Duration::from_secs(10));
    let (key, value) = marker("timeout");
    cfg.env.push((key, value.clone()));
    let mut sink = CollectSink::default();
    let t = Instant::now();
    let r = breakout_vm::run(&cfg, &["sleep".into(), "1000".into()], &mut sink);
    let took = t.elapsed();
    let e = r.unwrap_err();
    assert_eq!(e.exit_code(), 244, "{e}");
    assert!(e.to_string().contains("10s"), "{e}");
    assert!(processes_with(&value).is_empty(), "QEMU left behind");
    // Boot plus the 10 s limit plus the kill; never the 1000 s.
    assert!(took >= Duration::from_secs(10), "{took:?}");
    assert!(
        took < Duration::from_secs(10) + cfg.boot_timeout,
        "{took:?}"
    );
}

#[test]
fn guest_out_of_memory_is_reported_as_such() {
    let mut cfg = config();
    cfg.memory_mib = 256;
    // The shell itself grows a string until the kernel's OOM killer takes it.
    let (r, _, _) = run_sh(&cfg, "x=aaaaaaaaaaaaaaaa; while true; do x=$x$x; done");
    let e = r.unwrap_err();
    assert_eq!(e.exit_code(), 246, "{e}");
    assert!(e.to_string().contains("Out of memory"), "{e}");
}

#[test]
fn timings_add_up() {
    let (r, _, took) = run_sh(&config(), "true");
    let t = r.unwrap().timings;
    assert!(t.kernel > Duration::ZERO);
    assert!(t.total <= took);
    let parts =
        t.prepare + t.qemu_start + t.kernel + t.init + t.command_start + t.command + t.shutdown;
    // The parts are measured on two clocks; they must roughly cover the total.
    assert!(parts <= t.total + Duration::from_secs(2), "{t:?}");
}
