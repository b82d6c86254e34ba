//! `breakout list` and `breakout explain` through the built binary, `breakout compare`'s checks
//! before any VM boots, and the README's probe list kept equal to `breakout list probes
//! --format markdown`.

mod common;

use std::process::{Command, Output};

fn breakout(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_breakout"))
        .args(args)
        .output()
        .expect("running the breakout binary")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("UTF-8 stdout")
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).expect("UTF-8 stderr")
}

fn probe_ids() -> Vec<&'static str> {
    breakout_attacks::all_probes()
        .iter()
        .map(|p| p.meta().id)
        .collect()
}

/// The README's workload list must equal `breakout list workloads --format markdown`.
#[test]
fn readme_workload_list_is_breakout_list_workloads() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("reading README.md");
    let begin = "<!-- workloads:begin -->\n";
    let start = readme
        .find(begin)
        .expect("a <!-- workloads:begin --> marker")
        + begin.len();
    let stop = readme[start..]
        .find("<!-- workloads:end -->")
        .expect("a <!-- workloads:end --> marker")
        + start;
    let out = breakout(&["list", "workloads", "--format", "markdown"]);
    assert!(out.status.success());
    assert_eq!(&readme[start..stop], stdout(&out));
}

/// The README's probe list must equal `breakout list probes --format markdown`. With
/// BREAKOUT_UPDATE_README=1 the test rewrites the block instead (then review and commit it).
#[test]
fn readme_probe_list_is_breakout_list_probes() {
    readme_block_is("probes");
}

/// The README's layer table must equal `breakout list layers --format markdown` (the runtime's
/// table of layer facts), so every layer is in it. BREAKOUT_UPDATE_README=1 rewrites it.
#[test]
fn readme_layer_table_is_breakout_list_layers() {
    readme_block_is("layers");
}

/// The block between `<!-- WHAT:begin -->` and `<!-- WHAT:end -->` in the README is
/// `breakout list WHAT --format markdown`.
fn readme_block_is(what: &str) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
    let readme = std::fs::read_to_string(path).expect("reading README.md");
    let begin = format!("<!-- {what}:begin -->\n");
    let end = format!("<!-- {what}:end -->");
    let start = readme
        .find(&begin)
        .unwrap_or_else(|| panic!("README.md has a <!-- {what}:begin --> marker"))
        + begin.len();
    let stop = readme[start..]
        .find(&end)
        .unwrap_or_else(|| panic!("README.md has a <!-- {what}:end --> marker"))
        + start;
    let out = breakout(&["list", what, "--format", "markdown"]);
    assert!(out.status.success());
    let listed = stdout(&out);
    if std::env::var_os("BREAKOUT_UPDATE_README").is_some_and(|v| v == "1") {
        let updated = format!("{}{}{}", &readme[..start], listed, &readme[stop..]);
        std::fs::write(path, updated).expect("writing README.md");
        return;
    }
    let in_readme = &readme[start..stop];
    if in_readme != listed {
        let first_difference = in_readme
            .lines()
            .zip(listed.lines())
            .find(|(a, b)| a != b)
            .map(|(a, b)| format!("README: {a}\nlisted: {b}"))
            .unwrap_or_else(|| {
                format!(
                    "README has {} lines, the list {}",
                    in_readme.lines().count(),
                    listed.lines().count()
                )
            });
        panic!(
            "README.md's {what} list is stale ({first_difference}); rerun this test with \
             BREAKOUT_UPDATE_README=1 to rewrite the block between the {what} markers"
        );
    }
}

#[test]
fn list_probes_shows_every_registered_probe_once() {
    let out = breakout(&["list", "probes"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let listed: Vec<&str> = text
        .lines()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(listed, probe_ids());
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&breakout(&["list", "probes", "--format", "json"]))).unwrap();
    let first = &json[0];
    for field in [
        "id",
        "title",
        "technique",
        "oracle",
        "layers",
        "references",
        "class",
    ] {
        assert!(first.get(field).is_some(), "{field}");
    }
}

#[test]
fn list_layers_describes_all_sixteen() {
    let out = breakout(&["list", "layers"]);
    let text = stdout(&out);
    let names: Vec<&str> = text
        .lines()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    let expected: Vec<&str> = breakout_attacks::Layer::ALL
        .iter()
        .map(|l| l.name())
        .collect();
    assert_eq!(names, expected);
}

#[test]
fn list_profiles_shows_our_profiles_and_the_external_runtimes() {
    let out = breakout(&["list", "profiles"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for name in [
        "none",
        "namespaces",
        "docker-default",
        "strict",
        "bwrap",
        "crun",
        "unshare",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(&format!("{name} "))),
            "{name} in\n{text}"
        );
    }
    let none = text.lines().find(|l| l.starts_with("none ")).unwrap();
    assert!(none.ends_with("no layers"), "{none}");
    let bwrap = text.lines().find(|l| l.starts_with("bwrap ")).unwrap();
    // External runtimes are ablated item by item like our profiles; the runtime column says
    // which is which.
    assert_eq!(bwrap.split_whitespace().nth(1), Some("bwrap"), "{bwrap}");
}

