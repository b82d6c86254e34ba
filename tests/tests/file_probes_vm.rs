//! Probes from files, in the VM: every example under examples/probes (one per oracle kind)
//! escapes `none` (the positive control) and is blocked under `strict`. One VM boots for all.

use breakout_attacks::Verdict;
use breakout_harness::suite::file_probes::FileProbeArgs;
use breakout_harness::suite::plan::RunPlan;
use breakout_tests::{run_without_ablation, selected, shared_run};
use libtest_mimic::{Arguments, Failed, Trial};
use std::path::Path;
use std::sync::Arc;

fn main() {
    let args = Arguments::from_args();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/probes");
    let ids = match (FileProbeArgs {
        dirs: vec![examples.clone()],
    })
    .probes_to_run(&[])
    {
        Ok(ids) => ids,
        Err(e) => {
            eprintln!("file_probes_vm: {e}");
            std::process::exit(2);
        }
    };
    let names: Vec<(String, String, Verdict)> = ids
        .iter()
        .flat_map(|id| {
            [
                (id.clone(), "none".to_string(), Verdict::Escaped),
                (id.clone(), "strict".to_string(), Verdict::Blocked),
            ]
        })
        .collect();
    let wanted: Vec<String> = names
        .iter()
        .filter(|(id, profile, _)| selected(&args, &format!("{id}::{profile}")))
        .map(|(id, _, _)| id.clone())
        .collect();
    let run = shared_run(&args, !wanted.is_empty(), || {
        let plan = RunPlan::from_names(&["none".into(), "strict".into()], &wanted)
            .map_err(|e| e.to_string())?;
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
                if !report.environment.external_probes.contains(&id) {
                    return Err(format!("{id} is not marked external in the report").into());
                }
                let r = report
                    .results
                    .iter()
                    .find(|r| r.probe == id && r.profile == profile)
                    .ok_or_else(|| Failed::from(format!("no result for {id} under {profile}")))?;
                if r.verdict == want {
                    Ok(())
                } else {
                    Err(format!(
                        "{id} under {profile}: {:?}, want {want:?}: {}",
                        r.verdict, r.reason
                    )
                    .into())
                }
            })
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}
