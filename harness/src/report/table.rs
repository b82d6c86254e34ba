//! The terminal matrix: probes x profiles, each cell the verdict and the sufficient layers.
//! Colour only when asked (the caller decides from NO_COLOR and whether stdout is a terminal).
//! Every text from the run goes through [`terminal`] (a name, a kernel release or a cell could
//! carry a probe's escape sequences); the only escape sequences in the output are our colours.

use super::cell::{cell_text, Shade, Tally};
use super::environment;
use super::escape::terminal;
use super::matrix::Matrix;
use crate::model::RunReport;
use std::fmt::Write;
use std::io::IsTerminal;

/// Colour is used when stdout is a terminal and NO_COLOR is unset or empty
/// (<https://no-color.org>).
pub fn colour_for_stdout() -> bool {
    colour_enabled(
        std::env::var_os("NO_COLOR").as_deref(),
        std::io::stdout().is_terminal(),
    )
}

/// The rule behind [`colour_for_stdout`], given NO_COLOR's value and whether the output is a
/// terminal.
pub fn colour_enabled(no_color: Option<&std::ffi::OsStr>, is_terminal: bool) -> bool {
    let no_color = no_color.is_some_and(|v| !v.is_empty());
    is_terminal && !no_color
}

fn ansi(shade: Shade) -> &'static str {
    match shade {
        Shade::Escaped => "\x1b[1;31m",
        Shade::Depth(1) => "\x1b[38;5;208m",
        Shade::Depth(_) => "\x1b[32m",
        Shade::Unattributed => "\x1b[35m",
        Shade::Inconclusive | Shade::Skipped => "\x1b[2m",
    }
}

const RESET: &str = "\x1b[0m";

pub fn render(report: &RunReport, colour: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "breakout {} (results schema {})",
        terminal(&report.breakout_version),
        report.schema_version
    );
    if !report.multi_kernel() {
        let (matrix, summary, width) = kernel_part(report, colour);
        out.push_str(&matrix);
        configurations(&mut out, report, width);
        out.push_str(&summary);
    } else {
        // A kernel dimension: each kernel's environment, matrix and summary, then the cells
        // that differ by kernel.
        let mut width = 0;
        for kernel in report.kernel_releases() {
            let _ = writeln!(out, "\n=== kernel {} ===", terminal(&kernel));
            let (matrix, summary, w) = kernel_part(&report.on_kernel(&kernel), colour);
            out.push_str(&matrix);
            out.push_str(&summary);
            width = width.max(w);
        }
        configurations(&mut out, report, width);
        out.push_str(&differs_by_kernel(report));
    }
    let t = &report.timings;
    let _ = writeln!(
        out,
        "\ntime: {} total (boot {}, probe runs {}, ablation {}{})",
        seconds(t.total_ms),
        seconds(t.boot_ms),
        seconds(t.probes_ms),
        seconds(t.ablation_ms),
        if t.workloads_ms > 0 {
            format!(", workloads {}", seconds(t.workloads_ms))
        } else {
            String::new()
        }
    );
    if let Some(l) = &t.launches {
        let _ = writeln!(
            out,
            "launches: probe runs {}; ablation {}",
            l.probes.summary(),
            l.ablation.summary()
        );
    }
    out.push_str(LEGEND);
    out
}

/// "differs by kernel:" and one line per cell whose verdict or layers differ by kernel, with
/// each kernel's cell; nothing for a run on one kernel.
pub fn differs_by_kernel(report: &RunReport) -> String {
    if !report.multi_kernel() {
        return String::new();
    }
    let differences = super::matrix::kernel_differences(report);
    let mut out = format!("\ndiffers by kernel ({} cell(s)):\n", differences.len());
    if differences.is_empty() {
        out.push_str("  none: every cell is the same on every kernel\n");
    }
    for d in &differences {
        let cells: Vec<String> = d.cells.iter().map(|(k, c)| format!("{k}: {c}")).collect();
        let _ = writeln!(
            out,
            "  {} under {}: {}",
            d.probe,
            d.profile,
            cells.join("; ")
        );
    }
    terminal(&out).into_owned()
}

/// The configurations and their layers.
fn configurations(out: &mut String, report: &RunReport, probe_width: usize) {
    out.push_str("\nconfigurations:\n");
    for info in &report.profiles {
        let layers: Vec<&str> = info.layers.iter().map(|l| l.name()).collect();
        let _ = writeln!(
            out,
            "  {:probe_width$}  {}{}: {}",
            terminal(&info.name),
            terminal(&info.runtime),
            if info.inferred {
                " (layers inferred from its flags; attribution from evidence)"
            } else {
                ""
            },
            if layers.is_empty() {
                "no layers".to_string()
            } else {
                layers.join(", ")
            }
        );
    }
}

