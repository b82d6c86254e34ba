//! The CI examples in docs/ci/ stay runnable: every `breakout gate` command they contain is run
//! (with the built binary) against crafted results, once on a run equal to its baseline (exit 0)
//! and once on a run with a new escape (exit 1); both keep the four report files as artifacts.

mod common;

use breakout_attacks::Verdict;
use std::path::Path;
use std::process::Command;

const FILES: [(&str, &str); 2] = [
    (
        "github-actions.yml",
        include_str!("../../docs/ci/github-actions.yml"),
    ),
    ("gitlab-ci.yml", include_str!("../../docs/ci/gitlab-ci.yml")),
];

/// The gate command lines of a CI file, with the binary path replaced by the built one.
fn gate_commands(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.contains("breakout gate"))
        .map(|l| {
            let l = l.trim();
            let l = l
                .strip_prefix("run:")
                .or_else(|| l.strip_prefix("- "))
                .unwrap_or(l);
            l.trim()
                .replace("target/release/breakout", env!("CARGO_BIN_EXE_breakout"))
        })
        .collect()
}

fn workspace(run: &breakout_harness::model::RunReport) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("baselines")).unwrap();
    std::fs::create_dir_all(dir.path().join("out")).unwrap();
    let write = |path: &Path, report: &breakout_harness::model::RunReport| {
        std::fs::write(path, serde_json::to_string(report).unwrap()).unwrap()
    };
    write(
        &dir.path().join("baselines/default.json"),
        &common::sample_report(),
    );
    write(&dir.path().join("out/results.json"), run);
    dir
}

fn run_in(dir: &Path, command: &str) -> (i32, String) {
    let summary = dir.join("summary.md");
    let out = Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(dir)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .output()
        .unwrap();
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&std::fs::read_to_string(&summary).unwrap_or_default());
    text.push_str(&std::fs::read_to_string(dir.join("out/gate.md")).unwrap_or_default());
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn every_gate_command_in_docs_ci_runs_and_judges() {
    let clean = {
        // The sample's failed positive control is a regression of its own: leave it out.
        let mut r = common::sample_report();
        r.results
            .retain(|r| !(r.profile == "none" && r.verdict != Verdict::Escaped));
        r
    };
    let mut escaped = clean.clone();
    for r in &mut escaped.results {
        if r.probe == "ptrace-outside" && r.profile == "strict" {
            r.verdict = Verdict::Escaped;
            r.attribution = None;
        }
    }
    for (name, text) in FILES {
        let commands = gate_commands(text);
        assert!(!commands.is_empty(), "{name} runs no `breakout gate`");
        for command in &commands {
            // The baseline with the clean run's selection: a run equal to it passes.
            let dir = workspace(&clean);
            std::fs::write(
                dir.path().join("baselines/default.json"),
                serde_json::to_string(&clean).unwrap(),
            )
            .unwrap();
            let (code, output) = run_in(dir.path(), command);
            assert_eq!(code, 0, "{name}: `{command}` on a clean run:\n{output}");
            assert!(output.contains("**Gate passed**"), "{name}: {output}");

            let dir = workspace(&escaped);
            std::fs::write(
                dir.path().join("baselines/default.json"),
                serde_json::to_string(&clean).unwrap(),
            )
            .unwrap();
            let (code, output) = run_in(dir.path(), command);
            assert!(
                output.contains("**Gate FAILED**"),
                "{name}: `{command}`:\n{output}"
            );
            assert!(
                output.contains("ptrace-outside under strict: ESCAPED"),
                "{name}: {output}"
            );
            assert_eq!(code, 1, "{name}: `{command}`");
        }
        for artifact in [
            "out/report.html",
            "out/junit.xml",
            "out/report.md",
            "out/results.json",
        ] {
            assert!(text.contains(artifact), "{name} does not keep {artifact}");
        }
        assert!(
            text.contains("scripts/breakout run --baseline baselines/default.json --out out/"),
            "{name} runs the gate"
        );
    }
}

/// The sharded workflow's matrix has as many jobs as its shard count, and its merge and gate
/// steps, run as written on four shards of a clean run, write the reports and pass; a shard
/// lost from the matrix fails the merge.
#[test]
fn the_sharded_workflow_merges_its_shards_and_gates_them() {
    let text = include_str!("../../docs/ci/github-actions-sharded.yml");
    assert!(text.contains("SHARDS: 4") && text.contains("shard: [1, 2, 3, 4]"));
    assert!(text.contains("--shard ${{ matrix.shard }}/${{ env.SHARDS }}"));
    let mut clean = common::sample_report();
    clean
        .results
        .retain(|r| !(r.profile == "none" && r.verdict != Verdict::Escaped));
    let dir = workspace(&clean);
    std::fs::write(
        dir.path().join("baselines/default.json"),
        serde_json::to_string(&clean).unwrap(),
    )
    .unwrap();
    let probes = clean.selection.as_ref().unwrap().probes.clone();
    for k in 1..=4usize {
        let shard = breakout_harness::suite::shard::Shard { index: k, count: 4 };
        let mut part = clean.clone();
        part.selection.as_mut().unwrap().shard = Some(shard);
        let keep = shard.probes_of(&probes);
        part.results.retain(|r| keep.contains(&r.probe));
        let path = dir.path().join(format!("shards/shard-{k}/results.json"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, serde_json::to_string(&part).unwrap()).unwrap();
    }
    std::fs::remove_file(dir.path().join("out/results.json")).unwrap();
    let lines: Vec<String> = text
        .lines()
        .map(|l| l.trim())
        .filter(|l| {
            l.contains("target/release/breakout merge")
                || l.starts_with("run: target/release/breakout gate")
        })
        .map(|l| {
            l.trim_start_matches("run:")
                .trim()
                .replace("target/release/breakout", env!("CARGO_BIN_EXE_breakout"))
        })
        .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    for command in &lines {
        let (code, output) = run_in(dir.path(), command);
        assert_eq!(code, 0, "`{command}`:\n{output}");
    }
    for file in ["report.html", "junit.xml", "report.md", "results.json"] {
        assert!(dir.path().join("out").join(file).is_file(), "{file}");
    }
    std::fs::remove_dir_all(dir.path().join("shards/shard-3")).unwrap();
    let (code, output) = run_in(dir.path(), &lines[0]);
    assert_eq!(code, 2, "{output}");
}
