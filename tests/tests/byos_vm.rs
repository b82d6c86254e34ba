//! Bring your own sandbox, with known answers, checked in the VM (issue 15):
//! - an OCI config.json with Docker's defaults blocks signal-outside and the cell names
//!   `linux.namespaces[pid]` (a root payload may signal a root victim by uid alone, so the pid
//!   namespace is the one thing in the way); the same file without that entry lets it through;
//! - bubblewrap with `--unshare-pid` blocks it, naming `--unshare-pid`; the same command line
//!   without it lets it through (bwrap run as root keeps every capability);
//! - podman's defaults block the mknod of a block device (block-device), and the cell names its
//!   device cgroup among what blocks it.
//!
//! One VM boots for the whole binary. The runtimes come from Debian's packages
//! (`scripts/install-deps --tests`: crun, bubblewrap, podman); a missing one fails its check
//! with the package to install rather than passing unseen.

use breakout_attacks::Verdict;
use breakout_harness::model::{ProbeResult, RunReport};
use breakout_harness::suite::host::{self, Quiet};
use breakout_harness::suite::plan::{Configuration, Job, RunPlan};
use breakout_tests::{binaries, listing_only, selected, vm_args};
use libtest_mimic::{Arguments, Failed, Trial};
use std::sync::Arc;

const SIGNAL: &str = "signal-outside";
const BLOCK_DEVICE: &str = "block-device";
const BWRAP_PID: &str = "cmd:bwrap --unshare-pid --ro-bind / / --proc /proc --dev /dev";
const BWRAP: &str = "cmd:bwrap --ro-bind / / --proc /proc --dev /dev";
const PODMAN: &str = "podman";

/// The config files and the names their specs get.
struct Specs {
    _dir: tempfile::TempDir,
    docker: String,
    docker_without_pid: String,
}

fn specs() -> Result<Specs, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let config = breakout_harness::adapters::crun::config(&[], None);
    let mut without_pid = config.clone();
    if let Some(list) = without_pid
        .pointer_mut("/linux/namespaces")
        .and_then(|n| n.as_array_mut())
    {
        list.retain(|n| n["type"] != "pid");
    }
    let write = |name: &str, value: &serde_json::Value| -> Result<String, String> {
        let path = dir.path().join(name);
        std::fs::write(&path, serde_json::to_vec_pretty(value).expect("json"))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(format!("oci:{}", path.display()))
    };
    Ok(Specs {
        docker: write("docker.json", &config)?,
        docker_without_pid: write("docker-without-pid.json", &without_pid)?,
        _dir: dir,
    })
}

type Check = fn(&RunReport, &Specs) -> Result<(), String>;

