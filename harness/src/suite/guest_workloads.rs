//! Runs one (workload, configuration) job of the plan inside the VM through the same launchers
//! as the probes: our runtime under the profile, or an external runtime.

use crate::model::WorkloadResult;
use crate::suite::guest::AdapterLauncher;
use crate::suite::launcher;
use crate::suite::plan::{ConfigurationKind, GuestPlan, WorkloadJob};
use breakout_attacks::workloads::{self, WorkloadRun, WorkloadVerdict};
use breakout_attacks::{Layer, Limits};
use std::time::Duration;

/// Runs one job in the guest.
pub fn run_job(
    plan: &GuestPlan,
    job: &WorkloadJob,
    adapters: AdapterLauncher,
    timeout: Duration,
) -> WorkloadResult {
    let result = |run: WorkloadRun| WorkloadResult {
        workload: job.workload.clone(),
        profile: job.profile.clone(),
        verdict: run.verdict,
        reason: run.reason,
        step: run.step,
        stderr_tail: run.stderr_tail,
        duration_ms: run.duration_ms,
        kernel: String::new(),
    };
    let skipped = |reason: String| WorkloadRun {
        verdict: WorkloadVerdict::Skipped,
        reason,
        step: None,
        stderr_tail: String::new(),
        duration_ms: 0,
    };
    let Some(w) = workloads::workload(&job.workload) else {
        return result(skipped(format!("unknown workload {}", job.workload)));
    };
    let Some(configuration) = plan.configuration(&job.profile) else {
        return result(skipped(format!("no configuration {}", job.profile)));
    };
    match &configuration.kind {
        ConfigurationKind::Breakout { config }
            if config.enabled(Layer::Landlock)
                && breakout_runtime::layers::landlock::kernel_abi().is_err() =>
        {
            let why = breakout_runtime::layers::landlock::kernel_abi()
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            result(skipped(why))
        }
        ConfigurationKind::Breakout { config } => {
            let l = launcher::RuntimeLauncher::new(config.clone());
            result(workloads::run_workload(
                w,
                &l,
                &launcher::limits_of(config),
                timeout,
            ))
        }
        ConfigurationKind::Adapter { spec, .. } => {
            if let Some(missing) = spec.missing() {
                return result(skipped(missing));
            }
            match adapters(spec) {
                Ok(l) => result(workloads::run_workload(
                    w,
                    l.as_ref(),
                    &Limits::default(),
                    timeout,
                )),
                Err(message) => result(skipped(format!(
                    "external runtime `{}` cannot be started: {message}",
                    spec.runtime_label()
                ))),
            }
        }
    }
}
