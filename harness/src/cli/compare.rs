//! `breakout compare A B ...`: configurations side by side in one fresh VM. Each name is one of
//! our profiles (built-in or a TOML file) or an external runtime spec (`crun`, `oci:PATH`,
//! `cmd:'bwrap ...'`, `podman:'...'`; see `adapters`). The report is the usual matrix, with the layers each configuration
//! turned on and, first, the probes on which the configurations disagree.
//!
//! Like `run`, it adds the positive control `none` when no compared configuration is without
//! layers (left out of "where they differ"); report.md and report.html lead with where they
//! differ.
//!
//! Exit codes: 0 the comparison ran (escapes are findings), 2 bad input or a failed run, 3 a
//! positive control failed.

use crate::cli::progress;
use crate::model::RunReport;
use crate::report::escape::terminal;
use crate::report::{self, Format};
use crate::suite::plan::{Configuration, ConfigurationKind, RunPlan};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct CompareArgs {
    /// Configurations: built-in profiles (`breakout list profiles`), TOML profile files,
    /// external runtimes by short name (bwrap, crun, ...; `breakout list profiles` lists them), or
    /// your own: oci:PATH (config.json under crun), oci+runc:PATH, oci+runsc:PATH,
    /// cmd:'WRAPPER ARGS', podman:'FLAGS'.
    #[arg(value_name = "CONFIGURATION", num_args = 2.., required = true)]
    pub configurations: Vec<String>,
    /// A probe to run; repeat. Default: every probe, unless only workloads are named.
    #[arg(long = "probe", value_name = "ID")]
    pub probes: Vec<String>,
    /// What to print on stdout at the end.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Also write results.json, report.html, junit.xml and report.md into DIR.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub workloads: crate::workloads::WorkloadArgs,
    #[command(flatten)]
    pub file_probes: crate::suite::file_probes::FileProbeArgs,
    #[command(flatten)]
    pub vm: crate::suite::host::VmArgs,
}

/// The configuration a name stands for, checked on the host before anything boots: a runtime
/// spec (`oci:PATH`, `cmd:'...'`, `podman:'...'`, a short name) or one of our profiles.
pub fn configuration(name: &str) -> Result<Configuration, crate::suite::plan::PlanError> {
    Configuration::named(name)
}

/// A line for each runtime that is not installed: its cells will be `skipped`.
pub fn missing_runtimes(configurations: &[Configuration]) -> Vec<String> {
    configurations
        .iter()
        .filter_map(|c| match &c.kind {
            ConfigurationKind::Adapter { spec, .. } => spec
                .missing()
                .map(|why| format!("{}: skipped: {why}", c.name)),
            ConfigurationKind::Breakout { .. } => None,
        })
        .collect()
}

/// Both halves per configuration, then the workloads whose verdicts differ, one line each.
pub fn workload_differences(report: &RunReport) -> String {
    let grid = crate::workloads::WorkloadGrid::of(report);
    if grid.is_empty() {
        return String::new();
    }
    let mut out = String::from("both halves:\n");
    for profile in &grid.profiles {
        out.push_str(&format!(
            "  {profile}: {}\n",
            crate::workloads::both_halves(report, profile)
        ));
    }
    let lines: Vec<String> = grid
        .workloads
        .iter()
        .filter(|w| {
            let verdicts: Vec<_> = grid
                .profiles
                .iter()
                .map(|p| grid.cell(w, p).map(|r| r.verdict))
                .collect();
            verdicts.windows(2).any(|v| v[0] != v[1])
        })
        .map(|w| {
            let parts: Vec<String> = grid
                .profiles
                .iter()
                .map(|p| {
                    let text = grid
                        .cell(w, p)
                        .map_or("not run".to_string(), crate::workloads::cell_text);
                    format!("{p}: {text}")
                })
                .collect();
            format!("  {w}: {}\n", parts.join(" | "))
        })
        .collect();
    if lines.is_empty() {
        out.push_str("where they differ (workloads): nowhere\n");
    } else {
        out.push_str("where they differ (workloads):\n");
        out.push_str(&lines.concat());
    }
    out
}

/// The probes on which the configurations' verdicts differ, one line each.
pub fn differences(report: &RunReport) -> String {
    let lines: Vec<String> = report::matrix::disagreements(report)
        .into_iter()
        .map(|d| {
            let parts: Vec<String> = d.cells.iter().map(|(p, t)| format!("{p}: {t}")).collect();
            format!("  {}: {}\n", d.label(), parts.join(" | "))
        })
        .collect();
    if lines.is_empty() {
        "where they differ: nowhere, every probe has the same verdict under each\n".to_string()
    } else {
        format!("where they differ (verdicts):\n{}", lines.concat())
    }
}

