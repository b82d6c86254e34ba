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
    assert_eq!(attr(root, "failures"), "2");
    assert_eq!(attr(root, "errors"), "2");
    assert_eq!(attr(root, "skipped"), "3");
    let suites: Vec<_> = root
        .children()
        .filter(|n| n.has_tag_name("testsuite"))
        .collect();
    let names: Vec<&str> = suites.iter().map(|s| attr(*s, "name")).collect();
    assert_eq!(names, ["none", "namespaces", "strict", "bwrap"]);
    assert_eq!(
        attr(suites[0], "failures"),
        "1",
        "the failed positive control"
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
            (Verdict::Blocked, true) => {
                let failure = child("failure").expect("a failed positive control is a failure");
                assert_eq!(attr(failure, "type"), "positive-control");
                assert!(attr(failure, "message").starts_with("positive control failed"));
            }
            (Verdict::Inconclusive, _) => {
                assert!(child("error").is_some(), "inconclusive is an error")
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
