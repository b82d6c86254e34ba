//! The escape suite as `cargo test`: one trial per (probe, profile) of the committed baseline
//! (baselines/default.json), judged by the regression gate's rules: a new escape, a lost block,
//! a lost sufficient layer, a missing result or a lost positive control fails the trial.
//!
//! File probes: BREAKOUT_PROBES=DIR[:DIR] registers them and BREAKOUT_BASELINE=FILE names a
//! baseline that covers them (`breakout run --probes DIR --write-baseline FILE`).
//!
//! The name filter shapes the plan before anything boots (`cargo test -- ptrace` runs only the
//! ptrace probes in the VM), and the VM boots once for the whole binary.

use breakout_harness::model::{self, GuestEvent};
use breakout_harness::model::{ProbeResult, RunReport};
use breakout_harness::suite::gate;
use breakout_harness::suite::host::{self, Observer};
use breakout_tests::{baseline_path, binaries, listing_only, selected, vm_args};
use libtest_mimic::{Arguments, Failed, Trial};
use std::collections::BTreeMap;
use std::sync::Arc;

fn main() {
    let args = Arguments::from_args();
    let path = baseline_path();
    if let Err(message) = breakout_tests::register_file_probes() {
        let trial = Trial::test("file_probes", move || Err(Failed::from(message)));
        libtest_mimic::run(&args, vec![trial]).exit();
    }
    let baseline = match gate::load(&path, "baseline") {
        Ok(b) => b,
        Err(e) => {
            let message = e.to_string();
            let trial = Trial::test("baseline", move || Err(Failed::from(message)));
            libtest_mimic::run(&args, vec![trial]).exit();
        }
    };
    let names: Vec<(String, ProbeResult)> = baseline
        .results
        .iter()
        .map(|r| (format!("{}::{}", r.probe, r.profile), r.clone()))
        .collect();
    let wanted: Vec<&str> = names
        .iter()
        .filter(|(n, _)| selected(&args, n))
        .map(|(n, _)| n.as_str())
        .collect();

    // One VM for everything selected; nothing boots when nothing is selected or we only list.
    let run: Arc<Result<RunReport, String>> =
        Arc::new(if wanted.is_empty() || listing_only(&args) {
            Err("not run".to_string())
        } else {
            run_selected(&baseline, &wanted)
        });

    let baseline = Arc::new(baseline);
    let trials = names
        .into_iter()
        .map(|(name, expected)| {
            let run = Arc::clone(&run);
            let baseline = Arc::clone(&baseline);
            Trial::test(name, move || judge(&baseline, &expected, &run))
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}

fn run_selected(baseline: &RunReport, wanted: &[&str]) -> Result<RunReport, String> {
    let binaries = binaries().map_err(|e| e.to_string())?;
    let vm = vm_args()?;
    let mut plan = host::plan_like(baseline).map_err(|e| e.to_string())?;
    plan.retain(|j| wanted.contains(&j.name().as_str()));
    eprintln!(
        "escape suite: {} (probe, profile) jobs planned, booting the VM once",
        plan.jobs.len()
    );
    let report =
        host::execute(&plan, &vm, &binaries, &mut Lines::default()).map_err(|e| e.to_string())?;
    eprintln!(
        "escape suite: boot {:.1} s, probe runs {:.1} s, ablation {:.1} s",
        report.timings.boot_ms as f64 / 1000.0,
        report.timings.probes_ms as f64 / 1000.0,
        report.timings.ablation_ms as f64 / 1000.0
    );
    Ok(report)
}

fn judge(
    baseline: &RunReport,
    expected: &ProbeResult,
    run: &Result<RunReport, String>,
) -> Result<(), Failed> {
    let report = run
        .as_ref()
        .map_err(|e| Failed::from(format!("the suite did not run: {e}")))?;
    let now: BTreeMap<(&str, &str), &ProbeResult> = report
        .results
        .iter()
        .map(|r| ((r.probe.as_str(), r.profile.as_str()), r))
        .collect();
    let current = now
        .get(&(expected.probe.as_str(), expected.profile.as_str()))
        .copied();
    let no_layers = model::configuration_without_layers(baseline, &expected.profile);
    match gate::judge(expected, current, no_layers) {
        Ok(_) => Ok(()),
        Err(regression) => {
            let mut message = regression.to_string();
            if let Some(r) = current {
                message.push_str(&format!("\n  now: {}", r.reason));
            }
            Err(Failed::from(message))
        }
    }
}

/// One line per result on stderr while the VM runs (the trials themselves report at the end).
#[derive(Default)]
struct Lines {
    done: usize,
}

impl Observer for Lines {
    fn event(&mut self, event: &GuestEvent) {
        if let GuestEvent::Result(r) = event {
            self.done += 1;
            eprintln!(
                "escape suite: [{}] {}::{}: {}",
                self.done,
                r.probe,
                r.profile,
                model::verdict_name(r.verdict)
            );
        }
    }
}
