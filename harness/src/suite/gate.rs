//! The regression gate: compare a run against a baseline and say what got worse.
//!
//! The run is judged against the part of the baseline it selected (its recorded profiles and
//! probes), so a partial run is not a run with missing results. Results that record no selection
//! (schema 1, or the field removed) are refused by [`check_scope`] unless the caller accepts
//! "the pairs they hold" as their scope: from the contents alone a result deleted from the file
//! cannot be told from a pair the run did not select. Results outside their own selection are
//! refused too. Worse means, per (profile, probe) of that part:
//! - a new escape (the baseline did not escape, the run did);
//! - a block that is no longer a block (inconclusive, skipped): the assurance is gone;
//! - a shallower block: a layer the baseline credited as sufficient is not any more, or the depth
//!   fell (now one layer from an escape);
//! - a block no longer explained: the baseline's layers explained it, the run's do not (depth
//!   fell to 0, or the run with every candidate off no longer escapes). Layers and depth only
//!   when both sides were attributed: a `--no-ablation` run against an ablated baseline is
//!   judged on verdicts only, and the gate says so;
//! - a probe gone missing from the run although the run selected it (on any kernel the run
//!   used, even one of whose results none is left);
//! - a lost positive control: under a configuration with no layers the probe must escape;
//! - a newly broken workload: it worked under the profile in the baseline and does not now (or
//!   is missing although the run selected it). A workload that works now and did not is a change.
//!
//! Results new to the baseline are printed with their verdict; a new one that escapes under a
//! configuration with layers, or a new positive control that did not escape, is a regression
//! too: a new probe that gets out is news the gate must not pass over. A kernel release other
//! than the baseline's is one line, and a failure with `--strict-kernel`.

pub use crate::model::gate::{GateReport, NewResult, Regression};
use crate::model::{configuration_without_layers, verdict_name, Coverage, ProbeResult, RunReport};
use breakout_attacks::{Layer, Verdict};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error("cannot read {what} {path}: {source}")]
    Read {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} {path} is not a breakout results file: {source}")]
    Parse {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: crate::model::UpgradeError,
    },
    #[error("{what} {path} record no `selection` ({why}): the gate cannot know which baseline results they were meant to cover, and a result removed from the file would pass unnoticed, so they are not judged (exit 2). Judge results written by this breakout (`breakout run --out DIR` writes the selection), or pass --scope-from-contents to take the (profile, probe) pairs the file holds as its scope")]
    NoSelection {
        what: &'static str,
        path: PathBuf,
        why: String,
    },
    #[error("{what} {path} hold {count} result(s) outside their own `selection`: {pairs}; a run never writes a result it did not select (was the file edited?), so they are not judged (exit 2)")]
    OutsideSelection {
        what: &'static str,
        path: PathBuf,
        count: usize,
        pairs: String,
    },
    #[error("cannot write baseline {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Load a results file (results.json or a baseline) of any supported schema version (older
/// versions are upgraded, see [`crate::model::upgrade`]).
pub fn load(path: &Path, what: &'static str) -> Result<RunReport, GateError> {
    let text = std::fs::read_to_string(path).map_err(|source| GateError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })?;
    crate::model::upgrade(&text).map_err(|source| GateError::Parse {
        what,
        path: path.to_path_buf(),
        source,
    })
}

/// Whether the results to judge say what they cover. They must record their `selection`
/// (every run since schema 2 does), unless `scope_from_contents`: then they are taken to cover
/// the pairs they hold, as [`RunReport::covered`] does, and the gate says so in a note. With or
/// without it, a result or workload outside the recorded selection (another profile, probe,
/// workload, or a probe outside the file's shard) is refused: the gate would pass over it.
pub fn check_scope(
    report: &RunReport,
    path: &Path,
    what: &'static str,
    scope_from_contents: bool,
) -> Result<(), GateError> {
    let Some(selection) = &report.selection else {
        if scope_from_contents {
            return Ok(());
        }
        let why = if report.schema_version < 2 {
            format!(
                "schema {}: files of schema 1 did not record it",
                report.schema_version
            )
        } else {
            format!(
                "the field is missing or null in a file of schema {}, which every run writes",
                report.schema_version
            )
        };
        return Err(GateError::NoSelection {
            what,
            path: path.to_path_buf(),
            why,
        });
    };
    let scope = report.covered();
    let mut outside: Vec<String> = report
        .results
        .iter()
        .filter(|r| !scope.contains(&r.profile, &r.probe))
        .map(|r| format!("{} under {}", r.probe, r.profile))
        .collect();
    outside.extend(
        report
            .workloads
            .iter()
            .filter(|w| {
                !selection.workloads.contains(&w.workload)
                    || !selection.profiles.contains(&w.profile)
            })
            .map(|w| format!("workload {} under {}", w.workload, w.profile)),
    );
    if outside.is_empty() {
        return Ok(());
    }
    let count = outside.len();
    const SHOWN: usize = 5;
    let mut pairs = outside[..count.min(SHOWN)].join(", ");
    if count > SHOWN {
        pairs.push_str(&format!(" and {} more", count - SHOWN));
    }
    Err(GateError::OutsideSelection {
        what,
        path: path.to_path_buf(),
        count,
        pairs,
    })
}

