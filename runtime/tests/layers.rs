//! Root tests on the host, one or more real assertions per layer. Each layer is switched on
//! alone (over the `none` profile) unless said otherwise, so every assertion is about that layer.
//! The payload is this test binary re-executed as a tiny probe (see common/mod.rs).
//!
//! Needs root (CI runs as root); cgroup limits are tested in tests/cgroup_limits.rs.

mod common;

use breakout_runtime::{ExitKind, Layer, Payload, SandboxConfig};
use common::*;
use libtest_mimic::{Arguments, Failed, Trial};
use std::time::Duration;

type R = Result<(), Failed>;

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+).into());
        }
    };
}

fn ns_differs(layer: Layer, ns: &'static str) -> R {
    require_root()?;
    let host = std::fs::read_link(format!("/proc/self/ns/{ns}"))?
        .display()
        .to_string();
    let inside = probe_out(&config_with(&[layer]), &["ns", ns])?;
    ensure!(
        inside.starts_with(&format!("{ns}:[")),
        "unexpected ns link {inside:?}"
    );
    ensure!(
        inside != host,
        "{layer} on: {ns} namespace is still the host's ({host})"
    );
    // Control: without the layer the namespace is the host's.
    let same = probe_out(&config_with(&[]), &["ns", ns])?;
    ensure!(
        same == host,
        "control: {ns} namespace {same} != host {host} with every layer off"
    );
    Ok(())
}

fn uid_outside(cfg: SandboxConfig, want_uid: &str) -> R {
    require_root()?;
    // The payload sleeps; read its credentials from outside while it runs.
    let (out_r, out_w) = nix::unistd::pipe()?;
    let mut payload = Payload::new(probe(&["sleep", "30"]));
    payload.stdout = Some(out_w);
    let mut cfg = cfg;
    if cfg.enabled(Layer::MountNs) {
        cfg.mount
            .binds
            .push(self_exe().parent().unwrap().to_path_buf());
    }
    let mut sb = breakout_runtime::spawn(&cfg, payload)?;
    let status = std::fs::read_to_string(format!("/proc/{}/status", sb.pid()))?;
    sb.kill();
    let outcome = sb.wait()?;
    drop(out_r);
    let uid = status_field(&status, "Uid").unwrap_or_default();
    let gid = status_field(&status, "Gid").unwrap_or_default();
    let fields: Vec<&str> = uid.split_whitespace().collect();
    ensure!(
        fields.len() == 4 && fields.iter().all(|f| *f == want_uid),
        "outside Uid line {uid:?}, want all {want_uid}"
    );
    ensure!(
        gid.split_whitespace().all(|f| f == want_uid),
        "outside Gid line {gid:?}, want all {want_uid}"
    );
    ensure!(
        matches!(outcome.status, ExitKind::Signaled { signal: 9, .. }),
        "kill() gave {:?}",
        outcome.status
    );
    Ok(())
}

fn caps_cut() -> R {
    require_root()?;
    let st = probe_out(&config_with(&[Layer::Caps]), &["status"])?;
    for f in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        ensure!(
            status_field(&st, f).as_deref() == Some("0000000000000000"),
            "{f} = {:?} with caps on and nothing kept",
            status_field(&st, f)
        );
    }
    let st = probe_out(&config_with(&[]), &["status"])?;
    ensure!(
        status_field(&st, "CapEff").as_deref() != Some("0000000000000000"),
        "control: root payload without caps layer has CapEff 0"
    );
    Ok(())
}

fn caps_kept_for_uid() -> R {
    require_root()?;
    let mut cfg = config_with(&[Layer::Caps, Layer::Uid]);
    cfg.keep_cap("net_bind_service")?;
    let st = probe_out(&cfg, &["status"])?;
    // CAP_NET_BIND_SERVICE is bit 10.
    for f in ["CapEff", "CapPrm", "CapBnd", "CapAmb"] {
        ensure!(
            status_field(&st, f).as_deref() == Some("0000000000000400"),
            "{f} = {:?}, want only CAP_NET_BIND_SERVICE",
            status_field(&st, f)
        );
    }
    ensure!(
        status_field(&st, "Uid")
            .unwrap_or_default()
            .starts_with("1000"),
        "uid not 1000: {st}"
    );
    Ok(())
}

fn no_new_privs() -> R {
    require_root()?;
    let st = probe_out(&config_with(&[Layer::NoNewPrivs]), &["status"])?;
    ensure!(
        status_field(&st, "NoNewPrivs").as_deref() == Some("1"),
        "NoNewPrivs {:?}",
        status_field(&st, "NoNewPrivs")
    );
    let st = probe_out(&config_with(&[]), &["status"])?;
    ensure!(
        status_field(&st, "NoNewPrivs").as_deref() == Some("0"),
        "control: NoNewPrivs set without the layer"
    );
    Ok(())
}

