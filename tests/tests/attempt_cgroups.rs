//! Every attempt runs in a cgroup of its own, killed once it is judged: a process the payload
//! daemonizes is gone before the next attempt starts, whether the launch had a pid namespace or
//! a cgroup leaf of its own or not; the runtime's leaf (cgroup-limits, fs-hardening's device
//! policy) nests under the attempt's cgroup; a resource probe keeps its safety cgroup.
//!
//! Drives the orchestrator's parts (the world, the driver, our runtime behind `RuntimeLauncher`)
//! directly, with a shell script standing in for `breakout-probe`. Needs root and cgroup v2: the
//! VM, not this host (cgroup v1). `scripts/test` runs this binary in the guest with
//! `breakout vm-run` as the cargo runner. Without them every trial FAILS with the reason, unless
//! BREAKOUT_SKIP_CGROUP_TESTS=1 is set: then they are reported as ignored (never as passed).

use breakout_attacks::world::{World, ATTEMPT_CGROUP, CGROUP2_ROOT, SAFETY_CGROUP};
use breakout_attacks::{
    run_probe, Arrangement, InsideReport, Judgement, Layer, Limits, Probe, ProbeClass, ProbeError,
    ProbeMeta, RunObservation,
};
use breakout_harness::suite::launcher::{prepare, RuntimeLauncher};
use breakout_runtime::SandboxConfig;
use libtest_mimic::{Arguments, Failed, Trial};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

type R = Result<(), Failed>;
type Test = fn() -> R;

/// The stand-in for `breakout-probe`: `$1` is the probe id, `$2` a marker. Every mode leaves a
/// daemon whose argv[0] is the marker (its output closed, as a daemon's is), and prints the
/// payload's cgroup on stderr.
const PROBE_SCRIPT: &str = r#"#!/bin/sh
sh -c 'while :; do sleep 1; done' "$2" </dev/null >/dev/null 2>&1 &
echo "daemon $!" >&2
cat /proc/self/cgroup >&2
"#;

/// A probe whose inside half is [`PROBE_SCRIPT`]; `safety` arranges a safety cgroup as the
/// resource probes do.
struct LeaveDaemon {
    marker: String,
    safety: bool,
}

static META: ProbeMeta = ProbeMeta {
    id: "leave-daemon",
    title: "leave a daemon behind",
    technique: "test probe",
    oracle: "none",
    layers: &[Layer::Uid],
    references: &[],
    class: ProbeClass::Plain,
};

impl Probe for LeaveDaemon {
    fn meta(&self) -> &'static ProbeMeta {
        &META
    }

    fn arrange(&self, world: &World, _limits: &Limits) -> Result<Arrangement, ProbeError> {
        let args = vec![self.marker.clone()];
        if !self.safety {
            return Ok(Arrangement::new(args, ()));
        }
        let cgroup = world
            .safety_cgroup("leave-daemon", Some(256), None)
            .map_err(ProbeError::world(META.id))?;
        let path = cgroup.path().to_path_buf();
        Ok(Arrangement::new(args, cgroup).with_cgroup(path))
    }

    fn attempt(&self, _args: &[String]) -> InsideReport {
        unreachable!("the inside half is a shell script")
    }

    fn judge(&self, _world: &World, _arrangement: Arrangement, _run: &RunObservation) -> Judgement {
        Judgement::inconclusive("test probe: nothing to judge")
    }
}

/// Why this cannot run here, if it cannot.
fn unavailable() -> Option<String> {
    if fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        != Some("0")
    {
        return Some("not root".into());
    }
    let cgroup2 = fs::read_to_string("/proc/self/mounts")
        .unwrap_or_default()
        .lines()
        .any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.get(1) == Some(&CGROUP2_ROOT) && f.get(2) == Some(&"cgroup2")
        });
    if !cgroup2 {
        return Some(format!(
            "{CGROUP2_ROOT} is not cgroup v2 (cgroup v1 or hybrid host)"
        ));
    }
    None
}

