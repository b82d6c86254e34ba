//! report.md, sized for a pull-request comment: what needs a reviewer first (the gate's
//! regressions, or without a baseline the escapes and failed positive controls), then what
//! changed against the baseline, then the matrix (one row per probe, one column per profile, an
//! emoji for the depth and the layers) and the environment, both folded in `<details>`.

use super::cell::{layers_text, Shade, Tally};
use super::environment;
use super::escape::markdown_cell;
use super::matrix::Matrix;
use crate::model::gate::GateReport;
use crate::model::{ProbeResult, RunReport};
use breakout_attacks::Verdict;
use std::fmt::Write;

fn mark(shade: Shade) -> &'static str {
    match shade {
        Shade::Escaped => "🔴",
        Shade::Depth(1) => "🟠",
        Shade::Depth(_) => "🟢",
        Shade::Unattributed => "🟣",
        Shade::Inconclusive => "⚪",
        Shade::Skipped => "⏭️",
    }
}

fn cell(result: &ProbeResult) -> String {
    let shade = Shade::of(result);
    let text = match shade {
        Shade::Escaped => "**escaped**".to_string(),
        Shade::Inconclusive => "inconclusive".to_string(),
        Shade::Skipped => "skipped".to_string(),
        Shade::Depth(_) | Shade::Unattributed => match &result.attribution {
            Some(a) => {
                let text = markdown_cell(&layers_text(a));
                if a.inferred {
                    format!("{text} ~")
                } else {
                    text
                }
            }
            None => "blocked".to_string(),
        },
    };
    format!("{} {text}", mark(shade))
}

/// Both halves per profile ("2 escaped / 39 blocked; 12 of 12 workloads work") and the
/// workloads x profiles table, with the failing step of every broken workload.
fn workloads_section(out: &mut String, report: &RunReport) {
    let grid = crate::workloads::WorkloadGrid::of(report);
    if grid.is_empty() {
        return;
    }
    out.push_str("\n#### Both halves: what escapes and what still works\n\n");
    for profile in &grid.profiles {
        let _ = writeln!(
            out,
            "- **{}**: {}",
            markdown_cell(profile),
            markdown_cell(&crate::workloads::both_halves(report, profile))
        );
    }
    out.push_str("\n| workload |");
    for profile in &grid.profiles {
        let _ = write!(out, " {} |", markdown_cell(profile));
    }
    out.push_str("\n|---|");
    for _ in &grid.profiles {
        out.push_str("---|");
    }
    out.push('\n');
    for w in &grid.workloads {
        let _ = write!(out, "| `{}` |", markdown_cell(w));
        for profile in &grid.profiles {
            match grid.cell(w, profile) {
                Some(r) => {
                    let mark = match r.verdict {
                        breakout_attacks::workloads::WorkloadVerdict::Works => "✅",
                        breakout_attacks::workloads::WorkloadVerdict::Broken => "❌",
                        breakout_attacks::workloads::WorkloadVerdict::Skipped => "⏭️",
                    };
                    let _ = write!(
                        out,
                        " {mark} {} |",
                        markdown_cell(&crate::workloads::cell_text(r))
                    );
                }
                None => out.push_str(" – |"),
            }
        }
        out.push('\n');
    }
}

/// report.md for a run on its own.
pub fn render(report: &RunReport) -> String {
    render_gated(report, None)
}

/// report.md of a comparison: where the configurations differ, then the run's report.
pub fn render_compared(report: &RunReport) -> String {
    let whole = render(report);
    let title = "### breakout results\n\n";
    let rest = whole.strip_prefix(title).unwrap_or(&whole);
    let mut out = String::from(title);
    let differing = super::matrix::disagreements(report);
    match differing.first() {
        None => out.push_str(
            "#### Where they differ\n\nNowhere: every probe has the same verdict under each configuration.\n\n",
        ),
        Some(first) => {
            let _ = writeln!(
                out,
                "#### Where they differ ({} probe(s))\n",
                differing.len()
            );
            out.push_str("| probe |");
            for (profile, _) in &first.cells {
                let _ = write!(out, " {} |", markdown_cell(profile));
            }
            out.push_str("\n|---|");
            for _ in &first.cells {
                out.push_str("---|");
            }
            out.push('\n');
            for d in &differing {
                let _ = write!(out, "| `{}` |", markdown_cell(&d.label()));
                for (_, text) in &d.cells {
                    let _ = write!(out, " {} |", markdown_cell(text));
                }
                out.push('\n');
            }
            out.push('\n');
        }
    }
    out.push_str(rest);
    out
}

