//! cgroup-limits on cgroup v2: memory.max (OOM kill in the evidence), pids.max (refused forks),
//! cpu.max (throttling), the payload inside its leaf, the leaf killed and removed afterwards,
//! and the caller's outer cgroup.
//!
//! These need root and cgroup v2 with the memory, pids and cpu controllers at /sys/fs/cgroup:
//! the VM, not this host (cgroup v1). Without them every trial FAILS with the reason, unless
//! BREAKOUT_SKIP_CGROUP_TESTS=1 is set: then they are reported as ignored (never as passed).
//! CI runs this same binary in the VM with `breakout vm-run` as the cargo runner.

mod common;

use breakout_runtime::{ExitKind, Layer, Payload, SandboxConfig};
use common::*;
use libtest_mimic::{Arguments, Failed, Trial};
use std::path::PathBuf;

type R = Result<(), Failed>;
type Test = fn() -> R;

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+).into());
        }
    };
}

const ROOT: &str = "/sys/fs/cgroup";

/// Why cgroup v2 limits cannot be tested here, if they cannot.
fn unavailable() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("not root".into());
    }
    match nix::sys::statfs::statfs(ROOT) {
        Ok(st) if st.filesystem_type().0 == 0x6367_7270 => {}
        Ok(_) => {
            return Some(format!(
                "{ROOT} is not cgroup v2 (cgroup v1 or hybrid host)"
            ))
        }
        Err(e) => return Some(format!("statfs {ROOT}: {e}")),
    }
    let have =
        std::fs::read_to_string(format!("{ROOT}/cgroup.subtree_control")).unwrap_or_default();
    let missing: Vec<&str> = ["memory", "pids", "cpu"]
        .into_iter()
        .filter(|c| !have.split_whitespace().any(|h| h == *c))
        .collect();
    if !missing.is_empty() {
        return Some(format!(
            "{ROOT}/cgroup.subtree_control lacks {missing:?} (has `{}`)",
            have.trim()
        ));
    }
    None
}

fn limits_config() -> SandboxConfig {
    let mut cfg = config_with(&[Layer::CgroupLimits]);
    cfg.cgroup.parent = PathBuf::from(format!("{ROOT}/breakout-test"));
    cfg
}

fn memory_max() -> R {
    let mut cfg = limits_config();
    cfg.cgroup.memory_max = Some(breakout_runtime::config::Size(32 << 20));
    ensure!(
        cfg.memory_max() == Some(32 << 20),
        "accessor {:?}",
        cfg.memory_max()
    );
    let r = run(&cfg, probe(&["alloc", "128"]))?;
    let ev = r.outcome.cgroup.clone().ok_or("no cgroup evidence")?;
    ensure!(
        matches!(r.outcome.status, ExitKind::Signaled { signal: 9, .. }),
        "payload not OOM-killed: {:?} stdout {:?}",
        r.outcome.status,
        r.stdout
    );
    ensure!(
        ev.oom_kill >= 1,
        "memory.events oom_kill = {} ({ev:?})",
        ev.oom_kill
    );
    ensure!(
        ev.memory_peak.is_none_or(|p| p <= 32 << 20),
        "memory.peak {:?} above memory.max",
        ev.memory_peak
    );
    // Control: within the limit it runs to the end.
    let ok = run(&cfg, probe(&["alloc", "4"]))?;
    ensure!(
        ok.outcome.status.code() == 0 && ok.stdout.contains("allocated 4 MiB"),
        "{:?} {}",
        ok.outcome,
        ok.stdout
    );
    Ok(())
}

fn pids_max() -> R {
    let mut cfg = limits_config();
    cfg.cgroup.pids_max = Some(8);
    ensure!(cfg.pids_max() == Some(8), "accessor");
    let r = run(&cfg, probe(&["fork", "20"]))?;
    ensure!(r.outcome.status.code() == 0, "{:?} {}", r.outcome, r.stderr);
    let out = r.stdout.trim().to_string();
    let ev = r.outcome.cgroup.ok_or("no cgroup evidence")?;
    let forked: u32 = out
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .ok_or(format!("probe said {out:?}"))?;
    ensure!(
        forked <= 7,
        "{forked} forks succeeded under pids.max 8 (the probe itself counts)"
    );
    ensure!(
        ev.pids_max_hits >= 1,
        "pids.events max = {} ({ev:?})",
        ev.pids_max_hits
    );
    Ok(())
}

