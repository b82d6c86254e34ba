//! Root tests for attacks on the runtime's configuration rather than from the payload: a profile
//! or a caller that quietly turns a layer into a no-op. Each test states the attack, runs it
//! against the real runtime and asserts on what the payload could see.
//!
//! Needs root (CI runs as root). The payload is this test binary re-executed (see common/mod.rs).

mod common;

use breakout_runtime::Layer;
use common::*;
use libtest_mimic::{Arguments, Failed, Trial};
use std::path::Path;

type R = Result<(), Failed>;

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+).into());
        }
    };
}

/// A seccomp profile (our TOML format) that allows everything but answers `names` with ENOSYS,
/// as an old kernel would, or a profile written for one.
fn enosys_profile(dir: &Path, names: &[&str]) -> Result<String, Failed> {
    let list = names
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let path = dir.join("enosys.toml");
    std::fs::write(
        &path,
        format!(
            "default_action = \"allow\"\n[[rule]]\naction = \"errno\"\nerrno = \"ENOSYS\"\nnames = [{list}]\n"
        ),
    )?;
    Ok(path.display().to_string())
}

/// Issue 14 item 5: close_range answers ENOSYS (old kernel, or a profile that says so) and the
/// rlimits layer lowered RLIMIT_NOFILE to 256 before fd-hygiene ran. A fallback that closes "up
/// to the descriptor limit" stops at 1024, so a descriptor the caller left open at 2000 reached
/// the payload.
fn fd_above_lowered_limit_closed_when_close_range_is_enosys() -> R {
    require_root()?;
    const HIGH: i32 = 2000;
    let (soft, hard) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)?;
    if soft <= HIGH as u64 {
        nix::sys::resource::setrlimit(
            nix::sys::resource::Resource::RLIMIT_NOFILE,
            hard.max(HIGH as u64 + 1),
            hard.max(HIGH as u64 + 1),
        )?;
    }
    // SAFETY: plain open and dup2 of descriptors this test owns; closed below. No O_CLOEXEC on
    // the duplicate: the caller "forgot" it, which is what fd-hygiene is for.
    let fd = unsafe {
        let f = libc::open(c"/etc/hostname".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        let high = libc::dup2(f, HIGH);
        libc::close(f);
        high
    };
    ensure!(fd == HIGH, "open/dup2 to {HIGH} failed");
    let dir = tempfile::tempdir()?;
    let res = (|| -> Result<(String, String), Failed> {
        let mut cfg = config_with(&[Layer::Seccomp, Layer::Rlimits, Layer::FdHygiene]);
        cfg.set_seccomp_profile(&enosys_profile(dir.path(), &["close_range"])?)?;
        cfg.rlimits.insert("nofile".into(), 256);
        let with = probe_out(&cfg, &["fds"])?;
        // Control: the same without fd-hygiene shows the descriptor (the test plants it right).
        cfg.set_enabled(Layer::FdHygiene, false);
        let without = probe_out(&cfg, &["fds"])?;
        Ok((with, without))
    })();
    // SAFETY: closing the descriptor opened above.
    unsafe { libc::close(fd) };
    let (with, without) = res?;
    let has = |list: &str| list.split_whitespace().any(|f| f == HIGH.to_string());
    ensure!(
        has(&without),
        "control: fd {HIGH} not visible without fd-hygiene: {without}"
    );
    ensure!(
        !has(&with),
        "fd {HIGH} reached the payload with fd-hygiene on, close_range ENOSYS and nofile 256: {with}"
    );
    let extra: Vec<&str> = with
        .split_whitespace()
        .filter(|f| f.parse::<i32>().is_ok_and(|n| n > 3))
        .collect();
    ensure!(
        extra.is_empty(),
        "more than stdio reached the payload: {with}"
    );
    Ok(())
}

/// Issue 14 item 6: a typo in a deny rule of a Docker/OCI profile (`ptarce`) was skipped, so the
/// profile loaded and the call it meant to deny went through. It must be refused, naming the
/// file, the rule and the name; the payload never runs under the weakened filter.
fn oci_typo_in_deny_rule_refused() -> R {
    require_root()?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("typo.json");
    std::fs::write(
        &path,
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mount", "ptarce"], "action": "SCMP_ACT_ERRNO"}]}"#,
    )?;
    let mut cfg = config_with(&[Layer::Seccomp]);
    match cfg.set_seccomp_profile(path.to_str().ok_or("path")?) {
        Err(e) => {
            let e = e.to_string();
            ensure!(
                e.starts_with(&format!("{}: ", path.display()))
                    && e.contains("syscalls[0].names[1]")
                    && e.contains("`ptarce`"),
                "the error does not name file, rule and name: {e}"
            );
            Ok(())
        }
        Ok(()) => {
            // What the typo costs: the call it meant to deny reaches the kernel.
            let got = probe_out(&cfg, &["syscall", "ptrace"])?;
            Err(format!(
                "a deny rule naming `ptarce` loaded without a word; the payload's ptrace gave {got} (not the rule's EPERM)"
            )
            .into())
        }
    }
}