/// report.md; with `gate` (the gate's findings and the baseline's name) it leads with them.
pub fn render_gated(report: &RunReport, gate: Option<(&GateReport, &str)>) -> String {
    let mut out = String::from("### breakout results\n\n");
    channel_problems_section(&mut out, report);
    match gate {
        Some((gate, baseline)) => gate_sections(&mut out, gate, baseline),
        None => findings_section(&mut out, report),
    }
    if !report.multi_kernel() {
        matrix_block(&mut out, report, "");
        environment_block(&mut out, report, "");
    } else {
        differs_by_kernel(&mut out, report);
        for kernel in report.kernel_releases() {
            let part = report.on_kernel(&kernel);
            let label = format!(" on kernel {}", markdown_cell(&kernel));
            matrix_block(&mut out, &part, &label);
            environment_block(&mut out, &part, &label);
        }
    }
    out
}

/// What went wrong on the result channel: it leads, because it says the rest is not trusted.
fn channel_problems_section(out: &mut String, report: &RunReport) {
    if report.channel_problems.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "#### Not trusted: the result channel was written to by something other than the orchestrator, or damaged ({})\n",
        report.channel_problems.len()
    );
    for p in &report.channel_problems {
        let _ = writeln!(out, "- {}", markdown_cell(p));
    }
    out.push('\n');
}

/// The cells whose verdict or layers differ by kernel, each kernel's cell side by side.
fn differs_by_kernel(out: &mut String, report: &RunReport) {
    let kernels = report.kernel_releases();
    let differences = super::matrix::kernel_differences(report);
    let _ = writeln!(
        out,
        "\n#### Differs by kernel ({} cell(s))\n",
        differences.len()
    );
    if differences.is_empty() {
        out.push_str("Every cell is the same on every kernel.\n");
        return;
    }
    out.push_str("| probe | configuration |");
    for k in &kernels {
        let _ = write!(out, " {} |", markdown_cell(k));
    }
    out.push_str("\n|---|---|");
    for _ in &kernels {
        out.push_str("---|");
    }
    out.push('\n');
    for d in &differences {
        let _ = write!(
            out,
            "| `{}` | {} |",
            markdown_cell(&d.probe),
            markdown_cell(&d.profile)
        );
        for (_, cell) in &d.cells {
            let _ = write!(out, " {} |", markdown_cell(cell));
        }
        out.push('\n');
    }
}

/// The matrix of a run on one kernel, folded; `label` names the kernel in a run on several.
fn matrix_block(out: &mut String, report: &RunReport, label: &str) {
    let matrix = Matrix::of(report);
    let _ = writeln!(
        out,
        "\n<details><summary>Matrix{label}: {} probe(s) x {} configuration(s)</summary>\n",
        matrix.probes.len(),
        matrix.profiles.len()
    );
    for profile in &matrix.profiles {
        let tally = Tally::of(matrix.column(profile));
        let shallow = matrix
            .column(profile)
            .filter(|r| super::matrix::one_layer_from_escaping(r))
            .count();
        let control = if crate::model::configuration_without_layers(report, profile) {
            " (positive control: no layers, every probe must escape)"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "- **{}**{control}: {} escaped, {} blocked ({} one layer from escaping), {} inconclusive, {} skipped",
            markdown_cell(profile),
            tally.escaped,
            tally.blocked,
            shallow,
            tally.inconclusive,
            tally.skipped
        );
    }
    out.push_str("\n| probe |");
    for profile in &matrix.profiles {
        let _ = write!(out, " {} |", markdown_cell(profile));
    }
    out.push_str("\n|---|");
    for _ in &matrix.profiles {
        out.push_str("---|");
    }
    out.push('\n');
    for probe in &matrix.probes {
        let _ = write!(out, "| `{}` |", markdown_cell(probe));
        for profile in &matrix.profiles {
            match matrix.cell(probe, profile) {
                Some(result) => {
                    let _ = write!(out, " {} |", cell(result));
                }
                None => out.push_str(" – |"),
            }
        }
        out.push('\n');
    }
    out.push_str(
        "\n🔴 escaped · 🟠 one layer from escaping (depth 1: switching one layer off lets it out) · \
🟢 no single layer off lets it out (depth 2) · 🟣 unexplained or not attributed · ⚪ inconclusive · \
⏭️ skipped · `!` a layer without which it escapes · ~ inferred from evidence · caps(CAP_X): the \
capability that, kept, lets it through · seccomp(call): the syscall denied\n",
    );
    let inferred: Vec<&str> = report
        .profiles
        .iter()
        .filter(|p| p.inferred)
        .map(|p| p.name.as_str())
        .collect();
    if !inferred.is_empty() {
        let _ = writeln!(
            out,
            "\nAttribution for {} is inferred from evidence (external runtimes cannot be ablated).",
            markdown_cell(&inferred.join(", "))
        );
    }
    out.push_str("\n</details>\n");
    workloads_section(out, report);
}