/// One line for each external configuration whose runtime exited before running the probe
/// (an option it refused, a file it missed): what the runtime said last. Its cells are
/// `inconclusive`; this says why without opening the evidence.
pub fn runtime_failures(report: &RunReport, configurations: &[Configuration]) -> Vec<String> {
    let external: Vec<&str> = configurations
        .iter()
        .filter(|c| matches!(c.kind, ConfigurationKind::Adapter { .. }))
        .map(|c| c.name.as_str())
        .collect();
    let mut seen = Vec::new();
    let mut lines = Vec::new();
    for r in &report.results {
        let never_ran = r.verdict == breakout_attacks::Verdict::Inconclusive
            && r.reason.starts_with("the inside printed no report");
        if !never_ran || !external.contains(&r.profile.as_str()) || seen.contains(&&r.profile) {
            continue;
        }
        let said = r
            .evidence
            .stderr_tail
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty() && !l.starts_with("breakout-probe:"))
            .unwrap_or("nothing on stderr");
        seen.push(&r.profile);
        lines.push(format!(
            "{}: the runtime exited before running the probe ({}, first under {}): {said}",
            r.profile,
            r.reason
                .split(';')
                .next()
                .unwrap_or("")
                .trim_start_matches("the inside printed no report ")
                .trim_matches(|c| c == '(' || c == ')'),
            r.probe
        ));
    }
    lines
}

pub fn run(args: CompareArgs) -> u8 {
    let mut configurations = Vec::new();
    for name in &args.configurations {
        match configuration(name) {
            Ok(c) => configurations.push(c),
            Err(e) => {
                eprintln!("breakout compare: {e}");
                return 2;
            }
        }
    }
    for line in missing_runtimes(&configurations) {
        eprintln!("breakout compare: {line}");
    }
    let probes = match args.file_probes.probes_to_run(&args.probes) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("breakout compare: {e}");
            return 2;
        }
    };
    let mut plan = match RunPlan::new(configurations, &probes) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("breakout compare: {e}");
            return 2;
        }
    };
    if let Err(e) = args.workloads.apply(&mut plan, &args.probes, &probes) {
        eprintln!("breakout compare: {e}");
        return 2;
    }
    // As for `run`: without a configuration that switches nothing on, a broken probe would
    // read as a block under every configuration compared.
    match plan.add_positive_control() {
        Ok(Some(name)) => eprintln!(
            "breakout compare: no compared configuration is without layers, so there is no positive control: every probe also runs under `{name}` (unsandboxed), so a broken probe cannot read as a block"
        ),
        Ok(None) => {}
        Err(e) => {
            eprintln!("breakout compare: {e}");
            return 2;
        }
    }
    if let Some(dir) = &args.out {
        if let Err(e) = report::check_writable_dir(dir) {
            eprintln!("breakout compare: --out: {e}");
            return 2;
        }
    }
    let report = match progress::execute(&plan, &args.vm) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("breakout compare: {}", terminal(&format!("{e:#}")));
            return 2;
        }
    };
    for line in runtime_failures(&report, &plan.configurations) {
        eprintln!("breakout compare: {}", terminal(&line));
    }
    let shown = match args.format {
        Format::Table => {
            let mut text = terminal(&differences(&report)).into_owned();
            text.push_str(&terminal(&workload_differences(&report)));
            text.push('\n');
            text.push_str(&report::table::render(
                &report,
                report::table::colour_for_stdout(),
            ));
            text
        }
        other => report::render_compared(&report, other),
    };
    print!("{shown}");
    let mut code = 0;
    if let Some(dir) = &args.out {
        match report::write_all_compared(&report, dir) {
            Ok(paths) => {
                for p in paths {
                    eprintln!("wrote {}", p.display());
                }
            }
            Err(e) => {
                eprintln!("breakout compare: {e}");
                code = 2;
            }
        }
    }
    let failed_controls = crate::suite::gate::positive_control_failures(&report);
    if !failed_controls.is_empty() {
        eprintln!("breakout compare: positive control FAILED: these probes did not escape a configuration without layers, so they prove nothing:");
        for line in &failed_controls {
            eprintln!("  - {}", terminal(line));
        }
        if code == 0 {
            code = 3;
        }
    }
    code
}
