//! A synthetic RunReport covering every kind of cell the renderers draw: an escape, blocks of
//! depth 1, 2 and 3 (with caps and seccomp drill-down), a combination, an unexplained block,
//! an inferred attribution (external runtime), inconclusive, skipped, a pair that did not run,
//! and hostile text (markup, control characters, pipes) in the evidence.
#![allow(dead_code)]

use breakout_attacks::{Layer, Step, Verdict};
use breakout_harness::model::{
    AblationRun, Attribution, Environment, Evidence, ProbeResult, ProfileInfo, RunReport,
    Selection, Timings, SCHEMA_VERSION,
};
use breakout_runtime::{CgroupEvidence, ExitKind, SetupFailure};
use std::collections::BTreeMap;

pub const HOSTILE: &str = "<script>alert(1)</script> & \"quotes\" | pipe \u{1}\u{1b}[31m";

pub fn step(action: &str, syscall: &str, errno: Option<(i32, &str)>, data: Option<&str>) -> Step {
    Step {
        action: action.to_string(),
        syscall: syscall.to_string(),
        result: if errno.is_some() { None } else { Some(0) },
        errno: errno.map(|(e, _)| e),
        errno_name: errno.map(|(_, n)| n.to_string()),
        signal: None,
        data: data.map(str::to_string),
    }
}

pub fn attribution(sufficient: &[Layer], necessary: &[Layer]) -> Attribution {
    Attribution {
        necessary: necessary.to_vec(),
        sufficient: sufficient.to_vec(),
        depth: breakout_harness::model::depth(sufficient, necessary, true, false),
        candidates: sufficient
            .iter()
            .chain(necessary)
            .copied()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect(),
        candidates_complete: true,
        caps_detail: Vec::new(),
        seccomp_denied: Vec::new(),
        inferred: false,
        ablation_runs: vec![AblationRun {
            description: "all candidates off".to_string(),
            layers: Vec::new(),
            verdict: Verdict::Escaped,
            reason: String::new(),
        }],
        items: None,
    }
}

pub fn result(
    probe: &str,
    profile: &str,
    verdict: Verdict,
    attribution: Option<Attribution>,
) -> ProbeResult {
    ProbeResult {
        kernel: String::new(),
        probe: probe.to_string(),
        profile: profile.to_string(),
        verdict,
        reason: format!("oracle for {probe} under {profile}"),
        evidence: Evidence {
            steps: vec![step(
                "attach to victim",
                "ptrace(PTRACE_ATTACH, 812)",
                Some((1, "EPERM")),
                None,
            )],
            exit: Some(ExitKind::Exited { code: 1 }),
            cgroup: None,
            setup_failure: None,
            landlock: None,
            timed_out: false,
            stderr_tail: String::new(),
        },
        attribution,
        duration_ms: 120,
    }
}

