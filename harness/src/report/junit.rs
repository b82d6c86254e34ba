//! JUnit XML: one testsuite per profile, one testcase per (profile, probe). An escape is a
//! failure, inconclusive an error, skipped skipped; a block passes and says what blocked it.
//! The environment goes into each suite's properties so CI systems show it beside the results.

use super::cell::{cell_text, Tally};
use super::escape::markup;
use super::matrix::Matrix;
use crate::model::{ProbeResult, RunReport};
use breakout_attacks::Verdict;
use std::fmt::Write;

pub fn render(report: &RunReport) -> String {
    let matrix = Matrix::of(report);
    let all = Tally::of(&report.results);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"breakout\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{}\">",
        all.total(),
        all.escaped,
        all.inconclusive,
        all.skipped,
        secs(report.timings.total_ms)
    );
    for profile in &matrix.profiles {
        let results: Vec<&ProbeResult> = matrix.column(profile).collect();
        let tally = Tally::of(results.iter().copied());
        let time: u64 = results.iter().map(|r| r.duration_ms).sum();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{}\">",
            markup(profile),
            tally.total(),
            tally.escaped,
            tally.inconclusive,
            tally.skipped,
            secs(time)
        );
        out.push_str("    <properties>\n");
        for (name, value) in properties(report, profile) {
            let _ = writeln!(
                out,
                "      <property name=\"{}\" value=\"{}\"/>",
                markup(&name),
                markup(&value)
            );
        }
        out.push_str("    </properties>\n");
        for result in results {
            testcase(&mut out, result);
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

fn testcase(out: &mut String, r: &ProbeResult) {
    let _ = write!(
        out,
        "    <testcase name=\"{}\" classname=\"breakout.{}\" time=\"{}\"",
        markup(&r.probe),
        markup(&r.profile),
        secs(r.duration_ms)
    );
    let details = markup(&details(r));
    match r.verdict {
        Verdict::Escaped => {
            let _ = writeln!(
                out,
                ">\n      <failure type=\"escaped\" message=\"escaped: {}\">{details}</failure>\n    </testcase>",
                markup(&r.reason)
            );
        }
        Verdict::Inconclusive => {
            let _ = writeln!(
                out,
                ">\n      <error type=\"inconclusive\" message=\"inconclusive: {}\">{details}</error>\n    </testcase>",
                markup(&r.reason)
            );
        }
        Verdict::Skipped => {
            let _ = writeln!(
                out,
                ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                markup(&r.reason)
            );
        }
        Verdict::Blocked => {
            let _ = writeln!(
                out,
                ">\n      <system-out>{details}</system-out>\n    </testcase>"
            );
        }
    }
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
        ("kernel".to_string(), env.kernel.clone()),
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
