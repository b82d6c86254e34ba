//! `breakout run`: the suite in a fresh VM, a progress bar while it runs, the report at the end,
//! and the regression gate with `--baseline`.
//!
//! Exit codes: `exit_codes::RUN` (printed by `--help`).

use crate::cli::progress::execute;
use crate::report::escape::terminal;
use crate::report::{self, Format};
use crate::suite::gate;
use crate::suite::host::VmArgs;
use crate::suite::plan::RunPlan;
use breakout_attacks::Verdict;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct RunArgs {
    /// A profile to test (built-in name or TOML file); repeat. Default: none, namespaces,
    /// docker-default, strict.
    #[arg(long = "profile", value_name = "NAME")]
    pub profiles: Vec<String>,
    /// A probe to run; repeat. Default: every probe (`breakout list probes`), unless only
    /// workloads are named.
    #[arg(long = "probe", value_name = "ID")]
    pub probes: Vec<String>,
    /// What to print on stdout at the end.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Also write results.json, report.html, junit.xml and report.md into DIR.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Exit 1 when the results are worse than this baseline (see `breakout gate`).
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Write the results as a baseline to FILE.
    #[arg(long, value_name = "FILE")]
    pub write_baseline: Option<PathBuf>,
    /// With --baseline: a kernel release other than the baseline's is a regression (without it,
    /// one line names both).
    #[arg(long)]
    pub strict_kernel: bool,
    #[command(flatten)]
    pub workloads: crate::workloads::WorkloadArgs,
    #[command(flatten)]
    pub file_probes: crate::suite::file_probes::FileProbeArgs,
    #[command(flatten)]
    pub vm: VmArgs,
}

