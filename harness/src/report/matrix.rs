//! The probes x profiles grid every renderer draws, in a stable order: probes in the order the
//! run first reported them, profiles in the order of the run's configuration list.

use super::cell::cell_text;
use crate::model::{ProbeResult, RunReport};
use std::collections::HashMap;

pub struct Matrix<'a> {
    pub probes: Vec<&'a str>,
    pub profiles: Vec<&'a str>,
    cells: HashMap<(&'a str, &'a str), &'a ProbeResult>,
}

impl<'a> Matrix<'a> {
    pub fn of(report: &'a RunReport) -> Matrix<'a> {
        let mut profiles: Vec<&str> = report.profiles.iter().map(|p| p.name.as_str()).collect();
        let mut probes: Vec<&str> = Vec::new();
        let mut cells = HashMap::new();
        for r in &report.results {
            if !probes.contains(&r.probe.as_str()) {
                probes.push(&r.probe);
            }
            // A result for a configuration the header did not list still gets a column.
            if !profiles.contains(&r.profile.as_str()) {
                profiles.push(&r.profile);
            }
            cells.insert((r.probe.as_str(), r.profile.as_str()), r);
        }
        Matrix {
            probes,
            profiles,
            cells,
        }
    }

    /// None when the pair was not part of the run.
    pub fn cell(&self, probe: &str, profile: &str) -> Option<&'a ProbeResult> {
        self.cells.get(&(probe, profile)).copied()
    }

    /// The results of one profile, in probe order.
    pub fn column(&self, profile: &str) -> impl Iterator<Item = &'a ProbeResult> + '_ {
        let profile = profile.to_string();
        self.probes
            .iter()
            .filter_map(move |probe| self.cell(probe, &profile))
    }
}

/// One probe on which the configurations' verdicts disagree: each configuration's cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disagreement {
    pub probe: String,
    /// The kernel release these cells ran on, for a run on several kernels (one row per kernel
    /// on which they disagree); None for a run on one kernel.
    pub kernel: Option<String>,
    /// (configuration, cell text), in column order; "not run" where the pair did not run.
    pub cells: Vec<(String, String)>,
}

impl Disagreement {
    /// The row's name: the probe, and the kernel on a run on several kernels.
    pub fn label(&self) -> String {
        match &self.kernel {
            Some(k) => format!("{} on {k}", self.probe),
            None => self.probe.clone(),
        }
    }
}

/// The probes whose verdict is not the same under every configuration, in probe order (kernel
/// by kernel, each row naming its kernel, on a run on several kernels). The
/// positive control breakout added on its own (no compared configuration was without layers)
/// is left out: it differs from every block by design.
pub fn disagreements(report: &RunReport) -> Vec<Disagreement> {
    let kernels = report.kernel_releases();
    if kernels.len() < 2 {
        return disagreements_on(report, None);
    }
    // The grid is keyed by (probe, configuration): on several kernels the cells of one kernel
    // would overwrite another's, so each kernel is compared on its own.
    kernels
        .iter()
        .flat_map(|k| disagreements_on(&report.on_kernel(k), Some(k)))
        .collect()
}

fn disagreements_on(report: &RunReport, kernel: Option<&String>) -> Vec<Disagreement> {
    let mut matrix = Matrix::of(report);
    if report
        .selection
        .as_ref()
        .is_some_and(|s| s.added_positive_control)
    {
        matrix
            .profiles
            .retain(|p| !crate::model::configuration_without_layers(report, p));
    }
    matrix
        .probes
        .iter()
        .filter(|probe| {
            let verdicts: Vec<_> = matrix
                .profiles
                .iter()
                .map(|profile| matrix.cell(probe, profile).map(|r| r.verdict))
                .collect();
            verdicts.windows(2).any(|w| w[0] != w[1])
        })
        .map(|probe| Disagreement {
            probe: probe.to_string(),
            kernel: kernel.cloned(),
            cells: matrix
                .profiles
                .iter()
                .map(|profile| {
                    let text = matrix
                        .cell(probe, profile)
                        .map_or("not run".to_string(), cell_text);
                    (profile.to_string(), text)
                })
                .collect(),
        })
        .collect()
}

/// Blocked results one switched-off layer away from an escape: depth 1 (some layer is
/// necessary), the same rule that colours the cell orange.
pub fn one_layer_from_escaping(r: &ProbeResult) -> bool {
    r.verdict == breakout_attacks::Verdict::Blocked
        && r.attribution.as_ref().is_some_and(|a| a.depth == 1)
}

/// One (probe, configuration) cell whose verdict or attribution is not the same on every kernel
/// of a run on several kernels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelDifference {
    pub probe: String,
    pub profile: String,
    /// (kernel release, cell text), in the run's kernel order; "not run" where the pair did
    /// not run on that kernel.
    pub cells: Vec<(String, String)>,
    /// The verdicts differ (not only the layers credited).
    pub verdict_differs: bool,
}

/// The cells that differ by kernel, in probe and column order (empty for a run on one kernel).
pub fn kernel_differences(report: &RunReport) -> Vec<KernelDifference> {
    let kernels = report.kernel_releases();
    if kernels.len() < 2 {
        return Vec::new();
    }
    let parts: Vec<RunReport> = kernels.iter().map(|k| report.on_kernel(k)).collect();
    let matrices: Vec<Matrix> = parts.iter().map(Matrix::of).collect();
    let whole = Matrix::of(report);
    let mut out = Vec::new();
    for probe in &whole.probes {
        for profile in &whole.profiles {
            let results: Vec<Option<&ProbeResult>> =
                matrices.iter().map(|m| m.cell(probe, profile)).collect();
            if results.iter().all(Option::is_none) {
                continue;
            }
            let cells: Vec<(String, String)> = kernels
                .iter()
                .zip(&results)
                .map(|(k, r)| (k.clone(), r.map_or("not run".to_string(), cell_text)))
                .collect();
            if cells.windows(2).all(|w| w[0].1 == w[1].1) {
                continue;
            }
            let verdicts: Vec<_> = results.iter().map(|r| r.map(|r| r.verdict)).collect();
            out.push(KernelDifference {
                probe: probe.to_string(),
                profile: profile.to_string(),
                cells,
                verdict_differs: verdicts.windows(2).any(|w| w[0] != w[1]),
            });
        }
    }
    out
}
