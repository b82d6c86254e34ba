//! Attribution with known answers, checked in the VM (issue 5):
//! - ptrace-outside under `strict` without pid-ns is still blocked, with user-ns and caps among
//!   the sufficient layers (the kernel refuses ptrace and /proc/<pid>/mem across user namespaces
//!   without CAP_SYS_PTRACE in the target's) and pid-ns not credited;
//! - signal-same-uid under `namespaces`: pid-ns and user-ns are each sufficient (the victim is
//!   invisible in a new pid namespace; a signal across user namespaces needs CAP_KILL in the
//!   target's). ptrace-outside is no such case: it also reads /proc/<pid>/mem, and pid-ns alone
//!   leaves the outer /proc mounted (no mount-ns), so pid-ns alone does not stop it;
//! - signal-same-uid under `strict`: three layers block it alone, yet pid-ns is necessary (the
//!   uid layer makes the payload the victim's uid, and equal uids signal across user
//!   namespaces): necessary layers are measured, not inferred;
//! - switching pid-ns off makes signal-outside's depth under `strict` drop by exactly one;
//! - the gate passes on the run's own output and fails on a baseline that claims more;
//! - fd-exhaustion under `strict` is held by rlimits (necessary): every ablation run is judged
//!   against strict's promise of 256 descriptors, not against the ceiling a run without any
//!   limit would be judged by.
//!
//! One VM boots for the whole binary (nine launches plus their ablation).

use breakout_attacks::{Layer, Verdict};
use breakout_harness::model::{ProbeResult, RunReport};
use breakout_harness::suite::gate;
use breakout_harness::suite::host::{self, Quiet};
use breakout_harness::suite::plan::{Configuration, ConfigurationKind, RunPlan};
use breakout_runtime::config::SandboxConfig;
use breakout_tests::{binaries, checks_on_one_run, vm_args, ReportCheck};

const PTRACE: &str = "ptrace-outside";
const SIGNAL: &str = "signal-same-uid";
const SIGNAL_ROOT: &str = "signal-outside";
const WITHOUT_PID_NS: &str = "strict-without-pid-ns";
const FDS: &str = "fd-exhaustion";

fn main() {
    let checks: Vec<(&str, ReportCheck)> = vec![
        (
            "ptrace_outside_under_strict_without_pid_ns_is_still_blocked",
            still_blocked_without_pid_ns,
        ),
        (
            "signal_same_uid_under_namespaces_pid_ns_and_user_ns_each_sufficient",
            namespaces_pid_and_user_sufficient,
        ),
        (
            "signal_same_uid_under_strict_pid_ns_is_necessary",
            pid_ns_necessary_for_same_uid_signal,
        ),
        (
            "switching_pid_ns_off_drops_the_depth_by_one",
            depth_drops_by_one,
        ),
        (
            "fd_exhaustion_under_strict_rlimits_is_necessary",
            rlimits_necessary_for_fd_exhaustion,
        ),
        (
            "the_gate_passes_on_its_own_output",
            gate_passes_on_own_output,
        ),
        (
            "the_gate_fails_on_a_baseline_claiming_more",
            gate_fails_on_baseline_claiming_more,
        ),
    ];
    checks_on_one_run(checks, run_plan)
}

fn run_plan() -> Result<RunReport, String> {
    let mut without = SandboxConfig::builtin("strict").map_err(|e| e.to_string())?;
    without.set_enabled(Layer::PidNs, false);
    without
        .validate()
        .map_err(|e| format!("strict without pid-ns: {e}"))?;
    let configurations = vec![
        Configuration::profile("namespaces").map_err(|e| e.to_string())?,
        Configuration::profile("strict").map_err(|e| e.to_string())?,
        Configuration {
            name: WITHOUT_PID_NS.to_string(),
            kind: ConfigurationKind::Breakout { config: without },
        },
    ];
    let plan = RunPlan::new(
        configurations,
        &[
            PTRACE.to_string(),
            SIGNAL.to_string(),
            SIGNAL_ROOT.to_string(),
            FDS.to_string(),
        ],
    )
    .map_err(|e| e.to_string())?;
    let binaries = binaries().map_err(|e| e.to_string())?;
    host::execute(&plan, &vm_args()?, &binaries, &mut Quiet).map_err(|e| e.to_string())
}

fn result<'a>(
    report: &'a RunReport,
    probe: &str,
    profile: &str,
) -> Result<&'a ProbeResult, String> {
    report
        .results
        .iter()
        .find(|r| r.probe == probe && r.profile == profile)
        .ok_or_else(|| format!("no result for {probe} under {profile}"))
}

fn blocked_sufficient(
    report: &RunReport,
    probe: &str,
    profile: &str,
) -> Result<Vec<Layer>, String> {
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
    if !a.candidates_complete {
        return Err(format!(
            "{probe} under {profile}: the candidates do not explain the block: {a:?}"
        ));
    }
    let depth = breakout_harness::model::depth(
        &a.sufficient,
        &a.necessary,
        a.candidates_complete,
        a.inferred,
    );
    if a.depth != depth {
        return Err(format!(
            "{probe} under {profile}: depth {} but sufficient {:?} and necessary {:?} make {depth}",
            a.depth, a.sufficient, a.necessary
        ));
    }
    Ok(a.sufficient.clone())
}

