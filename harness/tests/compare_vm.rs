//! `breakout compare` end to end in a disposable VM, with known answers.
//!
//! The user's own configurations, ablated item by item: the config.json `crun spec` writes
//! (compare_fixtures/crun-spec.json) blocks signal-outside by its pid namespace, and the cell
//! names `linux.namespaces[pid]`; the same file without that entry lets the signal through. The
//! same for a bwrap command line with and without `--unshare-pid`. Then the short names (bwrap,
//! crun, unshare) without ablation: attribution inferred from evidence, marked as such.
//!
//! Needs root, QEMU, crun and bwrap on the host (copied into the guest) and the workspace's
//! binaries built (`cargo build --workspace --bins`: breakout-probe must sit beside breakout).

use breakout_attacks::{Layer, Verdict};
use breakout_harness::model::{ProbeResult, RunReport};
use breakout_harness::report::json;
use std::path::Path;
use std::process::Command;

fn compare(args: &[&str]) -> RunReport {
    let exe = Path::new(env!("CARGO_BIN_EXE_breakout"));
    let probe_bin = exe.with_file_name("breakout-probe");
    assert!(
        probe_bin.exists(),
        "{} is missing: run `cargo build --workspace --bins` first",
        probe_bin.display()
    );
    let out = Command::new(exe)
        .arg("compare")
        .args(args)
        .args(["--format", "json"])
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

fn no_inconclusive(report: &RunReport) {
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
}

/// The items a blocked cell names, as the user wrote them.
fn items(r: &ProbeResult) -> Vec<String> {
    assert_eq!(
        r.verdict,
        Verdict::Blocked,
        "{} under {}: {}",
        r.probe,
        r.profile,
        r.reason
    );
    let a = r.attribution.as_ref().expect("blocked results carry one");
    assert!(!a.inferred, "{} under {}: ablated", r.probe, r.profile);
    assert!(
        a.candidates_complete,
        "{} under {}: {a:?}",
        r.probe, r.profile
    );
    a.items
        .as_ref()
        .expect("item attribution")
        .sufficient
        .clone()
}

#[test]
fn compare_ablates_the_users_own_configurations_in_the_vm() {
    let dir = tempfile::tempdir().unwrap();
    let with_pid =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compare_fixtures/crun-spec.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&with_pid).unwrap()).unwrap();
    config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "pid");
    let without_pid = dir.path().join("no-pid.json");
    std::fs::write(&without_pid, config.to_string()).unwrap();
    let oci = format!("oci:{}", with_pid.display());
    let oci_no_pid = format!("oci:{}", without_pid.display());
    let bwrap = "cmd:bwrap --unshare-pid --ro-bind / / --proc /proc --dev /dev";
    let bwrap_no_pid = "cmd:bwrap --ro-bind / / --proc /proc --dev /dev";

    let report = compare(&[
        "none",
        &oci,
        &oci_no_pid,
        bwrap,
        bwrap_no_pid,
        "--probe",
        "signal-outside",
        "--probe",
        "ptrace-outside",
    ]);
    assert_eq!(report.results.len(), 10);
    no_inconclusive(&report);

    // signal-outside: a root victim, a root payload (uid 0 = uid 0: no capability needed).
    assert_eq!(
        items(cell(&report, "signal-outside", &oci)),
        ["linux.namespaces[pid]"]
    );
    assert_eq!(
        cell(&report, "signal-outside", &oci_no_pid).verdict,
        Verdict::Escaped
    );
    assert_eq!(
        items(cell(&report, "signal-outside", bwrap)),
        ["--unshare-pid"]
    );
    assert_eq!(
        cell(&report, "signal-outside", bwrap_no_pid).verdict,
        Verdict::Escaped
    );
    let a = cell(&report, "signal-outside", &oci)
        .attribution
        .as_ref()
        .unwrap();
    assert_eq!(a.sufficient, [Layer::PidNs]);
    assert_eq!(a.necessary, [Layer::PidNs]);

    // ptrace-outside needs CAP_SYS_PTRACE too, which `crun spec` does not keep: two items, and
    // the capability found by bisection. bwrap as root keeps every capability.
    assert_eq!(
        items(cell(&report, "ptrace-outside", &oci)),
        [
            "linux.namespaces[pid]",
            "process.capabilities(CAP_SYS_PTRACE)"
        ]
    );
    assert_eq!(
        items(cell(&report, "ptrace-outside", &oci_no_pid)),
        ["process.capabilities(CAP_SYS_PTRACE)"]
    );
    assert_eq!(
        items(cell(&report, "ptrace-outside", bwrap)),
        ["--unshare-pid"]
    );
    assert_eq!(
        cell(&report, "ptrace-outside", bwrap_no_pid).verdict,
        Verdict::Escaped
    );

    // The short names, without ablation: attribution from evidence, marked inferred.
    let report = compare(&[
        "bwrap",
        "crun",
        "unshare",
        "--probe",
        "sysv-ipc",
        "--probe",
        "keyring",
        "--no-ablation",
    ]);
    // The three, and the positive control compare adds (none of them is without layers).
    assert_eq!(report.results.len(), 8);
    for probe in ["sysv-ipc", "keyring"] {
        assert_eq!(cell(&report, probe, "none").verdict, Verdict::Escaped);
    }
    no_inconclusive(&report);
    for runtime in ["bwrap", "crun", "unshare"] {
        assert_eq!(
            report
                .profiles
                .iter()
                .find(|p| p.name == runtime)
                .unwrap()
                .runtime,
            runtime
        );
        // SysV keys are per IPC namespace, and all three make one.
        let r = cell(&report, "sysv-ipc", runtime);
        assert_eq!(
            r.verdict,
            Verdict::Blocked,
            "sysv-ipc under {runtime}: {}",
            r.reason
        );
        let a = r.attribution.as_ref().unwrap();
        assert!(
            a.inferred && a.sufficient.contains(&Layer::IpcNs),
            "sysv-ipc under {runtime}: {a:?}"
        );
    }
    // Docker's seccomp profile, which `crun` carries, denies keyctl.
    let r = cell(&report, "keyring", "crun");
    assert_eq!(r.verdict, Verdict::Blocked, "{}", r.reason);
    let a = r.attribution.as_ref().unwrap();
    assert_eq!(a.sufficient, [Layer::Seccomp]);
    assert_eq!(a.seccomp_denied, ["keyctl"]);
}