pub fn sample_report() -> RunReport {
    let mut results = Vec::new();
    // ptrace-outside: escaped under none, depth 2 under namespaces, depth 3 with caps detail
    // under strict, inferred under bwrap.
    let mut escaped = result("ptrace-outside", "none", Verdict::Escaped, None);
    escaped.evidence.steps = vec![step(
        "read secret",
        "ptrace(PTRACE_PEEKDATA, 812)",
        None,
        Some("secret-1234"),
    )];
    escaped.evidence.exit = Some(ExitKind::Exited { code: 0 });
    results.push(escaped);
    results.push(result(
        "ptrace-outside",
        "namespaces",
        Verdict::Blocked,
        Some(attribution(&[Layer::UserNs, Layer::PidNs], &[])),
    ));
    let mut strict = attribution(&[Layer::PidNs, Layer::Caps, Layer::Seccomp], &[]);
    strict.caps_detail = vec!["CAP_SYS_PTRACE".to_string()];
    strict.seccomp_denied = vec!["ptrace".to_string()];
    strict.ablation_runs.push(AblationRun {
        description: "strict keeping CAP_SYS_PTRACE".to_string(),
        layers: vec![Layer::PidNs, Layer::Caps],
        verdict: Verdict::Blocked,
        reason: String::new(),
    });
    results.push(result(
        "ptrace-outside",
        "strict",
        Verdict::Blocked,
        Some(strict),
    ));
    let mut inferred = attribution(&[Layer::PidNs], &[]);
    inferred.inferred = true;
    inferred.candidates_complete = false;
    inferred.depth = 1;
    inferred.candidates.clear();
    inferred.ablation_runs.clear();
    results.push(result(
        "ptrace-outside",
        "bwrap",
        Verdict::Blocked,
        Some(inferred),
    ));

    // hostname: escaped, depth 1, combined (no single layer), unexplained.
    results.push(result("hostname", "none", Verdict::Escaped, None));
    results.push(result(
        "hostname",
        "namespaces",
        Verdict::Blocked,
        Some(attribution(&[Layer::UtsNs], &[Layer::UtsNs])),
    ));
    let combined = attribution(&[], &[Layer::Caps, Layer::Seccomp]);
    results.push(result(
        "hostname",
        "strict",
        Verdict::Blocked,
        Some(combined),
    ));
    let mut unexplained = attribution(&[], &[]);
    unexplained.candidates_complete = false;
    unexplained.depth = 0;
    results.push(result(
        "hostname",
        "bwrap",
        Verdict::Blocked,
        Some(unexplained),
    ));

    // fork-bomb: escaped, inconclusive (timeout), blocked with cgroup evidence; not run under bwrap.
    results.push(result("fork-bomb", "none", Verdict::Escaped, None));
    let mut timeout = result("fork-bomb", "namespaces", Verdict::Inconclusive, None);
    timeout.evidence.timed_out = true;
    timeout.evidence.stderr_tail = HOSTILE.to_string();
    timeout.reason = format!("timed out; stderr said {HOSTILE}");
    results.push(timeout);
    let mut limited = result(
        "fork-bomb",
        "strict",
        Verdict::Blocked,
        Some(attribution(&[Layer::CgroupLimits], &[Layer::CgroupLimits])),
    );
    limited.evidence.cgroup = Some(CgroupEvidence {
        pids_max_hits: 12,
        pids_peak: Some(64),
        ..CgroupEvidence::default()
    });
    limited.evidence.exit = Some(ExitKind::Signaled {
        signal: 9,
        core_dumped: false,
    });
    results.push(limited);

    // io-uring: skipped everywhere but none, where setup failed.
    let mut setup = result("io-uring", "none", Verdict::Inconclusive, None);
    setup.evidence.setup_failure = Some(SetupFailure {
        step: "mount-ns: pivot_root".to_string(),
        syscall: "pivot_root(\".\", \".\")".to_string(),
        errno: 22,
    });
    results.push(setup);
    for profile in ["namespaces", "strict", "bwrap"] {
        let mut skipped = result("io-uring", profile, Verdict::Skipped, None);
        skipped.reason = "kernel built without io_uring".to_string();
        results.push(skipped);
    }

    let profile = |name: &str, runtime: &str, layers: &[Layer], inferred: bool| ProfileInfo {
        name: name.to_string(),
        runtime: runtime.to_string(),
        layers: layers.to_vec(),
        inferred,
    };
    RunReport {
        kernels: Vec::new(),
        schema_version: SCHEMA_VERSION,
        breakout_version: "0.1.0".to_string(),
        environment: Environment {
            kernel: "Linux 6.1.0-27-cloud-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.1.115-1"
                .to_string(),
            kernel_release: "6.1.0-27-cloud-amd64".to_string(),
            arch: "x86_64".to_string(),
            cpus: 2,
            accel: "tcg".to_string(),
            vulnerabilities: BTreeMap::from([
                ("meltdown".to_string(), "Not affected".to_string()),
                (
                    "spectre_v1".to_string(),
                    "Mitigation: usercopy/swapgs barriers".to_string(),
                ),
                (
                    "mds".to_string(),
                    "Vulnerable: Clear CPU buffers attempted, no microcode".to_string(),
                ),
            ]),
            lsms: vec![
                "lockdown".to_string(),
                "capability".to_string(),
                "landlock".to_string(),
            ],
            sysctls: BTreeMap::from([
                ("kernel.kptr_restrict".to_string(), "0".to_string()),
                ("kernel.yama.ptrace_scope".to_string(), "absent".to_string()),
                ("kernel.io_uring_disabled".to_string(), "absent".to_string()),
            ]),
            external_probes: Vec::new(),
        },
        profiles: vec![
            profile("none", "breakout", &[], false),
            profile(
                "namespaces",
                "breakout",
                &[Layer::UserNs, Layer::PidNs, Layer::MountNs, Layer::UtsNs],
                false,
            ),
            profile(
                "strict",
                "breakout",
                &[
                    Layer::UserNs,
                    Layer::PidNs,
                    Layer::Caps,
                    Layer::Seccomp,
                    Layer::CgroupLimits,
                ],
                false,
            ),
            profile("bwrap", "bwrap", &[Layer::UserNs, Layer::PidNs], true),
        ],
        selection: Some(Selection {
            kernels: Vec::new(),
            shard: None,
            profiles: ["none", "namespaces", "strict", "bwrap"]
                .map(String::from)
                .to_vec(),
            probes: ["ptrace-outside", "hostname", "fork-bomb", "io-uring"]
                .map(String::from)
                .to_vec(),
            ablation: true,
            kernel: None,
            added_positive_control: false,
            workloads: Vec::new(),
        }),
        results,
        workloads: Vec::new(),
        timings: Timings {
            boot_ms: 1700,
            probes_ms: 30_500,
            ablation_ms: 41_000,
            workloads_ms: 0,
            total_ms: 74_000,
            launches: None,
        },
        channel_problems: Vec::new(),
    }
}

/// The result of (probe, profile) in the sample.
pub fn cell_of<'a>(report: &'a RunReport, probe: &str, profile: &str) -> &'a ProbeResult {
    report
        .results
        .iter()
        .find(|r| r.probe == probe && r.profile == profile)
        .unwrap_or_else(|| panic!("sample has no {probe} under {profile}"))
}
