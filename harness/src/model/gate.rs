//! The gate's findings (what [`crate::suite::gate`] judges and the reports render): each way a
//! result got worse, the results new to the baseline, and the summary.

use super::verdict_name;
use breakout_attacks::{Layer, Verdict};
use std::fmt;

/// One way a result got worse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Regression {
    NewEscape {
        profile: String,
        probe: String,
        was: Verdict,
        reason: String,
    },
    /// A result the baseline does not have, escaped under a configuration with layers.
    NewResultEscaped {
        profile: String,
        probe: String,
        reason: String,
    },
    NoLongerBlocked {
        profile: String,
        probe: String,
        now: Verdict,
        reason: String,
    },
    /// Blocked in both, but by less: sufficient layers lost, or the depth fell (2 -> 1).
    FewerSufficient {
        profile: String,
        probe: String,
        lost: Vec<Layer>,
        depth_was: usize,
        depth_now: usize,
        /// The cell in the baseline and now ("blocked: user-ns, pid-ns").
        was: String,
        now: String,
    },
    /// Blocked in both, but the block is no longer explained by the probe's layers: the depth
    /// fell to 0 (not established), or the run with every candidate layer off no longer
    /// escapes (`candidates_complete` became false). A block the harness cannot explain is no
    /// evidence that the layers the baseline credited still work: something else (a broken
    /// world, a poisoned attempt) may be what stops the probe now.
    Unexplained {
        profile: String,
        probe: String,
        depth_was: usize,
        depth_now: usize,
        /// The baseline's candidates explained the block and the run's do not.
        completeness_lost: bool,
        was: String,
        now: String,
    },
    Missing {
        profile: String,
        probe: String,
    },
    /// The probe ran in the baseline and is skipped now (a feature or tool went missing).
    NowSkipped {
        profile: String,
        probe: String,
        was: Verdict,
        reason: String,
    },
    PositiveControlLost {
        profile: String,
        probe: String,
        now: Verdict,
        reason: String,
    },
    /// A workload that worked under the profile in the baseline does not now.
    WorkloadBroken {
        profile: String,
        workload: String,
        now: Option<breakout_attacks::workloads::WorkloadVerdict>,
        step: Option<String>,
        reason: String,
    },
    /// The kernel release differs and `--strict-kernel` asked for the same one.
    KernelChanged {
        baseline: String,
        run: String,
    },
    /// The run's results on a kernel the baseline holds nothing for (another kernel line: a
    /// baseline for 6.1 says nothing about 6.12), so they were not judged.
    KernelNotInBaseline {
        run: String,
        baseline: Vec<String>,
    },
    /// A regression of the results on one kernel of a run on several.
    OnKernel {
        kernel: String,
        regression: Box<Regression>,
    },
}

impl Regression {
    /// The (profile, probe) pair the regression is about (none for the kernel).
    pub fn pair(&self) -> Option<(&str, &str)> {
        match self {
            Regression::NewEscape { profile, probe, .. }
            | Regression::NewResultEscaped { profile, probe, .. }
            | Regression::NoLongerBlocked { profile, probe, .. }
            | Regression::FewerSufficient { profile, probe, .. }
            | Regression::Unexplained { profile, probe, .. }
            | Regression::Missing { profile, probe }
            | Regression::NowSkipped { profile, probe, .. }
            | Regression::PositiveControlLost { profile, probe, .. } => {
                Some((profile.as_str(), probe.as_str()))
            }
            Regression::WorkloadBroken {
                profile, workload, ..
            } => Some((profile.as_str(), workload.as_str())),
            Regression::KernelChanged { .. } | Regression::KernelNotInBaseline { .. } => None,
            Regression::OnKernel { regression, .. } => regression.pair(),
        }
    }

    /// The kernel a regression of a run on several kernels is about.
    pub fn kernel(&self) -> Option<&str> {
        match self {
            Regression::OnKernel { kernel, .. } => Some(kernel),
            Regression::KernelNotInBaseline { run, .. } => Some(run),
            _ => None,
        }
    }

    /// A short type for JUnit's `failure type`.
    pub fn kind(&self) -> &'static str {
        match self {
            Regression::NewEscape { .. } => "new-escape",
            Regression::NewResultEscaped { .. } => "new-result-escaped",
            Regression::NoLongerBlocked { .. } => "no-longer-blocked",
            Regression::FewerSufficient { .. } => "shallower",
            Regression::Unexplained { .. } => "unexplained",
            Regression::Missing { .. } => "missing",
            Regression::NowSkipped { .. } => "now-skipped",
            Regression::PositiveControlLost { .. } => "positive-control",
            Regression::WorkloadBroken { .. } => "workload-broken",
            Regression::KernelChanged { .. } => "kernel-changed",
            Regression::KernelNotInBaseline { .. } => "kernel-not-in-baseline",
            Regression::OnKernel { regression, .. } => regression.kind(),
        }
    }
}