/// Write a run as a baseline (the same format as results.json).
pub fn write_baseline(report: &RunReport, path: &Path) -> Result<(), GateError> {
    let mut text = serde_json::to_string_pretty(report).expect("the result model serializes");
    text.push('\n');
    std::fs::write(path, text).map_err(|source| GateError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// How the gate judges.
#[derive(Debug, Clone, Copy, Default)]
pub struct GateOptions {
    /// A kernel release other than the baseline's is a failure, not a note.
    pub strict_kernel: bool,
}

/// Judge one result against its baseline entry (None: the run lacks it), comparing layers too.
/// `no_layers`: the configuration switches no layer on (a positive control).
pub fn judge(
    baseline: &ProbeResult,
    current: Option<&ProbeResult>,
    no_layers: bool,
) -> Result<Option<String>, Regression> {
    judge_with(baseline, current, no_layers, true)
}

/// [`judge`], with `layers` false for verdicts only (one side was not attributed).
pub fn judge_with(
    baseline: &ProbeResult,
    current: Option<&ProbeResult>,
    no_layers: bool,
    layers: bool,
) -> Result<Option<String>, Regression> {
    let profile = baseline.profile.clone();
    let probe = baseline.probe.clone();
    let Some(current) = current else {
        return Err(Regression::Missing { profile, probe });
    };
    // A skipped probe did not run (a missing kernel feature or tool): that is judged below like
    // any lost coverage, not as a failed control.
    if no_layers && matches!(current.verdict, Verdict::Blocked | Verdict::Inconclusive) {
        return Err(Regression::PositiveControlLost {
            profile,
            probe,
            now: current.verdict,
            reason: current.reason.clone(),
        });
    }
    match (baseline.verdict, current.verdict) {
        (was, Verdict::Escaped) if was != Verdict::Escaped => Err(Regression::NewEscape {
            profile,
            probe,
            was,
            reason: current.reason.clone(),
        }),
        (Verdict::Blocked, now) if now != Verdict::Blocked => Err(Regression::NoLongerBlocked {
            profile,
            probe,
            now,
            reason: current.reason.clone(),
        }),
        (Verdict::Blocked, Verdict::Blocked) if layers => {
            let sufficient = |r: &ProbeResult| {
                r.attribution
                    .as_ref()
                    .map(|a| a.sufficient.clone())
                    .unwrap_or_default()
            };
            let depth = |r: &ProbeResult| r.attribution.as_ref().map_or(0, |a| a.depth);
            // The candidates account for the block: the run with all of them off escaped.
            // Attribution inferred from evidence switched nothing off, so it has no such run.
            let complete = |r: &ProbeResult| {
                r.attribution
                    .as_ref()
                    .is_some_and(|a| a.inferred || a.candidates_complete)
            };
            let (was, now) = (sufficient(baseline), sufficient(current));
            let (depth_was, depth_now) = (depth(baseline), depth(current));
            let cell = crate::report::cell::cell_text;
            // Depth 0 is "not established": the block is still there, but nothing the run
            // measured says which layer holds it. Against a baseline that did establish it, that
            // is the shallowest block of all, not a neutral change: a probe stopped by a broken
            // world or a poisoned attempt looks exactly like this, whatever the layers do. So
            // is a block whose candidates no longer explain it, whatever the depth.
            let completeness_lost = complete(baseline) && !complete(current);
            if (depth_was >= 1 && depth_now == 0) || completeness_lost {
                return Err(Regression::Unexplained {
                    profile,
                    probe,
                    depth_was,
                    depth_now,
                    completeness_lost,
                    was: cell(baseline),
                    now: cell(current),
                });
            }
            let lost: Vec<Layer> = was.iter().copied().filter(|l| !now.contains(l)).collect();
            if !lost.is_empty() || depth_now < depth_was {
                return Err(Regression::FewerSufficient {
                    profile,
                    probe,
                    lost,
                    depth_was,
                    depth_now,
                    was: cell(baseline),
                    now: cell(current),
                });
            }
            let gained: Vec<&str> = now
                .iter()
                .filter(|l| !was.contains(l))
                .map(|l| l.name())
                .collect();
            if depth_now > depth_was || !gained.is_empty() {
                let mut line = format!("{probe} under {profile}: depth {depth_was} -> {depth_now}");
                if !gained.is_empty() {
                    line.push_str(&format!(
                        ", now also blocked by {} alone",
                        gained.join(", ")
                    ));
                }
                Ok(Some(line))
            } else {
                Ok(None)
            }
        }
        (Verdict::Escaped, Verdict::Blocked) => {
            Ok(Some(format!("{probe} under {profile}: escaped -> blocked")))
        }
        (was, Verdict::Skipped) if was != Verdict::Skipped => Err(Regression::NowSkipped {
            profile,
            probe,
            was,
            reason: current.reason.clone(),
        }),
        (was, now) if was != now => Ok(Some(format!(
            "{probe} under {profile}: {} -> {}",
            verdict_name(was),
            verdict_name(now)
        ))),
        _ => Ok(None),
    }
}

/// Compare a whole run with a baseline (default options).
pub fn compare(baseline: &RunReport, current: &RunReport) -> GateReport {
    compare_with(baseline, current, GateOptions::default())
}

/// The kernel line of a release: "6.1" of "6.1.0-57-cloud-amd64", "6.12" of
/// "6.12.57+deb13-cloud-amd64". Releases of one line are compared (a Debian point update); of
/// two lines, not.
pub fn kernel_line(release: &str) -> &str {
    let mut dots = 0;
    for (i, c) in release.char_indices() {
        if c == '.' {
            dots += 1;
            if dots == 2 {
                return &release[..i];
            }
        } else if !c.is_ascii_digit() {
            return &release[..i];
        }
    }
    release
}

/// The baseline's kernel a run's kernel is compared with: the same release, else the only one
/// of its line (a point update), else none. An unknown release (empty) goes with a baseline
/// of one kernel.
fn matching_kernel<'a>(run: &str, baseline: &'a [String]) -> Option<&'a String> {
    if let Some(same) = baseline.iter().find(|b| *b == run) {
        return Some(same);
    }
    if run.is_empty() || baseline.iter().any(|b| b.is_empty()) {
        return (baseline.len() == 1).then(|| &baseline[0]);
    }
    let mut line = baseline
        .iter()
        .filter(|b| kernel_line(b) == kernel_line(run));
    match (line.next(), line.next()) {
        (Some(only), None) => Some(only),
        _ => None,
    }
}

/// Compare a run with the part of the baseline the run selected, kernel by kernel: results on
/// a kernel are judged only against the baseline's results on the same kernel (or another
/// release of its line, named in a note); a kernel the baseline does not hold is a failure
/// that says so, never a comparison with another kernel's verdicts.
pub fn compare_with(baseline: &RunReport, current: &RunReport, options: GateOptions) -> GateReport {
    // The kernels the run used: those of its results, and every kernel whose environment it
    // recorded, so that a kernel none of whose results is left is judged (all missing) rather
    // than read as a kernel the run did not use.
    let mut run_kernels = current.kernel_releases();
    for env in current.environments() {
        if !env.kernel_release.is_empty() && !run_kernels.contains(&env.kernel_release) {
            run_kernels.push(env.kernel_release.clone());
        }
    }
    let base_kernels = baseline.kernel_releases();
    let several = run_kernels.len() > 1;
    let mut total = GateReport {
        layers_compared: true,
        ..GateReport::default()
    };
    let mut used: Vec<&String> = Vec::new();
    for kernel in &run_kernels {
        let Some(base_kernel) = matching_kernel(kernel, &base_kernels) else {
            total.regressions.push(Regression::KernelNotInBaseline {
                run: kernel.clone(),
                baseline: base_kernels.clone(),
            });
            continue;
        };
        used.push(base_kernel);
        let part = compare_one(
            &baseline.on_kernel(base_kernel),
            &current.on_kernel(kernel),
            options,
        );
        let label = |text: String| {
            if several {
                format!("[{kernel}] {text}")
            } else {
                text
            }
        };
        total.layers_compared &= part.layers_compared;
        total.compared += part.compared;
        total.outside_selection += part.outside_selection;
        for r in part.regressions {
            total.regressions.push(if several {
                Regression::OnKernel {
                    kernel: kernel.clone(),
                    regression: Box::new(r),
                }
            } else {
                r
            });
        }
        total.changes.extend(part.changes.into_iter().map(label));
        for mut n in part.new_results {
            if several {
                n.kernel = kernel.clone();
            }
            total.new_results.push(n);
        }
        for note in part.notes.into_iter().map(label) {
            if !total.notes.contains(&note) {
                total.notes.push(note);
            }
        }
    }
    if run_kernels.is_empty() {
        // No result at all: judge the empty run against the whole baseline (all missing).
        return compare_one(baseline, current, options);
    }
    let unused: Vec<&String> = base_kernels.iter().filter(|k| !used.contains(k)).collect();
    if !unused.is_empty() {
        let count = baseline
            .results
            .iter()
            .filter(|r| unused.contains(&&baseline.kernel_of(r).to_string()))
            .count();
        total.outside_selection += count;
        total.notes.push(format!(
            "the baseline's {count} result(s) on kernel {} not judged: the run did not use that kernel",
            unused.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
        ));
    }
    total
}