/// A world in a fresh directory, with attempt cgroups, whose probe binary is [`PROBE_SCRIPT`].
fn world(name: &str) -> Result<(PathBuf, World), String> {
    let dir = std::env::temp_dir().join(format!(
        "breakout-attempt-cgroups-{}-{name}",
        std::process::id()
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).map_err(|e| e.to_string())?;
    let script = dir.join("probe");
    fs::write(&script, PROBE_SCRIPT).map_err(|e| e.to_string())?;
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).map_err(|e| e.to_string())?;
    let world = World::build(&dir.join("world"), &script)
        .and_then(|w| w.with_attempt_cgroups(Path::new(CGROUP2_ROOT)))
        .map_err(|e| format!("building the world: {e}"))?;
    Ok((dir, world))
}

/// Processes whose argv holds `marker` as a whole argument (zombies have no argv).
fn holding(marker: &str) -> Vec<String> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter(|e| {
            fs::read(e.path().join("cmdline"))
                .unwrap_or_default()
                .split(|b| *b == 0)
                .any(|arg| arg == marker.as_bytes())
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// The cgroups left under `<root>/<parent>` (empty when there are none).
fn children(parent: &str) -> Vec<String> {
    fs::read_dir(Path::new(CGROUP2_ROOT).join(parent))
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// One attempt of [`LeaveDaemon`] under `config`; checks that its daemon is gone once the
/// driver returns (before any next attempt) and returns the payload's cgroup line.
fn attempt(test: &str, config: SandboxConfig, safety: bool) -> Result<String, Failed> {
    let (dir, world) = world(test)?;
    let mut config = config;
    if config.enabled(Layer::MountNs) {
        config.mount.binds.push(dir.clone());
    }
    let config = prepare(config)?;
    let marker = format!("breakout-leftover-{test}-{}", std::process::id());
    let probe = LeaveDaemon {
        marker: marker.clone(),
        safety,
    };
    let launcher = RuntimeLauncher::new(config);
    let run = run_probe(
        &probe,
        &world,
        &Limits::default(),
        &launcher,
        Duration::from_secs(20),
    );
    let left = holding(&marker);
    // Whatever the verdict, clean up before judging the test.
    for pid in &left {
        let _ = std::process::Command::new("kill")
            .args(["-9", pid])
            .status();
    }
    let _ = fs::remove_dir_all(&dir);
    let stderr = run.stderr_tail.clone();
    if !stderr.contains("daemon ") {
        return Err(format!(
            "the payload did not start its daemon: {} / stderr {stderr:?}",
            run.judgement.reason
        )
        .into());
    }
    if !left.is_empty() {
        return Err(format!(
            "the attempt's daemon (pid {}) is still alive after the attempt ended (payload said {stderr:?})",
            left.join(" ")
        )
        .into());
    }
    if run.judgement.reason.contains("outlived") {
        return Err(format!("the kill was not clean: {}", run.judgement.reason).into());
    }
    let line = stderr
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .ok_or_else(|| format!("no cgroup v2 line in the payload's stderr {stderr:?}"))?;
    Ok(line.to_string())
}

fn none() -> SandboxConfig {
    SandboxConfig::builtin("none").expect("builtin none")
}

fn expect_attempt_cgroup(line: &str, leaf: bool) -> R {
    let prefix = format!("/{ATTEMPT_CGROUP}/attempt-");
    if !line.starts_with(&prefix) {
        return Err(format!("the payload ran in {line}, not under {prefix}").into());
    }
    if leaf != line.contains("/sandbox-") {
        return Err(format!(
            "the payload ran in {line}: {} the runtime's leaf",
            if leaf { "not in" } else { "in" }
        )
        .into());
    }
    let left = children(ATTEMPT_CGROUP);
    if !left.is_empty() {
        return Err(format!("cgroups left under {ATTEMPT_CGROUP}: {left:?}").into());
    }
    Ok(())
}

/// `none`: no pid namespace, no leaf; only the attempt's cgroup can end the daemon.
fn daemon_without_layers_is_killed() -> R {
    let line = attempt("none", none(), false)?;
    expect_attempt_cgroup(&line, false)
}

/// The attacker's case: "uid alone" runs the payload as uid 101000 in the guest's pid namespace.
fn daemon_under_uid_alone_is_killed() -> R {
    let mut config = none();
    config.set_enabled(Layer::Uid, true);
    let line = attempt("uid", config, false)?;
    expect_attempt_cgroup(&line, false)
}

/// cgroup-limits' leaf, with strict's limits, is made under the attempt's cgroup.
fn limits_leaf_nests_under_the_attempt() -> R {
    let strict = SandboxConfig::builtin("strict").expect("builtin strict");
    let mut config = none();
    config.set_enabled(Layer::CgroupLimits, true);
    config.cgroup = strict.cgroup.clone();
    let line = attempt("limits", config, false)?;
    expect_attempt_cgroup(&line, true)
}

/// fs-hardening's device-policy leaf (cgroup-limits off) is made under the attempt's cgroup.
fn device_leaf_nests_under_the_attempt() -> R {
    let mut config = none();
    for layer in [Layer::MountNs, Layer::FsHardening] {
        config.set_enabled(layer, true);
    }
    let line = attempt("devices", config, false)?;
    expect_attempt_cgroup(&line, true)
}

/// A resource probe's safety cgroup is its attempt's cgroup: the payload runs there, no attempt
/// cgroup is made, and its daemon goes with the safety cgroup.
fn safety_cgroup_stays_the_resource_probes() -> R {
    let before = children(ATTEMPT_CGROUP);
    let line = attempt("safety", none(), true)?;
    if !line.starts_with(&format!("/{SAFETY_CGROUP}/leave-daemon-")) {
        return Err(format!("the payload ran in {line}, not in its safety cgroup").into());
    }
    let after = children(ATTEMPT_CGROUP);
    if after != before {
        return Err(format!("attempt cgroups {before:?} became {after:?}").into());
    }
    Ok(())
}

fn main() {
    let args = Arguments::from_args();
    let missing = unavailable();
    let skip = std::env::var("BREAKOUT_SKIP_CGROUP_TESTS").as_deref() == Ok("1");
    if let (Some(why), true) = (&missing, skip) {
        eprintln!("attempt cgroup tests did NOT run: {why} (BREAKOUT_SKIP_CGROUP_TESTS=1); run them in the VM");
    }
    let tests: [(&str, Test); 5] = [
        (
            "attempt-cgroup::daemon_without_layers_is_killed",
            daemon_without_layers_is_killed,
        ),
        (
            "attempt-cgroup::daemon_under_uid_alone_is_killed",
            daemon_under_uid_alone_is_killed,
        ),
        (
            "attempt-cgroup::limits_leaf_nests_under_the_attempt",
            limits_leaf_nests_under_the_attempt,
        ),
        (
            "attempt-cgroup::device_leaf_nests_under_the_attempt",
            device_leaf_nests_under_the_attempt,
        ),
        (
            "attempt-cgroup::safety_cgroup_stays_the_resource_probes",
            safety_cgroup_stays_the_resource_probes,
        ),
    ];
    let trials = tests
        .into_iter()
        .map(|(name, f)| {
            let ignored = skip && missing.is_some();
            let missing = missing.clone();
            Trial::test(name, move || match missing {
                Some(why) => Err(format!("needs root and cgroup v2: {why}. Run in the VM or set BREAKOUT_SKIP_CGROUP_TESTS=1 to report it as ignored").into()),
                None => f(),
            })
            .with_ignored_flag(ignored)
        })
        .collect();
    // One at a time: the trials count the cgroups under the shared parents.
    let mut args = args;
    args.test_threads = Some(1);
    libtest_mimic::run(&args, trials).exit();
}
