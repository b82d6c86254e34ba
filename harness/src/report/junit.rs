//! JUnit XML: one testsuite per profile, one testcase per (profile, probe) and one per
//! (profile, workload) (named `workload:<id>`), so a CI test view agrees with the gate.
//!
//! With a baseline (`run --baseline`, `gate --format junit`), a testcase fails exactly when the
//! gate calls its pair a regression; everything else passes, or is skipped with its reason
//! (skipped, inconclusive). Regressions without a result (a missing pair, the kernel under
//! `--strict-kernel`) are testcases of a last suite, `gate`.
//!
//! Without a baseline: an escape under a configuration with layers fails; under a configuration
//! of ours without any layer (`none`) the testcase is the positive control instead, where the
//! escape passes and a block or inconclusive fails ("a probe that cannot escape an unsandboxed
//! process proves nothing"). An inconclusive the oracle reached with a complete run (see
//! [`ProbeResult::structurally_inconclusive`]) is skipped with its reason; one from a timeout,
//! crash or lost guest is an error. A workload the sandbox broke fails (with a baseline: only
//! when the gate calls it a regression), a skipped one is skipped. The environment goes into
//! each suite's properties so CI systems show it beside the results.

use super::cell::cell_text;
use super::escape::markup;
use super::matrix::Matrix;
use crate::model::gate::{GateReport, Regression};
use crate::model::{ProbeResult, RunReport, WorkloadResult};
use breakout_attacks::workloads::WorkloadVerdict;
use breakout_attacks::Verdict;
use std::fmt::Write;

/// What one testcase says.
enum Case {
    Pass,
    Failure { kind: &'static str, message: String },
    Error { message: String },
    Skipped { message: String },
}

fn case_of(
    r: &ProbeResult,
    kernel: Option<&str>,
    positive_control: bool,
    gate: Option<&GateReport>,
) -> Case {
    if let Some(gate) = gate {
        let regression = match kernel {
            Some(k) => gate.regression_on(k, &r.profile, &r.probe),
            None => gate.regression(&r.profile, &r.probe),
        };
        if let Some(regression) = regression {
            return Case::Failure {
                kind: regression.kind(),
                message: format!("regression: {regression}"),
            };
        }
        return match r.verdict {
            Verdict::Skipped => Case::Skipped {
                message: r.reason.clone(),
            },
            Verdict::Inconclusive => Case::Skipped {
                message: format!("inconclusive (not a regression): {}", r.reason),
            },
            Verdict::Escaped | Verdict::Blocked => Case::Pass,
        };
    }
    match (r.verdict, positive_control) {
        (Verdict::Escaped, false) => Case::Failure {
            kind: "escaped",
            message: format!("escaped: {}", r.reason),
        },
        (Verdict::Blocked | Verdict::Inconclusive, true) => Case::Failure {
            kind: "positive-control",
            message: format!(
                "positive control failed: {} without any layer, so the probe proves nothing: {}",
                crate::model::verdict_name(r.verdict),
                r.reason
            ),
        },
        (Verdict::Escaped, true) | (Verdict::Blocked, false) => Case::Pass,
        (Verdict::Inconclusive, false) if r.structurally_inconclusive() => Case::Skipped {
            message: format!(
                "inconclusive: the oracle cannot decide under this configuration: {}",
                r.reason
            ),
        },
        (Verdict::Inconclusive, false) => Case::Error {
            message: format!("inconclusive: {}", r.reason),
        },
        (Verdict::Skipped, _) => Case::Skipped {
            message: r.reason.clone(),
        },
    }
}

/// What one workload's testcase says: with a baseline, a failure exactly when the gate calls
/// the pair a regression (a workload broken in the baseline too passes, as an escape does);
/// without one, a workload the sandbox broke fails.
fn workload_case(w: &WorkloadResult, kernel: Option<&str>, gate: Option<&GateReport>) -> Case {
    if let Some(gate) = gate {
        if let Some(regression) = workload_regression(gate, kernel, &w.profile, &w.workload) {
            return Case::Failure {
                kind: regression.kind(),
                message: format!("regression: {regression}"),
            };
        }
    }
    match (w.verdict, gate) {
        (WorkloadVerdict::Skipped, _) => Case::Skipped {
            message: w.reason.clone(),
        },
        (WorkloadVerdict::Broken, None) => Case::Failure {
            kind: "workload-broken",
            message: format!("the sandbox broke a benign workload: {}", w.reason),
        },
        (WorkloadVerdict::Works, _) | (WorkloadVerdict::Broken, Some(_)) => Case::Pass,
    }
}

/// The gate's regression about one workload under one profile (on `kernel` in a run on
/// several); never a probe's regression of the same name.
fn workload_regression<'g>(
    gate: &'g GateReport,
    kernel: Option<&str>,
    profile: &str,
    workload: &str,
) -> Option<&'g Regression> {
    gate.regressions.iter().find(|r| {
        is_workload_regression(r)
            && r.pair() == Some((profile, workload))
            && match (kernel, r) {
                (Some(k), Regression::OnKernel { kernel, .. }) => kernel == k,
                _ => true,
            }
    })
}