/// Compare a run on one kernel with a baseline on one kernel.
fn compare_one(baseline: &RunReport, current: &RunReport, options: GateOptions) -> GateReport {
    let key = |r: &ProbeResult| (r.profile.clone(), r.probe.clone());
    let now: BTreeMap<(String, String), &ProbeResult> =
        current.results.iter().map(|r| (key(r), r)).collect();
    let base: BTreeMap<(String, String), &ProbeResult> =
        baseline.results.iter().map(|r| (key(r), r)).collect();
    let run_scope = current.covered();
    let base_scope = baseline.covered();
    let mut report = GateReport {
        layers_compared: run_scope.ablation && base_scope.ablation,
        ..GateReport::default()
    };

    for (k, b) in &base {
        if !run_scope.contains(&b.profile, &b.probe) {
            report.outside_selection += 1;
            continue;
        }
        let no_layers = configuration_without_layers(baseline, &b.profile)
            || configuration_without_layers(current, &b.profile);
        report.compared += 1;
        match judge_with(b, now.get(k).copied(), no_layers, report.layers_compared) {
            Ok(Some(change)) => report.changes.push(change),
            Ok(None) => {}
            Err(regression) => report.regressions.push(regression),
        }
    }
    for r in current
        .results
        .iter()
        .filter(|r| !base.contains_key(&key(r)))
    {
        report.new_results.push(NewResult {
            kernel: String::new(),
            profile: r.profile.clone(),
            probe: r.probe.clone(),
            verdict: r.verdict,
            cell: crate::report::cell::cell_text(r),
        });
        if configuration_without_layers(current, &r.profile) {
            if matches!(r.verdict, Verdict::Blocked | Verdict::Inconclusive) {
                report.regressions.push(Regression::PositiveControlLost {
                    profile: r.profile.clone(),
                    probe: r.probe.clone(),
                    now: r.verdict,
                    reason: r.reason.clone(),
                });
            }
        } else if r.verdict == Verdict::Escaped {
            report.regressions.push(Regression::NewResultEscaped {
                profile: r.profile.clone(),
                probe: r.probe.clone(),
                reason: r.reason.clone(),
            });
        }
    }

    compare_workloads(baseline, current, &mut report);
    report.notes = notes(&run_scope, &base_scope, &report);
    let (was, is) = (
        &baseline.environment.kernel_release,
        &current.environment.kernel_release,
    );
    if !was.is_empty() && !is.is_empty() && was != is {
        if options.strict_kernel {
            report.regressions.push(Regression::KernelChanged {
                baseline: was.clone(),
                run: is.clone(),
            });
        } else {
            report.notes.push(format!(
                "kernel: the run is on {is}, the baseline on {was}; verdicts can change with the kernel (--strict-kernel makes this a failure)"
            ));
        }
    }
    report
}

/// The usability half: a workload that worked under a profile in the baseline must work in a run
/// that selected it (workload and profile).
fn compare_workloads(baseline: &RunReport, current: &RunReport, report: &mut GateReport) {
    use breakout_attacks::workloads::WorkloadVerdict;
    // Without a selection (accepted with --scope-from-contents) the run covers the workloads and
    // profiles it holds, as for probes.
    let (workloads, profiles): (Vec<String>, Vec<String>) = match &current.selection {
        Some(s) => (s.workloads.clone(), s.profiles.clone()),
        None => (
            current
                .workloads
                .iter()
                .map(|w| w.workload.clone())
                .collect(),
            current
                .workloads
                .iter()
                .map(|w| w.profile.clone())
                .chain(current.covered().profiles)
                .collect(),
        ),
    };
    for b in &baseline.workloads {
        if !workloads.contains(&b.workload) || !profiles.contains(&b.profile) {
            continue;
        }
        let now = current
            .workloads
            .iter()
            .find(|r| r.workload == b.workload && r.profile == b.profile);
        match (b.verdict, now) {
            (WorkloadVerdict::Works, Some(n)) if n.verdict == WorkloadVerdict::Works => {}
            (WorkloadVerdict::Works, now) => report.regressions.push(Regression::WorkloadBroken {
                profile: b.profile.clone(),
                workload: b.workload.clone(),
                now: now.map(|n| n.verdict),
                step: now.and_then(|n| n.step.clone()),
                reason: now.map(|n| n.reason.clone()).unwrap_or_default(),
            }),
            (was, Some(n)) if n.verdict != was => report.changes.push(format!(
                "workload {} under {}: {} -> {}",
                b.workload,
                b.profile,
                was.as_str(),
                n.verdict.as_str()
            )),
            _ => {}
        }
    }
}

/// The lines that say what the comparison rests on.
fn notes(run_scope: &Coverage, base_scope: &Coverage, report: &GateReport) -> Vec<String> {
    let mut notes = Vec::new();
    if !run_scope.recorded {
        notes.push(format!(
            "the results record no selection (--scope-from-contents): taken to be what they hold, {} profile(s) x {} probe(s); a result removed from the file is not noticed",
            run_scope.profiles.len(),
            run_scope.probes.len()
        ));
    }
    if !base_scope.recorded {
        notes.push(
            "the baseline records no selection (schema 1): taken to be what it holds".to_string(),
        );
    }
    if report.outside_selection > 0 {
        notes.push(format!(
            "judged against the {} baseline result(s) the run selected; {} outside the run's selection ({} profile(s), {} probe(s)) not judged",
            report.compared,
            report.outside_selection,
            run_scope.profiles.len(),
            run_scope.probes.len()
        ));
    }
    if !report.layers_compared {
        let which = match (run_scope.ablation, base_scope.ablation) {
            (false, true) => "the run was not attributed (--no-ablation)",
            (true, false) => "the baseline was not attributed (--no-ablation)",
            _ => "neither side was attributed (--no-ablation)",
        };
        notes.push(format!(
            "{which}: judged on verdicts only, layers and depth not compared"
        ));
    }
    notes
}

