//! Shared by the runtime's integration tests: run this test binary itself inside a sandbox as a
//! tiny probe (`__probe WHAT ARGS`), capture its output, and the probes themselves.

#![allow(dead_code)]

use breakout_runtime::{spawn, Layer, Outcome, Payload, SandboxConfig};
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

/// A config with nothing on (the `none` profile) plus `layers`.
pub fn config_with(layers: &[Layer]) -> SandboxConfig {
    let mut cfg = SandboxConfig::builtin("none").expect("builtin none");
    for l in layers {
        cfg.set_enabled(*l, true);
    }
    cfg
}

/// This test binary, bound into the sandbox's root when mount-ns is on.
pub fn self_exe() -> PathBuf {
    std::env::current_exe().expect("current_exe")
}

pub struct Run {
    pub outcome: Outcome,
    pub stdout: String,
    pub stderr: String,
}

/// Run `argv` (use [`probe`] for the self-probe) in a sandbox and collect its output.
pub fn run(cfg: &SandboxConfig, argv: Vec<String>) -> Result<Run, String> {
    run_with(cfg, argv, |_| {})
}

pub fn run_with(
    cfg: &SandboxConfig,
    argv: Vec<String>,
    tweak: impl FnOnce(&mut Payload),
) -> Result<Run, String> {
    let mut cfg = cfg.clone();
    if cfg.enabled(Layer::MountNs) {
        let dir = self_exe().parent().unwrap().to_path_buf();
        if !cfg.mount.binds.contains(&dir) {
            cfg.mount.binds.push(dir);
        }
    }
    let (out_r, out_w) = nix::unistd::pipe().map_err(|e| e.to_string())?;
    let (err_r, err_w) = nix::unistd::pipe().map_err(|e| e.to_string())?;
    let mut payload = Payload::new(argv);
    payload.stdout = Some(out_w);
    payload.stderr = Some(err_w);
    tweak(&mut payload);
    let sandbox = spawn(&cfg, payload).map_err(|e| format!("spawn: {e}"))?;
    let err_reader = std::thread::spawn(move || read_all(err_r));
    let stdout = read_all(out_r);
    let stderr = err_reader.join().unwrap_or_default();
    let outcome = sandbox.wait().map_err(|e| format!("wait: {e}"))?;
    Ok(Run {
        outcome,
        stdout,
        stderr,
    })
}

pub fn read_all(fd: OwnedFd) -> String {
    let mut s = String::new();
    let _ = std::fs::File::from(fd).read_to_string(&mut s);
    s
}

/// argv for the self-probe.
pub fn probe(args: &[&str]) -> Vec<String> {
    let mut v = vec![
        self_exe().to_string_lossy().into_owned(),
        "__probe".to_string(),
    ];
    v.extend(args.iter().map(|s| s.to_string()));
    v
}

/// Run the self-probe and return its stdout, failing on a non-zero exit.
pub fn probe_out(cfg: &SandboxConfig, args: &[&str]) -> Result<String, String> {
    let r = run(cfg, probe(args))?;
    if r.outcome.status.code() != 0 {
        return Err(format!(
            "probe {args:?} exited {:?}; stderr: {}; setup: {:?}",
            r.outcome.status, r.stderr, r.outcome.setup_failure
        ));
    }
    Ok(r.stdout.trim().to_string())
}

/// A field of /proc/PID/status ("Uid", "CapEff").
pub fn status_field(status: &str, field: &str) -> Option<String> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .map(|v| v.trim().to_string())
}

fn errno_of(r: libc::c_long) -> i32 {
    if r < 0 {
        nix::errno::Errno::last() as i32
    } else {
        0
    }
}