fn is_workload_regression(r: &Regression) -> bool {
    match r {
        Regression::WorkloadBroken { .. } => true,
        Regression::OnKernel { regression, .. } => is_workload_regression(regression),
        _ => false,
    }
}

#[derive(Default)]
struct Counts {
    tests: usize,
    failures: usize,
    errors: usize,
    skipped: usize,
}

impl Counts {
    fn add(&mut self, case: &Case) {
        self.tests += 1;
        match case {
            Case::Pass => {}
            Case::Failure { .. } => self.failures += 1,
            Case::Error { .. } => self.errors += 1,
            Case::Skipped { .. } => self.skipped += 1,
        }
    }
}

/// JUnit for a run on its own.
pub fn render(report: &RunReport) -> String {
    render_gated(report, None)
}

/// JUnit for a run, judged by the gate when `gate` is given.
pub fn render_gated(report: &RunReport, gate: Option<&GateReport>) -> String {
    // A run on several kernels: a suite per (configuration, kernel), named "strict on RELEASE",
    // each testcase judged against its own kernel's regressions.
    let parts: Vec<(Option<String>, RunReport)> = if report.multi_kernel() {
        report
            .kernel_releases()
            .into_iter()
            .map(|k| (Some(k.clone()), report.on_kernel(&k)))
            .collect()
    } else {
        vec![(None, report.clone())]
    };
    let mut suites: Vec<Suite> = Vec::new();
    for (kernel, part) in &parts {
        let matrix = Matrix::of(part);
        let mut profiles: Vec<&str> = matrix.profiles.to_vec();
        // A profile that ran workloads only still gets its suite.
        for w in &part.workloads {
            if !profiles.contains(&w.profile.as_str()) {
                profiles.push(&w.profile);
            }
        }
        for profile in profiles {
            let control = crate::model::configuration_without_layers(part, profile);
            let cases = matrix
                .column(profile)
                .map(|r| (r, case_of(r, kernel.as_deref(), control, gate)))
                .collect();
            let workloads = part
                .workloads
                .iter()
                .filter(|w| w.profile == profile)
                .map(|w| (w, workload_case(w, kernel.as_deref(), gate)))
                .collect();
            let name = match kernel {
                Some(k) => format!("{profile} on {k}"),
                None => profile.to_string(),
            };
            suites.push(Suite {
                name,
                part,
                profile,
                cases,
                workloads,
            });
        }
    }
    let has_cell = |kernel: Option<&str>, profile: &str, probe: &str| {
        parts.iter().any(|(k, part)| {
            (kernel.is_none() || k.as_deref() == kernel)
                && part
                    .results
                    .iter()
                    .any(|r| r.profile == profile && r.probe == probe)
        })
    };
    let has_workload = |kernel: Option<&str>, profile: &str, workload: &str| {
        parts.iter().any(|(k, part)| {
            (kernel.is_none() || k.as_deref() == kernel)
                && part
                    .workloads
                    .iter()
                    .any(|w| w.profile == profile && w.workload == workload)
        })
    };
    // Regressions with no result to hang on: a pair gone missing, the kernel.
    let orphans: Vec<(String, String, Case)> = gate
        .map(|g| {
            g.regressions
                .iter()
                .filter(|reg| match reg.pair() {
                    Some((profile, workload)) if is_workload_regression(reg) => {
                        !has_workload(reg.kernel(), profile, workload)
                    }
                    Some((profile, probe)) => !has_cell(reg.kernel(), profile, probe),
                    None => true,
                })
                .map(|reg| {
                    let (classname, name) = match (reg.pair(), reg.kernel()) {
                        (Some((profile, probe)), None) => (profile.to_string(), probe.to_string()),
                        (Some((profile, probe)), Some(k)) => {
                            (format!("{profile}@{k}"), probe.to_string())
                        }
                        (None, Some(k)) => ("gate".to_string(), format!("kernel {k}")),
                        (None, None) => ("gate".to_string(), "kernel".to_string()),
                    };
                    let case = Case::Failure {
                        kind: reg.kind(),
                        message: format!("regression: {reg}"),
                    };
                    (classname, name, case)
                })
                .collect()
        })
        .unwrap_or_default();
    let mut all = Counts::default();
    for suite in &suites {
        for case in suite.all_cases() {
            all.add(case);
        }
    }
    for (_, _, case) in &orphans {
        all.add(case);
    }
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"breakout\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{}\">",
        all.tests,
        all.failures,
        all.errors,
        all.skipped,
        secs(report.timings.total_ms)
    );
    for whole in &suites {
        let Suite {
            name: suite,
            part,
            profile,
            cases,
            workloads,
        } = whole;
        let mut counts = Counts::default();
        for case in whole.all_cases() {
            counts.add(case);
        }
        let time: u64 = cases.iter().map(|(r, _)| r.duration_ms).sum::<u64>()
            + workloads.iter().map(|(w, _)| w.duration_ms).sum::<u64>();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{}\">",
            markup(suite),
            counts.tests,
            counts.failures,
            counts.errors,
            counts.skipped,
            secs(time)
        );
        out.push_str("    <properties>\n");
        for (name, value) in properties(part, profile) {
            let _ = writeln!(
                out,
                "      <property name=\"{}\" value=\"{}\"/>",
                markup(&name),
                markup(&value)
            );
        }
        out.push_str("    </properties>\n");
        let kernel = part.multi_kernel() || report.multi_kernel();
        for (result, case) in cases {
            testcase(
                &mut out,
                result,
                case,
                kernel.then(|| part.kernel_of(result)),
            );
        }
        for (workload, case) in workloads {
            let on = kernel.then(|| part.kernel_of_workload(workload));
            workload_testcase(&mut out, workload, case, on);
        }
        out.push_str("  </testsuite>\n");
    }
    if !orphans.is_empty() {
        let _ = writeln!(
            out,
            "  <testsuite name=\"gate\" tests=\"{0}\" failures=\"{0}\" errors=\"0\" skipped=\"0\" time=\"0.000\">",
            orphans.len()
        );
        for (classname, name, case) in &orphans {
            if let Case::Failure { kind, message } = case {
                let _ = writeln!(
                    out,
                    "    <testcase name=\"{}\" classname=\"breakout.{}\" time=\"0.000\">\n      <failure type=\"{kind}\" message=\"{}\"/>\n    </testcase>",
                    markup(name),
                    markup(classname),
                    markup(message)
                );
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// One testsuite: a profile (on one kernel of a run on several), its probes' and its
/// workloads' testcases.
struct Suite<'a> {
    name: String,
    part: &'a RunReport,
    profile: &'a str,
    cases: Vec<(&'a ProbeResult, Case)>,
    workloads: Vec<(&'a WorkloadResult, Case)>,
}

impl Suite<'_> {
    fn all_cases(&self) -> impl Iterator<Item = &Case> {
        self.cases
            .iter()
            .map(|(_, c)| c)
            .chain(self.workloads.iter().map(|(_, c)| c))
    }
}

/// One workload's testcase, `workload:<id>` in its profile's class.
fn workload_testcase(out: &mut String, w: &WorkloadResult, case: &Case, kernel: Option<&str>) {
    let mut text = format!("{}: {}\n", w.verdict.as_str(), w.reason);
    if let Some(step) = &w.step {
        let _ = writeln!(text, "step: {step}");
    }
    if !w.stderr_tail.is_empty() {
        let _ = writeln!(text, "stderr: {}", w.stderr_tail);
    }
    let name = format!("workload:{}", w.workload);
    write_testcase(out, &name, &w.profile, kernel, w.duration_ms, case, &text);
}

/// One probe's testcase; `kernel` in a run on several kernels (the classname carries it, so the
/// pair's testcases on two kernels are two tests).
fn testcase(out: &mut String, r: &ProbeResult, case: &Case, kernel: Option<&str>) {
    let details = details(r);
    write_testcase(
        out,
        &r.probe,
        &r.profile,
        kernel,
        r.duration_ms,
        case,
        &details,
    );
}

/// A `<testcase>` in the class `breakout.<profile>[@kernel]` saying `case`, with `details` as
/// the body of a failure or an error, or as the output of a pass.
fn write_testcase(
    out: &mut String,
    name: &str,
    profile: &str,
    kernel: Option<&str>,
    ms: u64,
    case: &Case,
    details: &str,
) {
    let classname = match kernel {
        Some(k) => format!("{profile}@{k}"),
        None => profile.to_string(),
    };
    let _ = write!(
        out,
        "    <testcase name=\"{}\" classname=\"breakout.{}\" time=\"{}\">\n      ",
        markup(name),
        markup(&classname),
        secs(ms)
    );
    let details = markup(details);
    let _ = match case {
        Case::Failure { kind, message } => write!(
            out,
            "<failure type=\"{kind}\" message=\"{}\">{details}</failure>",
            markup(message)
        ),
        Case::Error { message } => write!(
            out,
            "<error type=\"inconclusive\" message=\"{}\">{details}</error>",
            markup(message)
        ),
        Case::Skipped { message } => write!(out, "<skipped message=\"{}\"/>", markup(message)),
        Case::Pass => write!(out, "<system-out>{details}</system-out>"),
    };
    out.push_str("\n    </testcase>\n");
}

/// The body text: the cell, the oracle's line, the steps and the exit.
fn details(r: &ProbeResult) -> String {
    let mut text = format!("{}\noracle: {}\n", cell_text(r), r.reason);
    if let Some(a) = &r.attribution {
        let names = |ls: &[breakout_attacks::Layer]| {
            ls.iter().map(|l| l.name()).collect::<Vec<_>>().join(", ")
        };
        let _ = writeln!(
            text,
            "attribution{}: sufficient [{}], necessary [{}], depth {}",
            if a.inferred { " (inferred)" } else { "" },
            names(&a.sufficient),
            names(&a.necessary),
            a.depth
        );
    }
    for step in &r.evidence.steps {
        let _ = writeln!(text, "step: {}", super::step_line(step));
    }
    if let Some(exit) = r.evidence.exit {
        let _ = writeln!(text, "exit: {}", super::exit_text(exit));
    }
    if r.evidence.timed_out {
        text.push_str("timed out\n");
    }
    text
}

fn properties(report: &RunReport, profile: &str) -> Vec<(String, String)> {
    let env = &report.environment;
    let mut props = vec![
        (
            "breakout.version".to_string(),
            report.breakout_version.clone(),
        ),
        ("kernel".to_string(), env.kernel_release.clone()),
        ("kernel.uname".to_string(), env.kernel.clone()),
        ("arch".to_string(), env.arch.clone()),
        ("cpus".to_string(), env.cpus.to_string()),
        ("accel".to_string(), env.accel.clone()),
        ("lsms".to_string(), env.lsms.join(",")),
    ];
    if let Some(info) = report.profiles.iter().find(|p| p.name == profile) {
        props.push(("runtime".to_string(), info.runtime.clone()));
        props.push((
            "layers".to_string(),
            info.layers
                .iter()
                .map(|l| l.name())
                .collect::<Vec<_>>()
                .join(","),
        ));
    }
    for (k, v) in &env.sysctls {
        props.push((format!("sysctl.{k}"), v.clone()));
    }
    for (k, v) in &env.vulnerabilities {
        props.push((format!("vulnerability.{k}"), v.clone()));
    }
    props
}

fn secs(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}