/// "probe under profile: verdict" for every probe blocked (or inconclusive) under a configuration
/// of ours that switches no layer on. A skipped probe is warned about, not counted.
pub fn positive_control_failures(report: &RunReport) -> Vec<String> {
    report
        .results
        .iter()
        .filter(|r| {
            configuration_without_layers(report, &r.profile)
                && matches!(r.verdict, Verdict::Blocked | Verdict::Inconclusive)
        })
        .map(|r| {
            format!(
                "{} under {}: {} ({})",
                r.probe,
                r.profile,
                verdict_name(r.verdict),
                r.reason
            )
        })
        .collect()
}

/// The gate's text output: the verdict, the notes, the regressions, then the rest in one line
/// each (every new result with its verdict).
pub fn render(report: &GateReport, baseline: &Path) -> String {
    let mut out = String::new();
    if report.passed() {
        out.push_str(&format!(
            "gate passed: {} result(s) compared with {}, no regression\n",
            report.compared,
            baseline.display()
        ));
    } else {
        out.push_str(&format!(
            "gate FAILED: {} regression(s) against {}:\n",
            report.regressions.len(),
            baseline.display()
        ));
    }
    for note in &report.notes {
        out.push_str(&format!("  note: {note}\n"));
    }
    for r in &report.regressions {
        out.push_str(&format!("  - {r}\n"));
    }
    for change in &report.changes {
        out.push_str(&format!("  changed: {change}\n"));
    }
    for n in &report.new_results {
        out.push_str(&format!(
            "  new (not in the baseline): {}{} under {}: {}\n",
            crate::model::gate::kernel_prefix(&n.kernel),
            n.probe,
            n.profile,
            n.cell
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{
        Attribution, Environment, Evidence, ProfileInfo, Selection, Timings, SCHEMA_VERSION,
    };
    use rstest::rstest;

    pub(crate) fn result(
        profile: &str,
        probe: &str,
        verdict: Verdict,
        sufficient: &[Layer],
    ) -> ProbeResult {
        ProbeResult {
            kernel: String::new(),
            probe: probe.to_string(),
            profile: profile.to_string(),
            verdict,
            reason: "test".to_string(),
            evidence: Evidence::default(),
            attribution: (verdict == Verdict::Blocked).then(|| Attribution {
                necessary: vec![],
                sufficient: sufficient.to_vec(),
                depth: crate::model::depth(sufficient, &[], true, false),
                candidates_complete: true,
                ..Attribution::default()
            }),
            duration_ms: 1,
        }
    }

    fn report(results: Vec<ProbeResult>) -> RunReport {
        RunReport {
            kernels: Vec::new(),
            schema_version: SCHEMA_VERSION,
            breakout_version: "test".to_string(),
            environment: Environment::default(),
            profiles: vec![
                ProfileInfo {
                    name: "none".to_string(),
                    runtime: "breakout".to_string(),
                    layers: vec![],
                    inferred: false,
                },
                ProfileInfo {
                    name: "strict".to_string(),
                    runtime: "breakout".to_string(),
                    layers: vec![Layer::PidNs, Layer::UserNs],
                    inferred: false,
                },
            ],
            selection: None,
            results,
            workloads: Vec::new(),
            timings: Timings::default(),
            channel_problems: Vec::new(),
        }
    }

    /// A run that records its selection.
    fn selected(
        results: Vec<ProbeResult>,
        profiles: &[&str],
        probes: &[&str],
        ablation: bool,
    ) -> RunReport {
        let mut r = report(results);
        r.selection = Some(Selection {
            kernels: Vec::new(),
            shard: None,
            profiles: profiles.iter().map(|s| s.to_string()).collect(),
            probes: probes.iter().map(|s| s.to_string()).collect(),
            ablation,
            kernel: None,
            added_positive_control: false,
            workloads: vec![],
        });
        r
    }

    fn workload(
        id: &str,
        profile: &str,
        verdict: breakout_attacks::workloads::WorkloadVerdict,
    ) -> crate::model::WorkloadResult {
        crate::model::WorkloadResult {
            workload: id.to_string(),
            profile: profile.to_string(),
            verdict,
            reason: "test".to_string(),
            step: (verdict == breakout_attacks::workloads::WorkloadVerdict::Broken)
                .then(|| "socket: EPERM".to_string()),
            stderr_tail: String::new(),
            duration_ms: 1,
            kernel: String::new(),
        }
    }

    #[test]
    fn a_newly_broken_workload_is_a_regression_and_a_newly_working_one_a_change() {
        use breakout_attacks::workloads::WorkloadVerdict::{Broken, Works};
        let with = |python: _, git: _| {
            let mut r = selected(vec![], &["none", "strict"], &[], true);
            r.workloads = vec![
                workload("python", "strict", python),
                workload("git", "strict", git),
            ];
            if let Some(s) = r.selection.as_mut() {
                s.workloads = vec!["python".into(), "git".into()];
            }
            r
        };
        let baseline = with(Works, Broken);
        assert!(compare(&baseline, &baseline).passed());
        let gate = compare(&baseline, &with(Broken, Works));
        assert_eq!(gate.regressions.len(), 1, "{:?}", gate.regressions);
        assert_eq!(gate.regressions[0].kind(), "workload-broken");
        assert_eq!(
            gate.regressions[0].to_string(),
            "workload python under strict: broken at socket: EPERM (baseline: works): test"
        );
        assert_eq!(
            gate.changes,
            vec!["workload git under strict: broken -> works".to_string()]
        );
        // Gone from a run that selected it: a regression too.
        let mut missing = with(Works, Broken);
        missing.workloads.retain(|w| w.workload != "python");
        let gate = compare(&baseline, &missing);
        assert_eq!(gate.regressions.len(), 1);
        assert!(gate.regressions[0]
            .to_string()
            .contains("missing from the run"));
        // A run with --no-workloads selects none: nothing to judge.
        let mut without = selected(vec![], &["none", "strict"], &[], true);
        without.workloads.clear();
        assert!(compare(&baseline, &without).passed());
    }

    use Layer::*;
    use Verdict::*;

    #[rstest]
    #[case::same(Blocked, &[PidNs, UserNs], Blocked, &[PidNs, UserNs], None)]
    #[case::new_escape(Blocked, &[PidNs], Escaped, &[], Some("ESCAPED"))]
    #[case::lost_layer(Blocked, &[PidNs, UserNs], Blocked, &[UserNs], Some("no longer blocked by pid-ns on its own (depth 2 -> 2)"))]
    #[case::swapped_layer(Blocked, &[PidNs], Blocked, &[UserNs], Some("pid-ns"))]
    #[case::inconclusive(Blocked, &[PidNs], Inconclusive, &[], Some("inconclusive (baseline: blocked)"))]
    #[case::deeper(Blocked, &[PidNs], Blocked, &[PidNs, UserNs], None)]
    #[case::escape_to_escape(Escaped, &[], Escaped, &[], None)]
    #[case::inconclusive_to_escape(Inconclusive, &[], Escaped, &[], Some("ESCAPED (baseline: inconclusive)"))]
    fn judged_against_baseline(
        #[case] was: Verdict,
        #[case] was_layers: &[Layer],
        #[case] now: Verdict,
        #[case] now_layers: &[Layer],
        #[case] regression: Option<&str>,
    ) {
        let base = report(vec![result("strict", "ptrace-outside", was, was_layers)]);
        let run = report(vec![result("strict", "ptrace-outside", now, now_layers)]);
        let gate = compare(&base, &run);
        match regression {
            None => assert!(gate.passed(), "{:?}", gate.regressions),
            Some(text) => {
                assert_eq!(gate.regressions.len(), 1);
                let shown = gate.regressions[0].to_string();
                assert!(shown.contains(text), "{shown}");
            }
        }
    }

    #[test]
    fn a_probe_gone_missing_fails_and_a_new_blocked_one_does_not() {
        let base = report(vec![result("strict", "ptrace-outside", Blocked, &[PidNs])]);
        let run = selected(
            vec![result("strict", "mount", Blocked, &[Caps])],
            &["strict"],
            &["ptrace-outside", "mount"],
            true,
        );
        let gate = compare(&base, &run);
        assert_eq!(
            gate.regressions,
            vec![Regression::Missing {
                profile: "strict".to_string(),
                probe: "ptrace-outside".to_string()
            }]
        );
        assert_eq!(gate.new_results.len(), 1);
        assert_eq!(
            (
                gate.new_results[0].probe.as_str(),
                gate.new_results[0].verdict
            ),
            ("mount", Blocked)
        );
        let text = render(&gate, Path::new("b.json"));
        assert!(
            text.contains("new (not in the baseline): mount under strict: blocked: caps"),
            "{text}"
        );
    }

    #[test]
    fn a_new_result_that_escapes_under_layers_fails_and_is_printed_with_its_verdict() {
        // io-uring is new to the baseline; under strict (layers on) it escaped.
        let base = report(vec![result("strict", "ptrace-outside", Blocked, &[PidNs])]);
        let run = report(vec![
            result("strict", "ptrace-outside", Blocked, &[PidNs]),
            result("strict", "io-uring", Escaped, &[]),
            result("none", "io-uring", Escaped, &[]),
        ]);
        let gate = compare(&base, &run);
        assert!(!gate.passed());
        assert!(matches!(
            &gate.regressions[..],
            [Regression::NewResultEscaped { profile, probe, .. }] if profile == "strict" && probe == "io-uring"
        ));
        let text = render(&gate, Path::new("b.json"));
        assert!(text.starts_with("gate FAILED: 1 regression"), "{text}");
        assert!(
            text.contains("io-uring under strict: ESCAPED (not in the baseline"),
            "{text}"
        );
        assert!(
            text.contains("new (not in the baseline): io-uring under strict: ESCAPED"),
            "{text}"
        );
        assert!(
            text.contains("new (not in the baseline): io-uring under none: ESCAPED"),
            "{text}"
        );
        // A new positive control that did not escape fails too.
        let run = report(vec![
            result("strict", "ptrace-outside", Blocked, &[PidNs]),
            result("none", "io-uring", Blocked, &[]),
        ]);
        assert!(matches!(
            &compare(&base, &run).regressions[..],
            [Regression::PositiveControlLost { .. }]
        ));
    }

    #[test]
    fn a_partial_run_is_judged_against_the_part_of_the_baseline_it_selected() {
        let base = selected(
            vec![
                result("none", "ptrace-outside", Escaped, &[]),
                result("strict", "ptrace-outside", Blocked, &[PidNs]),
                result("none", "mount", Escaped, &[]),
                result("strict", "mount", Blocked, &[Caps]),
            ],
            &["none", "strict"],
            &["ptrace-outside", "mount"],
            true,
        );
        let run = selected(
            vec![result("strict", "ptrace-outside", Blocked, &[PidNs])],
            &["strict"],
            &["ptrace-outside"],
            true,
        );
        let gate = compare(&base, &run);
        assert!(gate.passed(), "{:?}", gate.regressions);
        assert_eq!((gate.compared, gate.outside_selection), (1, 3));
        let text = render(&gate, Path::new("b.json"));
        assert!(text.contains("gate passed: 1 result(s)"), "{text}");
        assert!(text.contains("3 outside the run's selection"), "{text}");
        // A schema-1 run (no selection) covers what it holds, and says so.
        let mut old = run.clone();
        old.selection = None;
        let gate = compare(&base, &old);
        assert!(gate.passed());
        assert!(render(&gate, Path::new("b.json")).contains("record no selection"));
        // A pair the run selected but did not bring back is missing.
        let empty = selected(vec![], &["strict"], &["ptrace-outside"], true);
        assert!(matches!(
            &compare(&base, &empty).regressions[..],
            [Regression::Missing { .. }]
        ));
    }

    #[test]
    fn a_run_without_ablation_is_judged_on_verdicts_only_and_says_so() {
        let base = selected(
            vec![result(
                "strict",
                "ptrace-outside",
                Blocked,
                &[PidNs, UserNs],
            )],
            &["strict"],
            &["ptrace-outside"],
            true,
        );
        let mut plain = result("strict", "ptrace-outside", Blocked, &[]);
        plain.attribution = None;
        let run = selected(vec![plain.clone()], &["strict"], &["ptrace-outside"], false);
        let gate = compare(&base, &run);
        assert!(gate.passed(), "{:?}", gate.regressions);
        assert!(!gate.layers_compared);
        let text = render(&gate, Path::new("b.json"));
        assert_eq!(
            text.lines().filter(|l| l.contains("verdicts only")).count(),
            1,
            "{text}"
        );
        assert!(
            text.contains("the run was not attributed (--no-ablation)"),
            "{text}"
        );
        // Verdicts still count.
        let mut escaped = plain;
        escaped.verdict = Escaped;
        let run = selected(vec![escaped], &["strict"], &["ptrace-outside"], false);
        assert!(matches!(
            &compare(&base, &run).regressions[..],
            [Regression::NewEscape { .. }]
        ));
        // A schema-1 file without any attribution on its blocks reads as not ablated.
        let mut old = report(vec![result("strict", "ptrace-outside", Blocked, &[])]);
        old.results[0].attribution = None;
        assert!(!compare(&base, &old).layers_compared);
    }

    #[test]
    fn another_kernel_is_one_line_or_with_strict_kernel_a_failure() {
        let mut base = report(vec![result("strict", "ptrace-outside", Blocked, &[PidNs])]);
        base.environment.kernel_release = "6.1.0-56-cloud-amd64".to_string();
        let mut run = base.clone();
        run.environment.kernel_release = "6.1.0-57-cloud-amd64".to_string();
        let gate = compare(&base, &run);
        assert!(gate.passed());
        let text = render(&gate, Path::new("b.json"));
        let lines: Vec<&str> = text.lines().filter(|l| l.contains("kernel")).collect();
        assert_eq!(lines.len(), 1, "{text}");
        assert!(
            lines[0].contains("6.1.0-57-cloud-amd64") && lines[0].contains("6.1.0-56-cloud-amd64")
        );
        let strict = compare_with(
            &base,
            &run,
            GateOptions {
                strict_kernel: true,
            },
        );
        assert!(matches!(
            &strict.regressions[..],
            [Regression::KernelChanged { .. }]
        ));
        assert!(compare_with(
            &base,
            &base,
            GateOptions {
                strict_kernel: true
            }
        )
        .passed());
    }

    /// A report on kernels: each (release, results) with the results' kernel set.
    fn on_kernels(parts: Vec<(&str, Vec<ProbeResult>)>) -> RunReport {
        let mut r = report(vec![]);
        for (release, results) in parts {
            let env = Environment {
                kernel_release: release.to_string(),
                ..Environment::default()
            };
            r.kernels.push(env);
            r.results.extend(results.into_iter().map(|mut x| {
                x.kernel = release.to_string();
                x
            }));
        }
        r.environment = r.kernels[0].clone();
        if r.kernels.len() == 1 {
            r.kernels.clear();
        }
        r
    }

    const K61: &str = "6.1.0-57-cloud-amd64";
    const K612: &str = "6.12.57+deb13-cloud-amd64";

    #[test]
    fn kernel_lines_are_major_and_minor() {
        assert_eq!(kernel_line(K61), "6.1");
        assert_eq!(kernel_line(K612), "6.12");
        assert_eq!(kernel_line("6.1.119"), "6.1");
        assert_eq!(kernel_line(""), "");
    }

    #[test]
    fn a_baseline_of_one_kernel_is_not_used_against_another_kernel_line() {
        let base = on_kernels(vec![(K61, vec![result("strict", "tiocsti", Escaped, &[])])]);
        let run = on_kernels(vec![(
            K612,
            vec![result("strict", "tiocsti", Blocked, &[Uid])],
        )]);
        let gate = compare(&base, &run);
        assert_eq!(gate.compared, 0);
        assert!(matches!(
            &gate.regressions[..],
            [Regression::KernelNotInBaseline { run, baseline }] if run == K612 && baseline == &[K61.to_string()]
        ));
        let text = render(&gate, Path::new("b.json"));
        assert!(
            text.contains("the baseline holds no results for this kernel") && text.contains(K61),
            "{text}"
        );
        // A point release of the same line is compared, with its one line.
        let point = on_kernels(vec![(
            "6.1.0-58-cloud-amd64",
            vec![result("strict", "tiocsti", Escaped, &[])],
        )]);
        let gate = compare(&base, &point);
        assert!(gate.passed(), "{:?}", gate.regressions);
        assert_eq!(gate.compared, 1);
    }

    #[test]
    fn a_baseline_of_two_kernels_judges_each_kernel_against_its_own() {
        // tiocsti under `uid` escapes on 6.1 and is blocked on 6.12: both are the baseline.
        let both = || {
            on_kernels(vec![
                (K61, vec![result("strict", "tiocsti", Escaped, &[])]),
                (K612, vec![result("strict", "tiocsti", Blocked, &[Uid])]),
            ])
        };
        let gate = compare(&both(), &both());
        assert!(gate.passed(), "{:?}", gate.regressions);
        assert_eq!(gate.compared, 2);
        // The 6.12 result escaping is a regression named with its kernel; 6.1's is not.
        let mut worse = both();
        worse.results[1].verdict = Escaped;
        worse.results[1].attribution = None;
        let gate = compare(&both(), &worse);
        assert!(matches!(
            &gate.regressions[..],
            [Regression::OnKernel { kernel, regression }]
                if kernel == K612 && matches!(**regression, Regression::NewEscape { .. })
        ));
        assert!(gate.regression_on(K612, "strict", "tiocsti").is_some());
        assert!(gate.regression_on(K61, "strict", "tiocsti").is_none());
        assert!(gate.regressions[0]
            .to_string()
            .starts_with(&format!("[{K612}] tiocsti under strict: ESCAPED")));
        // A run on one of the baseline's kernels is judged against that kernel only.
        let only_61 = on_kernels(vec![(K61, vec![result("strict", "tiocsti", Escaped, &[])])]);
        let gate = compare(&both(), &only_61);
        assert!(gate.passed(), "{:?}", gate.regressions);
        assert_eq!((gate.compared, gate.outside_selection), (1, 1));
        assert!(render(&gate, Path::new("b.json")).contains("the run did not use that kernel"));
        // A run on two kernels against a baseline of one: the other kernel is not judged, and
        // the gate fails saying so.
        let gate = compare(&only_61, &both());
        assert!(matches!(
            &gate.regressions[..],
            [Regression::KernelNotInBaseline { run, .. }] if run == K612
        ));
    }

    #[test]
    fn a_schema_2_baseline_loads_with_its_kernel_on_every_result() {
        let mut run = report(vec![result("strict", "ptrace-outside", Blocked, &[PidNs])]);
        run.environment.kernel_release = K61.to_string();
        let mut v2 = serde_json::to_value(&run).unwrap();
        v2["schema_version"] = 2.into();
        v2["results"][0].as_object_mut().unwrap().remove("kernel");
        let loaded = crate::model::upgrade(&v2.to_string()).unwrap();
        assert_eq!(loaded.results[0].kernel, K61);
        assert!(compare(&loaded, &on_kernels(vec![(K61, run.results.clone())])).passed());
    }

    /// strict's ptrace-outside blocked by pid-ns alone, one layer from escaping (depth 1).
    fn held_by_pid_ns() -> ProbeResult {
        let mut r = result("strict", "ptrace-outside", Blocked, &[PidNs]);
        let a = r.attribution.as_mut().unwrap();
        a.necessary = vec![PidNs];
        a.candidates = vec![PidNs, UserNs];
        a.depth = 1;
        r
    }

    #[test]
    fn a_block_no_longer_explained_by_its_layers_is_a_regression() {
        let base = report(vec![held_by_pid_ns()]);
        // A poisoned attempt: without pid-ns it no longer escapes, nor with every candidate
        // off, so pid-ns is still "sufficient" but nothing explains the block (depth 0).
        let mut run = base.clone();
        let a = run.results[0].attribution.as_mut().unwrap();
        a.necessary.clear();
        a.candidates_complete = false;
        a.depth = 0;
        let gate = compare(&base, &run);
        assert!(!gate.passed(), "depth 1 -> 0 passed the gate");
        assert_eq!(gate.regressions.len(), 1, "{:?}", gate.regressions);
        assert_eq!(gate.regressions[0].kind(), "unexplained");
        let shown = gate.regressions[0].to_string();
        assert!(
            shown.starts_with("ptrace-outside under strict: block no longer explained")
                && shown.contains("depth 1 -> 0")
                && shown.contains("baseline: blocked: pid-ns; now: blocked: pid-ns +unexplained"),
            "{shown}"
        );
        assert!(render(&gate, Path::new("b.json")).starts_with("gate FAILED"));

        // The candidates no longer explain it, even with the depth kept (pid-ns still
        // necessary): a regression too.
        let mut incomplete = base.clone();
        incomplete.results[0]
            .attribution
            .as_mut()
            .unwrap()
            .candidates_complete = false;
        let gate = compare(&base, &incomplete);
        assert!(
            matches!(
                &gate.regressions[..],
                [Regression::Unexplained {
                    depth_was: 1,
                    depth_now: 1,
                    completeness_lost: true,
                    ..
                }]
            ),
            "{:?}",
            gate.regressions
        );
        assert!(gate.regressions[0]
            .to_string()
            .contains("with every candidate layer off it no longer escapes"));

        // A block an ablated run did not attribute at all, against an attributed baseline.
        let mut bare = selected(
            vec![held_by_pid_ns()],
            &["strict"],
            &["ptrace-outside"],
            true,
        );
        bare.results[0].attribution = None;
        let gate = compare(&base, &bare);
        assert!(
            matches!(
                &gate.regressions[..],
                [Regression::Unexplained {
                    depth_was: 1,
                    depth_now: 0,
                    ..
                }]
            ),
            "{:?}",
            gate.regressions
        );

        // From depth 2 as well.
        let deep = report(vec![result(
            "strict",
            "ptrace-outside",
            Blocked,
            &[PidNs, UserNs],
        )]);
        let mut lost = deep.clone();
        let a = lost.results[0].attribution.as_mut().unwrap();
        a.candidates_complete = false;
        a.depth = 0;
        assert!(matches!(
            &compare(&deep, &lost).regressions[..],
            [Regression::Unexplained {
                depth_was: 2,
                depth_now: 0,
                ..
            }]
        ));

        // Unexplained in the baseline and now: no change. Explained now: better, a change.
        assert!(compare(&run, &run).passed());
        let gate = compare(&run, &base);
        assert!(gate.passed(), "{:?}", gate.regressions);
        assert_eq!(gate.changes.len(), 1, "{:?}", gate.changes);

        // Judged on verdicts only (one side not attributed), there is nothing to compare.
        let verdicts_only = judge_with(&base.results[0], Some(&run.results[0]), false, false);
        assert_eq!(verdicts_only, Ok(None));
    }

    #[test]
    fn a_shallower_block_names_the_cell_in_the_baseline_and_now() {
        let base = report(vec![result(
            "strict",
            "ptrace-outside",
            Blocked,
            &[PidNs, UserNs],
        )]);
        let run = report(vec![held_by_pid_ns()]);
        let shown = compare(&base, &run).regressions[0].to_string();
        assert!(
            shown.contains("(baseline: blocked: pid-ns, user-ns; now: blocked: pid-ns)"),
            "{shown}"
        );
    }

    #[test]
    fn results_must_record_their_selection_unless_told_to_take_their_contents() {
        let path = Path::new("/tmp/results.json");
        let mut old = report(vec![held_by_pid_ns()]);
        old.schema_version = 1;
        let err = check_scope(&old, path, "results", false)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("results /tmp/results.json record no `selection` (schema 1")
                && err.contains("exit 2")
                && err.contains("--scope-from-contents"),
            "{err}"
        );
        assert!(check_scope(&old, path, "results", true).is_ok());
        // A current schema with the field removed says so.
        let removed = report(vec![held_by_pid_ns()]);
        let err = check_scope(&removed, path, "results", false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!(
                "missing or null in a file of schema {SCHEMA_VERSION}"
            )),
            "{err}"
        );
        // A recorded selection that holds every result passes.
        let run = selected(
            vec![held_by_pid_ns()],
            &["strict"],
            &["ptrace-outside"],
            true,
        );
        assert!(check_scope(&run, path, "results", false).is_ok());
    }

    #[test]
    fn results_outside_their_own_selection_are_refused() {
        let path = Path::new("r.json");
        // The regressing probe taken out of the selection but left in the results: the gate
        // would not look at it.
        let run = selected(
            vec![
                held_by_pid_ns(),
                result("strict", "mount", Escaped, &[]),
                result("none", "mount", Escaped, &[]),
            ],
            &["strict", "none"],
            &["ptrace-outside"],
            true,
        );
        let err = check_scope(&run, path, "results", true)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("hold 2 result(s) outside their own `selection`: mount under strict, mount under none"),
            "{err}"
        );
        // Outside the file's shard: probe 1 of ["ptrace-outside", "mount"] is shard 2 of 2.
        let mut shard = selected(
            vec![
                held_by_pid_ns(),
                result("strict", "mount", Blocked, &[Caps]),
            ],
            &["strict"],
            &["ptrace-outside", "mount"],
            true,
        );
        shard.selection.as_mut().unwrap().shard =
            Some(crate::suite::shard::Shard { index: 1, count: 2 });
        let err = check_scope(&shard, path, "results", false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("1 result(s) outside") && err.contains("mount under strict"),
            "{err}"
        );
        // A workload the run did not select.
        let mut extra = selected(
            vec![held_by_pid_ns()],
            &["strict"],
            &["ptrace-outside"],
            true,
        );
        extra.workloads = vec![workload(
            "python",
            "strict",
            breakout_attacks::workloads::WorkloadVerdict::Works,
        )];
        let err = check_scope(&extra, path, "results", false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("workload python under strict"), "{err}");
    }

    #[test]
    fn a_selected_result_dropped_from_the_file_fails_in_a_shard_and_on_every_kernel() {
        // Shard 1 of 2 of ["ptrace-outside", "mount"] holds ptrace-outside: without it, missing.
        let base = selected(
            vec![
                held_by_pid_ns(),
                result("strict", "mount", Blocked, &[Caps]),
            ],
            &["strict"],
            &["ptrace-outside", "mount"],
            true,
        );
        let mut shard = base.clone();
        shard.selection.as_mut().unwrap().shard =
            Some(crate::suite::shard::Shard { index: 1, count: 2 });
        shard.results.clear();
        let gate = compare(&base, &shard);
        assert!(
            matches!(
                &gate.regressions[..],
                [Regression::Missing { probe, .. }] if probe == "ptrace-outside"
            ),
            "{:?}",
            gate.regressions
        );

        // A run on two kernels with every result of one kernel removed: that kernel's
        // environment is still in the file, so its baseline results are missing, not "a kernel
        // the run did not use".
        let both = || {
            let mut r = on_kernels(vec![
                (K61, vec![result("strict", "tiocsti", Escaped, &[])]),
                (K612, vec![result("strict", "tiocsti", Blocked, &[Uid])]),
            ]);
            r.selection = selected(vec![], &["strict"], &["tiocsti"], true).selection;
            r
        };
        let mut dropped = both();
        dropped.results.retain(|r| r.kernel == K61);
        let gate = compare(&both(), &dropped);
        assert!(!gate.passed(), "{}", render(&gate, Path::new("b.json")));
        assert!(
            matches!(
                &gate.regressions[..],
                [Regression::OnKernel { kernel, regression }]
                    if kernel == K612 && matches!(**regression, Regression::Missing { .. })
            ),
            "{:?}",
            gate.regressions
        );
        assert!(compare(&both(), &both()).passed());
    }

    #[test]
    fn without_a_selection_the_workloads_held_are_judged() {
        use breakout_attacks::workloads::WorkloadVerdict::{Broken, Works};
        let mut base = selected(vec![], &["strict"], &[], true);
        base.workloads = vec![workload("python", "strict", Works)];
        base.selection.as_mut().unwrap().workloads = vec!["python".into()];
        let mut run = report(vec![]);
        run.workloads = vec![workload("python", "strict", Broken)];
        let gate = compare(&base, &run);
        assert!(
            matches!(&gate.regressions[..], [Regression::WorkloadBroken { .. }]),
            "{:?}",
            gate.regressions
        );
    }

    #[test]
    fn a_block_now_one_layer_from_escaping_is_a_regression() {
        let base = report(vec![result(
            "strict",
            "signal-same-uid",
            Blocked,
            &[UserNs, PidNs],
        )]);
        let mut run = base.clone();
        let a = run.results[0].attribution.as_mut().unwrap();
        a.necessary = vec![PidNs];
        a.depth = 1;
        let gate = compare(&base, &run);
        assert!(matches!(
            &gate.regressions[..],
            [Regression::FewerSufficient { lost, depth_was: 2, depth_now: 1, .. }] if lost.is_empty()
        ));
        assert!(gate.regressions[0]
            .to_string()
            .contains("now one layer from escaping"));
        assert!(compare(&run, &base).passed(), "deeper is better");
    }

    #[test]
    fn a_probe_that_no_longer_runs_is_a_regression_but_a_skip_in_both_is_not() {
        let base = report(vec![result("none", "kernel-module", Skipped, &[])]);
        assert!(compare(&base, &base).passed());
        let ran = report(vec![result("none", "kernel-module", Escaped, &[])]);
        let gate = compare(&ran, &base);
        assert!(matches!(
            gate.regressions[..],
            [Regression::NowSkipped { .. }]
        ));
    }

    #[test]
    fn the_positive_control_must_escape() {
        let base = report(vec![result("none", "ptrace-outside", Escaped, &[])]);
        let run = report(vec![result("none", "ptrace-outside", Blocked, &[])]);
        let gate = compare(&base, &run);
        assert!(matches!(
            gate.regressions[..],
            [Regression::PositiveControlLost { .. }]
        ));
    }

    #[test]
    fn a_run_passes_its_own_baseline_and_a_baseline_claiming_more_fails() {
        let run = report(vec![
            result("none", "ptrace-outside", Escaped, &[]),
            result("strict", "ptrace-outside", Blocked, &[PidNs]),
        ]);
        assert!(compare(&run, &run).passed());
        let mut claims_more = run.clone();
        claims_more.results[1] = result("strict", "ptrace-outside", Blocked, &[PidNs, Seccomp]);
        let gate = compare(&claims_more, &run);
        assert!(!gate.passed());
        assert!(render(&gate, Path::new("b.json")).contains("gate FAILED"));
    }

    #[test]
    fn files_round_trip_and_bad_files_name_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("baseline.json");
        let run = report(vec![result("strict", "ptrace-outside", Blocked, &[PidNs])]);
        write_baseline(&run, &path).unwrap();
        let loaded = load(&path, "baseline").unwrap();
        assert!(compare(&loaded, &run).passed());

        std::fs::write(&path, "{\"schema_version\": 99}").unwrap();
        let err = load(&path, "baseline").unwrap_err().to_string();
        assert!(err.contains("schema version 99"), "{err}");

        // Schema 1 (the committed baseline's) still loads.
        let mut v1 = serde_json::to_value(&run).unwrap();
        v1["schema_version"] = 1.into();
        v1.as_object_mut().unwrap().remove("selection");
        std::fs::write(&path, v1.to_string()).unwrap();
        let loaded = load(&path, "baseline").unwrap();
        assert_eq!(loaded.selection, None);

        std::fs::write(&path, "{ not json").unwrap();
        let err = load(&path, "baseline").unwrap_err().to_string();
        assert!(
            err.contains("baseline.json") && err.contains("not a breakout results file"),
            "{err}"
        );

        let err = load(&dir.path().join("absent.json"), "results")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("cannot read results") && err.contains("absent.json"),
            "{err}"
        );
    }
}
