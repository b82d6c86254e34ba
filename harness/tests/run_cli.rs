//! `breakout run` and `breakout gate` on the command line: bad input is refused with a clear
//! message before any VM boots, and the gate's exit codes.

use breakout_attacks::{Layer, Verdict};
use breakout_harness::model::{
    Attribution, Environment, Evidence, ProbeResult, ProfileInfo, RunReport, Timings,
    SCHEMA_VERSION,
};
use rstest::rstest;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn breakout(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_breakout"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("the breakout binary runs")
}

#[rstest]
#[case::unknown_probe(&["run", "--probe", "ptrace-outsid"], "unknown probe `ptrace-outsid`")]
#[case::unknown_profile(&["run", "--profile", "stirct"], "profile `stirct`")]
#[case::missing_profile_file(&["run", "--profile", "/nonexistent/p.toml"], "/nonexistent/p.toml")]
#[case::profile_twice(&["run", "--profile", "strict", "--profile", "strict"], "named twice")]
#[case::unreadable_baseline(&["run", "--probe", "ptrace-outside", "--baseline", "/nonexistent/b.json"], "cannot read baseline /nonexistent/b.json")]
fn bad_input_is_refused_before_booting(#[case] args: &[&str], #[case] message: &str) {
    let start = Instant::now();
    let out = breakout(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.contains(message), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "stderr: {stderr}");
    // No VM was booted: a TCG boot alone takes longer than this.
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "took {:?}",
        start.elapsed()
    );
}

#[test]
fn guest_exec_refuses_to_run_outside_the_vm() {
    let out = Command::new(env!("CARGO_BIN_EXE_breakout"))
        .args(["guest-exec", "--plan", "/nonexistent/plan.json"])
        .env_remove("BREAKOUT_IN_VM")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("result channel") || stderr.contains("BREAKOUT_IN_VM"),
        "{stderr}"
    );
}

fn result(profile: &str, probe: &str, verdict: Verdict, sufficient: &[Layer]) -> ProbeResult {
    ProbeResult {
        probe: probe.to_string(),
        profile: profile.to_string(),
        verdict,
        reason: "synthetic".to_string(),
        evidence: Evidence::default(),
        attribution: (verdict == Verdict::Blocked).then(|| Attribution {
            sufficient: sufficient.to_vec(),
            depth: breakout_harness::model::depth(sufficient, &[], true, false),
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
        profiles: vec![ProfileInfo {
            name: "strict".to_string(),
            runtime: "breakout".to_string(),
            layers: vec![Layer::PidNs, Layer::UserNs, Layer::Caps],
            inferred: false,
        }],
        selection: None,
        results,
        timings: Timings::default(),
    }
}

fn write(dir: &Path, name: &str, report: &RunReport) -> String {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string(report).unwrap()).unwrap();
    path.display().to_string()
}

#[test]
fn gate_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let run = report(vec![result(
        "strict",
        "ptrace-outside",
        Verdict::Blocked,
        &[Layer::PidNs, Layer::UserNs],
    )]);
    let claims_more = report(vec![result(
        "strict",
        "ptrace-outside",
        Verdict::Blocked,
        &[Layer::PidNs, Layer::UserNs, Layer::Caps],
    )]);
    let escaped = report(vec![result(
        "strict",
        "ptrace-outside",
        Verdict::Escaped,
        &[],
    )]);
    let run_path = write(dir.path(), "results.json", &run);
    let more_path = write(dir.path(), "more.json", &claims_more);
    let escaped_path = write(dir.path(), "escaped.json", &escaped);

    let out = breakout(&["gate", "--baseline", &run_path, &run_path]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("gate passed"));

    let out = breakout(&["gate", "--baseline", &more_path, &run_path]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("gate FAILED") && stdout.contains("no longer blocked by caps"),
        "{stdout}"
    );

    let out = breakout(&["gate", "--baseline", &run_path, &escaped_path]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("ptrace-outside under strict: ESCAPED"),
        "{stdout}"
    );

    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{ nope").unwrap();
    let out = breakout(&["gate", "--baseline", &bad.display().to_string(), &run_path]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.json"));
}
