//! A run on two kernels (`run --kernel A --kernel B`): every report has a kernel dimension and a
//! "differs by kernel" section naming each cell that differs with both kernels' cells; the
//! results validate against the schema; the gate judges each kernel against its own baseline.

mod common;

use breakout_attacks::Verdict;
use breakout_harness::model::{Environment, RunReport};
use breakout_harness::report::{self, Format};
use common::sample_report;

const K61: &str = "6.1.0-57-cloud-amd64";
const K612: &str = "6.12.57+deb13-cloud-amd64";

/// The sample on 6.1 and again on 6.12, where hostname under namespaces escapes.
fn two_kernels() -> RunReport {
    let mut report = sample_report();
    let base = report.environment.clone();
    let env = |release: &str| Environment {
        kernel: format!("Linux {release} #1 SMP"),
        kernel_release: release.to_string(),
        ..base.clone()
    };
    report.environment = env(K61);
    report.kernels = vec![env(K61), env(K612)];
    let mut second = report.results.clone();
    for r in &mut report.results {
        r.kernel = K61.to_string();
    }
    for r in &mut second {
        r.kernel = K612.to_string();
        if r.probe == "hostname" && r.profile == "namespaces" {
            r.verdict = Verdict::Escaped;
            r.attribution = None;
        }
    }
    report.results.extend(second);
    report
}