pub fn run(args: RunArgs) -> u8 {
    // Everything the user named is checked before the VM boots.
    let probes = match args.file_probes.probes_to_run(&args.probes) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("breakout run: {e}");
            return 2;
        }
    };
    let mut plan = match RunPlan::from_names(&args.profiles, &probes) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("breakout run: {e}");
            return 2;
        }
    };
    if let Err(e) = args.workloads.apply(&mut plan, &args.probes, &probes) {
        eprintln!("breakout run: {e}");
        return 2;
    }
    match plan.add_positive_control() {
        Ok(Some(name)) => eprintln!(
            "breakout run: no selected profile is without layers, so there is no positive control: every probe also runs under `{name}` (unsandboxed), so a broken probe cannot read as a block"
        ),
        Ok(None) => {}
        Err(e) => {
            eprintln!("breakout run: {e}");
            return 2;
        }
    }
    let baseline = match &args.baseline {
        // The gate judges the run against the part of the baseline the run selected (recorded in
        // the results), so nothing is trimmed here.
        Some(path) => match gate::load(path, "baseline") {
            Ok(b) => Some(b),
            Err(e) => {
                eprintln!("breakout run: {e}");
                return 2;
            }
        },
        None => None,
    };
    if let Some(dir) = &args.out {
        if let Err(e) = report::check_writable_dir(dir) {
            eprintln!("breakout run: --out: {e}");
            return 2;
        }
    }
    if let Some(path) = &args.write_baseline {
        if let Err(e) = report::check_writable_file(path) {
            eprintln!("breakout run: --write-baseline: {e}");
            return 2;
        }
    }
    let report = match execute(&plan, &args.vm) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("breakout run: {}", terminal(&format!("{e:#}")));
            return 2;
        }
    };
    let options = gate::GateOptions {
        strict_kernel: args.strict_kernel,
    };
    let verdict = baseline
        .as_ref()
        .map(|b| gate::compare_with(b, &report, options));
    let baseline_name = args
        .baseline
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let gated = verdict.as_ref().map(|v| (v, baseline_name.as_str()));

    let shown = match args.format {
        Format::Table => report::table::render(&report, report::table::colour_for_stdout()),
        other => report::render_gated(&report, other, gated),
    };
    print!("{shown}");
    eprintln!(
        "breakout run: {} results and {} workload results in {:.1} s (boot {:.1} s, probe runs {:.1} s, ablation {:.1} s, workloads {:.1} s)",
        report.results.len(),
        report.workloads.len(),
        report.timings.total_ms as f64 / 1000.0,
        report.timings.boot_ms as f64 / 1000.0,
        report.timings.probes_ms as f64 / 1000.0,
        report.timings.ablation_ms as f64 / 1000.0,
        report.timings.workloads_ms as f64 / 1000.0
    );
    // The table on stdout has the same line.
    if let (Some(l), false) = (
        &report.timings.launches,
        matches!(args.format, Format::Table),
    ) {
        eprintln!(
            "breakout run: probe runs {}; ablation {}",
            l.probes.summary(),
            l.ablation.summary()
        );
    }
    let mut code = 0;
    if let Some(dir) = &args.out {
        match report::write_all_gated(&report, dir, gated) {
            Ok(paths) => {
                for p in paths {
                    eprintln!("wrote {}", p.display());
                }
            }
            Err(e) => {
                eprintln!("breakout run: {e}");
                code = 2;
            }
        }
    }
    if !report.channel_problems.is_empty() {
        eprintln!("breakout run: the result channel was written to by something other than the orchestrator, or damaged; this run is not trusted (its reports are written, no baseline is):");
        for p in &report.channel_problems {
            eprintln!("  - {}", terminal(p));
        }
        code = 2;
    } else if let Some(path) = &args.write_baseline {
        match gate::write_baseline(&report, path) {
            Ok(()) => eprintln!("wrote baseline {}", path.display()),
            Err(e) => {
                eprintln!("breakout run: {e}");
                code = 2;
            }
        }
    }
    for r in report.results.iter().filter(|r| {
        crate::model::configuration_without_layers(&report, &r.profile)
            && r.verdict == Verdict::Skipped
    }) {
        eprintln!(
            "breakout run: warning: {} did not run under {} (no positive control): {}",
            r.probe,
            r.profile,
            terminal(&r.reason)
        );
    }
    let failed_controls = gate::positive_control_failures(&report);
    if !failed_controls.is_empty() {
        eprintln!("breakout run: positive control FAILED: these probes did not escape a configuration without layers, so they prove nothing:");
        for line in &failed_controls {
            eprintln!("  - {}", terminal(line));
        }
        if code == 0 {
            code = 3;
        }
    }
    let broken_workloads = workload_control_failures(&report);
    if !broken_workloads.is_empty() {
        eprintln!("breakout run: positive control FAILED: these workloads do not work under a configuration without layers, so they are broken workloads and prove nothing about a sandbox:");
        for line in &broken_workloads {
            eprintln!("  - {}", terminal(line));
        }
        if code == 0 {
            code = 3;
        }
    }
    if let (Some(verdict), Some(path)) = (&verdict, &args.baseline) {
        eprint!("{}", terminal(&gate::render(verdict, path)));
        if !verdict.passed() && code != 2 {
            code = 1;
        }
    }
    code
}

/// "workload under profile: verdict at step (reason)" for every workload that does not work
/// under a configuration of ours that switches no layer on.
pub fn workload_control_failures(report: &crate::model::RunReport) -> Vec<String> {
    let controls: Vec<String> = report
        .profiles
        .iter()
        .filter(|p| crate::model::configuration_without_layers(report, &p.name))
        .map(|p| p.name.clone())
        .collect();
    crate::workloads::broken_controls(&report.workloads, &controls)
        .into_iter()
        .map(|r| {
            format!(
                "{} under {}: {}{} ({})",
                r.workload,
                r.profile,
                r.verdict.as_str(),
                r.step
                    .as_ref()
                    .map(|s| format!(" at {s}"))
                    .unwrap_or_default(),
                r.reason
            )
        })
        .collect()
}