impl fmt::Display for Regression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Regression::NewEscape { profile, probe, was, reason } => {
                write!(f, "{probe} under {profile}: ESCAPED (baseline: {}): {reason}", verdict_name(*was))
            }
            Regression::NewResultEscaped { profile, probe, reason } => write!(
                f,
                "{probe} under {profile}: ESCAPED (not in the baseline; {profile} has layers): {reason}"
            ),
            Regression::NoLongerBlocked { profile, probe, now, reason } => {
                write!(f, "{probe} under {profile}: {} (baseline: blocked): {reason}", verdict_name(*now))
            }
            Regression::FewerSufficient {
                profile,
                probe,
                lost,
                depth_was,
                depth_now,
                was,
                now,
            } => {
                if lost.is_empty() {
                    write!(f, "{probe} under {profile}: shallower block (depth {depth_was} -> {depth_now})")?;
                } else {
                    write!(
                        f,
                        "{probe} under {profile}: no longer blocked by {} on its own (depth {depth_was} -> {depth_now})",
                        lost.iter().map(|l| l.name()).collect::<Vec<_>>().join(", ")
                    )?;
                }
                if *depth_now == 1 && *depth_was > 1 {
                    f.write_str(": now one layer from escaping")?;
                }
                write!(f, " (baseline: {was}; now: {now})")
            }
            Regression::Unexplained {
                profile,
                probe,
                depth_was,
                depth_now,
                completeness_lost,
                was,
                now,
            } => {
                write!(
                    f,
                    "{probe} under {profile}: block no longer explained by its layers (depth {depth_was} -> {depth_now}"
                )?;
                if *completeness_lost {
                    f.write_str("; with every candidate layer off it no longer escapes")?;
                }
                write!(
                    f,
                    "), so it is no evidence those layers still work (baseline: {was}; now: {now})"
                )
            }
            Regression::NowSkipped {
                profile,
                probe,
                was,
                reason,
            } => write!(
                f,
                "{probe} under {profile}: skipped (baseline: {}): {reason}",
                verdict_name(*was)
            ),
            Regression::Missing { profile, probe } => {
                write!(f, "{probe} under {profile}: missing from the run (the run selected it; present in the baseline)")
            }
            Regression::PositiveControlLost { profile, probe, now, reason } => write!(
                f,
                "{probe} under {profile}: {} but a configuration without layers must let it escape (positive control): {reason}",
                verdict_name(*now)
            ),
            Regression::WorkloadBroken {
                profile,
                workload,
                now,
                step,
                reason,
            } => write!(
                f,
                "workload {workload} under {profile}: {}{} (baseline: works): {reason}",
                now.map_or("missing from the run", |v| v.as_str()),
                step.as_ref().map(|s| format!(" at {s}")).unwrap_or_default()
            ),
            Regression::KernelChanged { baseline, run } => write!(
                f,
                "kernel {run} is not the baseline's {baseline} (--strict-kernel)"
            ),
            Regression::KernelNotInBaseline { run, baseline } => write!(
                f,
                "kernel {run}: the baseline holds no results for this kernel (it holds {}), so none of this kernel's results were judged; verdicts differ between kernels: write a baseline on {run} too (a baseline may hold several kernels: run --kernel A --kernel B --write-baseline FILE)",
                if baseline.is_empty() { "none".to_string() } else { baseline.join(", ") }
            ),
            Regression::OnKernel { kernel, regression } => write!(f, "[{kernel}] {regression}"),
        }
    }
}

/// A result the baseline does not have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewResult {
    /// The kernel, in a run on several kernels (else empty).
    pub kernel: String,
    pub profile: String,
    pub probe: String,
    pub verdict: Verdict,
    /// The cell as every report writes it ("ESCAPED", "blocked: pid-ns").
    pub cell: String,
}

/// The gate's findings.
#[derive(Debug, Default)]
pub struct GateReport {
    pub regressions: Vec<Regression>,
    /// Results the baseline does not have, with their verdicts.
    pub new_results: Vec<NewResult>,
    /// Results better than the baseline (an escape now blocked, a deeper block) or otherwise
    /// different without being worse (other sufficient layers, an inconclusive now decided).
    pub changes: Vec<String>,
    /// One line each: what the comparison rests on (scope, verdicts only, kernel).
    pub notes: Vec<String>,
    /// Baseline results judged.
    pub compared: usize,
    /// Baseline results outside the run's selection (not judged).
    pub outside_selection: usize,
    /// Layers were compared (both sides attributed).
    pub layers_compared: bool,
}

impl GateReport {
    pub fn passed(&self) -> bool {
        self.regressions.is_empty()
    }

    /// The regression about one (profile, probe) pair, if any.
    pub fn regression(&self, profile: &str, probe: &str) -> Option<&Regression> {
        self.regressions
            .iter()
            .find(|r| r.pair() == Some((profile, probe)))
    }

    /// The regression about one (profile, probe) pair on one kernel (a regression of a run on
    /// one kernel carries none and is about its only kernel).
    pub fn regression_on(&self, kernel: &str, profile: &str, probe: &str) -> Option<&Regression> {
        self.regressions.iter().find(|r| {
            r.pair() == Some((profile, probe))
                && match r {
                    Regression::OnKernel { kernel: k, .. } => k == kernel,
                    _ => true,
                }
        })
    }
}

/// "[6.12.57+deb13-cloud-amd64] " for a result of a run on several kernels.
pub fn kernel_prefix(kernel: &str) -> String {
    if kernel.is_empty() {
        String::new()
    } else {
        format!("[{kernel}] ")
    }
}
