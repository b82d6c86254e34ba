//! junit.xml parses (roxmltree) and says the right thing per cell: an escape is a failure,
//! inconclusive an error, skipped skipped, blocked a pass; hostile evidence cannot break it.

mod common;

use breakout_attacks::Verdict;
use breakout_harness::report::{self, Format};
use common::{sample_report, HOSTILE};

fn attr<'a>(node: roxmltree::Node<'a, '_>, name: &str) -> &'a str {
    node.attribute(name)
        .unwrap_or_else(|| panic!("<{}> has no {name}", node.tag_name().name()))
}

/// The sample with one escape outside `none` and one positive control that failed.
fn report_with_findings() -> breakout_harness::model::RunReport {
    let mut report = sample_report();
    for r in &mut report.results {
        match (r.probe.as_str(), r.profile.as_str()) {
            ("ptrace-outside", "namespaces") => {
                r.verdict = Verdict::Escaped;
                r.attribution = None;
            }
            ("hostname", "none") => r.verdict = Verdict::Blocked,
            _ => {}
        }
    }
    report
}

#[test]
fn junit_parses_with_one_testcase_per_pair() {
    let report = report_with_findings();
    let xml = report::render(&report, Format::Junit);
    let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    assert_eq!(attr(root, "tests"), report.results.len().to_string());
    // The escape, the blocked positive control, and io-uring's setup failure under none (an
    // inconclusive positive control proves nothing either).
    assert_eq!(attr(root, "failures"), "3");
    assert_eq!(attr(root, "errors"), "1", "the fork-bomb timeout");
    assert_eq!(attr(root, "skipped"), "3");
    let suites: Vec<_> = root
        .children()
        .filter(|n| n.has_tag_name("testsuite"))
        .collect();
    let names: Vec<&str> = suites.iter().map(|s| attr(*s, "name")).collect();
    assert_eq!(names, ["none", "namespaces", "strict", "bwrap"]);
    assert_eq!(
        attr(suites[0], "failures"),
        "2",
        "the failed positive controls"
    );
    assert_eq!(attr(suites[1], "failures"), "1", "the escape");
    let cases: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), report.results.len());
    for r in &report.results {
        let case = cases
            .iter()
            .find(|c| {
                attr(**c, "name") == r.probe
                    && attr(**c, "classname") == format!("breakout.{}", r.profile)
            })
            .unwrap_or_else(|| panic!("no testcase for {} under {}", r.probe, r.profile));
        let child = |tag: &str| case.children().find(|n| n.has_tag_name(tag));
        // `none` switches no layer on: there the probe must escape (positive control).
        let control = r.profile == "none";
        match (r.verdict, control) {
            (Verdict::Escaped, false) => {
                let failure = child("failure").expect("an escape is a failure");
                assert_eq!(attr(failure, "type"), "escaped");
                assert!(attr(failure, "message").starts_with("escaped: "));
            }
            (Verdict::Blocked | Verdict::Inconclusive, true) => {
                let failure = child("failure").expect("a failed positive control is a failure");
                assert_eq!(attr(failure, "type"), "positive-control");
                assert!(attr(failure, "message").starts_with("positive control failed"));
            }
            (Verdict::Inconclusive, false) => {
                assert!(child("error").is_some(), "a timeout is an error")
            }
            (Verdict::Skipped, _) => {
                assert_eq!(attr(child("skipped").unwrap(), "message"), r.reason)
            }
            (Verdict::Escaped, true) | (Verdict::Blocked, false) => {
                assert!(child("failure").is_none() && child("error").is_none());
                let out = child("system-out").unwrap().text().unwrap();
                assert!(
                    out.starts_with("blocked") || out.starts_with("ESCAPED"),
                    "{out}"
                );
            }
        }
    }
}

#[test]
fn junit_carries_the_environment_and_survives_hostile_text() {
    let xml = report::render(&sample_report(), Format::Junit);
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let props: Vec<(&str, &str)> = doc
        .descendants()
        .filter(|n| n.has_tag_name("property"))
        .map(|n| (attr(n, "name"), attr(n, "value")))
        .collect();
    assert!(props.contains(&("kernel", "6.1.0-27-cloud-amd64")));
    assert!(props
        .iter()
        .any(|(k, v)| *k == "kernel.uname" && v.starts_with("Linux 6.1.0-27-cloud-amd64")));
    assert!(props.contains(&("sysctl.kernel.kptr_restrict", "0")));
    assert!(props.contains(&(
        "vulnerability.mds",
        "Vulnerable: Clear CPU buffers attempted, no microcode"
    )));
    let error = doc
        .descendants()
        .filter(|n| n.has_tag_name("error"))
        .find(|n| attr(*n, "message").contains("timed out"))
        .expect("the inconclusive fork-bomb");
    // The message keeps the markup as text; the control characters became visible escapes.
    let message = attr(error, "message");
    assert!(
        message.contains("<script>alert(1)</script> & \"quotes\""),
        "{message}"
    );
    assert!(message.contains("\\u{1}\\u{1b}[31m"), "{message}");
    assert!(!HOSTILE.is_empty());
}