fn cpu_max() -> R {
    let mut cfg = limits_config();
    cfg.cgroup.cpu_max = Some("10000 100000".into());
    let r = run(&cfg, probe(&["spin", "600"]))?;
    ensure!(r.outcome.status.code() == 0, "{:?}", r.outcome);
    let ev = r.outcome.cgroup.ok_or("no cgroup evidence")?;
    ensure!(
        ev.cpu_nr_throttled >= 1 && ev.cpu_throttled_usec > 0,
        "not throttled at 10% cpu: {ev:?}"
    );
    Ok(())
}

fn payload_in_leaf_and_leaf_removed() -> R {
    let cfg = limits_config();
    let out = probe_out(&cfg, &["cgroup"])?;
    ensure!(
        out.contains("/breakout-test/sandbox-"),
        "payload not in its leaf: {out}"
    );
    // Other trials run in parallel: check this sandbox's own leaf.
    let leaf = leaf_of(&out)?;
    ensure!(!leaf.exists(), "leaf {} left behind", leaf.display());
    Ok(())
}

fn leftovers_killed() -> R {
    let cfg = limits_config();
    let r = run(&cfg, probe(&["orphan"]))?;
    ensure!(r.outcome.status.code() == 0, "{:?}", r.outcome);
    // rmdir of a populated leaf fails: the leaf being gone proves the orphan was killed.
    let leaf = leaf_of(&r.stdout)?;
    ensure!(
        !leaf.exists(),
        "leaf {} with the orphan not removed",
        leaf.display()
    );
    Ok(())
}

/// The leaf named by a "0::/path" line of /proc/self/cgroup in `out`.
fn leaf_of(out: &str) -> Result<PathBuf, String> {
    let rel = out
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .ok_or(format!("no cgroup v2 line in {out:?}"))?;
    Ok(PathBuf::from(format!("{ROOT}{rel}")))
}

fn outer_cgroup() -> R {
    let outer = PathBuf::from(format!("{ROOT}/breakout-test-outer"));
    let _ = std::fs::create_dir(&outer);
    let cfg = config_with(&[]);
    let o = outer.clone();
    let r = run_with(&cfg, probe(&["cgroup"]), move |p| p.outer_cgroup = Some(o))?;
    let ev_present = r.outcome.cgroup.is_some();
    let _ = std::fs::remove_dir(&outer);
    ensure!(
        r.stdout.trim().ends_with("/breakout-test-outer"),
        "payload not in the outer cgroup: {}",
        r.stdout
    );
    ensure!(ev_present, "no evidence read from the outer cgroup");
    Ok(())
}

fn kill_takes_the_cgroup() -> R {
    let cfg = limits_config();
    let mut sb = breakout_runtime::spawn(&cfg, Payload::new(probe(&["sleep", "60"])))?;
    let dir = sb.cgroup_dir().ok_or("no cgroup")?.to_path_buf();
    sb.kill();
    let o = sb.wait()?;
    ensure!(
        matches!(o.status, ExitKind::Signaled { signal: 9, .. }),
        "{:?}",
        o.status
    );
    ensure!(!dir.exists(), "leaf {} still exists", dir.display());
    Ok(())
}

/// Why fs-hardening's device policy cannot be tested here, if it cannot: it needs root and any
/// cgroup v2 hierarchy (the unified one of a hybrid host will do: a device program needs no
/// controller).
fn devices_unavailable() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("not root".into());
    }
    let v2 =
        |p: &str| nix::sys::statfs::statfs(p).is_ok_and(|st| st.filesystem_type().0 == 0x6367_7270);
    if v2(ROOT) || v2("/sys/fs/cgroup/unified") {
        None
    } else {
        Some(format!(
            "no cgroup v2 hierarchy at {ROOT} or {ROOT}/unified"
        ))
    }
}

/// The payload reopens its stdin, a device of the host, through /proc/self/fd/0: the path leads
/// to the host's /dev (not nodev), so only the device policy stands between it and the device.
fn reopen_stdin(cfg: &SandboxConfig, device: &str) -> Result<String, Failed> {
    let f = std::fs::File::open(device).map_err(|e| format!("open {device}: {e}"))?;
    let r = run_with(cfg, probe(&["open", "/proc/self/fd/0"]), move |p| {
        p.stdin = Some(f.into())
    })?;
    ensure!(r.outcome.status.code() == 0, "{:?} {}", r.outcome, r.stderr);
    Ok(r.stdout.trim().to_string())
}

