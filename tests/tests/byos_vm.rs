//! Bring your own sandbox with known answers, in the VM (issue 15): podman's defaults block the
//! mknod of a block device (block-device), and the cell names podman's device cgroup among what
//! blocks it on its own; the positive control lets it through.
//!
//! The known answers for an OCI config.json (its pid namespace) and a bwrap command line
//! (`--unshare-pid`) are checked end to end through `breakout compare` in
//! harness/tests/compare_vm.rs.
//!
//! One VM boots for the whole binary. podman comes from Debian's package, with its
//! configuration (`scripts/install-deps --tests`); when it is missing the check fails naming
//! the package rather than passing unseen.

use breakout_attacks::Verdict;
use breakout_harness::model::{ProbeResult, RunReport};
use breakout_harness::suite::host::{self, Quiet};
use breakout_harness::suite::plan::{Configuration, RunPlan};
use breakout_tests::{binaries, checks_on_one_run, vm_args, ReportCheck};

const BLOCK_DEVICE: &str = "block-device";
const PODMAN: &str = "podman";

fn main() {
    let checks: Vec<(&str, ReportCheck)> = vec![(
        "podman_defaults_block_a_block_device_by_the_device_cgroup",
        podman_device_cgroup,
    )];
    checks_on_one_run(checks, run_plan)
}

fn run_plan() -> Result<RunReport, String> {
    let configurations = [PODMAN, "none"]
        .iter()
        .map(|n| Configuration::named(n).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    let plan =
        RunPlan::new(configurations, &[BLOCK_DEVICE.to_string()]).map_err(|e| e.to_string())?;
    let binaries = binaries().map_err(|e| e.to_string())?;
    host::execute(&plan, &vm_args()?, &binaries, &mut Quiet).map_err(|e| e.to_string())
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

fn podman_device_cgroup(report: &RunReport) -> Result<(), String> {
    let control = result(report, BLOCK_DEVICE, "none")?;
    if control.verdict != Verdict::Escaped {
        return Err(format!(
            "positive control: {BLOCK_DEVICE} under none: {:?} ({})",
            control.verdict, control.reason
        ));
    }
    let r = result(report, BLOCK_DEVICE, PODMAN)?;
    if r.verdict != Verdict::Blocked {
        return Err(format!(
            "{BLOCK_DEVICE} under podman: {:?} ({}), expected blocked",
            r.verdict, r.reason
        ));
    }
    let a = r
        .attribution
        .as_ref()
        .ok_or("blocked without attribution")?;
    let items = a.items.as_ref().ok_or("no item attribution")?;
    if !a.candidates_complete {
        return Err(format!("the items do not explain the block: {items:?}"));
    }
    if !items
        .sufficient
        .iter()
        .any(|s| s == "podman default: device cgroup")
    {
        return Err(format!(
            "the device cgroup should block the block device on its own; sufficient: {:?}",
            items.sufficient
        ));
    }
    Ok(())
}