fn seccomp_profile(profile: &str, denied: &str, want_errno: i32) -> R {
    require_root()?;
    let mut cfg = config_with(&[Layer::Seccomp]);
    cfg.set_seccomp_profile(profile)?;
    ensure!(
        cfg.seccomp_denies(denied) == Some(true),
        "{profile}: seccomp_denies({denied}) = {:?}",
        cfg.seccomp_denies(denied)
    );
    let st = probe_out(&cfg, &["status"])?;
    ensure!(
        status_field(&st, "Seccomp").as_deref() == Some("2"),
        "Seccomp mode {:?}",
        status_field(&st, "Seccomp")
    );
    let got = probe_out(&cfg, &["syscall", denied])?;
    ensure!(
        got == format!("errno {want_errno}"),
        "{profile}: {denied} gave {got}, want the profile's errno {want_errno}"
    );
    // Allowed: read(-1) reaches the kernel, which answers EBADF.
    let got = probe_out(&cfg, &["syscall", "read"])?;
    ensure!(
        got == format!("errno {}", libc::EBADF),
        "{profile}: allowed read(-1) gave {got}, want EBADF"
    );
    // Control: without the filter the kernel's own answer comes back for the denied call.
    let got = probe_out(&config_with(&[]), &["syscall", denied])?;
    ensure!(
        got != format!("errno {want_errno}") || want_errno != libc::EPERM,
        "control: {denied} gave {got} without seccomp"
    );
    Ok(())
}

fn fd_hygiene() -> R {
    require_root()?;
    // A descriptor the caller left inheritable (no O_CLOEXEC).
    // SAFETY: plain open and dup2 of descriptors we own; closed below.
    // High number, so it cannot be confused with the probe's own directory handle (3).
    let fd = unsafe {
        let f = libc::open(c"/etc/hostname".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        let high = libc::dup2(f, 100);
        libc::close(f);
        high
    };
    ensure!(fd == 100, "open/dup2 failed");
    let with = probe_out(&config_with(&[Layer::FdHygiene]), &["fds"]);
    let without = probe_out(&config_with(&[]), &["fds"]);
    // SAFETY: closing the descriptor opened above.
    unsafe { libc::close(fd) };
    let (with, without) = (with?, without?);
    let has = |list: &str| list.split_whitespace().any(|f| f == fd.to_string());
    ensure!(!has(&with), "fd {fd} visible with fd-hygiene on: {with}");
    ensure!(
        has(&without),
        "control: inherited fd {fd} not visible with fd-hygiene off: {without}"
    );
    // Only 0, 1, 2 and the probe's own directory handle remain.
    let nums: Vec<i32> = with
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect();
    ensure!(
        nums.iter().filter(|n| **n > 3).count() == 0,
        "more than stdio reached the payload: {with}"
    );
    Ok(())
}

/// A working directory outside the payload's root (the runc CVE-2024-21626 shape): the runtime
/// is started chrooted into a directory while its cwd stays outside; fd-hygiene must refuse.
fn cwd_outside_root_refused(hygiene: bool) -> R {
    require_root()?;
    let dir = tempfile::tempdir()?;
    let (r, w) = nix::unistd::pipe()?;
    // SAFETY: the child chroots, runs one sandbox and exits with a code.
    let child = unsafe { libc::fork() };
    if child == 0 {
        let report = (|| -> Result<String, String> {
            let out = w.try_clone().map_err(|e| e.to_string())?;
            nix::unistd::chroot(dir.path()).map_err(|e| e.to_string())?; // cwd stays outside
            let layers: &[Layer] = if hygiene { &[Layer::FdHygiene] } else { &[] };
            let mut p = Payload::new(["/bin/true"]);
            p.stdin = Some(out.try_clone().map_err(|e| e.to_string())?);
            p.stdout = Some(out.try_clone().map_err(|e| e.to_string())?);
            p.stderr = Some(out);
            let o = breakout_runtime::spawn(&config_with(layers), p)
                .map_err(|e| e.to_string())?
                .wait()
                .map_err(|e| e.to_string())?;
            Ok(format!("{:?}", o.setup_failure))
        })()
        .unwrap_or_else(|e| format!("error: {e}"));
        let _ = nix::unistd::write(&w, report.as_bytes());
        // SAFETY: leave the forked test process without running the harness's exit path.
        unsafe { libc::_exit(0) };
    }
    drop(w);
    let out = read_all(r);
    nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(child), None)?;
    if hygiene {
        ensure!(
            out.contains("step: \"fd-hygiene\"")
                && out.contains("getcwd")
                && out.contains(&format!("errno: {}", libc::ENOENT)),
            "cwd outside the root not refused: {out}"
        );
    } else {
        // Control: without the check the payload starts (and fails only at execve: no /bin/true
        // in the empty root) — the escape hatch stays open.
        ensure!(out.contains("execve"), "control: {out}");
    }
    Ok(())
}

