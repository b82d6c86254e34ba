//! The regression gate: compare a run against a baseline and say what got worse.
//!
//! Worse means, per (profile, probe) of the baseline:
//! - a new escape (the baseline did not escape, the run did);
//! - a block that is no longer a block (inconclusive, skipped): the assurance is gone;
//! - fewer sufficient layers: a layer the baseline credited as sufficient is not any more
//!   (reported with the depth before and after);
//! - a probe gone missing from the run;
//! - a lost positive control: under a configuration with no layers the probe must escape.
//!
//! Results present in the run but not in the baseline are reported as new, never as regressions.

use crate::model::{ProbeResult, RunReport, SCHEMA_VERSION};
use breakout_attacks::{Layer, Verdict};
use std::collections::BTreeMap;
use std::fmt;
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
        source: serde_json::Error,
    },
    #[error(
        "{what} {path} has results schema version {found}, this breakout reads version {expected}"
    )]
    Schema {
        what: &'static str,
        path: PathBuf,
        found: u32,
        expected: u32,
    },
    #[error("cannot write baseline {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Load a results file (results.json or a baseline), checking the schema version before the
/// full parse so an old file gets a clear message.
pub fn load(path: &Path, what: &'static str) -> Result<RunReport, GateError> {
    let text = std::fs::read_to_string(path).map_err(|source| GateError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|source| GateError::Parse {
            what,
            path: path.to_path_buf(),
            source,
        })?;
    if let Some(found) = value.get("schema_version").and_then(|v| v.as_u64()) {
        if found != u64::from(SCHEMA_VERSION) {
            return Err(GateError::Schema {
                what,
                path: path.to_path_buf(),
                found: found as u32,
                expected: SCHEMA_VERSION,
            });
        }
    }
    serde_json::from_value(value).map_err(|source| GateError::Parse {
        what,
        path: path.to_path_buf(),
        source,
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

/// One way a result got worse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Regression {
    NewEscape {
        profile: String,
        probe: String,
        was: Verdict,
        reason: String,
    },
    NoLongerBlocked {
        profile: String,
        probe: String,
        now: Verdict,
        reason: String,
    },
    FewerSufficient {
        profile: String,
        probe: String,
        lost: Vec<Layer>,
        depth_was: usize,
        depth_now: usize,
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
}

impl fmt::Display for Regression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Regression::NewEscape { profile, probe, was, reason } => {
                write!(f, "{probe} under {profile}: ESCAPED (baseline: {}): {reason}", verdict_name(*was))
            }
            Regression::NoLongerBlocked { profile, probe, now, reason } => {
                write!(f, "{probe} under {profile}: {} (baseline: blocked): {reason}", verdict_name(*now))
            }
            Regression::FewerSufficient {
                profile,
                probe,
                lost,
                depth_was,
                depth_now,
            } => write!(
                f,
                "{probe} under {profile}: no longer blocked by {} on its own (depth {depth_was} -> {depth_now})",
                lost.iter().map(|l| l.name()).collect::<Vec<_>>().join(", ")
            ),
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
                write!(f, "{probe} under {profile}: missing from the run (present in the baseline)")
            }
            Regression::PositiveControlLost { profile, probe, now, reason } => write!(
                f,
                "{probe} under {profile}: {} but a configuration without layers must let it escape (positive control): {reason}",
                verdict_name(*now)
            ),
        }
    }
}

/// The gate's findings.
#[derive(Debug, Default)]
pub struct GateReport {
    pub regressions: Vec<Regression>,
    /// (profile, probe) pairs the baseline does not know.
    pub new_results: Vec<(String, String)>,
    /// Results better than the baseline (an escape now blocked, a deeper block).
    pub improvements: Vec<String>,
    pub compared: usize,
}

impl GateReport {
    pub fn passed(&self) -> bool {
        self.regressions.is_empty()
    }
}

pub fn verdict_name(v: Verdict) -> &'static str {
    match v {
        Verdict::Escaped => "escaped",
        Verdict::Blocked => "blocked",
        Verdict::Inconclusive => "inconclusive",
        Verdict::Skipped => "skipped",
    }
}

