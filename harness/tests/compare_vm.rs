//! `breakout compare` end to end in a disposable VM: our `none` profile beside bubblewrap, crun
//! and unshare (copied into the guest image with their libraries), on probes whose outcome under
//! each runtime follows from what its flags turn on. Needs root, QEMU and the workspace's
//! binaries built (`cargo build --workspace --bins`: breakout-probe must sit beside breakout).

use breakout_attacks::{Layer, Verdict};
use breakout_harness::model::{ProbeResult, RunReport};
use breakout_harness::report::json;
use std::path::Path;
use std::process::Command;

fn compare() -> RunReport {
    let exe = Path::new(env!("CARGO_BIN_EXE_breakout"));
    let probe_bin = exe.with_file_name("breakout-probe");
    assert!(
        probe_bin.exists(),
        "{} is missing: run `cargo build --workspace --bins` first",
        probe_bin.display()
    );
    let out = Command::new(exe)
        .args([
            "compare",
            "none",
            "bwrap",
            "crun",
            "unshare",
            "--probe",
            "sysv-ipc",
            "--probe",
            "keyring",
            "--probe",
            "ptrace-outside",
            "--format",
            "json",
        ])
        .output()
        .expect("running breakout compare");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "breakout compare failed ({}):\n{stderr}",
        out.status
    );
    let text = String::from_utf8_lossy(&out.stdout);
    // Real output, not only the synthetic report, validates against the documented schema.
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../../docs/results-schema.json")).unwrap();
    let validator = jsonschema::draft202012::new(&schema).unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    let problems: Vec<String> = validator
        .iter_errors(&value)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(problems.is_empty(), "{problems:#?}");
    json::parse(&text, "breakout compare --format json").unwrap_or_else(|e| panic!("{e}\n{stderr}"))
}

fn cell<'a>(report: &'a RunReport, probe: &str, profile: &str) -> &'a ProbeResult {
    report
        .results
        .iter()
        .find(|r| r.probe == probe && r.profile == profile)
        .unwrap_or_else(|| panic!("no result for {probe} under {profile}"))
}

#[test]
fn compare_runs_external_runtimes_in_the_vm() {
    let report = compare();
    assert_eq!(report.results.len(), 12);
    for name in ["bwrap", "crun", "unshare"] {
        let info = report.profiles.iter().find(|p| p.name == name).unwrap();
        assert!(info.inferred, "{name} is marked inferred");
        assert_eq!(info.runtime, name);
    }
    for r in &report.results {
        // Every launch worked: a runtime that cannot start shows up as inconclusive.
        assert_ne!(
            r.verdict,
            Verdict::Inconclusive,
            "{} under {}: {} / {}",
            r.probe,
            r.profile,
            r.reason,
            r.evidence.stderr_tail
        );
        if r.profile == "none" {
            assert_eq!(
                r.verdict,
                Verdict::Escaped,
                "positive control {}: {}",
                r.probe,
                r.reason
            );
        }
    }
    for runtime in ["bwrap", "crun", "unshare"] {
        // SysV keys are per IPC namespace, and all three make one.
        let r = cell(&report, "sysv-ipc", runtime);
        assert_eq!(
            r.verdict,
            Verdict::Blocked,
            "sysv-ipc under {runtime}: {}",
            r.reason
        );
        let a = r
            .attribution
            .as_ref()
            .expect("blocked results carry an attribution");
        assert!(
            a.inferred && a.sufficient.contains(&Layer::IpcNs),
            "sysv-ipc under {runtime}: {a:?}"
        );
        // The root victim is not in any of their pid namespaces: ESRCH.
        let r = cell(&report, "ptrace-outside", runtime);
        assert_eq!(
            r.verdict,
            Verdict::Blocked,
            "ptrace-outside under {runtime}: {}",
            r.reason
        );
        let a = r.attribution.as_ref().unwrap();
        assert!(
            a.sufficient.contains(&Layer::PidNs),
            "ptrace-outside under {runtime}: {a:?}"
        );
    }
    // Docker's seccomp profile, which the crun bundle carries, denies keyctl.
    let r = cell(&report, "keyring", "crun");
    assert_eq!(r.verdict, Verdict::Blocked, "{}", r.reason);
    let a = r.attribution.as_ref().unwrap();
    assert_eq!(a.sufficient, [Layer::Seccomp]);
    assert_eq!(a.seccomp_denied, ["keyctl"]);
}
