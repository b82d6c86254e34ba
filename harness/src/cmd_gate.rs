//! `breakout gate --baseline FILE [RESULTS]`: exit 1 when RESULTS is worse than the baseline,
//! printing what regressed; 2 when a file cannot be read. Without RESULTS the suite is run in a
//! fresh VM with the baseline's profiles and probes, then gated.

use crate::gate;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct GateArgs {
    /// The baseline: a results.json written by `breakout run --write-baseline` or `--out`.
    #[arg(long, value_name = "FILE")]
    pub baseline: PathBuf,
    /// The results to judge (results.json). Without it the suite runs now.
    #[arg(value_name = "RESULTS")]
    pub results: Option<PathBuf>,
    #[command(flatten)]
    pub vm: crate::run::VmArgs,
}

/// Exit codes: 0 no regression, 1 regression, 2 unreadable input or a failed run.
pub fn run(args: GateArgs) -> u8 {
    let baseline = match gate::load(&args.baseline, "baseline") {
        Ok(b) => b,
        Err(e) => {
            eprintln!("breakout gate: {e}");
            return 2;
        }
    };
    let current = match &args.results {
        Some(path) => match gate::load(path, "results") {
            Ok(r) => r,
            Err(e) => {
                eprintln!("breakout gate: {e}");
                return 2;
            }
        },
        None => match crate::run::plan_like(&baseline)
            .map_err(anyhow::Error::from)
            .and_then(|plan| crate::cmd_run::execute(&plan, &args.vm))
        {
            Ok(r) => r,
            Err(e) => {
                eprintln!("breakout gate: running the suite failed: {e:#}");
                return 2;
            }
        },
    };
    let report = gate::compare(&baseline, &current);
    print!("{}", gate::render(&report, &args.baseline));
    if report.passed() {
        0
    } else {
        1
    }
}
