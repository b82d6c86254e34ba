//! Workloads in the VM, one boot for all: every workload works under `none` (its positive
//! control), every one is broken under `deny-all` (the filter kills it at its first syscall, and
//! the failing step names that syscall), and every one works under `strict` (the shell, Python
//! and C workloads the issue asks for, and the rest: strict's allowlist is meant for ordinary
//! programs). One trial per (workload, profile).

use breakout_attacks::workloads::WorkloadVerdict;
use breakout_harness::suite::plan::RunPlan;
use breakout_tests::{run_without_ablation, selected, shared_run};
use libtest_mimic::{Arguments, Failed, Trial};
use std::sync::Arc;

const PROFILES: [(&str, WorkloadVerdict); 3] = [
    ("none", WorkloadVerdict::Works),
    ("strict", WorkloadVerdict::Works),
    ("deny-all", WorkloadVerdict::Broken),
];

fn main() {
    let args = Arguments::from_args();
    let ids: Vec<String> = breakout_attacks::workloads::workloads()
        .iter()
        .map(|w| w.meta.id.to_string())
        .collect();
    let names: Vec<(String, &str, WorkloadVerdict)> = ids
        .iter()
        .flat_map(|id| PROFILES.iter().map(move |(p, v)| (id.clone(), *p, *v)))
        .collect();
    let mut wanted: Vec<String> = Vec::new();
    for (id, profile, _) in &names {
        if selected(&args, &format!("{id}::{profile}")) && !wanted.contains(id) {
            wanted.push(id.clone());
        }
    }
    let run = shared_run(&args, !wanted.is_empty(), || {
        let profiles: Vec<String> = PROFILES.iter().map(|(p, _)| p.to_string()).collect();
        let mut plan = RunPlan::from_names(&profiles, &[]).map_err(|e| e.to_string())?;
        plan.jobs.clear();
        plan.set_workloads(&wanted).map_err(|e| e.to_string())?;
        run_without_ablation(&plan)
    });
    let trials = names
        .into_iter()
        .map(|(id, profile, want)| {
            let run = Arc::clone(&run);
            Trial::test(format!("{id}::{profile}"), move || -> Result<(), Failed> {
                let report = run
                    .as_ref()
                    .as_ref()
                    .map_err(|e| Failed::from(e.as_str()))?;
                let r = report
                    .workloads
                    .iter()
                    .find(|r| r.workload == id && r.profile == profile)
                    .ok_or_else(|| Failed::from(format!("no result for {id} under {profile}")))?;
                if r.verdict != want {
                    return Err(format!(
                        "{id} under {profile}: {} (step {:?}), want {}: {}",
                        r.verdict.as_str(),
                        r.step,
                        want.as_str(),
                        r.reason
                    )
                    .into());
                }
                // deny-all's filter kills at the first syscall: the step must say which.
                if want == WorkloadVerdict::Broken
                    && !r.step.as_deref().is_some_and(|s| s.ends_with("killed by seccomp"))
                {
                    return Err(format!(
                        "{id} under {profile}: broken, but the step does not name the syscall the filter killed: {:?} ({})",
                        r.step, r.reason
                    )
                    .into());
                }
                Ok(())
            })
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}