/// fs-hardening's device policy (Docker's list, a BPF device program on the sandbox's leaf):
/// /dev/kmsg (1:11) is refused with EPERM, /dev/null and /dev/full open; without the layer the
/// same reopen works. Making nodes stays allowed ('c *:* m', 'b *:* m'); opening them in the
/// nodev /dev is refused with EACCES.
fn device_policy() -> R {
    let cfg = config_with(&[Layer::MountNs, Layer::FsHardening]);
    let got = reopen_stdin(&cfg, "/dev/kmsg")?;
    ensure!(
        got == format!("errno {}", libc::EPERM),
        "/dev/kmsg (c 1:11) reopened under the device policy: {got}, want EPERM"
    );
    for allowed in ["/dev/null", "/dev/full"] {
        let got = reopen_stdin(&cfg, allowed)?;
        ensure!(
            got == "opened",
            "{allowed} refused by the device policy: {got}"
        );
    }
    let control = reopen_stdin(&config_with(&[Layer::MountNs]), "/dev/kmsg")?;
    ensure!(
        control == "opened",
        "control: /dev/kmsg not reopened without fs-hardening: {control}"
    );
    for node in ["/dev/breakout-kvm:c:10:232", "/dev/breakout-disk:b:7:0"] {
        let got = probe_out(&cfg, &["mknod-open", node])?;
        ensure!(
            got == format!("mknod 0 open {}", libc::EACCES),
            "{node}: {got}, want mknod 0 open EACCES"
        );
    }
    Ok(())
}

/// With cgroup-limits on, the device policy sits on the same leaf as the limits.
fn device_policy_with_limits() -> R {
    let mut cfg = limits_config();
    cfg.set_enabled(Layer::MountNs, true);
    cfg.set_enabled(Layer::FsHardening, true);
    cfg.cgroup.pids_max = Some(64);
    let got = reopen_stdin(&cfg, "/dev/kmsg")?;
    ensure!(
        got == format!("errno {}", libc::EPERM),
        "/dev/kmsg reopened under limits + device policy: {got}, want EPERM"
    );
    Ok(())
}

fn main() {
    let args = std::env::args().collect::<Vec<_>>();
    if args.get(1).map(String::as_str) == Some("__probe") {
        probe_main(&args[2..]);
    }
    let args = Arguments::from_args();
    let missing = unavailable();
    let skip = std::env::var("BREAKOUT_SKIP_CGROUP_TESTS").as_deref() == Ok("1");
    if let (Some(why), true) = (&missing, skip) {
        eprintln!("cgroup-limits tests did NOT run: {why} (BREAKOUT_SKIP_CGROUP_TESTS=1); run them in the VM");
    }
    let tests: [(&str, Test); 7] = [
        ("cgroup-limits::memory_max_oom_kill_in_evidence", memory_max),
        ("cgroup-limits::pids_max_refuses_forks", pids_max),
        ("cgroup-limits::cpu_max_throttles", cpu_max),
        (
            "cgroup-limits::payload_in_leaf_leaf_removed",
            payload_in_leaf_and_leaf_removed,
        ),
        ("cgroup-limits::leftover_processes_killed", leftovers_killed),
        (
            "cgroup-limits::kill_takes_the_cgroup",
            kill_takes_the_cgroup,
        ),
        ("outer-cgroup::payload_joins_caller_cgroup", outer_cgroup),
    ];
    let devices_missing = devices_unavailable();
    let device_tests: [(&str, Test); 1] =
        [("fs-hardening::device_policy_docker_list", device_policy)];
    let device_trials = device_tests.into_iter().map(|(name, f)| {
        let ignored = skip && devices_missing.is_some();
        let missing = devices_missing.clone();
        Trial::test(name, move || match missing {
            Some(why) => Err(format!("the device policy needs root and a cgroup v2 hierarchy: {why}. Run in the VM or set BREAKOUT_SKIP_CGROUP_TESTS=1 to report it as ignored").into()),
            None => f(),
        })
        .with_ignored_flag(ignored)
    });
    let tests: Vec<(&str, Test)> = tests
        .into_iter()
        .chain([(
            "cgroup-limits::device_policy_on_the_limits_leaf",
            device_policy_with_limits as Test,
        )])
        .collect();
    let trials = tests
        .into_iter()
        .map(|(name, f)| {
            let ignored = skip && missing.is_some();
            let missing = missing.clone();
            Trial::test(name, move || match missing {
                Some(why) => Err(format!("cgroup v2 with memory, pids and cpu controllers is required: {why}. Run in the VM (breakout vm-run as cargo runner) or set BREAKOUT_SKIP_CGROUP_TESTS=1 to report these as ignored").into()),
                None => f(),
            })
            .with_ignored_flag(ignored)
        })
        .chain(device_trials)
        .collect();
    libtest_mimic::run(&args, trials).exit();
}