/// The environment of a run on one kernel, folded.
fn environment_block(out: &mut String, report: &RunReport, label: &str) {
    let env = &report.environment;
    let _ = write!(
        out,
        "\n<details><summary>Environment{label}: {}</summary>\n\n- LSMs: {}\n- sysctls: {}\n- CPU vulnerabilities: {}\n- breakout {} (results schema {}); time {} (boot {}, probe runs {}, ablation {})\n\n</details>\n",
        markdown_cell(&environment::headline(env)),
        markdown_cell(&environment::lsms(env)),
        markdown_cell(&environment::sysctls(env)),
        markdown_cell(&environment::vulnerabilities_summary(env)),
        markdown_cell(&report.breakout_version),
        report.schema_version,
        seconds(report.timings.total_ms),
        seconds(report.timings.boot_ms),
        seconds(report.timings.probes_ms),
        seconds(report.timings.ablation_ms),
    );
}

/// The gate's verdict, its notes, the regressions, then what changed and what is new.
fn gate_sections(out: &mut String, gate: &GateReport, baseline: &str) {
    if gate.passed() {
        let _ = writeln!(
            out,
            "**Gate passed**: {} result(s) compared with `{}`, no regression.",
            gate.compared,
            markdown_cell(baseline)
        );
    } else {
        let _ = writeln!(
            out,
            "**Gate FAILED**: {} regression(s) against `{}`.",
            gate.regressions.len(),
            markdown_cell(baseline)
        );
    }
    for note in &gate.notes {
        let _ = writeln!(out, "\n> {}", markdown_cell(note));
    }
    if !gate.regressions.is_empty() {
        out.push_str("\n#### Regressions\n\n");
        for r in &gate.regressions {
            let _ = writeln!(out, "- 🔴 {}", markdown_cell(&r.to_string()));
        }
    }
    out.push_str("\n#### Changed against the baseline\n\n");
    if gate.changes.is_empty() && gate.new_results.is_empty() {
        out.push_str("Nothing.\n");
    }
    for change in &gate.changes {
        let _ = writeln!(out, "- {}", markdown_cell(change));
    }
    for n in &gate.new_results {
        let _ = writeln!(
            out,
            "- new (not in the baseline): {}`{}` under {}: {}",
            markdown_cell(&crate::model::gate::kernel_prefix(&n.kernel)),
            markdown_cell(&n.probe),
            markdown_cell(&n.profile),
            markdown_cell(&n.cell)
        );
    }
}

/// Without a baseline: escapes under configurations with layers, failed positive controls.
fn findings_section(out: &mut String, report: &RunReport) {
    let mut escapes = Vec::new();
    let mut controls = Vec::new();
    for r in &report.results {
        let control = crate::model::configuration_without_layers(report, &r.profile);
        match (control, r.verdict) {
            (false, Verdict::Escaped) => escapes.push(r),
            (true, Verdict::Blocked | Verdict::Inconclusive) => controls.push(r),
            _ => {}
        }
    }
    if escapes.is_empty() && controls.is_empty() {
        out.push_str(
            "No escape under a configuration with layers; every positive control escaped.\n",
        );
    }
    if !escapes.is_empty() {
        let _ = writeln!(out, "#### Escapes ({})\n", escapes.len());
        for r in escapes {
            let _ = writeln!(
                out,
                "- 🔴 {}`{}` under {}: {}",
                kernel_label(report, r),
                markdown_cell(&r.probe),
                markdown_cell(&r.profile),
                markdown_cell(&r.reason)
            );
        }
    }
    if !controls.is_empty() {
        let _ = writeln!(
            out,
            "\n#### Positive controls that did not escape ({}): these probes prove nothing\n",
            controls.len()
        );
        for r in controls {
            let _ = writeln!(
                out,
                "- {}`{}` under {}: {}: {}",
                kernel_label(report, r),
                markdown_cell(&r.probe),
                markdown_cell(&r.profile),
                crate::model::verdict_name(r.verdict),
                markdown_cell(&r.reason)
            );
        }
    }
}

/// "[release] " before a result of a run on several kernels.
fn kernel_label(report: &RunReport, r: &ProbeResult) -> String {
    if report.multi_kernel() {
        markdown_cell(&crate::model::gate::kernel_prefix(report.kernel_of(r)))
    } else {
        String::new()
    }
}

fn seconds(ms: u64) -> String {
    format!("{}.{:01} s", ms / 1000, (ms % 1000) / 100)
}