/// The inside half: called from `main` when argv[1] == "__probe". Prints one result and exits.
pub fn probe_main(args: &[String]) -> ! {
    let what = args.first().map(String::as_str).unwrap_or("");
    let arg = args.get(1).map(String::as_str).unwrap_or("");
    let out = match what {
        "ns" => std::fs::read_link(format!("/proc/self/ns/{arg}"))
            .map(|p| p.display().to_string())
            .unwrap_or_else(|e| format!("error {e}")),
        "status" => std::fs::read_to_string("/proc/self/status").unwrap_or_default(),
        "file" => match std::fs::read(arg) {
            Ok(b) => format!("read {} bytes", b.len()),
            Err(e) => format!("errno {}", e.raw_os_error().unwrap_or(0)),
        },
        "statfs" => match nix::sys::statfs::statfs(arg) {
            Ok(st) => format!("magic {:#x}", st.filesystem_type().0),
            Err(e) => format!("errno {}", e as i32),
        },
        "open" => match std::fs::File::open(arg) {
            Ok(_) => "opened".into(),
            Err(e) => format!("errno {}", e.raw_os_error().unwrap_or(0)),
        },
        // PATH:c|b:MAJOR:MINOR: make the node, open it read-only, remove it.
        "mknod-open" => {
            let f: Vec<&str> = arg.split(':').collect();
            let kind = if f.get(1) == Some(&"b") {
                nix::sys::stat::SFlag::S_IFBLK
            } else {
                nix::sys::stat::SFlag::S_IFCHR
            };
            let num = |i: usize| f.get(i).and_then(|v| v.parse().ok()).unwrap_or(0);
            let errno = |r: Result<(), i32>| r.err().unwrap_or(0);
            let made = errno(
                nix::sys::stat::mknod(
                    f[0],
                    kind,
                    nix::sys::stat::Mode::from_bits_truncate(0o600),
                    nix::sys::stat::makedev(num(2), num(3)),
                )
                .map_err(|e| e as i32),
            );
            let opened = if made == 0 {
                errno(
                    std::fs::File::open(f[0])
                        .map(drop)
                        .map_err(|e| e.raw_os_error().unwrap_or(0)),
                )
            } else {
                -1
            };
            let _ = std::fs::remove_file(f[0]);
            format!("mknod {made} open {opened}")
        }
        "write" => match std::fs::write(arg, "x") {
            Ok(()) => "written".into(),
            Err(e) => format!("errno {}", e.raw_os_error().unwrap_or(0)),
        },
        "hostname" => nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default(),
        "fds" => {
            let mut v: Vec<String> = std::fs::read_dir("/proc/self/fd")
                .map(|d| {
                    d.filter_map(|e| e.ok())
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
            v.sort();
            v.join(" ")
        }
        // The EFAULT/EBADF trick: arguments the kernel rejects with its own errno, so a
        // different errno can only come from the seccomp filter.
        "syscall" => {
            // SAFETY: every call below passes invalid arguments the kernel rejects without
            // touching memory.
            let r = unsafe {
                match arg {
                    "read" => libc::syscall(libc::SYS_read, -1, std::ptr::null_mut::<u8>(), 0),
                    "keyctl" => libc::syscall(libc::SYS_keyctl, 0xffff_i64, 0, 0, 0, 0),
                    "mount" => libc::syscall(libc::SYS_mount, 0, 0, 0, 0, 0),
                    "unshare" => libc::syscall(libc::SYS_unshare, -1_i64),
                    "ptrace" => libc::syscall(libc::SYS_ptrace, 0xffff_i64, 0, 0, 0),
                    _ => -2,
                }
            };
            format!("errno {}", errno_of(r))
        }
        "lo" => {
            let res = (|| -> std::io::Result<()> {
                let s = std::net::UdpSocket::bind("127.0.0.1:0")?;
                s.send_to(b"ping", s.local_addr()?)?;
                s.set_read_timeout(Some(std::time::Duration::from_secs(2)))?;
                let mut b = [0u8; 8];
                s.recv(&mut b)?;
                Ok(())
            })();
            match res {
                Ok(()) => "lo ok".into(),
                Err(e) => format!("lo error {e}"),
            }
        }
        "sid" => {
            let pid = nix::unistd::getpid();
            let sid = nix::unistd::getsid(None).map(|s| s.as_raw()).unwrap_or(-1);
            format!("leader {}", sid == pid.as_raw())
        }
        "tty" => match std::fs::File::open("/dev/tty") {
            Ok(_) => "tty yes".into(),
            Err(e) => format!("tty errno {}", e.raw_os_error().unwrap_or(0)),
        },
        "cwd" => std::env::current_dir()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|e| format!("error {e}")),
        "cgroup" => std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default(),
        // Touch N MiB page by page (the memory limit's victim).
        "alloc" => {
            let mib: usize = arg.parse().unwrap_or(64);
            let mut chunks: Vec<Vec<u8>> = Vec::new();
            for _ in 0..mib {
                chunks.push(vec![1u8; 1 << 20]);
            }
            format!("allocated {} MiB", chunks.len())
        }
        // Fork N children that sleep; count how many forks the kernel refused.
        "fork" => {
            let n: usize = arg.parse().unwrap_or(16);
            let (mut ok, mut refused) = (0, 0);
            let mut kids = Vec::new();
            for _ in 0..n {
                // SAFETY: the child only sleeps and exits.
                match unsafe { libc::fork() } {
                    -1 => refused += 1,
                    0 => unsafe {
                        libc::sleep(2);
                        libc::_exit(0)
                    },
                    pid => {
                        ok += 1;
                        kids.push(pid);
                    }
                }
            }
            for k in kids {
                // SAFETY: reaping our own children.
                unsafe { libc::waitpid(k, std::ptr::null_mut(), 0) };
            }
            format!("forked {ok} refused {refused}")
        }
        // Burn CPU for N milliseconds of wall time.
        "spin" => {
            let until = std::time::Instant::now()
                + std::time::Duration::from_millis(arg.parse().unwrap_or(500));
            let mut x = 0u64;
            while std::time::Instant::now() < until {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            }
            format!("spun {}", x % 2)
        }
        // Leave a background process behind (cgroup.kill must take it).
        "orphan" => {
            // SAFETY: the child only sleeps.
            if unsafe { libc::fork() } == 0 {
                unsafe {
                    libc::setsid();
                    libc::sleep(60);
                    libc::_exit(0)
                }
            }
            format!(
                "left one behind\n{}",
                std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default()
            )
        }
        "sleep" => {
            std::thread::sleep(std::time::Duration::from_secs(arg.parse().unwrap_or(30)));
            "slept".into()
        }
        other => {
            eprintln!("unknown probe {other}");
            std::process::exit(3);
        }
    };
    println!("{out}");
    std::process::exit(0)
}

/// Is this process root (the root tests need it)?
pub fn require_root() -> Result<(), String> {
    if nix::unistd::geteuid().is_root() {
        Ok(())
    } else {
        Err(
            "this test needs root (CI runs it as root): run `sudo cargo test -p breakout-runtime`"
                .into(),
        )
    }
}