/// Judge one result against its baseline entry (None: the baseline does not have it).
/// `no_layers`: the configuration switches no layer on (a positive control).
pub fn judge(
    baseline: &ProbeResult,
    current: Option<&ProbeResult>,
    no_layers: bool,
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
        (Verdict::Blocked, Verdict::Blocked) => {
            let was = baseline
                .attribution
                .as_ref()
                .map(|a| a.sufficient.clone())
                .unwrap_or_default();
            let now = current
                .attribution
                .as_ref()
                .map(|a| a.sufficient.clone())
                .unwrap_or_default();
            let lost: Vec<Layer> = was.iter().copied().filter(|l| !now.contains(l)).collect();
            if !lost.is_empty() {
                return Err(Regression::FewerSufficient {
                    profile,
                    probe,
                    lost,
                    depth_was: was.len(),
                    depth_now: now.len(),
                });
            }
            if now.len() > was.len() {
                Ok(Some(format!(
                    "{probe} under {profile}: depth {} -> {}",
                    was.len(),
                    now.len()
                )))
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
        _ => Ok(None),
    }
}

/// Compare a whole run with a baseline.
pub fn compare(baseline: &RunReport, current: &RunReport) -> GateReport {
    let key = |r: &ProbeResult| (r.profile.clone(), r.probe.clone());
    let now: BTreeMap<(String, String), &ProbeResult> =
        current.results.iter().map(|r| (key(r), r)).collect();
    let base_keys: BTreeMap<(String, String), &ProbeResult> =
        baseline.results.iter().map(|r| (key(r), r)).collect();
    let mut report = GateReport::default();
    for (k, base) in &base_keys {
        let no_layers = configuration_without_layers(baseline, &base.profile)
            || configuration_without_layers(current, &base.profile);
        report.compared += 1;
        match judge(base, now.get(k).copied(), no_layers) {
            Ok(Some(better)) => report.improvements.push(better),
            Ok(None) => {}
            Err(regression) => report.regressions.push(regression),
        }
    }
    report.new_results = now
        .keys()
        .filter(|k| !base_keys.contains_key(*k))
        .cloned()
        .collect();
    report
}

/// Whether the report knows `profile` as a configuration of our runtime with no layer on.
pub fn configuration_without_layers(report: &RunReport, profile: &str) -> bool {
    report
        .profiles
        .iter()
        .any(|p| p.name == profile && p.runtime == "breakout" && p.layers.is_empty())
}

/// The gate's text output: regressions first, then the rest in one line each.
pub fn render(report: &GateReport, baseline: &Path) -> String {
    let mut out = String::new();
    if report.passed() {
        out.push_str(&format!(
            "gate passed: {} results compared with {}, no regression\n",
            report.compared,
            baseline.display()
        ));
    } else {
        out.push_str(&format!(
            "gate FAILED: {} regression(s) against {}:\n",
            report.regressions.len(),
            baseline.display()
        ));
        for r in &report.regressions {
            out.push_str(&format!("  - {r}\n"));
        }
    }
    for better in &report.improvements {
        out.push_str(&format!("  better: {better}\n"));
    }
    for (profile, probe) in &report.new_results {
        out.push_str(&format!(
            "  new (not in the baseline): {probe} under {profile}\n"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Attribution, Environment, Evidence, ProfileInfo, Timings};
    use rstest::rstest;

    pub(crate) fn result(
        profile: &str,
        probe: &str,
        verdict: Verdict,
        sufficient: &[Layer],
    ) -> ProbeResult {
        ProbeResult {
            probe: probe.to_string(),
            profile: profile.to_string(),
            verdict,
            reason: "test".to_string(),
            evidence: Evidence::default(),
            attribution: (verdict == Verdict::Blocked).then(|| Attribution {
                necessary: vec![],
                sufficient: sufficient.to_vec(),
                depth: sufficient.len(),
                candidates_complete: true,
                ..Attribution::default()
            }),
            duration_ms: 1,
        }
    }

    fn report(results: Vec<ProbeResult>) -> RunReport {
        RunReport {
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
            results,
            timings: Timings::default(),
        }
    }

    use Layer::*;
    use Verdict::*;

    #[rstest]
    #[case::same(Blocked, &[PidNs, UserNs], Blocked, &[PidNs, UserNs], None)]
    #[case::new_escape(Blocked, &[PidNs], Escaped, &[], Some("ESCAPED"))]
    #[case::lost_layer(Blocked, &[PidNs, UserNs], Blocked, &[UserNs], Some("no longer blocked by pid-ns on its own (depth 2 -> 1)"))]
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
    fn a_probe_gone_missing_fails_and_a_new_one_does_not() {
        let base = report(vec![result("strict", "ptrace-outside", Blocked, &[PidNs])]);
        let run = report(vec![result("strict", "mount", Blocked, &[Caps])]);
        let gate = compare(&base, &run);
        assert_eq!(
            gate.regressions,
            vec![Regression::Missing {
                profile: "strict".to_string(),
                probe: "ptrace-outside".to_string()
            }]
        );
        assert_eq!(
            gate.new_results,
            vec![("strict".to_string(), "mount".to_string())]
        );
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
