//! A compact Markdown matrix for a pull-request comment: one row per probe, one column per
//! profile, an emoji for the depth and the sufficient layers; the environment folded below.

use super::cell::{layers_text, Shade, Tally};
use super::environment;
use super::escape::markdown_cell;
use super::matrix::Matrix;
use crate::model::{ProbeResult, RunReport};
use std::fmt::Write;

fn mark(shade: Shade) -> &'static str {
    match shade {
        Shade::Escaped => "🔴",
        Shade::Depth(1) => "🟠",
        Shade::Depth(2) => "🟡",
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

pub fn render(report: &RunReport) -> String {
    let matrix = Matrix::of(report);
    let mut out = String::from("### breakout results\n\n");
    for profile in &matrix.profiles {
        let tally = Tally::of(matrix.column(profile));
        let shallow = matrix
            .column(profile)
            .filter(|r| super::matrix::one_layer_from_escaping(r))
            .count();
        let _ = writeln!(
            out,
            "- **{}**: {} escaped, {} blocked ({} one layer from escaping), {} inconclusive, {} skipped",
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
        "\n🔴 escaped · 🟠 blocked by one layer only · 🟡 two layers · 🟢 three or more · \
🟣 no single layer / unexplained · ⚪ inconclusive · ⏭️ skipped · ~ inferred from evidence · \
caps(CAP_X): the capability that, kept, lets it through · seccomp(call): the syscall denied\n",
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
            inferred.join(", ")
        );
    }
    let env = &report.environment;
    let _ = write!(
        out,
        "\n<details><summary>Environment: {}</summary>\n\n- LSMs: {}\n- sysctls: {}\n- CPU vulnerabilities: {}\n- breakout {} (results schema {}); time {} (boot {}, probe runs {}, ablation {})\n\n</details>\n",
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
    out
}

fn seconds(ms: u64) -> String {
    format!("{}.{:01} s", ms / 1000, (ms % 1000) / 100)
}
