//! `breakout run` and `breakout gate` on the command line: bad input is refused with a clear
//! message before any VM boots, and the gate's exit codes.

use breakout_attacks::{Layer, Verdict};
use breakout_harness::model::{
    Attribution, Environment, Evidence, ProbeResult, ProfileInfo, RunReport, Selection, Timings,
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
#[case::two_sources_one_name(&["run", "--profile", "strict", "--profile", concat!(env!("CARGO_MANIFEST_DIR"), "/../profiles/strict.toml")], "are both named `strict`")]
#[case::unwritable_out(&["run", "--probe", "ptrace-outside", "--out", "/proc/breakout-out"], "--out: cannot create the report directory /proc/breakout-out")]
#[case::out_is_a_file(&["run", "--probe", "ptrace-outside", "--out", "/etc/hostname"], "--out: cannot create the report directory /etc/hostname")]
#[case::unwritable_baseline(&["run", "--probe", "ptrace-outside", "--write-baseline", "/proc/b.json"], "--write-baseline: cannot write the report file /proc/b.json")]
#[case::baseline_in_a_missing_dir(&["run", "--probe", "ptrace-outside", "--write-baseline", "/nonexistent/b.json"], "the directory /nonexistent does not exist")]
#[case::unknown_kernel(&["run", "--probe", "ptrace-outside", "--kernel", "debian-99"], "unknown kernel `debian-99`: name one of debian-12, debian-13")]
#[case::kernel_twice(&["run", "--probe", "ptrace-outside", "--kernel", "debian-99", "--kernel", "debian-99"], "--kernel debian-99 is given twice")]
#[case::shard_zero(&["run", "--probe", "ptrace-outside", "--shard", "0/2"], "--shard 0/2: the shard number must be between 1 and 2")]
#[case::shard_past_the_count(&["run", "--probe", "ptrace-outside", "--shard", "3/2"], "--shard 3/2: the shard number must be between 1 and 2")]
#[case::shard_syntax(&["run", "--probe", "ptrace-outside", "--shard", "2"], "--shard 2: expected K/N")]
#[case::no_vms(&["run", "--probe", "ptrace-outside", "--vms", "0"], "--vms <N>")]
#[case::zero_probe_timeout(&["run", "--probe", "ptrace-outside", "--probe-timeout", "0"], "--probe-timeout <SECONDS>")]
#[case::zero_workload_timeout(&["run", "--workload", "python", "--workload-timeout", "0"], "--workload-timeout <SECONDS>")]
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
        kernel: String::new(),
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
        kernels: Vec::new(),
        schema_version: SCHEMA_VERSION,
        breakout_version: "test".to_string(),
        environment: Environment::default(),
        profiles: vec![ProfileInfo {
            name: "strict".to_string(),
            runtime: "breakout".to_string(),
            layers: vec![Layer::PidNs, Layer::UserNs, Layer::Caps],
            inferred: false,
        }],
        selection: Some(Selection {
            profiles: vec!["strict".to_string()],
            probes: vec!["ptrace-outside".to_string()],
            ablation: true,
            ..Selection::default()
        }),
        results,
        workloads: Vec::new(),
        timings: Timings::default(),
        channel_problems: Vec::new(),
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

/// A regression quotes the result's reason, which quotes what the probe printed: the gate shows
/// its escape sequences ("\x1b[2J" clears the screen of whoever reads the CI log), in text and
/// in Markdown, and leaves the JSON exact.
#[test]
fn the_gate_prints_a_probes_escape_sequences_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let baseline = report(vec![result(
        "strict",
        "ptrace-outside",
        Verdict::Blocked,
        &[Layer::PidNs, Layer::UserNs],
    )]);
    let mut escaped = result("strict", "ptrace-outside", Verdict::Escaped, &[]);
    escaped.reason = "read the secret; stderr said \x1b[2J\x1b[Hgate passed".to_string();
    let escaped = report(vec![escaped]);
    let baseline_path = write(dir.path(), "baseline.json", &baseline);
    let escaped_path = write(dir.path(), "escaped.json", &escaped);
    assert!(std::fs::read_to_string(&escaped_path)
        .unwrap()
        .contains("\\u001b[2J"));
    for format in ["text", "markdown"] {
        let out = breakout(&[
            "gate",
            "--format",
            format,
            "--baseline",
            &baseline_path,
            &escaped_path,
        ]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{stdout}");
        assert!(!stdout.contains('\x1b'), "{format}: {stdout:?}");
        assert!(
            stdout.contains("stderr said \\x1b[2J\\x1b[Hgate passed"),
            "{format}: {stdout}"
        );
    }
}

/// Results whose result channel carried a second line for a job (a payload with the guest's
/// root forging "blocked") are not judged, however well they match the baseline; nor is such a
/// baseline.
#[test]
fn the_gate_refuses_results_of_a_tampered_channel() {
    let dir = tempfile::tempdir().unwrap();
    let run = report(vec![result(
        "strict",
        "ptrace-outside",
        Verdict::Blocked,
        &[Layer::PidNs, Layer::UserNs],
    )]);
    let mut tampered = run.clone();
    tampered.channel_problems =
        vec!["two results came back for ptrace-outside under strict (escaped, then blocked): neither is trusted".to_string()];
    let run_path = write(dir.path(), "results.json", &run);
    let tampered_path = write(dir.path(), "tampered.json", &tampered);
    for (baseline, results) in [(&run_path, &tampered_path), (&tampered_path, &run_path)] {
        let out = breakout(&["gate", "--baseline", baseline, results]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains("not judged") && stderr.contains("two results came back"),
            "{stderr}"
        );
    }
}

/// Every subcommand lists its exit codes in --help, and README.md's table has the same lines.
#[test]
fn exit_codes_are_in_every_help_and_in_the_readme() {
    let readme = include_str!("../../README.md");
    for (command, codes) in breakout_harness::cli::exit_codes::ALL {
        let out = breakout(&[command, "--help"]);
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(help.contains("Exit codes:"), "{command} --help:\n{help}");
        for line in codes {
            let (code, meaning) = line.split_once(' ').unwrap();
            let meaning = meaning.trim();
            assert!(
                help.contains(line),
                "{command} --help lacks `{line}`:\n{help}"
            );
            let row = format!("| `{command}` | {code} | {meaning} |");
            assert!(readme.contains(&row), "README.md lacks the row `{row}`");
        }
    }
}

/// The committed baseline against runs crafted from it: a two-probe run and a run without
/// attribution pass, each with its one-line note; a new result that escapes under strict fails.
#[test]
fn gate_on_runs_crafted_from_the_committed_baseline() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../baselines/default.json");
    let baseline: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let save = |name: &str, value: &serde_json::Value| {
        let p = dir.path().join(name);
        std::fs::write(&p, value.to_string()).unwrap();
        p.display().to_string()
    };

    let mut partial = baseline.clone();
    partial["results"]
        .as_array_mut()
        .unwrap()
        .retain(|r| ["ptrace-outside", "io-uring"].contains(&r["probe"].as_str().unwrap()));
    // A run records what it selected (a baseline of schema 1 has no selection at all).
    if partial.get("selection").is_some() {
        partial["selection"]["probes"] = serde_json::json!(["ptrace-outside", "io-uring"]);
    }
    let partial_path = save("partial.json", &partial);
    let out = breakout(&["gate", "--baseline", path, &partial_path]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(!stdout.contains("missing"), "{stdout}");
    assert!(stdout.contains("outside the run's selection"), "{stdout}");

    let mut plain = baseline.clone();
    for r in plain["results"].as_array_mut().unwrap() {
        r["attribution"] = serde_json::Value::Null;
    }
    if plain.get("selection").is_some() {
        plain["selection"]["ablation"] = false.into();
    }
    let plain_path = save("plain.json", &plain);
    let out = breakout(&["gate", "--baseline", path, &plain_path]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert_eq!(
        stdout.matches("judged on verdicts only").count(),
        1,
        "{stdout}"
    );

    let mut without = baseline.clone();
    without["results"]
        .as_array_mut()
        .unwrap()
        .retain(|r| r["probe"] != "io-uring");
    if let Some(probes) = without
        .get_mut("selection")
        .and_then(|s| s.get_mut("probes"))
        .and_then(|p| p.as_array_mut())
    {
        probes.retain(|p| p != "io-uring");
    }
    let without_path = save("without.json", &without);
    let mut escapes = baseline.clone();
    for r in escapes["results"].as_array_mut().unwrap() {
        if r["probe"] == "io-uring" && r["profile"] == "strict" {
            r["verdict"] = "escaped".into();
            r["attribution"] = serde_json::Value::Null;
        }
    }
    let escapes_path = save("escapes.json", &escapes);
    let out = breakout(&["gate", "--baseline", &without_path, &escapes_path]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("io-uring under strict: ESCAPED (not in the baseline"),
        "{stdout}"
    );
    assert_eq!(
        stdout
            .matches("new (not in the baseline): io-uring under")
            .count(),
        4
    );

    let kernel = baseline["environment"]["kernel"]
        .as_str()
        .unwrap()
        .to_string();
    let release = kernel.split_whitespace().nth(1).unwrap().to_string();
    // Another release of the baseline's kernel line (a point update): compared, one line.
    let point = format!(
        "{}.999-test",
        breakout_harness::suite::gate::kernel_line(&release)
    );
    // A run on another kernel: the environment and every result and workload say so (results
    // carry their kernel since schema 3).
    let on_kernel = |run: &mut serde_json::Value, to: &str| {
        run["environment"]["kernel"] = kernel.replace(&release, to).into();
        if run["environment"].get("kernel_release").is_some() {
            run["environment"]["kernel_release"] = to.into();
        }
        for list in ["results", "workloads"] {
            if let Some(items) = run.get_mut(list).and_then(|v| v.as_array_mut()) {
                for item in items {
                    if item.get("kernel").is_some() {
                        item["kernel"] = to.into();
                    }
                }
            }
        }
    };
    let mut other_kernel = baseline.clone();
    on_kernel(&mut other_kernel, &point);
    let other_path = save("kernel.json", &other_kernel);
    let out = breakout(&["gate", "--baseline", path, &other_path]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains(&format!("the run is on {point}, the baseline on {release}")),
        "{stdout}"
    );
    let out = breakout(&["gate", "--strict-kernel", "--baseline", path, &other_path]);
    assert_eq!(out.status.code(), Some(1));
    // Another kernel line: the baseline says nothing about it; the gate fails and says so.
    let mut other_line = baseline.clone();
    on_kernel(&mut other_line, "9.9.9-test");
    let line_path = save("line.json", &other_line);
    let out = breakout(&["gate", "--baseline", path, &line_path]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("kernel 9.9.9-test: the baseline holds no results for this kernel"),
        "{stdout}"
    );

    // The same judgement as JUnit and as Markdown.
    let out = breakout(&[
        "gate",
        "--format",
        "junit",
        "--baseline",
        &without_path,
        &escapes_path,
    ]);
    let xml = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(xml.matches("<failure ").count(), 1, "{xml}");
    let out = breakout(&[
        "gate",
        "--format",
        "markdown",
        "--baseline",
        path,
        &partial_path,
    ]);
    let md = String::from_utf8_lossy(&out.stdout);
    assert!(
        md.contains("**Gate passed**") && md.contains("<details><summary>Matrix"),
        "{md}"
    );
}

/// The committed baseline as JSON, and a place to save edited copies of it.
fn committed_baseline() -> (&'static str, serde_json::Value) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../baselines/default.json");
    let baseline = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    (path, baseline)
}

fn save(dir: &Path, name: &str, value: &serde_json::Value) -> String {
    let p = dir.join(name);
    std::fs::write(&p, value.to_string()).unwrap();
    p.display().to_string()
}

/// A block still there but no longer explained by any layer (a hostile daemon poisoning the
/// attempts can make one): docker-default's signal-same-uid, blocked by pid-ns alone at depth 1,
/// becomes "pid-ns +unexplained" at depth 0. The gate fails naming the cell and both attributions.
#[test]
fn gate_fails_a_block_its_layers_no_longer_explain() {
    let (path, baseline) = committed_baseline();
    let dir = tempfile::tempdir().unwrap();
    let mut poisoned = baseline.clone();
    let mut edited = 0;
    for r in poisoned["results"].as_array_mut().unwrap() {
        if r["probe"] == "signal-same-uid" && r["profile"] == "docker-default" {
            assert_eq!(r["attribution"]["depth"], 1, "the baseline changed: {r}");
            r["attribution"]["necessary"] = serde_json::json!([]);
            r["attribution"]["candidates_complete"] = false.into();
            r["attribution"]["depth"] = 0.into();
            edited += 1;
        }
    }
    assert_eq!(edited, 1);
    let poisoned_path = save(dir.path(), "poisoned.json", &poisoned);
    let out = breakout(&["gate", "--baseline", path, &poisoned_path]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("signal-same-uid under docker-default: block no longer explained by its layers (depth 1 -> 0")
            && stdout.contains("(baseline: blocked: pid-ns; now: blocked: pid-ns +unexplained)"),
        "{stdout}"
    );
    let out = breakout(&[
        "gate",
        "--format",
        "junit",
        "--baseline",
        path,
        &poisoned_path,
    ]);
    let xml = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    assert!(xml.contains("type=\"unexplained\""), "{xml}");
}

/// Results whose scope the gate cannot know are not judged: an edited results.json with
/// `schema_version` 1 (so `selection` is dropped on load) and the regressing profile's results
/// deleted used to pass (exit 0, one note) where the unedited file fails (exit 1). Results
/// outside their own selection are refused too.
#[test]
fn gate_refuses_results_whose_scope_it_cannot_know() {
    let (path, baseline) = committed_baseline();
    let dir = tempfile::tempdir().unwrap();
    let mut regressed = baseline.clone();
    for r in regressed["results"].as_array_mut().unwrap() {
        if r["probe"] == "port-bind" && r["profile"] == "strict" {
            r["verdict"] = "escaped".into();
            r["attribution"] = serde_json::Value::Null;
        }
    }
    let regressed_path = save(dir.path(), "regressed.json", &regressed);
    let out = breakout(&["gate", "--baseline", path, &regressed_path]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let mut hidden = regressed.clone();
    hidden["schema_version"] = 1.into();
    hidden["results"]
        .as_array_mut()
        .unwrap()
        .retain(|r| r["profile"] != "strict");
    let hidden_path = save(dir.path(), "hidden.json", &hidden);
    let out = breakout(&["gate", "--baseline", path, &hidden_path]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "stdout: {}\nstderr: {stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        stderr.contains(&format!(
            "results {hidden_path} record no `selection` (schema 1"
        )) && stderr.contains("exit 2")
            && stderr.contains("--scope-from-contents"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    // The user says the file covers what it holds: judged so, with a note saying so.
    let out = breakout(&[
        "gate",
        "--scope-from-contents",
        "--baseline",
        path,
        &hidden_path,
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("the results record no selection"),
        "{stdout}"
    );

    // The field removed from a current file: refused the same way.
    let mut removed = regressed.clone();
    removed.as_object_mut().unwrap().remove("selection");
    let removed_path = save(dir.path(), "removed.json", &removed);
    let out = breakout(&["gate", "--baseline", path, &removed_path]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("record no `selection` (the field is missing"));

    // The regressing probe taken out of the selection, its results left in: refused.
    let mut unselected = regressed.clone();
    unselected["selection"]["probes"]
        .as_array_mut()
        .unwrap()
        .retain(|p| p != "port-bind");
    let unselected_path = save(dir.path(), "unselected.json", &unselected);
    let out = breakout(&["gate", "--baseline", path, &unselected_path]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "stdout: {}\nstderr: {stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        stderr.contains("hold 4 result(s) outside their own `selection`")
            && stderr.contains("port-bind under strict"),
        "{stderr}"
    );

    // A result the selection holds, dropped from the file: missing, a regression.
    let mut dropped = baseline.clone();
    dropped["results"]
        .as_array_mut()
        .unwrap()
        .retain(|r| !(r["probe"] == "port-bind" && r["profile"] == "strict"));
    let dropped_path = save(dir.path(), "dropped.json", &dropped);
    let out = breakout(&["gate", "--baseline", path, &dropped_path]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("port-bind under strict: missing from the run"),
        "{stdout}"
    );
}

/// A named kernel that cannot be fetched (an unreachable mirror, an empty cache) is one line and
/// exit 2, before any guest boots.
#[test]
fn a_kernel_that_cannot_be_fetched_is_one_line_before_booting() {
    let cache = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_breakout"))
        .args(["run", "--probe", "ptrace-outside", "--kernel", "debian-13"])
        .env("BREAKOUT_CACHE", cache.path())
        .env("BREAKOUT_DEBIAN_MIRROR", "http://127.0.0.1:9/debian")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("failed") && stderr.contains("--kernel PATH"),
        "{stderr}"
    );
    assert!(!stderr.contains("booting"), "{stderr}");
}

/// `breakout merge` puts the shards of the committed baseline back together: the gate passes
/// with zero changes; two copies of a shard, a missing shard or another selection are refused.
#[test]
fn merge_puts_shards_back_together_and_refuses_bad_sets() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../baselines/default.json");
    let baseline: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let probes: Vec<String> = baseline["selection"]["probes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let shard = |k: usize, n: usize| {
        let mut part = baseline.clone();
        part["selection"]["shard"] = serde_json::json!({"index": k, "count": n});
        part["results"].as_array_mut().unwrap().retain(|r| {
            let i = probes
                .iter()
                .position(|p| p == r["probe"].as_str().unwrap())
                .unwrap();
            i % n == k - 1
        });
        let p = dir.path().join(format!("shard-{k}-of-{n}.json"));
        std::fs::write(&p, part.to_string()).unwrap();
        p.display().to_string()
    };
    let (one, two, three) = (shard(1, 3), shard(2, 3), shard(3, 3));
    let out_dir = dir.path().join("merged");
    let out_s = out_dir.display().to_string();
    let out = breakout(&["merge", &three, &one, &two, "--out", &out_s]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    for file in ["results.json", "report.html", "junit.xml", "report.md"] {
        assert!(out_dir.join(file).is_file(), "{file}");
    }
    let merged = out_dir.join("results.json").display().to_string();
    let out = breakout(&["gate", "--baseline", path, &merged]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        !stdout.contains("changed:") && !stdout.contains("new (not in the baseline)"),
        "{stdout}"
    );
    assert!(!stdout.contains("outside the run's selection"), "{stdout}");

    let refused = |args: &[&str], message: &str| {
        let out = breakout(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(message), "{stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    };
    refused(
        &["merge", &one, &one, &two, "--out", &out_s],
        "are both shard 1/3",
    );
    refused(&["merge", &one, &two, "--out", &out_s], "3/3 missing");
    refused(&["merge", path, "--out", &out_s], "is a whole run");
    let mut other = baseline.clone();
    other["selection"]["shard"] = serde_json::json!({"index": 3, "count": 3});
    other["selection"]["profiles"] = serde_json::json!(["none", "strict"]);
    let other_path = dir.path().join("other.json");
    std::fs::write(&other_path, other.to_string()).unwrap();
    refused(
        &[
            "merge",
            &one,
            &two,
            &other_path.display().to_string(),
            "--out",
            &out_s,
        ],
        "different selections",
    );
}