fn still_blocked_without_pid_ns(report: &RunReport) -> Result<(), String> {
    let sufficient = blocked_sufficient(report, PTRACE, WITHOUT_PID_NS)?;
    if sufficient.contains(&Layer::PidNs) {
        return Err(format!("pid-ns is off but credited: {sufficient:?}"));
    }
    for layer in [Layer::UserNs, Layer::Caps] {
        if !sufficient.contains(&layer) {
            return Err(format!(
                "{layer} should be sufficient on its own, sufficient: {sufficient:?}"
            ));
        }
    }
    Ok(())
}

fn namespaces_pid_and_user_sufficient(report: &RunReport) -> Result<(), String> {
    let sufficient = blocked_sufficient(report, SIGNAL, "namespaces")?;
    for layer in [Layer::PidNs, Layer::UserNs] {
        if !sufficient.contains(&layer) {
            return Err(format!(
                "{layer} should be sufficient for {SIGNAL} under namespaces, sufficient: {sufficient:?}"
            ));
        }
    }
    Ok(())
}

fn pid_ns_necessary_for_same_uid_signal(report: &RunReport) -> Result<(), String> {
    let sufficient = blocked_sufficient(report, SIGNAL, "strict")?;
    let r = result(report, SIGNAL, "strict")?;
    let necessary = &r.attribution.as_ref().ok_or("no attribution")?.necessary;
    if necessary != &[Layer::PidNs] || !sufficient.contains(&Layer::PidNs) {
        return Err(format!(
            "{SIGNAL} under strict: necessary {necessary:?} (expected [pid-ns]), sufficient {sufficient:?}"
        ));
    }
    let without = result(report, SIGNAL, WITHOUT_PID_NS)?;
    if without.verdict != Verdict::Escaped {
        return Err(format!(
            "{SIGNAL} under strict without pid-ns: {:?} ({}), expected escaped",
            without.verdict, without.reason
        ));
    }
    Ok(())
}

fn depth_drops_by_one(report: &RunReport) -> Result<(), String> {
    let with = blocked_sufficient(report, SIGNAL_ROOT, "strict")?;
    let without = blocked_sufficient(report, SIGNAL_ROOT, WITHOUT_PID_NS)?;
    let lost: Vec<Layer> = with
        .iter()
        .copied()
        .filter(|l| !without.contains(l))
        .collect();
    let gained: Vec<Layer> = without
        .iter()
        .copied()
        .filter(|l| !with.contains(l))
        .collect();
    if with.len() != without.len() + 1 || lost != [Layer::PidNs] || !gained.is_empty() {
        return Err(format!(
            "{SIGNAL_ROOT}: strict {with:?}; without pid-ns {without:?}; expected exactly pid-ns lost"
        ));
    }
    Ok(())
}

fn rlimits_necessary_for_fd_exhaustion(report: &RunReport) -> Result<(), String> {
    let r = result(report, FDS, "strict")?;
    if r.verdict != Verdict::Blocked {
        return Err(format!(
            "{FDS} under strict: {:?} ({}), expected blocked",
            r.verdict, r.reason
        ));
    }
    let a = r.attribution.as_ref().ok_or("no attribution")?;
    if !a.necessary.contains(&Layer::Rlimits) {
        return Err(format!(
            "{FDS} under strict: rlimits not necessary (necessary {:?}, sufficient {:?}); \
             an ablation run without rlimits was judged against another limit than strict's",
            a.necessary, a.sufficient
        ));
    }
    Ok(())
}

fn gate_passes_on_own_output(report: &RunReport) -> Result<(), String> {
    let verdict = gate::compare(report, report);
    if verdict.passed() && verdict.compared == report.results.len() {
        Ok(())
    } else {
        Err(format!("{:?}", verdict.regressions))
    }
}

fn gate_fails_on_baseline_claiming_more(report: &RunReport) -> Result<(), String> {
    let mut claims_more = report.clone();
    let r = claims_more
        .results
        .iter_mut()
        .find(|r| r.probe == SIGNAL && r.profile == "strict")
        .ok_or("no strict result")?;
    let a = r
        .attribution
        .as_mut()
        .ok_or("strict result without attribution")?;
    let extra = Layer::ALL
        .into_iter()
        .find(|l| !a.sufficient.contains(l))
        .ok_or("every layer is already sufficient")?;
    a.sufficient.push(extra);
    let verdict = gate::compare(&claims_more, report);
    match verdict.regressions.as_slice() {
        [gate::Regression::FewerSufficient { lost, .. }] if lost == &[extra] => Ok(()),
        other => Err(format!(
            "expected one lost sufficient layer ({extra}), got {other:?}"
        )),
    }
}