fn main() {
    let args = Arguments::from_args();
    let checks: Vec<(&str, Check)> = vec![
        (
            "oci_config_blocks_signal_outside_by_its_pid_namespace",
            oci_pid_namespace,
        ),
        (
            "oci_config_without_a_pid_namespace_lets_signal_outside_through",
            oci_without_pid_namespace,
        ),
        (
            "bwrap_blocks_signal_outside_by_unshare_pid",
            bwrap_unshare_pid,
        ),
        (
            "bwrap_without_unshare_pid_lets_signal_outside_through",
            bwrap_without_unshare_pid,
        ),
        (
            "podman_defaults_block_a_block_device_by_the_device_cgroup",
            podman_device_cgroup,
        ),
    ];
    let any = checks.iter().any(|(n, _)| selected(&args, n));
    let run: Arc<Result<(RunReport, Specs), String>> = Arc::new(if any && !listing_only(&args) {
        run_plan()
    } else {
        Err("not run".to_string())
    });
    let trials = checks
        .into_iter()
        .map(|(name, check)| {
            let run = Arc::clone(&run);
            Trial::test(name, move || {
                let (report, specs) = run
                    .as_ref()
                    .as_ref()
                    .map_err(|e| Failed::from(format!("the run failed: {e}")))?;
                check(report, specs).map_err(Failed::from)
            })
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}

fn run_plan() -> Result<(RunReport, Specs), String> {
    let specs = specs()?;
    let names = [
        specs.docker.as_str(),
        specs.docker_without_pid.as_str(),
        BWRAP_PID,
        BWRAP,
        PODMAN,
        "none",
    ];
    let configurations = names
        .iter()
        .map(|n| Configuration::named(n).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    let mut plan =
        RunPlan::new(configurations, &[SIGNAL.to_string()]).map_err(|e| e.to_string())?;
    // Only the cells the checks read: podman takes about 20 s a launch under TCG.
    plan.jobs.retain(|j| j.profile != PODMAN);
    for profile in [PODMAN, "none"] {
        plan.jobs.push(Job {
            probe: BLOCK_DEVICE.to_string(),
            profile: profile.to_string(),
        });
    }
    let binaries = binaries().map_err(|e| e.to_string())?;
    let report =
        host::execute(&plan, &vm_args()?, &binaries, &mut Quiet).map_err(|e| e.to_string())?;
    Ok((report, specs))
}

fn result<'a>(
    report: &'a RunReport,
    probe: &str,
    profile: &str,
) -> Result<&'a ProbeResult, String> {
    let r = report
        .results
        .iter()
        .find(|r| r.probe == probe && r.profile == profile)
        .ok_or_else(|| format!("no result for {probe} under {profile}"))?;
    if r.verdict == Verdict::Skipped {
        return Err(format!(
            "{probe} under {profile} was skipped: {} (scripts/install-deps --tests installs it)",
            r.reason
        ));
    }
    Ok(r)
}

/// The items a blocked cell names: (sufficient, necessary).
fn blocked_items(
    report: &RunReport,
    probe: &str,
    profile: &str,
) -> Result<(Vec<String>, Vec<String>), String> {
    let r = result(report, probe, profile)?;
    if r.verdict != Verdict::Blocked {
        return Err(format!(
            "{probe} under {profile}: {:?} ({}), expected blocked",
            r.verdict, r.reason
        ));
    }
    let a = r
        .attribution
        .as_ref()
        .ok_or_else(|| format!("{probe} under {profile}: blocked without attribution"))?;
    let items = a
        .items
        .as_ref()
        .ok_or_else(|| format!("{probe} under {profile}: no item attribution: {a:?}"))?;
    if !a.candidates_complete {
        return Err(format!(
            "{probe} under {profile}: the items do not explain the block: {items:?}"
        ));
    }
    Ok((items.sufficient.clone(), items.necessary.clone()))
}

fn escaped(report: &RunReport, probe: &str, profile: &str) -> Result<(), String> {
    let r = result(report, probe, profile)?;
    if r.verdict != Verdict::Escaped {
        return Err(format!(
            "{probe} under {profile}: {:?} ({}), expected an escape",
            r.verdict, r.reason
        ));
    }
    Ok(())
}

fn oci_pid_namespace(report: &RunReport, specs: &Specs) -> Result<(), String> {
    let (sufficient, necessary) = blocked_items(report, SIGNAL, &specs.docker)?;
    let pid = "linux.namespaces[pid]".to_string();
    if sufficient != [pid.clone()] || necessary != [pid] {
        return Err(format!(
            "expected linux.namespaces[pid] alone, sufficient and necessary; got sufficient {sufficient:?}, necessary {necessary:?}"
        ));
    }
    Ok(())
}

fn oci_without_pid_namespace(report: &RunReport, specs: &Specs) -> Result<(), String> {
    escaped(report, SIGNAL, &specs.docker_without_pid)
}

fn bwrap_unshare_pid(report: &RunReport, _: &Specs) -> Result<(), String> {
    let (sufficient, necessary) = blocked_items(report, SIGNAL, BWRAP_PID)?;
    if sufficient != ["--unshare-pid"] || necessary != ["--unshare-pid"] {
        return Err(format!(
            "expected --unshare-pid alone; got sufficient {sufficient:?}, necessary {necessary:?}"
        ));
    }
    Ok(())
}

fn bwrap_without_unshare_pid(report: &RunReport, _: &Specs) -> Result<(), String> {
    escaped(report, SIGNAL, BWRAP)
}

fn podman_device_cgroup(report: &RunReport, _: &Specs) -> Result<(), String> {
    escaped(report, BLOCK_DEVICE, "none")?;
    let (sufficient, _) = blocked_items(report, BLOCK_DEVICE, PODMAN)?;
    if !sufficient
        .iter()
        .any(|s| s.starts_with("podman default: device cgroup"))
    {
        return Err(format!(
            "the device cgroup should block the block device on its own; sufficient: {sufficient:?}"
        ));
    }
    Ok(())
}