/// A syscall through another ABI of the same CPU: i386 `int 0x80` or the x32 numbers (bit 30).
/// A filter written for x86_64 numbers must not be bypassed through them.
#[cfg(target_arch = "x86_64")]
fn foreign_abi_main(args: &[String]) -> ! {
    let call = |nr: i64, a: i64| -> i64 {
        let ret: i64;
        // SAFETY: a raw system call with integer arguments only (no memory is passed); rbx is
        // reserved by the compiler, so the first argument goes through a scratch register.
        unsafe {
            std::arch::asm!(
                "xchg rbx, {a}",
                "int 0x80",
                "xchg rbx, {a}",
                a = inout(reg) a => _,
                inlateout("rax") nr => ret,
                in("rcx") 0i64,
                in("rdx") 0i64,
            );
        }
        ret
    };
    let r = match args.first().map(String::as_str) {
        // i386: unshare is 310, getpid 20.
        Some("int80-unshare") => call(310, libc::CLONE_NEWUSER as i64),
        Some("int80-getpid") => call(20, 0),
        // x32: unshare is 272 | 0x40000000.
        Some("x32-unshare") => {
            // SAFETY: a raw system call with an integer argument.
            let r = unsafe { libc::syscall(272 | 0x4000_0000, libc::CLONE_NEWUSER) };
            if r < 0 {
                -(nix::errno::Errno::last() as i64)
            } else {
                r
            }
        }
        _ => -9999,
    };
    println!("returned {r}");
    std::process::exit(0)
}

/// strict's allowlist names x86_64 calls only: an unshare through int 0x80 or x32 is killed
/// (libseccomp's bad-architecture action), and the kill names the call in its ABI.
#[cfg(target_arch = "x86_64")]
fn foreign_abi_killed(mode: &'static str, name: &'static str, arch: &'static str) -> R {
    require_root()?;
    let mut cfg = breakout_runtime::SandboxConfig::builtin("strict")?;
    cfg.set_enabled(Layer::CgroupLimits, false);
    let argv = vec![
        self_exe().to_string_lossy().into_owned(),
        "__abi".to_string(),
        mode.to_string(),
    ];
    let r = run(&cfg, argv.clone())?;
    ensure!(
        matches!(r.outcome.status, breakout_runtime::ExitKind::Signaled { signal, .. } if signal == libc::SIGSYS),
        "{mode} under strict: {:?}, stdout {:?}",
        r.outcome.status,
        r.stdout
    );
    let k = r
        .outcome
        .seccomp_kill
        .ok_or("no seccomp_kill in the outcome")?;
    ensure!(
        k.syscall.as_deref() == Some(name) && k.arch == arch,
        "{mode}: kill named {k:?}, want {name} on {arch}"
    );
    // Control: without the filter the call returns to the payload.
    let r = run(&config_with(&[]), argv)?;
    ensure!(
        r.outcome.status.code() == 0 && r.stdout.starts_with("returned "),
        "control {mode}: {:?} {:?}",
        r.outcome.status,
        r.stdout
    );
    Ok(())
}

fn main() {
    let args = std::env::args().collect::<Vec<_>>();
    if args.get(1).map(String::as_str) == Some("__probe") {
        probe_main(&args[2..]);
    }
    #[cfg(target_arch = "x86_64")]
    if args.get(1).map(String::as_str) == Some("__abi") {
        foreign_abi_main(&args[2..]);
    }
    let mut args = Arguments::from_args();
    // The fd test plants descriptors in this process; keep trials from seeing each other's.
    args.test_threads = Some(1);
    #[allow(unused_mut)]
    let mut trials = vec![
        Trial::test(
            "fd-hygiene::fd_above_lowered_limit_closed_when_close_range_is_enosys",
            fd_above_lowered_limit_closed_when_close_range_is_enosys,
        ),
        Trial::test(
            "seccomp::oci_typo_in_deny_rule_refused",
            oci_typo_in_deny_rule_refused,
        ),
    ];
    #[cfg(target_arch = "x86_64")]
    trials.extend([
        Trial::test("seccomp::strict_kills_int80_unshare", || {
            foreign_abi_killed("int80-unshare", "unshare", "X86")
        }),
        Trial::test("seccomp::strict_kills_x32_unshare", || {
            foreign_abi_killed("x32-unshare", "unshare", "X32")
        }),
    ]);
    libtest_mimic::run(&args, trials).exit();
}