#[test]
fn list_rejects_an_unknown_subject() {
    let out = breakout(&["list", "probez"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("invalid value 'probez'"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn explain_a_probe() {
    let id = probe_ids()[0];
    let out = breakout(&["explain", id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let meta = breakout_attacks::probe(id).unwrap().meta();
    assert!(text.starts_with(&format!("{id}: {}", meta.title)));
    for section in [
        "What it does, and why it works on a bare Linux process:",
        "How the outside proves an escape",
        "Layers that can stop it, and how:",
    ] {
        assert!(text.contains(section), "{section}");
    }
    for layer in meta.layers {
        assert!(text.contains(&format!("  {}", layer.name())), "{layer}");
    }
}

#[test]
fn explain_a_layer_names_the_probes_it_stops() {
    let out = breakout(&["explain", "pid-ns"]);
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(text.contains("CLONE_NEWPID"));
    for p in breakout_attacks::all_probes() {
        let m = p.meta();
        let listed = text
            .lines()
            .any(|l| l.trim_start().starts_with(&format!("{} ", m.id)));
        assert_eq!(
            listed,
            m.layers.contains(&breakout_attacks::Layer::PidNs),
            "{}",
            m.id
        );
    }
}

#[test]
fn explain_unknown_names_near_matches_and_fails() {
    let out = breakout(&["explain", "pidns"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("unknown probe or layer `pidns`"), "{err}");
    assert!(err.contains("did you mean: pid-ns"), "{err}");
    let out = breakout(&["explain", "zzzzzz"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!stderr(&out).contains("did you mean"));
}

#[test]
fn explain_shows_measured_results() {
    let dir = tempfile::tempdir().unwrap();
    let mut report = common::sample_report();
    let id = probe_ids()[0];
    for r in &mut report.results {
        if r.probe == "ptrace-outside" {
            r.probe = id.to_string();
        }
    }
    let path = dir.path().join("results.json");
    std::fs::write(&path, serde_json::to_string(&report).unwrap()).unwrap();
    let out = breakout(&["explain", id, "--results", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("Measured (--results):"));
    assert!(
        text.contains("strict          blocked: pid-ns, caps(CAP_SYS_PTRACE), seccomp(ptrace)"),
        "{text}"
    );
    let out = breakout(&["explain", "pid-ns", "--results", path.to_str().unwrap()]);
    assert!(stdout(&out).contains(&format!("{id} under bwrap (inferred)")));
    let out = breakout(&["explain", id, "--results", "/nonexistent.json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("cannot read results file /nonexistent.json"));
}

#[rstest::rstest]
#[case("pidns", &["pid-ns"][..])]
#[case("ptrace", &["ptrace-outside", "ptrace-same-uid"][..])]
#[case("seccmp", &["seccomp"][..])]
#[case("hostnme", &["hostname"][..])]
#[case("zzzzzz", &[][..])]
fn near_matches_suggest_what_was_meant(#[case] typo: &str, #[case] expected: &[&str]) {
    let known = [
        "pid-ns",
        "seccomp",
        "ptrace-outside",
        "ptrace-same-uid",
        "hostname",
        "uts-ns",
    ];
    assert_eq!(
        breakout_harness::describe::near_matches(typo, known),
        expected
    );
}

#[test]
fn compare_checks_its_configurations_before_booting() {
    let out = breakout(&["compare", "strict", "dockr"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("unknown profile `dockr`") && err.contains("nor is it a runtime: bwrap, crun"),
        "{err}"
    );
    let out = breakout(&["compare", "strict"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "one configuration is not a comparison"
    );
    let out = breakout(&["compare", "strict", "bwrap", "--probe", "no-such-probe"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("unknown probe `no-such-probe`"),
        "{}",
        stderr(&out)
    );
}

/// `explain --results` shows the ablation runs behind each cell and why each candidate layer is
/// credited or not (on the committed baseline).
#[test]
fn explain_with_results_shows_the_ablation_runs_and_why() {
    let baseline = concat!(env!("CARGO_MANIFEST_DIR"), "/../baselines/default.json");
    let out = breakout(&["explain", "signal-same-uid", "--results", baseline]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    for line in [
        "depth 1: one layer switched off lets it escape",
        "escaped      strict without pid-ns",
        "pid-ns: sufficient (pid-ns alone: blocked); necessary (strict without pid-ns: escaped)",
        "seccomp: not sufficient (seccomp alone: escaped); not necessary (strict without seccomp: blocked)",
    ] {
        assert!(text.contains(line), "missing `{line}`:\n{text}");
    }
}