fn mount_ns_root() -> R {
    require_root()?;
    let cfg = config_with(&[Layer::MountNs]);
    let r = run(
        &cfg,
        vec![
            "/bin/sh".into(),
            "-c".into(),
            "ls /; echo ---; cat /proc/self/mountinfo | wc -l".into(),
        ],
    )?;
    ensure!(r.outcome.status.code() == 0, "{:?} {}", r.outcome, r.stderr);
    let entries: Vec<&str> = r
        .stdout
        .split("---")
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    for want in ["usr", "etc", "proc", "dev", "tmp"] {
        ensure!(
            entries.contains(&want),
            "/{want} missing from the new root: {entries:?}"
        );
    }
    for host_only in ["root", "home", "var", "srv"] {
        ensure!(
            !entries.contains(&host_only),
            "host's /{host_only} visible in the new root: {entries:?}"
        );
    }
    let w = probe_out(&cfg, &["write", "/usr/breakout-test"])?;
    ensure!(
        w == format!("errno {}", libc::EROFS),
        "write into the /usr bind gave {w}, want EROFS"
    );
    Ok(())
}

/// Every writable mount of the sandbox is nodev: root (CAP_MKNOD without a user namespace) makes
/// a node in /dev, /tmp, /dev/shm and the root, and it does not open (EACCES). The device nodes
/// bound from the host still open.
fn writable_mounts_nodev() -> R {
    require_root()?;
    let cfg = config_with(&[Layer::MountNs]);
    for dir in ["/dev", "/tmp", "/dev/shm", ""] {
        let node = format!("{dir}/breakout-node:c:1:3");
        let got = probe_out(&cfg, &["mknod-open", &node])?;
        ensure!(
            got == format!("mknod 0 open {}", libc::EACCES),
            "a node made in {dir}/ of the sandbox: {got}, want mknod 0 open EACCES"
        );
    }
    for dev in ["/dev/null", "/dev/zero", "/dev/urandom"] {
        let got = probe_out(&cfg, &["open", dev])?;
        ensure!(got == "opened", "bound {dev} does not open: {got}");
    }
    // Control: the same node in the host's /dev (devtmpfs, not nodev) opens.
    let got = probe_out(
        &config_with(&[]),
        &["mknod-open", "/dev/breakout-node-control:c:1:3"],
    )?;
    ensure!(got == "mknod 0 open 0", "control on the host's /dev: {got}");
    Ok(())
}

/// A bind source swapped for a symlink between the runtime's look at it and the mount (a
/// directory the sandbox's user can write, say) must never bind what the symlink points to. A
/// thread exchanges `data` (a directory holding a 1-byte marker) and a symlink to a directory
/// holding a 4-byte secret, atomically (renameat2 RENAME_EXCHANGE), while sandboxes are started
/// with `data` as a bind source. Each run may see the directory, fail its setup, or see the
/// symlink recreated as a symlink (which leads nowhere inside): never the secret.
fn bind_source_swap_never_redirects() -> R {
    require_root()?;
    let tmp = tempfile::Builder::new()
        .prefix("breakout-swap")
        .tempdir_in("/tmp")?;
    let base = tmp.path().canonicalize()?;
    let secret = base.join("secret");
    std::fs::create_dir(&secret)?;
    std::fs::write(secret.join("marker"), "bad!")?;
    let work = base.join("w");
    std::fs::create_dir(&work)?;
    let data = work.join("data");
    std::fs::create_dir(&data)?;
    std::fs::write(data.join("marker"), "g")?;
    let swap = work.join("swap");
    std::os::unix::fs::symlink(&secret, &swap)?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swapper = {
        let (stop, data, swap) = (stop.clone(), data.clone(), swap.clone());
        std::thread::spawn(move || {
            let (a, b) = (
                std::ffi::CString::new(data.as_os_str().as_encoded_bytes()).unwrap(),
                std::ffi::CString::new(swap.as_os_str().as_encoded_bytes()).unwrap(),
            );
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // SAFETY: two valid NUL-terminated paths.
                unsafe {
                    libc::syscall(
                        libc::SYS_renameat2,
                        libc::AT_FDCWD,
                        a.as_ptr(),
                        libc::AT_FDCWD,
                        b.as_ptr(),
                        libc::RENAME_EXCHANGE,
                    )
                };
            }
        })
    };
    let mut cfg = config_with(&[Layer::MountNs]);
    cfg.mount.binds.push(data.clone());
    let marker = data.join("marker").display().to_string();
    let (mut seen_dir, mut failed, mut leaked) = (0, 0, 0);
    for _ in 0..60 {
        match run(&cfg, probe(&["file", &marker])) {
            Ok(r) if r.stdout.trim() == "read 4 bytes" => leaked += 1,
            Ok(r) if r.stdout.trim() == "read 1 bytes" => seen_dir += 1,
            _ => failed += 1,
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = swapper.join();
    ensure!(
        leaked == 0,
        "the swapped-in symlink redirected the bind {leaked} times of 60 (directory seen {seen_dir}, other {failed})"
    );
    ensure!(
        seen_dir > 0,
        "the bind never worked in 60 runs ({failed} other)"
    );
    Ok(())
}

/// A configured root whose mount point is a symlink (`proc -> elsewhere`) is refused: mounting
/// through it would put the sandbox's procfs, unmasked, at a place fs-hardening does not mask
/// (the CVE-2019-19921 class).
fn root_with_symlinked_mount_point_refused() -> R {
    require_root()?;
    let tmp = tempfile::Builder::new()
        .prefix("breakout-root")
        .tempdir_in("/tmp")?;
    let root = tmp.path().join("root");
    for d in ["dev", "tmp", "elsewhere"] {
        std::fs::create_dir_all(root.join(d))?;
    }
    std::os::unix::fs::symlink("elsewhere", root.join("proc"))?;
    let mut cfg = config_with(&[Layer::MountNs]);
    cfg.mount.root = Some(root.clone());
    match breakout_runtime::spawn(&cfg, Payload::new(["/no-payload"])) {
        Err(e) => ensure!(
            e.to_string().contains("`proc`"),
            "refused for another reason: {e}"
        ),
        Ok(sb) => {
            let o = sb.wait()?;
            return Err(format!(
                "a root with a symlinked /proc mount point was accepted (outcome {o:?})"
            )
            .into());
        }
    }
    // Control: with a real directory the same root is accepted (the payload is missing: 127).
    std::fs::remove_file(root.join("proc"))?;
    std::fs::create_dir(root.join("proc"))?;
    let o = breakout_runtime::spawn(&cfg, Payload::new(["/no-payload"]))?.wait()?;
    ensure!(o.status.code() == 127, "control: {o:?}");
    Ok(())
}

/// A read-only bind is read-only all the way down: a host directory bound into the sandbox with
/// a filesystem mounted under it (as /usr/local, or /etc/hosts in a container, often are) must
/// not leave that submount writable.
fn bind_submounts_read_only() -> R {
    require_root()?;
    let tmp = tempfile::Builder::new()
        .prefix("breakout-submount")
        .tempdir_in("/tmp")?;
    let src = tmp.path().canonicalize()?.join("src");
    let sub = src.join("sub");
    std::fs::create_dir_all(&sub)?;
    nix::mount::mount(
        Some("tmpfs"),
        &sub,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some("size=64k"),
    )?;
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
        }
    }
    let _guard = Unmount(sub.clone());
    let mut cfg = config_with(&[Layer::MountNs]);
    cfg.mount.binds.push(src.clone());
    let top = probe_out(&cfg, &["write", &src.join("x").display().to_string()])?;
    ensure!(
        top == format!("errno {}", libc::EROFS),
        "the bind itself is writable: {top}"
    );
    let below = probe_out(&cfg, &["write", &sub.join("x").display().to_string()])?;
    ensure!(
        below == format!("errno {}", libc::EROFS),
        "a submount of a read-only bind is writable in the sandbox: {below}"
    );
    Ok(())
}