fn counts(xml: &str) -> (String, String, String) {
    let doc = roxmltree::Document::parse(xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    let root = doc.root_element();
    (
        attr(root, "failures").to_string(),
        attr(root, "errors").to_string(),
        attr(root, "skipped").to_string(),
    )
}

fn failed_cases(xml: &str) -> Vec<(String, String, String)> {
    let doc = roxmltree::Document::parse(xml).unwrap();
    doc.descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .filter_map(|c| {
            let f = c.children().find(|n| n.has_tag_name("failure"))?;
            Some((
                attr(c, "classname").to_string(),
                attr(c, "name").to_string(),
                attr(f, "type").to_string(),
            ))
        })
        .collect()
}

/// A run that setuid-gain cannot judge under namespaces (the oracle's structural inconclusive).
fn with_structural_inconclusive() -> breakout_harness::model::RunReport {
    let mut report = sample_report();
    let r = report
        .results
        .iter_mut()
        .find(|r| r.probe == "fork-bomb" && r.profile == "namespaces")
        .unwrap();
    r.evidence.timed_out = false;
    r.evidence.exit = Some(breakout_runtime::ExitKind::Exited { code: 0 });
    r.reason = "the payload could not drop to uid 1000 first".to_string();
    report
}

#[test]
fn a_structural_inconclusive_is_skipped_with_its_reason_not_an_error() {
    let report = with_structural_inconclusive();
    let xml = report::render(&report, Format::Junit);
    assert_eq!(counts(&xml).1, "0", "no error");
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let skipped = doc
        .descendants()
        .filter(|n| n.has_tag_name("skipped"))
        .find(|n| attr(*n, "message").contains("could not drop to uid 1000"))
        .expect("skipped with its reason");
    assert!(attr(skipped, "message").starts_with("inconclusive: the oracle cannot decide"));
}

#[test]
fn with_a_baseline_a_testcase_fails_exactly_when_the_gate_calls_it_a_regression() {
    let baseline = with_structural_inconclusive();
    // A green gate (the run is its own baseline): no failure, no error, although the run has an
    // escape under namespaces and a failed positive control that the baseline has too... except
    // that a failed positive control is always a regression.
    let mut clean = baseline.clone();
    clean
        .results
        .retain(|r| !(r.profile == "none" && r.verdict != Verdict::Escaped));
    let mut base = clean.clone();
    let gate = breakout_harness::suite::gate::compare(&base, &clean);
    assert!(gate.passed(), "{:?}", gate.regressions);
    let xml = report::render_gated(&clean, Format::Junit, Some((&gate, "b.json")));
    assert_eq!(counts(&xml).0, "0");
    assert_eq!(counts(&xml).1, "0");

    // One new escape (ptrace-outside under namespaces), one pair gone missing (hostname under
    // strict): two failures, the missing one in the `gate` suite.
    let mut run = clean.clone();
    for r in &mut run.results {
        if r.probe == "ptrace-outside" && r.profile == "namespaces" {
            r.verdict = Verdict::Escaped;
            r.attribution = None;
        }
    }
    run.results
        .retain(|r| !(r.probe == "hostname" && r.profile == "strict"));
    base.selection = None;
    let gate = breakout_harness::suite::gate::compare(&base, &run);
    assert_eq!(gate.regressions.len(), 2, "{:?}", gate.regressions);
    let xml = report::render_gated(&run, Format::Junit, Some((&gate, "b.json")));
    let mut failed = failed_cases(&xml);
    failed.sort();
    assert_eq!(
        failed,
        vec![
            (
                "breakout.namespaces".to_string(),
                "ptrace-outside".to_string(),
                "new-escape".to_string()
            ),
            (
                "breakout.strict".to_string(),
                "hostname".to_string(),
                "missing".to_string()
            ),
        ]
    );
    assert_eq!(
        counts(&xml),
        ("2".to_string(), "0".to_string(), counts(&xml).2)
    );
}

/// The sample with three workloads: shell works under none, python is broken and git skipped
/// under strict.
fn with_workloads() -> breakout_harness::model::RunReport {
    use breakout_attacks::workloads::WorkloadVerdict;
    let mut report = sample_report();
    let workload = |id: &str, profile: &str, verdict: WorkloadVerdict, reason: &str| {
        breakout_harness::model::WorkloadResult {
            workload: id.to_string(),
            profile: profile.to_string(),
            verdict,
            reason: reason.to_string(),
            step: (verdict == WorkloadVerdict::Broken).then(|| "import ssl".to_string()),
            stderr_tail: String::new(),
            duration_ms: 250,
            kernel: String::new(),
        }
    };
    report.workloads = vec![
        workload(
            "shell",
            "none",
            WorkloadVerdict::Works,
            "the expected output, exit 0",
        ),
        workload("python", "strict", WorkloadVerdict::Broken, "exit 1 <&>"),
        workload(
            "git",
            "strict",
            WorkloadVerdict::Skipped,
            "no git in the image",
        ),
    ];
    // The gate judges only the workloads a run selected.
    if let Some(selection) = &mut report.selection {
        selection.workloads = report
            .workloads
            .iter()
            .map(|w| w.workload.clone())
            .collect();
    }
    report
}

#[test]
fn every_workload_is_a_testcase_and_a_broken_one_fails() {
    let plain = sample_report();
    let report = with_workloads();
    let xml = report::render(&report, Format::Junit);
    let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    let root = doc.root_element();
    assert_eq!(attr(root, "tests"), (report.results.len() + 3).to_string());
    let (f0, e0, s0) = counts(&report::render(&plain, Format::Junit));
    let n = |s: &str| s.parse::<usize>().unwrap();
    let (f, e, s) = counts(&xml);
    assert_eq!((n(&f), n(&e), n(&s)), (n(&f0) + 1, n(&e0), n(&s0) + 1));
    let failed = failed_cases(&xml);
    assert!(
        failed.contains(&(
            "breakout.strict".to_string(),
            "workload:python".to_string(),
            "workload-broken".to_string()
        )),
        "{failed:?}"
    );
    let shell = doc
        .descendants()
        .find(|n| n.has_tag_name("testcase") && attr(*n, "name") == "workload:shell")
        .expect("the working workload is a testcase");
    assert_eq!(attr(shell, "classname"), "breakout.none");
    assert!(shell.children().any(|c| c.has_tag_name("system-out")));
    let git = doc
        .descendants()
        .find(|n| n.has_tag_name("testcase") && attr(*n, "name") == "workload:git")
        .unwrap();
    let skipped = git.children().find(|c| c.has_tag_name("skipped")).unwrap();
    assert_eq!(attr(skipped, "message"), "no git in the image");
}

#[test]
fn with_a_baseline_a_workload_fails_only_when_the_gate_calls_it_broken_now() {
    use breakout_attacks::workloads::WorkloadVerdict;
    // Broken in the baseline as in the run: not a regression, so the testcase passes. (The
    // sample's failed positive controls go: they are always regressions.)
    let mut run = with_workloads();
    run.results
        .retain(|r| !(r.profile == "none" && r.verdict != Verdict::Escaped));
    let gate = breakout_harness::suite::gate::compare(&run, &run);
    assert!(gate.passed(), "{:?}", gate.regressions);
    let xml = report::render_gated(&run, Format::Junit, Some((&gate, "b.json")));
    assert!(
        !failed_cases(&xml)
            .iter()
            .any(|(_, name, _)| name.starts_with("workload:")),
        "{xml}"
    );
    // Working in the baseline, broken now: the gate's regression fails the workload's own
    // testcase, not an orphan in a `gate` suite.
    let mut base = run.clone();
    for w in &mut base.workloads {
        if w.workload == "python" {
            w.verdict = WorkloadVerdict::Works;
        }
    }
    let gate = breakout_harness::suite::gate::compare(&base, &run);
    assert_eq!(gate.regressions.len(), 1, "{:?}", gate.regressions);
    let xml = report::render_gated(&run, Format::Junit, Some((&gate, "b.json")));
    assert_eq!(
        failed_cases(&xml),
        vec![(
            "breakout.strict".to_string(),
            "workload:python".to_string(),
            "workload-broken".to_string()
        )]
    );
    let doc = roxmltree::Document::parse(&xml).unwrap();
    assert!(
        !doc.descendants()
            .any(|n| n.has_tag_name("testsuite") && attr(n, "name") == "gate"),
        "{xml}"
    );
}
