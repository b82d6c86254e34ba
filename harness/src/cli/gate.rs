//! `breakout gate --baseline FILE [RESULTS]`: judge RESULTS against the part of the baseline they
//! selected; exit 1 when anything got worse, printing what regressed; 2 when a file cannot be
//! read, or RESULTS do not say what they cover (no `selection`, unless --scope-from-contents) or
//! hold results outside it. Without RESULTS the suite is run in a fresh VM with the baseline's profiles and probes,
//! then gated. `--format markdown` prints report.md's layout, `--format junit` the JUnit XML a CI
//! test view shows; both agree with the text verdict (see `exit_codes::GATE`).

use crate::report;
use crate::report::escape::terminal;
use crate::suite::gate;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct GateArgs {
    /// The baseline: a results.json written by `breakout run --write-baseline` or `--out`.
    #[arg(long, value_name = "FILE")]
    pub baseline: PathBuf,
    /// The results to judge (results.json). Without it the suite runs now.
    #[arg(value_name = "RESULTS")]
    pub results: Option<PathBuf>,
    /// What to print on stdout: the gate's lines, report.md's layout (regressions first, the
    /// matrix folded), or JUnit XML (a testcase fails exactly when it is a regression).
    #[arg(long, value_enum, default_value = "text")]
    pub format: GateFormat,
    /// A kernel release other than the baseline's is a regression. Without it the gate names
    /// both releases in one line and judges the verdicts anyway.
    #[arg(long)]
    pub strict_kernel: bool,
    /// Judge RESULTS that record no `selection` (schema 1, written before runs recorded it) as
    /// covering exactly the (profile, probe) pairs they hold. Without it such results are
    /// refused (exit 2): from the contents alone a result removed from the file cannot be told
    /// from a pair the run did not select, so a deleted regression would pass.
    #[arg(long)]
    pub scope_from_contents: bool,
    #[command(flatten)]
    pub vm: crate::suite::host::VmArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GateFormat {
    Text,
    Markdown,
    Junit,
}

pub fn run(args: GateArgs) -> u8 {
    let baseline = match gate::load(&args.baseline, "baseline") {
        Ok(b) => b,
        Err(e) => {
            eprintln!("breakout gate: {e}");
            return 2;
        }
    };
    let current = match &args.results {
        Some(path) => match gate::load(path, "results").and_then(|r| {
            gate::check_scope(&r, path, "results", args.scope_from_contents)?;
            Ok(r)
        }) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("breakout gate: {e}");
                return 2;
            }
        },
        None => match crate::suite::host::plan_like(&baseline)
            .map_err(anyhow::Error::from)
            .and_then(|plan| crate::cli::progress::execute(&plan, &vm_like(&baseline, &args.vm)))
        {
            Ok(r) => r,
            Err(e) => {
                eprintln!(
                    "breakout gate: running the suite failed: {}",
                    terminal(&format!("{e:#}"))
                );
                return 2;
            }
        },
    };
    for (report, what) in [(&baseline, "the baseline"), (&current, "the results")] {
        if !report.channel_problems.is_empty() {
            eprintln!(
                "breakout gate: {what} come from a run whose result channel was written to by something other than the orchestrator, or damaged; it is not judged:"
            );
            for p in &report.channel_problems {
                eprintln!("  - {}", terminal(p));
            }
            return 2;
        }
    }
    let options = gate::GateOptions {
        strict_kernel: args.strict_kernel,
    };
    let verdict = gate::compare_with(&baseline, &current, options);
    let name = args.baseline.display().to_string();
    match args.format {
        // The findings quote the results (cells, reasons): shown, not sent to the terminal.
        GateFormat::Text => print!("{}", terminal(&gate::render(&verdict, &args.baseline))),
        GateFormat::Markdown => print!(
            "{}",
            report::render_gated(&current, report::Format::Markdown, Some((&verdict, &name)))
        ),
        GateFormat::Junit => {
            print!(
                "{}",
                report::render_gated(&current, report::Format::Junit, Some((&verdict, &name)))
            );
            // The verdict in one line on stderr too, for a log next to the XML.
            let text = gate::render(&verdict, &args.baseline);
            eprintln!("{}", terminal(text.lines().next().unwrap_or_default()));
        }
    }
    if verdict.passed() {
        0
    } else {
        1
    }
}

/// The VM arguments of a rerun: a baseline of several kernels is rerun on the kernels it names
/// unless `--kernel` says otherwise.
fn vm_like(
    baseline: &crate::model::RunReport,
    vm: &crate::suite::host::VmArgs,
) -> crate::suite::host::VmArgs {
    let mut vm = vm.clone();
    if vm.kernels.is_empty() {
        if let Some(selection) = &baseline.selection {
            vm.kernels = selection.kernels.iter().map(PathBuf::from).collect();
        }
    }
    vm
}