/// A configured root for the self-probe: this test binary and the libraries it loads, copied
/// to their paths under `root`, plus the mount points.
fn self_probe_root(root: &std::path::Path) -> R {
    for d in ["dev", "tmp", "proc", "elsewhere"] {
        std::fs::create_dir_all(root.join(d))?;
    }
    let exe = self_exe();
    let ldd = std::process::Command::new("ldd").arg(&exe).output()?;
    let mut files = vec![exe.clone()];
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        if let Some(p) = line
            .split_whitespace()
            .find(|w| w.starts_with('/'))
            .map(std::path::PathBuf::from)
        {
            files.push(p);
        }
    }
    for f in files {
        let to = root.join(f.strip_prefix("/").unwrap_or(&f));
        std::fs::create_dir_all(to.parent().ok_or("no parent")?)?;
        std::fs::copy(&f, &to)?;
    }
    Ok(())
}

/// A mount point inside a configured root swapped for a symlink after the runtime looked at it
/// (another sandbox sharing the root, CVE-2021-30465) must not take the mount elsewhere: a thread
/// exchanges `proc` and a symlink `proc -> elsewhere` while sandboxes start; procfs must never be
/// found at /elsewhere (where fs-hardening would not mask it).
fn root_mount_point_swap_never_redirects() -> R {
    require_root()?;
    // Until 40 runs mounted where they should, at most RUNS.
    const RUNS: usize = 400;
    let tmp = tempfile::Builder::new()
        .prefix("breakout-rootswap")
        .tempdir_in("/tmp")?;
    let root = tmp.path().canonicalize()?.join("root");
    self_probe_root(&root)?;
    let (proc_dir, swap) = (root.join("proc"), root.join("proc.swap"));
    std::os::unix::fs::symlink("elsewhere", &swap)?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swapper = {
        let stop = stop.clone();
        let a = std::ffi::CString::new(proc_dir.as_os_str().as_encoded_bytes())?;
        let b = std::ffi::CString::new(swap.as_os_str().as_encoded_bytes())?;
        std::thread::spawn(move || {
            let exchange = || {
                // SAFETY: two valid NUL-terminated paths.
                unsafe {
                    libc::syscall(
                        libc::SYS_renameat2,
                        libc::AT_FDCWD,
                        a.as_ptr(),
                        libc::AT_FDCWD,
                        b.as_ptr(),
                        libc::RENAME_EXCHANGE,
                    )
                };
            };
            // Mostly the directory (the runtime's look passes), briefly the symlink.
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                exchange();
                let t = std::time::Instant::now();
                while t.elapsed() < std::time::Duration::from_micros(300) {}
                exchange();
                std::thread::sleep(std::time::Duration::from_micros(600));
            }
        })
    };
    let mut cfg = config_with(&[Layer::MountNs]);
    cfg.mount.root = Some(root.clone());
    let (mut fine, mut other, mut leaked) = (0, 0, 0);
    for _ in 0..RUNS {
        if fine >= 40 {
            break;
        }
        match run(&cfg, probe(&["statfs", "/elsewhere"])) {
            Ok(r) if r.stdout.trim() == "magic 0x9fa0" => leaked += 1,
            Ok(r) if r.stdout.trim().starts_with("magic") => fine += 1,
            _ => other += 1,
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = swapper.join();
    ensure!(
        leaked == 0,
        "procfs mounted through the swapped-in symlink {leaked} times of {RUNS} (fine {fine}, other {other})"
    );
    ensure!(fine > 0, "no run got through in {RUNS} ({other} other)");
    Ok(())
}

fn fs_hardening() -> R {
    require_root()?;
    let cfg = config_with(&[Layer::MountNs, Layer::FsHardening]);
    let w = probe_out(&cfg, &["write", "/proc/sys/kernel/hostname"])?;
    ensure!(
        w == format!("errno {}", libc::EROFS),
        "/proc/sys writable: {w}"
    );
    let w = probe_out(&cfg, &["write", "/newfile"])?;
    ensure!(w == format!("errno {}", libc::EROFS), "root writable: {w}");
    let masked = [
        "/proc/timer_list",
        "/proc/interrupts",
        "/proc/keys",
        "/proc/sched_debug",
    ]
    .into_iter()
    .find(|p| std::fs::read(p).map(|b| !b.is_empty()).unwrap_or(false))
    .ok_or("no maskable /proc file with content on this host")?;
    let got = probe_out(&cfg, &["file", masked])?;
    ensure!(got == "read 0 bytes", "{masked} not masked: {got}");
    let control = probe_out(&config_with(&[Layer::MountNs]), &["file", masked])?;
    ensure!(
        control != "read 0 bytes",
        "control: {masked} empty without fs-hardening"
    );
    Ok(())
}

/// docker-default: a read-only sysfs with runc's /sys masks.
fn docker_sysfs() -> R {
    require_root()?;
    let cfg = SandboxConfig::builtin("docker-default")?;
    let script = "ls /sys/firmware | wc -l; ls /sys/kernel >/dev/null && echo kernel-visible; touch /sys/x 2>&1 || true";
    let r = run(&cfg, vec!["/bin/sh".into(), "-c".into(), script.into()])?;
    ensure!(r.outcome.status.code() == 0, "{:?} {}", r.outcome, r.stderr);
    let first = r.stdout.lines().next().unwrap_or("").trim().to_string();
    ensure!(first == "0", "/sys/firmware not masked: {:?}", r.stdout);
    ensure!(
        r.stdout.contains("kernel-visible"),
        "sysfs not mounted: {:?}",
        r.stdout
    );
    ensure!(
        r.stdout.contains("Read-only file system"),
        "sysfs writable: {:?}",
        r.stdout
    );
    Ok(())
}

fn net_ns_lo() -> R {
    require_root()?;
    let got = probe_out(&config_with(&[Layer::NetNs]), &["lo"])?;
    ensure!(got == "lo ok", "loopback in the new net namespace: {got}");
    let dev = run(
        &config_with(&[Layer::NetNs]),
        vec!["/bin/cat".into(), "/proc/net/dev".into()],
    )?;
    let ifaces: Vec<&str> = dev
        .stdout
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .collect();
    ensure!(
        ifaces == ["lo"],
        "interfaces in the new net namespace: {ifaces:?}"
    );
    Ok(())
}

fn uts_hostname() -> R {
    require_root()?;
    let mut cfg = config_with(&[Layer::UtsNs]);
    cfg.hostname = "sandbox-test".into();
    let got = probe_out(&cfg, &["hostname"])?;
    ensure!(got == "sandbox-test", "hostname {got}");
    let host = nix::unistd::gethostname()?.to_string_lossy().into_owned();
    ensure!(host != "sandbox-test", "the host's hostname changed");
    Ok(())
}

fn rlimits() -> R {
    require_root()?;
    let mut cfg = config_with(&[Layer::Rlimits]);
    cfg.rlimits.insert("nofile".into(), 123);
    let r = run(&cfg, vec!["/bin/cat".into(), "/proc/self/limits".into()])?;
    let line = r
        .stdout
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap_or("")
        .to_string();
    ensure!(
        line.split_whitespace().filter(|w| *w == "123").count() == 2,
        "limits line {line:?}"
    );
    ensure!(
        cfg.rlimit_nofile() == Some(123),
        "accessor {:?}",
        cfg.rlimit_nofile()
    );
    Ok(())
}

fn new_session() -> R {
    require_root()?;
    ensure!(
        probe_out(&config_with(&[Layer::NewSession]), &["sid"])? == "leader true",
        "payload not a session leader with new-session"
    );
    ensure!(
        probe_out(&config_with(&[]), &["sid"])? == "leader false",
        "control: payload a session leader without new-session"
    );
    Ok(())
}

/// The tiocsti contract: the caller's terminal becomes the controlling terminal first; with
/// new-session the payload ends up without it, without new-session it keeps it.
fn controlling_tty(new_session: bool) -> R {
    require_root()?;
    let pty = nix::pty::openpty(None, None)?;
    let layers: &[Layer] = if new_session {
        &[Layer::NewSession]
    } else {
        &[]
    };
    let slave = pty.slave.try_clone()?;
    let r = run_with(&config_with(layers), probe(&["tty"]), move |p| {
        p.controlling_tty = Some(slave)
    })?;
    let want = if new_session {
        format!("tty errno {}", libc::ENXIO)
    } else {
        "tty yes".to_string()
    };
    ensure!(
        r.stdout.trim() == want,
        "new-session={new_session}: /dev/tty gave {:?}, want {want:?} ({:?})",
        r.stdout.trim(),
        r.outcome
    );
    drop(pty);
    Ok(())
}

fn exit_codes() -> R {
    require_root()?;
    let cfg = config_with(&[Layer::MountNs, Layer::PidNs]);
    let nf = run(&cfg, vec!["/no/such/binary".into()])?;
    ensure!(
        nf.outcome.status.code() == 127,
        "not found: {:?}",
        nf.outcome
    );
    let f = nf
        .outcome
        .setup_failure
        .ok_or("no setup failure for a missing binary")?;
    ensure!(
        f.errno == libc::ENOENT && f.syscall.contains("/no/such/binary"),
        "{f:?}"
    );
    let ne = run(&cfg, vec!["/etc/passwd".into()])?;
    ensure!(
        ne.outcome.status.code() == 126,
        "not executable: {:?}",
        ne.outcome
    );
    let sig = run(
        &cfg,
        vec!["/bin/sh".into(), "-c".into(), "kill -TERM $$".into()],
    )?;
    // pid-ns: the shell is pid 1, which ignores signals it has no handler for, even from itself.
    ensure!(
        sig.outcome.status.code() == 0 || sig.outcome.status.code() == 143,
        "{:?}",
        sig.outcome
    );
    let sig = run(
        &config_with(&[]),
        vec!["/bin/sh".into(), "-c".into(), "kill -TERM $$".into()],
    )?;
    ensure!(
        sig.outcome.status
            == ExitKind::Signaled {
                signal: 15,
                core_dumped: false
            },
        "{:?}",
        sig.outcome
    );
    ensure!(sig.outcome.status.code() == 143, "128+15");
    let code = run(
        &config_with(&[]),
        vec!["/bin/sh".into(), "-c".into(), "exit 7".into()],
    )?;
    ensure!(code.outcome.status.code() == 7, "{:?}", code.outcome);
    Ok(())
}

fn setup_failure_reported() -> R {
    require_root()?;
    let mut cfg = config_with(&[Layer::Rlimits]);
    // Above fs.nr_open: setrlimit refuses with EPERM.
    cfg.rlimits.insert("nofile".into(), u64::from(u32::MAX));
    let r = run(&cfg, probe(&["status"]))?;
    ensure!(r.outcome.status.code() == 125, "{:?}", r.outcome);
    let f = r.outcome.setup_failure.ok_or("no setup failure")?;
    ensure!(
        f.step == "rlimits" && f.syscall.starts_with("setrlimit(RLIMIT_NOFILE"),
        "{f:?}"
    );
    ensure!(
        f.to_string()
            .starts_with("sandbox setup failed at setrlimit(RLIMIT_NOFILE"),
        "{f}"
    );
    Ok(())
}

fn wait_timeout_and_kill() -> R {
    require_root()?;
    let cfg = config_with(&[Layer::PidNs]);
    let mut sb = breakout_runtime::spawn(&cfg, Payload::new(probe(&["sleep", "30"])))?;
    ensure!(
        sb.wait_timeout(Duration::from_millis(200))?.is_none(),
        "payload ended early"
    );
    sb.kill();
    let o = sb
        .wait_timeout(Duration::from_secs(10))?
        .ok_or("not dead 10 s after kill")?;
    ensure!(
        matches!(o.status, ExitKind::Signaled { signal: 9, .. }),
        "{:?}",
        o.status
    );
    Ok(())
}

/// The runtime dies (SIGKILL) while the payload runs: the payload must die too, also after a uid
/// switch (which clears the parent-death signal, so the runtime re-arms it).
fn dies_with_parent(layers: &'static [Layer]) -> R {
    require_root()?;
    let (r, w) = nix::unistd::pipe()?;
    // SAFETY: the child only spawns a sandbox, reports its pid and sleeps until killed.
    let runtime = unsafe { libc::fork() };
    if runtime == 0 {
        let code = match breakout_runtime::spawn(
            &config_with(layers),
            Payload::new(probe(&["sleep", "60"])),
        ) {
            Ok(sb) => {
                let _ = nix::unistd::write(&w, &sb.pid().to_ne_bytes());
                std::mem::forget(sb);
                std::thread::sleep(Duration::from_secs(60));
                0
            }
            Err(_) => 1,
        };
        // SAFETY: leave the forked test process without running the test harness's exit code.
        unsafe { libc::_exit(code) };
    }
    drop(w);
    let mut buf = [0u8; 4];
    let n = nix::unistd::read(std::os::fd::AsRawFd::as_raw_fd(&r), &mut buf)?;
    ensure!(n == 4, "the forked runtime did not report a payload pid");
    let payload = i32::from_ne_bytes(buf);
    let alive = |pid: i32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                !s.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
            .unwrap_or(false)
    };
    ensure!(alive(payload), "payload {payload} not running");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(runtime),
        nix::sys::signal::Signal::SIGKILL,
    )?;
    nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(runtime), None)?;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while alive(payload) {
        ensure!(
            std::time::Instant::now() < deadline,
            "payload {payload} survived its runtime by 5 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// `rootless` started by a real unprivileged user (uid 1000), not by root dropping privileges.
fn rootless_by_unprivileged_user() -> R {
    require_root()?;
    let (r, w) = nix::unistd::pipe()?;
    // SAFETY: the child drops to uid 1000, runs one sandbox and exits with its status.
    let child = unsafe { libc::fork() };
    if child == 0 {
        let code = (|| -> Result<i32, String> {
            nix::unistd::setgroups(&[]).map_err(|e| e.to_string())?;
            let (u, g) = (
                nix::unistd::Uid::from_raw(1000),
                nix::unistd::Gid::from_raw(1000),
            );
            nix::unistd::setresgid(g, g, g).map_err(|e| e.to_string())?;
            nix::unistd::setresuid(u, u, u).map_err(|e| e.to_string())?;
            let mut cfg = SandboxConfig::builtin("rootless").map_err(|e| e.to_string())?;
            cfg.set_enabled(Layer::CgroupLimits, false);
            let run = run(&cfg, probe(&["status"]))?;
            let report = format!(
                "{}{:?} {}",
                run.stdout, run.outcome.setup_failure, run.stderr
            );
            let _ = nix::unistd::write(&w, report.as_bytes());
            Ok(run.outcome.status.code())
        })()
        .unwrap_or_else(|e| {
            let _ = nix::unistd::write(&w, format!("error: {e}").as_bytes());
            99
        });
        // SAFETY: leave the forked test process without running the harness's exit path.
        unsafe { libc::_exit(code) };
    }
    drop(w);
    let out = read_all(r);
    let status = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(child), None)?;
    ensure!(
        matches!(status, nix::sys::wait::WaitStatus::Exited(_, 0)),
        "{status:?}: {out}"
    );
    ensure!(
        status_field(&out, "Uid").is_some_and(|u| u.starts_with("0")),
        "inside uid not 0: {out}"
    );
    ensure!(
        status_field(&out, "CapEff").as_deref() == Some("0000000000000000"),
        "CapEff: {out}"
    );
    ensure!(
        status_field(&out, "NoNewPrivs").as_deref() == Some("1"),
        "NoNewPrivs: {out}"
    );
    ensure!(
        status_field(&out, "Seccomp").as_deref() == Some("2"),
        "Seccomp: {out}"
    );
    Ok(())
}

fn profile_runs(name: &'static str) -> R {
    require_root()?;
    let mut cfg = SandboxConfig::builtin(name)?;
    cfg.set_enabled(Layer::CgroupLimits, false); // cgroup v1 host; see tests/cgroup_limits.rs
    let r = run(&cfg, probe(&["status"]))?;
    ensure!(
        r.outcome.status.code() == 0,
        "{name}: {:?} {}",
        r.outcome,
        r.stderr
    );
    let st = r.stdout;
    if cfg.enabled(Layer::Caps) && cfg.caps.keep.is_empty() {
        ensure!(
            status_field(&st, "CapEff").as_deref() == Some("0000000000000000"),
            "{name}: CapEff"
        );
    }
    if cfg.enabled(Layer::NoNewPrivs) {
        ensure!(
            status_field(&st, "NoNewPrivs").as_deref() == Some("1"),
            "{name}: NoNewPrivs"
        );
    }
    if cfg.enabled(Layer::PidNs) {
        // Its own /proc shows only the inner pid; a host /proc would show "HOSTPID 1".
        ensure!(
            status_field(&st, "NSpid").is_some_and(|v| v == "1" || v.ends_with(" 1")),
            "{name}: payload is not pid 1 of its namespace: {:?}",
            status_field(&st, "NSpid")
        );
    }
    Ok(())
}

fn main() {
    let args = std::env::args().collect::<Vec<_>>();
    if args.get(1).map(String::as_str) == Some("__probe") {
        probe_main(&args[2..]);
    }
    let mut args = Arguments::from_args();
    // The fd test counts descriptors; keep trials from leaking theirs into each other.
    args.test_threads = Some(1);
    let mut trials = Vec::new();
    for (layer, ns) in [
        (Layer::UserNs, "user"),
        (Layer::PidNs, "pid"),
        (Layer::MountNs, "mnt"),
        (Layer::NetNs, "net"),
        (Layer::IpcNs, "ipc"),
        (Layer::UtsNs, "uts"),
        (Layer::CgroupNs, "cgroup"),
    ] {
        trials.push(Trial::test(
            format!("{layer}::namespace_differs"),
            move || ns_differs(layer, ns),
        ));
    }
    trials.extend([
        Trial::test("uid::runs_as_1000_outside", || {
            uid_outside(config_with(&[Layer::Uid]), "1000")
        }),
        Trial::test("uid::with_user_ns_still_1000_outside", || {
            uid_outside(config_with(&[Layer::Uid, Layer::UserNs]), "1000")
        }),
        Trial::test("user-ns::alone_maps_inside_root_to_outside_root", || {
            uid_outside(config_with(&[Layer::UserNs]), "0")
        }),
        Trial::test("uid::strict_is_1000_outside", || {
            let mut cfg = SandboxConfig::builtin("strict")?;
            cfg.set_enabled(Layer::CgroupLimits, false);
            uid_outside(cfg, "1000")
        }),
        Trial::test("uid::rootless_is_1000_outside", || {
            let mut cfg = SandboxConfig::builtin("rootless")?;
            cfg.set_enabled(Layer::CgroupLimits, false);
            uid_outside(cfg, "1000")
        }),
        Trial::test(
            "uid::rootless_started_by_uid_1000",
            rootless_by_unprivileged_user,
        ),
        Trial::test("caps::every_set_empty", caps_cut),
        Trial::test(
            "caps::kept_capability_reaches_uid_1000_payload",
            caps_kept_for_uid,
        ),
        Trial::test("no-new-privs::bit_set", no_new_privs),
        Trial::test("seccomp::strict_denies_keyctl_with_eperm", || {
            seccomp_profile("strict", "keyctl", libc::EPERM)
        }),
        Trial::test("seccomp::strict_denies_unshare_with_eperm", || {
            seccomp_profile("strict", "unshare", libc::EPERM)
        }),
        Trial::test("seccomp::docker_default_denies_keyctl_with_eperm", || {
            seccomp_profile("docker-default", "keyctl", libc::EPERM)
        }),
        Trial::test("fd-hygiene::inherited_fd_not_visible", fd_hygiene),
        Trial::test("fd-hygiene::cwd_outside_root_refused", || {
            cwd_outside_root_refused(true)
        }),
        Trial::test("fd-hygiene::off_cwd_outside_root_not_checked", || {
            cwd_outside_root_refused(false)
        }),
        Trial::test("mount-ns::new_root_read_only_binds", mount_ns_root),
        Trial::test("fs-hardening::masked_and_read_only", fs_hardening),
        Trial::test(
            "mount-ns::bind_submounts_read_only",
            bind_submounts_read_only,
        ),
        Trial::test(
            "mount-ns::root_mount_point_swap_never_redirects",
            root_mount_point_swap_never_redirects,
        ),
        Trial::test(
            "mount-ns::root_with_symlinked_mount_point_refused",
            root_with_symlinked_mount_point_refused,
        ),
        Trial::test(
            "mount-ns::bind_source_swapped_for_symlink_never_redirects",
            bind_source_swap_never_redirects,
        ),
        Trial::test(
            "mount-ns::writable_mounts_nodev_bound_devices_open",
            writable_mounts_nodev,
        ),
        Trial::test("net-ns::only_lo_and_it_is_up", net_ns_lo),
        Trial::test(
            "fs-hardening::docker_default_sysfs_read_only_and_masked",
            docker_sysfs,
        ),
        Trial::test("uts-ns::own_hostname", uts_hostname),
        Trial::test("rlimits::nofile_applied", rlimits),
        Trial::test("new-session::payload_is_session_leader", new_session),
        Trial::test("new-session::caller_terminal_taken_away", || {
            controlling_tty(true)
        }),
        Trial::test("new-session::off_keeps_caller_terminal", || {
            controlling_tty(false)
        }),
        Trial::test("runtime::exit_codes_125_126_127_128n", exit_codes),
        Trial::test(
            "runtime::setup_failure_names_step_and_syscall",
            setup_failure_reported,
        ),
        Trial::test("runtime::wait_timeout_and_kill", wait_timeout_and_kill),
        Trial::test("runtime::payload_dies_with_runtime", || {
            dies_with_parent(&[])
        }),
        Trial::test(
            "runtime::payload_dies_with_runtime_after_uid_switch",
            || dies_with_parent(&[Layer::Uid, Layer::Caps]),
        ),
        Trial::test("runtime::pid_ns_dies_with_runtime", || {
            dies_with_parent(&[Layer::PidNs, Layer::UserNs])
        }),
    ]);
    for name in ["none", "namespaces", "docker-default", "strict", "rootless"] {
        trials.push(Trial::test(format!("profile::{name}_runs"), move || {
            profile_runs(name)
        }));
    }
    libtest_mimic::run(&args, trials).exit();
}