/// The environment and matrix of a run on one kernel, its summary, and the probe column's width.
fn kernel_part(report: &RunReport, colour: bool) -> (String, String, usize) {
    let matrix = Matrix::of(report);
    let mut out = String::new();
    out.push_str(&terminal(&environment::text_block(&report.environment)));
    out.push('\n');

    let probe_width = matrix
        .probes
        .iter()
        .map(|p| terminal(p).len())
        .chain(std::iter::once("probe".len()))
        .max()
        .unwrap_or(5);
    let widths: Vec<usize> = matrix
        .profiles
        .iter()
        .map(|profile| {
            matrix
                .probes
                .iter()
                .map(|probe| {
                    matrix
                        .cell(probe, profile)
                        .map_or(1, |r| terminal(&cell_text(r)).len())
                })
                .chain(std::iter::once(terminal(profile).len()))
                .max()
                .unwrap_or(1)
        })
        .collect();

    let _ = write!(out, "{:probe_width$}", "probe");
    for (profile, width) in matrix.profiles.iter().zip(&widths) {
        let _ = write!(out, "  {:width$}", terminal(profile));
    }
    trim_line_end(&mut out);
    out.push('\n');
    for probe in &matrix.probes {
        let _ = write!(out, "{:probe_width$}", terminal(probe));
        for (profile, width) in matrix.profiles.iter().zip(&widths) {
            out.push_str("  ");
            match matrix.cell(probe, profile) {
                None => {
                    let _ = write!(out, "{:width$}", "-");
                }
                Some(result) => {
                    let text = format!("{:width$}", terminal(&cell_text(result)));
                    if colour {
                        let _ = write!(out, "{}{text}{RESET}", ansi(Shade::of(result)));
                    } else {
                        out.push_str(&text);
                    }
                }
            }
        }
        trim_line_end(&mut out);
        out.push('\n');
    }

    let grid = crate::workloads::WorkloadGrid::of(report);
    if !grid.is_empty() {
        let name_width = grid
            .workloads
            .iter()
            .map(|w| terminal(w).len())
            .chain(std::iter::once("workload".len()))
            .max()
            .unwrap_or(8);
        let widths: Vec<usize> = grid
            .profiles
            .iter()
            .map(|profile| {
                grid.workloads
                    .iter()
                    .map(|w| {
                        grid.cell(w, profile)
                            .map_or(1, |r| terminal(&crate::workloads::cell_text(r)).len())
                    })
                    .chain(std::iter::once(terminal(profile).len()))
                    .max()
                    .unwrap_or(1)
            })
            .collect();
        out.push('\n');
        let _ = write!(out, "{:name_width$}", "workload");
        for (profile, width) in grid.profiles.iter().zip(&widths) {
            let _ = write!(out, "  {:width$}", terminal(profile));
        }
        trim_line_end(&mut out);
        out.push('\n');
        for w in &grid.workloads {
            let _ = write!(out, "{:name_width$}", terminal(w));
            for (profile, width) in grid.profiles.iter().zip(&widths) {
                out.push_str("  ");
                let (text, broken) = match grid.cell(w, profile) {
                    None => ("-".to_string(), false),
                    Some(r) => (
                        terminal(&crate::workloads::cell_text(r)).into_owned(),
                        r.verdict == breakout_attacks::workloads::WorkloadVerdict::Broken,
                    ),
                };
                let text = format!("{text:width$}");
                if colour && broken {
                    let _ = write!(out, "{}{text}{RESET}", ansi(Shade::Escaped));
                } else {
                    out.push_str(&text);
                }
            }
            trim_line_end(&mut out);
            out.push('\n');
        }
    }

    // Profile names line up even when no probe ran (a workloads-only run).
    let label_width = report
        .profiles
        .iter()
        .map(|p| terminal(&p.name).len())
        .chain(std::iter::once(probe_width))
        .max()
        .unwrap_or(probe_width);
    let mut summary = String::from("\nsummary:\n");
    for profile in &matrix.profiles {
        let tally = Tally::of(matrix.column(profile));
        let shallow = matrix
            .column(profile)
            .filter(|r| super::matrix::one_layer_from_escaping(r))
            .count();
        let _ = write!(
            summary,
            "  {:label_width$}  {} escaped, {} blocked ({} one layer from escaping), {} inconclusive, {} skipped",
            terminal(profile), tally.escaped, tally.blocked, shallow, tally.inconclusive, tally.skipped
        );
        match crate::workloads::summary(&report.workloads, profile) {
            Some(w) => {
                let _ = writeln!(summary, "; {}", terminal(&w));
            }
            None => summary.push('\n'),
        }
    }
    // Profiles that ran workloads only.
    for profile in grid
        .profiles
        .iter()
        .filter(|p| !matrix.profiles.contains(p))
    {
        if let Some(w) = crate::workloads::summary(&report.workloads, profile) {
            let _ = writeln!(
                summary,
                "  {:label_width$}  {}",
                terminal(profile),
                terminal(&w)
            );
        }
    }
    (out, summary, label_width)
}

const LEGEND: &str =
    "\nlegend: ESCAPED = the outside oracle saw the effect; blocked: L1, L2 = each listed layer \
alone still blocks it; L! = without this layer it escapes (one layer from escaping, depth 1; \
otherwise no single layer off lets it out, depth 2); caps(CAP_X) = the capability that, kept, \
lets it through; seccomp(call) = the syscall the filter denied; combined(A+B) = no single layer \
suffices, A and B are needed (+ some of C|D: it holds with all of those, not with none); \
unexplained = the probe's candidate layers do not account for the block; ~ = inferred from \
evidence, no ablation.\n";

fn seconds(ms: u64) -> String {
    format!("{}.{:01}s", ms / 1000, (ms % 1000) / 100)
}

fn trim_line_end(out: &mut String) {
    let trimmed = out.trim_end_matches(' ').len();
    out.truncate(trimmed);
}