#[test]
fn every_report_has_a_kernel_dimension_and_the_cells_that_differ() {
    let report = two_kernels();
    assert!(report.multi_kernel());
    let table = report::render(&report, Format::Table);
    assert!(table.contains(&format!("=== kernel {K61} ===")), "{table}");
    assert!(table.contains(&format!("=== kernel {K612} ===")), "{table}");
    assert!(table.contains("differs by kernel (1 cell(s)):"), "{table}");
    let line = table
        .lines()
        .find(|l| l.contains("hostname under namespaces:"))
        .expect("the differing cell is listed");
    assert!(
        line.contains(&format!("{K61}: blocked")) && line.contains(&format!("{K612}: ESCAPED")),
        "{line}"
    );

    let md = report::render(&report, Format::Markdown);
    assert!(md.contains("#### Differs by kernel (1 cell(s))"), "{md}");
    assert!(md.contains(&format!("Matrix on kernel {K612}")), "{md}");
    assert!(md.contains(&format!("Environment on kernel {K61}")), "{md}");
    // Without a baseline, the escape lists its kernel.
    assert!(
        md.contains(&format!("[{K612}] `hostname` under namespaces")),
        "{md}"
    );

    let html = report::render(&report, Format::Html);
    assert!(html.contains("Differs by kernel (1 cell(s))"), "{html}");
    assert!(html.contains(&format!("<h3>Matrix on kernel {K612}</h3>")));
    // Each kernel's cell links to its own details.
    assert!(html.contains("href=\"#r-namespaces-hostname-k1\""));
    assert!(html.contains("id=\"r-namespaces-hostname-k1\""));

    let junit = report::render(&report, Format::Junit);
    assert!(
        junit.contains(&format!("<testsuite name=\"namespaces on {K612}\"")),
        "{junit}"
    );
    assert!(junit.contains(&format!("classname=\"breakout.namespaces@{K612}\"")));
    assert_eq!(junit.matches("<testcase ").count(), report.results.len());

    let json: serde_json::Value =
        serde_json::from_str(&report::render(&report, Format::Json)).unwrap();
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../../docs/results-schema.json")).unwrap();
    let validator = jsonschema::draft202012::new(&schema).unwrap();
    let problems: Vec<String> = validator
        .iter_errors(&json)
        .map(|e| e.to_string())
        .collect();
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn a_run_on_one_kernel_reads_as_before() {
    let report = sample_report();
    assert!(!report.multi_kernel());
    let table = report::render(&report, Format::Table);
    assert!(!table.contains("=== kernel") && !table.contains("differs by kernel"));
    let junit = report::render(&report, Format::Junit);
    assert!(!junit.contains("classname=\"breakout.strict@"), "{junit}");
}

#[test]
fn the_gate_on_two_kernels_names_the_kernel_of_a_regression() {
    let baseline = two_kernels();
    // The sample holds a positive control that did not escape (io-uring under none): one
    // regression per kernel, each named with its kernel.
    let same = breakout_harness::suite::gate::compare(&baseline, &baseline);
    assert_eq!(same.regressions.len(), 2, "{:?}", same.regressions);
    assert!(same.regressions.iter().all(|r| r.kernel().is_some()));
    let mut worse = two_kernels();
    for r in &mut worse.results {
        if r.kernel == K61 && r.probe == "ptrace-outside" && r.profile == "strict" {
            r.verdict = Verdict::Escaped;
            r.attribution = None;
        }
    }
    let gate = breakout_harness::suite::gate::compare(&baseline, &worse);
    assert_eq!(gate.regressions.len(), 3, "{:?}", gate.regressions);
    assert!(gate
        .regression_on(K61, "strict", "ptrace-outside")
        .is_some());
    assert!(gate
        .regression_on(K612, "strict", "ptrace-outside")
        .is_none());
    let junit = report::render_gated(&worse, Format::Junit, Some((&gate, "b.json")));
    // The failing ptrace-outside testcase is the 6.1 one; the 6.12 one of the same pair passes.
    let failing: Vec<&str> = junit
        .split("<testcase ")
        .filter(|c| c.contains("<failure") && c.starts_with("name=\"ptrace-outside\""))
        .collect();
    assert_eq!(failing.len(), 1, "{junit}");
    assert!(
        failing[0].contains(&format!("classname=\"breakout.strict@{K61}\"")),
        "{}",
        failing[0]
    );
}

/// Where the configurations differ (`breakout compare`, report.md and report.html of a
/// comparison): a row per kernel on which they differ, each naming its kernel. The grid was
/// keyed by probe and configuration only, so the second kernel's cells replaced the first's:
/// hostname under namespaces read `ESCAPED` and the 6.1 run's block was gone.
#[test]
fn where_they_differ_keeps_each_kernels_cells() {
    let report = two_kernels();
    let found = report::matrix::disagreements(&report);
    let hostname: Vec<_> = found.iter().filter(|d| d.probe == "hostname").collect();
    assert_eq!(hostname.len(), 2, "{found:?}");
    let cell = |d: &report::matrix::Disagreement| {
        d.cells
            .iter()
            .find(|(p, _)| p == "namespaces")
            .map(|(_, t)| t.clone())
            .unwrap()
    };
    assert_eq!(hostname[0].kernel.as_deref(), Some(K61));
    assert!(
        cell(hostname[0]).starts_with("blocked"),
        "{:?}",
        hostname[0]
    );
    assert_eq!(hostname[1].kernel.as_deref(), Some(K612));
    assert!(
        cell(hostname[1]).starts_with("ESCAPED"),
        "{:?}",
        hostname[1]
    );
    assert_eq!(hostname[0].label(), format!("hostname on {K61}"));
    let md = report::render_compared(&report, Format::Markdown);
    assert!(md.contains(&format!("| `hostname on {K61}` |")), "{md}");
    // A run on one kernel names no kernel.
    let one = report.on_kernel(K61);
    assert!(report::matrix::disagreements(&one)
        .iter()
        .all(|d| d.kernel.is_none() && d.label() == d.probe));
}

/// `breakout explain PROBE --results` on a run on two kernels: a row per configuration and
/// kernel, each naming its kernel.
#[test]
fn explain_names_the_kernel_of_each_measured_row() {
    let report = two_kernels();
    let meta = breakout_attacks::probe("hostname").unwrap().meta();
    let text = breakout_harness::describe::explain_probe(meta, Some(&report));
    assert!(text.contains(&format!("namespaces on {K61}")), "{text}");
    assert!(text.contains(&format!("namespaces on {K612}")), "{text}");
    let layer =
        breakout_harness::describe::explain_layer(breakout_attacks::Layer::UtsNs, Some(&report));
    assert!(layer.contains(&format!(" on {K61}")), "{layer}");
}
