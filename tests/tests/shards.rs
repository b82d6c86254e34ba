//! Past one guest, in the VM (issue 9): a plan split into shards (`run --shard K/N`, one per CI
//! job) and merged (`breakout merge`) is the unsharded run, and a plan split over two guests at
//! once (`--vms 2 --cpus 1`) gives the same verdicts and attribution: the gate passes each
//! against the unsharded run with zero changes.
//!
//! A small selection with ablation (three probes under none and strict): five guests in all.

use breakout_harness::model::RunReport;
use breakout_harness::suite::gate;
use breakout_harness::suite::guests;
use breakout_harness::suite::host::{self, Quiet};
use breakout_harness::suite::plan::RunPlan;
use breakout_harness::suite::shard::Shard;
use breakout_tests::{binaries, listing_only, selected, vm_args};
use libtest_mimic::{Arguments, Failed, Trial};
use std::path::PathBuf;
use std::sync::Arc;

const PROBES: [&str; 3] = ["ptrace-outside", "hostname", "signal-same-uid"];

fn plan() -> Result<RunPlan, String> {
    RunPlan::from_names(
        &["none".to_string(), "strict".to_string()],
        &PROBES.map(String::from),
    )
    .map_err(|e| e.to_string())
}

fn run(shard: Option<Shard>, vms: u32, cpus: u32) -> Result<RunReport, String> {
    let mut vm = vm_args()?;
    vm.shard = shard;
    vm.vms = vms;
    vm.cpus = cpus;
    let binaries = binaries().map_err(|e| e.to_string())?;
    host::execute(&plan()?, &vm, &binaries, &mut Quiet).map_err(|e| e.to_string())
}

/// The gate of `run` against `whole`: passed, every result compared, nothing changed or new.
fn same_as(whole: &RunReport, run: &RunReport, what: &str) -> Result<(), Failed> {
    let verdict = gate::compare(whole, run);
    let shown = gate::render(&verdict, std::path::Path::new("the unsharded run"));
    if !verdict.passed()
        || !verdict.changes.is_empty()
        || !verdict.new_results.is_empty()
        || verdict.compared != whole.results.len()
    {
        return Err(format!("{what} differs from the unsharded run:\n{shown}").into());
    }
    println!("{what}: {shown}");
    Ok(())
}

fn main() {
    let args = Arguments::from_args();
    let names = [
        "merged_shards_are_the_unsharded_run",
        "two_guests_at_once_give_the_same_verdicts",
    ];
    let live = !listing_only(&args) && names.iter().any(|n| selected(&args, n));
    let whole: Arc<Result<RunReport, String>> = Arc::new(if live {
        run(None, 1, 2)
    } else {
        Err("not run".to_string())
    });
    let w1 = Arc::clone(&whole);
    let w2 = Arc::clone(&whole);
    let trials = vec![
        Trial::test(names[0], move || {
            let whole = w1.as_ref().clone().map_err(Failed::from)?;
            let mut files = Vec::new();
            for shard in Shard::all(2) {
                let part = run(Some(shard), 1, 2)?;
                if part.selection.as_ref().and_then(|s| s.shard) != Some(shard) {
                    return Err(format!("shard {shard} does not record itself").into());
                }
                // A shard alone passes the gate on its own part.
                same_as_part(&whole, &part, shard)?;
                files.push((PathBuf::from(format!("shard-{}", shard.index)), part));
            }
            let merged = guests::merge(&files).map_err(|e| e.to_string())?;
            if merged.results.len() != whole.results.len() {
                return Err(format!(
                    "merged {} results, the unsharded run {}",
                    merged.results.len(),
                    whole.results.len()
                )
                .into());
            }
            same_as(&whole, &merged, "the merged shards")
        }),
        Trial::test(names[1], move || {
            let whole = w2.as_ref().clone().map_err(Failed::from)?;
            let split = run(None, 2, 1)?;
            same_as(&whole, &split, "--vms 2 --cpus 1")
        }),
    ];
    libtest_mimic::run(&args, trials).exit();
}

/// A shard against the unsharded run: only its own probes are judged, all pass.
fn same_as_part(whole: &RunReport, part: &RunReport, shard: Shard) -> Result<(), Failed> {
    let verdict = gate::compare(whole, part);
    if !verdict.passed() || !verdict.changes.is_empty() || verdict.compared != part.results.len() {
        return Err(format!(
            "shard {shard}:\n{}",
            gate::render(&verdict, std::path::Path::new("the unsharded run"))
        )
        .into());
    }
    Ok(())
}
