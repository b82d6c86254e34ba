//! Runtime specs on the command line (`oci:PATH`, `cmd:'...'`, `podman:'...'`, short names):
//! bad input is one line naming what and where, before anything boots, with the command's usage
//! exit code (2), for `compare` and `run --profile` alike.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

fn breakout(args: &[&str]) -> (i32, String, Duration) {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_breakout"))
        .args(args)
        .output()
        .expect("running breakout");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        started.elapsed(),
    )
}

fn assert_refused(args: &[&str], expected: &str) {
    let (code, stderr, took) = breakout(args);
    assert_eq!(code, 2, "{args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{args:?}: one line: {stderr}");
    assert!(stderr.contains(expected), "{args:?}: {stderr}");
    // Nothing booted: a VM takes seconds.
    assert!(took < Duration::from_secs(5), "{args:?} took {took:?}");
}

#[test]
fn a_config_that_does_not_parse_is_named_with_the_position() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    std::fs::write(&path, "{\n  \"linux\": {\n    \"namespaces\": [\n  }\n}\n").unwrap();
    let spec = format!("oci:{}", path.display());
    let expected = format!(
        "breakout compare: {spec}: {} is not valid JSON: expected value at line 4 column 3",
        path.display()
    );
    assert_refused(
        &["compare", "none", &spec, "--probe", "signal-outside"],
        &expected,
    );
    assert_refused(
        &["run", "--profile", &spec, "--probe", "signal-outside"],
        &expected.replace("breakout compare", "breakout run"),
    );
    let missing = format!("oci+runc:{}", dir.path().join("nope.json").display());
    assert_refused(
        &["compare", "none", &missing, "--probe", "signal-outside"],
        "nope.json: No such file or directory",
    );
}

#[test]
fn a_wrapper_that_is_not_installed_is_refused() {
    assert_refused(
        &[
            "compare",
            "none",
            "cmd:no-such-jail --private",
            "--probe",
            "signal-outside",
        ],
        "breakout compare: cmd:no-such-jail --private: the wrapper `no-such-jail` is not installed (not found in PATH)",
    );
    assert_refused(
        &["compare", "none", "cmd:", "--probe", "signal-outside"],
        "cmd:: no wrapper named",
    );
    assert_refused(
        &[
            "compare",
            "none",
            "cmd:bwrap 'open",
            "--probe",
            "signal-outside",
        ],
        "cmd:bwrap 'open: unterminated ' quote",
    );
}

/// The registry's OCI runtimes, in its order.
fn oci_runtimes() -> Vec<&'static str> {
    breakout_harness::adapters::all()
        .iter()
        .filter(|r| {
            matches!(
                r.kind,
                breakout_harness::adapters::registry::Kind::Oci { .. }
            )
        })
        .map(|r| r.name)
        .collect()
}

#[test]
fn unknown_names_and_runtimes_are_refused_with_the_list() {
    assert_refused(
        &["compare", "none", "dockr", "--probe", "signal-outside"],
        &format!(
            "nor is it a runtime: {};",
            breakout_harness::adapters::names().join(", ")
        ),
    );
    assert_refused(
        &[
            "compare",
            "none",
            "oci+kata:/x.json",
            "--probe",
            "signal-outside",
        ],
        &format!(
            "`kata` is not an OCI runtime breakout knows ({})",
            oci_runtimes().join(", ")
        ),
    );
    assert_refused(
        &[
            "run",
            "--profile",
            "docker:alpine",
            "--probe",
            "signal-outside",
        ],
        "docker:alpine: unknown kind `docker:`",
    );
}

/// A runtime that exits before running the probe (firejail refusing an option in the guest)
/// gets one line after the run naming what it said, once per configuration.
#[test]
fn a_runtime_that_exits_before_the_probe_is_named_once() {
    use breakout_attacks::Verdict;
    use breakout_harness::cli::compare::runtime_failures;
    use breakout_harness::model::{Evidence, ProbeResult, RunReport};
    use breakout_harness::suite::plan::Configuration;
    let spec = "cmd:firejail --bogus";
    let configurations = vec![
        Configuration::named("none").unwrap(),
        Configuration::named(spec).unwrap(),
    ];
    let failed = |probe: &str| ProbeResult {
        kernel: String::new(),
        probe: probe.to_string(),
        profile: spec.to_string(),
        verdict: Verdict::Inconclusive,
        reason: "the inside printed no report (exit 1); root victim pid 90 still alive".to_string(),
        evidence: Evidence {
            stderr_tail: "Error: invalid --bogus command line option\n".to_string(),
            ..Evidence::default()
        },
        attribution: None,
        duration_ms: 10,
    };
    let mut report: RunReport = common::sample_report();
    report.results = vec![failed("signal-outside"), failed("keyring")];
    assert_eq!(
        runtime_failures(&report, &configurations),
        ["cmd:firejail --bogus: the runtime exited before running the probe (exit 1, first under signal-outside): Error: invalid --bogus command line option"]
    );
}
